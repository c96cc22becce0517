//! Contract tests: every client operation against the emulator, with every fault kind.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use entra_graph::auth::{AccessToken, AssertionAlg, CertificateCredential, Credential, Secret};
use entra_graph::emulator::{
    AppRegistration, Emulator, EmulatorConfig, Fault, FaultRule, ThrottleConfig,
};
use entra_graph::ids::{decode_lenient, encode_b64url};
use entra_graph::policy::PreflightError;
use entra_graph::wire::{
    AttestationEnforcement, AttestationLevel, EnforcementType, KeyRestrictions, MethodState,
    PasskeyProfile, PasskeyType, PolicyTarget,
};
use entra_graph::{ApiVersion, GraphClient, GraphError};

use super::harness::*;
use super::soft_key::{Attest, MakeArgs, YK5_STR};

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

#[test]
fn register_list_get_delete_round_trip_v1() {
    let emu = emulator();
    let c = client(&emu, ApiVersion::V1);
    let (body, cred_id) = registration(&c, KIM, "Kim's YubiKey", None, &MakeArgs::default());
    let reg = c.register(KIM, &body).unwrap();
    assert!(reg.request_id.is_some() && !reg.reconciled);
    let m = reg.method;
    assert_eq!(decode_lenient(&m.id, "id").unwrap(), cred_id);
    assert_eq!(m.display_name.as_deref(), Some("Kim's YubiKey"));
    assert_eq!(m.aa_guid.as_deref(), Some(YK5_STR));
    assert_eq!(m.attestation_level, Some(AttestationLevel::Attested));
    assert_eq!(m.passkey_type, Some(PasskeyType::DeviceBound));
    assert_eq!(m.attestation_certificates.len(), 1);
    // By UPN and by object id alike.
    assert_eq!(c.list_methods(KIM_ID).unwrap(), vec![m.clone()]);
    assert_eq!(c.get_method(KIM, &m.id).unwrap(), m);
    // The next creation options exclude the registered credential.
    let opts = c.creation_options(KIM, None).unwrap();
    assert_eq!(opts.public_key.exclude_credentials.len(), 1);
    assert_eq!(
        decode_lenient(&opts.public_key.exclude_credentials[0].id, "id").unwrap(),
        cred_id
    );
    let del = c.delete_method(KIM, &m.id).unwrap();
    assert!(del.request_id.is_some() && !del.already_gone);
    assert!(c.list_methods(KIM).unwrap().is_empty());
    assert_eq!(emu.method_count(), 0);
    let e = c.get_method(KIM, &m.id).unwrap_err();
    assert_eq!(e.status(), Some(404));
    assert!(e.request_id().is_some(), "{e:?}");
}

#[test]
fn beta_registration_with_self_and_none_attestation() {
    let emu = emulator();
    let c = client(&emu, ApiVersion::Beta);
    for attest in [Attest::SelfPacked, Attest::None] {
        let args = MakeArgs {
            attest,
            ..MakeArgs::default()
        };
        let (body, _) = registration(&c, KIM, "key", None, &args);
        let m = c.register(KIM, &body).unwrap().method;
        assert_eq!(m.attestation_level, Some(AttestationLevel::NotAttested));
        assert_eq!(m.passkey_type, None, "beta has no passkeyType");
    }
    assert_eq!(emu.methods(KIM).len(), 2);
}

