//! The command line: clap definitions, and the course's single-dash long flags.

use std::path::PathBuf;

use clap::{ArgAction, Args, CommandFactory, Parser, Subcommand};
use rocker_engine::images::PullPolicy;
use rocker_engine::units::{parse_cpus, parse_memory};
use rocker_engine::{Limits, RunRequest, Source};

#[derive(Parser, Debug)]
#[command(name = "rocker", version, about = "A daemonless, Docker-like container engine")]
pub struct Cli {
    /// Where images and containers are kept
    #[arg(long, global = true, env = "ROCKER_ROOT", default_value = "/var/lib/rocker", value_name = "DIR")]
    pub root: PathBuf,
    /// A registry (host[:port]) to reach over plain HTTP (localhost always is)
    #[arg(long = "insecure-registry", global = true, value_name = "REGISTRY")]
    pub insecure_registries: Vec<String>,
    /// Registry credentials file (default: REGISTRY_AUTH_FILE, $DOCKER_CONFIG/config.json, ~/.docker/config.json)
    #[arg(long, global = true, value_name = "FILE")]
    pub authfile: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a command in a new container
    Run(Box<RunArgs>),
    /// Download an image from a registry
    Pull(PullArgs),
    /// List images
    Images(ImagesArgs),
    /// Remove images
    Rmi(RmiArgs),
    /// Give an image another name
    Tag(TagArgs),
    /// Manage images
    #[command(subcommand)]
    Image(ImageCommand),
    /// Make an image from a root filesystem tarball
    Import(ImportArgs),
    /// Load images from a docker-archive or oci-archive tar
    Load(LoadArgs),
    /// Save images to a docker-archive or oci-archive tar
    Save(SaveArgs),
    /// Store credentials for a registry
    Login(LoginArgs),
    /// Remove stored credentials for a registry
    Logout(LogoutArgs),
}

#[derive(Subcommand, Debug)]
pub enum ImageCommand {
    /// Show images' configuration as JSON
    Inspect {
        #[arg(required = true, value_name = "IMAGE")]
        images: Vec<String>,
    },
    /// Remove images that no tag names and no container uses
    Prune {
        /// Do not ask for confirmation (rocker never asks)
        #[arg(short, long)]
        force: bool,
    },
    /// List images
    #[command(visible_alias = "list")]
    Ls(ImagesArgs),
    /// Remove images
    Rm(RmiArgs),
    /// Download an image from a registry
    Pull(PullArgs),
    /// Give an image another name
    Tag(TagArgs),
}

#[derive(Args, Debug)]
pub struct PullArgs {
    /// Print only the image reference
    #[arg(short, long)]
    pub quiet: bool,
    /// The platform to pick from a multi-platform image (os/arch[/variant])
    #[arg(long)]
    pub platform: Option<String>,
    #[arg(value_name = "IMAGE")]
    pub image: String,
}

#[derive(Args, Debug)]
pub struct ImagesArgs {
    /// Only image ids
    #[arg(short, long)]
    pub quiet: bool,
    /// Show digests
    #[arg(long)]
    pub digests: bool,
    /// table (default) or json (one object per line, as Docker's)
    #[arg(long, default_value = "table")]
    pub format: String,
}

#[derive(Args, Debug)]
pub struct RmiArgs {
    /// Remove an image even if several tags name it (all of them go)
    #[arg(short, long)]
    pub force: bool,
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
}

#[derive(Args, Debug)]
pub struct TagArgs {
    #[arg(value_name = "SOURCE_IMAGE")]
    pub source: String,
    #[arg(value_name = "TARGET_IMAGE")]
    pub target: String,
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// A tar file, or - for stdin
    #[arg(value_name = "FILE|-")]
    pub source: String,
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub reference: Option<String>,
    /// The image's default command (split on spaces; Docker's `--change 'CMD ...'` in short)
    #[arg(long, value_name = "COMMAND")]
    pub cmd: Option<String>,
}

