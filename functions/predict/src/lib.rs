//! The predict function: online inference over HTTP.
//!
//! - [`http`] converts Lambda HTTP events (API Gateway HTTP API, function URLs,
//!   `cargo lambda watch`) to [`ApiRequest`] and back.
//! - [`routes`] maps paths to endpoints.
//! - [`service`] serves each endpoint; [`v2`] and [`v1`] hold the two request
//!   formats, and [`binary`] the binary tensor data extension.

pub mod binary;
pub mod config;
pub mod error;
pub mod http;
pub mod routes;
pub mod service;
pub mod v1;
pub mod v2;

pub use config::Config;
pub use error::ApiError;
pub use service::{ApiRequest, ApiResponse, Service};
