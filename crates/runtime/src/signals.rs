//! Signals sent to a foreground runtime (`rocker run`, `rocker-runtime run`), taken as data (signalfd) so that they can be forwarded to
//! the container's PID 1 and multiplexed with the terminal and the child's exit.

use std::os::fd::{AsFd, BorrowedFd};

use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use crate::error::{Error, Result};

/// Forwarded to the container, as Docker's sig-proxy does.
const FORWARDED: [Signal; 8] = [
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGTERM,
    Signal::SIGALRM,
    Signal::SIGCONT,
];

pub struct Signals {
    fd: SignalFd,
}

/// Blocks the forwarded signals, SIGCHLD and SIGWINCH, and returns a descriptor that
/// reads them. Called before the container is cloned, so none is lost in between; the
/// container's init clears the inherited mask before it execs.
pub fn block() -> Result<Signals> {
    let mut mask = SigSet::empty();
    for s in FORWARDED.iter().chain(&[Signal::SIGCHLD, Signal::SIGWINCH]) {
        mask.add(*s);
    }
    mask.thread_block().map_err(Error::sys("blocking signals"))?;
    let fd = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .map_err(Error::sys("signalfd"))?;
    Ok(Signals { fd })
}

impl Signals {
    /// The next pending signal, if any.
    pub fn next(&self) -> Option<Signal> {
        match self.fd.read_signal() {
            Ok(Some(info)) => Signal::try_from(info.ssi_signo as i32).ok(),
            _ => None,
        }
    }
}

impl AsFd for Signals {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
