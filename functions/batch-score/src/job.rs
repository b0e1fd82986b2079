//! Scoring one file, streaming: read and parse on a blocking thread, run each
//! mini-batch through the model and format it on another, and write the
//! results with [`Upload`]s that become visible only when complete. A
//! failure aborts both uploads, so no partial output is ever left.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use shared::features::RowLayout;
use shared::manifest::Manifest;
use shared::models::ModelHandle;
use shared::runtime::LoadedModel;
use shared::store::{ObjectStore, Upload};
use tokio::sync::mpsc;

use crate::error::JobError;
use crate::input::{self, Chunk, ChannelReader, RowError};
use crate::layout::{InputFormat, OutputKeys};
use crate::output::{error_lines, RowWriter};
use crate::summary::RowCounts;

/// One file to score.
pub struct Job<'a> {
    pub input: &'a dyn ObjectStore,
    pub input_key: &'a str,
    pub format: InputFormat,
    pub output: &'a dyn ObjectStore,
    pub outputs: &'a OutputKeys,
    pub model: &'a ModelHandle,
    pub chunk_rows: usize,
}

/// Rows and inference time of a finished or failed job.
#[derive(Debug, Default, Clone)]
pub struct JobReport {
    pub rows: RowCounts,
    pub inference_ms: f64,
}

/// Messages from the parsing thread: first the CSV header (`None` for JSON
/// Lines), then mini-batches.
enum Parsed {
    Start(Option<csv::ByteRecord>),
    Chunk(Chunk),
}

impl Job<'_> {
    /// Scores the file and completes the results. On failure nothing is
    /// written, and the report counts the rows handled before it.
    pub async fn run(&self) -> Result<JobReport, (JobError, JobReport)> {
        let mut report = JobReport::default();
        let location = self.input.describe(self.input_key);
        RowLayout::new(&self.model.manifest, &self.model.model.inputs)
            .map_err(|source| (JobError::Model { model: self.model.manifest.name.clone(), source }, report.clone()))?;

        // Stage 1 and 2: the store reader feeds the parsing thread.
        let reader = match self.input.get_stream(self.input_key).await {
            Ok(Some(reader)) => reader,
            Ok(None) => return Err((JobError::InputNotFound { location }, report)),
            Err(err) => return Err((JobError::Storage(err), report)),
        };
        let bytes = ChannelReader::new(input::pump(reader, location.clone()));
        let mut parsed = spawn_parser(bytes, self.format, self.model, self.chunk_rows, location.clone());
        let csv_header = match parsed.recv().await {
            Some(Ok(Parsed::Start(header))) => header,
            Some(Err(err)) => return Err((err, report)),
            Some(Ok(Parsed::Chunk(_))) | None => {
                let reason = "the parsing thread stopped before reading the header".into();
                return Err((JobError::Internal { location, reason }, report));
            }
        };

        // Stage 3: score and write each mini-batch as it arrives.
        let mut uploads = match Uploads::start(self.output, self.outputs).await {
            Ok(uploads) => uploads,
            Err(err) => return Err((JobError::Storage(err), report)),
        };
        let writer = RowWriter::new(csv_header, self.model.manifest.clone(), self.model.model.outputs.clone());
        let result = self.score_all(&mut parsed, writer, &mut uploads, &mut report, &location).await;
        match result {
            Ok(()) => match uploads.complete().await {
                Ok(()) => Ok(report),
                Err(err) => Err((JobError::Storage(err), report)),
            },
            Err(err) => {
                uploads.abort().await;
                Err((err, report))
            }
        }
    }

    async fn score_all(
        &self,
        parsed: &mut mpsc::Receiver<Result<Parsed, JobError>>,
        mut writer: RowWriter,
        uploads: &mut Uploads,
        report: &mut JobReport,
        location: &str,
    ) -> Result<(), JobError> {
        while let Some(message) = parsed.recv().await {
            let Parsed::Chunk(chunk) = message? else { continue };
            report.rows.read += chunk.rows_read();
            let scored;
            (writer, scored) = score_chunk(writer, chunk, self.model.manifest.clone(), self.model.model.clone(), location).await?;
            report.rows.scored += scored.scored;
            report.rows.failed += scored.errors.len() as u64;
            report.inference_ms += scored.inference_ms;
            if !scored.errors.is_empty() {
                uploads.errors.write(Bytes::from(error_lines(&scored.errors))).await.map_err(JobError::Storage)?;
            }
            if !scored.text.is_empty() {
                uploads.scored.write(Bytes::from(scored.text)).await.map_err(JobError::Storage)?;
            }
        }
        if report.rows.read == 0 {
            return Err(JobError::Empty { location: location.to_string() });
        }
        let tail = writer.finish();
        if !tail.is_empty() {
            uploads.scored.write(Bytes::from(tail)).await.map_err(JobError::Storage)?;
        }
        Ok(())
    }
}

