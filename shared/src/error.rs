//! The error type of the shared crate. Every variant carries the value it is
//! about (a key, a model, a variable) so that messages can be acted on, and
//! [`Error::kind`] selects how each function reports it.

use std::fmt;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Broad classes that each function maps to its own outcome: an HTTP status in
/// predict, a retry decision in the queue-driven functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The caller sent something invalid; retrying the same input cannot help.
    InvalidInput,
    /// The named model, version, alias or object does not exist.
    NotFound,
    /// The request is larger than a configured limit.
    TooLarge,
    /// A dependency (the object store) failed or timed out; retrying may help.
    Unavailable,
    /// The model exists but cannot be loaded, so it is not ready to serve.
    NotReady,
    /// The model or the service itself failed.
    Internal,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("environment variable `{name}` is not set; {hint}")]
    MissingEnv { name: &'static str, hint: &'static str },

    #[error("invalid environment variable `{name}`=`{value}`: {reason}")]
    InvalidEnv { name: &'static str, value: String, reason: String },

    #[error("invalid object key `{key}`: {reason}")]
    InvalidKey { key: String, reason: &'static str },

    #[error("failed to {action} `{location}`")]
    Storage {
        action: &'static str,
        location: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    #[error("invalid model name `{name}`: use 1 to 128 characters from A-Z, a-z, 0-9, '.', '_' and '-', starting with a letter or digit and without `..`")]
    InvalidModelName { name: String },

    #[error("invalid model version `{version}`: use a positive integer such as `1`, or an alias such as `latest` or `production`")]
    InvalidVersion { version: String },

    #[error("model `{name}` not found in the registry at `{repository}`")]
    ModelNotFound { name: String, repository: String },

    #[error("version `{version}` of model `{name}` not found; available versions: {available}")]
    VersionNotFound { name: String, version: String, available: String },

    #[error("failed to parse `{location}`")]
    InvalidDocument {
        location: String,
        #[source]
        source: serde_json::Error,
    },

    #[error("invalid manifest `{location}`: {reason}")]
    InvalidManifest { location: String, reason: String },

    #[error("model `{name}` version {version} is corrupt: `{location}` has sha256 {actual} but the manifest records {expected}")]
    ChecksumMismatch { name: String, version: u64, location: String, expected: String, actual: String },

    #[error("failed to load model `{model}`: {reason}")]
    ModelLoad { model: String, reason: String },

    #[error("inference failed for model `{model}`: {reason}")]
    Inference { model: String, reason: String },

    #[error("{0}")]
    InvalidInput(String),

    #[error("{0}")]
    TooLarge(String),
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidModelName { .. } | Error::InvalidVersion { .. } | Error::InvalidInput(_) => ErrorKind::InvalidInput,
            Error::ModelNotFound { .. } | Error::VersionNotFound { .. } => ErrorKind::NotFound,
            Error::TooLarge(_) => ErrorKind::TooLarge,
            Error::Storage { .. } => ErrorKind::Unavailable,
            Error::ModelLoad { .. } => ErrorKind::NotReady,
            Error::MissingEnv { .. }
            | Error::InvalidEnv { .. }
            | Error::InvalidKey { .. }
            | Error::InvalidDocument { .. }
            | Error::InvalidManifest { .. }
            | Error::ChecksumMismatch { .. }
            | Error::Inference { .. } => ErrorKind::Internal,
        }
    }

    pub fn storage(
        action: &'static str,
        location: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Error::Storage { action, location: location.into(), source: source.into() }
    }

    pub fn invalid_input(message: impl fmt::Display) -> Self {
        Error::InvalidInput(message.to_string())
    }

    /// Formats the error with its whole source chain, for logs and for
    /// operator-facing reports.
    pub fn chain(&self) -> String {
        let mut text = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        text
    }
}
