//! Handling one uploaded object: map its key, skip it when a summary shows
//! the same content was already scored, resolve the model, score the file
//! and write the summary. Used by both Lambda triggers and by the local
//! command.
//!
//! Duplicate deliveries: S3 and SQS deliver at least once, so the same object
//! can be handled twice, even at the same time. A redelivery after success
//! finds the summary for the same bucket, key and version (or ETag) and does
//! nothing. Two runs at the same time both score the file. That is safe,
//! because results appear only when an upload completes and both runs write
//! the same bytes. The summary, which marks the job done, is written last.
//! A lock object would save the duplicate work, but it needs a delete
//! permission and a way to expire the locks of crashed runs.
//!
//! NOTE: two concurrent runs write the same bytes only if they resolve the
//! same model version. When an alias such as `latest` moves between them, the
//! results of one version can end up beside the summary of the other.

use std::sync::Arc;
use std::time::Instant;

use shared::events::ObjectEvent;
use shared::models::{ModelHandle, Models};
use shared::store::ObjectStore;

use crate::config::Config;
use crate::error::JobError;
use crate::job::{Job, JobReport};
use crate::layout::{map_key, InputFormat, OutputKeys};
use crate::summary::{FormatInfo, InputIdentity, ModelInfo, ResultKeys, Status, Summary, Timings};

/// Opens the store of a bucket; in production an S3 client for that bucket.
pub type BucketStores = Box<dyn Fn(&str) -> Arc<dyn ObjectStore> + Send + Sync>;

pub struct Service {
    pub config: Config,
    pub models: Models,
    buckets: BucketStores,
}

/// Result of handling one object.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Scored, or rejected with a reason; either way the summary was written.
    Done(Box<Summary>),
    /// A summary for the same content shows it was already scored.
    AlreadyScored,
    /// Not a file to score: outside the input prefix, or deleted.
    Ignored(String),
}

/// A file to score and the model to score it with, for [`score_file`].
pub struct FileJob<'a> {
    pub input: &'a dyn ObjectStore,
    pub input_key: &'a str,
    pub identity: InputIdentity,
    pub format: Option<InputFormat>,
    pub output: &'a dyn ObjectStore,
    pub outputs: &'a OutputKeys,
    /// Model name and version (`None` for `latest`); `None` when the key
    /// names no model, which fails the file.
    pub model: Option<(String, Option<String>)>,
    /// Input prefix, for the message when the key names no model.
    pub input_prefix: &'a str,
    pub chunk_rows: usize,
}

impl Service {
    pub fn new(config: Config, models: Models, buckets: BucketStores) -> Self {
        Service { config, models, buckets }
    }

    /// Handles one object of an S3 notification. Returns an error only when
    /// retrying later may help; every other failure is in the summary.
    pub async fn process(&self, event: &ObjectEvent) -> Result<Outcome, JobError> {
        let Some(mapped) = map_key(&event.key, &self.config.input_prefix, &self.config.output_prefix) else {
            return Ok(Outcome::Ignored(format!("key is not a file under `{}`", self.config.input_prefix)));
        };
        // S3 allows keys such as `a/../b.csv`, which no store here can address
        // safely. Retrying cannot change the key, so the event is dropped.
        if let Err(err) = shared::store::validate_key(&event.key) {
            return Ok(Outcome::Ignored(format!("{err}; rename the object to a key without such segments")));
        }
        let store = (self.buckets)(&event.bucket);
        // NOTE: the content is read after this check, so an object replaced in
        // between is scored under the identity of the one checked here. Its own
        // event then finds a summary with a different ETag and scores it again.
        let Some(info) = store.head(&event.key).await.map_err(JobError::Storage)? else {
            return Ok(Outcome::Ignored("the object no longer exists".into()));
        };
        let identity = InputIdentity {
            bucket: Some(event.bucket.clone()),
            key: event.key.clone(),
            etag: Some(info.etag.trim_matches('"').to_string()).filter(|etag| !etag.is_empty()),
            version_id: info.version_id.clone(),
            size: Some(info.size),
        };
        if let (Some(sent), Some(current)) = (&event.etag, &identity.etag) {
            if sent.trim_matches('"') != current {
                // The object was replaced after this event; its own event
                // follows, and its current content is what both should score.
                tracing::info!(key = %event.key, event_etag = %sent, etag = %current, "object changed since the event; scoring its current content");
            }
        }

        if let Some(previous) = self.previous_summary(store.as_ref(), &mapped.outputs.summary).await? {
            if previous.status == Status::Succeeded && previous.input.same_object(&identity) {
                return Ok(Outcome::AlreadyScored);
            }
        }

        let job = FileJob {
            input: store.as_ref(),
            input_key: &event.key,
            identity,
            format: mapped.format,
            output: store.as_ref(),
            outputs: &mapped.outputs,
            model: mapped.model.map(|name| (name, mapped.version)),
            input_prefix: &self.config.input_prefix,
            chunk_rows: self.config.chunk_rows,
        };
        let summary = score_file(&self.models, job).await?;
        store.put(&mapped.outputs.summary, summary.to_json()).await.map_err(JobError::Storage)?;
        Ok(Outcome::Done(Box::new(summary)))
    }

