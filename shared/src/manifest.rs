//! The manifest that describes one registered model version, stored as
//! `<repository>/<model>/<version>/manifest.json` beside `model.onnx`, and the
//! alias file `<repository>/<model>/aliases.json`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::tensor::DataType;

/// The newest manifest layout this build reads. A manifest written by a newer
/// build is rejected rather than half understood.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub schema_version: u32,
    pub name: String,
    pub version: u64,
    #[serde(default)]
    pub description: String,
    pub created_at: DateTime<Utc>,
    /// Lowercase hex SHA-256 of `model.onnx`, checked on every load.
    pub sha256: String,
    pub size_bytes: u64,
    pub inputs: Vec<TensorSpec>,
    pub outputs: Vec<TensorSpec>,
    /// Ordered names of the columns of the model's single 2-D input, which lets
    /// callers send named features instead of bare arrays.
    #[serde(default, deserialize_with = "non_empty", skip_serializing_if = "Option::is_none")]
    pub features: Option<Vec<Feature>>,
    /// Class labels of a classifier, in the order of its probability columns.
    #[serde(default, deserialize_with = "non_empty", skip_serializing_if = "Option::is_none")]
    pub labels: Option<Vec<ClassLabel>>,
    /// Output with the class probabilities. When unset, the first floating
    /// point output with one column per label is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probability_output: Option<String>,
    /// Operator set versions by domain, for example `{"ai.onnx": 18}`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub opset_imports: BTreeMap<String, i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub producer: Option<Producer>,
    /// Free-form figures recorded at training or registration time.
    #[serde(default, deserialize_with = "null_as_default", skip_serializing_if = "BTreeMap::is_empty")]
    pub metrics: BTreeMap<String, serde_json::Value>,
    /// Warnings a user should see before trusting the model's outputs.
    #[serde(default, deserialize_with = "null_as_default", skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// The upload this version was registered from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
    /// What registration checked before accepting the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation: Option<Validation>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Source {
    /// Object key or file path of the upload.
    pub location: String,
    /// SHA-256 of the uploaded file, which differs from `sha256` when the
    /// servable form was rewritten; the upload is then kept as `original.onnx`.
    pub sha256: String,
    pub size_bytes: u64,
    /// SHA-256 of the metadata sidecar, when one was used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sidecar_sha256: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Validation {
    /// Milliseconds to parse, optimise and plan the model.
    pub load_ms: f64,
    /// Batch sizes of the smoke inferences that ran.
    pub smoke_batches: Vec<usize>,
    /// Sidecar samples whose outputs matched within the tolerance.
    pub samples_checked: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_abs_error: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerance: Option<Tolerance>,
    /// Operators rewritten to make the model servable.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rewrites: Vec<String>,
}

/// Accepted difference between an expected and a computed value:
/// `|computed - expected| <= absolute + relative * |expected|`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Tolerance {
    pub absolute: f64,
    pub relative: f64,
}

impl Default for Tolerance {
    fn default() -> Self {
        // float32 rounding: onnxruntime itself differs by up to 3e-7 between
        // batch and single-row runs of the same tree ensemble.
        Tolerance { absolute: 1e-5, relative: 1e-4 }
    }
}

/// Reads `null` as the type's default, as Python writers emit `None`.
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// Reads `null` and an empty list alike as absent.
fn non_empty<'de, D, T>(deserializer: D) -> Result<Option<Vec<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(deserializer)?.filter(|items| !items.is_empty()))
}

/// Name, element type and shape of one input or output tensor. A dimension of
/// -1 is dynamic, usually the batch dimension.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TensorSpec {
    pub name: String,
    pub datatype: DataType,
    pub shape: Vec<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Feature {
    pub name: String,
    #[serde(default)]
    pub unit: Option<String>,
}

/// A class label as scikit-learn stores it: an integer or a string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ClassLabel {
    Int(i64),
    Text(String),
}

impl std::fmt::Display for ClassLabel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClassLabel::Int(value) => write!(f, "{value}"),
            ClassLabel::Text(value) => f.write_str(value),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Producer {
    pub name: String,
    #[serde(default)]
    pub version: String,
}

impl Manifest {
    /// Checks what the service relies on beyond what serde enforces. Returns
    /// the first problem found, in words that name the field.
    pub fn validate(&self) -> Result<(), String> {
        if self.schema_version == 0 || self.schema_version > SCHEMA_VERSION {
            return Err(format!(
                "schema_version {} is not supported; this service reads schema_version 1 to {SCHEMA_VERSION}",
                self.schema_version
            ));
        }
        if self.sha256.len() != 64 || !self.sha256.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(format!("sha256 `{}` is not 64 hexadecimal digits", self.sha256));
        }
        if self.inputs.is_empty() || self.outputs.is_empty() {
            return Err("a manifest needs at least one input and one output".into());
        }
        for spec in self.inputs.iter().chain(&self.outputs) {
            if let Some(dim) = spec.shape.iter().find(|&&d| d < -1) {
                return Err(format!("tensor `{}` has dimension {dim}; use -1 for a dynamic dimension", spec.name));
            }
        }
        if let Some(features) = &self.features {
            let input = &self.inputs[0];
            let columns = input.shape.last().copied().unwrap_or(-1);
            if self.inputs.len() != 1 || input.shape.len() != 2 {
                return Err(format!(
                    "named features need a single 2-D input, but the manifest has {} inputs and input `{}` has shape {:?}",
                    self.inputs.len(),
                    input.name,
                    input.shape
                ));
            }
            if columns != -1 && columns as usize != features.len() {
                return Err(format!(
                    "{} feature names given for input `{}` with {columns} columns",
                    features.len(),
                    input.name
                ));
            }
        }
        if let Some(output) = &self.probability_output {
            if !self.outputs.iter().any(|spec| &spec.name == output) {
                return Err(format!("probability_output `{output}` is not one of the outputs"));
            }
        }
        Ok(())
    }

    pub fn input(&self, name: &str) -> Option<&TensorSpec> {
        self.inputs.iter().find(|spec| spec.name == name)
    }
}

/// Contents of `aliases.json`: alias name to version number.
pub type Aliases = BTreeMap<String, u64>;

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        serde_json::from_str(
            r#"{"schema_version": 1, "name": "m", "version": 1, "created_at": "2026-01-01T00:00:00Z",
                "sha256": "0000000000000000000000000000000000000000000000000000000000000000", "size_bytes": 3,
                "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 2]}],
                "outputs": [{"name": "y", "datatype": "FP32", "shape": [-1, 1]}],
                "features": [{"name": "a", "unit": "K"}, {"name": "b"}],
                "labels": [0, "soluble"]}"#,
        )
        .unwrap()
    }

    #[test]
    fn manifest_parses_optional_fields() {
        let manifest = manifest();
        assert_eq!(manifest.features.as_ref().unwrap()[0].unit.as_deref(), Some("K"));
        assert_eq!(manifest.labels.as_ref().unwrap()[1], ClassLabel::Text("soluble".into()));
        assert!(manifest.validate().is_ok());
    }

    #[test]
    fn newer_schema_is_rejected() {
        let mut manifest = manifest();
        manifest.schema_version = 2;
        assert!(manifest.validate().unwrap_err().contains("schema_version 2"));
    }

    #[test]
    fn feature_count_must_match_columns() {
        let mut manifest = manifest();
        manifest.features.as_mut().unwrap().pop();
        assert!(manifest.validate().unwrap_err().contains("1 feature names"));
    }
}
