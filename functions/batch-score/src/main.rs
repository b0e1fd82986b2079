//! Placeholder for the batch-score function, which will score CSV and JSON
//! Lines uploads. It is not implemented yet: every invocation fails with a
//! message that says so, instead of pretending to have scored anything.

use lambda_runtime::{run, service_fn, Error, LambdaEvent};

async fn not_implemented(_event: LambdaEvent<serde_json::Value>) -> Result<serde_json::Value, Error> {
    Err("batch-score is not implemented yet; use POST /v2/models/<model>/infer on the predict function".into())
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::logging::init();
    run(service_fn(not_implemented)).await
}
