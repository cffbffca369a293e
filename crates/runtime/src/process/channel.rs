//! The typed channel between the runtime (parent) and the container's init (child).
//!
//! A `SOCK_SEQPACKET` socketpair keeps message boundaries, so each `send` is one JSON
//! document and nothing is ever split on spaces. A file descriptor (the pty master) can
//! ride along with a message as `SCM_RIGHTS`. Both ends are close-on-exec: when the init
//! execs the user's process successfully its end closes and the parent reads end-of-file,
//! which is how a successful exec is told apart from an `ExecFailed` message.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::cmsg_space;
use nix::sys::socket::{
    recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag,
    SockType,
};
use serde::{Deserialize, Serialize};

/// Every message that crosses the channel. See `process::launch` for the protocol.
#[derive(Debug, Serialize, Deserialize)]
pub enum Message {
    /// child -> parent, for a spec with hooks (`hooks::init_waits_for_runtime`): the spec's
    /// mounts are made and pivot_root is next, the point where the runtime's prestart and
    /// createRuntime hooks run. The init waits for `HooksRan`.
    Mounted,
    /// parent -> child: those hooks ran; `state` is the container's OCI state, for the
    /// createContainer and startContainer hooks the init runs itself.
    HooksRan { state: serde_json::Value },
    /// child -> parent: namespaces, rootfs and hostname are set up; the init waits for `Start`.
    /// When the process has a terminal, the pty master travels with this message.
    Ready,
    /// parent -> child: the cgroup is joined and limited; exec the user's process.
    Start,
    /// parent -> child: the user namespace's uid and gid maps are written (and, on cgroup
    /// v1, the child is in its cgroup): it can become root in its namespace.
    Mapped,
    /// parent -> child (not in a new user namespace, and not cloned into its cgroup): the
    /// cgroup is made and limited; with it, the files through which the init joins it
    /// (opened by the runtime, so that the init can join after its pivot_root).
    CgroupReady,
    /// child -> parent, in a mount namespace joined by path: the id of the mount the init
    /// made its root on there (see `rootfs::bind_root`).
    RootBound { mount_id: u64 },
    /// network helper -> init: the new network namespace, its descriptor attached, `lo` up
    /// (see process/network.rs).
    Network,
    /// first child -> parent, for a user namespace joined by path: the init it cloned, in
    /// that namespace, as the runtime's child (see `init::run_in_joined_user_namespace`).
    InitPid { pid: i32 },
    /// child -> parent: a setup step failed; the init exits without running user code.
    InitFailed { step: String, message: String },
    /// child -> parent: execve of the user's process failed.
    ExecFailed { program: String, failure: ExecFailure },
}

#[derive(Debug, Serialize, Deserialize)]
pub enum ExecFailure {
    NotFound,
    NotExecutable,
    Other(String),
}

