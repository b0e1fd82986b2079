//! Errors that stop a file from being scored, and whether trying again can
//! help. This is the one place that decides what the queue retries: storage and network
//! failures are retried, and problems with the file, its key or its model are
//! recorded in the summary and not retried.

use shared::ErrorKind;

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The object store or the network failed. The same file may succeed
    /// later, so the message goes back to the queue.
    #[error(transparent)]
    Storage(shared::Error),

    #[error("object `{location}` does not exist; it was probably deleted after the upload event")]
    InputNotFound { location: String },

    #[error("key `{key}` names no model; upload the file under `{input_prefix}<model>/` or `{input_prefix}<model>/v<version>/`")]
    NoModel { key: String, input_prefix: String },

    #[error("`{key}` has an unsupported file type; name it `.csv`, `.jsonl` or `.ndjson`, optionally followed by `.gz`")]
    UnsupportedFormat { key: String },

    #[error("model `{model}` cannot score this file: {source}")]
    Model {
        model: String,
        #[source]
        source: shared::Error,
    },

    #[error("invalid header in `{location}`: {reason}")]
    Header { location: String, reason: String },

    #[error("`{location}` has no data rows")]
    Empty { location: String },

    #[error("failed to read `{location}`: {reason}")]
    Corrupt { location: String, reason: String },

    /// A bug, such as a panic in the parsing thread. Retrying the same file
    /// would hit it again.
    #[error("internal error while scoring `{location}`: {reason}")]
    Internal { location: String, reason: String },
}

impl JobError {
    /// True when trying the same file again later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, JobError::Storage(_))
    }

    /// Classifies an error of the model registry: an unreachable store is
    /// retried, anything else about the model is a problem of the file.
    pub fn from_model(model: &str, source: shared::Error) -> Self {
        match source.kind() {
            ErrorKind::Unavailable => JobError::Storage(source),
            _ => JobError::Model { model: model.to_string(), source },
        }
    }

    /// Formats the error with its whole source chain, for the summary and
    /// the logs.
    pub fn chain(&self) -> String {
        let mut text = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            let cause_text = cause.to_string();
            // `Storage` is transparent, so its first source repeats nothing.
            if !text.ends_with(&cause_text) {
                text.push_str(": ");
                text.push_str(&cause_text);
            }
            source = cause.source();
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_storage_failures_are_retried() {
        let storage = JobError::Storage(shared::Error::storage("read", "s3://b/k", "connection refused"));
        assert!(storage.is_retryable());
        assert!(storage.chain().contains("connection refused"), "{}", storage.chain());
        let unknown = JobError::from_model(
            "m",
            shared::Error::ModelNotFound { name: "m".into(), repository: "examples/registry".into() },
        );
        assert!(!unknown.is_retryable());
        assert!(unknown.to_string().contains("model `m` not found"), "{unknown}");
        assert!(!JobError::Empty { location: "k".into() }.is_retryable());
    }

    #[test]
    fn registry_outage_is_retried() {
        let err = JobError::from_model("m", shared::Error::storage("list", "s3://b/models/m/", "timed out"));
        assert!(err.is_retryable());
    }
}
