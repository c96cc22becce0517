//! Policy pre-flight: decide from the tenant's FIDO2 policy whether a key with a given
//! AAGUID and attestation would be accepted, before a key is spent on it.

use crate::wire::{
    AttestationEnforcement, EnforcementType, Fido2Policy, KeyRestrictions, MethodState,
    PasskeyProfile, PolicyTarget,
};

/// Why the pre-flight refuses a registration.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PreflightError {
    /// The FIDO2 method is disabled in the tenant.
    #[error("the FIDO2 authentication method is disabled in the tenant")]
    MethodDisabled,
    /// The user is in none of the policy's include targets.
    #[error("user {user_id} is not in the FIDO2 policy's include targets")]
    UserNotTargeted {
        /// The user's object id.
        user_id: String,
    },
    /// The user is in one of the policy's exclude targets (exclusion wins).
    #[error("user {user_id} is excluded from the FIDO2 policy by target {target}")]
    UserExcluded {
        /// The user's object id.
        user_id: String,
        /// The exclude target (group or user id) that matched.
        target: String,
    },
    /// Self-service registration is not allowed (v1.0 provisioning needs it).
    #[error("isSelfServiceRegistrationAllowed is false: Entra refuses provisioned passkeys")]
    SelfServiceRegistrationNotAllowed,
    /// The AAGUID is on the block list.
    #[error("AAGUID {aaguid} is blocked by the tenant's key restrictions")]
    AaguidBlocked {
        /// The AAGUID.
        aaguid: String,
    },
    /// The AAGUID is not on the allow list.
    #[error("AAGUID {aaguid} is not on the tenant's allow list")]
    AaguidNotAllowed {
        /// The AAGUID.
        aaguid: String,
    },
    /// The passkey profile does not allow device-bound passkeys (security keys).
    #[error("the tenant's passkey profile allows only {allowed} passkeys, not device-bound ones")]
    DeviceBoundNotAllowed {
        /// The profile's `passkeyTypes`.
        allowed: String,
    },
    /// The passkey profile does not allow synced passkeys.
    #[error("the tenant's passkey profile allows only {allowed} passkeys, not synced ones")]
    SyncedNotAllowed {
        /// The profile's `passkeyTypes`.
        allowed: String,
    },
    /// Attestation is enforced but the key would register without (verifiable) attestation.
    #[error("the tenant enforces attestation but this key gives none")]
    AttestationRequired,
    /// Every passkey profile that applies to the user refuses the key: `profiles` names
    /// each (name and id) with its own reason; `reason` is the first profile's (one of
    /// the variants above: AAGUID, passkey type or attestation). Given only when the
    /// policy has passkey profiles; a policy without them refuses with the plain reason.
    #[error("{}", profiles_refusal_text(reason, profiles))]
    BlockedByProfiles {
        /// The first profile's reason.
        reason: Box<PreflightError>,
        /// Every applicable profile, each with its refusal (never empty).
        profiles: Vec<crate::signin::ProfileRefusal>,
    },
}

impl PreflightError {
    /// The underlying reason: for [`PreflightError::BlockedByProfiles`] the first
    /// profile's reason, otherwise the error itself.
    pub fn cause(&self) -> &PreflightError {
        match self {
            PreflightError::BlockedByProfiles { reason, .. } => reason.cause(),
            other => other,
        }
    }

    /// The passkey profiles that refused the key (empty when no profile is involved).
    pub fn blocking_profiles(&self) -> &[crate::signin::ProfileRefusal] {
        match self {
            PreflightError::BlockedByProfiles { profiles, .. } => profiles,
            _ => &[],
        }
    }
}

fn profiles_refusal_text(
    reason: &PreflightError,
    profiles: &[crate::signin::ProfileRefusal],
) -> String {
    let named = |p: &crate::signin::ProfileRefusal| match &p.profile_name {
        Some(n) => format!("passkey profile {n:?} (id {})", p.profile_id),
        None => format!("passkey profile {}", p.profile_id),
    };
    match profiles {
        [one] => format!("{reason}: refused by {}", named(one)),
        many => format!(
            "{reason}: no passkey profile assigned to the user accepts the key: {}",
            many.iter()
                .map(|p| format!("{} refuses it: {}", named(p), p.reason))
                .collect::<Vec<_>>()
                .join("; ")
        ),
    }
}

