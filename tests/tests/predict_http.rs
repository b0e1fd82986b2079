//! The predict function over HTTP under `cargo lambda watch`, on a
//! local-folder registry with the example model and the fixture models.

use std::io::Write;
use std::sync::OnceLock;

use base64::Engine;
use maas_tests::registry::{fixture, read_json, RegistryFiles};
use maas_tests::{repo_root, Watch};
use serde_json::{json, Value};

struct Server {
    _registry: tempfile::TempDir,
    watch: Watch,
}

/// One function process for the whole file; each test uses its own requests.
fn server() -> &'static Watch {
    static SERVER: OnceLock<Server> = OnceLock::new();
    &SERVER
        .get_or_init(|| {
            let registry = tempfile::tempdir().unwrap();
            let mut files = RegistryFiles::standard();
            // A copy of the ESOL model that only the concurrency test uses, so
            // that its first request is really the first.
            let mut manifest = read_json(&repo_root().join("examples/registry/esol-solubility/1/manifest.json"));
            manifest["name"] = json!("concurrent-esol");
            files.add_model(manifest, std::fs::read(repo_root().join("examples/registry/esol-solubility/1/model.onnx")).unwrap(), 1);
            files.write_to_folder(registry.path());
            let env = [
                ("MODEL_REPOSITORY", registry.path().display().to_string()),
                ("AWS_LAMBDA_LOG_LEVEL", "INFO".to_string()),
                ("MAX_REQUEST_ELEMENTS", "100000".to_string()),
            ];
            let watch = Watch::start("predict", &env, "/v2/health/live");
            Server { _registry: registry, watch }
        })
        .watch
}

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

async fn get(path: &str) -> (u16, Value) {
    let response = client().get(server().url(path)).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn post_json(path: &str, body: &Value) -> (u16, Value) {
    let response = client()
        .post(server().url(path))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn error_of(body: &Value) -> &str {
    body["error"].as_str().unwrap_or_else(|| panic!("no error message in {body}"))
}

/// The first rows of the ESOL test split: descriptors and onnxruntime's answer.
fn esol_rows(count: usize) -> Vec<(Vec<f64>, f64)> {
    let text = std::fs::read_to_string(repo_root().join("examples/esol_test_split.csv")).unwrap();
    let mut rows = Vec::new();
    for line in text.lines().skip(1).take(count) {
        // The compound name may contain quoted commas, so read from the right.
        let fields: Vec<&str> = line.rsplitn(10, ',').collect();
        let expected: f64 = fields[0].parse().unwrap();
        let descriptors: Vec<f64> = fields[3..9].iter().rev().map(|f| f.parse().unwrap()).collect();
        rows.push((descriptors, expected));
    }
    rows
}

fn esol_request(rows: &[(Vec<f64>, f64)], nested: bool) -> Value {
    let data: Value = if nested {
        json!(rows.iter().map(|(d, _)| d.clone()).collect::<Vec<_>>())
    } else {
        json!(rows.iter().flat_map(|(d, _)| d.clone()).collect::<Vec<_>>())
    };
    json!({"id": "req-7", "inputs": [{"name": "descriptors", "shape": [rows.len(), 6], "datatype": "FP32", "data": data}]})
}

#[tokio::test]
async fn server_metadata_and_health() {
    let (status, body) = get("/v2").await;
    assert_eq!(status, 200);
    assert_eq!(body["name"], "serverless-maas");
    assert!(body["extensions"].as_array().unwrap().contains(&json!("binary_tensor_data")));
    assert_eq!(get("/v2/health/live").await, (200, json!({"live": true})));
    assert_eq!(get("/v2/health/ready").await, (200, json!({"ready": true})));
}

#[tokio::test]
async fn model_metadata_gives_signature_and_versions() {
    let (status, body) = get("/v2/models/esol-solubility").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["name"], "esol-solubility");
    assert_eq!(body["versions"], json!(["1"]));
    assert_eq!(body["inputs"], json!([{"name": "descriptors", "datatype": "FP32", "shape": [-1, 6]}]));
    assert_eq!(body["outputs"][0]["name"], "log_solubility");
    assert_eq!(body["parameters"]["features"][1], json!({"name": "Molecular Weight", "unit": "g/mol"}));

    let (status, body) = get("/v2/models/esol-solubility/versions/1").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["versions"], json!(["1"]));
}

