//! `healthchecker --port PORT`: see the library docs. Silent on success; on failure one line
//! naming the URL and the reason, and exit status 1.

use std::process::ExitCode;

use healthchecker::{Command, DEFAULT_TIMEOUT, USAGE, check, health_url, parse_args};

fn main() -> ExitCode {
    match parse_args(std::env::args().skip(1)) {
        Ok(Command::Help) => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        Ok(Command::Check { port }) => match check(port, DEFAULT_TIMEOUT) {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("healthchecker: {}: {err}", health_url(port));
                ExitCode::FAILURE
            }
        },
        // One line, and exit 1 rather than the usual 2 for a usage error: Docker reserves
        // HEALTHCHECK exit code 2, and keeps only the probe's output in its health log.
        Err(reason) => {
            eprintln!("healthchecker: {reason} (try --help)");
            ExitCode::FAILURE
        }
    }
}
