//! rocker's engine: turns Docker-like requests into OCI specs and runs them with the runtime
//! core. It never does runtime work itself (see DESIGN.md: one code path from spec to process).

pub mod error;
mod id;
mod run;
mod spec;
pub mod units;

pub use error::EngineError;
pub use rocker_runtime::error::chain as error_chain;
pub use run::{run, Limits, Outcome, RunRequest};
