//! Running a launched container in the foreground: start it, forward signals to its init,
//! relay its terminal, and return how it ended.

use std::os::fd::{AsFd, BorrowedFd};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal};
use nix::unistd::isatty;

use super::launch::{Container, Exit};
use crate::console::{PtyRelay, RawMode};
use crate::error::{Error, Result};
use crate::signals::Signals;

/// Starts `container` and waits for its init to exit. `signals` must have been blocked
/// before the launch, so none is lost. With a terminal, the pty is relayed to our stdout
/// and, when `stdin` is given, from it (the caller's terminal goes raw meanwhile).
pub fn run_in_foreground(
    mut container: Container,
    signals: &Signals,
    stdin: Option<BorrowedFd>,
) -> Result<Exit> {
    let stdout = std::io::stdout();
    let relay = match container.take_pty_master() {
        Some(pty) => Some(PtyRelay::new(pty, stdin)?),
        None => None,
    };
    let _raw = match (&relay, stdin.filter(|s| isatty(s).unwrap_or(false))) {
        (Some(_), Some(terminal)) => Some(RawMode::enable(terminal)?),
        _ => None,
    };
    container.start()?;
    supervise(&mut container, signals, relay, stdout.as_fd())?;
    container.finish()
}

/// Waits for the init to exit while forwarding signals and relaying the terminal; returns
/// once the init is reaped and its output drained.
fn supervise(
    container: &mut Container,
    signals: &Signals,
    mut relay: Option<PtyRelay>,
    terminal: BorrowedFd,
) -> Result<()> {
    loop {
        if container.try_wait()?.is_some() && relay.is_none() {
            return Ok(());
        }
        let mut fds = vec![PollFd::new(signals.as_fd(), PollFlags::POLLIN)];
        if let Some(r) = &relay {
            fds.extend(r.poll_fds());
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Err(Errno::EINTR) => continue,
            r => r.map_err(Error::sys("poll"))?,
        };
        let ready: Vec<PollFlags> = fds.iter().map(|f| f.revents().unwrap_or(PollFlags::empty())).collect();
        drop(fds);
        if !ready[0].is_empty() {
            while let Some(sig) = signals.next() {
                match sig {
                    // Reaped at the top of the loop.
                    Signal::SIGCHLD => {}
                    Signal::SIGWINCH => {
                        if let Some(r) = &relay {
                            r.resize_from(terminal);
                        }
                    }
                    // The init may be gone already; then there is nothing to forward to.
                    other => drop(kill(container.pid(), other)),
                }
            }
        }
        if let Some(r) = &mut relay {
            if !r.relay(&ready[1..]) {
                relay = None;
            }
        }
    }
}
