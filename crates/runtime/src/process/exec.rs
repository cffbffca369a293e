//! The last step of the init: find the program on the container's PATH and exec it.

use std::convert::Infallible;
use std::ffi::{CStr, CString};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use nix::errno::Errno;
use nix::unistd::execve;

use super::channel::ExecFailure;

/// Docker's PATH, used when the spec's environment has none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The program to exec: `args[0]` looked up on `PATH` from `env` when it has no `/`. Done
/// before the init reports ready, so that `create` fails for a missing command (as runc's does).
pub fn resolve(args: &[String], env: &[String]) -> Result<CString, ExecFailure> {
    let path_var = env.iter().find_map(|e| e.strip_prefix("PATH=")).unwrap_or(DEFAULT_PATH);
    cstring(&find_executable(&args[0], path_var)?)
}

/// Replaces this process with `program`. Returns only on failure.
pub fn exec(program: &CStr, args: &[String], env: &[String]) -> ExecFailure {
    match try_exec(program, args, env) {
        Ok(never) => match never {},
        Err(failure) => failure,
    }
}

fn try_exec(program: &CStr, args: &[String], env: &[String]) -> Result<Infallible, ExecFailure> {
    let argv = args.iter().map(|a| cstring(a)).collect::<Result<Vec<_>, _>>()?;
    let envp = env.iter().map(|e| cstring(e)).collect::<Result<Vec<_>, _>>()?;
    Err(match execve(program, &argv, &envp) {
        Err(Errno::ENOENT) => ExecFailure::NotFound,
        Err(Errno::EACCES) | Err(Errno::ENOEXEC) | Err(Errno::EISDIR) => ExecFailure::NotExecutable,
        Err(e) => ExecFailure::Other(e.desc().to_string()),
        Ok(never) => match never {},
    })
}

fn cstring(s: &str) -> Result<CString, ExecFailure> {
    CString::new(s).map_err(|_| ExecFailure::Other(format!("{s:?} contains a NUL byte")))
}

/// Marks every descriptor from `first` on close-on-exec, so that only stdio (and those the
/// caller asked to preserve) reach the user's process, whatever the runtime's caller left
/// open. Close-on-exec rather than close: the channel must stay open to report a failed exec.
pub fn close_inherited_fds(first: u32) -> nix::Result<()> {
    // SAFETY: close_range only changes flags of this process's descriptors.
    let ret = unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, libc::CLOSE_RANGE_CLOEXEC) };
    if ret == 0 {
        return Ok(());
    }
    // Kernels before 5.11: walk /proc/self/fd.
    let fds: Vec<i32> = std::fs::read_dir("/proc/self/fd")
        .map_err(|_| Errno::EBADF)?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&fd| fd >= first as i32)
        .collect();
    for fd in fds {
        // SAFETY: F_SETFD on a descriptor number changes only its flags; one that closed
        // meanwhile (the directory's own) gives EBADF, which is fine.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    Ok(())
}

/// The first executable `dir/program` on `path_var`, as execvp finds it. A file that exists
/// but cannot be executed is reported as such only if no later directory has an executable.
pub fn find_executable(program: &str, path_var: &str) -> Result<String, ExecFailure> {
    if program.contains('/') {
        return Ok(program.to_string());
    }
    let mut saw_non_executable = false;
    for dir in path_var.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let candidate = Path::new(dir).join(program);
        if let Ok(meta) = std::fs::metadata(&candidate) {
            if meta.is_file() && meta.permissions().mode() & 0o111 != 0 {
                return Ok(candidate.to_string_lossy().into_owned());
            }
            saw_non_executable = true;
        }
    }
    Err(if saw_non_executable { ExecFailure::NotExecutable } else { ExecFailure::NotFound })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_with_a_slash_is_taken_as_it_is() {
        assert_eq!(find_executable("./x", "/nowhere").unwrap(), "./x");
    }

    #[test]
    fn searches_path_in_order() {
        assert_eq!(find_executable("sh", "/nonexistent:/bin").unwrap(), "/bin/sh");
    }

    #[test]
    fn missing_is_not_found() {
        assert!(matches!(find_executable("no-such-program-x", "/bin"), Err(ExecFailure::NotFound)));
    }

    #[test]
    fn a_plain_file_is_not_executable() {
        assert!(matches!(find_executable("passwd", "/etc"), Err(ExecFailure::NotExecutable)));
    }
}