/// Wraps per-profile refusals as [`PreflightError::BlockedByProfiles`].
fn refused_by(profiles: Vec<crate::signin::ProfileRefusal>) -> PreflightError {
    match profiles.first() {
        Some(first) => PreflightError::BlockedByProfiles {
            reason: Box::new(first.reason.clone()),
            profiles,
        },
        // Not reached: callers pass at least one profile.
        None => PreflightError::AttestationRequired,
    }
}

fn refusal_of(p: &PasskeyProfile, reason: PreflightError) -> crate::signin::ProfileRefusal {
    crate::signin::ProfileRefusal {
        profile_id: p.id.clone(),
        profile_name: p.name.clone(),
        reason,
    }
}

/// Who a registration is for, as the policy's targets see it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserScope {
    /// The user's object id (targets name users by object id, not UPN).
    pub user_id: String,
    /// Ids of the groups the user is a member of (directly or through nested groups);
    /// only groups named by the policy's targets matter.
    pub group_ids: Vec<String>,
}

impl UserScope {
    /// A user and the groups it belongs to.
    pub fn new(user_id: impl Into<String>, group_ids: Vec<String>) -> Self {
        UserScope {
            user_id: user_id.into(),
            group_ids,
        }
    }

    /// True when `target` (an include or exclude target) names this user: `all_users`,
    /// the user's id, or one of its groups (ids compared case-insensitively: GUIDs).
    pub fn is_targeted_by(&self, target: &PolicyTarget) -> bool {
        target.id == ALL_USERS
            || target.id.eq_ignore_ascii_case(&self.user_id)
            || self
                .group_ids
                .iter()
                .any(|g| g.eq_ignore_ascii_case(&target.id))
    }
}

/// The pseudo-group id that stands for every user in include targets.
pub const ALL_USERS: &str = "all_users";

/// Group ids the policy's include and exclude targets name (without `all_users` and
/// user targets): the groups whose membership decides whether a user is in scope.
pub fn target_group_ids(policy: &Fido2Policy) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in policy.include_targets.iter().chain(&policy.exclude_targets) {
        if t.id != ALL_USERS
            && t.target_type.eq_ignore_ascii_case("group")
            && !out.iter().any(|g| g.eq_ignore_ascii_case(&t.id))
        {
            out.push(t.id.clone());
        }
    }
    out
}

/// Checks the policy's targets: the user must match an include target and no exclude
/// target (exclusion wins).
pub fn check_targets(policy: &Fido2Policy, scope: &UserScope) -> Result<(), PreflightError> {
    if let Some(t) = policy
        .exclude_targets
        .iter()
        .find(|t| scope.is_targeted_by(t))
    {
        return Err(PreflightError::UserExcluded {
            user_id: scope.user_id.clone(),
            target: t.id.clone(),
        });
    }
    if !policy
        .include_targets
        .iter()
        .any(|t| scope.is_targeted_by(t))
    {
        return Err(PreflightError::UserNotTargeted {
            user_id: scope.user_id.clone(),
        });
    }
    Ok(())
}

/// The restrictions in force for one profile, or for a policy without profiles.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EffectiveRestrictions {
    /// Whether attestation is enforced at registration.
    pub attestation_enforced: bool,
    /// Key restrictions, if any are enforced.
    pub key_restrictions: Option<KeyRestrictions>,
    /// The profile's `passkeyTypes` (`None`: no profile, device-bound allowed).
    pub passkey_types: Option<String>,
}

impl EffectiveRestrictions {
    /// The restrictions one passkey profile sets.
    pub fn of_profile(profile: &PasskeyProfile) -> Self {
        EffectiveRestrictions {
            attestation_enforced: profile.attestation_enforcement
                == Some(AttestationEnforcement::RegistrationOnly),
            key_restrictions: profile.key_restrictions.clone().filter(|k| k.is_enforced),
            passkey_types: profile.passkey_types.clone(),
        }
    }

    /// The restrictions of the deprecated top-level fields (a policy without profiles).
    pub fn legacy(policy: &Fido2Policy) -> Self {
        EffectiveRestrictions {
            attestation_enforced: policy.is_attestation_enforced.unwrap_or(false),
            key_restrictions: policy.key_restrictions.clone().filter(|k| k.is_enforced),
            passkey_types: None,
        }
    }

