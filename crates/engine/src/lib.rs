//! rocker's engine: turns Docker-like requests into OCI specs and runs them with the runtime
//! core. It never does runtime work itself (see DESIGN.md: one code path from spec to process).

mod container_root;
mod engine;
pub mod error;
mod id;
pub mod images;
mod run;
mod spec;
pub mod units;
mod user;

pub use engine::parse_reference;
pub use engine::Engine;
pub use error::EngineError;
pub use rocker_image::credentials;
pub use rocker_image::Progress;
pub use rocker_runtime::error::chain as error_chain;
pub use run::{run, Limits, Outcome, RunRequest, Source};
