//! The crate's error type.

use std::time::Duration;

use crate::ids::IdError;
use crate::wire::WireError;

/// Everything that can go wrong talking to Graph (or the emulator).
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    /// The client configuration is invalid (names the setting).
    #[error("configuration: {setting}: {reason}")]
    Config {
        /// Which setting.
        setting: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// Graph answered with an error status.
    #[error("Graph returned HTTP {status} {code}: {message} (request id {})", request_id.as_deref().unwrap_or("none"))]
    Api {
        /// HTTP status.
        status: u16,
        /// Graph error code (`Authorization_RequestDenied`, ...), empty if none.
        code: String,
        /// Graph's message, verbatim.
        message: String,
        /// `request-id` of the failed request, when Graph gave one.
        request_id: Option<String>,
    },
    /// The token endpoint refused to issue a token.
    #[error("token endpoint returned HTTP {status} {error}: {description}")]
    Token {
        /// HTTP status.
        status: u16,
        /// OAuth error code (`invalid_client`, ...).
        error: String,
        /// `error_description` (carries the AADSTS code).
        description: String,
    },
    /// A caller-supplied token callback failed.
    #[error("token callback failed: {reason}")]
    TokenCallback {
        /// The callback's message.
        reason: String,
    },
    /// The request could not be sent or its response not received (connection refused,
    /// dropped, TLS failure, timeout).
    #[error("transport: {reason}")]
    Transport {
        /// What failed.
        reason: String,
    },
    /// The TLS handshake failed because the server's certificate is not trusted (an
    /// unknown issuer, such as the private root of a TLS-inspecting proxy; an expired
    /// certificate; a name mismatch). Not retried. Add the issuing CA with the
    /// connection's `ca_file` (or to the operating system's store).
    #[error("TLS: the certificate of {host} is not trusted: {reason} (add its CA to the system trust store or the connection's ca_file)")]
    UntrustedCertificate {
        /// `host:port` of the server (or the proxy) that presented it.
        host: String,
        /// rustls's reason (`UnknownIssuer`, `Expired`, `NotValidForName`, ...).
        reason: String,
    },
    /// The request could not even be built (a URL longer than HTTP allows, e.g. from a
    /// huge user name; a header value with forbidden characters; a body that cannot be
    /// encoded): it was never sent, and sending it again cannot succeed, so it is not
    /// retried.
    #[error("request to {endpoint} not sent: it cannot be built: {reason}")]
    Unsendable {
        /// The endpoint: the path template without user names or ids
        /// (`/v1.0/users/{id}`), or `token endpoint`.
        endpoint: String,
        /// Why it cannot be built (never the URL or a header value).
        reason: String,
    },
    /// Retrying stopped because the next wait (backoff or `Retry-After`) would go past the
    /// call's budget: [`crate::RetryPolicy::max_total_wait`] (a Graph request, a deletion, a
    /// registration), [`crate::RetryPolicy::token_max_total_wait`] (the token endpoint), or
    /// at the token endpoint a `Retry-After` longer than
    /// [`crate::RetryPolicy::max_retry_after`]. [`GraphError::status`] and
    /// [`GraphError::request_id`] are those of the last answer.
    #[error(
        "{endpoint}: gave up after {attempts} attempt(s) and {:.1} s of waiting: the next wait of {:.1} s would pass the {:.1} s budget; last error: {last}",
        waited.as_secs_f64(),
        next_wait.as_secs_f64(),
        budget.as_secs_f64()
    )]
    RetryBudgetExhausted {
        /// The endpoint: the path template without user names or ids
        /// (`/v1.0/users/{id}/authentication/fido2Methods`), or `token endpoint`.
        endpoint: String,
        /// Attempts made.
        attempts: u32,
        /// Time spent waiting between them.
        waited: Duration,
        /// The limit the next wait would have passed (the total-wait budget, or the longest
        /// `Retry-After` honoured).
        budget: Duration,
        /// The wait that was not made.
        next_wait: Duration,
        /// The last attempt's error.
        last: Box<GraphError>,
    },
    /// A response body had the wrong shape.
    #[error("response: {0}")]
    Wire(#[from] WireError),
    /// An identifier could not be decoded.
    #[error("identifier: {0}")]
    Id(#[from] IdError),
    /// A value we were asked to send is invalid (names the field).
    #[error("invalid input: {field}: {reason}")]
    InvalidInput {
        /// Which field.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// The policy pre-flight refused the registration before a key was spent.
    #[error("policy pre-flight: {0}")]
    Preflight(#[from] crate::policy::PreflightError),
    /// A holder's OpenID Connect token was refused; `claim` names the claim or token part
    /// at fault (`iss`, `aud`, `exp`, `signature`, `alg`, `kid`, `token`, ...).
    #[error("ID token refused: {claim}: {reason}")]
    Oidc {
        /// The claim or part of the token that failed.
        claim: &'static str,
        /// Why.
        reason: String,
    },
    /// The issuer's signing keys (or its discovery document) could not be fetched or read.
    #[error("issuer keys: {reason}")]
    OidcKeys {
        /// What failed.
        reason: String,
    },
    /// A registration's outcome stayed unknown after reconciliation and retries.
    #[error("registration outcome unknown for credential {credential_id}: {reason}")]
    RegistrationOutcomeUnknown {
        /// The credential id (base64url).
        credential_id: String,
        /// The last failure.
        reason: String,
    },
}

impl GraphError {
    /// The HTTP status if the failure came from an HTTP answer.
    pub fn status(&self) -> Option<u16> {
        match self {
            GraphError::Api { status, .. } | GraphError::Token { status, .. } => Some(*status),
            GraphError::RetryBudgetExhausted { last, .. } => last.status(),
            _ => None,
        }
    }

    /// The Graph request id if there is one.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            GraphError::Api { request_id, .. } => request_id.as_deref(),
            GraphError::RetryBudgetExhausted { last, .. } => last.request_id(),
            _ => None,
        }
    }
}
