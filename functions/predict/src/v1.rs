//! The named-feature form for scientists: `POST /v1/models/<model>:predict`
//! with `{"instances": [...]}`, answered with `{"predictions": [...]}`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Deserialize)]
pub struct PredictRequest {
    pub instances: Vec<Value>,
}

#[derive(Debug, Serialize)]
pub struct PredictResponse<'a> {
    pub model_name: &'a str,
    pub model_version: String,
    pub predictions: Vec<Value>,
}