#[tokio::test]
async fn model_ready_by_alias_and_number() {
    let (status, body) = get("/v2/models/esol-solubility/ready").await;
    assert_eq!((status, &body["ready"]), (200, &json!(true)), "{body}");
    let (status, body) = get("/v2/models/esol-solubility/versions/1/ready").await;
    assert_eq!((status, &body["version"]), (200, &json!("1")), "{body}");
}

#[tokio::test]
async fn infer_nested_and_flat_data_agree_with_onnxruntime() {
    let rows = esol_rows(5);
    let (status, nested) = post_json("/v2/models/esol-solubility/infer", &esol_request(&rows, true)).await;
    assert_eq!(status, 200, "{nested}");
    let (status, flat) = post_json("/v2/models/esol-solubility/versions/1/infer", &esol_request(&rows, false)).await;
    assert_eq!(status, 200, "{flat}");
    assert_eq!(nested["outputs"], flat["outputs"]);

    assert_eq!(nested["model_name"], "esol-solubility");
    assert_eq!(nested["model_version"], "1");
    assert_eq!(nested["id"], "req-7");
    let output = &nested["outputs"][0];
    assert_eq!(output["name"], "log_solubility");
    assert_eq!(output["datatype"], "FP32");
    assert_eq!(output["shape"], json!([5, 1]));
    for (value, (_, expected)) in output["data"].as_array().unwrap().iter().zip(&rows) {
        assert!((value.as_f64().unwrap() - expected).abs() < 1e-5, "{value} vs onnxruntime {expected}");
    }
}

#[tokio::test]
async fn infer_every_datatype_round_trips() {
    let expected = read_json(&fixture("all_dtypes.expected.json"));
    let inputs: Vec<Value> = expected["inputs"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, t)| json!({"name": name, "shape": t["shape"], "datatype": t["datatype"], "data": t["data"]}))
        .collect();
    let (status, body) = post_json("/v2/models/all-dtypes/infer", &json!({"inputs": inputs})).await;
    assert_eq!(status, 200, "{body}");
    for output in body["outputs"].as_array().unwrap() {
        let name = output["name"].as_str().unwrap();
        let want = &expected["outputs"][name];
        assert_eq!(output["datatype"], want["datatype"], "{name}");
        let flat: Vec<Value> = want["data"].as_array().unwrap().iter().flat_map(|row| row.as_array().unwrap().clone()).collect();
        if output["datatype"] == "FP16" || output["datatype"] == "FP32" {
            for (got, want) in output["data"].as_array().unwrap().iter().zip(&flat) {
                let (got, want) = (got.as_f64().unwrap(), want.as_f64().unwrap());
                assert!((got - want).abs() <= 1e-6 * want.abs().max(1.0), "{name}: {got} vs {want}");
            }
        } else {
            assert_eq!(output["data"], json!(flat), "{name}");
        }
    }
}

#[tokio::test]
async fn infer_binary_tensor_data_in_and_out() {
    let rows = esol_rows(2);
    let bytes: Vec<u8> = rows.iter().flat_map(|(d, _)| d.iter().flat_map(|x| (*x as f32).to_le_bytes())).collect();
    let header = json!({
        "inputs": [{"name": "descriptors", "shape": [2, 6], "datatype": "FP32", "parameters": {"binary_data_size": bytes.len()}}],
        "outputs": [{"name": "log_solubility", "parameters": {"binary_data": true}}],
    })
    .to_string();
    let mut body = header.clone().into_bytes();
    body.extend(&bytes);
    let response = client()
        .post(server().url("/v2/models/esol-solubility/infer"))
        .header("content-type", "application/octet-stream")
        .header("inference-header-content-length", header.len())
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let json_length: usize = response.headers()["inference-header-content-length"].to_str().unwrap().parse().unwrap();
    let body = response.bytes().await.unwrap();
    let head: Value = serde_json::from_slice(&body[..json_length]).unwrap();
    assert_eq!(head["outputs"][0]["parameters"]["binary_data_size"], 8);
    assert!(head["outputs"][0].get("data").is_none());
    let values: Vec<f32> = body[json_length..].chunks(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
    for (value, (_, expected)) in values.iter().zip(&rows) {
        assert!((*value as f64 - expected).abs() < 1e-5);
    }
}

#[tokio::test]
async fn infer_selected_outputs_only() {
    let request = json!({
        "inputs": [
            {"name": "a", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]},
            {"name": "b", "shape": [1, 3], "datatype": "FP32", "data": [4, 5, 6]},
        ],
        "outputs": [{"name": "product"}],
    });
    let (status, body) = post_json("/v2/models/two-inputs/infer", &request).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["outputs"], json!([{"name": "product", "datatype": "FP32", "shape": [1, 3], "data": [4.0, 10.0, 18.0]}]));
}

