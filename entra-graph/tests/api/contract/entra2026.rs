//! Entra as of 2026 (issue 19 items 1 and 2) against the emulator over HTTP: v1.0 and
//! beta creationOptions as Entra serves them, the pre-flight matrix over passkey
//! profiles (each verdict checked against the emulator's own at registration), the
//! policy's limits, and passkeys the policy now blocks at sign-in. The emulator
//! behaviour each test relies on is cited in `docs/ENTRA.md`, section "2026".

use super::*;
use entra_graph::emulator::legacy_policy;
use entra_graph::signin::{PolicyLimitError, MAX_POLICY_BYTES};
use entra_graph::wire::Fido2Policy;

const LEE: &str = "leeg@contoso.onmicrosoft.com";
const LEE_ID: &str = "c8a9a3b2-4f5e-4d6c-8b7a-9e0f1a2b3c4d";
const NOT_YK: &str = "00000000-0000-0000-0000-0000000000aa";

fn target(id: &str, profiles: &[&str]) -> PolicyTarget {
    PolicyTarget {
        target_type: "group".into(),
        id: id.into(),
        is_registration_required: Some(false),
        allowed_passkey_profiles: profiles.iter().map(|p| p.to_string()).collect(),
    }
}

/// A profile: `types` allowed, attestation enforced or not, and an allow or block list.
fn profile(
    id: &str,
    types: &str,
    attest: bool,
    list: Option<(EnforcementType, &str)>,
) -> PasskeyProfile {
    PasskeyProfile {
        id: id.into(),
        name: Some(format!("{id} keys")),
        passkey_types: Some(types.into()),
        attestation_enforcement: Some(if attest {
            AttestationEnforcement::RegistrationOnly
        } else {
            AttestationEnforcement::Disabled
        }),
        key_restrictions: list.map(|(kind, aaguid)| KeyRestrictions {
            is_enforced: true,
            enforcement_type: Some(kind),
            aa_guids: vec![aaguid.into()],
        }),
    }
}

/// A tenant with `profiles` (the first is the default), all users included with the
/// default profile unless `targets` says otherwise.
fn with_profiles(profiles: Vec<PasskeyProfile>, targets: Vec<PolicyTarget>) -> Fido2Policy {
    let mut p = legacy_policy();
    p.default_passkey_profile = profiles.first().map(|x| x.id.clone());
    p.passkey_profiles = profiles;
    if !targets.is_empty() {
        p.include_targets = targets;
    }
    p
}

/// The status of the step that refused the registration (creationOptions or the POST),
/// `None` when it registered. A refusal must be the policy's (not a malformed request).
fn register_status(c: &GraphClient, user: &str, attest: Attest) -> Option<u16> {
    let policy_refusal = |e: GraphError| {
        let m = e.to_string();
        assert!(
            ["by policy", "passkey profile", "not enabled for this user"]
                .iter()
                .any(|w| m.contains(w)),
            "not a policy refusal: {m}"
        );
        e.status().unwrap_or(0)
    };
    if let Err(e) = c.creation_options(user, None) {
        return Some(policy_refusal(e));
    }
    let args = MakeArgs {
        attest,
        ..MakeArgs::default()
    };
    let (body, _) = registration(c, user, "matrix", None, &args);
    c.register(user, &body).err().map(policy_refusal)
}

/// The pre-flight's verdict for the soft key (YubiKey 5 AAGUID), as the variant's name,
/// with the ids of the passkey profiles the refusal names (issue 19 item 2: a refused
/// pre-flight names the blocking profile). Each named profile must appear in the
/// message, with its name and id.
fn verdict(c: &GraphClient, user: &str, attested: bool) -> (&'static str, Vec<String>) {
    match c.preflight(user, YK5_STR, attested) {
        Ok(_) => ("allowed", Vec::new()),
        Err(GraphError::Preflight(e)) => {
            let named: Vec<String> = e
                .blocking_profiles()
                .iter()
                .map(|r| r.profile_id.clone())
                .collect();
            let message = GraphError::Preflight(e.clone()).to_string();
            for r in e.blocking_profiles() {
                let name = r.profile_name.as_deref().unwrap_or_default();
                assert!(
                    message.contains(name) && message.contains(&format!("id {}", r.profile_id)),
                    "the refusal names profile {name:?} ({}): {message}",
                    r.profile_id
                );
            }
            let kind = match e.cause() {
                PreflightError::AaguidBlocked { .. } => "aaguid_blocked",
                PreflightError::AaguidNotAllowed { .. } => "aaguid_not_allowed",
                PreflightError::DeviceBoundNotAllowed { .. } => "type_not_allowed",
                PreflightError::AttestationRequired => "attestation_required",
                PreflightError::UserExcluded { .. } => "excluded",
                PreflightError::UserNotTargeted { .. } => "not_targeted",
                other => panic!("unexpected pre-flight error {other:?}"),
            };
            (kind, named)
        }
        Err(other) => panic!("pre-flight failed: {other}"),
    }
}

