//! Shared library of the serverless-maas functions: where models live, how they
//! are described, and how they are loaded and run.
//!
//! - [`config`] reads the settings every function shares from the environment.
//! - [`events`] parses SQS and S3 triggers and decodes their object keys.
//! - [`store`] is the object store: S3 or a local folder behind one trait.
//! - [`manifest`] and [`registry`] describe and resolve registered model versions.
//! - [`runtime`] loads ONNX models with tract, runs them and caches them.
//! - [`tensor`] converts between Open Inference Protocol data and tract tensors.
//! - [`features`] maps named scientific features onto a model's input tensor.
//! - [`logging`] and [`metrics`] emit structured logs and CloudWatch metrics.

pub mod config;
pub mod error;
pub mod events;
pub mod features;
pub mod logging;
pub mod manifest;
pub mod metrics;
pub mod models;
pub mod registry;
pub mod runtime;
pub mod store;
pub mod tensor;

pub use error::{Error, ErrorKind, Result};
pub use tract_onnx;
