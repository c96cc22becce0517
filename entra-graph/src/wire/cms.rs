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

/// A Temporary Access Pass (`temporaryAccessPassAuthenticationMethod`). The pass itself
/// is only in the answer to its creation; it is a secret (zeroized, never printed).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TemporaryAccessPass {
    /// Method id.
    pub id: String,
    /// The pass (creation answer only).
    #[serde(default, deserialize_with = "secret_opt")]
    pub temporary_access_pass: Option<crate::auth::Secret>,
    /// When it was created.
    #[serde(default)]
    pub created_date_time: Option<String>,
    /// When it becomes usable.
    #[serde(default)]
    pub start_date_time: Option<String>,
    /// How long it is usable, in minutes.
    #[serde(default)]
    pub lifetime_in_minutes: Option<u32>,
    /// Whether one sign-in uses it up.
    #[serde(default)]
    pub is_usable_once: Option<bool>,
    /// Whether it can be used now.
    #[serde(default)]
    pub is_usable: Option<bool>,
    /// Why it can or cannot be used (`EnabledByPolicy`, `Expired`, ...).
    #[serde(default)]
    pub method_usability_reason: Option<String>,
}

fn secret_opt<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<crate::auth::Secret>, D::Error> {
    // Moved, not copied, into the zeroizing wrapper.
    let s: Option<String> = Option::deserialize(d)?;
    Ok(s.map(crate::auth::Secret::new))
}

/// One page of `GET /users/delta`: changed users (or `@removed` entries), and either
/// `@odata.nextLink` (more pages) or `@odata.deltaLink` (the round is complete; keep it
/// for the next one).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct UsersDeltaPage {
    /// `@odata.nextLink`: the next page of this round.
    #[serde(rename = "@odata.nextLink", default)]
    pub next_link: Option<String>,
    /// `@odata.deltaLink`: where the next round starts.
    #[serde(rename = "@odata.deltaLink", default)]
    pub delta_link: Option<String>,
    /// The entries (users, or `{"id", "@removed": {"reason"}}`).
    #[serde(default)]
    pub value: Vec<serde_json::Value>,
}
