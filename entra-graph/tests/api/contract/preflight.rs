//! Preflight against the FIDO2 policy: targets, nested groups and passkey profiles,
//! checked to agree with the emulator's own decisions.

use super::*;

#[test]
fn preflight_against_changed_policy() {
    let emu = emulator();
    let c = client(&emu, ApiVersion::V1);
    let mut p = emu.policy();
    p.set_key_restrictions(Some(KeyRestrictions {
        is_enforced: true,
        enforcement_type: Some(EnforcementType::Block),
        aa_guids: vec![YK5_STR.into()],
    }));
    emu.set_policy(p.clone());
    assert!(matches!(
        plain(c.preflight(KIM, YK5_STR, true)),
        Err(GraphError::Preflight(PreflightError::AaguidBlocked { .. }))
    ));
    p.set_key_restrictions(None);
    p.set_attestation_enforced(true);
    emu.set_policy(p.clone());
    assert_eq!(
        plain(c.preflight(KIM, YK5_STR, false)),
        Err(GraphError::Preflight(PreflightError::AttestationRequired))
    );
    p.state = MethodState::Disabled;
    emu.set_policy(p);
    assert_eq!(
        plain(c.preflight(KIM, YK5_STR, true)),
        Err(GraphError::Preflight(PreflightError::MethodDisabled))
    );
}

const LEE: &str = "leeg@contoso.onmicrosoft.com";

fn target(id: &str, profiles: &[&str]) -> PolicyTarget {
    PolicyTarget {
        target_type: "group".into(),
        id: id.into(),
        is_registration_required: Some(false),
        allowed_passkey_profiles: profiles.iter().map(|p| p.to_string()).collect(),
    }
}

/// The status of the step that refused the registration (creationOptions or the POST),
/// `None` when it registered.
fn register_status(c: &GraphClient, user: &str, name: &str, args: &MakeArgs<'_>) -> Option<u16> {
    // Out of the policy's scope, Entra already refuses creationOptions (400).
    if let Err(e) = c.creation_options(user, None) {
        return Some(e.status().unwrap_or(0));
    }
    let (body, _) = registration(c, user, name, None, args);
    c.register(user, &body)
        .err()
        .map(|e| e.status().unwrap_or(0))
}

#[test]
fn preflight_checks_include_and_exclude_targets_like_the_emulator() {
    let emu = emulator();
    let c = client(&emu, ApiVersion::V1);
    let mut p = emu.policy();
    // Only the group (Kim is in it, Lee is not).
    p.include_targets = vec![target(GROUP, &[])];
    emu.set_policy(p.clone());
    assert_eq!(c.preflight(KIM, YK5_STR, true), Ok(()));
    assert_eq!(
        plain(c.preflight(LEE, YK5_STR, true)),
        Err(GraphError::Preflight(PreflightError::UserNotTargeted {
            user_id: "c8a9a3b2-4f5e-4d6c-8b7a-9e0f1a2b3c4d".into()
        }))
    );
    assert!(
        emu.request_log()
            .iter()
            .any(|r| r.path.ends_with("/checkMemberGroups")),
        "membership read from Graph (checkMemberGroups, issue 13 item 5)"
    );
    // The emulator agrees with both verdicts.
    assert_eq!(register_status(&c, KIM, "k", &MakeArgs::default()), None);
    assert_eq!(
        register_status(&c, LEE, "k", &MakeArgs::default()),
        Some(400)
    );
    // Exclusion wins over all_users.
    p.include_targets = vec![target("all_users", &[])];
    p.exclude_targets = vec![target(GROUP, &[])];
    emu.set_policy(p.clone());
    assert_eq!(
        plain(c.preflight(KIM, YK5_STR, true)),
        Err(GraphError::Preflight(PreflightError::UserExcluded {
            user_id: KIM_ID.into(),
            target: GROUP.into()
        }))
    );
    assert_eq!(c.preflight(LEE, YK5_STR, true), Ok(()));
    assert_eq!(
        register_status(&c, KIM, "k2", &MakeArgs::default()),
        Some(400)
    );
    assert_eq!(register_status(&c, LEE, "k", &MakeArgs::default()), None);
    // A target group that no longer exists includes nobody.
    p.include_targets = vec![target("99999999-0000-0000-0000-000000000000", &[])];
    p.exclude_targets = vec![];
    emu.set_policy(p);
    assert!(matches!(
        plain(c.preflight(KIM, YK5_STR, true)),
        Err(GraphError::Preflight(
            PreflightError::UserNotTargeted { .. }
        ))
    ));
    // Unknown user: the typed 404.
    assert_eq!(
        c.preflight("nobody@contoso.onmicrosoft.com", YK5_STR, true)
            .unwrap_err()
            .status(),
        Some(404)
    );
    assert_eq!(emu.method_count(), 2);
}

