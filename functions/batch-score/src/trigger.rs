//! The Lambda handler: recognises the event, hands SQS batches to [`sqs`]
//! and direct S3 notifications to [`s3`], and prints one metrics line per
//! invocation.
//!
//! [`sqs`]: crate::sqs
//! [`s3`]: crate::s3

use lambda_runtime::{Diagnostic, LambdaEvent};
use serde_json::{json, Value};
use shared::events::{parse_trigger, Notification, Trigger};

use crate::service::{Outcome, Service};
use crate::summary::Status;

/// Failure of a whole invocation.
#[derive(Debug, thiserror::Error)]
pub enum TriggerError {
    #[error("the event is neither an SQS batch nor an S3 event notification: {reason}")]
    InvalidEvent { reason: String },

    #[error("{failed} of {objects} objects failed with a storage error; retry the event")]
    Retry { failed: usize, objects: usize },
}

impl From<TriggerError> for Diagnostic {
    fn from(err: TriggerError) -> Self {
        let error_type = match err {
            TriggerError::InvalidEvent { .. } => "InvalidEvent",
            TriggerError::Retry { .. } => "Retryable",
        };
        Diagnostic { error_type: error_type.into(), error_message: err.to_string() }
    }
}

/// Figures of one invocation, for its metrics line.
#[derive(Debug, Default)]
pub struct Tally {
    pub metrics: shared::metrics::Invocation,
}

impl Tally {
    fn record(&mut self, outcome: &Result<Outcome, crate::error::JobError>) {
        match outcome {
            Ok(Outcome::Done(summary)) => {
                if let Some(model) = &summary.model {
                    self.metrics.model = Some(model.name.clone());
                    self.metrics.version = Some(model.version);
                }
                if let Some(ms) = summary.timings.model_load_ms {
                    *self.metrics.model_load_ms.get_or_insert(0.0) += ms;
                }
                *self.metrics.inference_ms.get_or_insert(0.0) += summary.timings.inference_ms;
                self.metrics.rows += summary.rows.scored;
                self.metrics.errors += summary.rows.failed + u64::from(summary.status == Status::Failed);
            }
            Ok(_) => {}
            Err(_) => self.metrics.errors += 1,
        }
    }
}

/// Result of handling every object of one notification.
#[derive(Debug, Default)]
pub struct NotificationResult {
    /// Objects that failed in a way a retry may fix.
    pub retry: usize,
    pub objects: usize,
    /// One line per object, for the direct invocation's response.
    pub reports: Vec<Value>,
}

/// Handles each object of a notification in turn. One object's failure
/// does not stop the others.
pub async fn process_notification(service: &Service, notification: Notification, tally: &mut Tally) -> NotificationResult {
    let objects = match notification {
        Notification::Test => {
            tracing::info!("S3 test event acknowledged");
            return NotificationResult::default();
        }
        Notification::Objects(objects) => objects,
    };
    let mut result = NotificationResult { objects: objects.len(), ..Default::default() };
    for object in objects {
        let outcome = service.process(&object).await;
        tally.record(&outcome);
        let report = match &outcome {
            Ok(Outcome::Done(summary)) => {
                json!({"bucket": object.bucket, "key": object.key, "status": summary.status, "reason": summary.reason, "rows": summary.rows})
            }
            Ok(Outcome::AlreadyScored) => {
                tracing::info!(bucket = %object.bucket, key = %object.key, "already scored; skipping the redelivered event");
                json!({"bucket": object.bucket, "key": object.key, "status": "already_scored"})
            }
            Ok(Outcome::Ignored(reason)) => {
                tracing::warn!(bucket = %object.bucket, key = %object.key, reason = %reason, "object ignored");
                json!({"bucket": object.bucket, "key": object.key, "status": "ignored", "reason": reason})
            }
            Err(err) => {
                tracing::error!(bucket = %object.bucket, key = %object.key, error = %err.chain(), "failed to score file; it will be retried");
                result.retry += 1;
                json!({"bucket": object.bucket, "key": object.key, "status": "retry", "reason": err.chain()})
            }
        };
        result.reports.push(report);
    }
    result
}

/// Handles one Lambda event. Returns the partial batch response for SQS,
/// and a report per object for a direct S3 event.
pub async fn handle(service: &Service, event: LambdaEvent<Value>) -> Result<Value, TriggerError> {
    let mut tally = Tally::default();
    let response = match parse_trigger(&event.payload) {
        Ok(Trigger::Sqs(messages)) => Ok(crate::sqs::handle(service, messages, &mut tally).await),
        Ok(Trigger::S3(notification)) => crate::s3::handle(service, notification, &mut tally).await,
        Err(reason) => {
            tracing::warn!(reason = %reason, "invalid event");
            Err(TriggerError::InvalidEvent { reason })
        }
    };
    tally.metrics.emit(&service.config.shared.metrics_namespace, "batch-score");
    response
}
