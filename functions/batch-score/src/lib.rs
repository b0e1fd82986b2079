//! The batch-score function: scores CSV and JSON Lines files uploaded to S3
//! with a registered model, and writes the results beside them.
//!
//! - [`trigger`] is the Lambda handler; [`sqs`] and [`s3`] handle its two
//!   kinds of event, and [`cli`] is the local command.
//! - [`service`] handles one uploaded object: skip it if already scored,
//!   resolve the model, score it and write the summary.
//! - [`job`] streams one file through the model; [`input`] parses it into
//!   mini-batches and [`output`] formats the results.
//! - [`layout`] maps input keys to models and result keys, [`summary`] is the
//!   summary document, [`config`] the settings, and [`error`] decides what is
//!   retried.

pub mod cli;
pub mod config;
pub mod error;
pub mod input;
pub mod job;
pub mod layout;
pub mod output;
pub mod s3;
pub mod service;
pub mod sqs;
pub mod summary;
pub mod trigger;

use std::sync::Arc;

pub use config::Config;
pub use error::JobError;
pub use service::{Outcome, Service};

impl Service {
    /// Opens the registry and an S3 client once, for every invocation of the
    /// process. Each bucket named by an event gets a store on that client.
    pub async fn from_config(config: Config) -> shared::Result<Self> {
        let models = shared::models::Models::from_config(&config.shared).await?;
        let client = shared::store::s3::client(config.shared.force_path_style).await;
        let buckets: service::BucketStores = Box::new(move |bucket| {
            Arc::new(shared::store::s3::S3Store::new(client.clone(), bucket.to_string(), String::new()))
        });
        Ok(Service::new(config, models, buckets))
    }
}
