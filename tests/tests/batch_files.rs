//! The batch-score service in process, on buckets of a moto S3 server on
//! loopback: row formats, bad rows, file-level problems, duplicate
//! deliveries, and a store that fails in the middle of a file.

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use batch_score::summary::{Status, Summary};
use batch_score::{Config, Outcome, Service};
use bytes::Bytes;
use maas_tests::registry::{read_json, RegistryFiles};
use maas_tests::{repo_root, S3Server};
use serde_json::{json, Value};
use shared::events::ObjectEvent;
use shared::store::fs::FolderStore;
use shared::store::s3::S3Store;
use shared::store::{Listing, ObjectInfo, ObjectReader, ObjectStore, Upload};

struct Fixture {
    server: S3Server,
    registry: tempfile::TempDir,
}

/// Returns the moto server and registry folder that the whole file shares.
/// Each test uses its own bucket.
fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let registry = tempfile::tempdir().unwrap();
        RegistryFiles::standard().write_to_folder(registry.path());
        Fixture { server: S3Server::start(), registry }
    })
}

/// Settings with small mini-batches, so a few rows already span several.
fn config(chunk_rows: usize) -> Config {
    let registry = fixture().registry.path().display().to_string();
    Config::from_lookup(|name| match name {
        "MODEL_REPOSITORY" => Some(registry.clone()),
        "BATCH_CHUNK_ROWS" => Some(chunk_rows.to_string()),
        _ => None,
    })
    .unwrap()
}

async fn service_with(chunk_rows: usize, buckets: batch_score::service::BucketStores) -> Service {
    let config = config(chunk_rows);
    let models = shared::models::Models::from_config(&config.shared).await.unwrap();
    Service::new(config, models, buckets)
}

/// Creates `bucket` and returns a service whose buckets are on the moto
/// server, with a client to read the results.
async fn s3_service(bucket: &str) -> (Service, aws_sdk_s3::Client) {
    let client = fixture().server.create_bucket(bucket).await;
    let store_client = fixture().server.client();
    let buckets: batch_score::service::BucketStores =
        Box::new(move |bucket| Arc::new(S3Store::new(store_client.clone(), bucket.to_string(), String::new())));
    (service_with(4, buckets).await, client)
}

async fn put(client: &aws_sdk_s3::Client, bucket: &str, key: &str, body: impl Into<Vec<u8>>) {
    client.put_object().bucket(bucket).key(key).body(body.into().into()).send().await.unwrap();
}

