//! Client configuration: endpoints, API version, retries, concurrency.

use std::time::Duration;

use crate::GraphError;

/// Graph API version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ApiVersion {
    /// `v1.0`: creation options take no parameter; the challenge lives 5 minutes.
    V1,
    /// `beta`: creation options take `challengeTimeoutInMinutes` (5–43 200).
    Beta,
}

impl ApiVersion {
    /// The URL path segment.
    pub fn segment(self) -> &'static str {
        match self {
            ApiVersion::V1 => "v1.0",
            ApiVersion::Beta => "beta",
        }
    }
}

/// Smallest challenge timeout Entra accepts (minutes).
pub const MIN_CHALLENGE_MINUTES: u32 = 5;
/// Largest challenge timeout Entra accepts (minutes, 30 days).
pub const MAX_CHALLENGE_MINUTES: u32 = 43_200;

/// Retry behaviour for throttling (429), 503/504, other 5xx and transport failures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total, the first included (at least 1).
    pub max_attempts: u32,
    /// First backoff delay (doubles each retry, with jitter).
    pub base_delay: Duration,
    /// Longest backoff delay.
    pub max_delay: Duration,
    /// Longest `Retry-After` honoured; longer ones fail at once (a Graph request with the
    /// 429/503 error, a token acquisition with [`GraphError::RetryBudgetExhausted`]).
    pub max_retry_after: Duration,
    /// Most time one Graph request spends waiting between its attempts in total (backoff
    /// and `Retry-After` together; default 120 s, so one `Retry-After` of
    /// [`RetryPolicy::max_retry_after`] still fits). A wait that would go past it ends the
    /// request at once with [`GraphError::RetryBudgetExhausted`]. The loops around requests
    /// (a registration's reconciling retries, a deletion's retries, `$batch` rounds) each
    /// have a budget of this size too.
    pub max_total_wait: Duration,
    /// The same bound for one token acquisition at the login endpoint (default 60 s):
    /// a throttled token endpoint is given up after this much waiting, with
    /// [`GraphError::RetryBudgetExhausted`] naming the token endpoint.
    pub token_max_total_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(120),
            max_total_wait: Duration::from_secs(120),
            token_max_total_wait: Duration::from_secs(60),
        }
    }
}

/// Where and how the client talks to Entra.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GraphConfig {
    /// Login authority base, e.g. `https://login.microsoftonline.com`.
    pub login_base: String,
    /// Tenant id or domain.
    pub tenant: String,
    /// Graph base, e.g. `https://graph.microsoft.com`.
    pub graph_base: String,
    /// API version.
    pub version: ApiVersion,
    /// OAuth scope (`https://graph.microsoft.com/.default`).
    pub scope: String,
    /// Retry behaviour.
    pub retry: RetryPolicy,
    /// Timeout of one HTTP exchange.
    pub request_timeout: Duration,
    /// Most requests in flight at once.
    pub max_concurrency: usize,
    /// Trust (the OS store plus an optional extra CA file) and proxy for the login and
    /// Graph endpoints.
    pub network: crate::net::NetworkOptions,
}

impl GraphConfig {
    /// Public-cloud defaults for a tenant.
    pub fn new(tenant: impl Into<String>) -> Self {
        GraphConfig {
            login_base: "https://login.microsoftonline.com".into(),
            tenant: tenant.into(),
            graph_base: "https://graph.microsoft.com".into(),
            version: ApiVersion::V1,
            scope: "https://graph.microsoft.com/.default".into(),
            retry: RetryPolicy::default(),
            request_timeout: Duration::from_secs(30),
            max_concurrency: 8,
            network: crate::net::NetworkOptions::default(),
        }
    }

    /// The token endpoint URL.
    pub fn token_url(&self) -> String {
        format!(
            "{}/{}/oauth2/v2.0/token",
            self.login_base.trim_end_matches('/'),
            self.tenant
        )
    }

    /// The versioned Graph root, e.g. `https://graph.microsoft.com/v1.0`.
    pub fn graph_root(&self) -> String {
        format!(
            "{}/{}",
            self.graph_base.trim_end_matches('/'),
            self.version.segment()
        )
    }

