//! Policy pre-flight: decide from the tenant's FIDO2 policy whether a key with a given
//! AAGUID and attestation would be accepted, before a key is spent on it.

use crate::wire::{
    AttestationEnforcement, EnforcementType, Fido2Policy, KeyRestrictions, MethodState,
};

/// Why the pre-flight refuses a registration.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PreflightError {
    /// The FIDO2 method is disabled in the tenant.
    #[error("the FIDO2 authentication method is disabled in the tenant")]
    MethodDisabled,
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
    /// Attestation is enforced but the key would register without (verifiable) attestation.
    #[error("the tenant enforces attestation but this key gives none")]
    AttestationRequired,
}

/// The restrictions in force: passkey profiles win over the deprecated top-level fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EffectiveRestrictions {
    /// Whether attestation is enforced at registration.
    pub attestation_enforced: bool,
    /// Key restrictions, if any are enforced.
    pub key_restrictions: Option<KeyRestrictions>,
}

/// Works out the effective restrictions of a policy. With passkey profiles present the
/// first profile (the default one) is used; otherwise the deprecated top-level fields.
pub fn effective_restrictions(policy: &Fido2Policy) -> EffectiveRestrictions {
    if let Some(profile) = policy.passkey_profiles.first() {
        EffectiveRestrictions {
            attestation_enforced: profile.attestation_enforcement
                == Some(AttestationEnforcement::RegistrationOnly),
            key_restrictions: profile.key_restrictions.clone().filter(|k| k.is_enforced),
        }
    } else {
        EffectiveRestrictions {
            attestation_enforced: policy.is_attestation_enforced.unwrap_or(false),
            key_restrictions: policy.key_restrictions.clone().filter(|k| k.is_enforced),
        }
    }
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
    match (k.enforcement_type, listed) {
        (EnforcementType::Block, true) => Err(PreflightError::AaguidBlocked {
            aaguid: aaguid.to_ascii_lowercase(),
        }),
        (EnforcementType::Allow, false) => Err(PreflightError::AaguidNotAllowed {
            aaguid: aaguid.to_ascii_lowercase(),
        }),
        _ => Ok(()),
    }
}

/// The whole pre-flight: method enabled, self-service registration allowed, AAGUID
/// allowed, attestation acceptable (`attested`: the key gives packed attestation).
pub fn preflight(policy: &Fido2Policy, aaguid: &str, attested: bool) -> Result<(), PreflightError> {
    if policy.state != MethodState::Enabled {
        return Err(PreflightError::MethodDisabled);
    }
    if policy.is_self_service_registration_allowed != Some(true) {
        return Err(PreflightError::SelfServiceRegistrationNotAllowed);
    }
    if let Some(types) = policy
        .passkey_profiles
        .first()
        .and_then(|p| p.passkey_types.as_deref())
    {
        if !types.split(',').any(|t| t.trim() == "deviceBound") {
            return Err(PreflightError::DeviceBoundNotAllowed {
                allowed: types.to_owned(),
            });
        }
    }
    let eff = effective_restrictions(policy);
    check_aaguid(&eff, aaguid)?;
    if eff.attestation_enforced && !attested {
        return Err(PreflightError::AttestationRequired);
    }
    Ok(())
}

/// Formats 16 AAGUID bytes as the lower-case hyphenated form Graph uses.
pub fn format_aaguid(bytes: &[u8; 16]) -> String {
    let mut s = String::with_capacity(36);
    for (i, b) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        s.push_str(&format!("{b:02x}"));
    }
    s
}

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
            include_targets: vec![],
            exclude_targets: vec![],
            passkey_profiles: vec![],
        }
    }
    const YK: &str = "cb69481e-8ff7-4039-93ec-0a2729a154a8";

    #[test]
    fn fresh_tenant_allows_everything() {
        assert_eq!(preflight(&policy(), YK, false), Ok(()));
    }

    #[test]
    fn disabled_and_no_self_service_refused() {
        let mut p = policy();
        p.state = MethodState::Disabled;
        assert_eq!(preflight(&p, YK, true), Err(PreflightError::MethodDisabled));
        let mut p = policy();
        p.is_self_service_registration_allowed = Some(false);
        assert_eq!(
            preflight(&p, YK, true),
            Err(PreflightError::SelfServiceRegistrationNotAllowed)
        );
    }

    #[test]
    fn top_level_block_list_and_attestation() {
        let mut p = policy();
        p.key_restrictions = Some(KeyRestrictions {
            is_enforced: true,
            enforcement_type: EnforcementType::Block,
            aa_guids: vec![YK.to_uppercase()],
        });
        assert!(matches!(
            preflight(&p, YK, true),
            Err(PreflightError::AaguidBlocked { .. })
        ));
        p.key_restrictions.as_mut().unwrap().is_enforced = false;
        assert_eq!(preflight(&p, YK, true), Ok(()));
        p.is_attestation_enforced = Some(true);
        assert_eq!(
            preflight(&p, YK, false),
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
                enforcement_type: EnforcementType::Allow,
                aa_guids: vec![YK.into()],
            }),
        });
        assert_eq!(preflight(&p, YK, false), Ok(()));
        assert!(matches!(
            preflight(&p, "00000000-0000-0000-0000-000000000000", false),
            Err(PreflightError::AaguidNotAllowed { .. })
        ));
        p.passkey_profiles[0].passkey_types = Some("synced".into());
        assert_eq!(
            preflight(&p, YK, false),
            Err(PreflightError::DeviceBoundNotAllowed {
                allowed: "synced".into()
            })
        );
    }

    #[test]
    fn aaguid_format() {
        let mut b = [0u8; 16];
        b[0] = 0xcb;
        b[15] = 0xa8;
        assert_eq!(format_aaguid(&b), "cb000000-0000-0000-0000-0000000000a8");
    }
}
