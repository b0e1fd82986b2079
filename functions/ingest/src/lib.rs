//! The ingest function: turns an uploaded ONNX file into a registered,
//! versioned model.
//!
//! - [`trigger`] reads SQS and S3 events; [`cli`] is the same job from a shell.
//! - [`job`] reads an upload and its sidecar and writes rejection reports.
//! - [`validate`] checks and rewrites the model; [`sidecar`] is its metadata.
//! - [`register`] writes the new version and moves the `latest` alias.

pub mod cli;
pub mod config;
pub mod job;
pub mod register;
pub mod service;
pub mod sidecar;
pub mod trigger;
pub mod validate;

pub use config::Config;
