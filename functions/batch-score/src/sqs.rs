//! SQS batches whose messages carry S3 event notifications. Each message is
//! handled on its own, and only the messages that a retry may fix are listed
//! in the partial batch response. A body that is not an S3 notification can
//! never succeed, so it is logged and acknowledged instead of retried.

use serde_json::Value;
use shared::events::{parse_notification, BatchItemFailure, BatchResponse, QueueMessage};
use tracing::Instrument;

use crate::service::Service;
use crate::trigger::{process_notification, Tally};

/// Handles each message in turn. Returns the ids of the messages to retry.
pub async fn handle(service: &Service, messages: Vec<QueueMessage>, tally: &mut Tally) -> Value {
    let mut response = BatchResponse::default();
    for message in messages {
        let span = tracing::info_span!("message", message_id = %message.message_id, receive_count = message.receive_count);
        let retry = handle_message(service, &message, tally).instrument(span).await;
        if retry {
            response.batch_item_failures.push(BatchItemFailure { item_identifier: message.message_id });
        }
    }
    serde_json::to_value(response).unwrap_or_default()
}

/// Returns true when the message should be retried.
async fn handle_message(service: &Service, message: &QueueMessage, tally: &mut Tally) -> bool {
    let notification = match serde_json::from_str::<Value>(&message.body) {
        Ok(document) => parse_notification(&document),
        Err(err) => Err(format!("the body is not JSON ({err})")),
    };
    let notification = match notification {
        Ok(notification) => notification,
        Err(reason) => {
            tracing::warn!(reason = %reason, body_bytes = message.body.len(), "dropping a message that is not an S3 event notification");
            tally.metrics.errors += 1;
            return false;
        }
    };
    let result = process_notification(service, notification, tally).await;
    if result.retry > 0 {
        tracing::warn!(failed = result.retry, objects = result.objects, "message will be retried");
    }
    result.retry > 0
}
