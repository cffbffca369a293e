//! The spec's hooks that run in the runtime's namespace: createRuntime and prestart during
//! create, poststart after start, poststop after delete. Each gets the container's state
//! JSON on stdin and is killed at its timeout.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use oci_spec::runtime::{Hook, Spec};

#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("{kind} hook {path}: {reason}")]
    Failed { kind: &'static str, path: String, reason: String },
    #[error("{kind} hooks (run inside the container) are not supported yet")]
    Unsupported { kind: &'static str },
}

#[derive(Clone, Copy)]
pub enum Kind {
    CreateRuntime,
    Prestart,
    Poststart,
    Poststop,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::CreateRuntime => "createRuntime",
            Kind::Prestart => "prestart",
            Kind::Poststart => "poststart",
            Kind::Poststop => "poststop",
        }
    }
}

/// Refuses specs with hooks this runtime cannot run yet, before anything is created.
pub fn check_supported(spec: &Spec) -> Result<(), HookError> {
    let Some(h) = spec.hooks() else { return Ok(()) };
    if h.create_container().as_ref().is_some_and(|v| !v.is_empty()) {
        return Err(HookError::Unsupported { kind: "createContainer" });
    }
    if h.start_container().as_ref().is_some_and(|v| !v.is_empty()) {
        return Err(HookError::Unsupported { kind: "startContainer" });
    }
    Ok(())
}

/// Runs the spec's hooks of `kind` in order with `state` (the OCI state JSON) on stdin;
/// stops at the first that fails.
pub fn run(spec: &Spec, kind: Kind, state: &str) -> Result<(), HookError> {
    let Some(h) = spec.hooks() else { return Ok(()) };
    let hooks = match kind {
        Kind::CreateRuntime => h.create_runtime(),
        Kind::Prestart => h.prestart(),
        Kind::Poststart => h.poststart(),
        Kind::Poststop => h.poststop(),
    };
    hooks.iter().flatten().try_for_each(|hook| run_one(kind, hook, state))
}

fn run_one(kind: Kind, hook: &Hook, state: &str) -> Result<(), HookError> {
    let path = hook.path().display().to_string();
    let fail = |reason: String| HookError::Failed { kind: kind.name(), path: path.clone(), reason };
    let mut cmd = Command::new(hook.path());
    if let Some(args) = hook.args() {
        if let Some((arg0, rest)) = args.split_first() {
            cmd.arg0(arg0).args(rest);
        }
    }
    cmd.env_clear().stdin(Stdio::piped());
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
            let _ = child.kill();
            let _ = child.wait();
            return Err(fail(format!("timed out after {}s", hook.timeout().unwrap_or_default())));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}
