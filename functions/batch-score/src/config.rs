//! Settings of the batch-score function, read from the environment at cold
//! start, on top of the settings every function shares.

use shared::config::{Env, SharedConfig};
use shared::Error;

/// Most rows one inference call may take. A mini-batch this large already
/// amortises the per-call cost, and a larger one only costs memory.
pub const MAX_CHUNK_ROWS: usize = 1 << 20;

#[derive(Debug, Clone)]
pub struct Config {
    pub shared: SharedConfig,
    /// Key prefix that uploads arrive under, ending with `/`.
    pub input_prefix: String,
    /// Key prefix that results are written under, ending with `/`. It never
    /// overlaps the input prefix, so the function cannot trigger itself.
    pub output_prefix: String,
    /// Rows sent to the model per inference call.
    pub chunk_rows: usize,
}

impl Config {
    pub fn from_env() -> shared::Result<Self> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the settings through `lookup`. Returns an error naming the
    /// variable when a value is invalid or the two prefixes overlap.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> shared::Result<Self> {
        let shared = SharedConfig::from_lookup(&lookup)?;
        let env = Env(&lookup);
        let input_prefix = prefix(&env, "BATCH_INPUT_PREFIX", "batch/input/")?;
        let output_prefix = prefix(&env, "BATCH_OUTPUT_PREFIX", "batch/output/")?;
        if input_prefix.starts_with(&output_prefix) || output_prefix.starts_with(&input_prefix) {
            return Err(Error::InvalidEnv {
                name: "BATCH_OUTPUT_PREFIX",
                value: output_prefix,
                reason: format!(
                    "it overlaps BATCH_INPUT_PREFIX `{input_prefix}`, so results would trigger the function again; \
                     use two separate prefixes such as `batch/input/` and `batch/output/`"
                ),
            });
        }
        let chunk_rows: usize = env.parse_or("BATCH_CHUNK_ROWS", 1024)?;
        if !(1..=MAX_CHUNK_ROWS).contains(&chunk_rows) {
            return Err(Error::InvalidEnv {
                name: "BATCH_CHUNK_ROWS",
                value: chunk_rows.to_string(),
                reason: format!("use 1 to {MAX_CHUNK_ROWS} rows"),
            });
        }
        Ok(Config { shared, input_prefix, output_prefix, chunk_rows })
    }
}

/// Reads a key prefix and normalises it to end with `/`.
fn prefix<F: Fn(&str) -> Option<String>>(env: &Env<'_, F>, name: &'static str, default: &str) -> shared::Result<String> {
    let value = env.get(name).unwrap_or_else(|| default.to_string());
    let trimmed = value.trim().trim_start_matches('/');
    let normalised = if trimmed.ends_with('/') { trimmed.to_string() } else { format!("{trimmed}/") };
    if trimmed.is_empty() || shared::store::validate_key(&normalised).is_err() {
        return Err(Error::InvalidEnv {
            name,
            value,
            reason: "use a relative key prefix such as `batch/input/`".into(),
        });
    }
    Ok(normalised)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> shared::Result<Config> {
        let mut map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        map.entry("MODEL_REPOSITORY".into()).or_insert_with(|| "examples/registry".into());
        Config::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn defaults_match_the_template() {
        let config = config(&[]).unwrap();
        assert_eq!(config.input_prefix, "batch/input/");
        assert_eq!(config.output_prefix, "batch/output/");
        assert_eq!(config.chunk_rows, 1024);
    }

    #[test]
    fn prefixes_gain_a_trailing_slash() {
        let config = config(&[("BATCH_INPUT_PREFIX", "/in"), ("BATCH_OUTPUT_PREFIX", "out/")]).unwrap();
        assert_eq!(config.input_prefix, "in/");
        assert_eq!(config.output_prefix, "out/");
    }

    #[test]
    fn overlapping_prefixes_are_rejected() {
        for (input, output) in [("batch/", "batch/output/"), ("batch/input/", "batch/"), ("same/", "same")] {
            let err = config(&[("BATCH_INPUT_PREFIX", input), ("BATCH_OUTPUT_PREFIX", output)]).unwrap_err();
            assert!(err.to_string().contains("BATCH_OUTPUT_PREFIX"), "{input} {output}: {err}");
            assert!(err.to_string().contains("trigger the function again"), "{err}");
        }
    }

    #[test]
    fn invalid_prefix_and_chunk_size_name_the_variable() {
        let err = config(&[("BATCH_INPUT_PREFIX", "a/../b")]).unwrap_err();
        assert!(err.to_string().contains("BATCH_INPUT_PREFIX"), "{err}");
        let err = config(&[("BATCH_CHUNK_ROWS", "0")]).unwrap_err();
        assert!(err.to_string().contains("BATCH_CHUNK_ROWS"), "{err}");
        let err = config(&[("BATCH_CHUNK_ROWS", "many")]).unwrap_err();
        assert!(err.to_string().contains("`BATCH_CHUNK_ROWS`=`many`"), "{err}");
    }
}
