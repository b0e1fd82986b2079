//! The batch-score function under `cargo lambda watch` when its S3 server
//! stops in the middle of a file and comes back: the message is retried,
//! only that message, and the retry writes the whole result.

use std::time::{Duration, Instant};

use maas_tests::registry::{read_json, RegistryFiles};
use maas_tests::{aws_env, repo_root, S3Server, Watch};
use serde_json::{json, Value};

const BUCKET: &str = "maas-local";
const KEY: &str = "batch/input/esol-solubility/esol.csv";
const SCORED: &str = "batch/output/esol-solubility/esol.out.csv";

/// Returns the ESOL rows repeated `copies` times under one header, and the
/// number of rows.
fn repeated_esol(copies: usize) -> (Vec<u8>, usize) {
    let text = std::fs::read_to_string(repo_root().join("data/esol/delaney-processed.csv")).unwrap();
    let (header, rows) = text.split_once('\n').unwrap();
    let rows = rows.trim_end();
    let mut body = format!("{header}\n").into_bytes();
    for _ in 0..copies {
        body.extend_from_slice(rows.as_bytes());
        body.push(b'\n');
    }
    (body, rows.lines().count() * copies)
}

async fn upload(server: &S3Server, body: &[u8]) {
    let client = server.create_bucket(BUCKET).await;
    client.put_object().bucket(BUCKET).key(KEY).body(body.to_vec().into()).send().await.unwrap();
}

async fn invoke(watch: &Watch, event: &Value) -> Value {
    let response = reqwest::Client::new()
        .post(watch.url(&Watch::invoke_path("batch-score")))
        .body(event.to_string())
        .send()
        .await
        .unwrap();
    response.json().await.unwrap_or(Value::Null)
}

/// True once the multipart upload of the scored file has at least one part,
/// so the function is in the middle of the file.
async fn upload_has_parts(client: &aws_sdk_s3::Client) -> bool {
    let Ok(uploads) = client.list_multipart_uploads().bucket(BUCKET).prefix(SCORED).send().await else { return false };
    for upload in uploads.uploads() {
        let parts = client.list_parts().bucket(BUCKET).key(SCORED).upload_id(upload.upload_id().unwrap_or_default()).send().await;
        if parts.is_ok_and(|parts| !parts.parts().is_empty()) {
            return true;
        }
    }
    false
}

#[tokio::test]
async fn outage_mid_file_is_retried() {
    let mut server = S3Server::start();
    // About 44 MB of output, so the scored file needs several 8 MiB parts.
    let (body, rows) = repeated_esol(400);
    upload(&server, &body).await;
    let registry = tempfile::tempdir().unwrap();
    RegistryFiles::standard().write_to_folder(registry.path());
    let mut env = aws_env(&server.endpoint);
    env.push(("MODEL_REPOSITORY", registry.path().display().to_string()));
    // Small mini-batches slow the function down, which leaves the test more
    // time to stop the server between the first part and the last.
    env.push(("BATCH_CHUNK_ROWS", "32".into()));
    let watch = Watch::start_event_function("batch-score", &env);
    let sqs = read_json(&repo_root().join("events/sqs-s3-batch-put.json"));
    let message_id = sqs["Records"][0]["messageId"].clone();

    // Stop the server once the first part of the result is uploaded.
    let running = tokio::spawn({
        let watch_url = watch.url(&Watch::invoke_path("batch-score"));
        let sqs = sqs.clone();
        async move { reqwest::Client::new().post(watch_url).body(sqs.to_string()).send().await.unwrap().json::<Value>().await.unwrap() }
    });
    let client = server.client();
    let started = Instant::now();
    while !upload_has_parts(&client).await {
        assert!(!running.is_finished(), "the function finished before the outage: {:?}", running.await);
        assert!(started.elapsed() < Duration::from_secs(300), "no part was uploaded within 5 minutes");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.stop();
    let response = running.await.unwrap();
    assert_eq!(response, json!({"batchItemFailures": [{"itemIdentifier": message_id}]}));

    // While S3 is down, a batch of three retries only the message that needs
    // S3: the test event is acknowledged and the bad body dropped.
    let bad = read_json(&repo_root().join("events/sqs-batch-one-bad.json"));
    let test_event = read_json(&repo_root().join("events/sqs-s3-test-event.json"));
    let batch = json!({"Records": [test_event["Records"][0], bad["Records"][1], sqs["Records"][0]]});
    assert_eq!(invoke(&watch, &batch).await, json!({"batchItemFailures": [{"itemIdentifier": message_id}]}));
    let direct = invoke(&watch, &read_json(&repo_root().join("events/s3-put-batch.json"))).await;
    assert_eq!(direct["errorType"], "Retryable", "{direct}");

    // moto keeps objects in memory, so the restarted server has only what is
    // uploaded again. No result exists before the retry.
    server.restart();
    upload(&server, &body).await;
    let client = server.client();
    assert!(client.head_object().bucket(BUCKET).key(SCORED).send().await.is_err());

    assert_eq!(invoke(&watch, &sqs).await, json!({"batchItemFailures": []}));
    let scored = client.get_object().bucket(BUCKET).key(SCORED).send().await.unwrap();
    let scored = scored.body.collect().await.unwrap().into_bytes();
    assert_eq!(scored.iter().filter(|&&b| b == b'\n').count(), rows + 1, "header and every row");
    let summary = client.get_object().bucket(BUCKET).key("batch/output/esol-solubility/esol.summary.json").send().await.unwrap();
    let summary: Value = serde_json::from_slice(&summary.body.collect().await.unwrap().into_bytes()).unwrap();
    assert_eq!(summary["status"], "succeeded");
    assert_eq!(summary["rows"]["scored"], rows);
}