#[derive(Args, Debug)]
pub struct LoadArgs {
    /// The archive (default: stdin)
    #[arg(short, long, value_name = "FILE")]
    pub input: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct SaveArgs {
    /// Write to FILE instead of stdout
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// docker-archive (default) or oci-archive
    #[arg(long, default_value = "docker-archive")]
    pub format: String,
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
}

#[derive(Args, Debug)]
pub struct LoginArgs {
    #[arg(short, long)]
    pub username: Option<String>,
    #[arg(short, long)]
    pub password: Option<String>,
    /// Read the password from stdin
    #[arg(long)]
    pub password_stdin: bool,
    /// The registry (default: docker.io)
    #[arg(value_name = "SERVER")]
    pub server: Option<String>,
}

#[derive(Args, Debug)]
pub struct LogoutArgs {
    #[arg(value_name = "SERVER")]
    pub server: Option<String>,
}

#[derive(Args, Debug)]
// Docker's -h is --hostname, so help is --help only.
// As with Docker's flags, a repeated option takes its last value.
#[command(disable_help_flag = true, args_override_self = true)]
pub struct RunArgs {
    /// Keep stdin attached to the container
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Give the container a pseudo-terminal
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Directory holding the container's root filesystem (instead of an image)
    #[arg(long, value_name = "DIR")]
    pub rootfs: Option<PathBuf>,
    /// Replace the image's entrypoint ("" clears it)
    #[arg(long, value_name = "COMMAND")]
    pub entrypoint: Option<String>,
    /// When to pull the image: missing (default), always, never
    #[arg(long, default_value = "missing", value_name = "POLICY")]
    pub pull: PullPolicy,
    /// Number of CPUs (fractions allowed, 0.5 is half a CPU)
    #[arg(long, value_parser = parse_cpus, allow_negative_numbers = true)]
    pub cpus: Option<f64>,
    /// Memory limit: 64m, 1g, 512k; a bare number means MiB
    #[arg(short = 'm', long, value_parser = parse_memory, allow_negative_numbers = true)]
    pub memory: Option<u64>,
    /// Maximum number of processes (-1 or 0: unlimited)
    #[arg(long, allow_negative_numbers = true)]
    pub pids_limit: Option<i64>,
    /// Relative CPU weight
    #[arg(short = 'c', long)]
    pub cpu_shares: Option<u64>,
    /// CPUs the container may run on (0-3, 0,1)
    #[arg(long)]
    pub cpuset_cpus: Option<String>,
    /// Container hostname (default: the short container id)
    #[arg(short = 'h', long)]
    pub hostname: Option<String>,
    /// Set an environment variable (KEY=VALUE, or KEY to pass rocker's own)
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Working directory inside the container
    #[arg(short = 'w', long)]
    pub workdir: Option<String>,
    /// Cgroup parent: absolute from the cgroup root, relative from rocker's own cgroup
    #[arg(long, default_value = "/rocker")]
    pub cgroup_parent: String,
    /// Mount the container's root filesystem read-only
    #[arg(long)]
    pub read_only: bool,
    /// Run as UID[:GID] (numeric)
    #[arg(short = 'u', long, value_name = "UID[:GID]")]
    pub user: Option<String>,
    /// Add a capability to Docker's default set (NET_ADMIN)
    #[arg(long, value_name = "CAP")]
    pub cap_add: Vec<String>,
    /// Drop a capability from the default set (CHOWN, or ALL)
    #[arg(long, value_name = "CAP")]
    pub cap_drop: Vec<String>,
    /// Security options: seccomp=unconfined turns off the default seccomp profile
    #[arg(long, value_name = "OPTION")]
    pub security_opt: Vec<String>,
    /// Remove the container when it exits (a foreground run always does)
    #[arg(long)]
    pub rm: bool,
    /// Print help
    #[arg(long, action = ArgAction::Help)]
    pub help: Option<bool>,
    /// The image (unless --rootfs), then the command and its arguments
    #[arg(trailing_var_arg = true, value_name = "IMAGE|COMMAND")]
    pub args: Vec<String>,
}

impl RunArgs {
    pub fn into_request(self) -> Result<RunRequest, String> {
        let mut seccomp = true;
        for opt in &self.security_opt {
            match opt.as_str() {
                "seccomp=unconfined" | "seccomp:unconfined" => seccomp = false,
                other => {
                    return Err(format!(
                    "--security-opt {other:?} is not supported: the only option so far is seccomp=unconfined"
                ))
                }
            }
        }
        let mut args = self.args.into_iter();
        let source = match self.rootfs {
            Some(dir) => Source::Rootfs(dir),
            None => Source::Image {
                name: args.next().ok_or("rocker run needs an image, or --rootfs DIR and a command")?,
                pull: self.pull,
            },
        };
        let command: Vec<String> = args.collect();
        if matches!(source, Source::Rootfs(_)) && command.is_empty() {
            return Err("rocker run --rootfs needs a command to run".into());
        }
        Ok(RunRequest {
            source,
            command,
            entrypoint: self.entrypoint,
            tty: self.tty,
            interactive: self.interactive,
            env: self.env,
            workdir: self.workdir,
            hostname: self.hostname,
            limits: Limits {
                cpus: self.cpus,
                memory: self.memory,
                pids_limit: self.pids_limit,
                cpu_shares: self.cpu_shares,
                cpuset_cpus: self.cpuset_cpus,
            },
            cgroup_parent: self.cgroup_parent,
            seccomp,
            read_only: self.read_only,
            user: self.user,
            cap_add: self.cap_add,
            cap_drop: self.cap_drop,
        })
    }
}

/// Whether `cmd` has a `--long` option that takes a value.
fn takes_value(cmd: &clap::Command, long: &str) -> bool {
    cmd.get_arguments().any(|a| a.get_long() == Some(long) && a.get_action().takes_values())
}

/// Rewrites the course's Go-style flags (`-rootfs=/tmp/busybox`, `-cpus=1`, `-memory 64`)
/// into clap's `--rootfs=...`, for the options before the command. Short clusters such as
/// `-it` and everything from the command on are left alone.
pub fn normalize(args: Vec<String>) -> Vec<String> {
    let cmd = Cli::command();
    let mut out = Vec::with_capacity(args.len());
    let mut iter = args.into_iter();
    out.extend(iter.next()); // program name
                             // Global options (`--root DIR`) may come before the subcommand.
    let mut sub_name = None;
    while let Some(arg) = iter.next() {
        if !arg.starts_with('-') {
            sub_name = Some(arg);
            break;
        }
        let value =
            arg.strip_prefix("--").is_some_and(|l| takes_value(&cmd, l)).then(|| iter.next()).flatten();
        out.push(arg);
        out.extend(value);
    }
    let Some(sub_name) = sub_name else { return out };
    out.push(sub_name.clone());
    let Some(sub) = cmd.find_subcommand(&sub_name) else {
        out.extend(iter);
        return out;
    };
    let is_long = |name: &str| sub.get_arguments().any(|a| a.get_long() == Some(name));
    let short_takes_value =
        |c: char| sub.get_arguments().any(|a| a.get_short() == Some(c) && a.get_action().takes_values());
    while let Some(arg) = iter.next() {
        if arg == "--" || !arg.starts_with('-') || arg == "-" {
            out.push(arg);
            break;
        }
        let (dashes, body) = if let Some(b) = arg.strip_prefix("--") { (2, b) } else { (1, &arg[1..]) };
        let inline = body.split_once('=');
        let (name, has_value) = inline.map_or((body, false), |(n, _)| (n, true));
        let long = dashes == 2 || (name.len() > 1 && is_long(name));
        let needs_next = if long {
            takes_value(sub, name) && !has_value
        } else {
            // A short cluster like -it or -m: a value-taking last letter takes the next arg.
            body.chars().all(|c| c.is_ascii_alphabetic())
                && body.chars().last().is_some_and(short_takes_value)
        };
        match (long, dashes, inline) {
            (true, 1, _) => out.push(format!("-{arg}")),
            // clap mis-parses the options after a short `-m=64`; `-m 64` means the same.
            (false, _, Some((short, value))) if short.len() == 1 => {
                out.push(format!("-{short}"));
                out.push(value.to_string());
            }
            _ => out.push(arg),
        }
        if needs_next {
            out.extend(iter.next());
        }
    }
    out.extend(iter);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(args: &[&str]) -> Vec<String> {
        normalize(args.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn course_flags_become_long_flags() {
        assert_eq!(
            norm(&["rocker", "run", "-it", "-cpus=1", "-rootfs=/tmp/busybox", "/bin/sh"]),
            ["rocker", "run", "-it", "--cpus=1", "--rootfs=/tmp/busybox", "/bin/sh"]
        );
    }

    #[test]
    fn values_and_the_command_are_left_alone() {
        assert_eq!(
            norm(&["rocker", "run", "-m", "64", "-rootfs", "/r", "/bin/sh", "-c", "-rootfs=x"]),
            ["rocker", "run", "-m", "64", "--rootfs", "/r", "/bin/sh", "-c", "-rootfs=x"]
        );
    }

    #[test]
    fn docker_spellings_parse() {
        let cli = Cli::try_parse_from(norm(&[
            "rocker",
            "run",
            "-it",
            "--rootfs",
            "/r",
            "--cpus",
            "0.5",
            "-m",
            "64m",
            "--pids-limit",
            "50",
            "--hostname",
            "box",
            "/bin/sh",
        ]))
        .unwrap();
        let Command::Run(r) = cli.command else { panic!("not run") };
        assert!(r.interactive && r.tty);
        assert_eq!(r.cpus, Some(0.5));
        assert_eq!(r.memory, Some(64 << 20));
        assert_eq!(r.pids_limit, Some(50));
        assert_eq!(r.hostname.as_deref(), Some("box"));
        assert_eq!(r.args, ["/bin/sh"]);
    }

    #[test]
    fn global_options_before_the_subcommand() {
        assert_eq!(
            norm(&["rocker", "--root", "/x", "run", "-rootfs=/r", "sh"]),
            ["rocker", "--root", "/x", "run", "--rootfs=/r", "sh"]
        );
        let cli =
            Cli::try_parse_from(norm(&["rocker", "--root=/x", "run", "busybox", "echo", "hi"])).unwrap();
        assert_eq!(cli.root, PathBuf::from("/x"));
        let Command::Run(r) = cli.command else { panic!("not run") };
        let req = r.into_request().unwrap();
        assert!(matches!(req.source, Source::Image { ref name, .. } if name == "busybox"));
        assert_eq!(req.command, ["echo", "hi"]);
    }

    #[test]
    fn course_memory_is_mebibytes() {
        let cli = Cli::try_parse_from(norm(&["rocker", "run", "-m=64", "-rootfs=/r", "sh"])).unwrap();
        let Command::Run(r) = cli.command else { panic!("not run") };
        assert_eq!(r.memory, Some(64 << 20));
    }
}
