//! What Entra as of 2026 adds to a connection (owned data, no Graph types): the
//! challenge lifetime its Graph API version allows, and the registered passkeys its
//! FIDO2 policy now blocks at sign-in.

use serde::{Deserialize, Serialize};

/// The longest registration challenge a connection can ask for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChallengeLimit {
    /// The API version the connection uses (Entra: `v1.0` or `beta`).
    pub api_version: String,
    /// The longest challenge timeout it can ask for, in minutes (Entra v1.0: 5, fixed;
    /// beta: 43 200).
    pub max_minutes: u32,
    /// The API version that allows longer challenges, when there is one (Entra v1.0:
    /// `beta`).
    pub longer_needs: Option<String>,
}

/// Why a registered passkey would fail at sign-in under the IdP's current policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignInBlocked {
    /// Why, in words (the first reason: that of the first profile that applies, or the
    /// policy's own).
    pub reason: String,
    /// The passkey profiles (names, or ids without a name) that block it; empty when
    /// the policy itself or its deprecated top-level fields do.
    pub profiles: Vec<String>,
}

impl SignInBlocked {
    /// The blocking profiles, comma-separated, or `the policy` when no profile is
    /// involved.
    pub fn blocked_by(&self) -> String {
        if self.profiles.is_empty() {
            "the FIDO2 policy".to_owned()
        } else {
            self.profiles.join(", ")
        }
    }
}

/// [`super::Idp::challenge_limit`] of an Entra connection.
pub(super) fn entra_challenge_limit(version: entra_graph::ApiVersion) -> ChallengeLimit {
    match version {
        entra_graph::ApiVersion::V1 => ChallengeLimit {
            api_version: version.segment().to_owned(),
            max_minutes: entra_graph::MIN_CHALLENGE_MINUTES,
            longer_needs: Some(entra_graph::ApiVersion::Beta.segment().to_owned()),
        },
        entra_graph::ApiVersion::Beta => ChallengeLimit {
            api_version: version.segment().to_owned(),
            max_minutes: entra_graph::MAX_CHALLENGE_MINUTES,
            longer_needs: None,
        },
    }
}

/// [`super::Idp::sign_in_blocks`] of an Entra connection: keysmith's keys are security
/// keys, so every passkey is judged as device-bound. A 403 (the app may not read the
/// policy, the user or the group memberships) means "cannot tell", logged with the
/// permission it needs.
pub(super) fn entra_sign_in_blocks(
    idp: &super::EntraIdp,
    user_id: &str,
    aaguids: &[[u8; 16]],
) -> Result<Option<Vec<Option<SignInBlocked>>>, super::IdpError> {
    let passkeys: Vec<(String, entra_graph::wire::PasskeyType)> = aaguids
        .iter()
        .map(|a| {
            (
                entra_graph::policy::format_aaguid(a),
                entra_graph::wire::PasskeyType::DeviceBound,
            )
        })
        .collect();
    match idp.client().sign_in_blocks(user_id, &passkeys) {
        Ok(v) => Ok(Some(
            v.into_iter()
                .map(|b| {
                    b.map(|b| SignInBlocked {
                        reason: b.reason.to_string(),
                        profiles: b.profiles.iter().map(|p| p.label().to_owned()).collect(),
                    })
                })
                .collect(),
        )),
        Err(e) if e.status() == Some(403) => {
            tracing::warn!(
                permissions = %format!(
                    "{} (and for group targets {}, {})",
                    entra_graph::PERMISSION_POLICY_READ,
                    entra_graph::PERMISSION_USER_READ,
                    entra_graph::PERMISSION_GROUP_MEMBER_READ
                ),
                "cannot tell whether the FIDO2 policy blocks passkeys at sign-in"
            );
            Ok(None)
        }
        Err(e) => Err(idp.call_error("sign-in policy check", e)),
    }
}
