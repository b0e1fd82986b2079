//! Errors as the HTTP API reports them: a status and `{"error": "..."}`. The
//! message is safe to show the caller; internal details go to the logs.

use shared::{Error, ErrorKind};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub message: String,
}

impl ApiError {
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        ApiError { status, message: message.into() }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(404, message)
    }

    pub fn body(&self) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({ "error": self.message })).unwrap_or_default()
    }
}

impl From<Error> for ApiError {
    fn from(err: Error) -> Self {
        let status = match err.kind() {
            ErrorKind::InvalidInput => 400,
            ErrorKind::NotFound => 404,
            ErrorKind::TooLarge => 413,
            ErrorKind::Unavailable | ErrorKind::NotReady => 503,
            ErrorKind::Internal => 500,
        };
        let message = match &err {
            // The storage cause can name internal endpoints; keep it in the logs.
            Error::Storage { .. } => format!("{err}; the model repository is unavailable, retry later"),
            _ => err.to_string(),
        };
        ApiError { status, message }
    }
}
