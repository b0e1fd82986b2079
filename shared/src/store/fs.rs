//! A store rooted at a local folder: the embedded default, used for local runs
//! and tests when no bucket is configured.

use std::io::ErrorKind as IoErrorKind;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;

use super::{validate_key, Listing, ObjectStore};
use crate::error::{Error, Result};

#[derive(Debug, Clone)]
pub struct FolderStore {
    root: PathBuf,
}

impl FolderStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        FolderStore { root: root.into() }
    }

    fn path(&self, key: &str) -> Result<PathBuf> {
        validate_key(key)?;
        Ok(self.root.join(key))
    }
}

#[async_trait]
impl ObjectStore for FolderStore {
    fn describe(&self, key: &str) -> String {
        self.root.join(key).display().to_string()
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        let path = self.path(key)?;
        match tokio::fs::read(&path).await {
            Ok(bytes) => Ok(Some(Bytes::from(bytes))),
            Err(err) if err.kind() == IoErrorKind::NotFound => Ok(None),
            Err(err) => Err(Error::storage("read", path.display().to_string(), err)),
        }
    }

    async fn put(&self, key: &str, body: Bytes) -> Result<()> {
        let path = self.path(key)?;
        let location = path.display().to_string();
        let parent = path.parent().unwrap_or(Path::new("."));
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(|err| Error::storage("create folder for", location.clone(), err))?;

        // A temporary file in the same folder, renamed over the target, so that
        // a reader never sees a half-written object.
        let parent = parent.to_path_buf();
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            let mut file = tempfile::NamedTempFile::new_in(&parent)?;
            std::io::Write::write_all(&mut file, &body)?;
            file.as_file().sync_all()?;
            file.persist(&path).map_err(|err| err.error)?;
            Ok(())
        })
        .await
        .map_err(|err| Error::storage("write", location.clone(), err))?
        .map_err(|err| Error::storage("write", location, err))
    }

    async fn list(&self, prefix: &str) -> Result<Listing> {
        let folder = if prefix.is_empty() { self.root.clone() } else { self.path(prefix)? };
        let mut entries = match tokio::fs::read_dir(&folder).await {
            Ok(entries) => entries,
            Err(err) if err.kind() == IoErrorKind::NotFound && !prefix.is_empty() => return Ok(Listing::default()),
            Err(err) => return Err(Error::storage("list", folder.display().to_string(), err)),
        };
        let mut listing = Listing::default();
        while let Some(entry) = entries
            .next_entry()
            .await
            .map_err(|err| Error::storage("list", folder.display().to_string(), err))?
        {
            let Ok(name) = entry.file_name().into_string() else { continue };
            // Temporary files from an interrupted `put` are not objects.
            if name.starts_with(".tmp") {
                continue;
            }
            let file_type = entry
                .file_type()
                .await
                .map_err(|err| Error::storage("list", entry.path().display().to_string(), err))?;
            if file_type.is_dir() {
                listing.prefixes.push(name);
            } else {
                listing.objects.push(name);
            }
        }
        listing.prefixes.sort();
        listing.objects.sort();
        Ok(listing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn put_get_and_list_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let store = FolderStore::new(dir.path());

        store.put("m/1/model.onnx", Bytes::from_static(b"abc")).await.unwrap();
        store.put("m/aliases.json", Bytes::from_static(b"{}")).await.unwrap();

        assert_eq!(store.get("m/1/model.onnx").await.unwrap().unwrap(), Bytes::from_static(b"abc"));
        assert_eq!(store.get("m/2/model.onnx").await.unwrap(), None);
        let listing = store.list("m/").await.unwrap();
        assert_eq!(listing.prefixes, vec!["1".to_string()]);
        assert_eq!(listing.objects, vec!["aliases.json".to_string()]);
        assert_eq!(store.list("absent/").await.unwrap(), Listing::default());
    }

    #[tokio::test]
    async fn missing_root_is_a_storage_error() {
        let store = FolderStore::new("/nonexistent/registry/root");
        let err = store.list("").await.unwrap_err();
        assert!(err.to_string().contains("/nonexistent/registry/root"), "{err}");
    }

    #[tokio::test]
    async fn escaping_keys_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let store = FolderStore::new(dir.path());
        assert!(matches!(store.get("../secret").await, Err(Error::InvalidKey { .. })));
    }
}