#[test]
fn preflight_follows_nested_groups_like_the_emulator() {
    const OUTER: &str = "7d1c2b3a-0000-4000-8000-00000000cafe";
    let mut cfg = EmulatorConfig::default();
    cfg.tenant.groups.push(entra_graph::emulator::GroupFixture {
        id: OUTER.into(),
        display_name: "All key holders".into(),
        members: vec![GROUP.into()],
    });
    let emu = Emulator::start(cfg).unwrap();
    let c = client(&emu, ApiVersion::V1);
    let mut p = emu.policy();
    p.include_targets = vec![target(OUTER, &[])];
    emu.set_policy(p);
    assert_eq!(c.preflight(KIM, YK5_STR, true), Ok(()));
    assert!(matches!(
        plain(c.preflight(LEE, YK5_STR, true)),
        Err(GraphError::Preflight(
            PreflightError::UserNotTargeted { .. }
        ))
    ));
    assert_eq!(register_status(&c, KIM, "k", &MakeArgs::default()), None);
    assert_eq!(
        register_status(&c, LEE, "k", &MakeArgs::default()),
        Some(400)
    );
}

#[test]
fn passkey_profiles_selected_by_target_in_preflight_and_emulator() {
    const NOT_YK: &str = "00000000-0000-0000-0000-0000000000aa";
    let emu = emulator();
    let c = client(&emu, ApiVersion::V1);
    let mut p = emu.policy();
    let profile = |id: &str, aaguid: &str, attest: AttestationEnforcement| PasskeyProfile {
        id: id.into(),
        name: Some(id.into()),
        passkey_types: Some("deviceBound".into()),
        attestation_enforcement: Some(attest),
        key_restrictions: Some(KeyRestrictions {
            is_enforced: true,
            enforcement_type: Some(EnforcementType::Allow),
            aa_guids: vec![aaguid.into()],
        }),
    };
    // Everyone: the default profile (not YubiKeys). The group: YubiKeys with attestation.
    p.passkey_profiles = vec![
        profile("default", NOT_YK, AttestationEnforcement::Disabled),
        profile(
            "yubikeys",
            YK5_STR,
            AttestationEnforcement::RegistrationOnly,
        ),
    ];
    p.default_passkey_profile = Some("default".into());
    p.include_targets = vec![
        target("all_users", &["default"]),
        target(GROUP, &["yubikeys"]),
    ];
    emu.set_policy(p.clone());
    // The tenant's FIDO metadata lists the soft key's model (issue 13 item 1).
    emu.set_attestation_metadata(Some(mds_listing_the_soft_key()));
    // Kim (in the group) may register an attested YubiKey; Lee may not.
    assert_eq!(c.preflight(KIM, YK5_STR, true), Ok(()));
    assert!(matches!(
        plain(c.preflight(LEE, YK5_STR, true)),
        Err(GraphError::Preflight(
            PreflightError::AaguidNotAllowed { .. }
        ))
    ));
    // The group's profile enforces attestation; the default one does not list the key.
    assert!(matches!(
        plain(c.preflight(KIM, YK5_STR, false)),
        Err(GraphError::Preflight(
            PreflightError::AaguidNotAllowed { .. }
        ))
    ));
    assert_eq!(register_status(&c, KIM, "k", &MakeArgs::default()), None);
    assert_eq!(
        register_status(&c, LEE, "k", &MakeArgs::default()),
        Some(400)
    );
    let none = MakeArgs {
        attest: Attest::None,
        ..MakeArgs::default()
    };
    assert_eq!(register_status(&c, KIM, "k2", &none), Some(400));
    // A target without allowedPasskeyProfiles gets defaultPasskeyProfile, even when it
    // is not the first profile.
    p.default_passkey_profile = Some("yubikeys".into());
    p.include_targets = vec![target("all_users", &[])];
    emu.set_policy(p);
    assert_eq!(c.preflight(LEE, YK5_STR, true), Ok(()));
    assert_eq!(register_status(&c, LEE, "k", &MakeArgs::default()), None);
    assert_eq!(emu.method_count(), 2);
}

