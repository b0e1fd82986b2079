//! Loaded models kept across warm invocations. Concurrent first requests for
//! one model share a single load, and a memory budget evicts the least
//! recently used model.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;

use super::LoadedModel;
use crate::error::Result;

/// Identifies one exact model file: a re-registered version with other bytes
/// gets another key, so it can never be served from a stale entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    pub name: String,
    pub version: u64,
    pub sha256: String,
}

#[derive(Debug)]
struct Slot {
    cell: Arc<OnceCell<Arc<LoadedModel>>>,
    last_used: u64,
    bytes: u64,
}

#[derive(Debug, Default)]
struct State {
    slots: HashMap<CacheKey, Slot>,
    clock: u64,
}

#[derive(Debug)]
pub struct ModelCache {
    budget_bytes: u64,
    state: Mutex<State>,
    loads: AtomicU64,
    evictions: AtomicU64,
}

impl ModelCache {
    pub fn new(budget_bytes: u64) -> Self {
        ModelCache { budget_bytes, state: Mutex::default(), loads: AtomicU64::new(0), evictions: AtomicU64::new(0) }
    }

    /// Returns the cached model for `key`, or runs `load` once to fill it while
    /// concurrent callers for the same key wait for that load. The flag is true
    /// when this call performed the load. A failed load is not cached.
    pub async fn get_or_load<F, Fut>(&self, key: &CacheKey, load: F) -> Result<(Arc<LoadedModel>, bool)>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<LoadedModel>>,
    {
        let cell = {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            state.clock += 1;
            let clock = state.clock;
            // Look up by reference first, so a warm request copies no key.
            if !state.slots.contains_key(key) {
                state.slots.insert(key.clone(), Slot { cell: Arc::new(OnceCell::new()), last_used: clock, bytes: 0 });
            }
            let slot = state.slots.get_mut(key).expect("inserted above");
            slot.last_used = clock;
            slot.cell.clone()
        };

        let loaded_here = AtomicBool::new(false);
        let result = cell
            .get_or_try_init(|| async {
                loaded_here.store(true, Ordering::Relaxed);
                load().await.map(Arc::new)
            })
            .await;
        match result {
            Ok(model) => {
                let model = model.clone();
                let loaded_here = loaded_here.into_inner();
                if loaded_here {
                    self.loads.fetch_add(1, Ordering::Relaxed);
                    self.admit(key, model.memory_estimate);
                }
                Ok((model, loaded_here))
            }
            Err(err) => {
                let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
                if state.slots.get(key).is_some_and(|slot| slot.cell.get().is_none()) {
                    state.slots.remove(key);
                }
                Err(err)
            }
        }
    }

    /// Records the size of a newly loaded model and evicts the least recently
    /// used others until the total fits the budget. The new model stays even
    /// when it alone exceeds the budget, because the request needs it.
    fn admit(&self, key: &CacheKey, bytes: u64) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(slot) = state.slots.get_mut(key) {
            slot.bytes = bytes;
        }
        loop {
            let total: u64 = state.slots.values().map(|slot| slot.bytes).sum();
            if total <= self.budget_bytes {
                break;
            }
            let victim = state
                .slots
                .iter()
                .filter(|(k, slot)| *k != key && slot.bytes > 0)
                .min_by_key(|(_, slot)| slot.last_used)
                .map(|(k, _)| k.clone());
            let Some(victim) = victim else { break };
            state.slots.remove(&victim);
            self.evictions.fetch_add(1, Ordering::Relaxed);
            tracing::info!(model = %victim.name, version = victim.version, budget_bytes = self.budget_bytes, "evicted model from cache");
        }
    }

    /// Number of loads performed since start, for tests and metrics.
    pub fn loads(&self) -> u64 {
        self.loads.load(Ordering::Relaxed)
    }

    pub fn evictions(&self) -> u64 {
        self.evictions.load(Ordering::Relaxed)
    }

    pub fn contains(&self, key: &CacheKey) -> bool {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.slots.get(key).is_some_and(|slot| slot.cell.get().is_some())
    }
}
