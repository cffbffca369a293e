//! rocker's images: references, the registry client, the content-addressed store, safe layer
//! unpacking and the overlay a container runs on. It knows nothing of the runtime.

pub mod archive;
pub mod credentials;
pub mod digest;
pub mod import;
pub mod ingest;
pub mod layer;
pub mod overlay;
pub mod platform;
pub mod pull;
pub mod reference;
pub mod registry;
pub mod store;
pub mod unpack;

pub use pull::{pull, Progress, PullError, PullOptions};
pub use reference::Reference;
pub use store::{ImageRecord, Store, StoreError};

/// Any of the crate's errors, for callers that handle them alike.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Reference(#[from] reference::ReferenceError),
    #[error(transparent)]
    Registry(#[from] registry::RegistryError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Pull(#[from] PullError),
    #[error(transparent)]
    Credentials(#[from] credentials::CredentialsError),
    #[error(transparent)]
    Overlay(#[from] overlay::OverlayError),
    #[error(transparent)]
    Import(#[from] import::ImportError),
    #[error(transparent)]
    Archive(#[from] archive::ArchiveError),
}