async fn get(client: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Option<Vec<u8>> {
    let response = client.get_object().bucket(bucket).key(key).send().await.ok()?;
    Some(response.body.collect().await.unwrap().into_bytes().to_vec())
}

async fn get_text(client: &aws_sdk_s3::Client, bucket: &str, key: &str) -> String {
    let bytes = get(client, bucket, key).await.unwrap_or_else(|| panic!("`{key}` was not written"));
    String::from_utf8(bytes).unwrap()
}

async fn keys_under(client: &aws_sdk_s3::Client, bucket: &str, prefix: &str) -> Vec<String> {
    let listing = client.list_objects_v2().bucket(bucket).prefix(prefix).send().await.unwrap();
    listing.contents().iter().filter_map(|o| o.key().map(str::to_string)).collect()
}

fn event(bucket: &str, key: &str) -> ObjectEvent {
    ObjectEvent {
        event_name: "ObjectCreated:Put".into(),
        bucket: bucket.into(),
        key: key.into(),
        size: None,
        etag: None,
        version_id: None,
        sequencer: None,
    }
}

fn summary_of(outcome: Outcome) -> Summary {
    match outcome {
        Outcome::Done(summary) => *summary,
        other => panic!("expected a summary, got {other:?}"),
    }
}

/// Returns the first `rows` rows of the ESOL test split without the
/// recorded predictions, and those predictions (onnxruntime's).
fn esol_rows(rows: usize) -> (String, Vec<f64>) {
    let text = std::fs::read_to_string(repo_root().join("examples/esol_test_split.csv")).unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header = reader.headers().unwrap().clone();
    let expected_column = header.iter().position(|h| h == "onnxruntime_prediction").unwrap();
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(header.iter().take(expected_column)).unwrap();
    let mut expected = Vec::new();
    for record in reader.records().take(rows) {
        let record = record.unwrap();
        writer.write_record(record.iter().take(expected_column)).unwrap();
        expected.push(record[expected_column].parse().unwrap());
    }
    (String::from_utf8(writer.into_inner().unwrap()).unwrap(), expected)
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn column(csv_text: &str, name: &str) -> Vec<String> {
    let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
    let index = reader.headers().unwrap().iter().position(|h| h == name).unwrap_or_else(|| panic!("no column `{name}`"));
    reader.records().map(|r| r.unwrap()[index].to_string()).collect()
}

fn assert_close(actual: &[f64], expected: &[f64]) {
    assert_eq!(actual.len(), expected.len());
    for (row, (a, e)) in actual.iter().zip(expected).enumerate() {
        assert!((a - e).abs() < 1e-5, "row {row}: {a} != {e}");
    }
}

fn json_lines(text: &str) -> Vec<Value> {
    text.lines().map(|line| serde_json::from_str(line).unwrap()).collect()
}

/// Bad rows go to the errors file with line, column and reason; the other
/// rows are scored, and every input column passes through.
#[tokio::test]
async fn bad_rows_are_reported_and_others_scored() {
    let bucket = "bad-rows";
    let (service, client) = s3_service(bucket).await;
    let input = "id,x,y,note\n\
                 a,1,0,first\n\
                 b,,1,missing x\n\
                 c,0,one,text y\n\
                 d,0,1\n\
                 e,0,1,fine\n\
                 f,inf,1,infinite\n\
                 g,-1,-1,\"quoted, with comma\"\n";
    put(&client, bucket, "batch/input/softmax-classifier/rows.csv", input).await;

    let summary = summary_of(service.process(&event(bucket, "batch/input/softmax-classifier/rows.csv")).await.unwrap());

    assert_eq!(summary.status, Status::Succeeded, "{summary:?}");
    assert_eq!((summary.rows.read, summary.rows.scored, summary.rows.failed), (7, 3, 4));
    let errors = json_lines(&get_text(&client, bucket, "batch/output/softmax-classifier/rows.errors.jsonl").await);
    assert_eq!(errors.len(), 4);
    assert_eq!(errors[0], json!({"line": 3, "id": "b", "column": "x", "reason": "the value is missing"}));
    assert_eq!(errors[1], json!({"line": 4, "id": "c", "column": "y", "reason": "`one` is not a number"}));
    assert_eq!(errors[2], json!({"line": 5, "id": "d", "column": null, "reason": "the row has 3 fields but the header has 4"}));
    assert_eq!(errors[3]["line"], 7);
    assert_eq!(errors[3]["column"], "x");
    assert!(errors[3]["reason"].as_str().unwrap().contains("not a finite number"), "{}", errors[3]);

    let scored = get_text(&client, bucket, "batch/output/softmax-classifier/rows.out.csv").await;
    assert_eq!(column(&scored, "id"), ["a", "e", "g"]);
    assert_eq!(column(&scored, "note"), ["first", "fine", "quoted, with comma"]);
}

/// A classifier gets a label and one probability column per class, with
/// the probabilities onnxruntime computed.
#[tokio::test]
async fn classifier_adds_label_and_probabilities() {
    let bucket = "classifier";
    let (service, client) = s3_service(bucket).await;
    put(&client, bucket, "batch/input/softmax-classifier/v1/points.csv", "y,x\n0,1\n1,0\n-1,-1\n").await;

    let summary = summary_of(service.process(&event(bucket, "batch/input/softmax-classifier/v1/points.csv")).await.unwrap());

    assert_eq!(summary.status, Status::Succeeded, "{summary:?}");
    let scored = get_text(&client, bucket, "batch/output/softmax-classifier/v1/points.out.csv").await;
    assert_eq!(scored.lines().next().unwrap(), "y,x,label,probability_low,probability_medium,probability_high");
    assert_eq!(column(&scored, "label"), ["low", "medium", "high"]);
    let expected = read_json(&maas_tests::registry::fixture("softmax_classifier.expected.json"));
    let expected = &expected["outputs"]["probabilities"]["data"];
    for (index, label) in ["low", "medium", "high"].iter().enumerate() {
        let actual: Vec<f64> = column(&scored, &format!("probability_{label}")).iter().map(|v| v.parse().unwrap()).collect();
        let wanted: Vec<f64> = (0..3).map(|row| expected[row][index].as_f64().unwrap()).collect();
        assert_close(&actual, &wanted);
    }
}

/// A classifier input with its own `label` column keeps it, and the
/// prediction is written as `predicted_label`.
#[tokio::test]
async fn prediction_column_does_not_replace_input_column() {
    let bucket = "label-column";
    let (service, client) = s3_service(bucket).await;
    put(&client, bucket, "batch/input/softmax-classifier/truth.csv", "x,y,label\n1,0,measured\n").await;

    service.process(&event(bucket, "batch/input/softmax-classifier/truth.csv")).await.unwrap();

    let scored = get_text(&client, bucket, "batch/output/softmax-classifier/truth.out.csv").await;
    assert_eq!(column(&scored, "label"), ["measured"]);
    assert_eq!(column(&scored, "predicted_label"), ["low"]);
}

/// Gzip-compressed CSV and JSON Lines are decompressed, and their results
/// are written uncompressed.
#[tokio::test]
async fn gzip_inputs_are_decompressed() {
    let bucket = "gzip-inputs";
    let (service, client) = s3_service(bucket).await;
    let (text, expected) = esol_rows(10);
    put(&client, bucket, "batch/input/esol-solubility/esol.csv.gz", gzip(text.as_bytes())).await;
    let lines: String = (0..3).map(|i| format!("{{\"id\": {i}, \"inputs\": [1, 116.204, 1, 0, 2, 20.23]}}\n")).collect();
    put(&client, bucket, "batch/input/esol-solubility/rows.jsonl.gz", gzip(lines.as_bytes())).await;

    let csv_summary = summary_of(service.process(&event(bucket, "batch/input/esol-solubility/esol.csv.gz")).await.unwrap());
    let jsonl_summary = summary_of(service.process(&event(bucket, "batch/input/esol-solubility/rows.jsonl.gz")).await.unwrap());

    assert_eq!(csv_summary.status, Status::Succeeded, "{csv_summary:?}");
    assert!(csv_summary.format.unwrap().gzip);
    let scored = get_text(&client, bucket, "batch/output/esol-solubility/esol.out.csv").await;
    let predictions: Vec<f64> = column(&scored, "log_solubility").iter().map(|v| v.parse().unwrap()).collect();
    assert_close(&predictions, &expected);
    assert_eq!(jsonl_summary.rows.scored, 3, "{jsonl_summary:?}");
    let scored = json_lines(&get_text(&client, bucket, "batch/output/esol-solubility/rows.out.jsonl").await);
    assert_eq!(scored[2]["id"], 2);
    assert!((scored[2]["prediction"].as_f64().unwrap() - -0.937_395_3).abs() < 1e-5, "{}", scored[2]);
}

/// JSON Lines rows may name their features or give `inputs`; other fields
/// pass through, blank lines are skipped, and bad lines are reported.
#[tokio::test]
async fn jsonl_rows_are_scored_or_reported() {
    let bucket = "jsonl-rows";
    let (service, client) = s3_service(bucket).await;
    let lines = [
        r#"{"id": "named", "batch": 7, "Molecular Weight": 116.204, "Minimum Degree": 1, "Number of H-Bond Donors": 1, "Number of Rings": 0, "Number of Rotatable Bonds": 2, "Polar Surface Area": 20.23}"#,
        r#"{"id": "array", "inputs": [1, 201.225, 1, 2, 2, 42.24]}"#,
        "",
        r#"{"id": "broken", "inputs": [1, 2"#,
        r#"[1, 201.225, 1, 2, 2, 42.24]"#,
        r#"{"id": "short", "inputs": [1, 2, 3]}"#,
        r#"{"id": "missing", "Molecular Weight": 116.204}"#,
        r#"{"id": "text", "Molecular Weight": "heavy", "Minimum Degree": 1, "Number of H-Bond Donors": 1, "Number of Rings": 0, "Number of Rotatable Bonds": 2, "Polar Surface Area": 20.23}"#,
    ];
    put(&client, bucket, "batch/input/esol-solubility/rows.jsonl", lines.join("\n")).await;

    let summary = summary_of(service.process(&event(bucket, "batch/input/esol-solubility/rows.jsonl")).await.unwrap());

    assert_eq!((summary.rows.read, summary.rows.scored, summary.rows.failed), (7, 2, 5), "{summary:?}");
    let scored = json_lines(&get_text(&client, bucket, "batch/output/esol-solubility/rows.out.jsonl").await);
    assert_eq!(scored[0]["id"], "named");
    assert_eq!(scored[0]["batch"], 7);
    assert!(scored[0].get("Molecular Weight").is_none(), "features are not repeated: {}", scored[0]);
    assert!((scored[0]["prediction"].as_f64().unwrap() - -0.937_395_3).abs() < 1e-5, "{}", scored[0]);
    assert!((scored[1]["prediction"].as_f64().unwrap() - -2.543_875_2).abs() < 1e-5, "{}", scored[1]);
    let errors = json_lines(&get_text(&client, bucket, "batch/output/esol-solubility/rows.errors.jsonl").await);
    let lines: Vec<u64> = errors.iter().map(|e| e["line"].as_u64().unwrap()).collect();
    assert_eq!(lines, [4, 5, 6, 7, 8]);
    assert!(errors[0]["reason"].as_str().unwrap().starts_with("invalid JSON"), "{}", errors[0]);
    assert_eq!(errors[1]["reason"], "the line is an array, not a JSON object");
    assert_eq!(errors[2]["column"], "inputs");
    assert_eq!(errors[3], json!({"line": 7, "id": "missing", "column": "Minimum Degree", "reason": "the value is missing"}));
    assert_eq!(errors[4]["column"], "Molecular Weight");
}

/// Problems with the whole file give a failed summary with the reason,
/// leave no results, and are not retried.
#[tokio::test]
async fn file_level_problems_fail_without_retry() {
    let bucket = "file-problems";
    let (service, client) = s3_service(bucket).await;
    let cases = [
        ("batch/input/no-such-model/a.csv", "x,y\n1,2\n", "model `no-such-model` not found"),
        ("batch/input/softmax-classifier/v9/a.csv", "x,y\n1,2\n", "version `9` of model `softmax-classifier` not found"),
        ("batch/input/softmax-classifier/header.csv", "x,z\n1,2\n", "the header has no column for feature `y`"),
        ("batch/input/softmax-classifier/empty.csv", "", "has no data rows"),
        ("batch/input/softmax-classifier/header-only.csv", "x,y\n", "has no data rows"),
        ("batch/input/softmax-classifier/blank-lines.jsonl", "\n\n", "has no data rows"),
        ("batch/input/softmax-classifier/notes.txt", "x,y\n1,2\n", "unsupported file type"),
        ("batch/input/softmax-classifier/fake.csv.gz", "x,y\n1,2\n", "failed to read"),
        ("batch/input/loose.csv", "x,y\n1,2\n", "names no model"),
        ("batch/input/two-inputs/a.csv", "a,b\n1,2\n", "takes 2 inputs"),
    ];
    for (key, body, _) in &cases {
        put(&client, bucket, key, *body).await;
    }

    for (key, _, reason) in cases {
        let outcome = service.process(&event(bucket, key)).await;
        let summary = match outcome {
            Ok(Outcome::Done(summary)) => *summary,
            other => panic!("{key}: expected a failed summary, got {other:?}"),
        };
        assert_eq!(summary.status, Status::Failed, "{key}");
        let text = summary.reason.clone().unwrap_or_default();
        assert!(text.contains(reason), "{key}: reason {text:?} does not contain {reason:?}");
        assert_eq!(summary.outputs, None, "{key}");
    }
    let written = keys_under(&client, bucket, "batch/output/").await;
    assert!(written.iter().all(|key| key.ends_with(".summary.json")), "only summaries are written: {written:?}");
    assert_eq!(written.len(), cases.len());
    let stored: Value = serde_json::from_str(&get_text(&client, bucket, "batch/output/no-such-model/a.summary.json").await).unwrap();
    assert_eq!(stored["status"], "failed");
    assert_eq!(stored["input"]["key"], "batch/input/no-such-model/a.csv");
}

/// A redelivered event for the same content does nothing; new content at
/// the same key is scored again.
#[tokio::test]
async fn redelivered_event_is_skipped_until_content_changes() {
    let bucket = "redelivery";
    let (service, client) = s3_service(bucket).await;
    let key = "batch/input/softmax-classifier/again.csv";
    put(&client, bucket, key, "x,y\n1,0\n").await;

    let first = summary_of(service.process(&event(bucket, key)).await.unwrap());
    let summary_before = get(&client, bucket, "batch/output/softmax-classifier/again.summary.json").await.unwrap();
    let second = service.process(&event(bucket, key)).await.unwrap();
    let summary_after = get(&client, bucket, "batch/output/softmax-classifier/again.summary.json").await.unwrap();

    assert_eq!(first.status, Status::Succeeded);
    assert_eq!(second, Outcome::AlreadyScored);
    assert_eq!(summary_before, summary_after, "the summary was not rewritten");
    assert_eq!(keys_under(&client, bucket, "batch/output/").await.len(), 3);

    put(&client, bucket, key, "x,y\n1,0\n0,1\n").await;
    let third = summary_of(service.process(&event(bucket, key)).await.unwrap());
    assert_eq!(third.rows.scored, 2);
    assert_ne!(third.input.etag, first.input.etag);
}

/// Two runs of the same event at the same time leave one intact result,
/// the same as a single run writes.
#[tokio::test]
async fn concurrent_duplicates_leave_one_intact_result() {
    let bucket = "concurrent";
    let (service, client) = s3_service(bucket).await;
    let (text, expected) = esol_rows(200);
    put(&client, bucket, "batch/input/esol-solubility/twice.csv", text.clone()).await;
    put(&client, bucket, "batch/input/esol-solubility/once.csv", text).await;

    let once = service.process(&event(bucket, "batch/input/esol-solubility/once.csv")).await.unwrap();
    let twice_event = event(bucket, "batch/input/esol-solubility/twice.csv");
    let (a, b) = tokio::join!(service.process(&twice_event), service.process(&twice_event));

    assert!(matches!(once, Outcome::Done(_)));
    for outcome in [a.unwrap(), b.unwrap()] {
        match outcome {
            Outcome::Done(summary) => assert_eq!(summary.status, Status::Succeeded),
            Outcome::AlreadyScored => {}
            other => panic!("unexpected outcome {other:?}"),
        }
    }
    let single = get(&client, bucket, "batch/output/esol-solubility/once.out.csv").await.unwrap();
    let doubled = get(&client, bucket, "batch/output/esol-solubility/twice.out.csv").await.unwrap();
    assert_eq!(single, doubled);
    let predictions: Vec<f64> =
        column(std::str::from_utf8(&doubled).unwrap(), "log_solubility").iter().map(|v| v.parse().unwrap()).collect();
    assert_close(&predictions, &expected);
    let summary: Value = serde_json::from_slice(&get(&client, bucket, "batch/output/esol-solubility/twice.summary.json").await.unwrap()).unwrap();
    assert_eq!(summary["rows"]["scored"], 200);
}

/// A folder store whose object streams fail after `fail_after` bytes, as a
/// connection that drops in the middle of a download.
#[derive(Debug)]
struct FailingReads {
    inner: FolderStore,
    fail_after: usize,
}

#[async_trait]
impl ObjectStore for FailingReads {
    fn describe(&self, key: &str) -> String {
        self.inner.describe(key)
    }
    async fn get(&self, key: &str) -> shared::Result<Option<Bytes>> {
        self.inner.get(key).await
    }
    async fn put(&self, key: &str, body: Bytes) -> shared::Result<()> {
        self.inner.put(key, body).await
    }
    async fn list(&self, prefix: &str) -> shared::Result<Listing> {
        self.inner.list(prefix).await
    }
    async fn head(&self, key: &str) -> shared::Result<Option<ObjectInfo>> {
        self.inner.head(key).await
    }
    async fn get_with_etag(&self, key: &str) -> shared::Result<Option<(Bytes, String)>> {
        self.inner.get_with_etag(key).await
    }
    async fn put_if_absent(&self, key: &str, body: Bytes) -> shared::Result<bool> {
        self.inner.put_if_absent(key, body).await
    }
    async fn put_if_match(&self, key: &str, body: Bytes, etag: &str) -> shared::Result<bool> {
        self.inner.put_if_match(key, body, etag).await
    }
    async fn delete(&self, key: &str) -> shared::Result<()> {
        self.inner.delete(key).await
    }
    async fn get_stream(&self, key: &str) -> shared::Result<Option<ObjectReader>> {
        let Some(bytes) = self.inner.get(key).await? else { return Ok(None) };
        let head = std::io::Cursor::new(bytes.slice(..self.fail_after.min(bytes.len())).to_vec());
        let broken = tokio::io::AsyncReadExt::chain(head, BrokenConnection);
        Ok(Some(Box::new(tokio::io::BufReader::new(broken))))
    }
    async fn start_upload(&self, key: &str) -> shared::Result<Box<dyn Upload>> {
        self.inner.start_upload(key).await
    }
}

struct BrokenConnection;

impl tokio::io::AsyncRead for BrokenConnection {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        _: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Err(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "connection reset by peer")))
    }
}