#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error("creating the runtime<->init socketpair: {0}")]
    Create(nix::Error),
    #[error("sending {what} to the container init: {source}")]
    Send { what: &'static str, source: nix::Error },
    #[error("receiving from the container init: {0}")]
    Recv(nix::Error),
    #[error("malformed message on the runtime<->init channel: {0}")]
    Decode(serde_json::Error),
    #[error("{0} descriptors for one message on the runtime<->init channel: more than the 32 allowed")]
    TooManyFds(usize),
    #[error("a message of {0} bytes on the runtime<->init channel: more than the 64 KiB allowed")]
    TooLong(usize),
    #[error("the container init exited before reporting {expected}")]
    Closed { expected: &'static str },
    #[error("unexpected message from the container init: {got:?} (expected {expected})")]
    Unexpected { got: Box<Message>, expected: &'static str },
}

/// One end of the channel.
pub struct Channel {
    fd: OwnedFd,
}

/// Largest message we accept; error texts are the only variable part.
const MAX_MESSAGE: usize = 64 * 1024;
/// Most descriptors one message carries: a cgroup v1 file per hierarchy.
const MAX_FDS: usize = 32;

impl Channel {
    /// A connected pair: (parent's end, child's end).
    pub fn pair() -> Result<(Channel, Channel), ChannelError> {
        let (a, b) = socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC)
            .map_err(ChannelError::Create)?;
        Ok((Channel { fd: a }, Channel { fd: b }))
    }

    pub fn send(&self, msg: &Message) -> Result<(), ChannelError> {
        self.send_with_fds(msg, &[])
    }

    pub fn send_with_fds(&self, msg: &Message, fds: &[RawFd]) -> Result<(), ChannelError> {
        let what = message_name(msg);
        if fds.len() > MAX_FDS {
            return Err(ChannelError::TooManyFds(fds.len()));
        }
        let bytes = serde_json::to_vec(msg).expect("channel messages always serialize");
        let iov = [IoSlice::new(&bytes)];
        let rights = [ControlMessage::ScmRights(fds)];
        let cmsgs: &[ControlMessage] = if fds.is_empty() { &[] } else { &rights };
        // No SIGPIPE if the peer is gone (a created container whose runtime has exited).
        sendmsg::<()>(self.fd.as_raw_fd(), &iov, cmsgs, MsgFlags::MSG_NOSIGNAL, None)
            .map_err(|source| ChannelError::Send { what, source })?;
        Ok(())
    }

    /// The next message and the file descriptors sent with it; `None` at end-of-file.
    pub fn recv(&self) -> Result<Option<(Message, Vec<OwnedFd>)>, ChannelError> {
        // Sized to the message (a peek tells its length): a 64 KiB buffer for a few bytes
        // cost a tenth of a millisecond in page faults on each of the handshake's receives.
        let next = self.next_len()?;
        if next > MAX_MESSAGE {
            return Err(ChannelError::TooLong(next));
        }
        let mut buf = vec![0u8; next.max(1)];
        let mut cmsg_buf = cmsg_space!([RawFd; MAX_FDS]);
        let (len, fds) = loop {
            let mut iov = [IoSliceMut::new(&mut buf)];
            match recvmsg::<()>(
                self.fd.as_raw_fd(),
                &mut iov,
                Some(&mut cmsg_buf),
                MsgFlags::MSG_CMSG_CLOEXEC,
            ) {
                Ok(r) => {
                    let mut owned = Vec::new();
                    for cmsg in r.cmsgs().map_err(ChannelError::Recv)? {
                        if let ControlMessageOwned::ScmRights(fds) = cmsg {
                            // SAFETY: the kernel just installed these descriptors in our table
                            // and nothing else owns them.
                            owned.extend(fds.into_iter().map(|f| unsafe { OwnedFd::from_raw_fd(f) }));
                        }
                    }
                    break (r.bytes, owned);
                }
                // See next_len: the peer may have closed since the peek.
                Err(nix::Error::EINTR) | Err(nix::Error::ECONNRESET) => continue,
                Err(e) => return Err(ChannelError::Recv(e)),
            }
        };
        if len == 0 {
            return Ok(None);
        }
        let msg = serde_json::from_slice(&buf[..len]).map_err(ChannelError::Decode)?;
        Ok(Some((msg, fds)))
    }

    /// The length of the next message, waiting for one (0 at end-of-file).
    fn next_len(&self) -> Result<usize, ChannelError> {
        let mut byte = [0u8; 1];
        loop {
            let mut iov = [IoSliceMut::new(&mut byte)];
            // MSG_TRUNC: the message's whole length, however little of it is read.
            let flags = MsgFlags::MSG_PEEK | MsgFlags::MSG_TRUNC;
            match recvmsg::<()>(self.fd.as_raw_fd(), &mut iov, None, flags) {
                Ok(r) => return Ok(r.bytes),
                // The peer closed with a message of ours unread (an init that failed before
                // reading CgroupReady or Start): the kernel reports that first, once, and
                // what the peer sent before closing (its failure) is still queued behind it.
                Err(nix::Error::EINTR) | Err(nix::Error::ECONNRESET) => continue,
                Err(e) => return Err(ChannelError::Recv(e)),
            }
        }
    }
}

pub(super) fn message_name(msg: &Message) -> &'static str {
    match msg {
        Message::Mounted => "Mounted",
        Message::HooksRan { .. } => "HooksRan",
        Message::Ready => "Ready",
        Message::Start => "Start",
        Message::Mapped => "Mapped",
        Message::CgroupReady => "CgroupReady",
        Message::Network => "Network",
        Message::RootBound { .. } => "RootBound",
        Message::InitPid { .. } => "InitPid",
        Message::InitFailed { .. } => "InitFailed",
        Message::ExecFailed { .. } => "ExecFailed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_sent_before_closing_is_read_even_with_our_message_left_unread() {
        let (parent, child) = Channel::pair().unwrap();
        // The runtime's go-ahead, which the init never reads: it fails first and exits.
        parent.send(&Message::Start).unwrap();
        child.send(&Message::InitFailed { step: "mounting".into(), message: "no".into() }).unwrap();
        drop(child);
        match parent.recv().unwrap() {
            Some((Message::InitFailed { step, .. }, _)) => assert_eq!(step, "mounting"),
            other => panic!("expected the failure, got {other:?}"),
        }
        assert!(parent.recv().unwrap().is_none(), "then end-of-file");
    }
}
