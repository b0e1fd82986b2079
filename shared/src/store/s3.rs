//! A store on an S3 bucket and key prefix, through `aws-sdk-s3`. The endpoint,
//! region and credentials come from the standard AWS environment, so
//! `AWS_ENDPOINT_URL` points it at any S3-compatible server.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;

use super::{validate_key, Listing, ObjectInfo, ObjectReader, ObjectStore, Upload};
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

/// True when S3 rejected a conditional write because its condition failed
/// (412), or because a concurrent conditional write to the key won (409).
fn is_condition_failed<E: ProvideErrorMetadata>(err: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>) -> bool {
    match err {
        SdkError::ServiceError(service) => {
            matches!(service.err().code(), Some("PreconditionFailed" | "ConditionalRequestConflict"))
                || matches!(service.raw().status().as_u16(), 409 | 412)
        }
        _ => false,
    }
}

/// True when S3 reported that the key or bucket does not exist.
fn is_not_found<E: ProvideErrorMetadata>(err: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>) -> bool {
    match err {
        SdkError::ServiceError(service) => {
            // A missing bucket is also a 404, but it is a setup error to report,
            // not an absent object.
            let code = service.err().code();
            code != Some("NoSuchBucket") && (matches!(code, Some("NoSuchKey" | "NotFound")) || service.raw().status().as_u16() == 404)
        }
        _ => false,
    }
}

