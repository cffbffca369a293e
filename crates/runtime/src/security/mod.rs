//! What the container's process may do: capabilities, no_new_privs, user and groups.

mod capabilities;
mod user;

pub use capabilities::{apply_after_setuid, drop_bounding};
pub use user::switch_user;
