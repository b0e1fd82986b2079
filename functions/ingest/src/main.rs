//! Entry point of the ingest function. With arguments it is the command line
//! (`ingest <file.onnx> --name <model>`); without, the Lambda handler.

use std::sync::Arc;

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() > 1 {
        shared::logging::init_cli();
        let code = match ingest::cli::run(args).await {
            Ok(code) => code,
            Err(err) => {
                eprintln!("error: {err:#}");
                2
            }
        };
        std::process::exit(code);
    }
    shared::config::require_lambda_runtime("register a model with `ingest <file.onnx> --name <model>`, or see `ingest --help`");
    shared::logging::init();
    let config = shared::logging::or_exit("reading the settings", ingest::Config::from_env());
    let handler = Arc::new(shared::logging::or_exit("opening the model registry", ingest::trigger::Handler::lambda(&config).await));
    tracing::info!(repository = %config.shared.repository, "ingest function started");
    run(service_fn(move |event: LambdaEvent<Value>| {
        let handler = handler.clone();
        async move { handler.invoke(event.payload).await }
    }))
    .await
}
