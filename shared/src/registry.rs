//! The read side of the model registry. A repository contains
//! `<model>/<version>/model.onnx` and `manifest.json`, with integer versions as
//! in Triton's model repository, and `<model>/aliases.json` mapping aliases
//! such as `latest` and `production` to versions.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::manifest::{Aliases, Manifest};
use crate::store::ObjectStore;

pub const MANIFEST_FILE: &str = "manifest.json";
pub const MODEL_FILE: &str = "model.onnx";
pub const ALIASES_FILE: &str = "aliases.json";

/// A model name that is safe to use as one key segment.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ModelName(String);

impl ModelName {
    pub fn parse(name: &str) -> Result<Self> {
        let valid_chars = name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        let starts_well = name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
        if (1..=128).contains(&name.len()) && valid_chars && starts_well && !name.contains("..") {
            Ok(ModelName(name.to_string()))
        } else {
            Err(Error::InvalidModelName { name: name.to_string() })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ModelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A version as a request names it: a number or an alias.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum VersionRef {
    Number(u64),
    Alias(String),
}

impl VersionRef {
    pub const LATEST: &'static str = "latest";

    pub fn latest() -> Self {
        VersionRef::Alias(Self::LATEST.to_string())
    }

    /// Parses `3` or an alias such as `production`. Versions start at 1.
    pub fn parse(text: &str) -> Result<Self> {
        let invalid = || Error::InvalidVersion { version: text.to_string() };
        if !text.is_empty() && text.len() <= 18 && text.bytes().all(|b| b.is_ascii_digit()) {
            let number: u64 = text.parse().map_err(|_| invalid())?;
            return if number == 0 { Err(invalid()) } else { Ok(VersionRef::Number(number)) };
        }
        let valid_alias = (1..=64).contains(&text.len())
            && text.starts_with(|c: char| c.is_ascii_lowercase())
            && text.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if valid_alias {
            Ok(VersionRef::Alias(text.to_string()))
        } else {
            Err(invalid())
        }
    }
}

impl fmt::Display for VersionRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VersionRef::Number(n) => write!(f, "{n}"),
            VersionRef::Alias(alias) => f.write_str(alias),
        }
    }
}

pub fn version_key(name: &ModelName, version: u64, file: &str) -> String {
    format!("{name}/{version}/{file}")
}

/// Registry reader with two caches: manifests of numbered versions, which never
/// change once written, and alias files, which are trusted for `alias_ttl`.
#[derive(Debug)]
pub struct Registry {
    store: Arc<dyn ObjectStore>,
    alias_ttl: Duration,
    aliases: Mutex<HashMap<ModelName, (Instant, Option<Aliases>)>>,
    manifests: Mutex<HashMap<ModelName, HashMap<u64, Arc<Manifest>>>>,
}

impl Registry {
    pub fn new(store: Arc<dyn ObjectStore>, alias_ttl: Duration) -> Self {
        Registry { store, alias_ttl, aliases: Mutex::default(), manifests: Mutex::default() }
    }

    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// Returns the repository's root location, for messages.
    pub fn location(&self) -> String {
        self.store.describe("")
    }

    /// Succeeds when the repository can be listed.
    pub async fn check_reachable(&self) -> Result<()> {
        self.store.list("").await.map(|_| ())
    }

    /// Names of the registered models.
    pub async fn models(&self) -> Result<Vec<String>> {
        let listing = self.store.list("").await?;
        Ok(listing.prefixes.into_iter().filter(|name| ModelName::parse(name).is_ok()).collect())
    }

    /// Version numbers present for a model, in ascending order. Folders whose
    /// names are not version numbers are ignored.
    pub async fn versions(&self, name: &ModelName) -> Result<Vec<u64>> {
        let listing = self.store.list(&format!("{name}/")).await?;
        let mut versions: Vec<u64> = listing
            .prefixes
            .iter()
            .filter_map(|p| match VersionRef::parse(p) {
                Ok(VersionRef::Number(n)) => Some(n),
                _ => None,
            })
            .collect();
        versions.sort_unstable();
        Ok(versions)
    }

    /// Returns the model's aliases, read again once `alias_ttl` has passed.
    pub async fn aliases(&self, name: &ModelName) -> Result<Option<Aliases>> {
        if let Some((read_at, aliases)) = self.aliases.lock().unwrap_or_else(|e| e.into_inner()).get(name) {
            if read_at.elapsed() < self.alias_ttl {
                return Ok(aliases.clone());
            }
        }
        let key = format!("{name}/{ALIASES_FILE}");
        let aliases = match self.store.get(&key).await? {
            None => None,
            Some(bytes) => Some(
                serde_json::from_slice::<Aliases>(&bytes)
                    .map_err(|source| Error::InvalidDocument { location: self.store.describe(&key), source })?,
            ),
        };
        self.aliases.lock().unwrap_or_else(|e| e.into_inner()).insert(name.clone(), (Instant::now(), aliases.clone()));
        Ok(aliases)
    }

    /// Forgets cached aliases, so the next lookup reads the store.
    pub fn forget_aliases(&self, name: &ModelName) {
        self.aliases.lock().unwrap_or_else(|e| e.into_inner()).remove(name);
    }

