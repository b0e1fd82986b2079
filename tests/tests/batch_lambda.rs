//! The batch-score function under `cargo lambda watch`, invoked with the SQS
//! and S3 event fixtures in `events/`, reading and writing a moto S3 server
//! on loopback.

use std::sync::OnceLock;

use maas_tests::registry::{read_json, RegistryFiles};
use maas_tests::{aws_env, repo_root, S3Server, Watch};
use serde_json::{json, Value};

const BUCKET: &str = "maas-local";

struct Fixture {
    server: S3Server,
    watch: Watch,
    _registry: tempfile::TempDir,
}

/// One S3 server and one function process for the whole file; each test
/// uploads its own keys.
fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let server = S3Server::start();
        // The tests' own runtimes cannot block on a future, so the bucket is
        // created on a runtime of its own.
        std::thread::scope(|scope| {
            scope.spawn(|| tokio::runtime::Runtime::new().unwrap().block_on(server.create_bucket(BUCKET)));
        });
        let registry = tempfile::tempdir().unwrap();
        RegistryFiles::standard().write_to_folder(registry.path());
        let mut env = aws_env(&server.endpoint);
        env.push(("MODEL_REPOSITORY", registry.path().display().to_string()));
        env.push(("BATCH_CHUNK_ROWS", "100".into()));
        let watch = Watch::start_event_function("batch-score", &env);
        Fixture { server, watch, _registry: registry }
    })
}

fn event(name: &str) -> Value {
    read_json(&repo_root().join("events").join(name))
}

/// Invokes the function with `event` and returns the status and response.
async fn invoke(event: &Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(fixture().watch.url(&Watch::invoke_path("batch-score")))
        .body(event.to_string())
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
}

async fn put(key: &str, body: impl Into<Vec<u8>>) {
    let client = fixture().server.client();
    client.put_object().bucket(BUCKET).key(key).body(body.into().into()).send().await.unwrap();
}

async fn get(key: &str) -> Option<(Vec<u8>, String)> {
    let response = fixture().server.client().get_object().bucket(BUCKET).key(key).send().await.ok()?;
    let modified = response.last_modified().map(|t| t.to_string()).unwrap_or_default();
    Some((response.body.collect().await.unwrap().into_bytes().to_vec(), modified))
}

async fn get_text(key: &str) -> String {
    let (bytes, _) = get(key).await.unwrap_or_else(|| panic!("`{key}` was not written"));
    String::from_utf8(bytes).unwrap()
}

fn no_failures() -> Value {
    json!({"batchItemFailures": []})
}

/// Returns a header and five ESOL rows.
fn small_esol_csv() -> String {
    let text = std::fs::read_to_string(repo_root().join("data/esol/delaney-processed.csv")).unwrap();
    text.lines().take(6).map(|line| format!("{line}\n")).collect()
}

/// The ESOL file, uploaded under the model's folder and delivered through
/// SQS, gets the predictions onnxruntime recorded for the test split, and
/// redeliveries do not score it again.
#[tokio::test]
async fn esol_upload_through_sqs_is_scored_once() {
    let esol = std::fs::read(repo_root().join("data/esol/delaney-processed.csv")).unwrap();
    put("batch/input/esol-solubility/esol.csv", esol).await;

    let (status, response) = invoke(&event("sqs-s3-batch-put.json")).await;

    assert_eq!((status, &response), (200, &no_failures()));
    let summary: Value = serde_json::from_str(&get_text("batch/output/esol-solubility/esol.summary.json").await).unwrap();
    assert_eq!(summary["status"], "succeeded", "{summary}");
    assert_eq!(summary["rows"], json!({"read": 1128, "scored": 1128, "failed": 0}));
    assert_eq!(summary["model"]["name"], "esol-solubility");
    assert_eq!(summary["model"]["version"], 1);
    assert_eq!(summary["model"]["sha256"], "929b65038f4e634f21852d8c010e12f6c84240a23ea0b87185895d60768eccf4");
    assert_eq!(summary["input"]["bucket"], BUCKET);
    // moto's ETag of a single PUT is the MD5, which the fixture also carries.
    assert_eq!(summary["input"]["etag"], "0c90a51668d446b9e3ab77e67662bd1c");
    assert_eq!(get_text("batch/output/esol-solubility/esol.errors.jsonl").await, "");

    // Every molecule of the test split gets the prediction onnxruntime made.
    let scored = get_text("batch/output/esol-solubility/esol.out.csv").await;
    let mut predictions = std::collections::HashMap::new();
    let mut reader = csv::Reader::from_reader(scored.as_bytes());
    let header = reader.headers().unwrap().clone();
    assert_eq!(header.len(), 11, "ten input columns and `log_solubility`: {header:?}");
    for record in reader.records() {
        let record = record.unwrap();
        predictions.insert((record[0].to_string(), record[9].to_string()), record[10].parse::<f64>().unwrap());
    }
    let expected = std::fs::read_to_string(repo_root().join("examples/esol_test_split.csv")).unwrap();
    let mut reader = csv::Reader::from_reader(expected.as_bytes());
    let mut compared = 0;
    for record in reader.records() {
        let record = record.unwrap();
        let actual = predictions[&(record[0].to_string(), record[9].to_string())];
        let wanted: f64 = record[10].parse().unwrap();
        assert!((actual - wanted).abs() < 1e-5, "{}: {actual} != {wanted}", &record[0]);
        compared += 1;
    }
    assert_eq!(compared, 226);

    // The same event again, and the direct S3 event for the same object,
    // leave the results as they were.
    let (_, summary_modified) = get("batch/output/esol-solubility/esol.summary.json").await.unwrap();
    let (_, scored_modified) = get("batch/output/esol-solubility/esol.out.csv").await.unwrap();
    assert_eq!(invoke(&event("sqs-s3-batch-put.json")).await, (200, no_failures()));
    let (status, response) = invoke(&event("s3-put-batch.json")).await;
    assert_eq!(status, 200, "{response}");
    assert_eq!(response["objects"][0]["status"], "already_scored", "{response}");
    let again: Value = serde_json::from_str(&get_text("batch/output/esol-solubility/esol.summary.json").await).unwrap();
    assert_eq!(again["timings"], summary["timings"], "the summary was not rewritten");
    assert_eq!(get("batch/output/esol-solubility/esol.summary.json").await.unwrap().1, summary_modified);
    assert_eq!(get("batch/output/esol-solubility/esol.out.csv").await.unwrap().1, scored_modified);
    let listing = fixture().server.client().list_objects_v2().bucket(BUCKET).prefix("batch/output/esol-solubility/esol.").send().await.unwrap();
    assert_eq!(listing.contents().len(), 3);
}

