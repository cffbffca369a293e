//! The user the container's process runs as.

use nix::unistd::{setgid, setgroups, setuid, Gid, Uid};
use oci_spec::runtime::User;

/// Supplementary groups first, then the group, then the user: after setuid to a non-root
/// user the others could no longer be changed.
pub fn switch_user(user: &User) -> nix::Result<()> {
    let groups: Vec<Gid> =
        user.additional_gids().as_deref().unwrap_or_default().iter().map(|&g| Gid::from_raw(g)).collect();
    setgroups(&groups)?;
    setgid(Gid::from_raw(user.gid()))?;
    setuid(Uid::from_raw(user.uid()))
}
