//! Sign-in under the FIDO2 policy (Entra as of 2026): which registered passkeys the
//! tenant's policy now blocks.
//!
//! Attestation is checked at registration only, but key restrictions and passkey types
//! apply at sign-in too: removing an AAGUID from an allow list, adding it to a block
//! list, or disallowing a passkey type blocks passkeys already registered
//! (`docs/ENTRA.md`, section "2026"). A user may sign in with a passkey when **any**
//! passkey profile that applies to them ([`crate::policy::applicable_profiles`]) allows
//! its type and AAGUID; exclusion targets beat inclusion; the deprecated top-level
//! `keyRestrictions` decide only for a policy without profiles.

use crate::policy::{
    applicable_profiles, check_aaguid, check_targets, EffectiveRestrictions, PreflightError,
    UserScope,
};
use crate::wire::{Fido2Policy, MethodState, PasskeyProfile, PasskeyType};

/// One passkey profile's refusal of a passkey at sign-in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProfileRefusal {
    /// The profile's id.
    pub profile_id: String,
    /// The profile's name, if the policy gives one.
    pub profile_name: Option<String>,
    /// Why this profile refuses the passkey.
    pub reason: PreflightError,
}

impl ProfileRefusal {
    /// The profile's name, or its id when it has none.
    pub fn label(&self) -> &str {
        self.profile_name.as_deref().unwrap_or(&self.profile_id)
    }
}

/// Why a registered passkey would fail at sign-in.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("would fail at sign-in: {reason}{}", blocked_by_text(.profiles))]
pub struct SignInBlock {
    /// The first reason: that of the first applicable profile, or the policy's own
    /// (method disabled, user excluded or not targeted, the deprecated top-level key
    /// restrictions).
    pub reason: PreflightError,
    /// Every applicable passkey profile, each with its refusal (empty when the policy
    /// itself or its deprecated top-level fields block the passkey).
    pub profiles: Vec<ProfileRefusal>,
}

impl SignInBlock {
    fn policy(reason: PreflightError) -> Self {
        SignInBlock {
            reason,
            profiles: Vec::new(),
        }
    }

    /// The names (or ids) of the passkey profiles that block the passkey, comma-separated;
    /// `None` when no profile is involved.
    pub fn blocking_profiles(&self) -> Option<String> {
        (!self.profiles.is_empty()).then(|| {
            self.profiles
                .iter()
                .map(ProfileRefusal::label)
                .collect::<Vec<_>>()
                .join(", ")
        })
    }
}

fn blocked_by_text(profiles: &[ProfileRefusal]) -> String {
    match profiles {
        [] => String::new(),
        [one] => format!(" (passkey profile {:?})", one.label()),
        many => format!(
            " (passkey profiles {})",
            many.iter()
                .map(|p| format!("{:?}: {}", p.label(), p.reason))
                .collect::<Vec<_>>()
                .join("; ")
        ),
    }
}

/// Whether `passkey_type` is among a profile's comma-separated `passkeyTypes`.
fn type_allowed(types: &str, passkey_type: PasskeyType) -> Result<(), PreflightError> {
    let want = match passkey_type {
        PasskeyType::Synced => "synced",
        _ => "deviceBound",
    };
    if types
        .split(',')
        .any(|t| t.trim().eq_ignore_ascii_case(want))
    {
        return Ok(());
    }
    Err(match passkey_type {
        PasskeyType::Synced => PreflightError::SyncedNotAllowed {
            allowed: types.to_owned(),
        },
        _ => PreflightError::DeviceBoundNotAllowed {
            allowed: types.to_owned(),
        },
    })
}

/// What one profile says of a passkey at sign-in: its passkey type and AAGUID.
fn profile_allows(
    profile: &PasskeyProfile,
    aaguid: &str,
    passkey_type: PasskeyType,
) -> Result<(), PreflightError> {
    let r = EffectiveRestrictions::of_profile(profile);
    if let Some(types) = r.passkey_types.as_deref() {
        type_allowed(types, passkey_type)?;
    }
    check_aaguid(&r, aaguid)
}

