//! A store rooted at a local folder: the embedded default, used for local runs
//! and tests when no bucket is configured.

use std::io::ErrorKind as IoErrorKind;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;

use sha2::{Digest, Sha256};

use super::{validate_key, Listing, ObjectInfo, ObjectReader, ObjectStore, Upload};
use crate::error::{Error, Result};

/// Creates a temporary file that becomes a stored object when renamed. It is
/// created readable by all, less the umask, as a plain file would be, because
/// tempfile's own default of owner-only would hide registry and result files
/// from other users of the folder.
fn new_temp(parent: &Path) -> std::io::Result<tempfile::NamedTempFile> {
    let mut builder = tempfile::Builder::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    builder.tempfile_in(parent)
}

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

    /// Creates the parent folder of `path` and returns it.
    async fn parent_of(path: &Path) -> Result<PathBuf> {
        let parent = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        tokio::fs::create_dir_all(&parent)
            .await
            .map_err(|err| Error::storage("create folder for", path.display().to_string(), err))?;
        Ok(parent)
    }

    /// Holds a lock file beside `path` while `work` runs, so that
    /// compare-and-swap writes from several processes do not interleave.
    async fn with_lock<T>(path: &Path, work: impl AsyncFnOnce() -> Result<T>) -> Result<T> {
        let lock = path.with_extension("lock");
        let started = std::time::Instant::now();
        loop {
            match tokio::fs::OpenOptions::new().write(true).create_new(true).open(&lock).await {
                Ok(_) => break,
                Err(err) if err.kind() == IoErrorKind::AlreadyExists => {
                    // A lock older than a minute belongs to a crashed writer.
                    let stale = tokio::fs::metadata(&lock)
                        .await
                        .ok()
                        .and_then(|m| m.modified().ok())
                        .and_then(|t| t.elapsed().ok())
                        .is_some_and(|age| age > std::time::Duration::from_secs(60));
                    if stale {
                        let _ = tokio::fs::remove_file(&lock).await;
                    } else if started.elapsed() > std::time::Duration::from_secs(30) {
                        return Err(Error::storage("lock", lock.display().to_string(), "timed out waiting for the lock"));
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                }
                Err(err) => return Err(Error::storage("lock", lock.display().to_string(), err)),
            }
        }
        let result = work().await;
        let _ = tokio::fs::remove_file(&lock).await;
        result
    }

    /// Writes `body` to a temporary file in `parent`, synced to disk.
    async fn write_temp(parent: PathBuf, body: Bytes) -> std::io::Result<tempfile::NamedTempFile> {
        tokio::task::spawn_blocking(move || {
            let mut file = new_temp(&parent)?;
            std::io::Write::write_all(&mut file, &body)?;
            file.as_file().sync_all()?;
            Ok(file)
        })
        .await
        .map_err(std::io::Error::other)?
    }
}

fn etag_of(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
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
        let parent = Self::parent_of(&path).await?;

        // A temporary file in the same folder, renamed over the target, so that
        // a reader never sees a half-written object.
        let file = Self::write_temp(parent, body).await.map_err(|err| Error::storage("write", location.clone(), err))?;
        file.persist(&path).map_err(|err| Error::storage("write", location, err.error))?;
        Ok(())
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

    async fn head(&self, key: &str) -> Result<Option<ObjectInfo>> {
        Ok(self
            .get_with_etag(key)
            .await?
            .map(|(bytes, etag)| ObjectInfo { size: bytes.len() as u64, etag, version_id: None }))
    }

    async fn get_with_etag(&self, key: &str) -> Result<Option<(Bytes, String)>> {
        Ok(self.get(key).await?.map(|bytes| {
            let etag = etag_of(&bytes);
            (bytes, etag)
        }))
    }

    async fn put_if_absent(&self, key: &str, body: Bytes) -> Result<bool> {
        let path = self.path(key)?;
        let location = path.display().to_string();
        let parent = Self::parent_of(&path).await?;
        let file = Self::write_temp(parent, body).await.map_err(|err| Error::storage("write", location.clone(), err))?;

        // A hard link fails when the target exists, which makes the check and
        // the write one atomic step, also across processes.
        match std::fs::hard_link(file.path(), &path) {
            Ok(()) => Ok(true),
            Err(err) if err.kind() == IoErrorKind::AlreadyExists => Ok(false),
            Err(err) => Err(Error::storage("write", location, err)),
        }
    }

    async fn put_if_match(&self, key: &str, body: Bytes, etag: &str) -> Result<bool> {
        let path = self.path(key)?;
        Self::parent_of(&path).await?;
        Self::with_lock(&path, async || {
            match self.get_with_etag(key).await? {
                Some((_, current)) if current == etag => {
                    self.put(key, body).await?;
                    Ok(true)
                }
                _ => Ok(false),
            }
        })
        .await
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let path = self.path(key)?;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(err) if err.kind() == IoErrorKind::NotFound => Ok(()),
            Err(err) => Err(Error::storage("delete", path.display().to_string(), err)),
        }
    }

    async fn get_stream(&self, key: &str) -> Result<Option<ObjectReader>> {
        let path = self.path(key)?;
        match tokio::fs::File::open(&path).await {
            Ok(file) => Ok(Some(Box::new(tokio::io::BufReader::with_capacity(256 * 1024, file)))),
            Err(err) if err.kind() == IoErrorKind::NotFound => Ok(None),
            Err(err) => Err(Error::storage("read", path.display().to_string(), err)),
        }
    }

    async fn start_upload(&self, key: &str) -> Result<Box<dyn Upload>> {
        let path = self.path(key)?;
        let location = path.display().to_string();
        let parent = Self::parent_of(&path).await?;
        let temp = new_temp(&parent).map_err(|err| Error::storage("write", location.clone(), err))?;
        let (file, temp_path) = temp.into_parts();
        Ok(Box::new(FileUpload {
            file: tokio::io::BufWriter::new(tokio::fs::File::from_std(file)),
            temp_path,
            path,
        }))
    }
}

