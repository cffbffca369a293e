//! The last stretch shared by a container's init and a process exec'd into a running
//! container: from "ready" to the user's program, in an order the kernel accepts and whose
//! comments say why.

use std::convert::Infallible;
use std::ffi::CString;
use std::fmt::Display;
use std::io::Write;

use libseccomp::ScmpFilterContext;
use nix::sys::resource::{setrlimit, Resource};
use nix::sys::signal::{signal, sigprocmask, SigHandler, SigSet, SigmaskHow, Signal};
use nix::sys::stat::{umask, Mode};
use nix::unistd::chdir;
use oci_spec::runtime::{LinuxSeccomp, PosixRlimitType, Process};

use std::os::fd::{AsRawFd, OwnedFd};
use std::panic::{catch_unwind, AssertUnwindSafe};

use nix::fcntl::OFlag;

use super::channel::{Channel, Message};
use super::{exec, StartSignal};
use crate::security;
use crate::tty::{self, Pty};

/// Runs a cloned child's work, which ends in an exec or in a failure; the failure (a panic
/// included) goes to the runtime over the channel and the child exits. Never returns.
pub fn run_child(channel: &Channel, work: impl FnOnce() -> Result<Infallible, Message>) -> ! {
    // A panic must not unwind into the runtime's code, which this copy of the process
    // shares up to the clone.
    let failure = match catch_unwind(AssertUnwindSafe(|| {
        // CVE-2019-5736: until its execve, this process is the runtime's own binary living in
        // the container's PID namespace. Non-dumpable, its /proc/PID/exe cannot be opened by
        // the container's processes (that needs CAP_SYS_PTRACE), so they cannot reach the
        // binary to overwrite it. execve makes the user's program dumpable again.
        step("making the process non-dumpable", nix::sys::prctl::set_dumpable(false))?;
        work()
    })) {
        Ok(Ok(never)) => match never {},
        Ok(Err(failure)) => failure,
        Err(_) => {
            Message::InitFailed { step: "setting up the process".into(), message: "it panicked".into() }
        }
    };
    // The parent learns why from the message; if even that fails it sees end-of-file.
    let _ = channel.send(&failure);
    exit_now(1)
}

/// Blocks until the runtime says start: a `Start` message, or (create/start) a reader on
/// the exec FIFO. The FIFO is reached through the descriptor inherited from the runtime,
/// since its path is outside the container's root. Anything else: leave without running
/// user code.
///
/// For create/start, returns the FIFO open for writing. It stays open until the exec closes
/// it (close-on-exec) or the process exits, so `start`, which reads it to its end, waits for
/// the outcome; a failure on the way is written to it first ([`report_to_fifo`]).
pub fn wait_for_start(channel: &Channel, start: &StartSignal) -> Option<OwnedFd> {
    match start {
        StartSignal::Channel => match channel.recv() {
            Ok(Some((Message::Start, _))) => None,
            _ => exit_now(1),
        },
        StartSignal::Fifo(fifo) => {
            let path = format!("/proc/self/fd/{}", fifo.as_raw_fd());
            match nix::fcntl::open(path.as_str(), OFlag::O_WRONLY | OFlag::O_CLOEXEC, Mode::empty()) {
                Ok(writer) if nix::unistd::write(&writer, b"0").is_ok() => Some(writer),
                _ => exit_now(1),
            }
        }
    }
}

/// Tells `start` why the user's process did not start: the failure as the channel carries
/// it, after the FIFO's first byte. (Its runtime, which created the container, is gone.)
pub fn report_to_fifo(fifo: OwnedFd, failure: &Message) {
    let bytes = serde_json::to_vec(failure).expect("channel messages always serialize");
    // If `start` has gone too, no one is left to tell.
    let _ = std::fs::File::from(fifo).write_all(&bytes);
}

/// What `prepare` readies for `become_process`.
pub struct Prepared {
    pub pty: Option<Pty>,
    preserve_fds: u32,
    program: CString,
    seccomp: Option<ScmpFilterContext>,
}

