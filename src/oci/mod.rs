//! The OCI vocabulary: validated names, tags, digests, media types and manifests.
//!
//! Everything here is pure and synchronous: it parses and validates what clients send and
//! may call nothing outside this module.

pub mod digest;
pub mod error_code;
pub mod manifest;
pub mod media_type;
pub mod name;
pub mod pattern;

pub use digest::{Algorithm, Digest, DigestError, Hasher};
pub use error_code::ErrorCode;
pub use manifest::{Descriptor, ManifestError, ParsedManifest};
pub use media_type::MediaType;
pub use name::{Reference, RepositoryName, Tag};
pub use pattern::{Pattern, PatternError};
