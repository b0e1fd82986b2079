//! Lambda events for ingest: SQS messages carrying S3 notifications, with one
//! report per message, or S3 notifications delivered directly.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use shared::events::{parse_notification, parse_trigger, BatchItemFailure, BatchResponse, Notification, ObjectEvent, Trigger};
use shared::store::{Location, ObjectStore};
use shared::{ErrorKind, Result};

use crate::job::{upload_keys, Ingester, JobResult};

/// Counts for the invocation's metrics line.
#[derive(Debug, Default)]
pub struct Tally {
    pub registered: u64,
    pub failed: u64,
    pub last_model: Option<String>,
}

pub struct Handler {
    pub ingester: Ingester,
    pub incoming_prefix: String,
    pub force_path_style: bool,
    metrics_namespace: String,
    /// One store per bucket that uploads arrive in, opened on first use.
    buckets: Mutex<HashMap<String, Arc<dyn ObjectStore>>>,
}

impl Handler {
    /// Builds the handler from the function's configuration.
    pub async fn lambda(config: &crate::Config) -> Result<Self> {
        let services = crate::service::Services::new(config).await?;
        Ok(Handler::new(services.ingester, config.incoming_prefix.clone(), config.shared.force_path_style)
            .with_metrics_namespace(config.shared.metrics_namespace.clone()))
    }

    fn with_metrics_namespace(mut self, namespace: String) -> Self {
        self.metrics_namespace = namespace;
        self
    }

    /// Handles one invocation and prints its metrics line.
    pub async fn invoke(&self, event: Value) -> std::result::Result<Value, lambda_runtime::Error> {
        let mut tally = Tally::default();
        let result = self.handle(event, &mut tally).await;
        shared::metrics::Invocation {
            model: tally.last_model.clone(),
            rows: tally.registered,
            errors: tally.failed + u64::from(result.is_err()),
            ..Default::default()
        }
        .emit(&self.metrics_namespace, "ingest");
        result.map_err(|err| {
            tracing::error!(error = %err.chain(), "invocation failed");
            err.chain().into()
        })
    }

    pub fn new(ingester: Ingester, incoming_prefix: String, force_path_style: bool) -> Self {
        Handler {
            ingester,
            incoming_prefix,
            force_path_style,
            metrics_namespace: "ServerlessMaas".into(),
            buckets: Mutex::default(),
        }
    }

    async fn bucket(&self, name: &str) -> Result<Arc<dyn ObjectStore>> {
        if let Some(store) = self.buckets.lock().unwrap_or_else(|e| e.into_inner()).get(name) {
            return Ok(store.clone());
        }
        let location = Location::S3 { bucket: name.to_string(), prefix: String::new() };
        let store = shared::store::open(&location, self.force_path_style).await?;
        self.buckets.lock().unwrap_or_else(|e| e.into_inner()).insert(name.to_string(), store.clone());
        Ok(store)
    }

    /// Ingests every object of a notification. Returns the first retryable
    /// error; other failures are logged and counted.
    async fn handle_objects(&self, objects: &[ObjectEvent], tally: &mut Tally) -> Result<Vec<Value>> {
        let mut results = Vec::new();
        for object in objects {
            let Some((keys, is_sidecar)) = upload_keys(&object.key, &self.incoming_prefix) else {
                tracing::warn!(bucket = %object.bucket, key = %object.key, prefix = %self.incoming_prefix, "ignored object that is not an upload of a model or sidecar");
                continue;
            };
            if let Err(err) = shared::store::validate_key(&object.key) {
                // Retrying cannot change the key, so this object is dropped.
                tally.failed += 1;
                let reason = format!("{err}; upload the model again under a key without such segments");
                tracing::warn!(bucket = %object.bucket, key = %object.key, reason = %reason, "ignored an upload whose key cannot be stored");
                results.push(json!({"status": "skipped", "key": object.key, "reason": reason}));
                continue;
            }
            let uploads = self.bucket(&object.bucket).await?;
            tally.last_model = Some(keys.name.clone());
            let result = self.ingester.ingest_key(&uploads, &keys, is_sidecar).await;
            match &result {
                Ok(JobResult::Done(outcome)) => {
                    tally.registered += 1;
                    tracing::info!(bucket = %object.bucket, key = %object.key, outcome = %json!(outcome), "model ingested");
                }
                Ok(JobResult::Rejected(report)) => {
                    tally.failed += 1;
                    tracing::warn!(bucket = %object.bucket, key = %object.key, code = report.code, reason = %report.reason, "model rejected");
                }
                Ok(JobResult::Skipped { reason, .. }) => tracing::info!(bucket = %object.bucket, key = %object.key, reason = %reason, "nothing to ingest"),
                Err(err) => {
                    tally.failed += 1;
                    tracing::error!(bucket = %object.bucket, key = %object.key, error = %err.chain(), "ingest failed");
                }
            }
            results.push(serde_json::to_value(result?).unwrap_or(Value::Null));
        }
        Ok(results)
    }

    /// Handles one Lambda event. SQS batches get a partial batch response;
    /// a direct S3 event fails the invocation only for retryable errors.
    pub async fn handle(&self, event: Value, tally: &mut Tally) -> std::result::Result<Value, shared::Error> {
        let trigger = parse_trigger(&event).map_err(shared::Error::invalid_input)?;
        match trigger {
            Trigger::S3(Notification::Test) => Ok(json!({"status": "skipped", "reason": "S3 test event"})),
            Trigger::S3(Notification::Objects(objects)) => Ok(json!({"results": self.handle_objects(&objects, tally).await?})),
            Trigger::Sqs(messages) => {
                let mut response = BatchResponse::default();
                for message in messages {
                    let span = tracing::info_span!("message", message_id = %message.message_id);
                    let _entered = span.enter();
                    let notification = serde_json::from_str::<Value>(&message.body)
                        .map_err(|err| format!("the message body is not JSON: {err}"))
                        .and_then(|document| parse_notification(&document));
                    let objects = match notification {
                        Ok(Notification::Test) => {
                            tracing::info!("skipped S3 test event");
                            continue;
                        }
                        Ok(Notification::Objects(objects)) => objects,
                        Err(reason) => {
                            // Retrying cannot turn this body into a notification.
                            tally.failed += 1;
                            tracing::error!(reason = %reason, "dropped a message that is not an S3 notification");
                            continue;
                        }
                    };
                    if let Err(err) = self.handle_objects(&objects, tally).await {
                        if err.kind() == ErrorKind::Unavailable {
                            response.batch_item_failures.push(BatchItemFailure { item_identifier: message.message_id.clone() });
                        }
                    }
                }
                Ok(serde_json::to_value(response).expect("responses serialize"))
            }
        }
    }
}
