//! One ingest: read an uploaded model (and its sidecar), validate it, and
//! either register it or write a rejection report beside the upload. The
//! upload itself is never modified or deleted.

use std::sync::Arc;

use bytes::Bytes;
use chrono::Utc;
use serde::Serialize;
use sha2::{Digest, Sha256};
use shared::registry::ModelName;
use shared::store::ObjectStore;
use shared::{Error, Result};

use crate::register::{Outcome, Registrar, Upload};
use crate::sidecar::Sidecar;
use crate::validate::{validate, Rejection};

/// The result of one ingest that did not fail for a retryable reason.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum JobResult {
    Done(Outcome),
    Rejected(RejectionReport),
    /// Nothing to do, with the reason (a sidecar without its model, say).
    Skipped { status: &'static str, reason: String },
}

impl JobResult {
    fn skipped(reason: impl Into<String>) -> Self {
        JobResult::Skipped { status: "skipped", reason: reason.into() }
    }
}

/// The report written to `rejected/<model>/<timestamp>.json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RejectionReport {
    pub status: &'static str,
    pub model: String,
    pub upload: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sidecar: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    pub size_bytes: u64,
    pub rejected_at: String,
    pub code: &'static str,
    pub reason: String,
    /// Location of the written report, when one was written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<String>,
}

/// Keys of an upload's model and sidecar, and its model name.
#[derive(Debug, Clone)]
pub struct UploadKeys {
    pub name: String,
    pub model_key: String,
    pub sidecar_key: String,
}

/// Recognises `<incoming>/<model>.onnx` and `<incoming>/<model>.json`.
/// Returns `None` for keys outside the prefix or with another suffix.
pub fn upload_keys(key: &str, incoming_prefix: &str) -> Option<(UploadKeys, bool)> {
    let rest = key.strip_prefix(incoming_prefix)?;
    let (stem, is_sidecar) = if let Some(stem) = rest.strip_suffix(".onnx") {
        (stem, false)
    } else if let Some(stem) = rest.strip_suffix(".json") {
        (stem, true)
    } else {
        return None;
    };
    Some((
        UploadKeys {
            name: stem.to_string(),
            model_key: format!("{incoming_prefix}{stem}.onnx"),
            sidecar_key: format!("{incoming_prefix}{stem}.json"),
        },
        is_sidecar,
    ))
}

/// Turns a model name into one safe key segment for a report, even when the
/// name itself was rejected.
fn report_segment(name: &str) -> String {
    let cleaned: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') { c } else { '_' }).collect();
    let cleaned = cleaned.trim_start_matches('.').to_string();
    if cleaned.is_empty() {
        "unnamed".into()
    } else {
        cleaned
    }
}

pub struct Ingester {
    pub registrar: Registrar,
    pub max_model_bytes: u64,
    pub sidecar_wait: std::time::Duration,
    pub rejected_prefix: String,
}

impl Ingester {
    /// Ingests the upload that `key` in `uploads` belongs to. `key` may be the
    /// model or its sidecar. Returns [`Error::Storage`] for failures a retry
    /// can fix; everything else is a [`JobResult`].
    pub async fn ingest_key(&self, uploads: &Arc<dyn ObjectStore>, keys: &UploadKeys, triggered_by_sidecar: bool) -> Result<JobResult> {
        let Some(info) = uploads.head(&keys.model_key).await? else {
            let reason = if triggered_by_sidecar {
                format!("sidecar `{}` arrived before its model; the model upload will be ingested with it", keys.sidecar_key)
            } else {
                format!("`{}` no longer exists", keys.model_key)
            };
            return Ok(JobResult::skipped(reason));
        };

        // Wait briefly for a sidecar uploaded right after the model, so the
        // usual order (model, then metadata) registers one version.
        let mut sidecar_bytes = uploads.get(&keys.sidecar_key).await?;
        if sidecar_bytes.is_none() && !triggered_by_sidecar {
            let deadline = std::time::Instant::now() + self.sidecar_wait;
            while sidecar_bytes.is_none() && std::time::Instant::now() < deadline {
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                sidecar_bytes = uploads.get(&keys.sidecar_key).await?;
            }
        }
        let location = uploads.describe(&keys.model_key);
        let sidecar_location = sidecar_bytes.as_ref().map(|_| uploads.describe(&keys.sidecar_key));
        let reject = |rejection: Rejection, sha256: Option<String>| RejectionReport {
            status: "rejected",
            model: keys.name.clone(),
            upload: location.clone(),
            sidecar: sidecar_location.clone(),
            sha256,
            size_bytes: info.size,
            rejected_at: Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            code: rejection.code(),
            reason: rejection.to_string(),
            report: None,
        };

        // The size is checked before the file is read.
        if info.size > self.max_model_bytes {
            let report = reject(Rejection::TooLarge { size: info.size, limit: self.max_model_bytes }, None);
            return self.write_report(uploads, report).await;
        }
        let bytes = uploads.get(&keys.model_key).await?.unwrap_or_default();
        let result = self.ingest_bytes(&keys.name, &location, &bytes, sidecar_bytes.as_deref()).await?;
        match result {
            JobResult::Rejected(report) => {
                let report = RejectionReport { sidecar: sidecar_location, size_bytes: info.size, ..report };
                self.write_report(uploads, report).await
            }
            other => Ok(other),
        }
    }