    /// Reads an earlier summary. An unreadable one is treated as absent, so
    /// the file is scored again and the summary replaced.
    async fn previous_summary(&self, store: &dyn ObjectStore, key: &str) -> Result<Option<Summary>, JobError> {
        let Some(bytes) = store.get(key).await.map_err(JobError::Storage)? else { return Ok(None) };
        match serde_json::from_slice(&bytes) {
            Ok(summary) => Ok(Some(summary)),
            Err(err) => {
                tracing::warn!(summary = key, error = %err, "ignoring an unreadable summary");
                Ok(None)
            }
        }
    }
}

/// Resolves the model and scores a file. Returns the summary, with status
/// `failed` and the reason for any problem that retrying cannot fix, or an
/// error when retrying can fix it (the store or network failed).
pub async fn score_file(models: &Models, job: FileJob<'_>) -> Result<Summary, JobError> {
    let started_at = chrono::Utc::now();
    let started = Instant::now();
    let mut summary = Summary {
        status: Status::Failed,
        reason: None,
        input: job.identity.clone(),
        format: job.format.map(|f| FormatInfo { format: f.format, gzip: f.gzip }),
        model: None,
        outputs: None,
        rows: Default::default(),
        timings: Timings { started_at: started_at.to_rfc3339(), ..Default::default() },
    };

    let result = run_file(models, &job, &mut summary).await;
    summary.timings.finished_at = chrono::Utc::now().to_rfc3339();
    summary.timings.total_ms = started.elapsed().as_secs_f64() * 1000.0;
    match result {
        Ok(report) => {
            summary.status = Status::Succeeded;
            summary.rows = report.rows;
            summary.timings.inference_ms = report.inference_ms;
            summary.outputs = Some(ResultKeys {
                scored: job.output.describe(&job.outputs.scored),
                errors: job.output.describe(&job.outputs.errors),
            });
            tracing::info!(key = %job.input_key, rows = report.rows.read, scored = report.rows.scored, failed = report.rows.failed, total_ms = summary.timings.total_ms, "file scored");
            Ok(summary)
        }
        Err((err, _)) if err.is_retryable() => Err(err),
        Err((err, report)) => {
            tracing::warn!(key = %job.input_key, error = %err.chain(), "file rejected");
            summary.reason = Some(err.chain());
            summary.rows = report.rows;
            summary.timings.inference_ms = report.inference_ms;
            Ok(summary)
        }
    }
}

async fn run_file(models: &Models, job: &FileJob<'_>, summary: &mut Summary) -> Result<JobReport, (JobError, JobReport)> {
    let fail = |err: JobError| (err, JobReport::default());
    let no_model = || JobError::NoModel { key: job.input_key.to_string(), input_prefix: job.input_prefix.to_string() };
    let (name, version) = job.model.as_ref().ok_or_else(|| fail(no_model()))?;
    let format = job.format.ok_or_else(|| fail(JobError::UnsupportedFormat { key: job.input_key.to_string() }))?;
    let handle: ModelHandle = models.get(name, version.as_deref()).await.map_err(|err| fail(JobError::from_model(name, err)))?;
    summary.model = Some(ModelInfo {
        name: handle.manifest.name.clone(),
        version: handle.manifest.version,
        sha256: handle.manifest.sha256.clone(),
    });
    summary.timings.model_load_ms = handle.load_ms;
    let scoring = Job {
        input: job.input,
        input_key: job.input_key,
        format,
        output: job.output,
        outputs: job.outputs,
        model: &handle,
        chunk_rows: job.chunk_rows,
    };
    scoring.run().await
}
