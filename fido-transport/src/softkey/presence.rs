//! The simulated user: the presence policy, its run-time control handle, and the
//! caller's per-request context.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::Progress;

/// How the simulated user answers a request for presence (a touch).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum UserPresence {
    /// The user touches the key at once.
    Approve,
    /// The user refuses (CTAP2_ERR_OPERATION_DENIED).
    Deny,
    /// The user never touches (CTAP2_ERR_USER_ACTION_TIMEOUT).
    TimeOut,
    /// The user touches after this long (real time; cancellable through
    /// [`Presence::is_cancelled`], which gives CTAP2_ERR_KEEPALIVE_CANCEL).
    Delay(Duration),
}

#[derive(Debug)]
struct Control {
    presence: UserPresence,
    fingerprint_matches: bool,
}

/// Changes the simulated user's behaviour while the authenticator runs (from any
/// thread). Cheap to clone.
#[derive(Clone, Debug)]
pub struct PresenceControl(Arc<Mutex<Control>>);

impl PresenceControl {
    pub(super) fn new(presence: UserPresence) -> Self {
        PresenceControl(Arc::new(Mutex::new(Control {
            presence,
            fingerprint_matches: true,
        })))
    }
    fn lock(&self) -> std::sync::MutexGuard<'_, Control> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
    /// Sets the user-presence policy.
    pub fn set_presence(&self, presence: UserPresence) {
        self.lock().presence = presence;
    }
    /// The current user-presence policy.
    pub fn presence(&self) -> UserPresence {
        self.lock().presence
    }
    /// Whether the simulated finger matches an enrolled template (default true).
    pub fn set_fingerprint_matches(&self, matches: bool) {
        self.lock().fingerprint_matches = matches;
    }
    /// Whether the simulated finger matches.
    pub fn fingerprint_matches(&self) -> bool {
        self.lock().fingerprint_matches
    }
}

/// The caller's side of one request: where keepalive status goes and whether the
/// request was cancelled.
pub trait Presence {
    /// The authenticator is processing or waits for the user ("touch your key").
    fn progress(&mut self, progress: Progress);
    /// True if the platform cancelled the request (checked while waiting for the user).
    fn is_cancelled(&mut self) -> bool {
        false
    }
}

impl<F: FnMut(Progress)> Presence for F {
    fn progress(&mut self, progress: Progress) {
        self(progress)
    }
}

/// A [`Presence`] that ignores progress and is never cancelled.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoPresence;

impl Presence for NoPresence {
    fn progress(&mut self, _progress: Progress) {}
}