    /// Validates and registers model bytes. Rejections are returned, not
    /// written; the caller decides where reports go.
    pub async fn ingest_bytes(&self, name: &str, location: &str, bytes: &[u8], sidecar_bytes: Option<&[u8]>) -> Result<JobResult> {
        let sha256 = hex::encode(Sha256::digest(bytes));
        let rejected = |rejection: Rejection| {
            JobResult::Rejected(RejectionReport {
                status: "rejected",
                model: name.to_string(),
                upload: location.to_string(),
                sidecar: None,
                sha256: Some(sha256.clone()),
                size_bytes: bytes.len() as u64,
                rejected_at: Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                code: rejection.code(),
                reason: rejection.to_string(),
                report: None,
            })
        };
        let model_name = match ModelName::parse(name) {
            Ok(model_name) => model_name,
            Err(err) => {
                let fix = "rename the uploaded file, or pass another --name to the ingest command";
                return Ok(rejected(Rejection::InvalidName(format!("{err}; {fix}"))));
            }
        };
        let sidecar = match sidecar_bytes.map(Sidecar::parse).transpose() {
            Ok(sidecar) => sidecar,
            Err(reason) => return Ok(rejected(Rejection::InvalidSidecar(reason))),
        };

        // Validation runs tract, which is CPU-bound and may panic, so it runs
        // on a blocking thread.
        let validation = {
            let model_name = model_name.clone();
            let bytes = bytes.to_vec();
            let sidecar = sidecar.clone();
            let max = self.max_model_bytes;
            tokio::task::spawn_blocking(move || validate(&model_name, &bytes, sidecar.as_ref(), max))
                .await
                .map_err(|err| Error::ModelLoad { model: name.to_string(), reason: err.to_string() })
        };
        let validated = match validation {
            Ok(Ok(validated)) => validated,
            Ok(Err(rejection)) => return Ok(rejected(rejection)),
            Err(err) => return Ok(rejected(Rejection::LoadFailed(err.to_string()))),
        };
        let upload = Upload { location: location.to_string(), bytes, sidecar_bytes };
        let outcome = self.registrar.register(&model_name, &upload, validated, sidecar.as_ref()).await?;
        Ok(JobResult::Done(outcome))
    }

    async fn write_report(&self, uploads: &Arc<dyn ObjectStore>, mut report: RejectionReport) -> Result<JobResult> {
        let stamp = Utc::now().format("%Y-%m-%dT%H-%M-%S%.3fZ");
        let key = format!("{}{}/{stamp}.json", self.rejected_prefix, report_segment(&report.model));
        report.report = Some(uploads.describe(&key));
        let body = serde_json::to_vec_pretty(&report).expect("reports serialize");
        uploads.put(&key, Bytes::from(body)).await?;
        Ok(JobResult::Rejected(report))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_keys_pair_model_and_sidecar() {
        let (keys, is_sidecar) = upload_keys("incoming/esol.json", "incoming/").unwrap();
        assert!(is_sidecar);
        assert_eq!(keys.name, "esol");
        assert_eq!(keys.model_key, "incoming/esol.onnx");
        assert!(upload_keys("incoming/readme.txt", "incoming/").is_none());
        assert!(upload_keys("batch/input/x.onnx", "incoming/").is_none());
    }

    #[test]
    fn report_segments_are_safe() {
        assert_eq!(report_segment("my model+v2"), "my_model_v2");
        assert_eq!(report_segment("../x"), "_x");
        assert_eq!(report_segment(""), "unnamed");
    }
}
