//! Placeholder for the ingest function, which will validate and register
//! uploaded models. It is not implemented yet: every invocation fails with a
//! message that says so, and models are registered by copying them into the
//! registry layout described in the README.

use lambda_runtime::{run, service_fn, Error, LambdaEvent};

async fn not_implemented(_event: LambdaEvent<serde_json::Value>) -> Result<serde_json::Value, Error> {
    Err("ingest is not implemented yet; write <model>/<version>/model.onnx and manifest.json into the registry by hand".into())
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::logging::init();
    run(service_fn(not_implemented)).await
}
