//! Rate limiting of IdP calls across a bulk job's workers: a limiter and the IdP
//! decorator that waits for it before every call.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::idp::{
    CreationChallenge, Idp, IdpDeletion, IdpError, IdpOutcome, IdpPasskey, IdpUser,
    RegistrationRequest,
};

/// Spaces IdP calls to at most `per_sec` a second across threads.
pub(super) struct RateLimiter {
    interval: Duration,
    next: Mutex<Instant>,
}

impl RateLimiter {
    pub(super) fn new(per_sec: f64) -> Option<Self> {
        if !(per_sec.is_finite() && per_sec > 0.0) {
            return None;
        }
        Some(RateLimiter {
            interval: Duration::from_secs_f64((1.0 / per_sec).min(3600.0)),
            next: Mutex::new(Instant::now()),
        })
    }

    pub(super) fn acquire(&self) {
        let wait = {
            let mut next = self.next.lock().unwrap_or_else(PoisonError::into_inner);
            let now = Instant::now();
            let slot = (*next).max(now);
            *next = slot + self.interval;
            slot.saturating_duration_since(now)
        };
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
    }
}

/// An IdP whose every call waits for a rate-limiter slot.
pub(super) struct Throttled {
    pub(super) inner: Arc<dyn Idp>,
    pub(super) limiter: Arc<RateLimiter>,
}

impl Idp for Throttled {
    fn delegated(&self) -> Option<&dyn crate::idp::DelegatedRegistrar> {
        self.inner.delegated()
    }

    fn name(&self) -> &str {
        self.inner.name()
    }
    fn default_rp_id(&self) -> String {
        self.inner.default_rp_id()
    }
    fn bulk_started(&self) {
        self.inner.bulk_started();
    }
    fn bulk_ended(&self) {
        self.inner.bulk_ended();
    }
    fn bulk_users(&self, users: &[String]) {
        self.inner.bulk_users(users);
    }
    fn user(&self, user: &str) -> Result<IdpUser, IdpError> {
        self.limiter.acquire();
        self.inner.user(user)
    }
    fn preflight(&self, user: &str, aaguid: &[u8; 16], attested: bool) -> Result<(), IdpError> {
        self.limiter.acquire();
        self.inner.preflight(user, aaguid, attested)
    }
    fn creation_challenge(
        &self,
        user: &str,
        timeout_minutes: Option<u32>,
        origin: Option<&str>,
    ) -> Result<CreationChallenge, IdpError> {
        self.limiter.acquire();
        self.inner.creation_challenge(user, timeout_minutes, origin)
    }
    fn register(&self, user: &str, request: &RegistrationRequest) -> Result<IdpOutcome, IdpError> {
        self.limiter.acquire();
        self.inner.register(user, request)
    }
    fn delete(&self, user: &str, method_id: &str) -> Result<IdpDeletion, IdpError> {
        self.limiter.acquire();
        self.inner.delete(user, method_id)
    }
    fn list(&self, user: &str) -> Result<Vec<IdpPasskey>, IdpError> {
        self.limiter.acquire();
        self.inner.list(user)
    }
    fn check_connection(&self) -> Result<u64, IdpError> {
        self.limiter.acquire();
        self.inner.check_connection()
    }
    fn search_users(&self, prefix: &str, top: u32) -> Result<Vec<IdpUser>, IdpError> {
        self.limiter.acquire();
        self.inner.search_users(prefix, top)
    }
    fn phishing_resistant_left(
        &self,
        user: &str,
        method_id: &str,
    ) -> Result<Option<usize>, IdpError> {
        self.limiter.acquire();
        self.inner.phishing_resistant_left(user, method_id)
    }
    fn find_user_by(&self, property: &str, value: &str) -> Result<Option<IdpUser>, IdpError> {
        self.limiter.acquire();
        self.inner.find_user_by(property, value)
    }
    fn temporary_pass(
        &self,
        user: &str,
        lifetime_minutes: u32,
        usable_once: bool,
    ) -> Result<Option<crate::idp::TemporaryPass>, IdpError> {
        self.limiter.acquire();
        self.inner
            .temporary_pass(user, lifetime_minutes, usable_once)
    }
    fn leavers(&self, resume: Option<&str>) -> Result<Option<crate::idp::Leavers>, IdpError> {
        self.limiter.acquire();
        self.inner.leavers(resume)
    }
    fn challenge_limit(&self) -> Option<crate::idp::ChallengeLimit> {
        self.inner.challenge_limit()
    }
    fn provenance_support(&self) -> Result<(), String> {
        self.inner.provenance_support()
    }
    fn record_provenance(
        &self,
        user: &str,
        method_id: &str,
        request: &crate::idp::ProvenanceRequest,
    ) -> Result<crate::idp::ProvenanceRecorded, IdpError> {
        self.limiter.acquire();
        self.inner.record_provenance(user, method_id, request)
    }
    fn sign_in_blocks(
        &self,
        user_id: &str,
        aaguids: &[[u8; 16]],
    ) -> Result<Option<Vec<Option<crate::idp::SignInBlocked>>>, IdpError> {
        self.limiter.acquire();
        self.inner.sign_in_blocks(user_id, aaguids)
    }
    fn revoke_sign_in_sessions(&self, user: &str) -> Result<bool, IdpError> {
        self.limiter.acquire();
        self.inner.revoke_sign_in_sessions(user)
    }
    fn has_passkey(&self, user: &str, method_id: &str) -> Result<Option<bool>, IdpError> {
        self.limiter.acquire();
        self.inner.has_passkey(user, method_id)
    }
    fn sms_readiness(
        &self,
        group: Option<&str>,
    ) -> Result<Option<crate::idp::ReadinessReport>, IdpError> {
        self.limiter.acquire();
        self.inner.sms_readiness(group)
    }
}
