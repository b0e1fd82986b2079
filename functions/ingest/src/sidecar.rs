//! The metadata sidecar a user uploads beside a model as
//! `incoming/<model>.json`: description, feature names with units, class
//! labels, the outputs to expose, and sample inputs with expected outputs.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;
use shared::manifest::{ClassLabel, Feature, Tolerance};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sidecar {
    #[serde(default)]
    pub description: Option<String>,
    /// Column names of the model's single 2-D input, in order.
    #[serde(default)]
    pub features: Option<Vec<FeatureEntry>>,
    /// Class labels in the order of the probability columns.
    #[serde(default)]
    pub labels: Option<Vec<ClassLabel>>,
    /// Outputs to expose; the others are removed from the servable model.
    #[serde(default)]
    pub outputs: Option<Vec<String>>,
    /// Output with the class probabilities, when it cannot be recognised.
    #[serde(default)]
    pub probability_output: Option<String>,
    #[serde(default)]
    pub samples: Vec<Sample>,
    #[serde(default)]
    pub tolerance: Option<Tolerance>,
    /// Figures to keep in the manifest, such as test metrics.
    #[serde(default)]
    pub metrics: BTreeMap<String, Value>,
}

/// A feature given as a bare name or as `{"name", "unit"}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum FeatureEntry {
    Name(String),
    Full(Feature),
}

impl FeatureEntry {
    pub fn to_feature(&self) -> Feature {
        match self {
            FeatureEntry::Name(name) => Feature { name: name.clone(), unit: None },
            FeatureEntry::Full(feature) => feature.clone(),
        }
    }
}

/// Inputs by name and the outputs expected for them, as nested lists. An
/// expected probability output may also be a list of `{label: p}` objects, as
/// onnxruntime returns ZipMap outputs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sample {
    pub inputs: BTreeMap<String, Value>,
    #[serde(default)]
    pub outputs: BTreeMap<String, Value>,
}

impl Sidecar {
    /// Parses a sidecar. Returns a message naming the problem and the keys
    /// a sidecar may have.
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let sidecar: Sidecar = serde_json::from_slice(bytes).map_err(|err| {
            format!(
                "the metadata sidecar is not valid: {err}; its keys are description, features, labels, outputs, \
                 probability_output, samples, tolerance and metrics"
            )
        })?;
        if let Some(features) = sidecar.features() {
            for (index, feature) in features.iter().enumerate() {
                if feature.name.trim().is_empty() {
                    return Err(format!("features[{index}] has an empty name; give every input column a name"));
                }
                if let Some(first) = features[..index].iter().position(|f| f.name == feature.name) {
                    return Err(format!(
                        "features[{first}] and features[{index}] are both named `{}`; feature names must be unique",
                        feature.name
                    ));
                }
            }
        }
        if let Some(labels) = &sidecar.labels {
            if labels.len() < 2 {
                return Err(format!("`labels` lists {} class; a classifier has at least two, and a regressor has none", labels.len()));
            }
            for (index, label) in labels.iter().enumerate() {
                if matches!(label, ClassLabel::Text(text) if text.trim().is_empty()) {
                    return Err(format!("labels[{index}] is empty; give every class a name"));
                }
                // Labels become column names and JSON keys, so 1 and "1" clash.
                if let Some(first) = labels[..index].iter().position(|l| l.to_string() == label.to_string()) {
                    return Err(format!("labels[{first}] and labels[{index}] are both `{label}`; class labels must be unique"));
                }
            }
        }
        if let Some(tolerance) = sidecar.tolerance {
            if !(tolerance.absolute >= 0.0 && tolerance.relative >= 0.0) {
                return Err(format!(
                    "the sidecar tolerance must be non-negative, got absolute {} and relative {}",
                    tolerance.absolute, tolerance.relative
                ));
            }
        }
        Ok(sidecar)
    }

    pub fn features(&self) -> Option<Vec<Feature>> {
        self.features.as_ref().map(|list| list.iter().map(FeatureEntry::to_feature).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_accept_names_and_objects() {
        let sidecar = Sidecar::parse(br#"{"features": ["a", {"name": "b", "unit": "K"}]}"#).unwrap();
        let features = sidecar.features().unwrap();
        assert_eq!(features[0], Feature { name: "a".into(), unit: None });
        assert_eq!(features[1].unit.as_deref(), Some("K"));
    }

    #[test]
    fn repeated_or_empty_names_are_rejected() {
        let err = Sidecar::parse(br#"{"features": ["a", {"name": "a"}]}"#).unwrap_err();
        assert!(err.contains("features[0] and features[1] are both named `a`"), "{err}");
        let err = Sidecar::parse(br#"{"features": ["a", " "]}"#).unwrap_err();
        assert!(err.contains("features[1] has an empty name"), "{err}");
        let err = Sidecar::parse(br#"{"labels": ["x", "y", "x"]}"#).unwrap_err();
        assert!(err.contains("labels[0] and labels[2] are both `x`"), "{err}");
        let err = Sidecar::parse(br#"{"labels": ["", "b"]}"#).unwrap_err();
        assert!(err.contains("labels[0] is empty"), "{err}");
        let err = Sidecar::parse(br#"{"labels": [1, "1"]}"#).unwrap_err();
        assert!(err.contains("labels[0] and labels[1] are both `1`"), "{err}");
        let err = Sidecar::parse(br#"{"labels": ["a"]}"#).unwrap_err();
        assert!(err.contains("`labels` lists 1 class"), "{err}");
    }

    #[test]
    fn misspelled_keys_are_reported() {
        let err = Sidecar::parse(br#"{"feature": ["a"]}"#).unwrap_err();
        assert!(err.contains("unknown field `feature`"), "{err}");
        assert!(err.contains("description, features"), "{err}");
    }

    #[test]
    fn negative_tolerance_is_rejected() {
        let err = Sidecar::parse(br#"{"tolerance": {"absolute": -1, "relative": 0}}"#).unwrap_err();
        assert!(err.contains("non-negative"), "{err}");
    }
}
