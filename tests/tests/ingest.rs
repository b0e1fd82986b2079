//! Ingest: validation and rejections, registration on the local-folder store
//! and on moto's S3 server, concurrent and repeated ingests, the command
//! line, and the Lambda function under `cargo lambda watch` with SQS events.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ingest::job::{Ingester, JobResult};
use ingest::register::{Outcome, Registrar};
use maas_tests::registry::read_json;
use maas_tests::{aws_env, repo_root, S3Server, Watch};
use serde_json::{json, Value};
use shared::models::Models;
use shared::registry::Registry;
use shared::runtime::ModelCache;
use shared::store::fs::FolderStore;
use shared::store::s3::S3Store;
use shared::store::ObjectStore;

fn sklearn(name: &str) -> PathBuf {
    repo_root().join("tests/fixtures/sklearn").join(name)
}

fn fixture_model(name: &str) -> PathBuf {
    repo_root().join("tests/fixtures/models").join(name)
}

fn ingester(store: Arc<dyn ObjectStore>, max_model_bytes: u64) -> Ingester {
    Ingester {
        registrar: Registrar::new(store),
        max_model_bytes,
        sidecar_wait: Duration::ZERO,
        rejected_prefix: "rejected/".into(),
    }
}

fn folder_ingester() -> (tempfile::TempDir, Arc<dyn ObjectStore>, Ingester) {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn ObjectStore> = Arc::new(FolderStore::new(dir.path()));
    let ingester = ingester(store.clone(), 50 * 1024 * 1024);
    (dir, store, ingester)
}

async fn ingest_file(ingester: &Ingester, name: &str, model: &PathBuf, sidecar: Option<&[u8]>) -> JobResult {
    let bytes = std::fs::read(model).unwrap();
    ingester.ingest_bytes(name, &model.display().to_string(), &bytes, sidecar).await.unwrap()
}

fn rejection(result: &JobResult) -> (&'static str, String) {
    match result {
        JobResult::Rejected(report) => (report.code, report.reason.clone()),
        other => panic!("expected a rejection, got {other:?}"),
    }
}

fn registered_version(result: &JobResult) -> u64 {
    match result {
        JobResult::Done(Outcome::Registered { version, .. }) => *version,
        other => panic!("expected a registration, got {other:?}"),
    }
}

#[tokio::test]
async fn each_invalid_upload_gets_its_own_rejection() {
    let (_dir, _store, ingester) = folder_ingester();
    let small = ingester_with_limit(1000);
    let cases: Vec<(&Ingester, &str, PathBuf, &str, &str)> = vec![
        (&small, "big", sklearn("esol_rf_regressor.onnx"), "too_large", "above the limit of 1000 bytes"),
        (&ingester, "not-onnx", fixture_model("bad_bytes.onnx"), "not_onnx", "the file is not an ONNX model"),
        (&ingester, "external", fixture_model("external_data.onnx"), "external_data", "initializer `weight` stores its data in an external file"),
        (&ingester, "empty", fixture_model("empty_graph.onnx"), "empty_graph", "the ONNX graph has no nodes"),
        (&ingester, "strings", fixture_model("string_input.onnx"), "unsupported_type", "input `text` has element type STRING"),
        (&ingester, "sequence", fixture_model("sequence_output.onnx"), "unsupported_type", "output `pair` is not a tensor"),
        (&ingester, "shapes", fixture_model("bad_shapes.onnx"), "load_failed", "tract could not load the model"),
        (&ingester, "panics", fixture_model("onehot_offset_panic.onnx"), "smoke_failed", "tract panicked"),
        (&ingester, "svr", sklearn("esol_svr.onnx"), "unsupported_operator", "operator SVMRegressor (ai.onnx.ml) is not supported"),
    ];
    for (ingester, name, path, code, message) in cases {
        let result = ingest_file(ingester, name, &path, None).await;
        let (got_code, reason) = rejection(&result);
        assert_eq!(got_code, code, "{name}: {reason}");
        assert!(reason.contains(message), "{name}: {reason}");
    }
}

