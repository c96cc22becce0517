//! The blocking Graph client: a facade over an async core on a private tokio runtime.
//!
//! Do not call it from inside an async runtime (it blocks the calling thread).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;

use crate::auth::Credential;
use crate::config::{ApiVersion, GraphConfig};
use crate::http::{path_template, Core, Failure, WaitBudget};
use crate::ids::{decode_base64, matches_credential};
use crate::wire::{parse_json, CreationOptions, Fido2Method, Fido2Policy, Page, RegistrationBody};
use crate::GraphError;

mod batch;
mod cache;
mod cms;
mod directory;
mod prefetch;
pub mod provenance;
mod readiness;
mod signin;

pub use cache::{POLICY_TTL, USER_TTL};
pub use prefetch::USERS_PER_BATCH;

pub use cms::{
    UserKey, UsersDelta, PERMISSION_METHODS_READ, PERMISSION_REVOKE_SESSIONS, TAP_MAX_MINUTES,
    TAP_MIN_MINUTES,
};

pub use readiness::{Readiness, ReadinessUser, GUEST_REFUSAL, READINESS_METHOD_TYPES};

pub use directory::{
    CHECK_MEMBER_GROUPS_MAX, PERMISSION_GROUP_MEMBER_READ, PERMISSION_POLICY_READ,
    PERMISSION_USER_READ,
};

/// Most requests in one JSON `$batch`.
pub const MAX_BATCH: usize = 20;
/// How many times a registration refused after an unknown outcome lists the user's
/// passkeys (with backoff between) looking for a commit that is not listed yet.
pub const RECONCILE_LISTINGS: u32 = 5;
/// Most pages followed for one listing (guards against a nextLink loop).
pub const MAX_PAGES: usize = 1000;

/// The user id the connection check reads the passkeys of: the nil GUID, which names
/// no user.
pub const CONNECTION_CHECK_USER: &str = "00000000-0000-0000-0000-000000000000";

/// The Graph error code of a 404 for a user (or any directory object) that does not exist
/// or that the app may not see, as opposed to a missing authentication method.
pub const USER_NOT_FOUND: &str = "Request_ResourceNotFound";

/// Percent-encodes one URL path segment (ids are opaque: `+`, `/`, `=` included).
pub fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'@') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Counters of what the client did (for diagnostics and tests).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClientStats {
    /// HTTP requests sent to Graph.
    pub requests: u64,
    /// Retries made.
    pub retries: u64,
    /// Tokens acquired.
    pub tokens: u64,
    /// Registrations whose unknown outcome was reconciled by listing.
    pub reconciliations: u64,
    /// Requests answered 429 (inner `$batch` requests counted one by one).
    pub throttled: u64,
}

/// A registered passkey, with what an audit record needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Registration {
    /// The method Graph returned (or the listing found).
    pub method: Fido2Method,
    /// `request-id` of the POST that created it (`None` when found by reconciliation).
    pub request_id: Option<String>,
    /// True when an unknown outcome was resolved by listing the user's methods.
    pub reconciled: bool,
}

/// A deleted passkey, with what an audit record needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deletion {
    /// `request-id` of the DELETE that did it (or of the 404 that showed it gone).
    pub request_id: Option<String>,
    /// True when a retry after an unknown outcome found it already gone.
    pub already_gone: bool,
}

/// What a connection check found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionReport {
    /// A token was acquired.
    pub token_ok: bool,
    /// Time for the token and one cheap read.
    pub elapsed: Duration,
}

/// The Microsoft Graph passkey client.
pub struct GraphClient {
    rt: tokio::runtime::Runtime,
    core: Arc<Core>,
    cache: Arc<cache::Cache>,
}

impl std::fmt::Debug for GraphClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphClient")
            .field("config", &self.core.config)
            .field("credential", &self.core.credential)
            .finish()
    }
}

