//! Writing a validated model into the registry as a new version.
//!
//! Concurrent ingests must never overwrite each other, so every step that
//! could race is a conditional write. The upload's identity is claimed first,
//! which makes a redelivered event a no-op. Then the next free version number
//! is claimed, and the `latest` alias only moves forward through
//! compare-and-swap.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use shared::manifest::{Aliases, Manifest, Source, SCHEMA_VERSION};
use shared::registry::{version_key, ModelName, Registry, VersionRef, ALIASES_FILE, MANIFEST_FILE, MODEL_FILE};
use shared::store::ObjectStore;
use shared::{Error, Result};

use crate::sidecar::Sidecar;
use crate::validate::Validated;

/// File name of the upload kept beside a rewritten `model.onnx`.
pub const ORIGINAL_FILE: &str = "original.onnx";

/// A registration that started this long ago without finishing is taken to
/// have crashed, and a retry may take it over.
const STALE_AFTER: Duration = Duration::from_secs(600);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
enum UploadRecord {
    Registering { started_at: DateTime<Utc> },
    Registered { version: u64 },
}

/// Result of registering an upload.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    Registered { model: String, version: u64, sha256: String, warnings: Vec<String> },
    /// The same model bytes with the same sidecar were registered before.
    AlreadyRegistered { model: String, version: u64 },
}

/// The upload being registered.
#[derive(Debug, Clone)]
pub struct Upload<'a> {
    pub location: String,
    pub bytes: &'a [u8],
    pub sidecar_bytes: Option<&'a [u8]>,
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl Upload<'_> {
    /// Identity of the upload: the model bytes together with the sidecar, so
    /// that a sidecar arriving later registers a new version, and a repeated
    /// event registers nothing.
    fn identity(&self) -> String {
        let mut hasher = Sha256::new();
        hasher.update(Sha256::digest(self.bytes));
        hasher.update(self.sidecar_bytes.map(|b| Sha256::digest(b).to_vec()).unwrap_or_default());
        hex::encode(hasher.finalize())
    }
}

pub struct Registrar {
    store: Arc<dyn ObjectStore>,
    registry: Registry,
}

impl Registrar {
    pub fn new(store: Arc<dyn ObjectStore>) -> Self {
        // Registration reads aliases fresh each time, so nothing is cached.
        let registry = Registry::new(store.clone(), Duration::ZERO);
        Registrar { store, registry }
    }

    /// Registers a validated upload as the next version and moves `latest`.
    /// Returns [`Error::Storage`] (retryable) when another registration of the
    /// same upload is still running.
    pub async fn register(&self, name: &ModelName, upload: &Upload<'_>, validated: Validated, sidecar: Option<&Sidecar>) -> Result<Outcome> {
        let record_key = format!("{name}/uploads/{}.json", upload.identity());
        if let Some(version) = self.claim_upload(&record_key).await? {
            return Ok(Outcome::AlreadyRegistered { model: name.to_string(), version });
        }

        let version = self.claim_version(name).await?;
        let sha256 = sha256_hex(&validated.servable);
        let manifest = Manifest {
            schema_version: SCHEMA_VERSION,
            name: name.to_string(),
            version,
            description: sidecar.and_then(|s| s.description.clone()).unwrap_or_default(),
            created_at: Utc::now(),
            sha256: sha256.clone(),
            size_bytes: validated.servable.len() as u64,
            inputs: validated.inputs,
            outputs: validated.outputs,
            features: validated.features,
            labels: validated.labels,
            probability_output: validated.probability_output,
            opset_imports: validated.opset_imports,
            producer: validated.producer,
            metrics: sidecar.map(|s| s.metrics.clone()).unwrap_or_default(),
            warnings: validated.warnings.clone(),
            source: Some(Source {
                location: upload.location.clone(),
                sha256: sha256_hex(upload.bytes),
                size_bytes: upload.bytes.len() as u64,
                sidecar_sha256: upload.sidecar_bytes.map(sha256_hex),
            }),
            validation: Some(validated.validation),
        };

        // The manifest goes last: readers treat a version without one as not
        // yet registered.
        self.store.put(&version_key(name, version, MODEL_FILE), Bytes::from(validated.servable)).await?;
        if validated.rewritten {
            self.store.put(&version_key(name, version, ORIGINAL_FILE), Bytes::copy_from_slice(upload.bytes)).await?;
        }
        let manifest_json = serde_json::to_vec_pretty(&manifest).expect("manifests serialize");
        self.store.put(&version_key(name, version, MANIFEST_FILE), Bytes::from(manifest_json)).await?;
        let record = serde_json::to_vec(&UploadRecord::Registered { version }).expect("records serialize");
        self.store.put(&record_key, Bytes::from(record)).await?;
        self.set_alias(name, VersionRef::LATEST, version, true).await?;
        Ok(Outcome::Registered { model: name.to_string(), version, sha256, warnings: validated.warnings })
    }