fn ingester_with_limit(limit: u64) -> Ingester {
    let dir = tempfile::tempdir().unwrap().keep();
    ingester(Arc::new(FolderStore::new(dir)), limit)
}

#[tokio::test]
async fn svm_rejection_lists_supported_operators_and_alternatives() {
    let (_dir, _store, ingester) = folder_ingester();
    let (_, reason) = rejection(&ingest_file(&ingester, "svr", &sklearn("esol_svr.onnx"), None).await);
    assert!(reason.contains("supported ai.onnx.ml operators are ArrayFeatureExtractor, Binarizer, FeatureVectorizer, Imputer"), "{reason}");
    assert!(reason.contains("export a tree ensemble (GradientBoosting*, RandomForest*), an MLP or a linear model instead"), "{reason}");
}

#[tokio::test]
async fn sample_mismatch_shows_worst_element() {
    let (_dir, _store, ingester) = folder_ingester();
    let mut sidecar = read_json(&sklearn("esol_linear.json"));
    sidecar["samples"][0]["outputs"]["variable"][2][0] = json!(5.0);
    let sidecar = serde_json::to_vec(&sidecar).unwrap();
    let (code, reason) = rejection(&ingest_file(&ingester, "linear", &sklearn("esol_linear.onnx"), Some(&sidecar)).await);
    assert_eq!(code, "sample_mismatch");
    assert!(reason.contains("sample 0, output `variable`, element 2: expected 5, computed"), "{reason}");
}