/// Keys arrive form-URL-encoded: `+` is a space, `%2B` a plus, `%3D` an
/// equals sign, and UTF-8 is percent-encoded.
#[tokio::test]
async fn encoded_keys_are_decoded() {
    let keys = [
        ("my file (1)", "batch/input/esol-solubility/my file (1).csv"),
        ("a+b=c", "batch/input/esol-solubility/a+b=c.csv"),
        ("données/é", "batch/input/esol-solubility/données/é.csv"),
    ];
    for (_, key) in keys {
        put(key, small_esol_csv()).await;
    }

    let (status, response) = invoke(&event("sqs-s3-batch-encoded-keys.json")).await;

    assert_eq!((status, &response), (200, &no_failures()));
    for (stem, key) in keys {
        let summary: Value =
            serde_json::from_str(&get_text(&format!("batch/output/esol-solubility/{stem}.summary.json")).await).unwrap();
        assert_eq!(summary["status"], "succeeded", "{summary}");
        assert_eq!(summary["input"]["key"], key);
        assert_eq!(summary["rows"]["scored"], 5);
        let scored = get_text(&format!("batch/output/esol-solubility/{stem}.out.csv")).await;
        assert_eq!(scored.lines().count(), 6, "{stem}");
    }
}

/// S3's test notification is acknowledged without touching any object.
#[tokio::test]
async fn test_event_is_acknowledged() {
    let (status, response) = invoke(&event("sqs-s3-test-event.json")).await;

    assert_eq!((status, response), (200, no_failures()));
    assert!(fixture().watch.log_text().contains("S3 test event acknowledged"));
}

/// A message whose body is not an S3 notification can never succeed: it is
/// logged and dropped, and the two good messages beside it are scored.
#[tokio::test]
async fn bad_message_is_dropped_and_others_scored() {
    put("batch/input/esol-solubility/part-0001.csv", small_esol_csv()).await;
    put("batch/input/esol-solubility/part-0002.csv", small_esol_csv()).await;

    let (status, response) = invoke(&event("sqs-batch-one-bad.json")).await;

    assert_eq!((status, response), (200, no_failures()));
    for part in ["part-0001", "part-0002"] {
        let summary: Value = serde_json::from_str(&get_text(&format!("batch/output/esol-solubility/{part}.summary.json")).await).unwrap();
        assert_eq!(summary["status"], "succeeded", "{summary}");
    }
    assert!(fixture().watch.log_text().contains("dropping a message that is not an S3 event notification"));
}

/// A file-level problem is recorded in the summary and the message is not
/// retried.
#[tokio::test]
async fn unknown_model_fails_without_retry() {
    let mut sqs = event("sqs-s3-batch-put.json");
    let body = sqs["Records"][0]["body"].as_str().unwrap().replace("esol-solubility/esol.csv", "no-such-model/esol.csv");
    sqs["Records"][0]["body"] = json!(body);
    put("batch/input/no-such-model/esol.csv", small_esol_csv()).await;

    let (status, response) = invoke(&sqs).await;

    assert_eq!((status, response), (200, no_failures()));
    let summary: Value = serde_json::from_str(&get_text("batch/output/no-such-model/esol.summary.json").await).unwrap();
    assert_eq!(summary["status"], "failed");
    assert!(summary["reason"].as_str().unwrap().contains("model `no-such-model` not found"), "{summary}");
    assert!(get("batch/output/no-such-model/esol.out.csv").await.is_none());
}

/// S3 accepts keys with `..` segments, but no store here can address them, and
/// a retry cannot change the key: the message is dropped, not retried.
#[tokio::test]
async fn dotted_key_is_dropped_without_retry() {
    let mut sqs = event("sqs-s3-batch-put.json");
    let body = sqs["Records"][0]["body"].as_str().unwrap().replace("esol-solubility/esol.csv", "esol-solubility/../esol.csv");
    sqs["Records"][0]["body"] = json!(body);

    let (status, response) = invoke(&sqs).await;

    assert_eq!((status, response), (200, no_failures()));
    assert!(fixture().watch.log_text().contains("keys may not contain empty, `.` or `..` segments"));
}

/// An event that is neither SQS nor S3 fails the invocation with the
/// reason, and the function keeps serving.
#[tokio::test]
async fn unrecognised_event_is_rejected() {
    let (_, response) = invoke(&json!({"hello": "world"})).await;

    assert_eq!(response["errorType"], "InvalidEvent", "{response}");
    assert!(response["errorMessage"].as_str().unwrap().contains("neither an SQS batch nor an S3 event notification"), "{response}");
    assert_eq!(invoke(&event("sqs-s3-test-event.json")).await, (200, no_failures()));
}
