//! The object store behind the registry and the batch files: one trait, with
//! S3 ([`s3::S3Store`]) and a local folder ([`fs::FolderStore`]) behind it.
//! Keys are always relative, `/`-separated paths under the store's root.

pub mod fs;
pub mod s3;

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

use crate::error::{Error, Result};

/// Root of a store, as written in settings such as `MODEL_REPOSITORY`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A bucket and a key prefix that is empty or ends with `/`.
    S3 { bucket: String, prefix: String },
    /// A folder on the local file system.
    Folder(std::path::PathBuf),
}

impl Location {
    /// Parses `s3://bucket[/prefix]` or a folder path. Returns the reason on
    /// failure, for the caller to wrap with the setting's name.
    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        let text = text.trim();
        if let Some(rest) = text.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            validate_bucket_name(bucket)?;
            let prefix = prefix.trim_matches('/');
            let prefix = if prefix.is_empty() { String::new() } else { format!("{prefix}/") };
            return Ok(Location::S3 { bucket: bucket.to_string(), prefix });
        }
        if let Some((scheme, _)) = text.split_once("://") {
            return Err(format!("unsupported scheme `{scheme}://`; use `s3://bucket/prefix` or a folder path"));
        }
        if text.is_empty() {
            return Err("the location is empty; use `s3://bucket/prefix` or a folder path".into());
        }
        Ok(Location::Folder(text.into()))
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
            Location::Folder(path) => write!(f, "{}", path.display()),
        }
    }
}

fn validate_bucket_name(bucket: &str) -> std::result::Result<(), String> {
    let valid_chars = bucket.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
    if (3..=63).contains(&bucket.len()) && valid_chars {
        Ok(())
    } else {
        Err(format!(
            "`{bucket}` is not a valid S3 bucket name (3 to 63 characters: lowercase letters, digits, '.' and '-')"
        ))
    }
}

/// Metadata of a stored object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub size: u64,
    /// Opaque version tag: S3's ETag, or a content hash in a folder store.
    pub etag: String,
    /// S3 version id on a versioned bucket.
    pub version_id: Option<String>,
}

/// A readable stream of an object's bytes.
pub type ObjectReader = Box<dyn tokio::io::AsyncBufRead + Send + Unpin>;

/// An object written in parts that becomes visible only when completed: an
/// S3 multipart upload, or a temporary file renamed into place. Dropping it
/// without `complete` leaves nothing at the key, though an S3 upload then
/// lingers until `abort` or the bucket's lifecycle rule removes it.
#[async_trait]
pub trait Upload: Send {
    async fn write(&mut self, chunk: Bytes) -> Result<()>;
    async fn complete(self: Box<Self>) -> Result<()>;
    async fn abort(self: Box<Self>) -> Result<()>;
}

/// The immediate children of a prefix, as in a `ListObjectsV2` call with `/` as
/// the delimiter: sub-prefixes (without the trailing `/`) and object names.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Listing {
    pub prefixes: Vec<String>,
    pub objects: Vec<String>,
}

#[async_trait]
pub trait ObjectStore: Debug + Send + Sync {
    /// Returns the full location of `key` (an `s3://` URL or a path) for
    /// messages and logs.
    fn describe(&self, key: &str) -> String;

    /// Reads a whole object. Returns `Ok(None)` when it does not exist and
    /// [`Error::Storage`] when the store cannot be read.
    async fn get(&self, key: &str) -> Result<Option<Bytes>>;

    /// Writes a whole object, replacing any previous content. Readers see
    /// either the old or the new content, never a partial write.
    async fn put(&self, key: &str, body: Bytes) -> Result<()>;

    /// Lists the children of `prefix`, which is empty or ends with `/`.
    async fn list(&self, prefix: &str) -> Result<Listing>;

    /// Returns an object's metadata, or `Ok(None)` when it does not exist.
    async fn head(&self, key: &str) -> Result<Option<ObjectInfo>>;

    /// Reads a whole object with its version tag, for [`Self::put_if_match`].
    async fn get_with_etag(&self, key: &str) -> Result<Option<(Bytes, String)>>;

    /// Writes an object only if nothing exists at `key`. Returns `false`,
    /// without writing, when something does. Two concurrent calls for one
    /// key never both return `true`.
    async fn put_if_absent(&self, key: &str, body: Bytes) -> Result<bool>;

    /// Replaces an object only if its version tag is still `etag`. Returns
    /// `false`, without writing, when it changed or was deleted.
    async fn put_if_match(&self, key: &str, body: Bytes, etag: &str) -> Result<bool>;

    async fn delete(&self, key: &str) -> Result<()>;

    /// Opens an object for streaming, or returns `Ok(None)` when it does not
    /// exist.
    async fn get_stream(&self, key: &str) -> Result<Option<ObjectReader>>;

    /// Starts a write in parts to `key`; see [`Upload`].
    async fn start_upload(&self, key: &str) -> Result<Box<dyn Upload>>;
}

/// Builds the store for a location. S3 clients take region, credentials and
/// endpoint (`AWS_ENDPOINT_URL`) from the standard AWS environment.
pub async fn open(location: &Location, force_path_style: bool) -> Result<Arc<dyn ObjectStore>> {
    Ok(match location {
        Location::S3 { bucket, prefix } => {
            let client = s3::client(force_path_style).await;
            Arc::new(s3::S3Store::new(client, bucket.clone(), prefix.clone()))
        }
        Location::Folder(path) => Arc::new(fs::FolderStore::new(path.clone())),
    })
}

/// Rejects keys that could escape the store's root or that S3 and a file
/// system would read differently.
pub fn validate_key(key: &str) -> Result<()> {
    let invalid = |reason| Err(Error::InvalidKey { key: key.to_string(), reason });
    if key.is_empty() {
        return invalid("the key is empty");
    }
    if key.starts_with('/') || key.contains('\\') || key.contains('\0') {
        return invalid("keys are relative, `/`-separated paths");
    }
    if key.trim_end_matches('/').split('/').any(|part| part.is_empty() || part == "." || part == "..") {
        return invalid("keys may not contain empty, `.` or `..` segments");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_location_normalises_prefix() {
        assert_eq!(
            Location::parse("s3://my-bucket/a/b/").unwrap(),
            Location::S3 { bucket: "my-bucket".into(), prefix: "a/b/".into() }
        );
        assert_eq!(Location::parse("s3://my-bucket").unwrap(), Location::S3 { bucket: "my-bucket".into(), prefix: String::new() });
    }

    #[test]
    fn location_rejects_other_schemes_and_bad_buckets() {
        assert!(Location::parse("gs://bucket/x").unwrap_err().contains("gs://"));
        assert!(Location::parse("s3://Bad_Bucket/x").unwrap_err().contains("Bad_Bucket"));
        assert!(Location::parse("  ").is_err());
    }

    #[test]
    fn folder_location_is_kept_as_path() {
        assert_eq!(Location::parse("examples/registry").unwrap(), Location::Folder("examples/registry".into()));
    }

    #[test]
    fn keys_cannot_escape_the_root() {
        for key in ["", "/etc/passwd", "a/../b", "..", "a//b", "./a", "a\\b"] {
            assert!(validate_key(key).is_err(), "{key:?} should be rejected");
        }
        assert!(validate_key("model/1/model.onnx").is_ok());
        assert!(validate_key("model/").is_ok());
    }
}
