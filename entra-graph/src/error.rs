//! The crate's error type.

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
            _ => None,
        }
    }

    /// The Graph request id if there is one.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            GraphError::Api { request_id, .. } => request_id.as_deref(),
            _ => None,
        }
    }
}