impl GraphClient {
    /// Builds a client; validates the configuration.
    pub fn new(config: GraphConfig, credential: Credential) -> Result<Self, GraphError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| GraphError::Config {
                setting: "runtime",
                reason: e.to_string(),
            })?;
        let core = Arc::new(Core::new(config, credential)?);
        Ok(GraphClient {
            rt,
            core,
            cache: Arc::default(),
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &GraphConfig {
        &self.core.config
    }

    /// What the client has done so far.
    pub fn stats(&self) -> ClientStats {
        let c = &self.core.counters;
        ClientStats {
            requests: c.requests.load(Ordering::Relaxed),
            retries: c.retries.load(Ordering::Relaxed),
            tokens: c.tokens.load(Ordering::Relaxed),
            reconciliations: c.reconciliations.load(Ordering::Relaxed),
            throttled: c.throttled.load(Ordering::Relaxed),
        }
    }

    /// A bulk job starts using this client: until the matching
    /// [`GraphClient::end_job`], the pre-flight reads the FIDO2 policy once per
    /// [`POLICY_TTL`] (again after a policy-shaped refusal) and reuses a user read
    /// within [`USER_TTL`]. Jobs may overlap (counted).
    pub fn begin_job(&self) {
        self.cache.begin_job();
    }

    /// A bulk job stopped using this client (see [`GraphClient::begin_job`]); the caches
    /// are emptied when the last one ends.
    pub fn end_job(&self) {
        self.cache.end_job();
    }

    /// What the process-wide limiters of this client's tenant have seen: (resource
    /// units, writes). Shared with every other client of the same tenant and Graph base.
    pub fn pace_stats(&self) -> (crate::pace::PaceStats, crate::pace::PaceStats) {
        (
            self.core.read_limiter.stats(),
            self.core.write_limiter.stats(),
        )
    }

    /// Runs a future to completion on the private runtime. Refuses (instead of
    /// panicking) when called from inside an async runtime.
    fn block<T>(&self, f: impl std::future::Future<Output = T>) -> Result<T, GraphError> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(GraphError::Config {
                setting: "runtime",
                reason: "the blocking client was called from inside an async runtime; \
                         call it from a plain thread (e.g. spawn_blocking)"
                    .into(),
            });
        }
        Ok(self.rt.block_on(f))
    }

    fn root(&self) -> String {
        self.core.config.graph_root()
    }

    fn methods_url(&self, user: &str) -> String {
        format!(
            "{}/users/{}/authentication/fido2Methods",
            self.root(),
            encode_segment(user)
        )
    }

    fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        url: &str,
        shape: &'static str,
    ) -> Result<T, GraphError> {
        let core = self.core.clone();
        let reply =
            self.block(async move { core.request(Method::GET, url, None, true).await })??;
        Ok(parse_json(&reply.body, shape)?)
    }

    fn get_all<T: serde::de::DeserializeOwned>(
        &self,
        first: String,
        shape: &'static str,
    ) -> Result<Vec<T>, GraphError> {
        let mut out = Vec::new();
        let mut url = Some(first);
        let mut pages = 0;
        while let Some(u) = url.take() {
            pages += 1;
            if pages > MAX_PAGES {
                return Err(GraphError::InvalidInput {
                    field: "@odata.nextLink",
                    reason: format!("more than {MAX_PAGES} pages"),
                });
            }
            let page: Page<T> = self.get_json(&u, shape)?;
            out.extend(page.value);
            url = page.next_link;
        }
        Ok(out)
    }

    /// Acquires a token and makes one cheap read that a passkey-only app
    /// (`UserAuthMethod-Passkey.ReadWrite.All`, nothing else) may make: the passkeys of
    /// a user that does not exist (the nil GUID). Graph checks the permission first, so
    /// a 403 means the app may not manage passkeys; the expected 404 for the user (or a
    /// 200) means the token and the permission work.
    pub fn check_connection(&self) -> Result<ConnectionReport, GraphError> {
        let start = std::time::Instant::now();
        let core = self.core.clone();
        self.block(async move { core.token().await })??;
        match self.list_methods(CONNECTION_CHECK_USER) {
            Ok(_) => {}
            Err(GraphError::Api {
                status: 404,
                ref code,
                ..
            }) if !code.is_empty() => {}
            Err(e) => return Err(e),
        }
        Ok(ConnectionReport {
            token_ok: true,
            elapsed: start.elapsed(),
        })
    }

    /// Creation options for a user (id or UPN). `challenge_timeout_minutes` needs beta
    /// for anything but 5; it is sent in the function-call form.
    pub fn creation_options(
        &self,
        user: &str,
        challenge_timeout_minutes: Option<u32>,
    ) -> Result<CreationOptions, GraphError> {
        self.core
            .config
            .check_challenge_timeout(challenge_timeout_minutes)?;
        let base = self.methods_url(user);
        let url = match (self.core.config.version, challenge_timeout_minutes) {
            (ApiVersion::Beta, Some(m)) => {
                format!("{base}/creationOptions(challengeTimeoutInMinutes={m})")
            }
            _ => format!("{base}/creationOptions"),
        };
        let core = self.core.clone();
        let reply = self
            .block(async move { core.request(Method::GET, &url, None, true).await })?
            .map_err(GraphError::from)
            .inspect_err(|e| self.cache.refused(e, false))?;
        Ok(CreationOptions::from_json(&reply.body)?)
    }

    /// All of a user's passkeys (follows `@odata.nextLink`).
    pub fn list_methods(&self, user: &str) -> Result<Vec<Fido2Method>, GraphError> {
        self.get_all(self.methods_url(user), "fido2Methods page")
    }

    /// One passkey by method id.
    pub fn get_method(&self, user: &str, method_id: &str) -> Result<Fido2Method, GraphError> {
        self.get_json(
            &format!("{}/{}", self.methods_url(user), encode_segment(method_id)),
            "fido2AuthenticationMethod",
        )
    }

    /// Deletes a passkey. A 404 counts as "already gone" (`already_gone`, also after an
    /// unknown first outcome) only when it is the method that is missing: a 404 naming
    /// the user (`Request_ResourceNotFound`: an unknown or renamed user, or one the app
    /// may not see) is returned as the error, and otherwise the user's passkeys are
    /// listed, which must succeed (the user resolves) and must not hold the method.
    pub fn delete_method(&self, user: &str, method_id: &str) -> Result<Deletion, GraphError> {
        match self.delete_attempts(user, method_id) {
            Err(e) if e.status() == Some(404) => self.confirm_gone(user, method_id, e),
            other => other,
        }
    }

    /// After a 404 to a deletion: gone only if the user resolves and does not hold it.
    fn confirm_gone(
        &self,
        user: &str,
        method_id: &str,
        not_found: GraphError,
    ) -> Result<Deletion, GraphError> {
        if matches!(&not_found, GraphError::Api { code, .. } if code == USER_NOT_FOUND) {
            return Err(not_found);
        }
        let methods = self.list_methods(user)?;
        if methods.iter().any(|m| m.id == method_id) {
            return Err(not_found);
        }
        Ok(Deletion {
            request_id: not_found.request_id().map(str::to_owned),
            already_gone: true,
        })
    }

    fn delete_attempts(&self, user: &str, method_id: &str) -> Result<Deletion, GraphError> {
        let url = format!("{}/{}", self.methods_url(user), encode_segment(method_id));
        let core = self.core.clone();
        self.block(async move {
            let mut uncertain = false;
            let max = core.config.retry.max_attempts;
            let endpoint = path_template(&url, &core.config.graph_base);
            let mut budget = WaitBudget::new(core.config.retry.max_total_wait);
            for attempt in 1..=max {
                let (delay, e) = match core.exchange(Method::DELETE, &url, None).await {
                    Ok(reply) => {
                        return Ok(Deletion {
                            request_id: reply.request_id,
                            already_gone: false,
                        })
                    }
                    Err(Failure::Final(e)) => {
                        if uncertain && e.status() == Some(404) {
                            tracing::info!(
                                "graph deletion answered 404 after an unknown outcome"
                            );
                        }
                        return Err(e);
                    }
                    Err(Failure::Retry(d, e)) => {
                        // Not processed (throttled, or never sent): no uncertainty.
                        let d = if d.is_zero() {
                            core.backoff(attempt)
                        } else {
                            d
                        };
                        if attempt == max || d > core.config.retry.max_retry_after {
                            return Err(e);
                        }
                        (d, e)
                    }
                    Err(Failure::Unknown(Some(d), e)) => {
                        if attempt == max || d > core.config.retry.max_retry_after {
                            return Err(e);
                        }
                        uncertain = true;
                        (d, e)
                    }
                    Err(Failure::Unknown(None, e)) => {
                        if attempt == max {
                            return Err(e);
                        }
                        uncertain = true;
                        (core.backoff(attempt), e)
                    }
                };
                let e = budget.spend(&endpoint, attempt, delay, e)?;
                core.counters.retries.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(attempt, delay_ms = delay.as_millis() as u64, uncertain, error = %e, "retrying graph deletion");
                tokio::time::sleep(delay).await;
            }
            Err(GraphError::Transport {
                reason: "no attempt made".into(),
            })
        })?
    }

    /// Registers a passkey. A POST whose outcome is unknown (timeout, dropped
    /// connection, 5xx) is reconciled by listing the user's methods for the credential
    /// id before any retry: never two passkeys for one credential, never a silent loss.
    ///
    /// A refusal that may come from the tenant's policy (403, or a 400 other than an
    /// expired challenge) drops the cached FIDO2 policy, so the next pre-flight reads it
    /// again.
    pub fn register(
        &self,
        user: &str,
        body: &RegistrationBody,
    ) -> Result<Registration, GraphError> {
        self.register_once(user, body).inspect_err(|e| {
            if matches!(e, GraphError::Api { .. }) {
                self.cache.refused(e, cache::is_expired_challenge(e));
            }
        })
    }

    fn register_once(
        &self,
        user: &str,
        body: &RegistrationBody,
    ) -> Result<Registration, GraphError> {
        crate::webauthn::validate_display_name(&body.display_name)?;
        let credential_id = body.public_key_credential.id.clone();
        // Our own id: read as the plain base64url we sent, never in the padding-digit
        // form (which misreads some ids); methods are matched by encoding.
        let credential_bytes =
            decode_base64(&credential_id, "publicKeyCredential.id").unwrap_or_default();
        let bytes = serde_json::to_vec(body).map_err(|e| GraphError::InvalidInput {
            field: "registration body",
            reason: e.to_string(),
        })?;
        let url = self.methods_url(user);
        let max = self.core.config.retry.max_attempts;
        let mut budget = WaitBudget::new(self.core.config.retry.max_total_wait);
        let mut last_unknown: Option<GraphError> = None;
        for attempt in 1..=max {
            let core = self.core.clone();
            let res =
                self.block(async { core.request(Method::POST, &url, Some(&bytes), false).await })?;
            match res {
                Ok(reply) => {
                    return Ok(Registration {
                        method: parse_json(&reply.body, "fido2AuthenticationMethod")?,
                        request_id: reply.request_id,
                        reconciled: false,
                    })
                }
                Err(Failure::Unknown(delay, e)) => {
                    self.core
                        .counters
                        .reconciliations
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(
                        credential_id = %credential_id,
                        error = %e,
                        "registration outcome unknown; listing the user's methods before any retry"
                    );
                    // Did it commit? Listing is idempotent and retried on its own.
                    let methods = self.list_methods(user).map_err(|le| {
                        GraphError::RegistrationOutcomeUnknown {
                            credential_id: credential_id.clone(),
                            reason: format!("{e}; reconciliation listing failed: {le}"),
                        }
                    })?;
                    if let Some(m) = methods
                        .into_iter()
                        .find(|m| matches_credential(&m.id, &credential_bytes))
                    {
                        tracing::info!(credential_id = %credential_id, "registration had committed");
                        return Ok(Registration {
                            method: m,
                            request_id: None,
                            reconciled: true,
                        });
                    }
                    if attempt < max {
                        let d = delay
                            .unwrap_or_else(|| self.core.backoff(attempt))
                            .min(self.core.config.retry.max_retry_after);
                        let endpoint = path_template(&url, &self.core.config.graph_base);
                        match budget.spend(&endpoint, attempt, d, e) {
                            Ok(e) => last_unknown = Some(e),
                            Err(exhausted) => {
                                last_unknown = Some(exhausted);
                                break;
                            }
                        }
                        tracing::info!(credential_id = %credential_id, "registration had not committed; sending again");
                        std::thread::sleep(d);
                    } else {
                        last_unknown = Some(e);
                    }
                }
                Err(other) => {
                    let e: GraphError = other.into();
                    // After an unknown outcome, a refusal (e.g. "already registered")
                    // may mean the earlier attempt committed late, or committed and is
                    // not listed yet (directory reads are eventually consistent): look
                    // again, a few times with backoff.
                    if last_unknown.is_some() {
                        for round in 1..=RECONCILE_LISTINGS {
                            if let Ok(methods) = self.list_methods(user) {
                                if let Some(m) = methods
                                    .into_iter()
                                    .find(|m| matches_credential(&m.id, &credential_bytes))
                                {
                                    return Ok(Registration {
                                        method: m,
                                        request_id: None,
                                        reconciled: true,
                                    });
                                }
                            }
                            if round < RECONCILE_LISTINGS {
                                std::thread::sleep(self.core.backoff(round + 2));
                            }
                        }
                    }
                    return Err(e);
                }
            }
        }
        Err(GraphError::RegistrationOutcomeUnknown {
            credential_id,
            reason: last_unknown.map(|e| e.to_string()).unwrap_or_default(),
        })
    }

    /// The tenant's FIDO2 authentication method policy.
    ///
    /// On v1.0 `passkeyProfiles` is a non-contained navigation property and may be left
    /// out of the default answer: when `defaultPasskeyProfile` is set and no profiles
    /// came back, the policy is fetched again with `$expand=passkeyProfiles`; a policy
    /// that still names a default profile it does not contain is refused
    /// ([`crate::wire::WireError::Shape`]) instead of being judged by the deprecated
    /// top-level fields.
    pub fn fido2_policy(&self) -> Result<Fido2Policy, GraphError> {
        const SHAPE: &str = "fido2AuthenticationMethodConfiguration";
        let url = format!(
            "{}/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/fido2",
            self.root()
        );
        let policy: Fido2Policy = self.get_json(&url, SHAPE)?;
        if policy.default_passkey_profile.is_none() || !policy.passkey_profiles.is_empty() {
            return Ok(policy);
        }
        let policy: Fido2Policy =
            self.get_json(&format!("{url}?$expand=passkeyProfiles"), SHAPE)?;
        if policy.default_passkey_profile.is_some() && policy.passkey_profiles.is_empty() {
            return Err(crate::wire::WireError::Shape {
                shape: SHAPE,
                reason: "defaultPasskeyProfile is set but passkeyProfiles is empty even with $expand=passkeyProfiles".into(),
            }
            .into());
        }
        Ok(policy)
    }

    /// Deletes many passkeys of one user through `$batch`; one result per id, in order.
    /// An id already gone after an uncertain attempt counts as deleted.
    pub fn batch_delete(
        &self,
        user: &str,
        method_ids: &[String],
    ) -> Vec<Result<Deletion, GraphError>> {
        let reqs = method_ids
            .iter()
            .map(|id| {
                (
                    Method::DELETE,
                    format!(
                        "/users/{}/authentication/fido2Methods/{}",
                        encode_segment(user),
                        encode_segment(id)
                    ),
                )
            })
            .collect();
        self.batch(reqs)
            .into_iter()
            .map(|r| {
                r.map(|o| Deletion {
                    request_id: o.request_id,
                    already_gone: o.already_gone,
                })
            })
            .collect()
    }

    /// Lists the passkeys of many users through `$batch`; one result per user, in order.
    pub fn batch_list(&self, users: &[String]) -> Vec<Result<Vec<Fido2Method>, GraphError>> {
        let reqs = users
            .iter()
            .map(|u| {
                (
                    Method::GET,
                    format!("/users/{}/authentication/fido2Methods", encode_segment(u)),
                )
            })
            .collect();
        self.batch(reqs)
            .into_iter()
            .map(|r| {
                let o = r?;
                let page: Page<Fido2Method> = parse_json(&o.body, "fido2Methods page")?;
                let mut all = page.value;
                if let Some(next) = page.next_link {
                    all.extend(self.get_all::<Fido2Method>(next, "fido2Methods page")?);
                }
                Ok(all)
            })
            .collect()
    }
}

