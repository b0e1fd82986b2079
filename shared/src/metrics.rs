//! CloudWatch Embedded Metric Format: one JSON line per invocation on stdout,
//! which CloudWatch turns into metrics without any API call from the function.

use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::{json, Map, Value};

static COLD: AtomicBool = AtomicBool::new(true);

/// Figures for one invocation. Fields left at `None` are not emitted.
#[derive(Debug, Default, Clone)]
pub struct Invocation {
    pub model: Option<String>,
    pub version: Option<u64>,
    pub model_load_ms: Option<f64>,
    pub inference_ms: Option<f64>,
    pub rows: u64,
    pub errors: u64,
}

impl Invocation {
    /// Builds the EMF document. `cold_start` is 1 for the first invocation of
    /// the process and 0 after.
    pub fn document(&self, namespace: &str, function: &str, cold_start: bool, timestamp_ms: i64) -> Value {
        let mut metrics = vec![json!({"Name": "ColdStart", "Unit": "Count"})];
        let mut root = Map::new();
        root.insert("Function".into(), json!(function));
        root.insert("Model".into(), json!(self.model.as_deref().unwrap_or("none")));
        root.insert("ColdStart".into(), json!(u8::from(cold_start)));
        if let Some(ms) = self.model_load_ms {
            metrics.push(json!({"Name": "ModelLoadMs", "Unit": "Milliseconds"}));
            root.insert("ModelLoadMs".into(), json!(ms));
        }
        if let Some(ms) = self.inference_ms {
            metrics.push(json!({"Name": "InferenceMs", "Unit": "Milliseconds"}));
            root.insert("InferenceMs".into(), json!(ms));
        }
        metrics.push(json!({"Name": "Rows", "Unit": "Count"}));
        root.insert("Rows".into(), json!(self.rows));
        metrics.push(json!({"Name": "Errors", "Unit": "Count"}));
        root.insert("Errors".into(), json!(self.errors));
        if let Some(version) = self.version {
            // A property, not a dimension: a dimension per version would
            // multiply the metrics CloudWatch bills for.
            root.insert("ModelVersion".into(), json!(version));
        }
        root.insert(
            "_aws".into(),
            json!({
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [{
                    "Namespace": namespace,
                    "Dimensions": [["Function"], ["Function", "Model"]],
                    "Metrics": metrics,
                }],
            }),
        );
        Value::Object(root)
    }

    /// Prints the EMF line for this invocation on stdout.
    pub fn emit(&self, namespace: &str, function: &str) {
        let cold_start = COLD.swap(false, Ordering::Relaxed);
        let document = self.document(namespace, function, cold_start, chrono::Utc::now().timestamp_millis());
        // stdout, not the log subscriber: CloudWatch only parses EMF from a
        // line that is the JSON document itself.
        println!("{document}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_lists_every_metric_it_sets() {
        let invocation = Invocation {
            model: Some("esol".into()),
            version: Some(2),
            model_load_ms: Some(12.5),
            inference_ms: Some(0.3),
            rows: 64,
            errors: 0,
        };
        let doc = invocation.document("ServerlessMaas", "predict", true, 1_700_000_000_000);
        let names: Vec<&str> = doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["Name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["ColdStart", "ModelLoadMs", "InferenceMs", "Rows", "Errors"]);
        for name in names {
            assert!(doc.get(name).is_some(), "metric {name} has no value");
        }
        assert_eq!(doc["ColdStart"], 1);
        assert_eq!(doc["Model"], "esol");
    }

    #[test]
    fn document_without_model_uses_placeholder() {
        let doc = Invocation::default().document("ns", "predict", false, 0);
        assert_eq!(doc["Model"], "none");
        assert!(doc.get("ModelLoadMs").is_none());
        assert_eq!(doc["ColdStart"], 0);
    }
}
