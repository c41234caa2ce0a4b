//! The health probe that Docker's `HEALTHCHECK` runs inside each service container.
//!
//! `healthchecker --port 6767` (or the Go original's `-port=6767`) sends
//! `GET http://127.0.0.1:{port}/health` and succeeds only on status 200, all within a
//! deadline ([`DEFAULT_TIMEOUT`]). It is deliberately dependency-free: a blocking HTTP/1.1
//! request over [`std::net::TcpStream`] is all a loopback probe needs, and it keeps the binary
//! small and quick to start, which matters for a process spawned every few seconds.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// The whole check — connect, send, read the status line — must finish within this.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// What the command line asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Probe `http://127.0.0.1:{port}/health`.
    Check { port: u16 },
    /// Print the usage text and exit 0.
    Help,
}

/// Parses the arguments after the program name.
///
/// Accepted: `--port 6767`, `--port=6767`, and the Go flag package's forms `-port=6767` and
/// `-port 6767`, so the original Dockerfiles' `HEALTHCHECK` lines work unchanged.
pub fn parse_args<I, S>(args: I) -> Result<Command, String>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let mut args = args.into_iter().map(Into::into);
    let mut port = None;
    while let Some(arg) = args.next() {
        let value = match arg.as_str() {
            "-h" | "--help" | "-help" => return Ok(Command::Help),
            "--port" | "-port" => args.next().ok_or_else(|| format!("{arg} needs a value"))?,
            other => match other
                .strip_prefix("--port=")
                .or_else(|| other.strip_prefix("-port="))
            {
                Some(value) => value.to_owned(),
                None => return Err(format!("unexpected argument {other:?}")),
            },
        };
        port = Some(parse_port(&value)?);
    }
    port.map(|port| Command::Check { port })
        .ok_or_else(|| "--port is required".to_owned())
}

fn parse_port(value: &str) -> Result<u16, String> {
    match value.parse::<u16>() {
        Ok(port) if port != 0 => Ok(port),
        _ => Err(format!("invalid port {value:?}: expected 1-65535")),
    }
}

/// The usage text for `--help` and argument errors.
pub const USAGE: &str = "usage: healthchecker --port PORT   (or -port=PORT)\n\
exits 0 when GET http://127.0.0.1:PORT/health answers 200 within 2 s, 1 otherwise";

/// Why a check failed. Its `Display` is the part after the URL on the failure line.
#[derive(Debug)]
pub enum CheckError {
    /// The server answered with a status other than 200.
    Status(u16),
    /// No complete status line arrived before the deadline.
    Timeout(Duration),
    /// The answer did not start with an HTTP/1.x status line.
    Malformed(String),
    /// Connecting, sending or reading failed.
    Io(io::Error),
}

impl fmt::Display for CheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckError::Status(status) => write!(f, "status {status}"),
            CheckError::Timeout(limit) => write!(f, "no answer within {} ms", limit.as_millis()),
            CheckError::Malformed(line) => write!(f, "not an HTTP answer: {line:?}"),
            CheckError::Io(err) => write!(f, "{err}"),
        }
    }
}

impl std::error::Error for CheckError {}

/// The URL probed for `port`, as printed on a failure line.
pub fn health_url(port: u16) -> String {
    format!("http://127.0.0.1:{port}/health")
}

/// Sends `GET /health` to `127.0.0.1:{port}` and returns `Ok` only on status 200, within
/// `timeout` overall.
pub fn check(port: u16, timeout: Duration) -> Result<(), CheckError> {
    let deadline = Instant::now() + timeout;
    // Each step gets what is left of the one deadline, so a server that accepts and then
    // trickles bytes cannot stretch the check past `timeout`.
    let remaining = || {
        deadline
            .checked_duration_since(Instant::now())
            .filter(|left| !left.is_zero())
            .ok_or(CheckError::Timeout(timeout))
    };
    let on_io = |err: io::Error| match err.kind() {
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => CheckError::Timeout(timeout),
        _ => CheckError::Io(err),
    };

    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&addr, remaining()?).map_err(on_io)?;
    stream
        .set_write_timeout(Some(remaining()?))
        .map_err(on_io)?;
    // `Connection: close` so a keep-alive server does not hold the socket open after answering.
    let request = format!(
        "GET /health HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: healthchecker\r\n\
         Accept: */*\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).map_err(on_io)?;

    // Only the status line matters; stop reading as soon as it is complete.
    let mut head = Vec::with_capacity(128);
    let mut buf = [0u8; 512];
    let line_end = loop {
        if let Some(end) = head.windows(2).position(|w| w == b"\r\n") {
            break end;
        }
        if head.len() > 8 * 1024 {
            return Err(CheckError::Malformed(lossy_prefix(&head)));
        }
        stream.set_read_timeout(Some(remaining()?)).map_err(on_io)?;
        match stream.read(&mut buf).map_err(on_io)? {
            0 if head.is_empty() => {
                return Err(CheckError::Io(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed without an answer",
                )));
            }
            0 => return Err(CheckError::Malformed(lossy_prefix(&head))),
            n => head.extend_from_slice(&buf[..n]),
        }
    };
    match parse_status_line(&head[..line_end]) {
        Some(200) => Ok(()),
        Some(status) => Err(CheckError::Status(status)),
        None => Err(CheckError::Malformed(lossy_prefix(&head[..line_end]))),
    }
}

/// `HTTP/1.1 200 OK` → `Some(200)`.
fn parse_status_line(line: &[u8]) -> Option<u16> {
    let line = std::str::from_utf8(line).ok()?;
    let mut parts = line.splitn(3, ' ');
    let version = parts.next()?;
    let status = parts.next()?;
    if !version.starts_with("HTTP/1.") || status.len() != 3 {
        return None;
    }
    status.parse().ok()
}

fn lossy_prefix(bytes: &[u8]) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(80)]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Command, String> {
        parse_args(args.iter().copied())
    }

    #[test]
    fn accepts_the_gnu_and_go_flag_forms() {
        let expected = Ok(Command::Check { port: 6767 });
        for args in [
            &["--port", "6767"][..],
            &["--port=6767"],
            &["-port=6767"],
            &["-port", "6767"],
        ] {
            assert_eq!(parse(args), expected, "{args:?}");
        }
    }

    #[test]
    fn the_last_port_wins() {
        assert_eq!(
            parse(&["--port=1", "-port=6868"]),
            Ok(Command::Check { port: 6868 })
        );
    }

    #[test]
    fn help() {
        assert_eq!(parse(&["--help"]), Ok(Command::Help));
        assert_eq!(parse(&["-h"]), Ok(Command::Help));
    }

    #[test]
    fn rejects_bad_input_with_a_reason() {
        for (args, needle) in [
            (&[][..], "required"),
            (&["--port"], "needs a value"),
            (&["--port=0"], "invalid port"),
            (&["--port=65536"], "invalid port"),
            (&["-port=abc"], "invalid port"),
            (&["--prot=1"], "unexpected argument"),
            (&["6767"], "unexpected argument"),
        ] {
            let err = parse(args).expect_err("should fail");
            assert!(err.contains(needle), "{args:?}: {err}");
        }
    }

    #[test]
    fn status_lines() {
        assert_eq!(parse_status_line(b"HTTP/1.1 200 OK"), Some(200));
        assert_eq!(parse_status_line(b"HTTP/1.0 503"), Some(503));
        assert_eq!(parse_status_line(b"HTTP/2 200"), None);
        assert_eq!(parse_status_line(b"SSH-2.0-OpenSSH"), None);
        assert_eq!(parse_status_line(b"HTTP/1.1 20 OK"), None);
    }
}
