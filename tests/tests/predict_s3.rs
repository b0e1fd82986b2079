//! The predict function under `cargo lambda watch` with its registry in S3,
//! configured only through the standard AWS environment, and its behaviour
//! when the S3 server goes away.

use maas_tests::registry::RegistryFiles;
use maas_tests::{aws_env, S3Server, Watch};
use serde_json::{json, Value};

async fn post(watch: &Watch, path: &str, body: &Value) -> (u16, Value) {
    let response = reqwest::Client::new().post(watch.url(path)).json(body).send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
}

async fn get(watch: &Watch, path: &str) -> (u16, Value) {
    let response = reqwest::get(watch.url(path)).await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
}

fn esol_request() -> Value {
    json!({"inputs": [{"name": "descriptors", "shape": [1, 6], "datatype": "FP32", "data": [1, 116.204, 1, 0, 2, 20.23]}]})
}

#[tokio::test]
async fn s3_registry_from_environment_and_outage() {
    let mut server = S3Server::start();
    let client = server.create_bucket("maas-registry").await;
    RegistryFiles::standard().upload(&client, "maas-registry", "models/").await;

    let mut env = aws_env(&server.endpoint);
    env.push(("MODEL_REPOSITORY", "s3://maas-registry/models".to_string()));
    let watch = Watch::start("predict", &env, "/v2/health/live");

    // Served from S3.
    assert_eq!(get(&watch, "/v2/health/ready").await, (200, json!({"ready": true})));
    let (status, body) = post(&watch, "/v2/models/esol-solubility/infer", &esol_request()).await;
    assert_eq!(status, 200, "{body}");
    assert!((body["outputs"][0]["data"][0].as_f64().unwrap() - -0.937_395_3).abs() < 1e-5, "{body}");
    let (status, body) = get(&watch, "/v2/models/missing-model").await;
    assert_eq!(status, 404, "{body}");

    // With S3 gone, readiness and uncached models report 503, and the model
    // already in memory keeps answering.
    server.stop();
    let (status, body) = get(&watch, "/v2/health/ready").await;
    assert_eq!(status, 503, "{body}");
    assert!(body["error"].as_str().unwrap().contains("s3://maas-registry/models/"), "{body}");
    let two_inputs = json!({"inputs": [
        {"name": "a", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]},
        {"name": "b", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]},
    ]});
    let (status, body) = post(&watch, "/v2/models/two-inputs/infer", &two_inputs).await;
    assert_eq!(status, 503, "{body}");
    assert!(body["error"].as_str().unwrap().contains("retry later"), "{body}");
    let (status, body) = post(&watch, "/v2/models/esol-solubility/versions/1/infer", &esol_request()).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn missing_folder_registry_is_not_ready() {
    let env = [("MODEL_REPOSITORY", "/nonexistent/registry".to_string())];
    let watch = Watch::start("predict", &env, "/v2/health/live");
    let (status, body) = get(&watch, "/v2/health/ready").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(get(&watch, "/v2/health/live").await.0, 200);
}
