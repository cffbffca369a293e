//! The caller's terminal while a foreground container with a terminal runs: raw mode (restored however we
//! leave), the window size, and the relay between it and the container's pty.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use crate::tty::set_window_size;
use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{PollFd, PollFlags};
use nix::pty::Winsize;
use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg, Termios};

use crate::error::{Error, Result};

nix::ioctl_read_bad!(get_winsize, libc::TIOCGWINSZ, Winsize);

/// The terminal size of `fd` as (rows, columns), if it is a terminal.
pub fn size(fd: BorrowedFd) -> Option<(u16, u16)> {
    let mut ws = Winsize { ws_row: 0, ws_col: 0, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCGWINSZ writes one Winsize through a valid pointer.
    unsafe { get_winsize(fd.as_raw_fd(), &mut ws) }.ok()?;
    Some((ws.ws_row, ws.ws_col))
}

/// The caller's terminal in raw mode, so keys reach the container unchanged; restored on drop.
pub struct RawMode<'a> {
    fd: BorrowedFd<'a>,
    saved: Termios,
}

impl<'a> RawMode<'a> {
    pub fn enable(fd: BorrowedFd<'a>) -> Result<RawMode<'a>> {
        let saved = tcgetattr(fd).map_err(Error::sys("reading the terminal's mode"))?;
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        tcsetattr(fd, SetArg::TCSANOW, &raw).map_err(Error::sys("setting the terminal to raw mode"))?;
        Ok(RawMode { fd, saved })
    }
}

impl Drop for RawMode<'_> {
    fn drop(&mut self) {
        let _ = tcsetattr(self.fd, SetArg::TCSANOW, &self.saved);
    }
}

/// How much typed-ahead input is held for the container before stdin is left unread.
const PENDING_LIMIT: usize = 64 * 1024;

/// Copies the container's pty to our stdout and, with `-i`, our stdin to the pty. The pty is
/// non-blocking and input waits in a bounded buffer, so a container that doesn't read its
/// input never blocks rocker (which must keep forwarding signals).
pub struct PtyRelay<'a> {
    pty: OwnedFd,
    stdin: Option<BorrowedFd<'a>>,
    pending: Vec<u8>,
}

impl<'a> PtyRelay<'a> {
    pub fn new(pty: OwnedFd, stdin: Option<BorrowedFd<'a>>) -> Result<PtyRelay<'a>> {
        let flags = fcntl(&pty, FcntlArg::F_GETFL).map_err(Error::sys("reading the pty's flags"))?;
        fcntl(&pty, FcntlArg::F_SETFL(OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK))
            .map_err(Error::sys("making the pty non-blocking"))?;
        Ok(PtyRelay { pty, stdin, pending: Vec::new() })
    }

    /// Gives the pty the caller's window size (on start and on SIGWINCH).
    pub fn resize_from(&self, terminal: BorrowedFd) {
        if let Some((rows, cols)) = size(terminal) {
            // A failure only leaves the old size.
            let _ = set_window_size(self.pty.as_fd(), rows, cols);
        }
    }

    /// The descriptors to poll: the pty, and stdin while there is room for its input.
    pub fn poll_fds(&self) -> Vec<PollFd<'_>> {
        let mut pty_events = PollFlags::POLLIN;
        if !self.pending.is_empty() {
            pty_events |= PollFlags::POLLOUT;
        }
        let mut fds = vec![PollFd::new(self.pty.as_fd(), pty_events)];
        if let Some(stdin) = self.stdin.filter(|_| self.pending.len() < PENDING_LIMIT) {
            fds.push(PollFd::new(stdin, PollFlags::POLLIN));
        }
        fds
    }

    /// Moves what `poll_fds` reported ready (`ready[i]` for its i-th descriptor). Returns
    /// false once the container's side of the pty has closed and its output is drained.
    pub fn relay(&mut self, ready: &[PollFlags]) -> bool {
        let pty_ready = ready.first().copied().unwrap_or(PollFlags::empty());
        if pty_ready.contains(PollFlags::POLLOUT) {
            match nix::unistd::write(&self.pty, &self.pending) {
                Ok(n) => drop(self.pending.drain(..n)),
                Err(Errno::EAGAIN) | Err(Errno::EINTR) => {}
                // The container's side is gone; its output still drains below.
                Err(_) => self.pending.clear(),
            }
        }
        if ready.get(1).is_some_and(|r| !r.is_empty()) {
            if let Some(stdin) = self.stdin {
                let mut buf = [0u8; 16 * 1024];
                match nix::unistd::read(stdin, &mut buf) {
                    Ok(0) | Err(Errno::EIO) | Err(Errno::EBADF) => self.stdin = None,
                    Ok(n) => self.pending.extend_from_slice(&buf[..n]),
                    Err(_) => {}
                }
            }
        }
        if pty_ready.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR) {
            return self.drain_output();
        }
        true
    }

    /// Copies the pty's available output to stdout; false at its end (EIO once the
    /// container's side has closed).
    fn drain_output(&self) -> bool {
        let stdout = io::stdout();
        let mut buf = [0u8; 16 * 1024];
        loop {
            let n = match nix::unistd::read(&self.pty, &mut buf) {
                Ok(0) | Err(Errno::EIO) => return false,
                Ok(n) => n,
                Err(Errno::EINTR) => continue,
                Err(_) => return true,
            };
            // Output the caller can't take (a closed pipe) is dropped, not fatal.
            let _ = write_all(stdout.as_fd(), &buf[..n]);
        }
    }
}

fn write_all(fd: BorrowedFd, mut data: &[u8]) -> nix::Result<()> {
    while !data.is_empty() {
        match nix::unistd::write(fd, data) {
            Ok(n) => data = &data[n..],
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