/// The pre-flight matrix over passkey profiles (issue 19 item 2): for each policy, the
/// pre-flight's verdict for Kim (in the group) and Lee (not in it), and the emulator's
/// verdict at registration for the same key, which must agree.
#[test]
fn preflight_matrix_over_passkey_profiles_agrees_with_the_emulator() {
    let emu = emulator();
    // The soft key's model is in the tenant's FIDO metadata: its x5c attestation counts.
    emu.set_attestation_metadata(Some(mds_listing_the_soft_key()));
    let c = client(&emu, ApiVersion::V1);
    let all_yk = || {
        profile(
            "default",
            "deviceBound",
            true,
            Some((EnforcementType::Allow, YK5_STR)),
        )
    };
    struct Case {
        name: &'static str,
        policy: Fido2Policy,
        /// Kim's and Lee's verdicts for an attested key.
        kim: &'static str,
        lee: &'static str,
        /// Kim's verdict for the same key without attestation.
        kim_unattested: &'static str,
        /// The passkey profiles each refusal names (Kim, Lee, Kim unattested): every
        /// profile assigned to the user, when the policy has profiles.
        by: [&'static [&'static str]; 3],
    }
    let mut legacy_blocking = legacy_policy();
    legacy_blocking.key_restrictions = Some(KeyRestrictions {
        is_enforced: true,
        enforcement_type: Some(EnforcementType::Block),
        aa_guids: vec![YK5_STR.into()],
    });
    let mut legacy_attesting = legacy_policy();
    legacy_attesting.is_attestation_enforced = Some(true);
    // The same deprecated block list, in a tenant with profiles: the profile decides.
    let mut profiles_beat_legacy = with_profiles(vec![all_yk()], vec![]);
    profiles_beat_legacy.key_restrictions = legacy_blocking.key_restrictions.clone();
    let mut excluded = with_profiles(
        vec![all_yk()],
        vec![target("all_users", &[]), target(GROUP, &["default"])],
    );
    excluded.exclude_targets = vec![target(GROUP, &[])];
    let cases = vec![
        Case {
            name: "allowed: device-bound, attested, AAGUID on the allow list",
            policy: with_profiles(vec![all_yk()], vec![]),
            kim: "allowed",
            lee: "allowed",
            kim_unattested: "attestation_required",
            by: [&[], &[], &["default"]],
        },
        Case {
            name: "blocked by AAGUID (not on the allow list)",
            policy: with_profiles(
                vec![profile(
                    "default",
                    "deviceBound",
                    false,
                    Some((EnforcementType::Allow, NOT_YK)),
                )],
                vec![],
            ),
            kim: "aaguid_not_allowed",
            lee: "aaguid_not_allowed",
            kim_unattested: "aaguid_not_allowed",
            by: [&["default"], &["default"], &["default"]],
        },
        Case {
            name: "blocked by AAGUID (on the block list)",
            policy: with_profiles(
                vec![profile(
                    "default",
                    "deviceBound,synced",
                    false,
                    Some((EnforcementType::Block, YK5_STR)),
                )],
                vec![],
            ),
            kim: "aaguid_blocked",
            lee: "aaguid_blocked",
            kim_unattested: "aaguid_blocked",
            by: [&["default"], &["default"], &["default"]],
        },
        Case {
            name: "blocked by passkey type (synced only)",
            policy: with_profiles(vec![profile("default", "synced", false, None)], vec![]),
            kim: "type_not_allowed",
            lee: "type_not_allowed",
            kim_unattested: "type_not_allowed",
            by: [&["default"], &["default"], &["default"]],
        },
        Case {
            name: "blocked by attestation (enforced, key unattested)",
            policy: with_profiles(vec![profile("default", "deviceBound", true, None)], vec![]),
            kim: "allowed",
            lee: "allowed",
            kim_unattested: "attestation_required",
            by: [&[], &[], &["default"]],
        },
        Case {
            name: "any assigned profile fully satisfied admits (Kim: group profile)",
            policy: with_profiles(
                vec![
                    profile("default", "synced", false, None),
                    profile(
                        "group",
                        "deviceBound",
                        false,
                        Some((EnforcementType::Allow, YK5_STR)),
                    ),
                ],
                vec![target("all_users", &["default"]), target(GROUP, &["group"])],
            ),
            kim: "allowed",
            lee: "type_not_allowed",
            kim_unattested: "allowed",
            by: [&[], &["default"], &[]],
        },
        Case {
            name: "excluded group beats included group",
            policy: excluded,
            kim: "excluded",
            lee: "allowed",
            kim_unattested: "excluded",
            by: [&[], &[], &[]],
        },
        Case {
            name: "no profiles: the top-level block list decides (fallback)",
            policy: legacy_blocking,
            kim: "aaguid_blocked",
            lee: "aaguid_blocked",
            kim_unattested: "aaguid_blocked",
            by: [&[], &[], &[]],
        },
        Case {
            name: "no profiles: the top-level attestation switch decides (fallback)",
            policy: legacy_attesting,
            kim: "allowed",
            lee: "allowed",
            kim_unattested: "attestation_required",
            by: [&[], &[], &[]],
        },
        Case {
            name: "profiles present: the top-level fields are ignored",
            policy: profiles_beat_legacy,
            kim: "allowed",
            lee: "allowed",
            kim_unattested: "attestation_required",
            by: [&[], &[], &["default"]],
        },
    ];
    for case in cases {
        emu.update_policy(case.policy.clone())
            .unwrap_or_else(|e| panic!("{}: {e}", case.name));
        let (kim, lee, kim_unattested) = (
            verdict(&c, KIM, true),
            verdict(&c, LEE, true),
            verdict(&c, KIM, false),
        );
        assert_eq!(
            (kim.0, lee.0, kim_unattested.0),
            (case.kim, case.lee, case.kim_unattested),
            "{}",
            case.name
        );
        assert_eq!(
            [kim.1, lee.1, kim_unattested.1],
            case.by
                .map(|b| b.iter().map(|s| s.to_string()).collect::<Vec<_>>()),
            "{}: the profiles each refusal names",
            case.name
        );
        // The emulator decides the same at registration (400 when refused).
        let expect = |v: &str| (v != "allowed").then_some(400);
        assert_eq!(
            register_status(&c, KIM, Attest::X5c),
            expect(case.kim),
            "{}: Kim, attested",
            case.name
        );
        assert_eq!(
            register_status(&c, LEE, Attest::X5c),
            expect(case.lee),
            "{}: Lee, attested",
            case.name
        );
        assert_eq!(
            register_status(&c, KIM, Attest::None),
            expect(case.kim_unattested),
            "{}: Kim, no attestation",
            case.name
        );
    }
    let _ = LEE_ID;
}

