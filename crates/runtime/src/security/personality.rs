//! The execution domain (linux.personality): LINUX32 makes `uname -m` say i686, for 32-bit
//! userlands on 64-bit hosts.

use nix::errno::Errno;
use oci_spec::runtime::{LinuxPersonality, LinuxPersonalityDomain};

const PER_LINUX: libc::c_ulong = 0;
const PER_LINUX32: libc::c_ulong = 0x0008;

pub fn set_personality(p: &LinuxPersonality) -> Result<(), String> {
    if p.flags().as_ref().is_some_and(|f| !f.is_empty()) {
        return Err("linux.personality.flags are not supported".into());
    }
    let persona = match p.domain() {
        LinuxPersonalityDomain::PerLinux => PER_LINUX,
        LinuxPersonalityDomain::PerLinux32 => PER_LINUX32,
    };
    // SAFETY: personality(2) only sets this process's execution domain.
    Errno::result(unsafe { libc::personality(persona) }).map(drop).map_err(|e| e.to_string())
}
