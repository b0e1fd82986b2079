//! Settings of the predict function, read from the environment at cold start.

use shared::config::{Env, SharedConfig};

/// Lambda rejects synchronous request payloads above 6 MB, so a larger body
/// cannot have come through Lambda and is refused the same way locally.
pub const MAX_BODY_BYTES: usize = 6 * 1024 * 1024;

/// Limit on a gzip or deflate request body once decompressed.
pub const MAX_DECOMPRESSED_BYTES: usize = 8 * MAX_BODY_BYTES;

#[derive(Debug, Clone)]
pub struct Config {
    pub shared: SharedConfig,
    /// Most tensor elements one request may carry, summed over its inputs.
    pub max_request_elements: usize,
}

impl Config {
    pub fn from_env() -> shared::Result<Self> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> shared::Result<Self> {
        let shared = SharedConfig::from_lookup(&lookup)?;
        let env = Env(&lookup);
        let max_request_elements = env.parse_or("MAX_REQUEST_ELEMENTS", 1 << 20)?;
        if max_request_elements == 0 {
            return Err(shared::Error::InvalidEnv {
                name: "MAX_REQUEST_ELEMENTS",
                value: "0".into(),
                reason: "requests need at least 1 element".into(),
            });
        }
        Ok(Config { shared, max_request_elements })
    }
}
