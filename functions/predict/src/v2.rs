//! Request and response bodies of the Open Inference Protocol (KServe V2)
//! REST API. Input `data` is kept as raw JSON until the shape has been checked,
//! so that an oversized array is never parsed into memory.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use shared::tensor::{DataType, JsonData};
use shared::tract_onnx::prelude::Tensor;

use crate::error::ApiError;

#[derive(Debug, Deserialize)]
pub struct InferRequest<'a> {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub parameters: Option<Map<String, Value>>,
    #[serde(borrow)]
    pub inputs: Vec<RequestInput<'a>>,
    #[serde(default)]
    pub outputs: Option<Vec<RequestOutput>>,
}

#[derive(Debug, Deserialize)]
pub struct RequestInput<'a> {
    // Borrowed from the body unless the JSON string has escapes.
    #[serde(borrow)]
    pub name: Cow<'a, str>,
    pub shape: Vec<i64>,
    #[serde(borrow)]
    pub datatype: Cow<'a, str>,
    #[serde(default)]
    pub parameters: Option<Map<String, Value>>,
    #[serde(borrow, default)]
    pub data: Option<&'a RawValue>,
}

#[derive(Debug, Deserialize)]
pub struct RequestOutput {
    pub name: String,
    #[serde(default)]
    pub parameters: Option<Map<String, Value>>,
}

/// Reads a boolean parameter; a non-boolean value is a 400.
pub fn bool_parameter(parameters: Option<&Map<String, Value>>, key: &str) -> Result<Option<bool>, ApiError> {
    match parameters.and_then(|p| p.get(key)) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(flag)) => Ok(Some(*flag)),
        Some(other) => Err(ApiError::bad_request(format!("parameter `{key}` is {other}; use true or false"))),
    }
}

impl RequestInput<'_> {
    pub fn datatype(&self) -> Result<DataType, ApiError> {
        match DataType::parse(&self.datatype) {
            Some(DataType::Bytes) => Err(ApiError::bad_request(format!(
                "input `{}` has datatype BYTES, which this service does not support; models here take numeric or BOOL tensors",
                self.name
            ))),
            Some(datatype) => Ok(datatype),
            None => Err(ApiError::bad_request(format!(
                "input `{}` has unknown datatype `{}`; use one of BOOL, UINT8, UINT16, UINT32, UINT64, INT8, INT16, INT32, INT64, FP16, FP32, FP64",
                self.name, self.datatype
            ))),
        }
    }

    /// Length of this input's binary data, when the request carries it in the
    /// binary tensor data extension.
    pub fn binary_data_size(&self) -> Result<Option<usize>, ApiError> {
        match self.parameters.as_ref().and_then(|p| p.get("binary_data_size")) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => value.as_u64().map(|n| Some(n as usize)).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "input `{}` has binary_data_size {value}; it must be a non-negative integer",
                    self.name
                ))
            }),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct InferResponse<'a> {
    pub model_name: &'a str,
    pub model_version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub outputs: Vec<ResponseOutput<'a>>,
}

#[derive(Debug, Serialize)]
pub struct ResponseOutput<'a> {
    pub name: &'a str,
    pub datatype: &'static str,
    pub shape: &'a [usize],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<JsonData<'a>>,
}

/// One output chosen for the response, and whether it goes as binary data.
pub struct SelectedOutput<'a> {
    pub name: &'a str,
    pub tensor: &'a Tensor,
    pub binary: bool,
}