#[tokio::test]
async fn v1_named_features_in_any_order_and_arrays() {
    let rows = esol_rows(2);
    let (d, _) = &rows[0];
    let named = json!({
        "Polar Surface Area": d[5], "Number of Rings": d[3], "Minimum Degree": d[0],
        "Molecular Weight": d[1], "Number of Rotatable Bonds": d[4], "Number of H-Bond Donors": d[2],
    });
    let request = json!({"instances": [named, rows[1].0]});
    let (status, body) = post_json("/v1/models/esol-solubility:predict", &request).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["model_version"], "1");
    let predictions = body["predictions"].as_array().unwrap();
    assert_eq!(predictions.len(), 2);
    for (prediction, (_, expected)) in predictions.iter().zip(&rows) {
        assert!((prediction.as_f64().unwrap() - expected).abs() < 1e-5, "{prediction} vs {expected}");
    }
}

#[tokio::test]
async fn v1_classifier_returns_label_and_probabilities() {
    let request = json!({"instances": [{"x": 1.0, "y": 0.0}, [0.0, 1.0], {"y": -1.0, "x": -1.0}]});
    let (status, body) = post_json("/v1/models/softmax-classifier/versions/1:predict", &request).await;
    assert_eq!(status, 200, "{body}");
    let expected = read_json(&fixture("softmax_classifier.expected.json"));
    let labels = ["low", "medium", "high"];
    for (row, prediction) in body["predictions"].as_array().unwrap().iter().enumerate() {
        let label_index = expected["outputs"]["label"]["data"][row].as_u64().unwrap() as usize;
        assert_eq!(prediction["label"], labels[label_index], "{prediction}");
        for (column, label) in labels.iter().enumerate() {
            let want = expected["outputs"]["probabilities"]["data"][row][column].as_f64().unwrap();
            let got = prediction["probabilities"][label].as_f64().unwrap();
            assert!((got - want).abs() < 1e-6, "{label}: {got} vs {want}");
        }
    }
}

#[tokio::test]
async fn v1_feature_errors_name_the_feature() {
    let cases = [
        (json!({"instances": [{"x": 1.0}]}), "instance 0 is missing feature `y`"),
        (json!({"instances": [{"x": 1.0, "y": 2.0, "z": 3.0}]}), "instance 0 has unknown feature `z`; expected features: `x`, `y`"),
        (json!({"instances": [{"x": "warm", "y": 2.0}]}), "instance 0: feature `x` is \"warm\", not a number"),
        (json!({"instances": [[1.0, 2.0], [1.0]]}), "instance 1 has 1 values but input `features` takes 2 per row"),
        (json!({"instances": []}), "`instances` is empty"),
        (json!({"rows": []}), "missing field `instances`"),
    ];
    for (request, message) in cases {
        let (status, body) = post_json("/v1/models/softmax-classifier:predict", &request).await;
        assert_eq!(status, 400, "{request}: {body}");
        assert!(error_of(&body).contains(message), "{request}: {body}");
    }
}

