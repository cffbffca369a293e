//! The container's terminal: a pty from the container's own devpts instance.
//!
//! The init opens `/dev/ptmx` after pivot_root, so the pair belongs to the container's
//! devpts (newinstance), not the host's. The master goes to the runtime over the channel
//! (runc's console-socket model); the slave becomes the process's controlling terminal.

use std::os::fd::{AsRawFd, OwnedFd};

use nix::fcntl::{open, OFlag};
use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt, Winsize};
use nix::sys::stat::Mode;
use nix::unistd::{dup2_stderr, dup2_stdin, dup2_stdout};
use oci_spec::runtime::Box as ConsoleSize;

pub struct Pty {
    pub master: OwnedFd,
    slave: OwnedFd,
}

nix::ioctl_write_ptr_bad!(set_winsize, libc::TIOCSWINSZ, Winsize);

pub fn open_pty(size: Option<&ConsoleSize>) -> nix::Result<Pty> {
    let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)?;
    grantpt(&master)?;
    unlockpt(&master)?;
    let name = ptsname_r(&master)?;
    let slave = open(name.as_str(), OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC, Mode::empty())?;
    let master: OwnedFd = master.into();
    if let Some(size) = size {
        let ws =
            Winsize { ws_row: size.height() as u16, ws_col: size.width() as u16, ws_xpixel: 0, ws_ypixel: 0 };
        // SAFETY: TIOCSWINSZ reads a Winsize from a valid pointer.
        unsafe { set_winsize(slave.as_raw_fd(), &ws) }?;
    }
    Ok(Pty { master, slave })
}

impl Pty {
    /// Makes the slave the controlling terminal and stdin/stdout/stderr of this process,
    /// which must be a session leader about to exec the container's process.
    pub fn attach_as_stdio(self) -> nix::Result<()> {
        let Pty { master, slave } = self;
        drop(master);
        // SAFETY: TIOCSCTTY takes an integer argument; 0 means don't steal from another session.
        nix::errno::Errno::result(unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSCTTY, 0) })?;
        dup2_stdin(&slave)?;
        dup2_stdout(&slave)?;
        dup2_stderr(&slave)
    }
}
