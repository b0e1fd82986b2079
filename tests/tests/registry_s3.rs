//! The registry reader, model cache and runtime against a real S3-compatible
//! server (moto) on loopback, and the same reads on the local-folder store.

use std::sync::Arc;
use std::time::Duration;

use maas_tests::registry::RegistryFiles;
use maas_tests::S3Server;
use shared::models::Models;
use shared::registry::Registry;
use shared::runtime::ModelCache;
use shared::store::fs::FolderStore;
use shared::store::s3::S3Store;
use shared::store::ObjectStore;
use shared::tract_onnx::prelude::Tensor;
use shared::{Error, ErrorKind};

const BUCKET: &str = "models-test";

async fn s3_models(server: &S3Server, prefix: &str, cache_bytes: u64, alias_ttl: Duration) -> Models {
    let client = server.client();
    let store: Arc<dyn ObjectStore> = Arc::new(S3Store::new(client, BUCKET.into(), prefix.into()));
    Models::new(Registry::new(store, alias_ttl), ModelCache::new(cache_bytes))
}

/// One moto server and bucket per test, so tests can stop it or change it.
async fn server_with_registry(prefix: &str) -> (S3Server, aws_sdk_s3::Client) {
    let server = S3Server::start();
    let client = server.create_bucket(BUCKET).await;
    RegistryFiles::standard().upload(&client, BUCKET, prefix).await;
    (server, client)
}

fn esol_row() -> Tensor {
    Tensor::from_shape(&[1, 6], &[1.0f32, 116.204, 1.0, 0.0, 2.0, 20.23]).unwrap()
}

async fn predict_esol(models: &Models, version: Option<&str>) -> f32 {
    let handle = models.get("esol-solubility", version).await.unwrap();
    let outputs = Models::run(&handle.model, vec![esol_row()]).await.unwrap();
    outputs[0].try_as_plain_ram().unwrap().as_slice::<f32>().unwrap()[0]
}

#[tokio::test]
async fn s3_registry_serves_by_number_and_alias() {
    let (server, _client) = server_with_registry("registry/").await;
    let models = s3_models(&server, "registry/", 1 << 30, Duration::from_secs(30)).await;

    for version in [None, Some("1"), Some("latest"), Some("production")] {
        let value = predict_esol(&models, version).await;
        // onnxruntime gives -0.93739533 for this row (examples/esol_test_split.csv).
        assert!((value - -0.937_395_3).abs() < 1e-5, "{version:?}: {value}");
    }
    let handle = models.get("esol-solubility", None).await.unwrap();
    assert_eq!(handle.manifest.version, 1);
    assert_eq!(handle.model.inputs[0].shape, vec![-1, 6]);
}

#[tokio::test]
async fn warm_second_request_does_not_reload() {
    let (server, _client) = server_with_registry("").await;
    let models = s3_models(&server, "", 1 << 30, Duration::from_secs(30)).await;

    let first = models.get("esol-solubility", Some("1")).await.unwrap();
    let second = models.get("esol-solubility", Some("1")).await.unwrap();

    assert!(first.load_ms.is_some(), "the first request loads the model");
    assert!(second.load_ms.is_none(), "the second request is served from the cache");
    assert!(Arc::ptr_eq(&first.model, &second.model));
    assert_eq!(models.cache.loads(), 1);
}

#[tokio::test]
async fn concurrent_first_requests_load_once() {
    let (server, _client) = server_with_registry("").await;
    let models = Arc::new(s3_models(&server, "", 1 << 30, Duration::from_secs(30)).await);

    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let models = models.clone();
            tokio::spawn(async move { predict_esol(&models, None).await })
        })
        .collect();
    for task in tasks {
        assert!((task.await.unwrap() - -0.937_395_3).abs() < 1e-5);
    }
    assert_eq!(models.cache.loads(), 1);
}

#[tokio::test]
async fn memory_budget_evicts_least_recently_used() {
    let (server, _client) = server_with_registry("").await;
    // The ESOL model is about 11 KB and counts twice that; two-inputs and
    // all-dtypes count about 0.4 KB and 2.8 KB. A 24 KB budget holds ESOL
    // with two-inputs, and loading all-dtypes then evicts ESOL, the least
    // recently used.
    let models = s3_models(&server, "", 24_000, Duration::from_secs(30)).await;

    models.get("esol-solubility", None).await.unwrap();
    models.get("two-inputs", None).await.unwrap();
    assert_eq!(models.cache.evictions(), 0);
    models.get("all-dtypes", None).await.unwrap();
    assert_eq!(models.cache.evictions(), 1);

    assert!(models.get("two-inputs", None).await.unwrap().load_ms.is_none(), "two-inputs stays cached");
    assert!(models.get("all-dtypes", None).await.unwrap().load_ms.is_none(), "all-dtypes stays cached");
    assert!(models.get("esol-solubility", None).await.unwrap().load_ms.is_some(), "esol-solubility was evicted");
    assert_eq!(models.cache.loads(), 4);
}