/// Opens the process's terminal if it has one (in the container's devpts: the caller is in
/// the container's mount namespace by now), finds its program on the container's PATH and
/// compiles its seccomp filter: whatever can fail does so before the container is ready.
pub fn prepare(
    process: &Process,
    seccomp: Option<&LinuxSeccomp>,
    preserve_fds: u32,
) -> Result<Prepared, Message> {
    let pty = match process.terminal() {
        Some(true) => {
            Some(step("opening the terminal (/dev/ptmx)", tty::open_pty(process.console_size().as_ref()))?)
        }
        _ => None,
    };
    let env = process.env().clone().unwrap_or_default();
    let args = process.args().as_deref().unwrap_or_default();
    let program = exec::resolve(args, &env)
        .map_err(|failure| Message::ExecFailed { program: args[0].clone(), failure })?;
    let seccomp = match seccomp {
        Some(s) => Some(step("compiling the seccomp filter", security::compile_seccomp(s))?),
        None => None,
    };
    Ok(Prepared { pty, preserve_fds, program, seccomp })
}

/// The process, set up but for the exec itself (`finalize`'s result).
pub struct Finalized {
    program: CString,
    /// The pty master, to hand to the runtime with Ready.
    pub pty_master: Option<OwnedFd>,
    /// A seccomp filter that waits for the exec (with no_new_privs).
    late_seccomp: Option<ScmpFilterContext>,
}

/// Becomes `process` up to its exec: session and terminal, limits, capabilities, user,
/// working directory. Done before the process reports ready, as runc does, so that a failure
/// here (a working directory the user may not enter, an rlimit we may not raise) fails
/// `create`, where the caller hears of it, not `start`.
pub fn finalize(process: &Process, prepared: Prepared) -> Result<Finalized, Message> {
    let Prepared { pty, preserve_fds, program, seccomp } = prepared;
    let no_new_privs = process.no_new_privileges() == Some(true);
    // A session of its own: the caller's terminal must not signal the container directly
    // (the runtime's caller forwards signals), and a pty can only become the controlling
    // terminal of a session leader.
    step("starting a new session", nix::unistd::setsid())?;
    let pty_master = match pty {
        Some(pty) => Some(step("attaching the terminal", pty.attach_as_stdio())?),
        None => None,
    };
    set_rlimits(process)?;
    // While the capabilities a real-time class or a higher priority needs are still there.
    if let Some(s) = process.scheduler() {
        step(&format!("setting the scheduler ({:?})", s.policy()), security::set_scheduler(s))?;
    }
    if let Some(p) = process.io_priority() {
        step(
            &format!("setting the I/O priority ({:?} {})", p.class(), p.priority()),
            security::set_io_priority(p),
        )?;
    }
    if let Some(adj) = process.oom_score_adj() {
        // Lowering it needs CAP_SYS_RESOURCE, which the capability steps below may drop.
        step(
            &format!("setting oom_score_adj to {adj}"),
            std::fs::write("/proc/self/oom_score_adj", adj.to_string()),
        )?;
    }
    // Without no_new_privs, loading a filter needs CAP_SYS_ADMIN: before capabilities go.
    // With it, as late as possible, so the filter constrains the user's program, not us.
    let late_seccomp = match (seccomp, no_new_privs) {
        (Some(filter), false) => {
            step("loading the seccomp filter", security::load_seccomp(&filter))?;
            None
        }
        (filter, _) => filter,
    };
    let caps = process.capabilities().as_ref();
    if let Some(c) = caps {
        step("dropping capabilities from the bounding set", security::drop_bounding(c))?;
    }
    let user = process.user();
    let cwd = process.cwd();
    let cwd_step = format!("changing to the working directory {}", cwd.display());
    // As root first, as runc does: a directory only root may enter (the image's /root with
    // a non-root user) is still the process's working directory; only if root is refused
    // (a directory root cannot enter on an NFS-like mount) is it tried again as the user.
    let early = chdir(cwd);
    step(&format!("switching to uid {}, gid {}", user.uid(), user.gid()), security::switch_user(user))?;
    if let Err(e) = early {
        step(&cwd_step, if e == nix::errno::Errno::EACCES { chdir(cwd) } else { Err(e) })?;
    }
    // CVE-2024-21626: a cwd like /proc/self/fd/N through a descriptor inherited from the
    // runtime's caller lands outside the container's root; the kernel then reports the
    // path as unreachable, which getcwd refuses.
    step(
        &format!("checking that the working directory {} is inside the container", cwd.display()),
        nix::unistd::getcwd(),
    )?;
    if let Some(c) = caps {
        step("setting capabilities", security::apply_after_setuid(c))?;
    }
    if no_new_privs {
        step("setting no_new_privs", nix::sys::prctl::set_no_new_privs())?;
    }
    umask(Mode::from_bits_truncate(user.umask().unwrap_or(0o022)));
    reset_signals();
    // No descriptor of the runtime's caller may reach the container (CVE-2024-21626).
    step("closing inherited file descriptors", exec::close_inherited_fds(3 + preserve_fds))?;
    Ok(Finalized { program, pty_master, late_seccomp })
}

