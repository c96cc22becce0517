//! Delegated registration (Graph v1.0 `/me`): the holder's own token registers their
//! passkey, so the server half never needs the tenant-wide write permission for it.
//!
//! The calls themselves are made where the holder signed in (the device half of a split
//! deployment), with a token this crate never sees. What is here is the server half's
//! part: the scope to ask for, the request body it builds and checks, and the reading of
//! what Graph answered the device half (a claim the server still confirms with a read of
//! its own). Graph requires the holder to have completed MFA within the last 10 minutes
//! to manage their own methods (docs/ENTRA.md, "Delegated registration").

use crate::wire::{CreationOptions, Fido2Method, RegistrationBody};
use crate::GraphError;

/// The delegated permission for a holder's own passkeys.
pub const DELEGATED_PASSKEY_SCOPE: &str = "UserAuthMethod-Passkey.ReadWrite";

/// The scope a holder's sign-in asks for, on the Graph resource `graph_base` (its
/// origin: `https://graph.microsoft.com/UserAuthMethod-Passkey.ReadWrite`).
pub fn delegated_scope(graph_base: &str) -> String {
    format!(
        "{}/{DELEGATED_PASSKEY_SCOPE}",
        graph_base.trim_end_matches('/')
    )
}

/// The answer a device half relayed: `status` and `body` as Graph sent them. A success
/// status gives the body back; anything else is the typed Graph error (a stale MFA, a
/// missing permission, an expired challenge), with `request_id` when the header had one.
pub fn answer<'a>(
    status: u16,
    body: &'a [u8],
    request_id: Option<&str>,
) -> Result<&'a [u8], GraphError> {
    if (200..300).contains(&status) {
        return Ok(body);
    }
    Err(match crate::http::api_error(status, None, body) {
        GraphError::Api {
            status,
            code,
            message,
            request_id: rid,
        } => GraphError::Api {
            status,
            code,
            message,
            request_id: rid.or_else(|| request_id.map(str::to_owned)),
        },
        e => e,
    })
}

/// The creation options of a `GET /me/.../creationOptions` answer.
pub fn creation_options(body: &[u8]) -> Result<CreationOptions, GraphError> {
    CreationOptions::from_json(body).map_err(GraphError::from)
}

/// The JSON body of `POST /me/authentication/fido2Methods`, checked as the application
/// registration checks it (the display name's limits).
pub fn registration_json(body: &RegistrationBody) -> Result<String, GraphError> {
    crate::webauthn::validate_display_name(&body.display_name)?;
    serde_json::to_string(body).map_err(|e| GraphError::InvalidInput {
        field: "registration body",
        reason: e.to_string(),
    })
}

/// The method a `POST /me/authentication/fido2Methods` answer created.
pub fn registered_method(body: &[u8]) -> Result<Fido2Method, GraphError> {
    Ok(crate::wire::parse_json(body, "fido2AuthenticationMethod")?)
}
