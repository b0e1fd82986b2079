//! The endpoints, independent of how the request arrived: [`Service::handle`]
//! takes an [`ApiRequest`] and always returns an [`ApiResponse`], errors
//! included, so one bad request never becomes a failed Lambda invocation.

use std::io::Read;
use std::time::Instant;

use bytes::Bytes;
use serde_json::{json, Value};
use shared::features::RowLayout;
use shared::models::{ModelHandle, Models};
use shared::registry::ModelName;
use shared::tensor::{self, DataType, JsonData, Values};
use shared::tract_onnx::prelude::Tensor;

use crate::binary::{split_body, BinaryCursor};
use crate::config::{Config, MAX_BODY_BYTES, MAX_DECOMPRESSED_BYTES};
use crate::error::ApiError;
use crate::routes::Route;
use crate::v1::{PredictRequest, PredictResponse};
use crate::v2::{bool_parameter, InferRequest, InferResponse, ResponseOutput, SelectedOutput};

/// Lambda also caps a synchronous response at 6 MB.
const MAX_RESPONSE_BYTES: usize = 6 * 1024 * 1024;

/// An HTTP request reduced to what the endpoints read.
#[derive(Debug, Clone, Default)]
pub struct ApiRequest {
    pub method: String,
    pub path: String,
    pub content_type: Option<String>,
    pub content_encoding: Option<String>,
    /// `Inference-Header-Content-Length` of the binary tensor data extension.
    pub inference_header_length: Option<String>,
    pub body: Bytes,
}

/// What happened, for the log line and the metrics of the invocation.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub model: Option<String>,
    pub version: Option<u64>,
    pub model_load_ms: Option<f64>,
    pub inference_ms: Option<f64>,
    pub rows: u64,
}

#[derive(Debug, Clone)]
pub struct ApiResponse {
    pub status: u16,
    pub content_type: &'static str,
    pub inference_header_length: Option<usize>,
    pub body: Vec<u8>,
    pub outcome: Outcome,
    /// The error message of a failed request, for the logs.
    pub error: Option<String>,
}

impl ApiResponse {
    fn json(status: u16, value: &impl serde::Serialize, outcome: Outcome) -> Self {
        ApiResponse {
            status,
            content_type: "application/json",
            inference_header_length: None,
            body: serde_json::to_vec(value).unwrap_or_default(),
            outcome,
            error: None,
        }
    }

    fn error(err: ApiError, outcome: Outcome) -> Self {
        ApiResponse {
            status: err.status,
            content_type: "application/json",
            inference_header_length: None,
            body: err.body(),
            outcome,
            error: Some(err.message),
        }
    }
}

#[derive(Debug)]
pub struct Service {
    pub models: Models,
    pub config: Config,
}

impl Service {
    pub async fn new(config: Config) -> shared::Result<Self> {
        let models = Models::from_config(&config.shared).await?;
        Ok(Service { models, config })
    }

    pub fn from_parts(models: Models, config: Config) -> Self {
        Service { models, config }
    }

    pub async fn handle(&self, request: &ApiRequest) -> ApiResponse {
        let mut outcome = Outcome::default();
        match self.dispatch(request, &mut outcome).await {
            Ok(response) => ApiResponse { outcome, ..response },
            Err(err) => ApiResponse::error(err, outcome),
        }
    }

    async fn dispatch(&self, request: &ApiRequest, outcome: &mut Outcome) -> Result<ApiResponse, ApiError> {
        let route = Route::parse(&request.method, &request.path)?;
        let done = |value: Value| Ok(ApiResponse::json(200, &value, Outcome::default()));
        match route {
            Route::ServerMetadata => done(json!({
                "name": "serverless-maas",
                "version": env!("CARGO_PKG_VERSION"),
                "extensions": ["binary_tensor_data"],
            })),
            Route::Live => done(json!({ "live": true })),
            Route::Ready => match self.models.registry.check_reachable().await {
                Ok(()) => done(json!({ "ready": true })),
                Err(err) => {
                    tracing::error!(error = %err.chain(), "model repository is not reachable");
                    Err(ApiError::new(503, format!("not ready: the model repository `{}` cannot be read", self.models.registry.location())))
                }
            },
            Route::ModelMetadata { model, version } => self.model_metadata(&model, version.as_deref()).await.and_then(done),
            Route::ModelReady { model, version } => {
                outcome.model = Some(model.clone());
                let handle = self.load(&model, version.as_deref(), outcome).await.map_err(|err| match err.status {
                    500 | 503 => ApiError::new(503, format!("model `{model}` is not ready: {}", err.message)),
                    _ => err,
                })?;
                done(json!({ "name": handle.manifest.name, "version": handle.manifest.version.to_string(), "ready": true }))
            }
            Route::Infer { model, version } => {
                outcome.model = Some(model.clone());
                let body = read_body(request, BodyKind::Infer)?;
                self.infer(&model, version.as_deref(), &body, request.inference_header_length.as_deref(), outcome).await
            }
            Route::Predict { model, version } => {
                outcome.model = Some(model.clone());
                let body = read_body(request, BodyKind::Json)?;
                self.predict(&model, version.as_deref(), &body, outcome).await
            }
        }
    }