/// Converts an SDK error to an error whose message includes S3's own code and
/// message. Only errors without them (timeouts, connection failures) are
/// printed in full by `DisplayErrorContext`, whose output for a service error
/// would include the raw response.
fn storage_error<E>(action: &'static str, location: String, err: SdkError<E, aws_sdk_s3::config::http::HttpResponse>) -> Error
where
    E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
{
    let detail = match &err {
        SdkError::ServiceError(service) if service.err().code().is_some() => {
            let status = service.raw().status().as_u16();
            let code = service.err().code().unwrap_or_default();
            let hint = match code {
                "NoSuchBucket" => "; check the bucket name in the s3:// location",
                "AccessDenied" => "; check the function's IAM role or the credentials in the environment",
                _ => "",
            };
            format!("S3 answered {code} (HTTP {status}): {}{hint}", service.err().message().unwrap_or("no message"))
        }
        _ => aws_sdk_s3::error::DisplayErrorContext(&err).to_string(),
    };
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

    async fn head(&self, key: &str) -> Result<Option<ObjectInfo>> {
        let full_key = self.full_key(key)?;
        match self.client.head_object().bucket(&self.bucket).key(&full_key).send().await {
            Ok(response) => Ok(Some(ObjectInfo {
                size: response.content_length().unwrap_or(0).max(0) as u64,
                etag: response.e_tag().unwrap_or_default().to_string(),
                version_id: response.version_id().map(str::to_string),
            })),
            Err(err) if is_not_found(&err) => Ok(None),
            Err(err) => Err(storage_error("read metadata of", self.describe(key), err)),
        }
    }

    async fn get_with_etag(&self, key: &str) -> Result<Option<(Bytes, String)>> {
        let full_key = self.full_key(key)?;
        let response = match self.client.get_object().bucket(&self.bucket).key(&full_key).send().await {
            Ok(response) => response,
            Err(err) if is_not_found(&err) => return Ok(None),
            Err(err) => return Err(storage_error("read", self.describe(key), err)),
        };
        let etag = response.e_tag().unwrap_or_default().to_string();
        let body = response.body.collect().await.map_err(|err| Error::storage("read", self.describe(key), err))?;
        Ok(Some((body.into_bytes(), etag)))
    }

    async fn put_if_absent(&self, key: &str, body: Bytes) -> Result<bool> {
        self.put_conditional(key, body, Some("*"), None).await
    }

    async fn put_if_match(&self, key: &str, body: Bytes, etag: &str) -> Result<bool> {
        self.put_conditional(key, body, None, Some(etag)).await
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let full_key = self.full_key(key)?;
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(full_key)
            .send()
            .await
            .map_err(|err| storage_error("delete", self.describe(key), err))?;
        Ok(())
    }

    async fn get_stream(&self, key: &str) -> Result<Option<ObjectReader>> {
        let full_key = self.full_key(key)?;
        match self.client.get_object().bucket(&self.bucket).key(&full_key).send().await {
            Ok(response) => Ok(Some(Box::new(tokio::io::BufReader::with_capacity(256 * 1024, response.body.into_async_read())))),
            Err(err) if is_not_found(&err) => Ok(None),
            Err(err) => Err(storage_error("read", self.describe(key), err)),
        }
    }

    async fn start_upload(&self, key: &str) -> Result<Box<dyn Upload>> {
        let full_key = self.full_key(key)?;
        let response = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(&full_key)
            .send()
            .await
            .map_err(|err| storage_error("start upload of", self.describe(key), err))?;
        let upload_id = response.upload_id().unwrap_or_default().to_string();
        Ok(Box::new(MultipartUpload {
            client: self.client.clone(),
            bucket: self.bucket.clone(),
            key: full_key,
            location: self.describe(key),
            upload_id,
            buffer: Vec::new(),
            parts: Vec::new(),
        }))
    }
}

impl S3Store {
    async fn put_conditional(&self, key: &str, body: Bytes, if_none_match: Option<&str>, if_match: Option<&str>) -> Result<bool> {
        let full_key = self.full_key(key)?;
        let request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(full_key)
            .body(ByteStream::from(body))
            .set_if_none_match(if_none_match.map(str::to_string))
            .set_if_match(if_match.map(str::to_string));
        match request.send().await {
            Ok(_) => Ok(true),
            Err(err) if is_condition_failed(&err) || (if_match.is_some() && is_not_found(&err)) => Ok(false),
            Err(err) => Err(storage_error("write", self.describe(key), err)),
        }
    }
}

/// Below this size a part is buffered, because S3 requires every part but the
/// last to be at least 5 MiB.
const PART_BYTES: usize = 8 * 1024 * 1024;

struct MultipartUpload {
    client: aws_sdk_s3::Client,
    bucket: String,
    key: String,
    location: String,
    upload_id: String,
    buffer: Vec<u8>,
    parts: Vec<aws_sdk_s3::types::CompletedPart>,
}

impl MultipartUpload {
    async fn send_part(&mut self) -> Result<()> {
        let number = self.parts.len() as i32 + 1;
        let body = std::mem::take(&mut self.buffer);
        let response = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&self.upload_id)
            .part_number(number)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|err| storage_error("upload part of", self.location.clone(), err))?;
        self.parts.push(
            aws_sdk_s3::types::CompletedPart::builder()
                .part_number(number)
                .set_e_tag(response.e_tag().map(str::to_string))
                .build(),
        );
        Ok(())
    }
}

#[async_trait]
impl Upload for MultipartUpload {
    async fn write(&mut self, chunk: Bytes) -> Result<()> {
        self.buffer.extend_from_slice(&chunk);
        if self.buffer.len() >= PART_BYTES {
            self.send_part().await?;
        }
        Ok(())
    }

    async fn complete(mut self: Box<Self>) -> Result<()> {
        if !self.buffer.is_empty() || self.parts.is_empty() {
            self.send_part().await?;
        }
        let parts = aws_sdk_s3::types::CompletedMultipartUpload::builder().set_parts(Some(self.parts.clone())).build();
        self.client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&self.upload_id)
            .multipart_upload(parts)
            .send()
            .await
            .map_err(|err| storage_error("complete upload of", self.location.clone(), err))?;
        Ok(())
    }

    async fn abort(self: Box<Self>) -> Result<()> {
        self.client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&self.upload_id)
            .send()
            .await
            .map_err(|err| storage_error("abort upload of", self.location.clone(), err))?;
        Ok(())
    }
}
