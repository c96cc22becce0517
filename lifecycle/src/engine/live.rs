//! The keys whose IdP side effects a flow of this engine is making right now.
//!
//! A journal entry can be claimed again by the station that holds it (a restarted node
//! takes over what it left at once). Within one running process that would let a journal
//! replay claim the entry of a flow that is still calling the IdP, and both would call it:
//! the replay leaves the entries of these keys alone.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// Keys held by running flows, counted (two flows may touch one key).
#[derive(Clone, Default)]
pub(super) struct LiveKeys(Arc<Mutex<HashMap<String, usize>>>);

/// Holds a key live until dropped.
pub(super) struct LiveGuard {
    keys: LiveKeys,
    key_id: String,
}

impl LiveKeys {
    /// Marks `key_id` live until the guard is dropped.
    pub(super) fn hold(&self, key_id: &str) -> LiveGuard {
        *self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(key_id.to_owned())
            .or_insert(0) += 1;
        LiveGuard {
            keys: self.clone(),
            key_id: key_id.to_owned(),
        }
    }

    /// Whether a flow of this engine holds `key_id`.
    pub(super) fn holds(&self, key_id: &str) -> bool {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(key_id)
    }
}

impl Drop for LiveGuard {
    fn drop(&mut self) {
        let mut m = self.keys.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = m.get_mut(&self.key_id) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.key_id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::LiveKeys;

    #[test]
    fn a_key_is_live_while_any_guard_holds_it() {
        let live = LiveKeys::default();
        let a = live.hold("k1");
        let b = live.clone().hold("k1");
        assert!(live.holds("k1"));
        assert!(!live.holds("k2"));
        drop(a);
        assert!(live.holds("k1"), "the second flow still holds it");
        drop(b);
        assert!(!live.holds("k1"));
    }
}
