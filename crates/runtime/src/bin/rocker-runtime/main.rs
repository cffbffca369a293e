//! `rocker-runtime`: the OCI runtime with runc's command line. Thin: parse, call
//! `rocker_runtime::lifecycle`, print what runc prints.

mod args;
mod defaults;

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use clap::Parser;
use nix::sys::signal::Signal;
use oci_spec::runtime::{Capability, LinuxResources, Process};
use rocker_runtime::error::chain;
use rocker_runtime::lifecycle::{self, CreateOptions};
use rocker_runtime::process::exit_code;

use args::{Cli, Command, CreateArgs, ListFormat, LogFormat};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let log = Logger { path: cli.log.clone(), format: cli.log_format };
    match execute(&cli) {
        Ok(code) => ExitCode::from(code),
        Err(message) => {
            log.error(&message);
            eprintln!("rocker-runtime: {message}");
            ExitCode::from(1)
        }
    }
}

/// Runs the command; Ok(exit code) or the error message.
fn execute(cli: &Cli) -> Result<u8, String> {
    if cli.systemd_cgroup {
        return Err("--systemd-cgroup is not supported: rocker-runtime manages cgroupfs itself; \
                    configure the client for the cgroupfs cgroup manager"
            .into());
    }
    if cli.rootless.as_deref() == Some("true") && !matches!(cli.command, Command::Spec { .. }) {
        return Err("--rootless=true is not supported yet: run as root".into());
    }
    let root = cli.root.as_path();
    let fail = |e: rocker_runtime::Error| chain(&e);
    match &cli.command {
        Command::Create(a) => {
            check_create_flags(a)?;
            lifecycle::create(root, &a.id, &create_options(a)).map_err(fail)?;
        }
        Command::Start { id } => lifecycle::start(root, id).map_err(fail)?,
        Command::Run(r) => {
            check_create_flags(&r.create)?;
            let opts = create_options(&r.create);
            if r.detach {
                lifecycle::create(root, &r.create.id, &opts).map_err(fail)?;
                lifecycle::start(root, &r.create.id).map_err(fail)?;
            } else {
                if r.keep {
                    return Err("--keep is not supported yet".into());
                }
                return Ok(exit_code(lifecycle::run(root, &r.create.id, &opts).map_err(fail)?) as u8);
            }
        }
        Command::State { id } => {
            let state = lifecycle::state(root, id).map_err(fail)?;
            println!("{}", serde_json::to_string_pretty(&state).expect("state serializes"));
        }
        Command::Kill { all, id, signal } => {
            lifecycle::kill_container(root, id, parse_signal(signal)?, *all).map_err(fail)?
        }
        Command::Delete { force, id } => lifecycle::delete(root, id, *force).map_err(fail)?,
        Command::List { format, quiet } => print_list(root, *format, *quiet)?,
        Command::Ps { format, id, ps_args } => print_ps(root, id, *format, ps_args)?,
        Command::Pause { id } => lifecycle::set_paused(root, id, true).map_err(fail)?,
        Command::Resume { id } => lifecycle::set_paused(root, id, false).map_err(fail)?,
        Command::Spec { bundle, rootless } => defaults::write_spec(bundle, *rootless)?,
        Command::Features => println!("{}", defaults::features()),
        Command::Exec(e) => {
            let process = exec_process(root, e)?;
            let opts = lifecycle::ExecOptions {
                detach: e.detach,
                ignore_paused: e.ignore_paused,
                preserve_fds: e.preserve_fds,
                console_socket: e.console_socket.as_deref(),
                pid_file: e.pid_file.as_deref(),
            };
            if let Some(status) = lifecycle::exec(root, &e.id, &process, &opts).map_err(fail)? {
                return Ok(exit_code(status) as u8);
            }
        }
        Command::Events { stats, interval, id } => {
            let every = parse_interval(interval)?;
            loop {
                match lifecycle::stats(root, id) {
                    Ok(event) => println!("{}", serde_json::to_string(&event).expect("events serialize")),
                    // Streaming ends when the container does.
                    Err(_) if !*stats => break,
                    Err(e) => return Err(chain(&e)),
                }
                if *stats {
                    break;
                }
                std::thread::sleep(every);
            }
        }
        Command::Update(u) => lifecycle::update(root, &u.id, &update_resources(u)?).map_err(fail)?,
    }
    Ok(0)
}

