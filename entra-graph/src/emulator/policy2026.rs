//! The FIDO2 policy as Entra stores it since passkey profiles (2026): `PATCH` of the
//! method configuration, refused when it would hold more than three passkey profiles or
//! grow past the 20 KB document cap (`docs/ENTRA.md`, section "2026").

use super::server::{error, no_content, Resp};
use super::Shared;
use crate::signin::{check_policy_limits, PolicyLimitError};
use crate::wire::Fido2Policy;

/// `PATCH /policies/authenticationMethodsPolicy/authenticationMethodConfigurations/fido2`:
/// the body's properties replace the stored ones (Graph's PATCH semantics); the result
/// must still parse as a FIDO2 configuration and stay inside Entra's limits. 204 on
/// success, 400 otherwise (nothing changes).
pub(super) fn patch_policy(shared: &Shared, body: &[u8], rid: &str) -> Resp {
    let Ok(serde_json::Value::Object(changes)) = serde_json::from_slice(body) else {
        return error(
            400,
            "badRequest",
            "The request body must be a fido2AuthenticationMethodConfiguration object.",
            rid,
        );
    };
    let mut st = shared.state();
    let mut current = serde_json::to_value(&st.policy).unwrap_or_default();
    if let Some(o) = current.as_object_mut() {
        for (k, v) in changes {
            if k == "id" || k.starts_with("@odata.context") {
                continue;
            }
            o.insert(k, v);
        }
    }
    let next: Fido2Policy = match serde_json::from_value(current) {
        Ok(p) => p,
        Err(e) => {
            return error(
                400,
                "badRequest",
                &format!("Invalid fido2AuthenticationMethodConfiguration: {e}"),
                rid,
            )
        }
    };
    match apply(&mut st.policy, next) {
        Ok(()) => no_content(),
        Err(e) => error(400, "badRequest", &refusal_message(&e), rid),
    }
}

/// Stores `next` when it is inside Entra's limits.
pub(super) fn apply(stored: &mut Fido2Policy, next: Fido2Policy) -> Result<(), PolicyLimitError> {
    check_policy_limits(&next)?;
    *stored = next;
    Ok(())
}

fn refusal_message(e: &PolicyLimitError) -> String {
    match e {
        PolicyLimitError::TooManyProfiles { .. } => format!(
            "A FIDO2 policy can have at most 3 passkey profiles, including the default profile: {e}."
        ),
        _ => format!("The authentication method policy exceeds the maximum size of 20 KB: {e}."),
    }
}
