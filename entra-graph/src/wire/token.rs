//! The token endpoint's success and error responses.

use serde::{Deserialize, Serialize};

use super::null_as_default;

/// OAuth 2.0 token response of the Microsoft identity platform.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenResponse {
    /// `Bearer`.
    #[serde(default)]
    pub token_type: String,
    /// Lifetime in seconds.
    pub expires_in: u64,
    /// The access token (secret).
    pub access_token: String,
}

impl Drop for TokenResponse {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.access_token);
    }
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field("access_token", &"<redacted>")
            .finish()
    }
}

/// OAuth 2.0 error response of the token endpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenErrorResponse {
    /// OAuth error, e.g. `invalid_client`.
    pub error: String,
    /// Description, starting with an `AADSTS` code.
    #[serde(default)]
    pub error_description: String,
    /// Numeric AADSTS codes.
    #[serde(default, deserialize_with = "null_as_default")]
    pub error_codes: Vec<u64>,
    /// Trace id (request id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    /// Correlation id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
}
