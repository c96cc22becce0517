//! Every client operation against the emulator: register, list, get, delete, creation
//! options, paging, users and policy, concurrency.

use super::*;

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
    // A chain MDS does not list (the emulator has no metadata): not attested.
    assert_eq!(m.attestation_level, Some(AttestationLevel::NotAttested));
    assert_eq!(m.passkey_type, Some(PasskeyType::DeviceBound));
    assert_eq!(m.attestation_certificates.len(), 1);
    // By UPN and by object id alike.
    assert_eq!(c.list_methods(KIM_ID).unwrap(), vec![m.clone()]);
    assert_eq!(c.get_method(KIM, &m.id).unwrap(), m);
    // The next creation options exclude the registered credential.
    let opts = c.creation_options(KIM, None).unwrap();
    assert_eq!(opts.public_key.exclude_credentials.len(), 1);
    // v1.0 writes exclude ids as plain base64url (V1-CO), read plain first.
    assert_eq!(
        opts.public_key.exclude_credentials[0].id,
        encode_b64url(&cred_id)
    );
    assert_eq!(
        decode_foreign(&opts.public_key.exclude_credentials[0].id, "id").unwrap(),
        cred_id
    );
    let del = c.delete_method(KIM, &m.id).unwrap();
    assert!(del.request_id.is_some() && !del.already_gone);
    assert!(c.list_methods(KIM).unwrap().is_empty());
    assert_eq!(emu.method_count(), 0);
    let e = c.get_method(KIM, &m.id).unwrap_err();
    assert_eq!(e.status(), Some(404));
    assert!(e.request_id().is_some(), "{e:?}");
    // Deleting it again: the user resolves and the method is missing, so it is gone.
    assert!(c.delete_method(KIM, &m.id).unwrap().already_gone);
    // A user Graph does not know (or may not show the app) is not "already gone".
    let e = c
        .delete_method("nobody@contoso.example", &m.id)
        .unwrap_err();
    assert!(
        matches!(&e, GraphError::Api { status: 404, code, .. } if code == "Request_ResourceNotFound"),
        "{e:?}"
    );
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
        let (r, _) = crate::api::soft_key::make_credential(&cd.hash, &MakeArgs::default());
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
fn concurrency_is_bounded() {
    let emu = emulator();
    emu.set_latency(Duration::from_millis(30));
    let users: Vec<String> = (0..100).map(|_| KIM.to_owned()).collect();
    let mut cfg = fast_config(&emu, ApiVersion::V1);
    cfg.max_concurrency = 2;
    let c = GraphClient::new(cfg, secret_credential(&emu)).unwrap();
    let lists = c.batch_list(&users);
    assert!(lists.iter().all(Result::is_ok));
    // At most 20 a batch; before any 429 the limiter's start window (in inner requests)
    // makes the first batches smaller (client/batch.rs).
    let batches = emu
        .request_log()
        .iter()
        .filter(|r| r.path.ends_with("$batch"))
        .count();
    assert!((5..=50).contains(&batches), "{batches}");
    assert_eq!(emu.max_in_flight(), 2, "the batches two at a time");
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
