//! The caller's terminal while a container with `-t` runs: raw mode (restored however we
//! leave), the window size, and copying bytes between it and the container's pty.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use nix::errno::Errno;
use nix::pty::Winsize;
use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg, Termios};

use crate::error::EngineError;

nix::ioctl_read_bad!(get_winsize, libc::TIOCGWINSZ, Winsize);
nix::ioctl_write_ptr_bad!(set_winsize, libc::TIOCSWINSZ, Winsize);

/// The terminal size of `fd` as (rows, columns), if it is a terminal.
pub fn size(fd: BorrowedFd) -> Option<(u16, u16)> {
    let mut ws = Winsize { ws_row: 0, ws_col: 0, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCGWINSZ writes one Winsize through a valid pointer.
    unsafe { get_winsize(fd.as_raw_fd(), &mut ws) }.ok()?;
    Some((ws.ws_row, ws.ws_col))
}

/// Gives the container's pty the caller's current window size.
pub fn copy_size(from: BorrowedFd, pty: BorrowedFd) {
    if let Some((rows, cols)) = size(from) {
        let ws = Winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
        // SAFETY: TIOCSWINSZ reads one Winsize through a valid pointer. A failure only
        // leaves the old size, so it is ignored.
        let _ = unsafe { set_winsize(pty.as_raw_fd(), &ws) };
    }
}

/// The caller's terminal in raw mode, so keys reach the container unchanged; restored on drop.
pub struct RawMode<'a> {
    fd: BorrowedFd<'a>,
    saved: Termios,
}

impl<'a> RawMode<'a> {
    pub fn enable(fd: BorrowedFd<'a>) -> Result<RawMode<'a>, EngineError> {
        let saved = tcgetattr(fd).map_err(EngineError::sys("reading the terminal's mode"))?;
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        tcsetattr(fd, SetArg::TCSANOW, &raw).map_err(EngineError::sys("setting the terminal to raw mode"))?;
        Ok(RawMode { fd, saved })
    }
}

impl Drop for RawMode<'_> {
    fn drop(&mut self) {
        let _ = tcsetattr(self.fd, SetArg::TCSANOW, &self.saved);
    }
}

/// Moves what is readable now from `from` to `to`. Ok(false) at end of input (EOF, or EIO
/// from a pty master whose container side has closed).
pub fn pump(from: BorrowedFd, to: impl AsFd) -> io::Result<bool> {
    let mut buf = [0u8; 16 * 1024];
    let n = loop {
        match nix::unistd::read(from, &mut buf) {
            Ok(n) => break n,
            Err(Errno::EINTR) => continue,
            Err(Errno::EAGAIN) => return Ok(true),
            Err(Errno::EIO) => return Ok(false),
            Err(e) => return Err(e.into()),
        }
    };
    if n == 0 {
        return Ok(false);
    }
    let mut rest = &buf[..n];
    while !rest.is_empty() {
        match nix::unistd::write(&to, rest) {
            Ok(w) => rest = &rest[w..],
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(true)
}
