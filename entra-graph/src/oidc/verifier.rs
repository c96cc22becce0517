//! The blocking verifier: fetches and caches the issuer's keys around the sans-IO core.

use std::sync::{Mutex, PoisonError};
use std::time::SystemTime;

use super::keys::{KeyCache, KeySource};
use super::{verify_with_jwks, Jwks, OidcSettings, VerifiedToken, MAX_TOKEN_BYTES};
use crate::GraphError;

/// A blocking verifier with a cache of the issuer's keys. `Send + Sync`; share it.
///
/// Do not call it from inside an async runtime (it blocks the calling thread; it
/// refuses with [`GraphError::Config`] instead of panicking).
pub struct OidcVerifier {
    settings: OidcSettings,
    http: reqwest::Client,
    rt: tokio::runtime::Runtime,
    cache: Mutex<KeyCache>,
}

impl std::fmt::Debug for OidcVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcVerifier")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl OidcVerifier {
    /// A verifier for `settings` (checked here). Keys are fetched on first use.
    pub fn new(settings: OidcSettings) -> Result<Self, GraphError> {
        settings.validate()?;
        let http = settings
            .network
            .client_builder(None)?
            .timeout(settings.request_timeout)
            .build()
            .map_err(|e| GraphError::Config {
                setting: "http client",
                reason: e.to_string(),
            })?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| GraphError::Config {
                setting: "runtime",
                reason: e.to_string(),
            })?;
        Ok(OidcVerifier {
            cache: Mutex::new(KeyCache::new(settings.jwks_url.clone())),
            settings,
            http,
            rt,
        })
    }

    /// The settings.
    pub fn settings(&self) -> &OidcSettings {
        &self.settings
    }

    /// How many times the keys were fetched so far (diagnostics and tests).
    pub fn key_fetches(&self) -> u64 {
        self.cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .fetches
    }

    /// Verifies `token` at `now`: keys from the cache (fetched when missing or older than
    /// [`JWKS_MAX_AGE`](super::JWKS_MAX_AGE); refetched once on an unknown `kid`, rate-limited).
    pub fn verify(&self, token: &str, now: SystemTime) -> Result<VerifiedToken, GraphError> {
        // Cheap shape checks first: a malformed token never causes a fetch.
        if token.len() > MAX_TOKEN_BYTES || token.split('.').count() != 3 {
            return verify_with_jwks(token, &Jwks::default(), &self.settings, now);
        }
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if cache.needs_fetch() {
            self.refresh(&mut cache)?;
        }
        match verify_with_jwks(token, &cache.jwks(), &self.settings, now) {
            Err(GraphError::Oidc { claim: "kid", .. })
                if cache.refetch_for(token, self.settings.jwks_refetch_interval) =>
            {
                self.refresh(&mut cache)?;
                verify_with_jwks(token, &cache.jwks(), &self.settings, now)
            }
            other => other,
        }
    }

    fn refresh(&self, cache: &mut KeyCache) -> Result<(), GraphError> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(GraphError::Config {
                setting: "runtime",
                reason: "the blocking OIDC verifier was called from inside an async runtime".into(),
            });
        }
        let source = KeySource {
            http: &self.http,
            issuer: &self.settings.issuer,
        };
        self.rt.block_on(source.refresh(cache))
    }
}