    async fn load(&self, model: &str, version: Option<&str>, outcome: &mut Outcome) -> Result<ModelHandle, ApiError> {
        let handle = self.models.get(model, version).await?;
        outcome.version = Some(handle.manifest.version);
        outcome.model_load_ms = handle.load_ms;
        Ok(handle)
    }

    async fn model_metadata(&self, model: &str, version: Option<&str>) -> Result<Value, ApiError> {
        let name = ModelName::parse(model)?;
        let version_ref = match version {
            Some(v) => shared::registry::VersionRef::parse(v)?,
            None => shared::registry::VersionRef::latest(),
        };
        let manifest = self.models.registry.resolve(&name, &version_ref).await?;
        let versions: Vec<String> = match version {
            Some(_) => vec![manifest.version.to_string()],
            None => self.models.registry.versions(&name).await?.iter().map(u64::to_string).collect(),
        };
        let mut metadata = json!({
            "name": manifest.name,
            "versions": versions,
            "platform": "onnx_onnxv1",
            "inputs": manifest.inputs,
            "outputs": manifest.outputs,
        });
        metadata["parameters"] = json!({
            "description": manifest.description,
            "features": manifest.features,
            "labels": manifest.labels,
            "metrics": manifest.metrics,
            "warnings": manifest.warnings,
        });
        Ok(metadata)
    }