/// The exec, once started. Returns only the reason it failed.
pub fn exec_process(process: &Process, finalized: Finalized) -> Result<Infallible, Message> {
    let Finalized { program, pty_master, late_seccomp } = finalized;
    drop(pty_master);
    if let Some(filter) = &late_seccomp {
        step("loading the seccomp filter", security::load_seccomp(filter))?;
    }
    let env = process.env().clone().unwrap_or_default();
    let args = process.args().as_deref().unwrap_or_default();
    let failure = exec::exec(&program, args, &env);
    Err(Message::ExecFailed { program: args[0].clone(), failure })
}

/// The spec's rlimits. Raising a hard limit needs CAP_SYS_RESOURCE, which the runtime may
/// not have itself (as on hosts where root lacks it): the error names the limit.
fn set_rlimits(process: &Process) -> Result<(), Message> {
    for r in process.rlimits().as_deref().unwrap_or_default() {
        let (name, resource) = rlimit_resource(r.typ());
        step(
            &format!(
                "setting {name} to soft {} / hard {} (raising a hard limit needs CAP_SYS_RESOURCE)",
                r.soft(),
                r.hard()
            ),
            setrlimit(resource, r.soft(), r.hard()),
        )?;
    }
    Ok(())
}

fn rlimit_resource(t: PosixRlimitType) -> (&'static str, Resource) {
    match t {
        PosixRlimitType::RlimitCpu => ("RLIMIT_CPU", Resource::RLIMIT_CPU),
        PosixRlimitType::RlimitFsize => ("RLIMIT_FSIZE", Resource::RLIMIT_FSIZE),
        PosixRlimitType::RlimitData => ("RLIMIT_DATA", Resource::RLIMIT_DATA),
        PosixRlimitType::RlimitStack => ("RLIMIT_STACK", Resource::RLIMIT_STACK),
        PosixRlimitType::RlimitCore => ("RLIMIT_CORE", Resource::RLIMIT_CORE),
        PosixRlimitType::RlimitRss => ("RLIMIT_RSS", Resource::RLIMIT_RSS),
        PosixRlimitType::RlimitNproc => ("RLIMIT_NPROC", Resource::RLIMIT_NPROC),
        PosixRlimitType::RlimitNofile => ("RLIMIT_NOFILE", Resource::RLIMIT_NOFILE),
        PosixRlimitType::RlimitMemlock => ("RLIMIT_MEMLOCK", Resource::RLIMIT_MEMLOCK),
        PosixRlimitType::RlimitAs => ("RLIMIT_AS", Resource::RLIMIT_AS),
        PosixRlimitType::RlimitLocks => ("RLIMIT_LOCKS", Resource::RLIMIT_LOCKS),
        PosixRlimitType::RlimitSigpending => ("RLIMIT_SIGPENDING", Resource::RLIMIT_SIGPENDING),
        PosixRlimitType::RlimitMsgqueue => ("RLIMIT_MSGQUEUE", Resource::RLIMIT_MSGQUEUE),
        PosixRlimitType::RlimitNice => ("RLIMIT_NICE", Resource::RLIMIT_NICE),
        PosixRlimitType::RlimitRtprio => ("RLIMIT_RTPRIO", Resource::RLIMIT_RTPRIO),
        PosixRlimitType::RlimitRttime => ("RLIMIT_RTTIME", Resource::RLIMIT_RTTIME),
    }
}

pub fn step<T, E: Display>(what: &str, r: Result<T, E>) -> Result<T, Message> {
    r.map_err(|e| Message::InitFailed { step: what.to_string(), message: e.to_string() })
}

/// The user's process starts with no blocked signals and default dispositions, whatever the
/// runtime had: the caller blocks signals to forward them, and Rust ignores SIGPIPE, and
/// both would survive execve.
fn reset_signals() {
    let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
    // SAFETY: installing SIG_DFL runs no handler code.
    let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) };
}

/// Ends the child without running exit handlers or flushing buffers copied from the runtime.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit only ends the process; nothing of ours runs after it.
    unsafe { libc::_exit(code) }
}
