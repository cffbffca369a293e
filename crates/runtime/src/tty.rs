//! The container's terminal: a pty from the container's own devpts instance.
//!
//! The init opens `/dev/ptmx` after pivot_root, so the pair belongs to the container's
//! devpts (newinstance), not the host's. The master goes to the runtime over the channel
//! (runc's console-socket model); the slave becomes the process's controlling terminal and
//! `/dev/console`, as the OCI spec asks.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::fcntl::{open, OFlag};
use nix::mount::{mount, MsFlags};
use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt, Winsize};
use nix::sys::stat::Mode;
use nix::unistd::{dup2_stderr, dup2_stdin, dup2_stdout};
use oci_spec::runtime::Box as ConsoleSize;

pub struct Pty {
    pub master: OwnedFd,
    slave: OwnedFd,
    /// The slave's path, /dev/pts/N.
    name: String,
}

nix::ioctl_write_ptr_bad!(ioctl_set_winsize, libc::TIOCSWINSZ, Winsize);

/// Sets the window size of a terminal (either side of a pty).
pub fn set_window_size(fd: BorrowedFd, rows: u16, cols: u16) -> nix::Result<()> {
    let ws = Winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCSWINSZ reads one Winsize through a valid pointer.
    unsafe { ioctl_set_winsize(fd.as_raw_fd(), &ws) }.map(drop)
}

pub fn open_pty(size: Option<&ConsoleSize>) -> nix::Result<Pty> {
    let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)?;
    grantpt(&master)?;
    unlockpt(&master)?;
    let name = ptsname_r(&master)?;
    let slave = open(name.as_str(), OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC, Mode::empty())?;
    let master: OwnedFd = master.into();
    if let Some(size) = size {
        set_window_size(slave.as_fd(), size.height() as u16, size.width() as u16)?;
    }
    Ok(Pty { master, slave, name })
}

/// Makes `/dev/console` the pty's slave (the container's init only; an exec'd process
/// leaves the console alone).
pub fn bind_console(pty: &Pty) -> nix::Result<()> {
    let slave = Path::new(&pty.name);
    let console = Path::new("/dev/console");
    match open(
        console,
        OFlag::O_CREAT | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o666),
    ) {
        Ok(fd) => drop(fd),
        // An existing device node (an image's /dev): the bind mount covers it all the same.
        Err(nix::Error::ENXIO) | Err(nix::Error::ENODEV) => {}
        Err(e) => return Err(e),
    }
    mount(Some(slave), console, None::<&str>, MsFlags::MS_BIND, None::<&str>)
}

impl Pty {
    /// Makes the slave the controlling terminal and stdin/stdout/stderr of this process,
    /// which must be a session leader; returns the master, for the runtime.
    pub fn attach_as_stdio(self) -> nix::Result<OwnedFd> {
        let Pty { master, slave, .. } = self;
        // SAFETY: TIOCSCTTY takes an integer argument; 0 means don't steal from another session.
        nix::errno::Errno::result(unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSCTTY, 0) })?;
        dup2_stdin(&slave)?;
        dup2_stdout(&slave)?;
        dup2_stderr(&slave)?;
        Ok(master)
    }
}