#[tokio::test]
async fn bad_requests_get_400_with_the_reason() {
    let rows = esol_rows(1);
    let mut wrong_type = esol_request(&rows, true);
    wrong_type["inputs"][0]["datatype"] = json!("FP64");
    let mut short_data = esol_request(&rows, true);
    short_data["inputs"][0]["data"] = json!([1, 2, 3]);
    let mut negative = esol_request(&rows, true);
    negative["inputs"][0]["shape"] = json!([-1, 6]);
    let mut wrong_shape = esol_request(&rows, true);
    wrong_shape["inputs"][0]["shape"] = json!([2, 3]);
    let mut unknown_input = esol_request(&rows, true);
    unknown_input["inputs"][0]["name"] = json!("features");
    let mut unknown_type = esol_request(&rows, true);
    unknown_type["inputs"][0]["datatype"] = json!("FLOAT");
    let mut ragged = esol_request(&esol_rows(2), false);
    ragged["inputs"][0]["data"] = json!([[1, 116.204, 1, 0, 2, 20.23, 5], [1, 201.225, 1, 2, 2]]);
    let mut string_data = esol_request(&rows, true);
    string_data["inputs"][0]["data"] = json!(["1", "2", "3", "4", "5", "6"]);
    let cases = [
        (wrong_type, "input `descriptors` expects datatype FP32 but received FP64"),
        (short_data, "input `descriptors` has 3 data elements but its shape [1, 6] needs 6"),
        (ragged, "data[0] has 7 elements but dimension 1 of shape [2, 6] is 6"),
        (negative, "negative dimension -1"),
        (wrong_shape, "input `descriptors` expects shape [-1, 6] (-1 is any size) but received [2, 3]"),
        (unknown_input, "model `esol-solubility` has no input `features`; its inputs are `descriptors`"),
        (unknown_type, "unknown datatype `FLOAT`"),
        (string_data, "invalid data for input `descriptors`"),
        (json!({"inputs": "none"}), "invalid inference request"),
    ];
    for (request, message) in cases {
        let (status, body) = post_json("/v2/models/esol-solubility/infer", &request).await;
        assert_eq!(status, 400, "{request}: {body}");
        assert!(error_of(&body).contains(message), "expected {message:?} in {body}");
    }

    let missing_b = json!({"inputs": [{"name": "a", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}]});
    let (status, body) = post_json("/v2/models/two-inputs/infer", &missing_b).await;
    assert_eq!(status, 400);
    assert!(error_of(&body).contains("missing input `b`"), "{body}");

    let response = client().post(server().url("/v2/models/esol-solubility/infer")).body("{not json").send().await.unwrap();
    assert_eq!(response.status().as_u16(), 400);
}

#[tokio::test]
async fn unknown_model_version_and_path_get_404() {
    let request = esol_request(&esol_rows(1), true);
    let (status, body) = post_json("/v2/models/no-such-model/infer", &request).await;
    assert_eq!(status, 404);
    assert!(error_of(&body).contains("model `no-such-model` not found"), "{body}");
    let (status, body) = post_json("/v2/models/esol-solubility/versions/42/infer", &request).await;
    assert_eq!(status, 404);
    assert!(error_of(&body).contains("version `42` of model `esol-solubility` not found"), "{body}");
    let (status, body) = get("/v3/models").await;
    assert_eq!(status, 404, "{body}");
    let (status, _) = get("/v2/models/esol-solubility/infer").await;
    assert_eq!(status, 405);
}

#[tokio::test]
async fn names_outside_the_registry_are_rejected() {
    for path in ["/v2/models/..%2Fsecret/infer", "/v2/models/esol-solubility/versions/..%2F1/infer", "/v2/models/.hidden/infer"] {
        let (status, body) = post_json(path, &json!({"inputs": []})).await;
        assert_eq!(status, 400, "{path}: {body}");
    }
}

#[tokio::test]
async fn oversized_requests_get_413() {
    let huge = vec![b' '; 6 * 1024 * 1024 + 1];
    let response = client()
        .post(server().url("/v2/models/esol-solubility/infer"))
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 413);
    let body: Value = response.json().await.unwrap();
    assert!(error_of(&body).contains("batch scoring"), "{body}");

    let mut request = esol_request(&esol_rows(1), true);
    request["inputs"][0]["shape"] = json!([1_000_000_000, 6]);
    let (status, body) = post_json("/v2/models/esol-solubility/infer", &request).await;
    assert_eq!(status, 413, "{body}");
    assert!(error_of(&body).contains("limit of 100000 elements"), "{body}");

    let instances: Vec<Value> = (0..20_000).map(|_| json!([1, 2, 3, 4, 5, 6])).collect();
    let (status, body) = post_json("/v1/models/esol-solubility:predict", &json!({"instances": instances})).await;
    assert_eq!(status, 413, "{body}");
}

