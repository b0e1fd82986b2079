//! The model service the functions share: resolve a name and version through
//! the registry, load it once through the cache, and run it off the async
//! runtime's threads.

use std::sync::Arc;
use std::time::Instant;

use tract_onnx::prelude::Tensor;

use crate::config::SharedConfig;
use crate::error::{Error, Result};
use crate::manifest::Manifest;
use crate::registry::{ModelName, Registry, VersionRef};
use crate::runtime::{CacheKey, LoadedModel, ModelCache};

/// A resolved, loaded model version.
#[derive(Debug, Clone)]
pub struct ModelHandle {
    pub manifest: Arc<Manifest>,
    pub model: Arc<LoadedModel>,
    /// Milliseconds spent fetching and compiling the model when this request
    /// loaded it, `None` when it came from the cache.
    pub load_ms: Option<f64>,
}

#[derive(Debug)]
pub struct Models {
    pub registry: Registry,
    pub cache: ModelCache,
}

impl Models {
    pub fn new(registry: Registry, cache: ModelCache) -> Self {
        Models { registry, cache }
    }

    /// Opens the registry named by the configuration.
    pub async fn from_config(config: &SharedConfig) -> Result<Self> {
        let store = crate::store::open(&config.repository, config.force_path_style).await?;
        Ok(Models::new(Registry::new(store, config.alias_ttl), ModelCache::new(config.model_cache_bytes)))
    }

    /// Resolves and loads a model. `version` is a number or alias; `None`
    /// means `latest`.
    pub async fn get(&self, name: &str, version: Option<&str>) -> Result<ModelHandle> {
        let name = ModelName::parse(name)?;
        let version = match version {
            Some(text) => VersionRef::parse(text)?,
            None => VersionRef::latest(),
        };
        let manifest = self.registry.resolve(&name, &version).await?;
        let key = CacheKey { name: manifest.name.clone(), version: manifest.version, sha256: manifest.sha256.clone() };
        let started = Instant::now();
        let (model, loaded_here) = self
            .cache
            .get_or_load(&key, || async {
                let bytes = self.registry.model_bytes(&manifest).await?;
                let label = format!("{}:{}", manifest.name, manifest.version);
                let model = tokio::task::spawn_blocking(move || LoadedModel::load(&label, &bytes))
                    .await
                    .map_err(|err| Error::ModelLoad { model: key.name.clone(), reason: err.to_string() })??;
                tracing::info!(
                    model = %manifest.name,
                    version = manifest.version,
                    compile_ms = model.compile_ms,
                    total_ms = started.elapsed().as_secs_f64() * 1000.0,
                    "model loaded"
                );
                Ok(model)
            })
            .await?;
        let load_ms = loaded_here.then(|| started.elapsed().as_secs_f64() * 1000.0);
        Ok(ModelHandle { manifest, model, load_ms })
    }

    /// Runs a model on a blocking thread, so a long inference does not stall
    /// other requests and a panic stays inside that thread.
    pub async fn run(model: &Arc<LoadedModel>, inputs: Vec<Tensor>) -> Result<Vec<Tensor>> {
        let model = model.clone();
        let label = model.label.clone();
        tokio::task::spawn_blocking(move || model.run(inputs))
            .await
            .map_err(|err| Error::Inference { model: label, reason: err.to_string() })?
    }
}