/// How deep the pre-flight used to follow groups nested in target groups by paging
/// members. It now asks Graph (`checkMemberGroups`, transitive at any depth); the
/// constant stays for callers that name it.
pub const MAX_GROUP_NESTING: usize = 4;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_percent_encoded() {
        assert_eq!(encode_segment("kim@contoso.com"), "kim@contoso.com");
        assert_eq!(encode_segment("ba/AF2t2+Xr=="), "ba%2FAF2t2%2BXr%3D%3D");
        assert_eq!(encode_segment("a b'c"), "a%20b%27c");
    }

    #[test]
    fn refuses_to_block_inside_a_runtime() {
        let c = GraphClient::new(
            GraphConfig::new("t"),
            Credential::ClientSecret {
                client_id: "a".into(),
                secret: "s".into(),
            },
        )
        .unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let e = rt.block_on(async { c.user("kim") }).unwrap_err();
        assert!(matches!(
            e,
            GraphError::Config {
                setting: "runtime",
                ..
            }
        ));
        let r = rt.block_on(async { c.batch_delete("kim", &["a".into()]) });
        assert!(matches!(r[0], Err(GraphError::Config { .. })));
    }

    #[test]
    fn client_refuses_bad_config() {
        let mut c = GraphConfig::new("t");
        c.graph_base = "http://example.com".into();
        let e = GraphClient::new(
            c,
            Credential::ClientSecret {
                client_id: "a".into(),
                secret: "s".into(),
            },
        )
        .unwrap_err();
        assert!(matches!(
            e,
            GraphError::Config {
                setting: "graph_base",
                ..
            }
        ));
    }
}