/// Issue 13 item 7: the emulator serves `enforcementType: null`; the pre-flight parses
/// the policy and reads the list as a block list.
#[test]
fn preflight_with_null_enforcement_type() {
    let emu = emulator();
    let c = client(&emu, ApiVersion::V1);
    let mut p = emu.policy();
    p.set_key_restrictions(Some(KeyRestrictions {
        is_enforced: true,
        enforcement_type: None,
        aa_guids: vec![YK5_STR.into()],
    }));
    emu.set_policy(p);
    assert!(c
        .fido2_policy()
        .unwrap()
        .key_restrictions
        .unwrap()
        .enforcement_type
        .is_none());
    assert!(matches!(
        plain(c.preflight(KIM, YK5_STR, true)),
        Err(GraphError::Preflight(PreflightError::AaguidBlocked { .. }))
    ));
    assert_eq!(
        c.preflight(KIM, "ee882879-721c-4913-9775-3dfcce97072a", true),
        Ok(())
    );
}

/// Issue 13 item 2: on v1.0 `passkeyProfiles` is not inline (non-contained navigation
/// property). The default tenant has profiles, as every tenant does since the 2026
/// migration; the client expands them, so the profile's rule decides, not the
/// deprecated top-level fields.
#[test]
fn passkey_profiles_are_expanded_on_v1() {
    let emu = emulator();
    let mut p = emu.policy();
    assert_eq!(
        p.passkey_profiles.len(),
        1,
        "the default tenant has profiles"
    );
    assert!(p.default_passkey_profile.is_some());
    // The profile enforces attestation; the deprecated field says it does not.
    p.passkey_profiles[0].attestation_enforcement = Some(AttestationEnforcement::RegistrationOnly);
    p.is_attestation_enforced = Some(false);
    emu.set_policy(p);
    let c = client(&emu, ApiVersion::V1);
    assert_eq!(c.fido2_policy().unwrap().passkey_profiles.len(), 1);
    assert_eq!(
        plain(c.preflight(KIM, YK5_STR, false)),
        Err(GraphError::Preflight(PreflightError::AttestationRequired))
    );
    let log = emu.request_log();
    let policy_gets: Vec<_> = log.iter().filter(|r| r.path.contains("/fido2")).collect();
    assert!(!policy_gets[0].path.contains("$expand"));
    assert!(policy_gets[1].path.contains("$expand=passkeyProfiles"));
    // The emulator leaves them out on v1.0 unless expanded, and inlines them on beta.
    let beta = client(&emu, ApiVersion::Beta);
    let gets = |emu: &Emulator| {
        emu.request_log()
            .iter()
            .filter(|r| r.path.contains("/fido2"))
            .count()
    };
    let before = gets(&emu);
    assert_eq!(beta.fido2_policy().unwrap().passkey_profiles.len(), 1);
    assert_eq!(gets(&emu), before + 1, "inline on beta: one GET");
}

/// A policy that names a default profile it does not contain, even expanded, is refused
/// instead of being judged by the deprecated fields.
#[test]
fn default_profile_without_profiles_is_refused() {
    let emu = emulator();
    let mut p = emu.policy();
    p.passkey_profiles.clear();
    emu.set_policy(p);
    let c = client(&emu, ApiVersion::V1);
    let e = c.preflight(KIM, YK5_STR, true).unwrap_err();
    assert!(matches!(e, GraphError::Wire(_)), "{e:?}");
}
