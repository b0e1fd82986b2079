//! The summary written beside every result: which input and model version
//! were used, how many rows were read, scored and failed, how long it took,
//! and why a file failed. A redelivered event compares the input's identity
//! with it to skip work already done.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Succeeded,
    Failed,
}

/// The scored object: bucket and key, and the version S3 reported for it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputIdentity {
    /// `None` for a local file.
    pub bucket: Option<String>,
    /// Object key, or the path of a local file.
    pub key: String,
    pub etag: Option<String>,
    pub version_id: Option<String>,
    pub size: Option<u64>,
}

impl InputIdentity {
    /// True when both name the same content: same bucket and key, and the
    /// same version id or, on an unversioned bucket, the same ETag.
    pub fn same_object(&self, other: &InputIdentity) -> bool {
        if self.bucket != other.bucket || self.key != other.key {
            return false;
        }
        match (&self.version_id, &other.version_id) {
            (Some(a), Some(b)) => a == b,
            _ => self.etag.is_some() && self.etag == other.etag,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelInfo {
    pub name: String,
    pub version: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowCounts {
    /// Data rows in the input, header excluded.
    pub read: u64,
    pub scored: u64,
    /// Rows written to the errors file instead of the results.
    pub failed: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    pub started_at: String,
    pub finished_at: String,
    pub total_ms: f64,
    /// Time spent fetching and compiling the model; `None` when it was cached.
    pub model_load_ms: Option<f64>,
    /// Time inside the model, summed over mini-batches.
    pub inference_ms: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub status: Status,
    /// Reason the file failed; absent when it succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub input: InputIdentity,
    /// `csv` or `jsonl`, with `gzip: true` when the input was compressed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<FormatInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelInfo>,
    /// Keys (or paths) of the results; absent when the file failed, because
    /// a failed file leaves no results.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outputs: Option<ResultKeys>,
    pub rows: RowCounts,
    pub timings: Timings,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormatInfo {
    pub format: crate::layout::Format,
    pub gzip: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultKeys {
    pub scored: String,
    pub errors: String,
}

impl Summary {
    pub fn to_json(&self) -> bytes::Bytes {
        let mut text = serde_json::to_vec_pretty(self).unwrap_or_default();
        text.push(b'\n');
        text.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(etag: Option<&str>, version: Option<&str>) -> InputIdentity {
        InputIdentity {
            bucket: Some("b".into()),
            key: "batch/input/m/a.csv".into(),
            etag: etag.map(str::to_string),
            version_id: version.map(str::to_string),
            size: Some(10),
        }
    }

    #[test]
    fn identity_compares_version_then_etag() {
        assert!(identity(Some("e1"), None).same_object(&identity(Some("e1"), None)));
        assert!(!identity(Some("e1"), None).same_object(&identity(Some("e2"), None)));
        assert!(identity(Some("e1"), Some("v1")).same_object(&identity(Some("e1"), Some("v1"))));
        assert!(!identity(Some("e1"), Some("v1")).same_object(&identity(Some("e1"), Some("v2"))));
        // Without any version tag nothing proves the content is the same.
        assert!(!identity(None, None).same_object(&identity(None, None)));
    }
}
