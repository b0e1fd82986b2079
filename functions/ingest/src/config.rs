//! Settings of the ingest function, read from the environment at start.

use std::time::Duration;

use shared::config::{Env, SharedConfig};
use shared::{Error, Result};

#[derive(Debug, Clone)]
pub struct Config {
    pub shared: SharedConfig,
    /// Prefix that model uploads arrive under, ending with `/`.
    pub incoming_prefix: String,
    /// Prefix of rejection reports, ending with `/`.
    pub rejected_prefix: String,
    /// Largest model file accepted.
    pub max_model_bytes: u64,
    /// How long a model upload waits for its metadata sidecar to appear.
    pub sidecar_wait: Duration,
}

fn prefix(env: &Env<impl Fn(&str) -> Option<String>>, name: &'static str, default: &str) -> Result<String> {
    let value = env.get(name).unwrap_or_else(|| default.to_string());
    let trimmed = value.trim_matches('/');
    if trimmed.is_empty() || trimmed.contains("//") {
        return Err(Error::InvalidEnv { name, value, reason: "use a key prefix such as `incoming/`".into() });
    }
    Ok(format!("{trimmed}/"))
}

impl Config {
    pub fn from_env() -> Result<Self> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let shared = SharedConfig::from_lookup(&lookup)?;
        let env = Env(&lookup);
        let incoming_prefix = prefix(&env, "INCOMING_PREFIX", "incoming/")?;
        let rejected_prefix = prefix(&env, "REJECTED_PREFIX", "rejected/")?;
        if rejected_prefix.starts_with(&incoming_prefix) || incoming_prefix.starts_with(&rejected_prefix) {
            return Err(Error::InvalidEnv {
                name: "REJECTED_PREFIX",
                value: rejected_prefix,
                reason: format!("it overlaps INCOMING_PREFIX `{incoming_prefix}`, so reports could trigger ingest"),
            });
        }
        let max_model_mb: u64 = env.parse_or("MAX_MODEL_MB", 250)?;
        if max_model_mb == 0 {
            return Err(Error::InvalidEnv { name: "MAX_MODEL_MB", value: "0".into(), reason: "use at least 1".into() });
        }
        Ok(Config {
            shared,
            incoming_prefix,
            rejected_prefix,
            max_model_bytes: max_model_mb * 1024 * 1024,
            sidecar_wait: Duration::from_secs(env.parse_or("SIDECAR_WAIT_SECONDS", 10)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn defaults_apply() {
        let config = config(&[("MODEL_REPOSITORY", "registry")]).unwrap();
        assert_eq!(config.incoming_prefix, "incoming/");
        assert_eq!(config.rejected_prefix, "rejected/");
        assert_eq!(config.max_model_bytes, 250 * 1024 * 1024);
    }

    #[test]
    fn overlapping_prefixes_are_rejected() {
        let err = config(&[("MODEL_REPOSITORY", "r"), ("REJECTED_PREFIX", "incoming/rejected")]).unwrap_err();
        assert!(err.to_string().contains("REJECTED_PREFIX"), "{err}");
    }
}
