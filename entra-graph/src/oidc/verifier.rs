//! The blocking verifier: fetches and caches the issuer's keys around the sans-IO core.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Instant, SystemTime};

use serde_json::Value;

use super::{
    check_url, header_kid, verify_with_jwks, Jwks, OidcSettings, VerifiedToken, JWKS_MAX_AGE,
    MAX_KEYS_DOCUMENT_BYTES, MAX_TOKEN_BYTES,
};
use crate::GraphError;

struct Cache {
    jwks: Option<Arc<Jwks>>,
    fetched_at: Option<Instant>,
    /// From settings, or found through discovery.
    jwks_url: Option<String>,
    fetches: u64,
}

/// A blocking verifier with a cache of the issuer's keys. `Send + Sync`; share it.
///
/// Do not call it from inside an async runtime (it blocks the calling thread; it
/// refuses with [`GraphError::Config`] instead of panicking).
pub struct OidcVerifier {
    settings: OidcSettings,
    http: reqwest::Client,
    rt: tokio::runtime::Runtime,
    cache: Mutex<Cache>,
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
            cache: Mutex::new(Cache {
                jwks: None,
                fetched_at: None,
                jwks_url: settings.jwks_url.clone(),
                fetches: 0,
            }),
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
    /// [`JWKS_MAX_AGE`]; refetched once on an unknown `kid`, rate-limited).
    pub fn verify(&self, token: &str, now: SystemTime) -> Result<VerifiedToken, GraphError> {
        // Cheap shape checks first: a malformed token never causes a fetch.
        if token.len() > MAX_TOKEN_BYTES || token.split('.').count() != 3 {
            return verify_with_jwks(token, &Jwks::default(), &self.settings, now);
        }
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        let stale = cache.fetched_at.is_none_or(|t| t.elapsed() >= JWKS_MAX_AGE);
        if cache.jwks.is_none() || stale {
            self.refresh(&mut cache)?;
        }
        let jwks = cache.jwks.clone().unwrap_or_default();
        match verify_with_jwks(token, &jwks, &self.settings, now) {
            Err(GraphError::Oidc { claim: "kid", .. })
                if header_kid(token).is_some_and(|k| !jwks.has_kid(&k))
                    && cache
                        .fetched_at
                        .is_none_or(|t| t.elapsed() >= self.settings.jwks_refetch_interval) =>
            {
                self.refresh(&mut cache)?;
                let jwks = cache.jwks.clone().unwrap_or_default();
                verify_with_jwks(token, &jwks, &self.settings, now)
            }
            other => other,
        }
    }

    fn refresh(&self, cache: &mut Cache) -> Result<(), GraphError> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(GraphError::Config {
                setting: "runtime",
                reason: "the blocking OIDC verifier was called from inside an async runtime".into(),
            });
        }
        // Counted (and timed) before the attempt, so failures are rate-limited too.
        cache.fetches += 1;
        cache.fetched_at = Some(Instant::now());
        let url = match &cache.jwks_url {
            Some(u) => u.clone(),
            None => {
                let u = self.rt.block_on(self.discover())?;
                cache.jwks_url = Some(u.clone());
                u
            }
        };
        let body = self.rt.block_on(self.get(&url))?;
        let jwks = Jwks::from_json(&body)?;
        tracing::debug!(keys = jwks.len(), url = %url, "issuer keys fetched");
        cache.jwks = Some(Arc::new(jwks));
        Ok(())
    }

    async fn discover(&self) -> Result<String, GraphError> {
        let url = format!(
            "{}/.well-known/openid-configuration",
            self.settings.issuer.trim_end_matches('/')
        );
        let body = self.get(&url).await?;
        let doc: Value = serde_json::from_slice(&body).map_err(|e| GraphError::OidcKeys {
            reason: format!("discovery document is not JSON: {e}"),
        })?;
        // OpenID Connect Discovery 1.0, 4.3: the document's issuer must be the one asked.
        if doc.get("issuer").and_then(Value::as_str) != Some(self.settings.issuer.as_str()) {
            return Err(GraphError::OidcKeys {
                reason: "discovery document names a different issuer".into(),
            });
        }
        let jwks_uri =
            doc.get("jwks_uri")
                .and_then(Value::as_str)
                .ok_or_else(|| GraphError::OidcKeys {
                    reason: "discovery document has no jwks_uri".into(),
                })?;
        check_url(jwks_uri).map_err(|reason| GraphError::OidcKeys { reason })?;
        Ok(jwks_uri.to_owned())
    }

    async fn get(&self, url: &str) -> Result<Vec<u8>, GraphError> {
        let fail = |reason: String| GraphError::OidcKeys {
            reason: format!("{url}: {reason}"),
        };
        let mut resp = self
            .http
            .get(url)
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| crate::net::untrusted(&e).unwrap_or_else(|| fail(e.to_string())))?;
        let status = resp.status().as_u16();
        if !(200..300).contains(&status) {
            return Err(fail(format!("HTTP {status}")));
        }
        let mut out = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| fail(e.to_string()))? {
            if out.len() + chunk.len() > MAX_KEYS_DOCUMENT_BYTES {
                return Err(fail(format!(
                    "response larger than {MAX_KEYS_DOCUMENT_BYTES} bytes"
                )));
            }
            out.extend_from_slice(&chunk);
        }
        Ok(out)
    }
}