    /// An upper bound on how long one Graph request can take under this policy: every
    /// attempt up to [`GraphConfig::request_timeout`] plus at most
    /// [`RetryPolicy::max_total_wait`] of waits, and one token acquisition bounded the same
    /// way ([`RetryPolicy::token_max_total_wait`]). With the defaults: 6 × 30 s + 120 s +
    /// 6 × 30 s + 60 s = 9 minutes. Not counted: a 401 answer, which adds one exchange and
    /// one token acquisition, and the operations made of several requests (a registration
    /// that reconciles by listing, a paged listing).
    pub fn worst_case_call(&self) -> Duration {
        let attempts = self.request_timeout.saturating_mul(self.retry.max_attempts);
        attempts
            .saturating_add(self.retry.max_total_wait)
            .saturating_add(attempts)
            .saturating_add(self.retry.token_max_total_wait)
    }

    /// Checks every setting, reporting the first problem with its name.
    pub fn validate(&self) -> Result<(), GraphError> {
        check_url("login_base", &self.login_base)?;
        check_url("graph_base", &self.graph_base)?;
        if self.tenant.is_empty()
            || !self
                .tenant
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
        {
            return Err(GraphError::Config {
                setting: "tenant",
                reason: format!("{:?} is not a tenant id or domain", self.tenant),
            });
        }
        if self.retry.max_attempts == 0 {
            return Err(GraphError::Config {
                setting: "retry.max_attempts",
                reason: "must be at least 1".into(),
            });
        }
        if self.max_concurrency == 0 {
            return Err(GraphError::Config {
                setting: "max_concurrency",
                reason: "must be at least 1".into(),
            });
        }
        self.network.validate()
    }

    /// Checks a challenge timeout against the API version: 5–43 200 on beta; on v1.0
    /// only 5 (the fixed lifetime), anything longer is a configuration error.
    pub fn check_challenge_timeout(&self, minutes: Option<u32>) -> Result<(), GraphError> {
        let Some(m) = minutes else { return Ok(()) };
        match self.version {
            ApiVersion::V1 if m != MIN_CHALLENGE_MINUTES => Err(GraphError::Config {
                setting: "challenge_timeout_minutes",
                reason: format!(
                    "{m} minutes needs the beta endpoint; v1.0 fixes the challenge at 5 minutes"
                ),
            }),
            ApiVersion::Beta if !(MIN_CHALLENGE_MINUTES..=MAX_CHALLENGE_MINUTES).contains(&m) => {
                Err(GraphError::Config {
                    setting: "challenge_timeout_minutes",
                    reason: format!("{m} is outside 5..=43200"),
                })
            }
            _ => Ok(()),
        }
    }
}

/// TLS only, except plain HTTP to loopback (the emulator): keysmith's one URL policy.
fn check_url(setting: &'static str, url: &str) -> Result<(), GraphError> {
    keysmith_url::check(url)
        .map(drop)
        .map_err(|e| GraphError::Config {
            setting,
            reason: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_must_be_tls_or_loopback() {
        let mut c = GraphConfig::new("contoso.onmicrosoft.com");
        assert_eq!(c.validate(), Ok(()));
        c.graph_base = "http://127.0.0.1:8080".into();
        assert_eq!(c.validate(), Ok(()));
        c.graph_base = "http://graph.example.com".into();
        assert!(matches!(
            c.validate(),
            Err(GraphError::Config {
                setting: "graph_base",
                ..
            })
        ));
        c.graph_base = "ftp://x".into();
        assert!(c.validate().is_err());
        let mut c = GraphConfig::new("bad tenant/");
        assert!(matches!(
            c.validate(),
            Err(GraphError::Config {
                setting: "tenant",
                ..
            })
        ));
        c.tenant = "t".into();
        c.max_concurrency = 0;
        assert!(c.validate().is_err());
    }

    #[test]
    fn challenge_timeout_rules() {
        let mut c = GraphConfig::new("t");
        assert!(c.check_challenge_timeout(None).is_ok());
        assert!(c.check_challenge_timeout(Some(5)).is_ok());
        assert!(matches!(
            c.check_challenge_timeout(Some(6)),
            Err(GraphError::Config {
                setting: "challenge_timeout_minutes",
                ..
            })
        ));
        c.version = ApiVersion::Beta;
        assert!(c.check_challenge_timeout(Some(43_200)).is_ok());
        assert!(c.check_challenge_timeout(Some(4)).is_err());
        assert!(c.check_challenge_timeout(Some(43_201)).is_err());
        assert_eq!(
            c.token_url(),
            "https://login.microsoftonline.com/t/oauth2/v2.0/token"
        );
        assert_eq!(c.graph_root(), "https://graph.microsoft.com/beta");
    }
}