fn files_under(root: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(root).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files_under(&path));
        } else {
            found.push(path.display().to_string());
        }
    }
    found
}

/// A read that fails after several mini-batches were written is retried,
/// and leaves neither a result nor a temporary file behind.
#[tokio::test]
async fn read_failure_mid_file_leaves_no_partial_result() {
    let root = tempfile::tempdir().unwrap();
    let bucket_root = root.path().join("data");
    let (text, _) = esol_rows(226);
    std::fs::create_dir_all(bucket_root.join("batch/input/esol-solubility")).unwrap();
    std::fs::write(bucket_root.join("batch/input/esol-solubility/big.csv"), &text).unwrap();
    let store_root = bucket_root.clone();
    let buckets: batch_score::service::BucketStores =
        Box::new(move |_| Arc::new(FailingReads { inner: FolderStore::new(store_root.clone()), fail_after: text.len() / 2 }));
    let service = service_with(4, buckets).await;

    let err = service.process(&event("data", "batch/input/esol-solubility/big.csv")).await.unwrap_err();

    assert!(err.is_retryable(), "{err}");
    assert!(err.chain().contains("connection reset"), "{}", err.chain());
    let output_files = files_under(&bucket_root.join("batch/output"));
    assert!(output_files.is_empty(), "nothing is left in the output folder: {output_files:?}");
}
