//! `rocker`: the Docker-like command line. Thin: parse, call the engine, print.

mod args;

use std::process::ExitCode;

use clap::Parser;

use args::{Cli, Command, RunArgs};

fn main() -> ExitCode {
    let cli = match Cli::try_parse_from(args::normalize(std::env::args().collect())) {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 125 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let code = match cli.command {
        Command::Run(run) => run_container(run),
    };
    ExitCode::from(code)
}

fn run_container(args: RunArgs) -> u8 {
    let memory = args.memory;
    let request = match args.into_request() {
        Ok(r) => r,
        Err(message) => {
            eprintln!("rocker: {message}");
            return 125;
        }
    };
    match rocker_engine::run(&request) {
        Ok(outcome) => {
            for w in &outcome.warnings {
                eprintln!("rocker: warning: {w}");
            }
            if outcome.oom_killed {
                let limit = memory.map(|m| format!(" of {} MiB", m >> 20)).unwrap_or_default();
                eprintln!(
                    "rocker: container {} ran out of memory: the kernel's OOM killer stopped it at its memory limit{limit}",
                    outcome.short_id
                );
            }
            outcome.exit_code as u8
        }
        Err(e) => {
            eprintln!("rocker: {}", rocker_engine::error_chain(&e));
            e.exit_code() as u8
        }
    }
}
