//! rocker's OCI runtime core: one code path from an OCI runtime spec to an isolated process.
//!
//! The engine (`rocker run`) and `rocker-runtime` (runc's command line) both build an
//! [`oci_spec::runtime::Spec`] and hand it to [`process::clone_init`]. Nothing here knows about
//! images, names or networks.

pub mod cgroups;
pub mod console;
pub mod error;
pub mod hooks;
pub mod lifecycle;
mod namespaces;
mod pidfd;
pub mod process;
mod rootfs;
mod security;
pub mod signals;
pub mod state;
pub mod tty;

pub use error::{Error, Result};
pub use rootfs::read_in_root;