/// A temporary file in the target's folder, renamed into place on completion.
struct FileUpload {
    file: tokio::io::BufWriter<tokio::fs::File>,
    temp_path: tempfile::TempPath,
    path: PathBuf,
}

#[async_trait]
impl Upload for FileUpload {
    async fn write(&mut self, chunk: Bytes) -> Result<()> {
        use tokio::io::AsyncWriteExt;
        self.file.write_all(&chunk).await.map_err(|err| Error::storage("write", self.path.display().to_string(), err))
    }

    async fn complete(mut self: Box<Self>) -> Result<()> {
        use tokio::io::AsyncWriteExt;
        let location = self.path.display().to_string();
        self.file.flush().await.map_err(|err| Error::storage("write", location.clone(), err))?;
        self.file.get_ref().sync_all().await.map_err(|err| Error::storage("write", location.clone(), err))?;
        self.temp_path.persist(&self.path).map_err(|err| Error::storage("write", location, err.error))?;
        Ok(())
    }

    async fn abort(self: Box<Self>) -> Result<()> {
        // Dropping the temporary path deletes the file.
        Ok(())
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

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn stored_files_follow_the_umask() {
        use std::os::unix::fs::PermissionsExt;
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let umask = status.lines().find_map(|line| line.strip_prefix("Umask:")).unwrap().trim();
        let umask = u32::from_str_radix(umask, 8).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = FolderStore::new(dir.path());

        store.put("m/aliases.json", Bytes::from_static(b"{}")).await.unwrap();

        let mode = std::fs::metadata(dir.path().join("m/aliases.json")).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o666 & !umask);
    }

    #[tokio::test]
    async fn put_if_absent_writes_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = FolderStore::new(dir.path());
        assert!(store.put_if_absent("m/1/manifest.json", Bytes::from_static(b"first")).await.unwrap());
        assert!(!store.put_if_absent("m/1/manifest.json", Bytes::from_static(b"second")).await.unwrap());
        assert_eq!(store.get("m/1/manifest.json").await.unwrap().unwrap(), Bytes::from_static(b"first"));
        let leftovers = std::fs::read_dir(dir.path().join("m/1")).unwrap().count();
        assert_eq!(leftovers, 1, "no temporary file is left behind");
    }

    #[tokio::test]
    async fn put_if_match_detects_a_change() {
        let dir = tempfile::tempdir().unwrap();
        let store = FolderStore::new(dir.path());
        store.put("aliases.json", Bytes::from_static(b"{}")).await.unwrap();
        let (_, etag) = store.get_with_etag("aliases.json").await.unwrap().unwrap();
        assert!(store.put_if_match("aliases.json", Bytes::from_static(b"{\"latest\":1}"), &etag).await.unwrap());
        assert!(!store.put_if_match("aliases.json", Bytes::from_static(b"{\"latest\":2}"), &etag).await.unwrap());
        assert_eq!(store.get("aliases.json").await.unwrap().unwrap(), Bytes::from_static(b"{\"latest\":1}"));
    }

    #[tokio::test]
    async fn upload_appears_only_when_completed() {
        let dir = tempfile::tempdir().unwrap();
        let store = FolderStore::new(dir.path());
        let mut upload = store.start_upload("out/result.csv").await.unwrap();
        upload.write(Bytes::from_static(b"a,b\n")).await.unwrap();
        assert_eq!(store.get("out/result.csv").await.unwrap(), None);
        upload.complete().await.unwrap();
        assert_eq!(store.get("out/result.csv").await.unwrap().unwrap(), Bytes::from_static(b"a,b\n"));

        let mut aborted = store.start_upload("out/aborted.csv").await.unwrap();
        aborted.write(Bytes::from_static(b"partial")).await.unwrap();
        aborted.abort().await.unwrap();
        assert_eq!(store.get("out/aborted.csv").await.unwrap(), None);
        assert_eq!(store.list("out/").await.unwrap().objects, vec!["result.csv".to_string()]);
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