#[tokio::test]
async fn invalid_sidecar_is_rejected() {
    let (_dir, _store, ingester) = folder_ingester();
    // The linear model is a regressor; the forest is a binary classifier with
    // two probability columns.
    let (linear, forest) = ("esol_linear.onnx", "esol_rf_classifier.onnx");
    let cases: Vec<(&str, &[u8], &str)> = vec![
        (linear, b"{not json", "the metadata sidecar is not valid"),
        (linear, br#"{"feature": ["a"]}"#, "unknown field `feature`"),
        (linear, br#"{"features": ["a", "b"]}"#, "`features` has 2 names but input `descriptors` has 6 columns"),
        (linear, br#"{"outputs": ["nope"]}"#, "`outputs` names `nope`, which the model does not have"),
        (linear, br#"{"samples": [{"inputs": {"x": [[1]]}}]}"#, "sample 0: the model has no input `x`"),
        (linear, br#"{"features": ["a", "b", "c", "d", "e", "a"]}"#, "features[0] and features[5] are both named `a`"),
        (linear, br#"{"labels": ["low", "high"]}"#, "`labels` has 2 classes but no output gives 2 class probabilities"),
        (forest, br#"{"labels": ["a", "b", "c"]}"#, "`labels` has 3 classes but the probability output `probabilities` has 2 columns"),
        (forest, br#"{"labels": ["a", "a"]}"#, "labels[0] and labels[1] are both `a`"),
    ];
    for (model, sidecar, message) in cases {
        let result = ingest_file(&ingester, "model", &sklearn(model), Some(sidecar)).await;
        let (code, reason) = rejection(&result);
        assert_eq!(code, "invalid_sidecar", "{model}: {reason}");
        assert!(reason.contains(message), "{model}: {reason}");
    }
}

#[tokio::test]
async fn invalid_model_name_is_rejected() {
    let (_dir, _store, ingester) = folder_ingester();
    let (code, reason) = rejection(&ingest_file(&ingester, "my model+v2", &sklearn("esol_linear.onnx"), None).await);
    assert_eq!(code, "invalid_name");
    assert!(reason.contains("invalid model name `my model+v2`"), "{reason}");
}

#[tokio::test]
async fn every_sklearn_fixture_registers_and_serves() {
    let (_dir, store, ingester) = folder_ingester();
    let index = read_json(&sklearn("INDEX.json"));
    let models = Models::new(Registry::new(store.clone(), Duration::ZERO), ModelCache::new(1 << 30));
    for case in index["cases"].as_array().unwrap() {
        let name = case["case"].as_str().unwrap();
        if matches!(name, "esol_svr" | "esol_label_encoder_strings") {
            continue;
        }
        let sidecar = std::fs::read(sklearn(&format!("{name}.json"))).unwrap();
        let model_name = name.replace('_', "-");
        let result = ingest_file(&ingester, &model_name, &sklearn(&format!("{name}.onnx")), Some(&sidecar)).await;
        assert_eq!(registered_version(&result), 1, "{name}");
        let handle = models.get(&model_name, None).await.unwrap_or_else(|err| panic!("{name}: {err}"));
        let validation = handle.manifest.validation.as_ref().unwrap_or_else(|| panic!("{name}: {:?}", handle.manifest));
        assert!(validation.samples_checked >= 1, "{name}");
        assert_eq!(validation.smoke_batches, vec![1, 3]);
    }
}

#[tokio::test]
async fn zipmap_classifier_keeps_original_and_labels() {
    let (dir, store, ingester) = folder_ingester();
    let sidecar = std::fs::read(sklearn("esol_rf_classifier_zipmap.json")).unwrap();
    let result = ingest_file(&ingester, "soluble", &sklearn("esol_rf_classifier_zipmap.onnx"), Some(&sidecar)).await;
    assert_eq!(registered_version(&result), 1);

    let manifest: Value = serde_json::from_slice(&std::fs::read(dir.path().join("soluble/1/manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["labels"], json!([0, 1]));
    assert_eq!(manifest["probability_output"], "output_probability");
    assert_eq!(manifest["outputs"][1], json!({"name": "output_probability", "datatype": "FP32", "shape": [-1, 2]}));
    assert!(manifest["validation"]["rewrites"][0].as_str().unwrap().contains("ZipMap removed"));
    let original = std::fs::read(dir.path().join("soluble/1/original.onnx")).unwrap();
    assert_eq!(original, std::fs::read(sklearn("esol_rf_classifier_zipmap.onnx")).unwrap());
    assert!(store.get("soluble/1/model.onnx").await.unwrap().is_some());
}

#[tokio::test]
async fn opset_above_18_without_samples_warns() {
    let (dir, _store, ingester) = folder_ingester();
    let bare = ingest_file(&ingester, "gbr", &sklearn("airfoil_gbr.onnx"), None).await;
    let JobResult::Done(Outcome::Registered { warnings, .. }) = &bare else { panic!("{bare:?}") };
    assert!(warnings[0].contains("the model uses ONNX opset 22, above 18"), "{warnings:?}");
    let manifest: Value = serde_json::from_slice(&std::fs::read(dir.path().join("gbr/1/manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["warnings"][0].as_str(), warnings.first().map(String::as_str));
    assert_eq!(manifest["opset_imports"]["ai.onnx"], 22);

    let sidecar = std::fs::read(sklearn("airfoil_gbr.json")).unwrap();
    let checked = ingest_file(&ingester, "gbr", &sklearn("airfoil_gbr.onnx"), Some(&sidecar)).await;
    let JobResult::Done(Outcome::Registered { warnings, version, .. }) = &checked else { panic!("{checked:?}") };
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(*version, 2, "a sidecar makes it another upload");
}

#[tokio::test]
async fn identical_upload_is_registered_once() {
    let (dir, _store, ingester) = folder_ingester();
    let first = ingest_file(&ingester, "linear", &sklearn("esol_linear.onnx"), None).await;
    let again = ingest_file(&ingester, "linear", &sklearn("esol_linear.onnx"), None).await;
    assert_eq!(registered_version(&first), 1);
    assert_eq!(again, JobResult::Done(Outcome::AlreadyRegistered { model: "linear".into(), version: 1 }));

    let other = ingest_file(&ingester, "linear", &sklearn("esol_normalizer.onnx"), None).await;
    assert_eq!(registered_version(&other), 2);
    let aliases: Value = serde_json::from_slice(&std::fs::read(dir.path().join("linear/aliases.json")).unwrap()).unwrap();
    assert_eq!(aliases, json!({"latest": 2}));
}

#[tokio::test]
async fn stale_upload_record_is_taken_over() {
    let (dir, store, ingester) = folder_ingester();
    let bytes = std::fs::read(sklearn("esol_linear.onnx")).unwrap();

    // The upload record key of these bytes without a sidecar, written here
    // the way an invocation that crashed mid-registration leaves it.
    let identity = {
        use sha2::{Digest, Sha256};
        let mut hasher = Sha256::new();
        hasher.update(Sha256::digest(&bytes));
        hex::encode(hasher.finalize())
    };
    let record_key = format!("linear/uploads/{identity}.json");
    let write_record = |started: chrono::DateTime<chrono::Utc>| {
        let record = json!({"state": "registering", "started_at": started});
        let store = store.clone();
        let key = record_key.clone();
        async move { store.put(&key, serde_json::to_vec(&record).unwrap().into()).await.unwrap() }
    };

    // A registration that started a moment ago may still be running, so
    // ingest backs off. One from an hour ago is taken over.
    write_record(chrono::Utc::now()).await;
    let busy = ingester.ingest_bytes("linear", "esol_linear.onnx", &bytes, None).await.unwrap_err();
    assert!(busy.chain().contains("being registered right now"), "{}", busy.chain());
    assert!(!dir.path().join("linear/1").exists());

    write_record(chrono::Utc::now() - chrono::Duration::hours(1)).await;
    let result = ingest_file(&ingester, "linear", &sklearn("esol_linear.onnx"), None).await;
    assert_eq!(registered_version(&result), 1);
    assert!(dir.path().join("linear/1/manifest.json").exists());
    let finished: Value = serde_json::from_slice(&std::fs::read(dir.path().join(&record_key)).unwrap()).unwrap();
    assert_eq!(finished, json!({"state": "registered", "version": 1}));
}

#[tokio::test]
async fn production_moves_only_when_promoted() {
    let (dir, store, ingester) = folder_ingester();
    ingest_file(&ingester, "linear", &sklearn("esol_linear.onnx"), None).await;
    ingest_file(&ingester, "linear", &sklearn("esol_normalizer.onnx"), None).await;
    let name = shared::registry::ModelName::parse("linear").unwrap();
    ingester.registrar.promote(&name, 1).await.unwrap();
    let aliases: Value = serde_json::from_slice(&std::fs::read(dir.path().join("linear/aliases.json")).unwrap()).unwrap();
    assert_eq!(aliases, json!({"latest": 2, "production": 1}));

    ingest_file(&ingester, "linear", &sklearn("esol_imputer.onnx"), None).await;
    let models = Models::new(Registry::new(store, Duration::ZERO), ModelCache::new(1 << 30));
    assert_eq!(models.get("linear", Some("production")).await.unwrap().manifest.version, 1);
    assert_eq!(models.get("linear", None).await.unwrap().manifest.version, 3);
    assert!(ingester.registrar.promote(&name, 9).await.is_err(), "a missing version cannot be promoted");
}

async fn concurrent_ingests_get_distinct_versions(store: Arc<dyn ObjectStore>) {
    let ingester = Arc::new(ingester(store.clone(), 50 * 1024 * 1024));
    let files = ["esol_linear", "esol_normalizer", "esol_imputer", "esol_logistic", "esol_binarizer", "esol_scaler_mlp"];
    let tasks: Vec<_> = files
        .iter()
        .map(|file| {
            let ingester = ingester.clone();
            let path = sklearn(&format!("{file}.onnx"));
            tokio::spawn(async move { ingest_file(&ingester, "shared-name", &path, None).await })
        })
        .collect();
    let mut versions = Vec::new();
    for task in tasks {
        versions.push(registered_version(&task.await.unwrap()));
    }
    versions.sort_unstable();
    assert_eq!(versions, vec![1, 2, 3, 4, 5, 6]);
    let (aliases, _) = store.get_with_etag("shared-name/aliases.json").await.unwrap().unwrap();
    let aliases: Value = serde_json::from_slice(&aliases).unwrap();
    assert_eq!(aliases["latest"], 6, "latest never moves backwards");
    let mut sources = std::collections::HashSet::new();
    for version in 1..=6 {
        let manifest = store.get(&format!("shared-name/{version}/manifest.json")).await.unwrap().unwrap();
        let manifest: Value = serde_json::from_slice(&manifest).unwrap();
        sources.insert(manifest["source"]["sha256"].as_str().unwrap().to_string());
    }
    assert_eq!(sources.len(), 6, "no version overwrote another");
}

#[tokio::test]
async fn concurrent_ingests_on_folder_store() {
    let dir = tempfile::tempdir().unwrap();
    concurrent_ingests_get_distinct_versions(Arc::new(FolderStore::new(dir.path()))).await;
}

#[tokio::test]
async fn concurrent_ingests_on_s3() {
    let server = S3Server::start();
    let client = server.create_bucket("registry").await;
    concurrent_ingests_get_distinct_versions(Arc::new(S3Store::new(client, "registry".into(), "models/".into()))).await;
}

#[tokio::test]
async fn command_line_registers_and_promotes() {
    let dir = tempfile::tempdir().unwrap();
    let binary = repo_root().join("target/debug/ingest");
    let run = |args: &[&str]| {
        std::process::Command::new(&binary)
            .args(args)
            .env("MODEL_REPOSITORY", dir.path())
            .output()
            .unwrap_or_else(|err| panic!("run {}: {err}; build it with `make functions`", binary.display()))
    };
    let model = sklearn("esol_linear.onnx").display().to_string();
    let sidecar = sklearn("esol_linear.json").display().to_string();

    let output = run(&[&model, "--name", "linear", "--metadata", &sidecar]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let result: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(result["status"], "registered");
    assert_eq!(result["version"], 1);

    let output = run(&["promote", "linear", "1"]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let aliases: Value = serde_json::from_slice(&std::fs::read(dir.path().join("linear/aliases.json")).unwrap()).unwrap();
    assert_eq!(aliases["production"], 1);

    let bad = fixture_model("bad_bytes.onnx").display().to_string();
    let output = run(&[&bad, "--name", "bad"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("rejected: the file is not an ONNX model"));
}

/// An SQS event with one S3 notification per message, as S3 sends them, with
/// keys form-URL-encoded.
fn sqs_event(bucket: &str, messages: &[(&str, Value)]) -> Value {
    let records: Vec<Value> = messages
        .iter()
        .map(|(id, body)| {
            json!({
                "messageId": id, "receiptHandle": format!("handle-{id}"), "body": body.to_string(),
                "attributes": {"ApproximateReceiveCount": "1"}, "eventSource": "aws:sqs",
                "eventSourceARN": format!("arn:aws:sqs:us-east-1:000000000000:{bucket}-ingest"), "awsRegion": "us-east-1",
            })
        })
        .collect();
    json!({"Records": records})
}

fn notification(bucket: &str, encoded_key: &str) -> Value {
    json!({"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1", "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": bucket, "arn": format!("arn:aws:s3:::{bucket}")}, "object": {"key": encoded_key, "size": 1}},
    }]})
}

async fn invoke(watch: &Watch, event: &Value) -> Value {
    let response = reqwest::Client::new().post(watch.url(&Watch::invoke_path("ingest"))).json(event).send().await.unwrap();
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert_eq!(status, 200, "{body}");
    body
}

async fn put(client: &aws_sdk_s3::Client, bucket: &str, key: &str, bytes: Vec<u8>) {
    client.put_object().bucket(bucket).key(key).body(bytes.into()).send().await.unwrap();
}

async fn get_json(client: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Option<Value> {
    let object = client.get_object().bucket(bucket).key(key).send().await.ok()?;
    Some(serde_json::from_slice(&object.body.collect().await.unwrap().into_bytes()).unwrap())
}

async fn keys_under(client: &aws_sdk_s3::Client, bucket: &str, prefix: &str) -> Vec<String> {
    let listing = client.list_objects_v2().bucket(bucket).prefix(prefix).send().await.unwrap();
    listing.contents().iter().filter_map(|o| o.key().map(str::to_string)).collect()
}

#[tokio::test]
async fn lambda_ingests_sqs_events_from_s3() {
    let mut server = S3Server::start();
    let bucket = "maas-data";
    let client = server.create_bucket(bucket).await;
    let mut env = aws_env(&server.endpoint);
    env.push(("MODEL_REPOSITORY", format!("s3://{bucket}/models")));
    env.push(("SIDECAR_WAIT_SECONDS", "1".into()));
    let watch = Watch::start_event_function("ingest", &env);

    // Model, then sidecar: one version, registered with its sidecar.
    put(&client, bucket, "incoming/esol-linear.onnx", std::fs::read(sklearn("esol_linear.onnx")).unwrap()).await;
    put(&client, bucket, "incoming/esol-linear.json", std::fs::read(sklearn("esol_linear.json")).unwrap()).await;
    let event = sqs_event(
        bucket,
        &[("m1", notification(bucket, "incoming/esol-linear.onnx")), ("m2", notification(bucket, "incoming/esol-linear.json"))],
    );
    assert_eq!(invoke(&watch, &event).await, json!({"batchItemFailures": []}));
    let manifest = get_json(&client, bucket, "models/esol-linear/1/manifest.json").await.expect("version 1 exists");
    assert!(manifest["source"]["sidecar_sha256"].is_string(), "{manifest}");
    assert_eq!(manifest["features"][1]["name"], "Molecular Weight");
    assert!(get_json(&client, bucket, "models/esol-linear/2/manifest.json").await.is_none());

    // A redelivered event changes nothing.
    assert_eq!(invoke(&watch, &event).await, json!({"batchItemFailures": []}));
    assert!(get_json(&client, bucket, "models/esol-linear/2/manifest.json").await.is_none());

    // The test event, a body that is not a notification and an upload whose
    // decoded name is invalid: acknowledged, and the invalid name reported.
    let test_event = json!({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": bucket});
    put(&client, bucket, "incoming/my model+v2.onnx", std::fs::read(sklearn("esol_linear.onnx")).unwrap()).await;
    let event = sqs_event(
        bucket,
        &[
            ("t1", test_event),
            ("bad", json!({"hello": "world"})),
            ("enc", notification(bucket, "incoming/my+model%2Bv2.onnx")),
        ],
    );
    assert_eq!(invoke(&watch, &event).await, json!({"batchItemFailures": []}));
    let reports = keys_under(&client, bucket, "rejected/my_model_v2/").await;
    assert_eq!(reports.len(), 1, "{reports:?}");
    let report = get_json(&client, bucket, &reports[0]).await.unwrap();
    assert!(report["reason"].as_str().unwrap().contains("invalid model name `my model+v2`"), "{report}");
    assert_eq!(report["upload"], format!("s3://{bucket}/incoming/my model+v2.onnx"));
    assert!(keys_under(&client, bucket, "incoming/my model+v2.onnx").await.len() == 1, "the upload is kept");

    // An unsupported model is rejected with the reason in words.
    put(&client, bucket, "incoming/svr.onnx", std::fs::read(sklearn("esol_svr.onnx")).unwrap()).await;
    invoke(&watch, &sqs_event(bucket, &[("svr", notification(bucket, "incoming/svr.onnx"))])).await;
    let reports = keys_under(&client, bucket, "rejected/svr/").await;
    let report = get_json(&client, bucket, &reports[0]).await.unwrap();
    assert_eq!(report["code"], "unsupported_operator");

    // With S3 down, the message is returned for a retry.
    server.stop();
    let response = invoke(&watch, &sqs_event(bucket, &[("down", notification(bucket, "incoming/esol-linear.onnx"))])).await;
    assert_eq!(response, json!({"batchItemFailures": [{"itemIdentifier": "down"}]}));
}