    /// Whether a security key (device-bound) with `aaguid` and the given attestation
    /// passes these restrictions.
    pub fn check_key(&self, aaguid: &str, attested: bool) -> Result<(), PreflightError> {
        if let Some(types) = self.passkey_types.as_deref() {
            if !types
                .split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("deviceBound"))
            {
                return Err(PreflightError::DeviceBoundNotAllowed {
                    allowed: types.to_owned(),
                });
            }
        }
        check_aaguid(self, aaguid)?;
        if self.attestation_enforced && !attested {
            return Err(PreflightError::AttestationRequired);
        }
        Ok(())
    }
}

/// The tenant's default passkey profile: the one `defaultPasskeyProfile` names, else the
/// first of `passkeyProfiles`; `None` when the policy has no profiles.
pub fn default_profile(policy: &Fido2Policy) -> Option<&PasskeyProfile> {
    policy
        .default_passkey_profile
        .as_deref()
        .and_then(|id| {
            policy
                .passkey_profiles
                .iter()
                .find(|p| p.id.eq_ignore_ascii_case(id))
        })
        .or_else(|| policy.passkey_profiles.first())
}

/// The passkey profiles that apply to a user, in policy order, without duplicates.
///
/// Selection: every include target that names the user contributes the profiles its
/// `allowedPasskeyProfiles` lists; a matching target that lists none contributes the
/// default profile ([`default_profile`]). Ids that name no profile are ignored; if
/// nothing is left, the default profile applies. Empty only for a policy without
/// profiles (the deprecated top-level fields apply then).
pub fn applicable_profiles<'a>(
    policy: &'a Fido2Policy,
    scope: &UserScope,
) -> Vec<&'a PasskeyProfile> {
    let Some(default) = default_profile(policy) else {
        return Vec::new();
    };
    let mut wanted: Vec<&str> = Vec::new();
    for t in policy
        .include_targets
        .iter()
        .filter(|t| scope.is_targeted_by(t))
    {
        if t.allowed_passkey_profiles.is_empty() {
            wanted.push(&default.id);
        } else {
            wanted.extend(t.allowed_passkey_profiles.iter().map(String::as_str));
        }
    }
    let out: Vec<&PasskeyProfile> = policy
        .passkey_profiles
        .iter()
        .filter(|p| wanted.iter().any(|w| w.eq_ignore_ascii_case(&p.id)))
        .collect();
    if out.is_empty() {
        vec![default]
    } else {
        out
    }
}

/// The tenant-wide restrictions without looking at targets: the default passkey profile
/// when the policy has profiles, otherwise the deprecated top-level fields. For one
/// user, use [`applicable_profiles`] (or [`check_key_for_user`]).
pub fn effective_restrictions(policy: &Fido2Policy) -> EffectiveRestrictions {
    match default_profile(policy) {
        Some(p) => EffectiveRestrictions::of_profile(p),
        None => EffectiveRestrictions::legacy(policy),
    }
}

/// Checks a security key against the restrictions that apply to the user: with passkey
/// profiles, the key is acceptable when **any** of the user's profiles
/// ([`applicable_profiles`]) accepts it (a user in scope of several profiles may
/// register what either allows); the error is [`PreflightError::BlockedByProfiles`],
/// naming every applicable profile with its reason.
/// Without profiles, the deprecated top-level fields decide.
pub fn check_key_for_user(
    policy: &Fido2Policy,
    scope: &UserScope,
    aaguid: &str,
    attested: bool,
) -> Result<(), PreflightError> {
    let profiles = applicable_profiles(policy, scope);
    if profiles.is_empty() {
        return EffectiveRestrictions::legacy(policy).check_key(aaguid, attested);
    }
    let mut refusals = Vec::new();
    for p in profiles {
        match EffectiveRestrictions::of_profile(p).check_key(aaguid, attested) {
            Ok(()) => return Ok(()),
            Err(e) => refusals.push(refusal_of(p, e)),
        }
    }
    Err(refused_by(refusals))
}

