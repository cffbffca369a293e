//! runc's command line, flag for flag, as containerd, Podman and Docker call it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Global flags go before the command, as runc takes them (its parser refuses them after).
/// They are not clap `global` flags: those are copied into every subcommand on each start,
/// which took a third of the parse (a runtime is started for every container operation).
#[derive(Parser, Debug)]
#[command(name = "rocker-runtime", version, about = "rocker's OCI runtime, with runc's command line")]
pub struct Cli {
    /// Where container state is kept
    #[arg(long, default_value = "/run/rocker-runtime")]
    pub root: PathBuf,
    /// Log file (errors and, with --debug, debug lines)
    #[arg(long)]
    pub log: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "text")]
    pub log_format: LogFormat,
    #[arg(long)]
    pub debug: bool,
    /// Manage cgroups through systemd (not supported: refused with an error)
    #[arg(long)]
    pub systemd_cgroup: bool,
    /// runc's rootless mode ("true", "false", "auto"; alone: "true"). Only "false" and
    /// "auto" (as root) are supported
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub rootless: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListFormat {
    Table,
    Json,
}

/// `defer`: only the invoked command's flags are built (building all of them took ~0.15 ms
/// of every start).
#[derive(Subcommand, Debug)]
#[command(defer = true)]
pub enum Command {
    /// Create a container (its process waits for `start`)
    Create(CreateArgs),
    /// Start a created container's process
    Start { id: String },
    /// Create and start a container, and wait for it unless --detach
    Run(RunArgs),
    /// Print a container's state as JSON
    State { id: String },
    /// Send a signal to a container's init (or, with --all, to all its processes)
    Kill {
        #[arg(short, long)]
        all: bool,
        id: String,
        #[arg(default_value = "SIGTERM")]
        signal: String,
    },
    /// Delete a stopped container (--force: kill it first)
    Delete {
        #[arg(short, long)]
        force: bool,
        id: String,
    },
    /// List containers
    List {
        #[arg(short, long, value_enum, default_value = "table")]
        format: ListFormat,
        #[arg(short, long)]
        quiet: bool,
    },
    /// List the processes of a container
    Ps {
        #[arg(short, long, value_enum, default_value = "table")]
        format: ListFormat,
        id: String,
        /// Options passed to ps(1) in table format
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// Freeze all processes of a container
    Pause { id: String },
    /// Thaw a paused container
    Resume { id: String },
    /// Write a default config.json (--rootless: one for a user namespace of the current user)
    Spec {
        #[arg(short, long, default_value = ".")]
        bundle: PathBuf,
        /// A config.json for a user namespace of the current user
        #[arg(long)]
        rootless: bool,
    },
    /// Print the features this runtime supports (OCI features JSON)
    Features,
    /// Run a process in a running container
    Exec(ExecArgs),
    /// Print a container's resource usage as JSON events: once with --stats, else every
    /// --interval until it stops
    Events {
        #[arg(long)]
        stats: bool,
        /// Seconds between events (runc's "5s" form is accepted)
        #[arg(long, default_value = "5s")]
        interval: String,
        id: String,
    },
    /// Change a running container's resource limits
    Update(UpdateArgs),
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    /// The bundle: the directory with config.json
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
    /// Unix socket to receive the pty master when process.terminal is set
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    /// File to write the init's pid to
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    /// Use MS_MOVE instead of pivot_root (not supported: refused)
    #[arg(long)]
    pub no_pivot: bool,
    /// Do not create a session keyring (rocker never creates one)
    #[arg(long)]
    pub no_new_keyring: bool,
    /// Pass descriptors 3..3+N on to the container's process
    #[arg(long, default_value_t = 0)]
    pub preserve_fds: u32,
    pub id: String,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub create: CreateArgs,
    /// Return once the container has started
    #[arg(short, long)]
    pub detach: bool,
    /// Keep the container's state after it exits
    #[arg(long)]
    pub keep: bool,
}

#[derive(Args, Debug)]
pub struct ExecArgs {
    /// A process.json (the spec's `process` object) instead of the command line's
    #[arg(short, long)]
    pub process: Option<PathBuf>,
    /// Give the process a terminal
    #[arg(short, long)]
    pub tty: bool,
    /// Return once the process has started
    #[arg(short, long)]
    pub detach: bool,
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    /// Working directory inside the container
    #[arg(long)]
    pub cwd: Option<PathBuf>,
    /// KEY=VALUE to add to the container's environment
    #[arg(short, long)]
    pub env: Vec<String>,
    /// UID[:GID]
    #[arg(short, long)]
    pub user: Option<String>,
    #[arg(short = 'g', long)]
    pub additional_gids: Vec<u32>,
    /// A capability to add (CAP_NET_ADMIN)
    #[arg(short, long)]
    pub cap: Vec<String>,
    #[arg(long)]
    pub no_new_privs: bool,
    /// Exec into a paused container too (the process runs once it is resumed)
    #[arg(long)]
    pub ignore_paused: bool,
    /// Pass descriptors 3..3+N on to the container's process
    #[arg(long, default_value_t = 0)]
    pub preserve_fds: u32,
    /// SELinux label (ignored with a warning: no SELinux here)
    #[arg(long)]
    pub process_label: Option<String>,
    /// AppArmor profile (ignored with a warning: no AppArmor here)
    #[arg(long)]
    pub apparmor: Option<String>,
    pub id: String,
    /// The command and its arguments (unless --process)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

#[derive(Args, Debug)]
pub struct UpdateArgs {
    /// The spec's linux.resources as JSON, from a file or - for stdin
    #[arg(short, long)]
    pub resources: Option<PathBuf>,
    /// Memory limit in bytes
    #[arg(long, allow_negative_numbers = true)]
    pub memory: Option<i64>,
    /// Memory + swap limit in bytes
    #[arg(long, allow_negative_numbers = true)]
    pub memory_swap: Option<i64>,
    /// Memory reservation (soft limit) in bytes
    #[arg(long, allow_negative_numbers = true)]
    pub memory_reservation: Option<i64>,
    /// CFS quota in microseconds
    #[arg(long, allow_negative_numbers = true)]
    pub cpu_quota: Option<i64>,
    /// CFS period in microseconds
    #[arg(long)]
    pub cpu_period: Option<u64>,
    #[arg(long)]
    pub cpu_shares: Option<u64>,
    /// Real-time runtime per period in microseconds (cgroup v1 with real-time group scheduling)
    #[arg(long, allow_negative_numbers = true)]
    pub cpu_rt_runtime: Option<i64>,
    /// Real-time period in microseconds
    #[arg(long)]
    pub cpu_rt_period: Option<u64>,
    #[arg(long)]
    pub cpuset_cpus: Option<String>,
    #[arg(long)]
    pub cpuset_mems: Option<String>,
    #[arg(long, allow_negative_numbers = true)]
    pub pids_limit: Option<i64>,
    pub id: String,
}