    async fn infer(
        &self,
        model: &str,
        version: Option<&str>,
        body: &[u8],
        header_length: Option<&str>,
        outcome: &mut Outcome,
    ) -> Result<ApiResponse, ApiError> {
        let (header, binary) = split_body(body, header_length)?;
        let request: InferRequest = serde_json::from_slice(header)
            .map_err(|err| ApiError::bad_request(format!("invalid inference request: {err}")))?;
        if let Some(outputs) = &request.outputs {
            if outputs.iter().any(|o| o.parameters.as_ref().is_some_and(|p| p.contains_key("classification"))) {
                return Err(ApiError::bad_request(
                    "the classification extension is not supported; request the probability output and read the labels from GET /v2/models/<model>",
                ));
            }
        }

        // Shapes and sizes are checked before the model is touched and before
        // any tensor memory is allocated.
        let mut budget = self.config.max_request_elements;
        let mut counts = Vec::with_capacity(request.inputs.len());
        for (position, input) in request.inputs.iter().enumerate() {
            if request.inputs[..position].iter().any(|earlier| earlier.name == input.name) {
                return Err(ApiError::bad_request(format!("input `{}` is given twice", input.name)));
            }
            input.datatype()?;
            let count = tensor::element_count(&input.name, &input.shape, budget)?;
            budget -= count;
            counts.push(count);
        }

        let handle = self.load(model, version, outcome).await?;
        let specs = &handle.model.inputs;
        if let Some(unknown) = request.inputs.iter().find(|i| !specs.iter().any(|s| s.name == i.name)) {
            return Err(ApiError::bad_request(format!(
                "model `{model}` has no input `{}`; its inputs are {}",
                unknown.name,
                handle.model.input_names()
            )));
        }

        // Binary data follows the header in the order the inputs are listed.
        let mut cursor = BinaryCursor::new(binary);
        let mut tensors: Vec<Option<Tensor>> = vec![None; specs.len()];
        for (input, &count) in request.inputs.iter().zip(&counts) {
            let datatype = input.datatype()?;
            let index = specs.iter().position(|s| s.name == input.name).expect("checked above");
            let spec = &specs[index];
            if datatype != spec.datatype {
                return Err(ApiError::bad_request(format!(
                    "input `{}` expects datatype {} but received {datatype}",
                    spec.name, spec.datatype
                )));
            }
            let fits = input.shape.len() == spec.shape.len()
                && spec.shape.iter().zip(&input.shape).all(|(&want, &got)| want < 0 || want == got);
            if !fits {
                return Err(ApiError::bad_request(format!(
                    "input `{}` expects shape {:?} (-1 is any size) but received {:?}",
                    spec.name, spec.shape, input.shape
                )));
            }
            let shape: Vec<usize> = input.shape.iter().map(|&d| d as usize).collect();
            let values = match (input.binary_data_size()?, input.data) {
                (Some(size), _) => Values::from_le_bytes(&input.name, datatype, count, cursor.take(&input.name, size)?)?,
                (None, Some(data)) => Values::from_json(&input.name, datatype, &shape, data.get())?,
                (None, None) => {
                    return Err(ApiError::bad_request(format!(
                        "input `{}` has neither `data` nor a binary_data_size parameter",
                        input.name
                    )))
                }
            };
            tensors[index] = Some(values.into_tensor(&shape)?);
        }
        cursor.finish()?;
        let tensors: Vec<Tensor> = tensors
            .into_iter()
            .zip(specs)
            .map(|(tensor, spec)| {
                tensor.ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "missing input `{}`; model `{model}` takes {}",
                        spec.name,
                        handle.model.input_names()
                    ))
                })
            })
            .collect::<Result<_, _>>()?;
        outcome.rows = tensors.first().and_then(|t| t.shape().first().copied()).unwrap_or(1) as u64;

        // Inline rather than on a blocking thread: Lambda gives a process one
        // invocation at a time, and a thread hop would cost more than a small
        // model's whole run. Panics are still caught inside `run`.
        let started = Instant::now();
        let outputs = handle.model.run(tensors)?;
        outcome.inference_ms = Some(started.elapsed().as_secs_f64() * 1000.0);

        let binary_default = bool_parameter(request.parameters.as_ref(), "binary_data_output")?.unwrap_or(false);
        let output_specs = &handle.model.outputs;
        let selected: Vec<SelectedOutput> = match &request.outputs {
            None => output_specs
                .iter()
                .zip(&outputs)
                .map(|(spec, tensor)| SelectedOutput { name: &spec.name, tensor, binary: binary_default })
                .collect(),
            Some(requested) => requested
                .iter()
                .map(|wanted| {
                    let index = output_specs.iter().position(|s| s.name == wanted.name).ok_or_else(|| {
                        let names: Vec<String> = output_specs.iter().map(|s| format!("`{}`", s.name)).collect();
                        ApiError::bad_request(format!(
                            "model `{model}` has no output `{}`; its outputs are {}",
                            wanted.name,
                            names.join(", ")
                        ))
                    })?;
                    let binary = bool_parameter(wanted.parameters.as_ref(), "binary_data")?.unwrap_or(binary_default);
                    Ok(SelectedOutput { name: &output_specs[index].name, tensor: &outputs[index], binary })
                })
                .collect::<Result<_, ApiError>>()?,
        };
        encode_infer_response(&handle, request.id, &selected)
    }

    async fn predict(&self, model: &str, version: Option<&str>, body: &[u8], outcome: &mut Outcome) -> Result<ApiResponse, ApiError> {
        let request: PredictRequest = serde_json::from_slice(body).map_err(|err| {
            ApiError::bad_request(format!("invalid predict request: {err}; send {{\"instances\": [...]}}"))
        })?;
        if request.instances.is_empty() {
            return Err(ApiError::bad_request("`instances` is empty; send at least one instance"));
        }
        let handle = self.load(model, version, outcome).await?;
        let layout = RowLayout::new(&handle.manifest, &handle.model.inputs)?;
        let elements = request.instances.len().saturating_mul(layout.row_len);
        if elements > self.config.max_request_elements {
            return Err(ApiError::new(
                413,
                format!(
                    "{} instances of {} values exceed the limit of {} elements per request; split the request or use batch scoring",
                    request.instances.len(),
                    layout.row_len,
                    self.config.max_request_elements
                ),
            ));
        }
        let mut values = layout.new_values(request.instances.len())?;
        for (row, instance) in request.instances.iter().enumerate() {
            layout.push_json_row(&mut values, row, instance)?;
        }
        let rows = request.instances.len();
        outcome.rows = rows as u64;

        let started = Instant::now();
        let outputs = handle.model.run(vec![layout.tensor(values)?])?;
        outcome.inference_ms = Some(started.elapsed().as_secs_f64() * 1000.0);

        let predictions = shared::features::predictions(&handle.manifest, &handle.model.outputs, &outputs, rows)?;
        let response = PredictResponse {
            model_name: &handle.manifest.name,
            model_version: handle.manifest.version.to_string(),
            predictions,
        };
        let body = serde_json::to_vec(&response).map_err(|err| ApiError::new(500, format!("failed to encode response: {err}")))?;
        check_response_size(body.len())?;
        Ok(ApiResponse { body, ..ApiResponse::json(200, &(), Outcome::default()) })
    }
}

