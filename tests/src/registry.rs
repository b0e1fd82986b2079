//! Model registries for tests, built from the committed example registry and
//! the fixture models in `tests/fixtures/models`.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::repo_root;

pub fn fixture(name: &str) -> PathBuf {
    repo_root().join("tests/fixtures/models").join(name)
}

pub fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|err| panic!("read {}: {err}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|err| panic!("parse {}: {err}", path.display()))
}

/// Files of a registry as key and bytes, so one layout can be written to a
/// folder or uploaded to S3.
#[derive(Debug, Default, Clone)]
pub struct RegistryFiles {
    pub files: Vec<(String, Vec<u8>)>,
}

impl RegistryFiles {
    /// The example registry plus every fixture model, and two broken models:
    /// `unloadable` (not ONNX, with a matching checksum) and `corrupt` (the
    /// checksum does not match the file).
    pub fn standard() -> Self {
        let mut registry = RegistryFiles::default();
        let example = repo_root().join("examples/registry");
        registry.add_folder(&example, "");
        for stem in ["two_inputs", "all_dtypes", "onehot_panic", "softmax_classifier"] {
            let manifest = read_json(&fixture(&format!("{stem}.manifest.json")));
            let bytes = std::fs::read(fixture(&format!("{stem}.onnx"))).unwrap();
            registry.add_model(manifest, bytes, 1);
        }
        let bad = std::fs::read(fixture("bad_bytes.onnx")).unwrap();
        let mut manifest = read_json(&fixture("two_inputs.manifest.json"));
        manifest["name"] = json!("unloadable");
        registry.add_model(manifest.clone(), bad.clone(), 1);
        manifest["name"] = json!("corrupt");
        let good = std::fs::read(fixture("two_inputs.onnx")).unwrap();
        registry.add_model(manifest, good, 1);
        // `corrupt` keeps the two-inputs checksum but stores other bytes.
        let key = "corrupt/1/model.onnx".to_string();
        registry.files.retain(|(k, _)| k != &key);
        registry.files.push((key, bad));
        registry
    }

    pub fn add_folder(&mut self, folder: &Path, prefix: &str) {
        for entry in std::fs::read_dir(folder).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().into_string().unwrap();
            let key = format!("{prefix}{name}");
            if entry.file_type().unwrap().is_dir() {
                self.add_folder(&entry.path(), &format!("{key}/"));
            } else {
                self.files.push((key, std::fs::read(entry.path()).unwrap()));
            }
        }
    }

    /// Adds `model.onnx` and a manifest for `version`, with the checksum and
    /// size filled in from `bytes`.
    pub fn add_model(&mut self, mut manifest: Value, bytes: Vec<u8>, version: u64) {
        let name = manifest["name"].as_str().expect("manifest name").to_string();
        manifest["version"] = json!(version);
        manifest["sha256"] = json!(hex::encode(Sha256::digest(&bytes)));
        manifest["size_bytes"] = json!(bytes.len());
        self.files.push((format!("{name}/{version}/model.onnx"), bytes));
        self.files.push((format!("{name}/{version}/manifest.json"), serde_json::to_vec_pretty(&manifest).unwrap()));
    }

    pub fn write_to_folder(&self, root: &Path) {
        for (key, bytes) in &self.files {
            let path = root.join(key);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, bytes).unwrap();
        }
    }

    pub async fn upload(&self, client: &aws_sdk_s3::Client, bucket: &str, prefix: &str) {
        for (key, bytes) in &self.files {
            client
                .put_object()
                .bucket(bucket)
                .key(format!("{prefix}{key}"))
                .body(bytes.clone().into())
                .send()
                .await
                .unwrap_or_else(|err| panic!("upload {key}: {err:?}"));
        }
    }
}