/// "5s", "500ms" or "2" (seconds).
fn parse_interval(s: &str) -> Result<std::time::Duration, String> {
    let bad = || format!("invalid --interval {s:?}: use e.g. 5s or 500ms");
    let (num, unit) = match s.strip_suffix("ms") {
        Some(n) => (n, 1),
        None => (s.strip_suffix('s').unwrap_or(s), 1000),
    };
    let n: u64 = num.parse().map_err(|_| bad())?;
    if n == 0 {
        return Err(bad());
    }
    Ok(std::time::Duration::from_millis(n * unit))
}

/// The process for `exec`: --process as given, or the container's own process with the
/// command line's command and overrides (as runc builds it).
fn exec_process(root: &Path, e: &args::ExecArgs) -> Result<Process, String> {
    for (flag, value) in [("--process-label", &e.process_label), ("--apparmor", &e.apparmor)] {
        if value.is_some() {
            eprintln!("rocker-runtime: warning: {flag} ignored: this host has no such security module");
        }
    }
    if let Some(path) = &e.process {
        let text =
            std::fs::read_to_string(path).map_err(|err| format!("reading {}: {err}", path.display()))?;
        return serde_json::from_str(&text).map_err(|err| format!("{}: {err}", path.display()));
    }
    if e.command.is_empty() {
        return Err("exec needs a command after the container id, or --process".into());
    }
    let mut p = lifecycle::container_process(root, &e.id).map_err(|err| chain(&err))?;
    p.set_args(Some(e.command.clone()));
    p.set_terminal(Some(e.tty));
    if let Some(cwd) = &e.cwd {
        p.set_cwd(cwd.clone());
    }
    let mut env = p.env().clone().unwrap_or_default();
    for kv in &e.env {
        let key = kv.split('=').next().unwrap_or_default();
        env.retain(|old| old.split('=').next() != Some(key));
        env.push(kv.clone());
    }
    p.set_env(Some(env));
    if let Some(user) = &e.user {
        let (uid, gid) = user.split_once(':').unwrap_or((user, "0"));
        let parse = |s: &str| s.parse::<u32>().map_err(|_| format!("invalid --user {user:?}: use UID[:GID]"));
        let mut u = p.user().clone();
        u.set_uid(parse(uid)?);
        u.set_gid(parse(gid)?);
        p.set_user(u);
    }
    if !e.additional_gids.is_empty() {
        let mut u = p.user().clone();
        u.set_additional_gids(Some(e.additional_gids.clone()));
        p.set_user(u);
    }
    if !e.cap.is_empty() {
        let mut caps = p.capabilities().clone().unwrap_or_default();
        for name in &e.cap {
            let cap: Capability = name
                .trim_start_matches("CAP_")
                .parse()
                .map_err(|_| format!("unknown capability {name:?}"))?;
            let with = |set: &Option<oci_spec::runtime::Capabilities>| {
                Some(set.clone().unwrap_or_default().into_iter().chain([cap]).collect())
            };
            caps.set_bounding(with(caps.bounding()));
            caps.set_effective(with(caps.effective()));
            caps.set_permitted(with(caps.permitted()));
        }
        p.set_capabilities(Some(caps));
    }
    if e.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    Ok(p)
}

/// `update`'s resources: --resources JSON, with the flags on top (as runc merges them).
fn update_resources(u: &args::UpdateArgs) -> Result<LinuxResources, String> {
    let mut r: LinuxResources = match &u.resources {
        None => LinuxResources::default(),
        Some(path) => {
            let text = if path.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin()).map_err(|e| format!("reading stdin: {e}"))?
            } else {
                std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?
            };
            serde_json::from_str(&text).map_err(|e| format!("--resources: {e}"))?
        }
    };
    // A flag given replaces the JSON's value; one not given keeps it.
    if u.memory.is_some() || u.memory_swap.is_some() || u.memory_reservation.is_some() {
        let mut m = r.memory().unwrap_or_default();
        m.set_limit(u.memory.or(m.limit()));
        m.set_swap(u.memory_swap.or(m.swap()));
        m.set_reservation(u.memory_reservation.or(m.reservation()));
        r.set_memory(Some(m));
    }
    let cpu_flags = u.cpu_quota.is_some()
        || u.cpu_period.is_some()
        || u.cpu_shares.is_some()
        || u.cpu_rt_runtime.is_some()
        || u.cpu_rt_period.is_some()
        || u.cpuset_cpus.is_some()
        || u.cpuset_mems.is_some();
    if cpu_flags {
        let mut c = r.cpu().clone().unwrap_or_default();
        c.set_quota(u.cpu_quota.or(c.quota()));
        c.set_period(u.cpu_period.or(c.period()));
        c.set_shares(u.cpu_shares.or(c.shares()));
        c.set_realtime_runtime(u.cpu_rt_runtime.or(c.realtime_runtime()));
        c.set_realtime_period(u.cpu_rt_period.or(c.realtime_period()));
        c.set_cpus(u.cpuset_cpus.clone().or_else(|| c.cpus().clone()));
        c.set_mems(u.cpuset_mems.clone().or_else(|| c.mems().clone()));
        r.set_cpu(Some(c));
    }
    if let Some(limit) = u.pids_limit {
        let mut p = oci_spec::runtime::LinuxPids::default();
        p.set_limit(limit);
        r.set_pids(Some(p));
    }
    // Device rules change only with the container (runc refuses them here too).
    r.set_devices(None);
    Ok(r)
}

