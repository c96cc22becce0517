//! The issuer's keys, fetched and cached: one piece shared by the blocking ID-token
//! verifier ([`super::OidcVerifier`]) and the asynchronous access-token verifier
//! ([`super::AccessTokenVerifier`]). Only the locking and the way each waits differ.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{check_url, header_kid, Jwks, JWKS_MAX_AGE, MAX_KEYS_DOCUMENT_BYTES};
use crate::GraphError;

/// What a verifier remembers of the issuer's keys.
pub(super) struct KeyCache {
    jwks: Option<Arc<Jwks>>,
    fetched_at: Option<Instant>,
    /// From settings, or found through discovery.
    jwks_url: Option<String>,
    /// Fetch attempts so far (diagnostics and tests).
    pub(super) fetches: u64,
}

impl KeyCache {
    /// An empty cache; `jwks_url` skips discovery when set.
    pub(super) fn new(jwks_url: Option<String>) -> Self {
        KeyCache {
            jwks: None,
            fetched_at: None,
            jwks_url,
            fetches: 0,
        }
    }

    /// Whether the keys must be fetched before use: never fetched, or older than
    /// [`JWKS_MAX_AGE`].
    pub(super) fn needs_fetch(&self) -> bool {
        self.jwks.is_none() || self.fetched_at.is_none_or(|t| t.elapsed() >= JWKS_MAX_AGE)
    }

    /// The keys held now (empty before the first successful fetch).
    pub(super) fn jwks(&self) -> Arc<Jwks> {
        self.jwks.clone().unwrap_or_default()
    }

    /// Whether a token refused for its `kid` should cause one more fetch: it names a key
    /// the cache does not hold and the last fetch is at least `interval` old (so a
    /// stream of tokens with made-up key ids cannot make us hammer the issuer).
    pub(super) fn refetch_for(&self, token: &str, interval: Duration) -> bool {
        let jwks = self.jwks();
        header_kid(token).is_some_and(|k| !jwks.has_kid(&k))
            && self.fetched_at.is_none_or(|t| t.elapsed() >= interval)
    }
}

/// Fetches an issuer's discovery document and key set over HTTPS, bounded in size.
pub(super) struct KeySource<'a> {
    /// The client (trust roots, proxy and timeout already set).
    pub(super) http: &'a reqwest::Client,
    /// The issuer exactly as configured; discovery must name the same one.
    pub(super) issuer: &'a str,
}

impl KeySource<'_> {
    /// Fetches the keys into `cache`. The attempt is counted and timed before it is made,
    /// so failures are rate-limited as well.
    pub(super) async fn refresh(&self, cache: &mut KeyCache) -> Result<(), GraphError> {
        cache.fetches += 1;
        cache.fetched_at = Some(Instant::now());
        let url = match &cache.jwks_url {
            Some(u) => u.clone(),
            None => {
                let u = self.discover().await?;
                cache.jwks_url = Some(u.clone());
                u
            }
        };
        let jwks = Jwks::from_json(&self.get(&url).await?)?;
        tracing::debug!(keys = jwks.len(), url = %url, "issuer keys fetched");
        cache.jwks = Some(Arc::new(jwks));
        Ok(())
    }

    async fn discover(&self) -> Result<String, GraphError> {
        let url = format!(
            "{}/.well-known/openid-configuration",
            self.issuer.trim_end_matches('/')
        );
        let body = self.get(&url).await?;
        let doc: Value = serde_json::from_slice(&body).map_err(|e| GraphError::OidcKeys {
            reason: format!("discovery document is not JSON: {e}"),
        })?;
        // OpenID Connect Discovery 1.0, 4.3: the document's issuer must be the one asked.
        if doc.get("issuer").and_then(Value::as_str) != Some(self.issuer) {
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
