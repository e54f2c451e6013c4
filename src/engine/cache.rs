//! The one model cache. A process holds at most one loaded model, a mistral.rs engine or a
//! peer's model: loading another drops the one held first, so two models never share the
//! memory (and the footprint of each is its own). Both the `generation` group and the
//! candle peers load through here.

use anyhow::Result;
use std::any::Any;
use std::sync::{Arc, Mutex};

type Slot = Option<(String, Arc<dyn Any + Send + Sync>)>;

static SLOT: Mutex<Slot> = Mutex::new(None);

/// The model held under `key`, or `load`'s result after dropping whatever was held. Keys
/// name the kind of model too (`engine/…`, `candle/…`), so a key never maps to two types.
pub fn get_or_load<T: Any + Send + Sync>(
    key: &str,
    load: impl FnOnce() -> Result<T>,
) -> Result<Arc<T>> {
    let mut slot = SLOT.lock().expect("model cache lock");
    if let Some((k, m)) = slot.as_ref() {
        if k == key {
            if let Ok(t) = m.clone().downcast::<T>() {
                return Ok(t);
            }
        }
    }
    *slot = None; // drop the previous model before loading the next
    let m = Arc::new(load()?);
    *slot = Some((key.to_string(), m.clone()));
    Ok(m)
}

/// Drops the model held, if any (before something else needs the memory).
pub fn release() {
    *SLOT.lock().expect("model cache lock") = None;
}

/// The key of the model held now.
pub fn held() -> Option<String> {
    SLOT.lock()
        .expect("model cache lock")
        .as_ref()
        .map(|(k, _)| k.clone())
}