fn check_response_size(size: usize) -> Result<(), ApiError> {
    if size > MAX_RESPONSE_BYTES {
        return Err(ApiError::new(
            413,
            format!(
                "the response would be {size} bytes, above Lambda's 6 MB response limit; send fewer rows per request, ask for binary outputs, or use batch scoring"
            ),
        ));
    }
    Ok(())
}

fn encode_infer_response(
    handle: &ModelHandle,
    id: Option<String>,
    selected: &[SelectedOutput],
) -> Result<ApiResponse, ApiError> {
    let mut outputs = Vec::with_capacity(selected.len());
    let mut blobs: Vec<std::borrow::Cow<[u8]>> = Vec::new();
    for output in selected {
        let datatype = DataType::from_datum(output.tensor.datum_type()).ok_or_else(|| {
                ApiError::new(500, format!("output `{}` has type {:?}, which the protocol cannot carry", output.name, output.tensor.datum_type()))
            })?;
        let (parameters, data) = if output.binary {
            let bytes = tensor::le_bytes(output.tensor)?;
            let size = bytes.len();
            blobs.push(bytes);
            (Some(json!({ "binary_data_size": size })), None)
        } else {
            (None, Some(JsonData(output.tensor)))
        };
        outputs.push(ResponseOutput { name: output.name, datatype: datatype.name(), shape: output.tensor.shape(), parameters, data });
    }
    let response = InferResponse {
        model_name: &handle.manifest.name,
        model_version: handle.manifest.version.to_string(),
        id,
        outputs,
    };
    let mut body = serde_json::to_vec(&response).map_err(|err| ApiError::new(500, format!("failed to encode response: {err}")))?;
    let header_length = body.len();
    for blob in &blobs {
        body.extend_from_slice(blob);
    }
    check_response_size(body.len())?;
    let binary = !blobs.is_empty();
    Ok(ApiResponse {
        status: 200,
        content_type: if binary { "application/octet-stream" } else { "application/json" },
        inference_header_length: binary.then_some(header_length),
        body,
        // `handle` fills in the request's outcome.
        outcome: Outcome::default(),
        error: None,
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum BodyKind {
    /// JSON, or JSON followed by binary tensors.
    Infer,
    Json,
}

/// Checks the size, content type and encoding of a POST body and returns it
/// decompressed.
fn read_body(request: &ApiRequest, kind: BodyKind) -> Result<std::borrow::Cow<'_, [u8]>, ApiError> {
    if request.body.len() > MAX_BODY_BYTES {
        return Err(ApiError::new(
            413,
            format!(
                "the request body is {} bytes, above Lambda's 6 MB limit for synchronous requests; \
                 upload the rows to the batch input prefix for batch scoring instead",
                request.body.len()
            ),
        ));
    }
    let media_type = request
        .content_type
        .as_deref()
        .map(|ct| ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase());
    let accepted = match media_type.as_deref() {
        None | Some("") | Some("application/json") => true,
        Some("application/octet-stream") => kind == BodyKind::Infer && request.inference_header_length.is_some(),
        Some(other) => other.ends_with("+json"),
    };
    if !accepted {
        let sent = request.content_type.as_deref().unwrap_or_default();
        let hint = match kind {
            BodyKind::Infer => "send `Content-Type: application/json`, or `application/octet-stream` with an Inference-Header-Content-Length header for binary tensor data",
            BodyKind::Json => "send `Content-Type: application/json`",
        };
        return Err(ApiError::new(415, format!("content type `{sent}` is not supported; {hint}")));
    }
    let encoding = request.content_encoding.as_deref().map(|e| e.trim().to_ascii_lowercase());
    let mut decoded = Vec::new();
    let result = match encoding.as_deref() {
        None | Some("") | Some("identity") => return Ok(std::borrow::Cow::Borrowed(&request.body)),
        Some("gzip") => flate2::read::GzDecoder::new(&request.body[..]).take(MAX_DECOMPRESSED_BYTES as u64 + 1).read_to_end(&mut decoded),
        Some("deflate") => {
            flate2::read::ZlibDecoder::new(&request.body[..]).take(MAX_DECOMPRESSED_BYTES as u64 + 1).read_to_end(&mut decoded)
        }
        Some(other) => return Err(ApiError::new(415, format!("content encoding `{other}` is not supported; use gzip, deflate or none"))),
    };
    result.map_err(|err| ApiError::bad_request(format!("failed to decompress the request body: {err}")))?;
    if decoded.len() > MAX_DECOMPRESSED_BYTES {
        return Err(ApiError::new(
            413,
            format!("the request body decompresses to more than {MAX_DECOMPRESSED_BYTES} bytes; use batch scoring for large inputs"),
        ));
    }
    Ok(std::borrow::Cow::Owned(decoded))
}
