//! Wiring built once per process: the registry store and the ingester.

use shared::store;

use crate::config::Config;
use crate::job::Ingester;
use crate::register::Registrar;

pub struct Services {
    pub ingester: Ingester,
}

impl Services {
    pub async fn new(config: &Config) -> shared::Result<Self> {
        let registry = store::open(&config.shared.repository, config.shared.force_path_style).await?;
        Ok(Services {
            ingester: Ingester {
                registrar: Registrar::new(registry),
                max_model_bytes: config.max_model_bytes,
                sidecar_wait: config.sidecar_wait,
                rejected_prefix: config.rejected_prefix.clone(),
            },
        })
    }
}
