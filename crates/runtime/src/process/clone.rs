//! Cloning the runtime with `clone3` (fork semantics, no new stack): the container's init,
//! and the short-lived children that do what the runtime itself must not (`in_child`).
//!
//! We clone the running process instead of re-executing `/proc/self/exe` (see DESIGN.md):
//! the child keeps running our Rust code in its new namespaces. With fork semantics
//! (no stack given) the child continues on a copy of the parent's stack, so the call
//! returns twice like `fork`. That is only sound while the process is single-threaded,
//! which [`ensure_single_threaded`] checks.

use std::os::fd::{AsRawFd, BorrowedFd};

use nix::errno::Errno;
use nix::sched::CloneFlags;
use nix::unistd::Pid;

use crate::error::{Error, Result};

/// `struct clone_args` from `<linux/sched.h>` (the version 2 layout, with `cgroup`).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// `in_cgroup`, on both sides: the kernel already placed the child in the requested cgroup.
pub enum Cloned {
    Parent { child: Pid, in_cgroup: bool },
    Child { in_cgroup: bool },
}

/// Clones the calling process into new namespaces, and straight into `cgroup` (a cgroup v2
/// directory) when the kernel supports `CLONE_INTO_CGROUP`, so the child never runs outside it.
pub fn clone_child(flags: CloneFlags, cgroup: Option<BorrowedFd>) -> Result<Cloned> {
    ensure_single_threaded()?;
    let mut args =
        CloneArgs { flags: flags.bits() as u64, exit_signal: libc::SIGCHLD as u64, ..Default::default() };
    if let Some(fd) = cgroup {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = fd.as_raw_fd() as u64;
    }
    // SAFETY: clone3 without a stack behaves like fork: the child gets a copy of our address
    // space and returns here. The process is single-threaded (checked above), so no lock can
    // be held by a thread that does not exist in the child.
    let ret = unsafe {
        libc::syscall(libc::SYS_clone3, &args as *const CloneArgs, std::mem::size_of::<CloneArgs>())
    };
    match Errno::result(ret) {
        Ok(0) => Ok(Cloned::Child { in_cgroup: cgroup.is_some() }),
        Ok(pid) => Ok(Cloned::Parent { child: Pid::from_raw(pid as i32), in_cgroup: cgroup.is_some() }),
        // Older kernels (< 5.3) lack clone3, < 5.7 lack CLONE_INTO_CGROUP: clone without it;
        // the child then moves itself before it reports ready.
        Err(Errno::ENOSYS) | Err(Errno::E2BIG) | Err(Errno::EINVAL) => legacy_clone(flags),
        Err(e) => Err(Error::Sys { op: "clone3", source: e }),
    }
}

fn legacy_clone(flags: CloneFlags) -> Result<Cloned> {
    // SAFETY: as above; clone with a null stack has fork semantics.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone,
            flags.bits() as libc::c_ulong | libc::SIGCHLD as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    match Errno::result(ret).map_err(Error::sys("clone"))? {
        0 => Ok(Cloned::Child { in_cgroup: false }),
        pid => Ok(Cloned::Parent { child: Pid::from_raw(pid as i32), in_cgroup: false }),
    }
}

/// Runs `work` in a child process (for what must not change the runtime itself, such as
/// joining a mount namespace); its failure is reported as `op`'s.
pub fn in_child(op: &'static str, work: impl FnOnce() -> nix::Result<()>) -> Result<()> {
    use nix::sys::wait::{waitpid, WaitStatus};
    match clone_child(CloneFlags::empty(), None)? {
        Cloned::Child { .. } => {
            // As the init (user_process::run_child): never unwinding into the runtime's code,
            // and not dumpable, as it may join a namespace shared with containers.
            let _ = nix::sys::prctl::set_dumpable(false);
            let code = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)) {
                Ok(Ok(())) => 0,
                Ok(Err(e)) => e as i32,
                Err(_) => PANICKED,
            };
            super::user_process::exit_now(code)
        }
        Cloned::Parent { child, .. } => match waitpid(child, None) {
            Ok(WaitStatus::Exited(_, 0)) => Ok(()),
            Ok(WaitStatus::Exited(_, PANICKED)) => Err(Error::Child { op, why: "it panicked".into() }),
            Ok(WaitStatus::Exited(_, code)) => Err(Error::Sys { op, source: Errno::from_raw(code) }),
            Ok(other) => Err(Error::Child { op, why: format!("it ended as {other:?}") }),
            Err(e) => Err(Error::Sys { op, source: e }),
        },
    }
}

/// `in_child`'s exit code for a panic (errnos stop at 133).
const PANICKED: i32 = 255;

fn ensure_single_threaded() -> Result<()> {
    // /proc/self/task has a link per thread besides its own two: one stat, where reading
    // /proc/self/stat has the kernel format fifty fields. Fails closed: without /proc we
    // cannot tell, so we do not clone.
    match nix::sys::stat::stat("/proc/self/task").map(|st| st.st_nlink.saturating_sub(2)) {
        Ok(1) => Ok(()),
        Ok(n) => Err(Error::NotSingleThreaded(format!("it has {n} threads"))),
        Err(e) => Err(Error::NotSingleThreaded(format!("/proc/self/task: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_with_threads_is_refused() {
        // The test harness runs this on a thread of its own: two at least, with its main one.
        let parked = std::thread::spawn(|| std::thread::park_timeout(std::time::Duration::from_secs(5)));
        let r = ensure_single_threaded();
        parked.thread().unpark();
        parked.join().unwrap();
        match r {
            Err(Error::NotSingleThreaded(why)) => assert!(why.contains("threads"), "{why}"),
            other => panic!("threads went unseen: {other:?}"),
        }
    }
}
