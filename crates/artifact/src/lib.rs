//! Deployment packages. A zip is checked and unpacked once, when it is uploaded, into a
//! content-addressed tree (`trees/<sha256>/`) next to the zip itself (`blobs/<sha256>.zip`);
//! starting an environment only points at that tree and never unzips.
//!
//! Hostile zips are refused before anything is visible: entries are unpacked into a private
//! temporary directory, names are confined to it, symlinks must stay inside it and are
//! created last (so nothing is ever written through one), and the bytes actually written —
//! not the sizes the zip declares — are counted against the unzipped limit.

mod blobs;
mod extract;

pub use blobs::{Blobs, FsBlobs, StoredCode};
pub use extract::{extract_zip, ExtractLimits};

use thiserror::Error;

/// Why a package was refused or could not be stored.
#[derive(Debug, Error)]
pub enum ArtifactError {
    /// Not a zip, or a corrupt one.
    #[error(
        "Could not unzip uploaded file. Please check your file, then try to upload again. ({0})"
    )]
    InvalidZip(String),
    /// A name or link that would land outside the function's directory.
    #[error("Could not unzip uploaded file: the entry '{0}' would be extracted outside the function's directory")]
    UnsafeEntry(String),
    #[error("Unzipped size must be smaller than {limit} bytes")]
    TooLargeUnzipped { limit: u64 },
    #[error("Zipped size must be smaller than {limit} bytes")]
    TooLargeZipped { limit: u64 },
    #[error("Could not unzip uploaded file: too many entries (more than {0})")]
    TooManyEntries(usize),
    #[error("code storage I/O error at {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

impl ArtifactError {
    pub(crate) fn io(path: impl AsRef<std::path::Path>, source: std::io::Error) -> Self {
        ArtifactError::Io {
            path: path.as_ref().display().to_string(),
            source,
        }
    }

    /// True when the caller sent a bad package (a 4xx), false for our own I/O failures.
    pub fn is_user_error(&self) -> bool {
        !matches!(self, ArtifactError::Io { .. })
    }
}

/// The SHA-256 of a package, in hex (our blob address) and base64 (Lambda's `CodeSha256`).
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Lambda's `CodeSha256`: standard padded base64 of the digest.
pub fn code_sha256_b64(hex_digest: &str) -> String {
    use base64::Engine;
    let raw = hex::decode(hex_digest).unwrap_or_default();
    base64::engine::general_purpose::STANDARD.encode(raw)
}