/// Checks whether a registered passkey of `aaguid` and `passkey_type` may still sign
/// in for the user `scope` under `policy`: the method enabled, the user targeted and not
/// excluded (exclusion beats inclusion), and one of the user's passkey profiles allowing
/// the passkey's type and AAGUID (or, without profiles, the deprecated top-level key
/// restrictions). Attestation is not checked: Entra checks it at registration only.
pub fn sign_in_check(
    policy: &Fido2Policy,
    scope: &UserScope,
    aaguid: &str,
    passkey_type: PasskeyType,
) -> Result<(), SignInBlock> {
    if policy.state != MethodState::Enabled {
        return Err(SignInBlock::policy(PreflightError::MethodDisabled));
    }
    check_targets(policy, scope).map_err(SignInBlock::policy)?;
    let profiles = applicable_profiles(policy, scope);
    if profiles.is_empty() {
        return check_aaguid(&EffectiveRestrictions::legacy(policy), aaguid)
            .map_err(SignInBlock::policy);
    }
    let mut refusals = Vec::with_capacity(profiles.len());
    for p in profiles {
        match profile_allows(p, aaguid, passkey_type) {
            Ok(()) => return Ok(()),
            Err(reason) => refusals.push(ProfileRefusal {
                profile_id: p.id.clone(),
                profile_name: p.name.clone(),
                reason,
            }),
        }
    }
    let reason = refusals
        .first()
        .map(|r| r.reason.clone())
        .unwrap_or(PreflightError::MethodDisabled);
    Err(SignInBlock {
        reason,
        profiles: refusals,
    })
}

/// The largest FIDO2 policy document Entra stores (bytes of its JSON).
pub const MAX_POLICY_BYTES: usize = 20 * 1024;
/// The most passkey profiles a policy holds, the default one included.
pub const MAX_PASSKEY_PROFILES: usize = 3;

/// Why Entra refuses to store a FIDO2 policy (and the emulator with it).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyLimitError {
    /// More than [`MAX_PASSKEY_PROFILES`] passkey profiles.
    #[error("{count} passkey profiles: a policy holds at most {MAX_PASSKEY_PROFILES}")]
    TooManyProfiles {
        /// How many the policy had.
        count: usize,
    },
    /// The policy document is larger than [`MAX_POLICY_BYTES`].
    #[error("the FIDO2 policy is {bytes} bytes: Entra's limit is {MAX_POLICY_BYTES}")]
    TooLarge {
        /// The document's size.
        bytes: usize,
    },
}