/// Checks a security key when the user's targets could not be read (the app lacks the
/// directory permissions): acceptable when **any** passkey profile accepts it, or the
/// deprecated top-level fields for a policy without profiles.
pub fn check_key_any_profile(
    policy: &Fido2Policy,
    aaguid: &str,
    attested: bool,
) -> Result<(), PreflightError> {
    if policy.passkey_profiles.is_empty() {
        return EffectiveRestrictions::legacy(policy).check_key(aaguid, attested);
    }
    let mut refusals = Vec::new();
    for p in &policy.passkey_profiles {
        match EffectiveRestrictions::of_profile(p).check_key(aaguid, attested) {
            Ok(()) => return Ok(()),
            Err(e) => refusals.push(refusal_of(p, e)),
        }
    }
    Err(refused_by(refusals))
}

/// A pre-flight step that was skipped because the app lacks the permission it needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkippedCheck {
    /// What was not checked (`FIDO2 method policy`, `policy targets (user lookup)`, ...).
    pub step: &'static str,
    /// The application permission that step needs.
    pub permission: &'static str,
}

/// What a pre-flight that passed could not check.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PreflightReport {
    /// Steps skipped for want of a permission (empty: everything was checked).
    pub skipped: Vec<SkippedCheck>,
}

/// Checks whether `aaguid` (hyphenated, any case) is allowed by the restrictions.
pub fn check_aaguid(
    restrictions: &EffectiveRestrictions,
    aaguid: &str,
) -> Result<(), PreflightError> {
    let Some(k) = &restrictions.key_restrictions else {
        return Ok(());
    };
    let listed = k.aa_guids.iter().any(|a| a.eq_ignore_ascii_case(aaguid));
    // A null enforcementType reads as `block`, the value a fresh tenant shows.
    match (k.enforcement_type.unwrap_or(EnforcementType::Block), listed) {
        (EnforcementType::Block, true) => Err(PreflightError::AaguidBlocked {
            aaguid: aaguid.to_ascii_lowercase(),
        }),
        (EnforcementType::Allow, false) => Err(PreflightError::AaguidNotAllowed {
            aaguid: aaguid.to_ascii_lowercase(),
        }),
        _ => Ok(()),
    }
}

/// The whole pre-flight for one user: method enabled, the user in the include targets
/// and not in the exclude targets, self-service registration allowed, and the key
/// (AAGUID, `attested`: it gives packed attestation with a certificate) acceptable to
/// one of the passkey profiles that apply to the user (or to the deprecated fields).
pub fn preflight(
    policy: &Fido2Policy,
    scope: &UserScope,
    aaguid: &str,
    attested: bool,
) -> Result<(), PreflightError> {
    if policy.state != MethodState::Enabled {
        return Err(PreflightError::MethodDisabled);
    }
    check_targets(policy, scope)?;
    if policy.is_self_service_registration_allowed != Some(true) {
        return Err(PreflightError::SelfServiceRegistrationNotAllowed);
    }
    check_key_for_user(policy, scope, aaguid, attested)
}