#[tokio::test]
async fn unknown_model_and_version_are_not_found() {
    let (server, _client) = server_with_registry("").await;
    let models = s3_models(&server, "", 1 << 30, Duration::from_secs(30)).await;

    let err = models.get("no-such-model", None).await.unwrap_err();
    assert!(matches!(err, Error::ModelNotFound { .. }), "{err}");
    assert_eq!(err.kind(), ErrorKind::NotFound);

    let err = models.get("esol-solubility", Some("9")).await.unwrap_err();
    assert!(matches!(err, Error::VersionNotFound { .. }), "{err}");
    assert!(err.to_string().contains("available versions: 1"), "{err}");

    let err = models.get("esol-solubility", Some("staging")).await.unwrap_err();
    assert!(matches!(err, Error::VersionNotFound { .. }), "{err}");

    let err = models.get("../esol-solubility", None).await.unwrap_err();
    assert!(matches!(err, Error::InvalidModelName { .. }), "{err}");
}

#[tokio::test]
async fn checksum_mismatch_is_reported_not_loaded() {
    let (server, _client) = server_with_registry("").await;
    let models = s3_models(&server, "", 1 << 30, Duration::from_secs(30)).await;

    let err = models.get("corrupt", None).await.unwrap_err();
    assert!(matches!(err, Error::ChecksumMismatch { .. }), "{err}");
    assert!(err.to_string().contains("s3://models-test/corrupt/1/model.onnx"), "{err}");
}

#[tokio::test]
async fn unloadable_model_fails_the_request_only() {
    let (server, _client) = server_with_registry("").await;
    let models = s3_models(&server, "", 1 << 30, Duration::from_secs(30)).await;

    let err = models.get("unloadable", None).await.unwrap_err();
    assert!(matches!(err, Error::ModelLoad { .. }), "{err}");
    assert!(err.to_string().contains("not an ONNX model"), "{err}");
    assert!((predict_esol(&models, None).await - -0.937_395_3).abs() < 1e-5);
}

#[tokio::test]
async fn latest_alias_is_reread_after_ttl() {
    let (server, client) = server_with_registry("").await;
    let models = s3_models(&server, "", 1 << 30, Duration::from_millis(300)).await;
    assert_eq!(models.get("esol-solubility", None).await.unwrap().manifest.version, 1);

    // Register version 2 (the two-inputs bytes would not fit, so reuse the
    // ESOL model under a new version number) and move `latest`.
    let mut files = RegistryFiles::default();
    let manifest = maas_tests::registry::read_json(&maas_tests::repo_root().join("examples/registry/esol-solubility/1/manifest.json"));
    let bytes = std::fs::read(maas_tests::repo_root().join("examples/registry/esol-solubility/1/model.onnx")).unwrap();
    files.add_model(manifest, bytes, 2);
    files.files.push(("esol-solubility/aliases.json".into(), br#"{"latest": 2, "production": 1}"#.to_vec()));
    files.upload(&client, BUCKET, "").await;

    assert_eq!(models.get("esol-solubility", None).await.unwrap().manifest.version, 1, "still cached");
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(models.get("esol-solubility", None).await.unwrap().manifest.version, 2);
    assert_eq!(models.get("esol-solubility", Some("production")).await.unwrap().manifest.version, 1);
}

#[tokio::test]
async fn stopped_server_is_unavailable_not_missing() {
    let (mut server, _client) = server_with_registry("").await;
    let models = s3_models(&server, "", 1 << 30, Duration::from_secs(30)).await;
    server.stop();

    let err = models.get("esol-solubility", None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{}", err.chain());
    assert!(models.registry.check_reachable().await.is_err());
}

#[tokio::test]
async fn missing_bucket_is_reported() {
    let server = S3Server::start();
    let store = S3Store::new(server.client(), "no-such-bucket".into(), String::new());

    let err = store.get("esol-solubility/aliases.json").await.unwrap_err();

    let message = err.chain();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{message}");
    assert!(message.contains("S3 answered NoSuchBucket (HTTP 404)"), "{message}");
    assert!(message.contains("check the bucket name"), "{message}");
    assert!(!message.contains("raw: Response"), "{message}");
}

#[tokio::test]
async fn folder_registry_matches_s3_registry() {
    let dir = tempfile::tempdir().unwrap();
    RegistryFiles::standard().write_to_folder(dir.path());
    let store: Arc<dyn ObjectStore> = Arc::new(FolderStore::new(dir.path()));
    let models = Models::new(Registry::new(store, Duration::from_secs(30)), ModelCache::new(1 << 30));

    assert!((predict_esol(&models, Some("production")).await - -0.937_395_3).abs() < 1e-5);
    let mut names = models.registry.models().await.unwrap();
    names.sort();
    assert!(names.contains(&"esol-solubility".to_string()), "{names:?}");
    assert!(matches!(models.get("corrupt", None).await.unwrap_err(), Error::ChecksumMismatch { .. }));
    assert!(matches!(models.get("missing", None).await.unwrap_err(), Error::ModelNotFound { .. }));
}