/// Starts the thread that decompresses and parses the input.
fn spawn_parser(
    bytes: ChannelReader,
    format: InputFormat,
    model: &ModelHandle,
    chunk_rows: usize,
    location: String,
) -> mpsc::Receiver<Result<Parsed, JobError>> {
    // Two mini-batches in flight let parsing run ahead of inference without
    // holding more of the file.
    let (sender, receiver) = mpsc::channel(2);
    let manifest = model.manifest.clone();
    let loaded = model.model.clone();
    tokio::task::spawn_blocking(move || {
        let failed = |err: JobError| {
            let _ = sender.blocking_send(Err(err));
        };
        let layout = match RowLayout::new(&manifest, &loaded.inputs) {
            Ok(layout) => layout,
            Err(source) => return failed(JobError::Model { model: manifest.name.clone(), source }),
        };
        let (mut source, header) = match input::open(format, bytes, &layout, &location) {
            Ok(opened) => opened,
            Err(err) => return failed(err),
        };
        if sender.blocking_send(Ok(Parsed::Start(header))).is_err() {
            return;
        }
        loop {
            let message = match source.next_chunk(&layout, chunk_rows) {
                Ok(Some(chunk)) => Ok(Parsed::Chunk(chunk)),
                Ok(None) => return,
                Err(err) => Err(err),
            };
            let failed = message.is_err();
            // A closed channel means the job stopped; stop reading too.
            if sender.blocking_send(message).is_err() || failed {
                return;
            }
        }
    });
    receiver
}

/// A mini-batch after inference.
struct ScoredChunk {
    text: Vec<u8>,
    scored: u64,
    errors: Vec<RowError>,
    inference_ms: f64,
}

/// Runs one mini-batch through the model and formats it, on a blocking
/// thread. When inference fails, every row of the chunk becomes a row error
/// and the file goes on.
async fn score_chunk(
    mut writer: RowWriter,
    chunk: Chunk,
    manifest: Arc<Manifest>,
    model: Arc<LoadedModel>,
    location: &str,
) -> Result<(RowWriter, ScoredChunk), JobError> {
    let joined = tokio::task::spawn_blocking(move || {
        let mut errors = chunk.errors;
        let rows = chunk.rows.len();
        if rows == 0 {
            let scored = ScoredChunk { text: Vec::new(), scored: 0, errors, inference_ms: 0.0 };
            return (writer, scored);
        }
        let started = Instant::now();
        let outcome = RowLayout::new(&manifest, &model.inputs)
            .and_then(|layout| layout.tensor(chunk.values))
            .and_then(|tensor| model.run(vec![tensor]));
        let inference_ms = started.elapsed().as_secs_f64() * 1000.0;
        let text = outcome.and_then(|outputs| writer.write(chunk.rows, &outputs));
        match text {
            Ok(text) => (writer, ScoredChunk { text, scored: rows as u64, errors, inference_ms }),
            Err(err) => {
                tracing::warn!(model = %model.label, rows, error = %err.chain(), "inference failed for a mini-batch; its rows go to the errors file");
                let reason = format!("inference failed: {}", err.chain());
                let failed = chunk.lines.iter().zip(chunk.ids).map(|(&line, id)| RowError { line, id, column: None, reason: reason.clone() });
                errors.extend(failed);
                errors.sort_by_key(|error| error.line);
                (writer, ScoredChunk { text: Vec::new(), scored: 0, errors, inference_ms })
            }
        }
    })
    .await;
    joined.map_err(|err| JobError::Internal { location: location.to_string(), reason: format!("scoring thread failed: {err}") })
}

/// The two result files being written.
struct Uploads {
    scored: Box<dyn Upload>,
    errors: Box<dyn Upload>,
}

impl Uploads {
    async fn start(store: &dyn ObjectStore, keys: &OutputKeys) -> shared::Result<Self> {
        let scored = store.start_upload(&keys.scored).await?;
        match store.start_upload(&keys.errors).await {
            Ok(errors) => Ok(Uploads { scored, errors }),
            Err(err) => {
                abort(scored, &keys.scored).await;
                Err(err)
            }
        }
    }

    /// Completes the results, scored rows first. When the errors file fails
    /// after the scored file completed, the job is retried and rewrites both.
    async fn complete(self) -> shared::Result<()> {
        let Uploads { scored, errors } = self;
        if let Err(err) = scored.complete().await {
            abort(errors, "errors file").await;
            return Err(err);
        }
        errors.complete().await
    }

    async fn abort(self) {
        abort(self.scored, "scored file").await;
        abort(self.errors, "errors file").await;
    }
}

/// Aborts an upload. A failed abort is logged: S3 keeps the parts until the
/// bucket's lifecycle rule removes them, but nothing appears at the key.
async fn abort(upload: Box<dyn Upload>, what: &str) {
    if let Err(err) = upload.abort().await {
        tracing::warn!(upload = what, error = %err.chain(), "failed to abort upload");
    }
}
