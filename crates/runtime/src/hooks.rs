//! The spec's hooks. The runtime runs createRuntime and prestart during create (while the
//! init waits between its mounts and pivot_root), poststart after start, poststop after
//! delete, all in its own namespaces. The container's init runs the other two in the
//! container's namespaces: createContainer between its mounts and pivot_root (so the path is
//! the host's, as the spec says), startContainer after start, just before the user's process
//! (its path is the container's). Each hook gets the container's state JSON on stdin and is
//! killed at its timeout.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use oci_spec::runtime::{Hook, Hooks};

use crate::state::Status;

#[derive(Debug, thiserror::Error)]
#[error("{kind} hook {path}: {reason}")]
pub struct HookError {
    kind: &'static str,
    path: String,
    reason: String,
}

#[derive(Clone, Copy)]
pub enum Kind {
    Prestart,
    CreateRuntime,
    CreateContainer,
    StartContainer,
    Poststart,
    Poststop,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Prestart => "prestart",
            Kind::CreateRuntime => "createRuntime",
            Kind::CreateContainer => "createContainer",
            Kind::StartContainer => "startContainer",
            Kind::Poststart => "poststart",
            Kind::Poststop => "poststop",
        }
    }

    fn of(self, hooks: Option<&Hooks>) -> &[Hook] {
        let Some(h) = hooks else { return &[] };
        let hooks = match self {
            Kind::Prestart => h.prestart(),
            Kind::CreateRuntime => h.create_runtime(),
            Kind::CreateContainer => h.create_container(),
            Kind::StartContainer => h.start_container(),
            Kind::Poststart => h.poststart(),
            Kind::Poststop => h.poststop(),
        };
        hooks.as_deref().unwrap_or_default()
    }
}

/// Whether the init waits after its mounts for the runtime's prestart and createRuntime hooks,
/// and takes from it the container's state for its own createContainer and startContainer
/// hooks. Without any of these it goes straight on: a container without hooks does not pay
/// for the round trip.
pub fn init_waits_for_runtime(hooks: Option<&Hooks>) -> bool {
    [Kind::Prestart, Kind::CreateRuntime, Kind::CreateContainer, Kind::StartContainer]
        .iter()
        .any(|k| !k.of(hooks).is_empty())
}

/// Runs the spec's hooks of `kind` in order with `state` (the OCI state JSON) on stdin;
/// stops at the first that fails.
pub fn run(hooks: Option<&Hooks>, kind: Kind, state: &str) -> Result<(), HookError> {
    kind.of(hooks).iter().try_for_each(|hook| run_one(kind, hook, state))
}

/// For the hooks the init runs in the container's namespaces: the state says `status`, and
/// its pid is the init's as the container sees it (1 in a PID namespace of its own), as the
/// spec asks of hooks run there.
pub fn run_in_container(
    hooks: Option<&Hooks>,
    kind: Kind,
    state: &mut serde_json::Value,
    status: Status,
) -> Result<(), HookError> {
    state["pid"] = nix::unistd::getpid().as_raw().into();
    state["status"] = serde_json::json!(status);
    run(hooks, kind, &state.to_string())
}

fn run_one(kind: Kind, hook: &Hook, state: &str) -> Result<(), HookError> {
    let path = hook.path().display().to_string();
    let fail = |reason: String| HookError { kind: kind.name(), path: path.clone(), reason };
    let mut cmd = Command::new(hook.path());
    if let Some(args) = hook.args() {
        if let Some((arg0, rest)) = args.split_first() {
            cmd.arg0(arg0).args(rest);
        }
    }
    // A process group of its own, so that a timeout also ends what the hook started (a
    // script's `sleep`), not only the hook, whose children would live on in the runtime's
    // namespaces.
    cmd.env_clear().stdin(Stdio::piped()).process_group(0);
    for kv in hook.env().iter().flatten() {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    let mut child = cmd.spawn().map_err(|e| fail(e.to_string()))?;
    // A hook that does not read its stdin must not fail the write.
    let _ = child.stdin.take().expect("piped").write_all(state.as_bytes());
    let deadline = hook.timeout().map(|t| Instant::now() + Duration::from_secs(t.max(0) as u64));
    loop {
        if let Some(status) = child.try_wait().map_err(|e| fail(e.to_string()))? {
            return if status.success() { Ok(()) } else { Err(fail(format!("exited with {status}"))) };
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            let _ = killpg(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
            let _ = child.wait();
            return Err(fail(format!("timed out after {}s", hook.timeout().unwrap_or_default())));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}