#[test]
fn creation_options_shapes_and_timeouts() {
    let emu = emulator();
    let v1 = client(&emu, ApiVersion::V1);
    let o = v1.creation_options(KIM, None).unwrap();
    assert!(o.public_key.challenge.len() > 2000, "several KB");
    assert_eq!(o.public_key.rp.id, "login.microsoft.com");
    assert_eq!(o.public_key.user.name.as_deref(), Some(KIM));
    assert!(o.challenge_timeout_date_time.is_some());
    assert!(matches!(
        v1.creation_options(KIM, Some(60)),
        Err(GraphError::Config {
            setting: "challenge_timeout_minutes",
            ..
        })
    ));
    let beta = client(&emu, ApiVersion::Beta);
    beta.creation_options(KIM, Some(43_200)).unwrap();
    assert!(beta.creation_options(KIM, Some(43_201)).is_err());
    let log = emu.request_log();
    assert!(log.iter().any(|r| r
        .path
        .contains("creationOptions(challengeTimeoutInMinutes=43200)")));
    // The query-string form is refused with 405 the way Entra now does.
    let token = raw_token(&emu);
    let (status, _) = raw(
        &emu,
        "GET",
        &format!("/beta/users/{KIM}/authentication/fido2Methods/creationOptions?challengeTimeoutInMinutes=10"),
        &[("Authorization", &format!("Bearer {token}"))],
        b"",
    );
    assert_eq!(status, 405);
    // A 10-minute challenge survives 6 minutes; a 5-minute one does not.
    let o10 = beta.creation_options(KIM, Some(10)).unwrap();
    let o5 = beta.creation_options(KIM, None).unwrap();
    let now = std::time::SystemTime::now();
    let left = |o: &entra_graph::wire::CreationOptions| {
        o.challenge_expiry()
            .unwrap()
            .duration_since(now)
            .unwrap_or_default()
            .as_secs()
    };
    assert!((595..=600).contains(&left(&o10)), "{}", left(&o10));
    assert!((295..=300).contains(&left(&o5)), "{}", left(&o5));
    emu.advance_clock(Duration::from_secs(6 * 60));
    for (o, ok) in [(o10, true), (o5, false)] {
        let cd = entra_graph::webauthn::ClientData::for_creation(&o, None).unwrap();
        let (r, _) = super::soft_key::make_credential(&cd.hash, &MakeArgs::default());
        let body = entra_graph::webauthn::build_registration(&cd, "k", &r).unwrap();
        assert_eq!(beta.register(KIM, &body).is_ok(), ok);
    }
}

#[test]
fn list_follows_next_link_across_pages() {
    let emu = Emulator::start(EmulatorConfig {
        page_size: 3,
        ..EmulatorConfig::default()
    })
    .unwrap();
    let ids = emu.seed_methods(KIM, 8);
    let c = client(&emu, ApiVersion::V1);
    let listed: Vec<String> = c
        .list_methods(KIM)
        .unwrap()
        .into_iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(listed, ids);
    let gets = emu
        .request_log()
        .iter()
        .filter(|r| r.path.contains("fido2Methods"))
        .count();
    assert_eq!(gets, 3, "8 items in pages of 3");
    let members = c.group_members(GROUP).unwrap();
    assert_eq!(members.len(), 4);
    assert!(members.iter().all(|m| m.is_user()));
}

#[test]
fn users_search_policy_and_connection() {
    let emu = emulator();
    let c = client(&emu, ApiVersion::V1);
    let u = c.user(KIM).unwrap();
    assert_eq!(u.id, KIM_ID);
    assert_eq!(
        c.user(KIM_ID).unwrap().user_principal_name.as_deref(),
        Some(KIM)
    );
    let e = c.user("nobody@contoso.onmicrosoft.com").unwrap_err();
    assert!(
        matches!(&e, GraphError::Api { status: 404, code, .. } if code == "Request_ResourceNotFound"),
        "{e:?}"
    );
    let found = c.search_users("ad", 10).unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].display_name.as_deref(), Some("Adele Vance"));
    assert_eq!(c.search_users("o'brien", 10).unwrap(), vec![]);
    assert_eq!(c.search_users("", 10).unwrap().len(), 5);
    let p = c.fido2_policy().unwrap();
    assert_eq!(p.state, MethodState::Enabled);
    assert_eq!(p.is_self_service_registration_allowed, Some(true));
    assert_eq!(c.preflight(KIM, YK5_STR, false), Ok(()));
    let report = c.check_connection().unwrap();
    assert!(report.token_ok);
    assert_eq!(c.stats().tokens, 1, "token cached across calls");
}

