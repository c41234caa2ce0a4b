//! Runs the built `healthchecker` binary against real HTTP servers on 127.0.0.1: one answering
//! 200, one answering 503, one that accepts and never answers, and a closed port.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Output};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// A one-thread HTTP server on an ephemeral port. `reply` is the raw response, or `None` to
/// accept connections and never answer. Each request's head is sent on the returned channel.
struct TinyServer {
    port: u16,
    requests: mpsc::Receiver<String>,
}

impl TinyServer {
    fn start(reply: Option<&'static str>) -> TinyServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().unwrap().port();
        let (tx, requests) = mpsc::channel();
        // The thread is detached: it dies with the test process, and a silent server must keep
        // its accepted sockets open (in `held`) for the probe to time out rather than see EOF.
        thread::spawn(move || {
            let mut held: Vec<TcpStream> = Vec::new();
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let head = read_head(&stream);
                let _ = tx.send(head);
                match reply {
                    Some(response) => {
                        let mut stream = stream;
                        let _ = stream.write_all(response.as_bytes());
                    }
                    None => held.push(stream),
                }
            }
        });
        TinyServer { port, requests }
    }
}

fn read_head(stream: &TcpStream) -> String {
    let mut reader = BufReader::new(stream);
    let mut head = String::new();
    let mut line = String::new();
    while reader.read_line(&mut line).unwrap_or(0) > 0 {
        head.push_str(&line);
        if line == "\r\n" {
            break;
        }
        line.clear();
    }
    head
}

fn run(args: &[&str]) -> (Output, Duration) {
    let started = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_healthchecker"))
        .args(args)
        .output()
        .expect("run healthchecker");
    (output, started.elapsed())
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

const OK: &str = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 15\r\n\r\n{\"status\":\"UP\"}";
const UNAVAILABLE: &str =
    "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 17\r\n\r\n{\"status\":\"DOWN\"}";

#[test]
fn healthy_service_exits_0_silently_with_both_flag_forms() {
    let server = TinyServer::start(Some(OK));
    for flag in [
        vec!["--port".to_owned(), server.port.to_string()],
        vec![format!("-port={}", server.port)],
    ] {
        let args: Vec<&str> = flag.iter().map(String::as_str).collect();
        let (output, _) = run(&args);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{args:?}: {}",
            stderr(&output)
        );
        assert!(output.stdout.is_empty(), "stdout not empty");
        assert!(output.stderr.is_empty(), "stderr: {}", stderr(&output));

        let head = server
            .requests
            .recv_timeout(Duration::from_secs(5))
            .unwrap();
        assert!(head.starts_with("GET /health HTTP/1.1\r\n"), "{head}");
        assert!(
            head.contains(&format!("Host: 127.0.0.1:{}\r\n", server.port)),
            "{head}"
        );
    }
}

#[test]
fn unhealthy_service_exits_1_with_one_line_naming_url_and_status() {
    let server = TinyServer::start(Some(UNAVAILABLE));
    let (output, _) = run(&[&format!("--port={}", server.port)]);
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty());
    let err = stderr(&output);
    assert_eq!(
        err,
        format!(
            "healthchecker: http://127.0.0.1:{}/health: status 503\n",
            server.port
        )
    );
}

#[test]
fn silent_service_times_out_after_two_seconds() {
    let server = TinyServer::start(None);
    let (output, elapsed) = run(&["--port", &server.port.to_string()]);
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!("http://127.0.0.1:{}/health", server.port)),
        "{err}"
    );
    assert!(err.contains("no answer within 2000 ms"), "{err}");
    // The deadline is 2 s; allow for a loaded CI machine, but not for a hang.
    assert!(
        elapsed >= Duration::from_millis(1900) && elapsed < Duration::from_secs(5),
        "took {elapsed:?}"
    );
    // It did connect and ask before giving up.
    assert!(server.requests.recv_timeout(Duration::from_secs(1)).is_ok());
}

#[test]
fn closed_port_exits_1_promptly() {
    // Bind then drop, so the port is (almost certainly) closed.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (output, elapsed) = run(&[&format!("-port={port}")]);
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with(&format!("healthchecker: http://127.0.0.1:{port}/health: ")),
        "{err}"
    );
    assert!(elapsed < Duration::from_secs(2), "took {elapsed:?}");
}

#[test]
fn usage_errors_exit_1_not_2() {
    // Docker reserves HEALTHCHECK exit code 2.
    for args in [&[][..], &["--port=nope"], &["--bogus"]] {
        let (output, _) = run(args);
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        assert_eq!(stderr(&output).lines().count(), 1, "{args:?}");
    }
}
