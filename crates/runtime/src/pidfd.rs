//! Waiting for a process that is not our child: a created container's init, whose parent
//! (the `create` process) is gone. Its pidfd becomes readable when it exits, so `start` and
//! `delete` sleep in `poll` instead of polling /proc.

use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::Duration;

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

pub struct PidFd(OwnedFd);

impl PidFd {
    /// ESRCH: `pid` has exited and been reaped. The caller checks that the pid still names
    /// the process it means (pids are reused) once it has the descriptor.
    pub fn open(pid: i32) -> Result<PidFd, Errno> {
        // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1; no
        // memory is passed.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        let fd = Errno::result(fd)? as i32;
        // SAFETY: the kernel just returned this descriptor to us; nothing else owns it.
        Ok(PidFd(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// Whether the process exits within `timeout`.
    pub fn wait_exit(&self, timeout: Duration) -> Result<bool, Errno> {
        let timeout = PollTimeout::try_from(timeout).unwrap_or(PollTimeout::MAX);
        loop {
            match poll(&mut [PollFd::new(self.0.as_fd(), PollFlags::POLLIN)], timeout) {
                Err(Errno::EINTR) => continue,
                r => return r.map(|n| n > 0),
            }
        }
    }
}

impl AsFd for PidFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}