#[test]
fn preflight_against_changed_policy() {
    let emu = emulator();
    let c = client(&emu, ApiVersion::V1);
    let mut p = emu.policy();
    p.key_restrictions = Some(KeyRestrictions {
        is_enforced: true,
        enforcement_type: EnforcementType::Block,
        aa_guids: vec![YK5_STR.into()],
    });
    emu.set_policy(p.clone());
    assert!(matches!(
        c.preflight(KIM, YK5_STR, true),
        Err(GraphError::Preflight(PreflightError::AaguidBlocked { .. }))
    ));
    p.key_restrictions = None;
    p.is_attestation_enforced = Some(true);
    emu.set_policy(p.clone());
    assert_eq!(
        c.preflight(KIM, YK5_STR, false),
        Err(GraphError::Preflight(PreflightError::AttestationRequired))
    );
    p.state = MethodState::Disabled;
    emu.set_policy(p);
    assert_eq!(
        c.preflight(KIM, YK5_STR, true),
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

fn register_status(c: &GraphClient, user: &str, name: &str, args: &MakeArgs<'_>) -> Option<u16> {
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
        c.preflight(LEE, YK5_STR, true),
        Err(GraphError::Preflight(PreflightError::UserNotTargeted {
            user_id: "c8a9a3b2-4f5e-4d6c-8b7a-9e0f1a2b3c4d".into()
        }))
    );
    assert!(
        emu.request_log()
            .iter()
            .any(|r| r.path.ends_with(&format!("/groups/{GROUP}/members"))),
        "membership read from Graph"
    );
    // The emulator agrees with both verdicts.
    assert_eq!(register_status(&c, KIM, "k", &MakeArgs::default()), None);
    assert_eq!(
        register_status(&c, LEE, "k", &MakeArgs::default()),
        Some(403)
    );
    // Exclusion wins over all_users.
    p.include_targets = vec![target("all_users", &[])];
    p.exclude_targets = vec![target(GROUP, &[])];
    emu.set_policy(p.clone());
    assert_eq!(
        c.preflight(KIM, YK5_STR, true),
        Err(GraphError::Preflight(PreflightError::UserExcluded {
            user_id: KIM_ID.into(),
            target: GROUP.into()
        }))
    );
    assert_eq!(c.preflight(LEE, YK5_STR, true), Ok(()));
    assert_eq!(
        register_status(&c, KIM, "k2", &MakeArgs::default()),
        Some(403)
    );
    assert_eq!(register_status(&c, LEE, "k", &MakeArgs::default()), None);
    // A target group that no longer exists includes nobody.
    p.include_targets = vec![target("99999999-0000-0000-0000-000000000000", &[])];
    p.exclude_targets = vec![];
    emu.set_policy(p);
    assert!(matches!(
        c.preflight(KIM, YK5_STR, true),
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
        c.preflight(LEE, YK5_STR, true),
        Err(GraphError::Preflight(
            PreflightError::UserNotTargeted { .. }
        ))
    ));
    assert_eq!(register_status(&c, KIM, "k", &MakeArgs::default()), None);
    assert_eq!(
        register_status(&c, LEE, "k", &MakeArgs::default()),
        Some(403)
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
            enforcement_type: EnforcementType::Allow,
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
    // Kim (in the group) may register an attested YubiKey; Lee may not.
    assert_eq!(c.preflight(KIM, YK5_STR, true), Ok(()));
    assert!(matches!(
        c.preflight(LEE, YK5_STR, true),
        Err(GraphError::Preflight(
            PreflightError::AaguidNotAllowed { .. }
        ))
    ));
    // The group's profile enforces attestation; the default one does not list the key.
    assert!(matches!(
        c.preflight(KIM, YK5_STR, false),
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

#[test]
fn certificate_assertion_credentials() {
    let cfg = EmulatorConfig {
        apps: vec![AppRegistration {
            client_id: "11112222-3333-4444-5555-666677778888".into(),
            client_secret: None,
            certificates_pem: vec![fixture("app-cert.pem")],
            roles: None,
        }],
        ..EmulatorConfig::default()
    };
    let emu = Emulator::start(cfg).unwrap();
    for alg in [AssertionAlg::Ps256, AssertionAlg::Rs256] {
        let cert =
            CertificateCredential::from_pem(&fixture("app-cert.pem"), &fixture("app-key.pem"), alg)
                .unwrap();
        let c = GraphClient::new(
            fast_config(&emu, ApiVersion::V1),
            Credential::Certificate {
                client_id: emu.client_id().into(),
                certificate: Box::new(cert),
            },
        )
        .unwrap();
        c.check_connection().unwrap();
    }
    // A certificate not registered with the app is refused.
    let other = CertificateCredential::from_pem(
        &fixture("other-cert.pem"),
        &fixture("other-key.pem"),
        AssertionAlg::Ps256,
    )
    .unwrap();
    let c = GraphClient::new(
        fast_config(&emu, ApiVersion::V1),
        Credential::Certificate {
            client_id: emu.client_id().into(),
            certificate: Box::new(other),
        },
    )
    .unwrap();
    let e = c.check_connection().unwrap_err();
    assert!(
        matches!(&e, GraphError::Token { status: 401, error, description } if error == "invalid_client" && description.contains("AADSTS700027")),
        "{e:?}"
    );
}

#[test]
fn wrong_secret_and_token_callback() {
    let emu = emulator();
    let bad = GraphClient::new(
        fast_config(&emu, ApiVersion::V1),
        Credential::ClientSecret {
            client_id: emu.client_id().into(),
            secret: "wrong".into(),
        },
    )
    .unwrap();
    let e = bad.list_methods(KIM).unwrap_err();
    assert!(
        matches!(&e, GraphError::Token { status: 401, description, .. } if description.contains("AADSTS7000215")),
        "{e:?}"
    );
    assert!(!format!("{bad:?}").contains(emu.client_secret().unwrap()));
    // A callback owned by the product: called once, token reused.
    let token = raw_token(&emu);
    let calls = Arc::new(AtomicU32::new(0));
    let n = calls.clone();
    let cb = Credential::Callback(Arc::new(move || {
        n.fetch_add(1, Ordering::SeqCst);
        Ok(AccessToken {
            token: Secret::new(token.clone()),
            expires_in: Duration::from_secs(3000),
        })
    }));
    let c = GraphClient::new(fast_config(&emu, ApiVersion::V1), cb).unwrap();
    c.list_methods(KIM).unwrap();
    c.user(KIM).unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let failing = GraphClient::new(
        fast_config(&emu, ApiVersion::V1),
        Credential::Callback(Arc::new(|| Err("vault locked".into()))),
    )
    .unwrap();
    assert_eq!(
        failing.user(KIM),
        Err(GraphError::TokenCallback {
            reason: "vault locked".into()
        })
    );
}

#[test]
fn expired_token_is_refreshed() {
    let emu = emulator();
    let c = client(&emu, ApiVersion::V1);
    c.user(KIM).unwrap();
    emu.advance_clock(Duration::from_secs(2 * 3600));
    c.user(KIM).unwrap();
    assert_eq!(c.stats().tokens, 2, "401 after expiry, new token, retried");
}

#[test]
fn fault_latency() {
    let emu = emulator();
    let c = client(&emu, ApiVersion::V1);
    c.user(KIM).unwrap();
    emu.set_latency(Duration::from_millis(150));
    let t = Instant::now();
    c.user(KIM).unwrap();
    assert!(t.elapsed() >= Duration::from_millis(150));
}

#[test]
fn fault_429_with_retry_after_is_honoured() {
    let emu = emulator();
    let c = client(&emu, ApiVersion::V1);
    c.user(KIM).unwrap();
    emu.inject(FaultRule::new(
        "GET",
        "fido2Methods",
        Fault::Status {
            status: 429,
            retry_after: Some(1),
        },
        2,
    ));
    let t = Instant::now();
    assert!(c.list_methods(KIM).unwrap().is_empty());
    assert!(
        t.elapsed() >= Duration::from_secs(2),
        "two Retry-After: 1 honoured"
    );
    assert_eq!(c.stats().retries, 2);
    // Beyond the retry budget the typed 429 surfaces.
    emu.inject(FaultRule::new(
        "GET",
        "fido2Methods",
        Fault::Status {
            status: 429,
            retry_after: Some(0),
        },
        10,
    ));
    let e = c.list_methods(KIM).unwrap_err();
    assert!(
        matches!(&e, GraphError::Api { status: 429, code, .. } if code == "TooManyRequests"),
        "{e:?}"
    );
}

#[test]
fn fault_token_bucket_throttle() {
    let emu = emulator();
    let c = client(&emu, ApiVersion::V1);
    emu.set_throttle(Some(ThrottleConfig {
        capacity: 3.0,
        refill_per_sec: 4.0,
    }));
    for _ in 0..8 {
        c.user(KIM).unwrap();
    }
    let throttled = emu.request_log().iter().filter(|r| r.status == 429).count();
    assert!(throttled >= 1, "bucket of 3 ran dry");
}

#[test]
fn fault_5xx_on_get_is_retried_and_on_register_reconciled() {
    let emu = emulator();
    let c = client(&emu, ApiVersion::V1);
    emu.inject(FaultRule::new(
        "GET",
        "/users/",
        Fault::Status {
            status: 500,
            retry_after: None,
        },
        1,
    ));
    c.user(KIM).unwrap();
    let (body, _) = registration(&c, KIM, "key", None, &MakeArgs::default());
    emu.inject(FaultRule::new(
        "POST",
        "fido2Methods",
        Fault::Status {
            status: 503,
            retry_after: Some(0),
        },
        1,
    ));
    let m = c.register(KIM, &body).unwrap().method;
    assert_eq!(emu.methods(KIM), vec![m]);
    assert_eq!(c.stats().reconciliations, 1);
    let posts = emu
        .request_log()
        .iter()
        .filter(|r| r.method == "POST" && r.path.contains("fido2Methods"))
        .count();
    assert_eq!(posts, 2, "not committed, so sent again after the listing");
}

#[test]
fn fault_dropped_connection_before_commit() {
    let emu = emulator();
    let c = client(&emu, ApiVersion::V1);
    let (body, cred) = registration(&c, KIM, "key", None, &MakeArgs::default());
    emu.inject(FaultRule::new("POST", "fido2Methods", Fault::Drop, 1));
    let m = c.register(KIM, &body).unwrap().method;
    assert_eq!(decode_lenient(&m.id, "id").unwrap(), cred);
    assert_eq!(emu.methods(KIM).len(), 1);
    assert_eq!(c.stats().reconciliations, 1);
}

#[test]
fn fault_committed_but_response_lost() {
    let emu = emulator();
    let c = client(&emu, ApiVersion::V1);
    let (body, cred) = registration(&c, KIM, "key", None, &MakeArgs::default());
    emu.inject(FaultRule::new(
        "POST",
        "fido2Methods",
        Fault::CommitThenDrop,
        1,
    ));
    let reg = c.register(KIM, &body).unwrap();
    assert!(reg.reconciled, "found by listing");
    let m = reg.method;
    assert_eq!(decode_lenient(&m.id, "id").unwrap(), cred);
    assert_eq!(
        emu.methods(KIM).len(),
        1,
        "never two passkeys for one credential"
    );
    let posts = emu
        .request_log()
        .iter()
        .filter(|r| r.method == "POST" && r.path.contains("fido2Methods"))
        .count();
    assert_eq!(posts, 1, "found by the listing, not sent again");
    // Same for a delete whose answer was lost: the retry's 404 means done.
    emu.inject(FaultRule::new(
        "DELETE",
        "fido2Methods",
        Fault::CommitThenDrop,
        1,
    ));
    assert!(c.delete_method(KIM, &m.id).unwrap().already_gone);
    assert_eq!(emu.method_count(), 0);
}

#[test]
fn fault_timeout_then_late_commit_never_duplicates() {
    let emu = emulator();
    let mut cfg = fast_config(&emu, ApiVersion::V1);
    cfg.request_timeout = Duration::from_millis(500);
    let c = GraphClient::new(cfg, secret_credential(&emu)).unwrap();
    let (body, cred) = registration(&c, KIM, "key", None, &MakeArgs::default());
    emu.inject(FaultRule::new(
        "POST",
        "fido2Methods",
        Fault::Delay(Duration::from_millis(1500)),
        1,
    ));
    let m = c.register(KIM, &body).unwrap().method;
    assert_eq!(decode_lenient(&m.id, "id").unwrap(), cred);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        emu.methods(KIM).len(),
        1,
        "the late first POST is refused as excluded"
    );
}

#[test]
fn registration_unknown_outcome_surfaces_after_budget() {
    let emu = emulator();
    let c = client(&emu, ApiVersion::V1);
    let (body, _) = registration(&c, KIM, "key", None, &MakeArgs::default());
    emu.inject(FaultRule::new("POST", "fido2Methods", Fault::Drop, 100));
    let e = c.register(KIM, &body).unwrap_err();
    assert!(
        matches!(e, GraphError::RegistrationOutcomeUnknown { .. }),
        "{e:?}"
    );
    assert_eq!(emu.method_count(), 0);
}

#[test]
fn retry_after_as_http_date_is_honoured_top_level_and_in_batch() {
    let emu = emulator();
    emu.set_retry_after_http_date(true);
    let c = client(&emu, ApiVersion::V1);
    c.user(KIM).unwrap();
    // The emulator really sends the date form.
    let raw = reqwest_free_get_retry_after(&emu);
    assert!(raw.ends_with(" GMT"), "{raw}");
    emu.inject(FaultRule::new(
        "GET",
        "fido2Methods",
        Fault::Status {
            status: 429,
            retry_after: Some(3),
        },
        1,
    ));
    let t = Instant::now();
    assert!(c.list_methods(KIM).unwrap().is_empty());
    // An HTTP-date has whole seconds: "now + 3 s" is about 2 s away at least. The
    // backoff used when Retry-After is not understood is at most 200 ms here.
    assert!(
        t.elapsed() >= Duration::from_millis(1500),
        "{:?}",
        t.elapsed()
    );
    // Inside $batch: the inner 429's Retry-After date is honoured too.
    let ids = emu.seed_methods(KIM, 3);
    emu.inject(FaultRule::new(
        "DELETE",
        "fido2Methods",
        Fault::Status {
            status: 429,
            retry_after: Some(3),
        },
        1,
    ));
    let t = Instant::now();
    let results = c.batch_delete(KIM, &ids);
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert!(
        t.elapsed() >= Duration::from_millis(1500),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(emu.method_count(), 0);
}

/// One raw HTTP/1.1 exchange with the emulator under an injected 429, returning the
/// `Retry-After` header as sent.
fn reqwest_free_get_retry_after(emu: &Emulator) -> String {
    use std::io::{Read, Write};
    emu.inject(FaultRule::new(
        "GET",
        "/users/raw-probe",
        Fault::Status {
            status: 429,
            retry_after: Some(3),
        },
        1,
    ));
    let host = emu.addr().to_string();
    let mut s = std::net::TcpStream::connect(&host).unwrap();
    write!(
        s,
        "GET /v1.0/users/raw-probe HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out.lines()
        .find_map(|l| {
            l.split_once(':')
                .filter(|(k, _)| k.eq_ignore_ascii_case("retry-after"))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| panic!("no Retry-After in {out}"))
}

#[test]
fn batch_delete_and_list_under_throttle() {
    let emu = emulator();
    let ids = emu.seed_methods(KIM, 45);
    emu.seed_methods("adelev@contoso.onmicrosoft.com", 2);
    let c = client(&emu, ApiVersion::V1);
    let lists = c.batch_list(&[
        KIM.into(),
        "adelev@contoso.onmicrosoft.com".into(),
        "nobody@x".into(),
    ]);
    assert_eq!(lists[0].as_ref().unwrap().len(), 45);
    assert_eq!(lists[1].as_ref().unwrap().len(), 2);
    assert_eq!(lists[2].as_ref().unwrap_err().status(), Some(404));
    emu.set_throttle(Some(ThrottleConfig {
        capacity: 10.0,
        refill_per_sec: 20.0,
    }));
    let mut with_missing = ids.clone();
    with_missing.push(encode_b64url(b"not-there"));
    let results = c.batch_delete(KIM, &with_missing);
    assert_eq!(results.len(), 46);
    assert!(
        results[..45].iter().all(|r| r
            .as_ref()
            .is_ok_and(|d| d.request_id.is_some() && !d.already_gone)),
        "{results:?}"
    );
    assert_eq!(results[45].as_ref().unwrap_err().status(), Some(404));
    assert!(emu.methods(KIM).is_empty());
    assert!(
        emu.request_log().iter().any(|r| r.status == 429),
        "inner 429s happened and were retried"
    );
}

fn spawn_binary(args: &[&str]) -> (std::process::Child, serde_json::Value) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_entra-emulator"))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    (child, serde_json::from_str(&line).unwrap())
}

fn client_from_json(v: &serde_json::Value) -> GraphClient {
    let base = v["base_url"].as_str().unwrap().to_owned();
    let mut cfg = entra_graph::GraphConfig::new(v["tenant_id"].as_str().unwrap());
    cfg.login_base = base.clone();
    cfg.graph_base = base;
    assert_eq!(v["token_url"].as_str().unwrap(), cfg.token_url());
    GraphClient::new(
        cfg,
        Credential::ClientSecret {
            client_id: v["client_id"].as_str().unwrap().into(),
            secret: v["client_secret"].as_str().unwrap().into(),
        },
    )
    .unwrap()
}

#[test]
fn emulator_binary_prints_working_connection_json() {
    let (mut child, v) = spawn_binary(&["--listen", "127.0.0.1:0"]);
    let result = client_from_json(&v).check_connection();
    let _ = child.kill();
    let _ = child.wait();
    result.unwrap();
}

#[test]
fn emulator_binary_with_fixture_file_and_fixed_credentials() {
    let path = format!(
        "{}/tests/fixtures/tenant-small.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let (mut child, v) = spawn_binary(&[
        "--listen",
        "127.0.0.1:0",
        "--fixtures",
        &path,
        "--client-id",
        "ci-app",
        "--client-secret",
        "ci-secret",
        "--page-size",
        "1",
    ]);
    let c = client_from_json(&v);
    let users = c.search_users("", 10);
    let members = c.group_members("11bb11bb-0000-4000-8000-000000000001");
    let policy = c.fido2_policy();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(v["tenant_id"], "aaaabbbb-0000-cccc-1111-dddd2222eeee");
    assert_eq!(v["client_id"], "ci-app");
    assert_eq!(v["client_secret"], "ci-secret");
    assert_eq!(users.unwrap().len(), 2);
    assert_eq!(
        members.unwrap()[0].user_principal_name.as_deref(),
        Some("sam@example.onmicrosoft.com")
    );
    let policy = policy.unwrap();
    assert_eq!(
        policy.key_restrictions.unwrap().enforcement_type,
        EnforcementType::Allow
    );
}

#[test]
fn bench_binary_small_run() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_graph-bench"))
        .args([
            "--n",
            "120",
            "--latency-ms",
            "1",
            "--rate",
            "200",
            "--burst",
            "40",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("deleted 120 of 120"), "{text}");
    assert!(text.contains("ideal bound"), "{text}");
}

#[test]
fn concurrency_is_bounded() {
    let emu = emulator();
    emu.set_latency(Duration::from_millis(30));
    let users: Vec<String> = (0..100).map(|_| KIM.to_owned()).collect();
    let mut cfg = fast_config(&emu, ApiVersion::V1);
    cfg.max_concurrency = 2;
    let c = GraphClient::new(cfg, secret_credential(&emu)).unwrap();
    let lists = c.batch_list(&users);
    assert!(lists.iter().all(Result::is_ok));
    assert_eq!(
        emu.request_log()
            .iter()
            .filter(|r| r.path.ends_with("$batch"))
            .count(),
        5
    );
    assert_eq!(emu.max_in_flight(), 2, "five batches, two at a time");
}

#[test]
fn one_client_shared_between_threads() {
    let emu = emulator();
    emu.seed_methods(KIM, 3);
    let c = Arc::new(client(&emu, ApiVersion::V1));
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let c = c.clone();
            std::thread::spawn(move || {
                (0..5)
                    .map(|_| c.list_methods(KIM).unwrap().len())
                    .sum::<usize>()
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), 15);
    }
    assert_eq!(c.stats().tokens, 1);
}

#[test]
fn every_fault_kind_in_turn_leaves_one_passkey_per_credential() {
    let emu = emulator();
    let mut cfg = fast_config(&emu, ApiVersion::V1);
    cfg.request_timeout = Duration::from_millis(400);
    let c = GraphClient::new(cfg, secret_credential(&emu)).unwrap();
    let faults = [
        None,
        Some(Fault::Drop),
        Some(Fault::CommitThenDrop),
        Some(Fault::Status {
            status: 503,
            retry_after: Some(0),
        }),
        Some(Fault::Status {
            status: 504,
            retry_after: Some(0),
        }),
        Some(Fault::Status {
            status: 500,
            retry_after: None,
        }),
        Some(Fault::Status {
            status: 429,
            retry_after: Some(0),
        }),
        Some(Fault::Delay(Duration::from_millis(800))),
    ];
    let mut creds = Vec::new();
    for (i, fault) in faults.iter().enumerate() {
        let (body, cred) = registration(&c, KIM, &format!("key {i}"), None, &MakeArgs::default());
        if let Some(f) = fault {
            emu.inject(FaultRule::new("POST", "fido2Methods", f.clone(), 1));
        }
        let reg = c.register(KIM, &body).unwrap();
        assert_eq!(
            decode_lenient(&reg.method.id, "id").unwrap(),
            cred,
            "fault {fault:?}"
        );
        creds.push(cred);
    }
    std::thread::sleep(Duration::from_millis(900)); // let the delayed POST land
    let stored = emu.methods(KIM);
    assert_eq!(stored.len(), faults.len(), "{stored:?}");
    for cred in &creds {
        let n = stored
            .iter()
            .filter(|m| decode_lenient(&m.id, "id").unwrap() == *cred)
            .count();
        assert_eq!(n, 1);
    }
    assert_eq!(emu.pending_faults(), 0);
}

#[test]
fn token_refreshed_before_expiry_and_token_endpoint_faults_retried() {
    let emu = Emulator::start(EmulatorConfig {
        token_lifetime: Duration::from_secs(4),
        ..EmulatorConfig::default()
    })
    .unwrap();
    emu.inject(FaultRule::new(
        "POST",
        "oauth2/v2.0/token",
        Fault::Status {
            status: 503,
            retry_after: Some(0),
        },
        1,
    ));
    let c = client(&emu, ApiVersion::V1);
    c.user(KIM).unwrap();
    assert_eq!(c.stats().tokens, 1);
    std::thread::sleep(Duration::from_millis(3200));
    c.user(KIM).unwrap();
    assert_eq!(
        c.stats().tokens,
        2,
        "refreshed a quarter of the lifetime early"
    );
    assert!(
        emu.request_log().iter().all(|r| r.status != 401),
        "never sent an expired token"
    );
}

#[test]
fn app_without_permissions_gets_typed_403() {
    let cfg = EmulatorConfig {
        apps: vec![AppRegistration {
            client_id: "reader-app".into(),
            client_secret: Some("reader-secret".into()),
            certificates_pem: vec![],
            roles: Some(vec![
                "User.Read.All".into(),
                "UserAuthMethod-Passkey.Read.All".into(),
            ]),
        }],
        ..EmulatorConfig::default()
    };
    let emu = Emulator::start(cfg).unwrap();
    emu.seed_methods(KIM, 1);
    let c = client(&emu, ApiVersion::V1);
    c.user(KIM).unwrap();
    assert_eq!(c.list_methods(KIM).unwrap().len(), 1);
    for e in [
        c.creation_options(KIM, None).unwrap_err(),
        c.delete_method(KIM, &emu.methods(KIM)[0].id).unwrap_err(),
        c.fido2_policy().unwrap_err(),
        c.group_members(GROUP).unwrap_err(),
    ] {
        assert!(
            matches!(&e, GraphError::Api { status: 403, code, request_id: Some(_), .. } if code == "Authorization_RequestDenied"),
            "{e:?}"
        );
    }
    assert_eq!(emu.method_count(), 1);
}
