//! Settings shared by every function, read from the environment once at cold
//! start. Each reader names the variable it failed on, so a bad deployment
//! fails at start-up with a message that says which setting to fix.

use std::str::FromStr;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::store::Location;

/// Settings that predict, batch-score and ingest share.
#[derive(Debug, Clone)]
pub struct SharedConfig {
    /// Where the model registry lives: `s3://bucket/prefix` or a folder path.
    pub repository: Location,
    /// Memory budget for loaded models; the least recently used model is
    /// evicted once the estimated total exceeds it.
    pub model_cache_bytes: u64,
    /// How long a resolved alias such as `latest` is trusted before the
    /// registry is read again, so new versions are served without a redeploy.
    pub alias_ttl: Duration,
    /// Path-style S3 addressing, which most S3-compatible servers need.
    pub force_path_style: bool,
    /// CloudWatch namespace of the Embedded Metric Format lines.
    pub metrics_namespace: String,
}

impl SharedConfig {
    pub fn from_env() -> Result<Self> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the settings through `lookup`, so tests can pass a map instead of
    /// changing the process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let env = Env(&lookup);
        let repository = match env.get("MODEL_REPOSITORY") {
            Some(value) => Location::parse(&value).map_err(|reason| Error::InvalidEnv {
                name: "MODEL_REPOSITORY",
                value,
                reason,
            })?,
            None => {
                return Err(Error::MissingEnv {
                    name: "MODEL_REPOSITORY",
                    hint: "set it to `s3://bucket/prefix` or to a folder such as `examples/registry`",
                })
            }
        };
        let cache_mb: u64 = env.parse_or("MODEL_CACHE_MB", 1024)?;
        if cache_mb == 0 {
            return Err(Error::InvalidEnv {
                name: "MODEL_CACHE_MB",
                value: "0".into(),
                reason: "the model cache needs at least 1 MB".into(),
            });
        }
        Ok(SharedConfig {
            repository,
            model_cache_bytes: cache_mb * 1024 * 1024,
            alias_ttl: Duration::from_secs(env.parse_or("ALIAS_TTL_SECONDS", 30)?),
            force_path_style: env.flag("AWS_S3_FORCE_PATH_STYLE")?,
            metrics_namespace: env.get("METRICS_NAMESPACE").unwrap_or_else(|| "ServerlessMaas".into()),
        })
    }
}

/// Typed access to environment variables with errors that name the variable.
pub struct Env<'a, F: Fn(&str) -> Option<String>>(pub &'a F);

impl<F: Fn(&str) -> Option<String>> Env<'_, F> {
    /// Returns the value, treating an empty or blank value as unset.
    pub fn get(&self, name: &str) -> Option<String> {
        (self.0)(name).filter(|value| !value.trim().is_empty())
    }

    pub fn parse_or<T>(&self, name: &'static str, default: T) -> Result<T>
    where
        T: FromStr,
        T::Err: std::fmt::Display,
    {
        match self.get(name) {
            None => Ok(default),
            Some(value) => value.trim().parse().map_err(|err: T::Err| Error::InvalidEnv {
                name,
                reason: format!("{err}; expected a {}", std::any::type_name::<T>()),
                value,
            }),
        }
    }

    /// Reads a boolean flag; unset means false.
    pub fn flag(&self, name: &'static str) -> Result<bool> {
        match self.get(name).map(|value| value.trim().to_ascii_lowercase()) {
            None => Ok(false),
            Some(value) => match value.as_str() {
                "true" | "1" | "yes" => Ok(true),
                "false" | "0" | "no" => Ok(false),
                _ => Err(Error::InvalidEnv { name, value, reason: "expected `true` or `false`".into() }),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<SharedConfig> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        SharedConfig::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn missing_repository_names_the_variable() {
        let err = config(&[]).unwrap_err();
        assert!(err.to_string().contains("`MODEL_REPOSITORY` is not set"), "{err}");
    }

    #[test]
    fn invalid_number_names_variable_and_value() {
        let err = config(&[("MODEL_REPOSITORY", "models"), ("MODEL_CACHE_MB", "lots")]).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("`MODEL_CACHE_MB`=`lots`"), "{text}");
    }

    #[test]
    fn invalid_flag_is_rejected() {
        let err = config(&[("MODEL_REPOSITORY", "models"), ("AWS_S3_FORCE_PATH_STYLE", "maybe")]).unwrap_err();
        assert!(err.to_string().contains("AWS_S3_FORCE_PATH_STYLE"), "{err}");
    }

    #[test]
    fn s3_repository_and_defaults_are_read() {
        let config = config(&[("MODEL_REPOSITORY", "s3://bucket/models"), ("AWS_S3_FORCE_PATH_STYLE", "true")]).unwrap();
        assert_eq!(config.repository, Location::S3 { bucket: "bucket".into(), prefix: "models/".into() });
        assert!(config.force_path_style);
        assert_eq!(config.alias_ttl, Duration::from_secs(30));
        assert_eq!(config.model_cache_bytes, 1024 * 1024 * 1024);
    }

    #[test]
    fn bucket_without_name_is_rejected() {
        let err = config(&[("MODEL_REPOSITORY", "s3://")]).unwrap_err();
        assert!(err.to_string().contains("MODEL_REPOSITORY"), "{err}");
    }
}

/// Exits with status 2 and a hint when the process was started outside a
/// Lambda runtime, where the runtime client would panic on the first missing
/// variable. `local_use` is the hint on running the function locally.
pub fn require_lambda_runtime(local_use: &str) {
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_none() {
        eprintln!("error: AWS_LAMBDA_RUNTIME_API is not set, so this is not a Lambda runtime; {local_use}");
        std::process::exit(2);
    }
}
