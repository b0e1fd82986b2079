//! Lambda entry point of the predict function: read the settings, open the
//! registry once, then serve HTTP events.

use std::sync::Arc;

use lambda_http::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::config::require_lambda_runtime("run it with `cargo lambda watch -p predict` (see the README)");
    shared::logging::init();
    let config = shared::logging::or_exit("reading the settings", predict::Config::from_env());
    let service = Arc::new(shared::logging::or_exit("opening the model registry", predict::Service::new(config).await));
    tracing::info!(repository = %service.config.shared.repository, "predict function started");
    run(service_fn(move |event| {
        let service = service.clone();
        async move { predict::http::handle(&service, event).await }
    }))
    .await
}