#[tokio::test]
async fn wrong_content_type_gets_415() {
    let response = client()
        .post(server().url("/v2/models/esol-solubility/infer"))
        .header("content-type", "text/csv")
        .body("1,2,3")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 415);
    let body: Value = response.json().await.unwrap();
    assert!(error_of(&body).contains("content type `text/csv` is not supported"), "{body}");

    let response = client()
        .post(server().url("/v1/models/esol-solubility:predict"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("a=1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 415);
}

#[tokio::test]
async fn panic_in_model_gets_500_and_process_survives() {
    let bad = json!({"inputs": [{"name": "indices", "shape": [1], "datatype": "INT64", "data": [7]}]});
    let (status, body) = post_json("/v2/models/onehot-panic/infer", &bad).await;
    assert_eq!(status, 500, "{body}");
    assert!(error_of(&body).contains("inference failed for model `onehot-panic:1`"), "{body}");

    let good = json!({"inputs": [{"name": "indices", "shape": [3], "datatype": "INT64", "data": [0, 2, 1]}]});
    let (status, body) = post_json("/v2/models/onehot-panic/infer", &good).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["outputs"][0]["data"], json!([1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 1.0, 0.0]));
}

#[tokio::test]
async fn unloadable_model_is_not_ready_503() {
    let (status, body) = get("/v2/models/unloadable/ready").await;
    assert_eq!(status, 503, "{body}");
    assert!(error_of(&body).contains("model `unloadable` is not ready"), "{body}");
    let request = json!({"inputs": [{"name": "a", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}]});
    let (status, body) = post_json("/v2/models/unloadable/infer", &request).await;
    assert_eq!(status, 503, "{body}");
    assert!(error_of(&body).contains("not an ONNX model"), "{body}");
    let (status, body) = post_json("/v2/models/corrupt/infer", &request).await;
    assert_eq!(status, 500, "{body}");
    assert!(error_of(&body).contains("is corrupt"), "{body}");
}

/// Invokes the function with a raw Lambda event, as API Gateway and function
/// URLs do, and returns the HTTP response it produced.
async fn invoke_event(event: &Value) -> Value {
    let response = client()
        .post(server().url("/2015-03-31/functions/predict/invocations"))
        .body(event.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    response.json().await.unwrap()
}

#[tokio::test]
async fn api_gateway_base64_body_is_decoded() {
    let event = read_json(&repo_root().join("events/apigw-v2-infer-base64.json"));
    assert_eq!(event["isBase64Encoded"], true);
    let response = invoke_event(&event).await;
    assert_eq!(response["statusCode"], 200, "{response}");
    let body: Value = serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["outputs"][0]["shape"], json!([2, 1]));

    let plain = invoke_event(&read_json(&repo_root().join("events/apigw-v2-infer.json"))).await;
    let plain_body: Value = serde_json::from_str(plain["body"].as_str().unwrap()).unwrap();
    assert_eq!(plain_body["outputs"], body["outputs"]);
}

#[tokio::test]
async fn gzip_body_in_base64_event_is_decoded() {
    // `cargo lambda watch` forwards a JSON-typed body only as UTF-8 text, so
    // a compressed body goes in an event, base64-encoded as API Gateway sends
    // binary bodies.
    let request = esol_request(&esol_rows(1), true);
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(request.to_string().as_bytes()).unwrap();
    let mut event = read_json(&repo_root().join("events/apigw-v2-infer-base64.json"));
    event["body"] = json!(base64::engine::general_purpose::STANDARD.encode(encoder.finish().unwrap()));
    event["headers"]["content-encoding"] = json!("gzip");
    let response = invoke_event(&event).await;
    assert_eq!(response["statusCode"], 200, "{response}");
    let body: Value = serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["outputs"][0]["shape"], json!([1, 1]));
}

#[tokio::test]
async fn function_url_event_is_served() {
    let response = invoke_event(&read_json(&repo_root().join("events/function-url-predict-v1.json"))).await;
    assert_eq!(response["statusCode"], 200, "{response}");
    let body = response["body"].as_str().unwrap();
    let body: Value = match response["isBase64Encoded"].as_bool() {
        Some(true) => serde_json::from_slice(&base64::engine::general_purpose::STANDARD.decode(body).unwrap()).unwrap(),
        _ => serde_json::from_str(body).unwrap(),
    };
    assert_eq!(body["predictions"].as_array().unwrap().len(), 1, "{body}");
}

#[tokio::test]
async fn concurrent_first_requests_load_the_model_once() {
    let rows = esol_rows(1);
    let request = esol_request(&rows, true);
    let requests: Vec<_> = (0..8)
        .map(|_| {
            let request = request.clone();
            tokio::spawn(async move { post_json("/v2/models/concurrent-esol/infer", &request).await })
        })
        .collect();
    for request in requests {
        let (status, body) = request.await.unwrap();
        assert_eq!(status, 200, "{body}");
        assert!((body["outputs"][0]["data"][0].as_f64().unwrap() - rows[0].1).abs() < 1e-5);
    }
    let loads = server().log_text().matches("model loaded model=concurrent-esol version=1").count();
    assert_eq!(loads, 1, "the model was loaded {loads} times");
}
