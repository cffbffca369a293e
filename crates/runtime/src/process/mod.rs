//! From a spec to a running process: the clone, the container's init, and the protocol
//! between them.
//!
//! ```text
//!  runtime (parent)                               init (child, in new namespaces)
//!  ----------------                               -------------------------------
//!  [new network namespace: clone its helper,
//!    which sends it to the init (network.rs)]
//!  v2: make the cgroup directory
//!  clone3(CLONE_NEW*, CLONE_INTO_CGROUP on v2) ---> [starts]
//!                                                  [new user namespace: wait for Mapped]
//!  v1: locate, make the cgroup directories         rootfs: private, bind, mounts, /dev
//!  write limits                                      (after the join instead, when a
//!  [new user namespace: write the maps, move the      cgroup mount or namespace or a
//!    init into its cgroup, Mapped]                    hook needs the cgroup)
//!                  <------------------------------ [a spec with hooks: Mounted]
//!  [prestart, createRuntime hooks]
//!  [HooksRan{state}] ------------------------------> [createContainer hooks]
//!                                                  (the helper's network namespace
//!                                                    joined before the first sysfs mount)
//!                                                  pivot_root, masks; hostname
//!                                                    [in a user namespace: lo up]
//!  v1: CgroupReady + tasks files ----------------> v1: join the cgroup ("0" > tasks)
//!                                                  [terminal: open pty in its own devpts]
//!                                                  PATH lookup, user, cwd, capabilities
//!                  <------------------------------ Ready (+ pty master as SCM_RIGHTS)
//!                                                    or InitFailed{step, message} -> exit
//!  Start (create/start: a reader on exec.fifo) ---->
//!                                                  [startContainer hooks], execve
//!                  <------------------------------ end-of-file: exec succeeded (CLOEXEC)
//!                                                    or InitFailed / ExecFailed (create/
//!                                                    start: written to exec.fifo instead)
//!  waitpid(init): exit status -> caller; read OOM kills; remove the cgroup
//! ```
//!
//! The init runs no user code before `Start`, and `Start` is only sent once the child is
//! in its limited cgroup, so there is no window in which user code runs unlimited.

pub mod channel;
mod clone;
mod enter;
mod exec;
mod foreground;
mod init;
mod launch;
mod network;
mod user_process;

use std::os::fd::OwnedFd;

pub use clone::in_child;
pub use enter::enter;
pub use exec::DEFAULT_PATH;
pub use foreground::run_in_foreground;

/// How a container is launched.
pub struct LaunchOptions {
    pub start: StartSignal,
    /// Descriptors 3..3+N of the runtime are passed on to the container's process (runc's
    /// --preserve-fds, for socket activation); every other one above 2 is closed on exec.
    pub preserve_fds: u32,
}

/// How the init learns that it may exec the user's process.
pub enum StartSignal {
    /// The runtime stays with the container and sends `Start` (a foreground run). The init
    /// dies with the runtime.
    Channel,
    /// OCI create/start: the runtime exits after create; `start`, a later process, opens the
    /// exec FIFO (held here as an `O_PATH` descriptor) for reading, which lets the init's
    /// blocked open for writing through.
    Fifo(OwnedFd),
}
pub(crate) use launch::failure;
pub use launch::{clone_init, exit_code, release_joined_root, Container, Exit, OnMounted};