/// Entra's limits on the policy: at most three passkey profiles and a 20 KB document;
/// the emulator refuses a PATCH past either with 400 and keeps the policy it had.
#[test]
fn the_emulator_keeps_the_policy_inside_entras_limits() {
    let emu = emulator();
    let token = raw_token(&emu);
    let auth = format!("Bearer {token}");
    let headers = [
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/json"),
    ];
    let path =
        "/beta/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/fido2";
    let three: Vec<PasskeyProfile> = ["a", "b", "c"]
        .iter()
        .map(|id| profile(id, "deviceBound", false, None))
        .collect();
    let body = |profiles: &[PasskeyProfile]| {
        serde_json::to_vec(&serde_json::json!({
            "passkeyProfiles": profiles,
            "defaultPasskeyProfile": "a",
        }))
        .unwrap()
    };
    let (status, text) = raw(&emu, "PATCH", path, &headers, &body(&three));
    assert_eq!(status, 204, "{text}");
    assert_eq!(emu.policy().passkey_profiles.len(), 3);
    let mut four = three.clone();
    four.push(profile("d", "deviceBound", false, None));
    let (status, text) = raw(&emu, "PATCH", path, &headers, &body(&four));
    assert_eq!(status, 400);
    assert!(text.contains("at most 3 passkey profiles"), "{text}");
    assert_eq!(emu.policy().passkey_profiles.len(), 3, "unchanged");
    // A block list that pushes the document past 20 KB.
    let mut huge = three.clone();
    huge[0].key_restrictions = Some(KeyRestrictions {
        is_enforced: true,
        enforcement_type: Some(EnforcementType::Block),
        aa_guids: (0..MAX_POLICY_BYTES / 36)
            .map(|i| format!("{i:08x}-0000-4000-8000-000000000000"))
            .collect(),
    });
    let (status, text) = raw(&emu, "PATCH", path, &headers, &body(&huge));
    assert_eq!(status, 400);
    assert!(text.contains("20 KB"), "{text}");
    assert!(emu.policy().passkey_profiles[0].key_restrictions.is_none());
    // The in-process administrator's change is held to the same limits.
    let mut p = emu.policy();
    p.passkey_profiles = four;
    assert_eq!(
        emu.update_policy(p),
        Err(PolicyLimitError::TooManyProfiles { count: 4 })
    );
    // The client reads what was stored: three profiles, inline on beta.
    let c = client(&emu, ApiVersion::Beta);
    assert_eq!(c.fido2_policy().unwrap().passkey_profiles.len(), 3);
}