    /// Claims the upload record. Returns the version when the upload was
    /// registered before, `None` once this call owns the registration.
    async fn claim_upload(&self, key: &str) -> Result<Option<u64>> {
        let registering = serde_json::to_vec(&UploadRecord::Registering { started_at: Utc::now() }).expect("records serialize");
        for _ in 0..10 {
            let claimed = match self.store.get_with_etag(key).await? {
                None => self.store.put_if_absent(key, Bytes::from(registering.clone())).await?,
                Some((bytes, etag)) => match serde_json::from_slice::<UploadRecord>(&bytes) {
                    Ok(UploadRecord::Registered { version }) => return Ok(Some(version)),
                    Ok(UploadRecord::Registering { started_at })
                        if (Utc::now() - started_at).to_std().unwrap_or_default() < STALE_AFTER =>
                    {
                        return Err(Error::storage(
                            "register",
                            self.store.describe(key),
                            "an identical upload is being registered right now; retry in a minute",
                        ));
                    }
                    // A stale or unreadable record is taken over in place, with
                    // a conditional write, so no delete permission is needed.
                    _ => {
                        tracing::warn!(key, "taking over a registration that stopped without finishing");
                        self.store.put_if_match(key, Bytes::from(registering.clone()), &etag).await?
                    }
                },
            };
            if claimed {
                return Ok(None);
            }
        }
        Err(Error::storage("register", self.store.describe(key), "the upload record kept changing; retry"))
    }

    /// Claims the next free version number with a conditional write, so two
    /// registrations of one model never get the same number.
    async fn claim_version(&self, name: &ModelName) -> Result<u64> {
        let mut version = self.registry.versions(name).await?.last().copied().unwrap_or(0) + 1;
        loop {
            let claim = serde_json::to_vec(&serde_json::json!({ "claimed_at": Utc::now() })).expect("claims serialize");
            if self.store.put_if_absent(&version_key(name, version, "claim.json"), Bytes::from(claim)).await? {
                return Ok(version);
            }
            version += 1;
        }
    }

    /// Points `alias` at `version`. With `forward_only`, an alias already at a
    /// higher version stays, so a slower concurrent registration cannot move
    /// `latest` backwards.
    pub async fn set_alias(&self, name: &ModelName, alias: &str, version: u64, forward_only: bool) -> Result<()> {
        let key = format!("{name}/{ALIASES_FILE}");
        for _ in 0..50 {
            let current = self.store.get_with_etag(&key).await?;
            let mut aliases: Aliases = match &current {
                Some((bytes, _)) => serde_json::from_slice(bytes)
                    .map_err(|source| Error::InvalidDocument { location: self.store.describe(&key), source })?,
                None => Aliases::new(),
            };
            if forward_only && aliases.get(alias).is_some_and(|&v| v >= version) {
                return Ok(());
            }
            aliases.insert(alias.to_string(), version);
            let body = Bytes::from(serde_json::to_vec_pretty(&aliases).expect("aliases serialize"));
            let written = match &current {
                Some((_, etag)) => self.store.put_if_match(&key, body, etag).await?,
                None => self.store.put_if_absent(&key, body).await?,
            };
            if written {
                return Ok(());
            }
        }
        Err(Error::storage("update", self.store.describe(&key), "the alias file kept changing; retry"))
    }

    /// Moves the `production` alias to an existing version.
    pub async fn promote(&self, name: &ModelName, version: u64) -> Result<()> {
        self.registry.resolve(name, &VersionRef::Number(version)).await?;
        self.set_alias(name, "production", version, false).await
    }
}
