//! What the container's process may do: capabilities, seccomp, no_new_privs, user and groups.

mod capabilities;
mod personality;
mod scheduling;
mod seccomp;
mod user;

pub use capabilities::{apply_after_setuid, drop_bounding};
pub use personality::set_personality;
pub use scheduling::{set_io_priority, set_scheduler};
pub use seccomp::{compile as compile_seccomp, load as load_seccomp};
pub use user::switch_user;