    /// Resolves a version or alias to a manifest. Returns
    /// [`Error::ModelNotFound`] or [`Error::VersionNotFound`] when it does not
    /// exist, and [`Error::InvalidManifest`] when the stored manifest is bad.
    pub async fn resolve(&self, name: &ModelName, version: &VersionRef) -> Result<Arc<Manifest>> {
        let number = match version {
            VersionRef::Number(n) => *n,
            VersionRef::Alias(alias) => self.resolve_alias(name, alias).await?,
        };
        if let Some(manifest) = self.manifests.lock().unwrap_or_else(|e| e.into_inner()).get(name).and_then(|versions| versions.get(&number)) {
            return Ok(manifest.clone());
        }
        match self.read_manifest(name, number).await? {
            Some(manifest) => {
                let manifest = Arc::new(manifest);
                self.manifests
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .entry(name.clone())
                    .or_default()
                    .insert(number, manifest.clone());
                Ok(manifest)
            }
            None => Err(self.not_found(name, &version.to_string()).await),
        }
    }

    async fn resolve_alias(&self, name: &ModelName, alias: &str) -> Result<u64> {
        // Warm requests end here, without copying the alias map.
        let fresh = {
            let cached = self.aliases.lock().unwrap_or_else(|e| e.into_inner());
            cached
                .get(name)
                .filter(|(read_at, _)| read_at.elapsed() < self.alias_ttl)
                .and_then(|(_, aliases)| aliases.as_ref()?.get(alias).copied())
        };
        if let Some(number) = fresh {
            return Ok(number);
        }
        if let Some(number) = self.aliases(name).await?.and_then(|aliases| aliases.get(alias).copied()) {
            return Ok(number);
        }
        // Without an alias file, `latest` is the highest version that has a
        // manifest; a version folder without one is still being registered.
        if alias == VersionRef::LATEST {
            for number in self.versions(name).await?.into_iter().rev() {
                if self.store.get(&version_key(name, number, MANIFEST_FILE)).await?.is_some() {
                    return Ok(number);
                }
            }
        }
        Err(self.not_found(name, alias).await)
    }

    async fn not_found(&self, name: &ModelName, version: &str) -> Error {
        match self.versions(name).await {
            Ok(versions) if !versions.is_empty() => {
                let mut available: Vec<String> = versions.iter().map(u64::to_string).collect();
                if let Ok(Some(aliases)) = self.aliases(name).await {
                    available.extend(aliases.into_iter().map(|(alias, n)| format!("{alias} (= {n})")));
                }
                Error::VersionNotFound { name: name.to_string(), version: version.to_string(), available: available.join(", ") }
            }
            Ok(_) => Error::ModelNotFound { name: name.to_string(), repository: self.location() },
            Err(err) => err,
        }
    }

    async fn read_manifest(&self, name: &ModelName, number: u64) -> Result<Option<Manifest>> {
        let key = version_key(name, number, MANIFEST_FILE);
        let Some(bytes) = self.store.get(&key).await? else { return Ok(None) };
        let location = self.store.describe(&key);
        let manifest: Manifest =
            serde_json::from_slice(&bytes).map_err(|source| Error::InvalidDocument { location: location.clone(), source })?;
        manifest.validate().map_err(|reason| Error::InvalidManifest { location: location.clone(), reason })?;
        if manifest.name != name.as_str() || manifest.version != number {
            return Err(Error::InvalidManifest {
                location,
                reason: format!("it describes `{}` version {}, not the folder it is in", manifest.name, manifest.version),
            });
        }
        Ok(Some(manifest))
    }

    /// Reads `model.onnx` of a manifest's version and checks its SHA-256.
    pub async fn model_bytes(&self, manifest: &Manifest) -> Result<Bytes> {
        let name = ModelName::parse(&manifest.name)?;
        let key = version_key(&name, manifest.version, MODEL_FILE);
        let location = self.store.describe(&key);
        let bytes = self.store.get(&key).await?.ok_or_else(|| Error::InvalidManifest {
            location: location.clone(),
            reason: "the manifest exists but the model file is missing".into(),
        })?;
        let actual = hex::encode(Sha256::digest(&bytes));
        if !actual.eq_ignore_ascii_case(&manifest.sha256) {
            return Err(Error::ChecksumMismatch {
                name: manifest.name.clone(),
                version: manifest.version,
                location,
                expected: manifest.sha256.clone(),
                actual,
            });
        }
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_names_stay_inside_the_registry() {
        for bad in ["", "../x", "a/b", ".hidden", "a..b", "x y", "é", &"a".repeat(129)] {
            assert!(ModelName::parse(bad).is_err(), "{bad:?} should be rejected");
        }
        for good in ["esol-solubility", "airfoil_gbr", "m1.v2", "A"] {
            assert!(ModelName::parse(good).is_ok(), "{good:?} should be accepted");
        }
    }

    #[test]
    fn versions_are_positive_numbers_or_aliases() {
        assert_eq!(VersionRef::parse("3").unwrap(), VersionRef::Number(3));
        assert_eq!(VersionRef::parse("production").unwrap(), VersionRef::Alias("production".into()));
        for bad in ["0", "-1", "1.5", "../1", "Latest", "", "99999999999999999999"] {
            assert!(VersionRef::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }
}
