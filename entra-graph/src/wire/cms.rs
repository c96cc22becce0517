//! What a card-management system needs beyond register/list/delete: every
//! authentication method of a user, Temporary Access Passes, and the users delta.

use serde::{Deserialize, Serialize};

/// The `@odata.type`s of the methods Entra's built-in "Phishing-resistant MFA"
/// authentication strength accepts: FIDO2 passkeys (security keys and Authenticator
/// passkeys alike), Windows Hello for Business and platform credentials (macOS).
/// Certificate-based authentication counts only when configured as multifactor, which
/// the method list does not say, so it is not counted.
pub const PHISHING_RESISTANT_TYPES: &[&str] = &[
    "#microsoft.graph.fido2AuthenticationMethod",
    "#microsoft.graph.windowsHelloForBusinessAuthenticationMethod",
    "#microsoft.graph.platformCredentialAuthenticationMethod",
];

/// One entry of `GET /users/{id}/authentication/methods` (any method type).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthenticationMethod {
    /// `@odata.type`, e.g. `#microsoft.graph.fido2AuthenticationMethod`.
    #[serde(
        rename = "@odata.type",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub odata_type: Option<String>,
    /// Method id (for FIDO2 methods the same id as under `fido2Methods`).
    pub id: String,
    /// Display name, for the types that have one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// When it was registered, for the types that say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_date_time: Option<String>,
}

impl AuthenticationMethod {
    /// True for a method type in [`PHISHING_RESISTANT_TYPES`].
    pub fn is_phishing_resistant(&self) -> bool {
        self.odata_type
            .as_deref()
            .is_some_and(|t| PHISHING_RESISTANT_TYPES.contains(&t))
    }
}