/// Key restrictions and passkey types apply at sign-in too (attestation does not): a
/// registered passkey whose AAGUID the policy later blocks is reported with the profile
/// that blocks it.
#[test]
fn passkeys_a_policy_change_blocks_at_sign_in_name_the_profile() {
    let emu = emulator();
    let c = client(&emu, ApiVersion::V1);
    assert_eq!(register_status(&c, KIM, Attest::X5c), None);
    let yk = vec![(YK5_STR.to_owned(), PasskeyType::DeviceBound)];
    assert_eq!(c.sign_in_blocks(KIM_ID, &yk).unwrap(), vec![None]);
    // The default profile now allows only another model.
    let mut p = emu.policy();
    p.passkey_profiles[0].key_restrictions = Some(KeyRestrictions {
        is_enforced: true,
        enforcement_type: Some(EnforcementType::Allow),
        aa_guids: vec![NOT_YK.into()],
    });
    // Attestation enforcement does not touch registered passkeys.
    p.passkey_profiles[0].attestation_enforcement = Some(AttestationEnforcement::RegistrationOnly);
    emu.update_policy(p.clone()).unwrap();
    let blocks = c.sign_in_blocks(KIM_ID, &yk).unwrap();
    let b = blocks[0].as_ref().expect("blocked");
    assert!(matches!(b.reason, PreflightError::AaguidNotAllowed { .. }));
    assert_eq!(
        b.blocking_profiles().as_deref(),
        Some("Default passkey profile")
    );
    assert!(b.to_string().contains("would fail at sign-in"), "{b}");
    // A synced passkey of another model is still fine; disallowing synced blocks it.
    let synced = vec![(NOT_YK.to_owned(), PasskeyType::Synced)];
    assert_eq!(c.sign_in_blocks(KIM_ID, &synced).unwrap(), vec![None]);
    p.passkey_profiles[0].passkey_types = Some("deviceBound".into());
    emu.update_policy(p).unwrap();
    assert!(matches!(
        c.sign_in_blocks(KIM_ID, &synced).unwrap()[0]
            .as_ref()
            .unwrap()
            .reason,
        PreflightError::SyncedNotAllowed { .. }
    ));
}

/// v1.0 by default, beta where only beta will do (issue 19 item 1): v1.0 creationOptions
/// takes no parameter (the emulator refuses the function-call form there, as Entra does)
/// and its challenge lives 5 minutes; beta takes the function-call form; a v1.0 client
/// refuses a longer timeout before sending anything.
#[test]
fn v1_refuses_the_parameter_and_beta_takes_the_function_call_form() {
    let emu = emulator();
    assert_eq!(
        entra_graph::GraphConfig::new("t").version,
        ApiVersion::V1,
        "new connections use v1.0"
    );
    let token = raw_token(&emu);
    let auth = format!("Bearer {token}");
    let get = |path: &str| raw(&emu, "GET", path, &[("Authorization", auth.as_str())], b"");
    let base = format!("users/{KIM}/authentication/fido2Methods");
    let (status, text) = get(&format!(
        "/v1.0/{base}/creationOptions(challengeTimeoutInMinutes=10)"
    ));
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("takes no parameter"), "{text}");
    let (status, text) = get(&format!(
        "/beta/{base}/creationOptions(challengeTimeoutInMinutes=10)"
    ));
    assert_eq!(status, 200, "{text}");
    let (status, _) = get(&format!("/v1.0/{base}/creationOptions"));
    assert_eq!(status, 200);
    // The v1.0 challenge lives the fixed 5 minutes.
    let v1 = client(&emu, ApiVersion::V1);
    let o = v1.creation_options(KIM, None).unwrap();
    let left = o
        .challenge_expiry()
        .unwrap()
        .duration_since(std::time::SystemTime::now())
        .unwrap_or_default()
        .as_secs();
    assert!((295..=300).contains(&left), "{left}");
    let before = emu.request_log().len();
    assert!(matches!(
        v1.creation_options(KIM, Some(60)),
        Err(GraphError::Config {
            setting: "challenge_timeout_minutes",
            ..
        })
    ));
    assert_eq!(emu.request_log().len(), before, "nothing sent");
    let beta = client(&emu, ApiVersion::Beta);
    let o = beta.creation_options(KIM, Some(60)).unwrap();
    assert!(o.challenge_expiry().is_some());
}
