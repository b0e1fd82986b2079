//! S3 event notifications delivered to the function directly, without a
//! queue. Lambda retries a failed asynchronous invocation (twice, by
//! default), so the invocation fails only when an object failed in a way a
//! retry may fix.

use serde_json::{json, Value};
use shared::events::Notification;

use crate::service::Service;
use crate::trigger::{process_notification, Tally, TriggerError};

/// Handles every object. Returns a report per object, or
/// [`TriggerError::Retry`] when any object should be tried again.
pub async fn handle(service: &Service, notification: Notification, tally: &mut Tally) -> Result<Value, TriggerError> {
    let result = process_notification(service, notification, tally).await;
    if result.retry > 0 {
        return Err(TriggerError::Retry { failed: result.retry, objects: result.objects });
    }
    Ok(json!({ "objects": result.reports }))
}
