//! Adapter between Lambda HTTP events and [`Service`]: API Gateway HTTP API
//! (payload 2.0), function URLs and `cargo lambda watch` all arrive here.
//! Bodies that API Gateway base64-encodes are decoded by `lambda_http`.

use std::time::Instant;

use lambda_http::{Body, Error, Request, RequestExt, Response};

use crate::service::{ApiRequest, Service};

fn header(event: &Request, name: &str) -> Option<String> {
    event.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
}

pub async fn handle(service: &Service, event: Request) -> Result<Response<Body>, Error> {
    let started = Instant::now();
    let path = match event.raw_http_path() {
        "" => event.uri().path().to_string(),
        raw => raw.to_string(),
    };
    let request = ApiRequest {
        method: event.method().as_str().to_string(),
        path,
        content_type: header(&event, "content-type"),
        content_encoding: header(&event, "content-encoding"),
        inference_header_length: header(&event, "inference-header-content-length"),
        body: match event.body() {
            Body::Empty => bytes::Bytes::new(),
            Body::Text(text) => bytes::Bytes::copy_from_slice(text.as_bytes()),
            Body::Binary(data) => bytes::Bytes::copy_from_slice(data),
            _ => bytes::Bytes::new(),
        },
    };
    let response = service.handle(&request).await;
    let (method, path) = (&request.method, &request.path);

    let outcome = &response.outcome;
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    let model = outcome.model.as_deref().unwrap_or("");
    match (&response.error, response.status) {
        (Some(error), status) if status >= 500 => tracing::error!(%method, %path, status, model, version = outcome.version, latency_ms, error = %error, "request failed"),
        (Some(error), status) => tracing::warn!(%method, %path, status, model, version = outcome.version, latency_ms, error = %error, "request rejected"),
        (None, status) => tracing::info!(%method, %path, status, model, version = outcome.version, rows = outcome.rows, latency_ms, "request served"),
    }
    shared::metrics::Invocation {
        model: outcome.model.clone(),
        version: outcome.version,
        model_load_ms: outcome.model_load_ms,
        inference_ms: outcome.inference_ms,
        rows: outcome.rows,
        errors: u64::from(response.status >= 400),
    }
    .emit(&service.config.shared.metrics_namespace, "predict");

    let mut builder = Response::builder().status(response.status).header("content-type", response.content_type);
    if let Some(length) = response.inference_header_length {
        builder = builder.header("inference-header-content-length", length);
    }
    let body = if response.content_type == "application/json" {
        Body::Text(String::from_utf8(response.body).unwrap_or_default())
    } else {
        Body::Binary(response.body)
    };
    Ok(builder.body(body)?)
}