/// Formats 16 AAGUID bytes as the lower-case hyphenated form Graph uses.
pub use fido_core::aaguid::format_aaguid;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::PasskeyProfile;

    fn policy() -> Fido2Policy {
        Fido2Policy {
            context: None,
            odata_type: None,
            id: "Fido2".into(),
            state: MethodState::Enabled,
            is_self_service_registration_allowed: Some(true),
            is_attestation_enforced: Some(false),
            key_restrictions: None,
            include_targets: vec![target(ALL_USERS, &[])],
            exclude_targets: vec![],
            passkey_profiles: vec![],
            default_passkey_profile: None,
        }
    }

    fn target(id: &str, profiles: &[&str]) -> PolicyTarget {
        PolicyTarget {
            target_type: if id.starts_with("user") {
                "user"
            } else {
                "group"
            }
            .into(),
            id: id.into(),
            is_registration_required: Some(false),
            allowed_passkey_profiles: profiles.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn kim() -> UserScope {
        UserScope::new("user-kim", vec!["g-sales".into()])
    }

    fn profile(id: &str, types: &str, allow: Option<&str>, attest: bool) -> PasskeyProfile {
        PasskeyProfile {
            id: id.into(),
            name: Some(id.into()),
            passkey_types: Some(types.into()),
            attestation_enforcement: Some(if attest {
                AttestationEnforcement::RegistrationOnly
            } else {
                AttestationEnforcement::Disabled
            }),
            key_restrictions: allow.map(|a| KeyRestrictions {
                is_enforced: true,
                enforcement_type: Some(EnforcementType::Allow),
                aa_guids: vec![a.into()],
            }),
        }
    }
    const YK: &str = "cb69481e-8ff7-4039-93ec-0a2729a154a8";

    #[test]
    fn fresh_tenant_allows_everything() {
        assert_eq!(preflight(&policy(), &kim(), YK, false), Ok(()));
    }

    #[test]
    fn disabled_and_no_self_service_refused() {
        let mut p = policy();
        p.state = MethodState::Disabled;
        assert_eq!(
            preflight(&p, &kim(), YK, true),
            Err(PreflightError::MethodDisabled)
        );
        let mut p = policy();
        p.is_self_service_registration_allowed = Some(false);
        assert_eq!(
            preflight(&p, &kim(), YK, true),
            Err(PreflightError::SelfServiceRegistrationNotAllowed)
        );
    }

    #[test]
    fn top_level_block_list_and_attestation() {
        let mut p = policy();
        p.key_restrictions = Some(KeyRestrictions {
            is_enforced: true,
            enforcement_type: Some(EnforcementType::Block),
            aa_guids: vec![YK.to_uppercase()],
        });
        assert!(matches!(
            preflight(&p, &kim(), YK, true),
            Err(PreflightError::AaguidBlocked { .. })
        ));
        p.key_restrictions.as_mut().unwrap().is_enforced = false;
        assert_eq!(preflight(&p, &kim(), YK, true), Ok(()));
        p.is_attestation_enforced = Some(true);
        assert_eq!(
            preflight(&p, &kim(), YK, false),
            Err(PreflightError::AttestationRequired)
        );
    }

    #[test]
    fn passkey_profile_overrides_deprecated_fields() {
        let mut p = policy();
        p.is_attestation_enforced = Some(true);
        p.passkey_profiles.push(PasskeyProfile {
            id: "p".into(),
            name: None,
            passkey_types: Some("deviceBound".into()),
            attestation_enforcement: Some(AttestationEnforcement::Disabled),
            key_restrictions: Some(KeyRestrictions {
                is_enforced: true,
                enforcement_type: Some(EnforcementType::Allow),
                aa_guids: vec![YK.into()],
            }),
        });
        assert_eq!(plain(&p, &kim(), YK, false), Ok(()));
        assert!(matches!(
            plain(&p, &kim(), "00000000-0000-0000-0000-000000000000", false),
            Err(PreflightError::AaguidNotAllowed { .. })
        ));
        p.passkey_profiles[0].passkey_types = Some("synced".into());
        assert_eq!(
            plain(&p, &kim(), YK, false),
            Err(PreflightError::DeviceBoundNotAllowed {
                allowed: "synced".into()
            })
        );
    }

    #[test]
    fn include_and_exclude_targets() {
        let mut p = policy();
        p.include_targets = vec![target("g-eng", &[])];
        assert_eq!(
            preflight(&p, &kim(), YK, true),
            Err(PreflightError::UserNotTargeted {
                user_id: "user-kim".into()
            })
        );
        // By group (ids compared case-insensitively) or by user id.
        p.include_targets.push(target("G-SALES", &[]));
        assert_eq!(preflight(&p, &kim(), YK, true), Ok(()));
        p.include_targets = vec![target("user-kim", &[])];
        assert_eq!(preflight(&p, &kim(), YK, true), Ok(()));
        // Exclusion wins over inclusion, including over all_users.
        p.include_targets = vec![target(ALL_USERS, &[])];
        p.exclude_targets = vec![target("g-sales", &[])];
        assert_eq!(
            preflight(&p, &kim(), YK, true),
            Err(PreflightError::UserExcluded {
                user_id: "user-kim".into(),
                target: "g-sales".into()
            })
        );
        let lee = UserScope::new("user-lee", vec![]);
        assert_eq!(preflight(&p, &lee, YK, true), Ok(()));
        p.exclude_targets = vec![];
        p.include_targets = vec![];
        assert!(matches!(
            preflight(&p, &lee, YK, true),
            Err(PreflightError::UserNotTargeted { .. })
        ));
        p.include_targets = vec![target("g-a", &[]), target("user-x", &[])];
        p.exclude_targets = vec![target("g-a", &[]), target(ALL_USERS, &[])];
        assert_eq!(target_group_ids(&p), vec!["g-a".to_string()]);
    }

    /// The pre-flight's plain reason (without the profiles that gave it).
    fn plain(
        p: &Fido2Policy,
        s: &UserScope,
        aaguid: &str,
        att: bool,
    ) -> Result<(), PreflightError> {
        preflight(p, s, aaguid, att).map_err(|e| e.cause().clone())
    }

    #[test]
    fn profiles_are_selected_by_target() {
        const OTHER: &str = "00000000-0000-0000-0000-0000000000aa";
        let mut p = policy();
        // Default profile: YubiKeys only, no attestation. Sales profile: the other key,
        // attestation required.
        p.passkey_profiles = vec![
            profile("default", "deviceBound,synced", Some(YK), false),
            profile("sales", "deviceBound", Some(OTHER), true),
        ];
        p.default_passkey_profile = Some("default".into());
        p.include_targets = vec![
            target(ALL_USERS, &["default"]),
            target("g-sales", &["sales"]),
        ];
        let lee = UserScope::new("user-lee", vec![]);
        // Lee gets only the default profile.
        assert_eq!(
            applicable_profiles(&p, &lee)
                .iter()
                .map(|x| x.id.as_str())
                .collect::<Vec<_>>(),
            ["default"]
        );
        assert!(matches!(
            plain(&p, &lee, OTHER, true),
            Err(PreflightError::AaguidNotAllowed { .. })
        ));
        // Kim is in both: either profile's key passes, each with its own attestation rule.
        assert_eq!(applicable_profiles(&p, &kim()).len(), 2);
        assert_eq!(plain(&p, &kim(), OTHER, true), Ok(()));
        assert_eq!(plain(&p, &kim(), YK, false), Ok(()));
        assert_eq!(
            plain(&p, &kim(), OTHER, false),
            Err(PreflightError::AaguidNotAllowed {
                aaguid: OTHER.into()
            }),
            "neither profile: the first profile's reason"
        );
        // The refusal names both profiles, each with its own reason.
        let named = preflight(&p, &kim(), OTHER, false).unwrap_err();
        let names: Vec<_> = named
            .blocking_profiles()
            .iter()
            .map(|r| (r.profile_id.as_str(), r.reason.clone()))
            .collect();
        assert_eq!(
            names,
            [
                (
                    "default",
                    PreflightError::AaguidNotAllowed {
                        aaguid: OTHER.into()
                    }
                ),
                ("sales", PreflightError::AttestationRequired),
            ]
        );
        assert!(named.to_string().contains("passkey profile"), "{named}");
        // Only the sales target: Kim no longer gets the default profile.
        p.include_targets = vec![target("g-sales", &["sales"])];
        assert!(matches!(
            plain(&p, &kim(), YK, false),
            Err(PreflightError::AaguidNotAllowed { .. })
        ));
        // A target without allowedPasskeyProfiles gets the default profile, which is
        // the one defaultPasskeyProfile names, not necessarily the first.
        p.include_targets = vec![target("g-sales", &[])];
        p.default_passkey_profile = Some("sales".into());
        assert_eq!(applicable_profiles(&p, &kim())[0].id, "sales");
        assert_eq!(plain(&p, &kim(), OTHER, true), Ok(()));
        // Unknown profile ids fall back to the default.
        p.include_targets = vec![target("g-sales", &["gone"])];
        assert_eq!(applicable_profiles(&p, &kim())[0].id, "sales");
        // The device-bound rule comes from the selected profile, not the first one.
        p.passkey_profiles[0].passkey_types = Some("synced".into());
        p.include_targets = vec![target(ALL_USERS, &["default", "sales"])];
        assert_eq!(plain(&p, &kim(), OTHER, true), Ok(()));
        p.include_targets = vec![target(ALL_USERS, &["default"])];
        assert!(matches!(
            plain(&p, &kim(), YK, true),
            Err(PreflightError::DeviceBoundNotAllowed { .. })
        ));
    }

    #[test]
    fn aaguid_format() {
        let mut b = [0u8; 16];
        b[0] = 0xcb;
        b[15] = 0xa8;
        assert_eq!(format_aaguid(&b), "cb000000-0000-0000-0000-0000000000a8");
    }
}
