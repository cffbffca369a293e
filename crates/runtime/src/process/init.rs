//! The container's init: runs in the cloned child, in its new namespaces, and ends in the
//! user's process (or in `_exit` after reporting what failed). Each step is a small named
//! function; the comments say why a step sits where it does.

use std::convert::Infallible;
use std::fmt::Display;
use std::os::fd::AsRawFd;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use nix::fcntl::OFlag;
use nix::sched::CloneFlags;
use nix::sys::signal::{signal, sigprocmask, SigHandler, SigSet, SigmaskHow, Signal};
use nix::sys::stat::{umask, Mode};
use nix::unistd::{chdir, sethostname};
use oci_spec::runtime::Spec;

use super::channel::{Channel, Message};
use super::{exec, StartSignal};
use crate::cgroups::Manager;
use crate::{namespaces, rootfs, security, tty};

/// Entry point of the child after clone; `join` is the cgroup to move into when the clone
/// could not place the child there. Never returns.
pub fn run(
    channel: Channel,
    spec: &Spec,
    rootfs: &Path,
    flags: CloneFlags,
    join: Option<&dyn Manager>,
    start: &StartSignal,
) -> ! {
    // A panic must not unwind into the runtime's code, which this copy of the process
    // shares up to the clone.
    let failure = match catch_unwind(AssertUnwindSafe(|| init(&channel, spec, rootfs, flags, join, start))) {
        Ok(Ok(never)) => match never {},
        Ok(Err(failure)) => failure,
        Err(_) => Message::InitFailed {
            step: "setting up the container".into(),
            message: "the init panicked".into(),
        },
    };
    // The parent learns why from the message; if even that fails it sees end-of-file.
    let _ = channel.send(&failure);
    exit_now(1)
}

fn init(
    channel: &Channel,
    spec: &Spec,
    rootfs: &Path,
    flags: CloneFlags,
    join: Option<&dyn Manager>,
    start: &StartSignal,
) -> Result<Infallible, Message> {
    if let StartSignal::Channel = start {
        // Die with the runtime: a foreground run that is killed takes its container along
        // instead of leaving it running unsupervised.
        step("setting the parent-death signal", nix::sys::prctl::set_pdeathsig(Signal::SIGKILL))?;
    }
    if let Some(cgroup) = join {
        // Before anything else, so all of the container's work is accounted and limited there.
        step("joining the container's cgroup", cgroup.join_self())?;
    }
    // Device nodes and directories get exactly the modes the spec asks for.
    umask(Mode::empty());
    let process = spec.process().as_ref().expect("launch checked that the spec has a process");

    step("setting up the root filesystem", rootfs::setup(spec, rootfs))?;
    if flags.contains(CloneFlags::CLONE_NEWNET) {
        step("bringing up the loopback interface", namespaces::loopback_up())?;
    }
    if let Some(name) = spec.hostname() {
        step(&format!("setting the hostname to {name:?}"), sethostname(name))?;
    }
    // After pivot_root, so /dev/ptmx is the container's own devpts instance.
    let pty = match process.terminal() {
        Some(true) => {
            Some(step("opening the terminal (/dev/ptmx)", tty::open_pty(process.console_size().as_ref()))?)
        }
        _ => None,
    };

    let env = process.env().clone().unwrap_or_default();
    let args = process.args().as_deref().expect("launch checked that args are present");
    let program = exec::resolve(args, &env)
        .map_err(|failure| Message::ExecFailed { program: args[0].clone(), failure })?;

    let master = pty.as_ref().map(|p| p.master.as_raw_fd());
    step("reporting readiness", channel.send_with_fd(&Message::Ready, master))?;
    wait_for_start(channel, start);

    // A session of its own: the caller's terminal must not signal the container directly
    // (the runtime's caller forwards signals), and a pty can only become the controlling
    // terminal of a session leader.
    step("starting a new session", nix::unistd::setsid())?;
    if let Some(pty) = pty {
        step("attaching the terminal", pty.attach_as_stdio())?;
    }
    let caps = process.capabilities().as_ref();
    if let Some(c) = caps {
        step("dropping capabilities from the bounding set", security::drop_bounding(c))?;
    }
    let user = process.user();
    step(&format!("switching to uid {}, gid {}", user.uid(), user.gid()), security::switch_user(user))?;
    // As the new user, so that a directory it may not enter is an error, as with runc.
    let cwd = process.cwd();
    step(&format!("changing to the working directory {}", cwd.display()), chdir(cwd))?;
    if let Some(c) = caps {
        step("setting capabilities", security::apply_after_setuid(c))?;
    }
    if process.no_new_privileges() == Some(true) {
        step("setting no_new_privs", nix::sys::prctl::set_no_new_privs())?;
    }
    umask(Mode::from_bits_truncate(process.user().umask().unwrap_or(0o022)));
    reset_signals();
    // Last: no descriptor of the runtime's caller may reach the container (CVE-2024-21626).
    step("closing inherited file descriptors", exec::close_inherited_fds())?;
    let failure = exec::exec(&program, args, &env);
    Err(Message::ExecFailed { program: args[0].clone(), failure })
}

/// Blocks until the runtime says start: a `Start` message, or (create/start) a reader on
/// the exec FIFO. The FIFO is reached through the descriptor inherited from the runtime,
/// since its path is outside the container's root. Anything else: leave without running
/// user code.
fn wait_for_start(channel: &Channel, start: &StartSignal) {
    let started = match start {
        StartSignal::Channel => matches!(channel.recv(), Ok(Some((Message::Start, _)))),
        StartSignal::Fifo(fifo) => {
            let path = format!("/proc/self/fd/{}", fifo.as_raw_fd());
            nix::fcntl::open(path.as_str(), OFlag::O_WRONLY | OFlag::O_CLOEXEC, Mode::empty())
                .and_then(|f| nix::unistd::write(&f, b"0"))
                .is_ok()
        }
    };
    if !started {
        exit_now(1);
    }
}

fn step<T, E: Display>(what: &str, r: Result<T, E>) -> Result<T, Message> {
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

/// Ends the init without running exit handlers or flushing buffers copied from the runtime.
fn exit_now(code: i32) -> ! {
    // SAFETY: _exit only ends the process; nothing of ours runs after it.
    unsafe { libc::_exit(code) }
}