fn check_create_flags(a: &CreateArgs) -> Result<(), String> {
    if a.no_pivot {
        return Err("--no-pivot is not supported: rocker-runtime always uses pivot_root".into());
    }
    Ok(())
}

fn create_options(a: &CreateArgs) -> CreateOptions<'_> {
    CreateOptions {
        bundle: &a.bundle,
        preserve_fds: a.preserve_fds,
        console_socket: a.console_socket.as_deref(),
        pid_file: a.pid_file.as_deref(),
    }
}

/// A signal by name (KILL, SIGKILL) or number (9), as runc's kill takes it.
fn parse_signal(s: &str) -> Result<Signal, String> {
    let bad = || format!("invalid signal {s:?}: use a name like SIGTERM or KILL, or a number");
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| bad());
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") { upper } else { format!("SIG{upper}") };
    name.parse().map_err(|_| bad())
}

fn print_list(root: &Path, format: ListFormat, quiet: bool) -> Result<(), String> {
    let containers = lifecycle::list(root).map_err(|e| chain(&e))?;
    if quiet {
        containers.iter().for_each(|c| println!("{}", c.id));
    } else if format == ListFormat::Json {
        println!("{}", serde_json::to_string(&containers).expect("states serialize"));
    } else {
        println!("{:<12} {:<10} {:<10} {:<40} {:<30} OWNER", "ID", "PID", "STATUS", "BUNDLE", "CREATED");
        for c in &containers {
            println!(
                "{:<12} {:<10} {:<10} {:<40} {:<30} {}",
                c.id,
                c.pid,
                c.status,
                c.bundle.display(),
                c.created,
                if c.owner.is_empty() { "root" } else { &c.owner }
            );
        }
    }
    Ok(())
}

/// `ps`: JSON is the pid list; the table is ps(1)'s output for the container's processes.
fn print_ps(root: &Path, id: &str, format: ListFormat, ps_args: &[String]) -> Result<(), String> {
    let pids = lifecycle::pids(root, id).map_err(|e| chain(&e))?;
    if format == ListFormat::Json {
        println!("{}", serde_json::to_string(&pids).expect("pids serialize"));
        return Ok(());
    }
    let args: Vec<&str> =
        if ps_args.is_empty() { vec!["-ef"] } else { ps_args.iter().map(String::as_str).collect() };
    let out =
        std::process::Command::new("ps").args(&args).output().map_err(|e| format!("running ps: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let pid_col = header.split_whitespace().position(|h| h == "PID").ok_or("ps printed no PID column")?;
    println!("{header}");
    for line in lines {
        let pid = line.split_whitespace().nth(pid_col).and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            println!("{line}");
        }
    }
    Ok(())
}

/// runc's --log / --log-format: clients (containerd) read errors from this file.
struct Logger {
    path: Option<std::path::PathBuf>,
    format: LogFormat,
}

impl Logger {
    fn error(&self, message: &str) {
        let Some(path) = &self.path else { return };
        let line = match self.format {
            LogFormat::Json => serde_json::json!({
                "level": "error",
                "msg": message,
                "time": rocker_runtime::state::now_rfc3339(),
            })
            .to_string(),
            LogFormat::Text => {
                format!("time=\"{}\" level=error msg={message:?}", rocker_runtime::state::now_rfc3339())
            }
        };
        if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
            let _ = writeln!(f, "{line}");
        }
    }
}
