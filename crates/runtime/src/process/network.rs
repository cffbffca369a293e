//! The container's new network namespace, made by a helper process while the runtime goes on
//! to clone the init and make its cgroup.
//!
//! Setting up a network namespace (every protocol's per-namespace state) took most of the
//! init's clone. The helper makes it on the runtime's other CPU, with `lo` up, and sends it
//! straight to the init, which joins it before its first sysfs mount (sysfs shows the
//! network devices of the namespace it is mounted from). Not for a user namespace, which must
//! own the network namespace its root is to administer.

use std::convert::Infallible;
use std::os::fd::AsRawFd;

use nix::sched::{sched_setaffinity, unshare, CloneFlags};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;

use super::channel::{Channel, Message};
use super::clone::{clone_child, Cloned};
use super::launch::other_cpus;
use super::user_process::{self, step};
use crate::error::Result;
use crate::namespaces;

/// The helper, from its start to its reaping (on drop: it ends by itself once it has sent the
/// namespace, or failed to).
pub struct NetworkHelper {
    pid: Pid,
    /// The end the init receives the namespace from (or the helper's failure report); the
    /// runtime's copy is closed once the init has its own.
    to_init: Option<Channel>,
}

impl NetworkHelper {
    pub fn start() -> Result<NetworkHelper> {
        let (to_init, from_helper) = Channel::pair()?;
        match clone_child(CloneFlags::empty(), None)? {
            Cloned::Child { .. } => {
                drop(to_init);
                user_process::run_child(&from_helper, || make(&from_helper))
            }
            Cloned::Parent { child, .. } => {
                // Off this CPU, where the init is about to be cloned too (best effort).
                if let Some((_, others)) = other_cpus() {
                    let _ = sched_setaffinity(child, &others);
                }
                Ok(NetworkHelper { pid: child, to_init: Some(to_init) })
            }
        }
    }

    /// For the init: where the namespace comes from.
    pub fn init_end(&self) -> Option<&Channel> {
        self.to_init.as_ref()
    }

    /// Once the init is cloned: the runtime's copy of its end closed, so that the init reads
    /// end-of-file if the helper dies.
    pub fn init_has_its_end(&mut self) {
        self.to_init = None;
    }
}

impl Drop for NetworkHelper {
    fn drop(&mut self) {
        let _ = waitpid(self.pid, None);
    }
}

fn make(channel: &Channel) -> std::result::Result<Infallible, Message> {
    step("creating the network namespace", unshare(CloneFlags::CLONE_NEWNET))?;
    step("bringing up the loopback interface", namespaces::loopback_up())?;
    let ns = step("opening the network namespace", namespaces::of_process(None, "net"))?;
    step("sending the network namespace", channel.send_with_fds(&Message::Network, &[ns.as_raw_fd()]))?;
    user_process::exit_now(0)
}

/// In the init: joins the namespace the helper sends; else why not (the helper's failure).
pub fn join(from_helper: &Channel) -> std::result::Result<(), String> {
    match from_helper.recv() {
        Ok(Some((Message::Network, fds))) if fds.len() == 1 => {
            nix::sched::setns(&fds[0], CloneFlags::CLONE_NEWNET).map_err(|e| e.to_string())
        }
        Ok(Some((Message::InitFailed { step, message }, _))) => Err(format!("{step}: {message}")),
        Ok(Some((other, _))) => {
            Err(format!("its helper process sent {} instead", super::channel::message_name(&other)))
        }
        Ok(None) => Err("its helper process ended without sending it".into()),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_init_joins_what_the_helper_sends_or_says_why_not() {
        // The helper's failure, word for word.
        let (init, helper) = Channel::pair().unwrap();
        let failure =
            Message::InitFailed { step: "creating the network namespace".into(), message: "EPERM".into() };
        helper.send(&failure).unwrap();
        assert_eq!(join(&init).unwrap_err(), "creating the network namespace: EPERM");
        // A helper gone without a word.
        drop(helper);
        assert_eq!(join(&init).unwrap_err(), "its helper process ended without sending it");
        // A namespace: joined (our own here, which changes nothing).
        let (init, helper) = Channel::pair().unwrap();
        let own = namespaces::of_process(None, "net").unwrap();
        helper.send_with_fds(&Message::Network, &[own.as_raw_fd()]).unwrap();
        assert_eq!(join(&init), Ok(()));
    }
}