/// Checks a policy against Entra's limits: at most three passkey profiles and a
/// document of at most 20 KB.
pub fn check_policy_limits(policy: &Fido2Policy) -> Result<(), PolicyLimitError> {
    let count = policy.passkey_profiles.len();
    if count > MAX_PASSKEY_PROFILES {
        return Err(PolicyLimitError::TooManyProfiles { count });
    }
    let bytes = serde_json::to_vec(policy).map(|v| v.len()).unwrap_or(0);
    if bytes > MAX_POLICY_BYTES {
        return Err(PolicyLimitError::TooLarge { bytes });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::ALL_USERS;
    use crate::wire::{AttestationEnforcement, EnforcementType, KeyRestrictions, PolicyTarget};

    const YK: &str = "cb69481e-8ff7-4039-93ec-0a2729a154a8";
    const OTHER: &str = "00000000-0000-0000-0000-0000000000aa";

    fn target(id: &str, profiles: &[&str]) -> PolicyTarget {
        PolicyTarget {
            target_type: "group".into(),
            id: id.into(),
            is_registration_required: None,
            allowed_passkey_profiles: profiles.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn profile(id: &str, types: &str, block: Option<&str>) -> PasskeyProfile {
        PasskeyProfile {
            id: id.into(),
            name: Some(format!("{id} profile")),
            passkey_types: Some(types.into()),
            attestation_enforcement: Some(AttestationEnforcement::RegistrationOnly),
            key_restrictions: block.map(|a| KeyRestrictions {
                is_enforced: true,
                enforcement_type: Some(EnforcementType::Block),
                aa_guids: vec![a.into()],
            }),
        }
    }

    fn policy(profiles: Vec<PasskeyProfile>) -> Fido2Policy {
        Fido2Policy {
            context: None,
            odata_type: None,
            id: "Fido2".into(),
            state: MethodState::Enabled,
            is_self_service_registration_allowed: Some(true),
            is_attestation_enforced: Some(true),
            key_restrictions: None,
            include_targets: vec![target(ALL_USERS, &[])],
            exclude_targets: vec![],
            default_passkey_profile: profiles.first().map(|p| p.id.clone()),
            passkey_profiles: profiles,
        }
    }

    fn kim() -> UserScope {
        UserScope::new("user-kim", vec!["g-sales".into()])
    }

    #[test]
    fn attestation_is_not_checked_at_sign_in() {
        let p = policy(vec![profile("default", "deviceBound", None)]);
        assert_eq!(
            sign_in_check(&p, &kim(), YK, PasskeyType::DeviceBound),
            Ok(())
        );
    }

    #[test]
    fn the_blocking_profile_is_named() {
        let p = policy(vec![profile("default", "deviceBound,synced", Some(YK))]);
        let e = sign_in_check(&p, &kim(), YK, PasskeyType::DeviceBound).unwrap_err();
        assert!(matches!(e.reason, PreflightError::AaguidBlocked { .. }));
        assert_eq!(e.blocking_profiles().as_deref(), Some("default profile"));
        assert!(e.to_string().contains("\"default profile\""), "{e}");
        let p = policy(vec![profile("default", "synced", None)]);
        let e = sign_in_check(&p, &kim(), YK, PasskeyType::DeviceBound).unwrap_err();
        assert!(matches!(
            e.reason,
            PreflightError::DeviceBoundNotAllowed { .. }
        ));
        assert_eq!(
            sign_in_check(&p, &kim(), YK, PasskeyType::Synced),
            Ok(()),
            "a synced passkey is judged by the synced type"
        );
        let p = policy(vec![profile("default", "deviceBound", None)]);
        assert!(matches!(
            sign_in_check(&p, &kim(), OTHER, PasskeyType::Synced)
                .unwrap_err()
                .reason,
            PreflightError::SyncedNotAllowed { .. }
        ));
    }

    #[test]
    fn any_applicable_profile_admits() {
        let mut p = policy(vec![
            profile("default", "deviceBound", Some(YK)),
            profile("sales", "deviceBound", None),
        ]);
        p.include_targets = vec![
            target(ALL_USERS, &["default"]),
            target("g-sales", &["sales"]),
        ];
        assert_eq!(
            sign_in_check(&p, &kim(), YK, PasskeyType::DeviceBound),
            Ok(())
        );
        let lee = UserScope::new("user-lee", vec![]);
        let e = sign_in_check(&p, &lee, YK, PasskeyType::DeviceBound).unwrap_err();
        assert_eq!(e.profiles.len(), 1);
        assert_eq!(e.profiles[0].profile_id, "default");
        // Both profiles block: both are named.
        p.passkey_profiles[1].passkey_types = Some("synced".into());
        let e = sign_in_check(&p, &kim(), YK, PasskeyType::DeviceBound).unwrap_err();
        assert_eq!(
            e.blocking_profiles().as_deref(),
            Some("default profile, sales profile")
        );
    }

    #[test]
    fn exclusion_beats_inclusion_and_fallback_without_profiles() {
        let mut p = policy(vec![profile("default", "deviceBound", None)]);
        p.exclude_targets = vec![target("g-sales", &[])];
        let e = sign_in_check(&p, &kim(), YK, PasskeyType::DeviceBound).unwrap_err();
        assert!(matches!(e.reason, PreflightError::UserExcluded { .. }));
        assert!(e.profiles.is_empty());
        // Without profiles the deprecated top-level key restrictions decide.
        let mut p = policy(vec![]);
        p.key_restrictions = Some(KeyRestrictions {
            is_enforced: true,
            enforcement_type: Some(EnforcementType::Allow),
            aa_guids: vec![OTHER.into()],
        });
        let e = sign_in_check(&p, &kim(), YK, PasskeyType::DeviceBound).unwrap_err();
        assert!(matches!(e.reason, PreflightError::AaguidNotAllowed { .. }));
        assert_eq!(e.blocking_profiles(), None);
        assert_eq!(
            sign_in_check(&p, &kim(), OTHER, PasskeyType::DeviceBound),
            Ok(())
        );
    }

    #[test]
    fn limits() {
        let mut p = policy(vec![
            profile("a", "deviceBound", None),
            profile("b", "deviceBound", None),
            profile("c", "deviceBound", None),
        ]);
        assert_eq!(check_policy_limits(&p), Ok(()));
        p.passkey_profiles.push(profile("d", "deviceBound", None));
        assert_eq!(
            check_policy_limits(&p),
            Err(PolicyLimitError::TooManyProfiles { count: 4 })
        );
        p.passkey_profiles.truncate(1);
        p.passkey_profiles[0].key_restrictions = Some(KeyRestrictions {
            is_enforced: true,
            enforcement_type: Some(EnforcementType::Block),
            aa_guids: (0..600)
                .map(|i| format!("{i:08x}-0000-0000-0000-000000000000"))
                .collect(),
        });
        assert!(matches!(
            check_policy_limits(&p),
            Err(PolicyLimitError::TooLarge { .. })
        ));
    }
}
