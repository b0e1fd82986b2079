//! Triggers of the queue-driven functions: SQS messages that carry S3 event
//! notifications, or S3 notifications delivered directly. Object keys arrive
//! form-URL-encoded (`+` is a space, `%2B` a plus, UTF-8 percent-encoded) and
//! are decoded here.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One object named by an S3 notification record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectEvent {
    pub event_name: String,
    pub bucket: String,
    /// The decoded key.
    pub key: String,
    pub size: Option<u64>,
    pub etag: Option<String>,
    pub version_id: Option<String>,
    pub sequencer: Option<String>,
}

/// Content of one S3 notification document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notification {
    Objects(Vec<ObjectEvent>),
    /// `s3:TestEvent`, which S3 sends when notifications are configured.
    Test,
}

/// A Lambda event for the queue-driven functions.
#[derive(Debug, Clone, PartialEq)]
pub enum Trigger {
    /// SQS messages, each to be reported on its own.
    Sqs(Vec<QueueMessage>),
    /// A notification delivered without a queue.
    S3(Notification),
}

#[derive(Debug, Clone, PartialEq)]
pub struct QueueMessage {
    pub message_id: String,
    pub body: String,
    /// How many times SQS has delivered this message, 1 on the first try.
    pub receive_count: u32,
}

/// The partial batch response, which lists the SQS messages to retry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchResponse {
    #[serde(rename = "batchItemFailures")]
    pub batch_item_failures: Vec<BatchItemFailure>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchItemFailure {
    #[serde(rename = "itemIdentifier")]
    pub item_identifier: String,
}

/// Decodes an object key as S3 writes it into notifications. Returns a
/// message when the percent-encoding is not valid UTF-8.
pub fn decode_key(raw: &str) -> Result<String, String> {
    let spaced = raw.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .map(|key| key.into_owned())
        .map_err(|_| format!("object key `{raw}` is not valid percent-encoded UTF-8"))
}

/// Parses an S3 notification document. Returns a message saying what is
/// missing when the document is not one.
pub fn parse_notification(document: &Value) -> Result<Notification, String> {
    if document.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
        return Ok(Notification::Test);
    }
    let records = document
        .get("Records")
        .and_then(Value::as_array)
        .ok_or("the message is not an S3 event notification: it has no `Records` array")?;
    let mut objects = Vec::with_capacity(records.len());
    for (index, record) in records.iter().enumerate() {
        let text = |path: &[&str]| -> Option<String> {
            let mut value = record;
            for part in path {
                value = value.get(part)?;
            }
            value.as_str().map(str::to_string)
        };
        let missing = |what: &str| format!("record {index} of the S3 notification has no {what}");
        let raw_key = text(&["s3", "object", "key"]).ok_or_else(|| missing("`s3.object.key`"))?;
        objects.push(ObjectEvent {
            event_name: text(&["eventName"]).unwrap_or_default(),
            bucket: text(&["s3", "bucket", "name"]).ok_or_else(|| missing("`s3.bucket.name`"))?,
            key: decode_key(&raw_key)?,
            size: record.pointer("/s3/object/size").and_then(Value::as_u64),
            etag: text(&["s3", "object", "eTag"]).filter(|e| !e.is_empty()),
            version_id: text(&["s3", "object", "versionId"]).filter(|v| !v.is_empty()),
            sequencer: text(&["s3", "object", "sequencer"]),
        });
    }
    Ok(Notification::Objects(objects))
}

/// Recognises the event shape. Returns a message for anything that is
/// neither an SQS batch nor an S3 notification.
pub fn parse_trigger(event: &Value) -> Result<Trigger, String> {
    let records = event.get("Records").and_then(Value::as_array);
    let from_sqs = records
        .and_then(|r| r.first())
        .and_then(|r| r.get("eventSource"))
        .and_then(Value::as_str)
        == Some("aws:sqs");
    if from_sqs {
        let messages = records
            .unwrap()
            .iter()
            .enumerate()
            .map(|(index, record)| {
                let message_id = record.get("messageId").and_then(Value::as_str).unwrap_or_default().to_string();
                if message_id.is_empty() {
                    return Err(format!("SQS record {index} has no messageId"));
                }
                Ok(QueueMessage {
                    message_id,
                    body: record.get("body").and_then(Value::as_str).unwrap_or_default().to_string(),
                    receive_count: record
                        .pointer("/attributes/ApproximateReceiveCount")
                        .and_then(Value::as_str)
                        .and_then(|c| c.parse().ok())
                        .unwrap_or(1),
                })
            })
            .collect::<Result<_, _>>()?;
        return Ok(Trigger::Sqs(messages));
    }
    parse_notification(event).map(Trigger::S3)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_are_form_url_decoded() {
        let cases = [
            ("batch/input/esol/my+file+%281%29.csv", "batch/input/esol/my file (1).csv"),
            ("batch/input/esol/a%2Bb%3Dc.csv", "batch/input/esol/a+b=c.csv"),
            ("donn%C3%A9es/%C3%A9.csv", "données/é.csv"),
            ("plain/key.csv", "plain/key.csv"),
        ];
        for (raw, decoded) in cases {
            assert_eq!(decode_key(raw).unwrap(), decoded);
        }
        assert!(decode_key("bad%FF").is_err());
    }

    #[test]
    fn test_event_is_recognised() {
        let event = json!({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "b"});
        assert_eq!(parse_notification(&event).unwrap(), Notification::Test);
    }

    #[test]
    fn sqs_batch_keeps_message_ids() {
        let event = json!({"Records": [
            {"eventSource": "aws:sqs", "messageId": "m1", "body": "{}", "attributes": {"ApproximateReceiveCount": "3"}},
            {"eventSource": "aws:sqs", "messageId": "m2", "body": "x"},
        ]});
        let Trigger::Sqs(messages) = parse_trigger(&event).unwrap() else { panic!("not SQS") };
        assert_eq!(messages[0].message_id, "m1");
        assert_eq!(messages[0].receive_count, 3);
        assert_eq!(messages[1].receive_count, 1);
    }

    #[test]
    fn direct_s3_event_is_parsed() {
        let event = json!({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
            "s3": {"bucket": {"name": "b"}, "object": {"key": "incoming/m+1.onnx", "size": 10, "eTag": "abc"}}}]});
        let Trigger::S3(Notification::Objects(objects)) = parse_trigger(&event).unwrap() else { panic!("not S3") };
        assert_eq!(objects[0].key, "incoming/m 1.onnx");
        assert_eq!(objects[0].etag.as_deref(), Some("abc"));
    }

    #[test]
    fn other_documents_are_rejected() {
        assert!(parse_notification(&json!({"hello": 1})).unwrap_err().contains("no `Records`"));
        let no_key = json!({"Records": [{"s3": {"bucket": {"name": "b"}, "object": {}}}]});
        assert!(parse_notification(&no_key).unwrap_err().contains("s3.object.key"));
    }
}
