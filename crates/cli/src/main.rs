//! `rocker`: the Docker-like command line. Thin: parse, call the engine, print.

mod args;
mod images;

use std::process::ExitCode;

use clap::Parser;

use args::{Cli, Command, ImageCommand, RunArgs};
use rocker_engine::{credentials, Engine};

fn main() -> ExitCode {
    let cli = match Cli::try_parse_from(args::normalize(std::env::args().collect())) {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 125 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    // Absolute: the overlay mount names some paths from another working directory.
    let root = match std::path::absolute(&cli.root) {
        Ok(root) => root,
        Err(e) => {
            eprintln!("rocker: --root {}: {e}", cli.root.display());
            return ExitCode::from(125);
        }
    };
    let engine = Engine {
        root,
        auth_file: cli.authfile.unwrap_or_else(credentials::default_path),
        insecure_registries: cli.insecure_registries,
    };
    let code = match cli.command {
        Command::Run(run) => run_container(&engine, *run),
        Command::Pull(a) | Command::Image(ImageCommand::Pull(a)) => images::pull(&engine, a),
        Command::Images(a) | Command::Image(ImageCommand::Ls(a)) => images::list(&engine, a),
        Command::Rmi(a) | Command::Image(ImageCommand::Rm(a)) => images::remove(&engine, a),
        Command::Tag(a) | Command::Image(ImageCommand::Tag(a)) => images::tag(&engine, a),
        Command::Image(ImageCommand::Inspect { images: names }) => images::inspect(&engine, &names),
        Command::Image(ImageCommand::Prune { .. }) => images::prune(&engine),
        Command::Import(a) => images::import(&engine, a),
        Command::Load(a) => images::load(&engine, a),
        Command::Save(a) => images::save(&engine, a),
        Command::Login(a) => images::login(&engine, a),
        Command::Logout(a) => images::logout(&engine, a),
    };
    ExitCode::from(code)
}

fn run_container(engine: &Engine, args: RunArgs) -> u8 {
    let memory = args.memory;
    let request = match args.into_request() {
        Ok(r) => r,
        Err(message) => {
            eprintln!("rocker: {message}");
            return 125;
        }
    };
    match rocker_engine::run(engine, &request) {
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
