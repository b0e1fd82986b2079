//! A store on an S3 bucket and key prefix, through `aws-sdk-s3`. The endpoint,
//! region and credentials come from the standard AWS environment, so
//! `AWS_ENDPOINT_URL` points it at any S3-compatible server.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;

use super::{validate_key, Listing, ObjectStore};
use crate::error::{Error, Result};

/// Builds an S3 client from the standard AWS environment.
pub async fn client(force_path_style: bool) -> aws_sdk_s3::Client {
    // A stopped or unreachable server must fail a request within seconds, so
    // that the caller can report it and a queue can retry, instead of hanging
    // until the Lambda timeout.
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(5))
        .read_timeout(Duration::from_secs(30))
        .build();
    let shared = aws_config::defaults(aws_config::BehaviorVersion::latest()).timeout_config(timeouts).load().await;
    let config = aws_sdk_s3::config::Builder::from(&shared).force_path_style(force_path_style).build();
    aws_sdk_s3::Client::from_conf(config)
}

#[derive(Debug, Clone)]
pub struct S3Store {
    client: aws_sdk_s3::Client,
    bucket: String,
    prefix: String,
}

impl S3Store {
    /// `prefix` is empty or ends with `/`.
    pub fn new(client: aws_sdk_s3::Client, bucket: String, prefix: String) -> Self {
        S3Store { client, bucket, prefix }
    }

    fn full_key(&self, key: &str) -> Result<String> {
        validate_key(key)?;
        Ok(format!("{}{key}", self.prefix))
    }
}

/// True when S3 reported that the key or bucket does not exist.
fn is_not_found<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool {
    match err {
        SdkError::ServiceError(service) => {
            matches!(service.err().code(), Some("NoSuchKey" | "NotFound"))
        }
        _ => false,
    }
}

/// Converts an SDK error to an error whose message includes S3's own code and
/// message, which `DisplayErrorContext` prints in full.
fn storage_error<E, R>(action: &'static str, location: String, err: SdkError<E, R>) -> Error
where
    E: std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let detail = aws_sdk_s3::error::DisplayErrorContext(&err).to_string();
    Error::storage(action, location, detail)
}

#[async_trait]
impl ObjectStore for S3Store {
    fn describe(&self, key: &str) -> String {
        format!("s3://{}/{}{key}", self.bucket, self.prefix)
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        let full_key = self.full_key(key)?;
        let response = match self.client.get_object().bucket(&self.bucket).key(&full_key).send().await {
            Ok(response) => response,
            Err(err) if is_not_found(&err) => return Ok(None),
            Err(err) => return Err(storage_error("read", self.describe(key), err)),
        };
        let body = response
            .body
            .collect()
            .await
            .map_err(|err| Error::storage("read", self.describe(key), err))?;
        Ok(Some(body.into_bytes()))
    }

    async fn put(&self, key: &str, body: Bytes) -> Result<()> {
        let full_key = self.full_key(key)?;
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(full_key)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|err| storage_error("write", self.describe(key), err))?;
        Ok(())
    }

    async fn list(&self, prefix: &str) -> Result<Listing> {
        let full_prefix = if prefix.is_empty() { self.prefix.clone() } else { self.full_key(prefix)? };
        let mut listing = Listing::default();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(&full_prefix)
            .delimiter("/")
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|err| storage_error("list", self.describe(prefix), err))?;
            for common in page.common_prefixes() {
                if let Some(name) = common.prefix().and_then(|p| p.strip_prefix(&full_prefix)) {
                    listing.prefixes.push(name.trim_end_matches('/').to_string());
                }
            }
            for object in page.contents() {
                if let Some(name) = object.key().and_then(|k| k.strip_prefix(&full_prefix)) {
                    if !name.is_empty() {
                        listing.objects.push(name.to_string());
                    }
                }
            }
        }
        listing.prefixes.sort();
        listing.objects.sort();
        Ok(listing)
    }
}
