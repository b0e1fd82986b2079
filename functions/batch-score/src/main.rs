//! Entry point of batch-score: with arguments it is the local command,
//! without them the Lambda function. Settings, the registry and the S3 client
//! are set up once, before the first event.

use std::sync::Arc;

use lambda_runtime::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    if std::env::args_os().len() > 1 {
        shared::logging::init_cli();
        std::process::exit(batch_score::cli::main().await);
    }
    shared::config::require_lambda_runtime("score a file with `batch-score <file> --model <name>`, or see `batch-score --help`");
    shared::logging::init();
    let config = shared::logging::or_exit("reading the settings", batch_score::Config::from_env());
    let service = Arc::new(shared::logging::or_exit("opening the model registry", batch_score::Service::from_config(config).await));
    tracing::info!(
        repository = %service.config.shared.repository,
        input_prefix = %service.config.input_prefix,
        output_prefix = %service.config.output_prefix,
        "batch-score function started"
    );
    run(service_fn(move |event| {
        let service = service.clone();
        async move { batch_score::trigger::handle(&service, event).await }
    }))
    .await
}
