//! The command line: the same registration without AWS, into the registry
//! that `MODEL_REPOSITORY` names.
//!
//! ```text
//! ingest <file.onnx> --name <model> [--metadata <file.json>]
//! ingest promote <model> <version>
//! ```

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use shared::registry::ModelName;

use crate::config::Config;
use crate::job::JobResult;
use crate::service;

/// Validate an ONNX model and register it as the next version.
#[derive(Debug, Parser)]
#[command(
    name = "ingest",
    version,
    after_help = "To point the `production` alias at a registered version: ingest promote <MODEL> <VERSION>"
)]
struct Register {
    /// ONNX file to register.
    model: PathBuf,
    /// Registry name of the model.
    #[arg(long)]
    name: String,
    /// Metadata sidecar (JSON): description, features, labels, outputs, samples, tolerance.
    #[arg(long)]
    metadata: Option<PathBuf>,
}

/// Point the `production` alias of a model at one of its versions.
#[derive(Debug, Parser)]
#[command(name = "ingest promote", bin_name = "ingest promote")]
struct Promote {
    /// Registry name of the model.
    model: String,
    /// Version that `production` should serve.
    version: u64,
}

async fn open_services() -> anyhow::Result<(Config, service::Services)> {
    let config = Config::from_env().context("invalid configuration")?;
    let services = service::Services::new(&config).await?;
    Ok((config, services))
}

/// Runs the command line and returns the process exit code: 0 when the model
/// was registered (or already was), 1 when it was rejected.
pub async fn run(args: Vec<String>) -> anyhow::Result<i32> {
    // Arguments are parsed before the settings are read, so `--help` works
    // without MODEL_REPOSITORY.
    if args.get(1).map(String::as_str) == Some("promote") {
        let promote = Promote::parse_from(args.iter().skip(1));
        let (_, services) = open_services().await?;
        let name = ModelName::parse(&promote.model)?;
        services.ingester.registrar.promote(&name, promote.version).await.with_context(|| {
            format!("failed to promote model `{}` version {}", promote.model, promote.version)
        })?;
        println!("{}", serde_json::json!({"status": "promoted", "model": promote.model, "production": promote.version}));
        return Ok(0);
    }

    let register = Register::parse_from(&args);
    let (config, services) = open_services().await?;
    let bytes = std::fs::read(&register.model).with_context(|| format!("failed to read `{}`", register.model.display()))?;
    let sidecar = match &register.metadata {
        Some(path) => Some(std::fs::read(path).with_context(|| format!("failed to read `{}`", path.display()))?),
        None => None,
    };
    let location = register.model.display().to_string();
    let result = services
        .ingester
        .ingest_bytes(&register.name, &location, &bytes, sidecar.as_deref())
        .await
        .with_context(|| format!("failed to register `{location}` into `{}`", config.shared.repository))?;
    println!("{}", serde_json::to_string_pretty(&result)?);
    Ok(match result {
        JobResult::Rejected(report) => {
            eprintln!("rejected: {}", report.reason);
            1
        }
        _ => 0,
    })
}
