//! The engine end to end, continued: issuance variants, retries, racing stations and
//! operators, several IdPs, connectivity.

use super::*;

#[test]
fn template_with_bio_is_refused_on_a_key_without_a_sensor() {
    let mut w = world("bio");
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/templates/entra-standard.toml"
    ))
    .unwrap();
    let t = TemplateSet::from_toml_str(&text).unwrap();
    w.engine
        .add_template(t.clone())
        .expect("the template loads");
    let err = w
        .engine
        .issue(&request(true), &t.credential.name, &mut w.key, now_ms())
        .unwrap_err();
    let Error::Template(e) = err else {
        panic!("expected a template error, got {err:?}");
    };
    assert!(
        e.problems().iter().any(|p| p.field.contains("bio")),
        "{:?}",
        e.problems()
    );
    // Nothing was done at the IdP and the key stays blank.
    assert!(w.emulator.methods(&w.kim_id).is_empty());
    let keys = w
        .engine
        .find_keys(&lifecycle::store::KeyQuery::ByState(CredentialState::Blank))
        .unwrap();
    assert_eq!(keys.len(), 1);
    // A blank key that was never issued can be retired and unregistered.
    let k = w
        .engine
        .retire("operator:alice", &keys[0].key_id, now_ms())
        .expect("retire blank");
    assert_eq!(k.state, CredentialState::Retired);
    let k = w
        .engine
        .unregister("operator:alice", &k.key_id, now_ms())
        .expect("unregister");
    assert_eq!(k.state, CredentialState::Unregistered);
}

#[test]
fn auto_initiate_template_issues_and_activates_in_one_flow() {
    let mut w = world("auto");
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/templates/entra-v1-minimal.toml"
    ))
    .unwrap();
    let t = TemplateSet::from_toml_str(&text).unwrap();
    let now = now_ms();
    // Without the holder at the desk the activation half cannot run: nothing registered.
    w.engine
        .add_template(t.clone())
        .expect("the template loads");
    let err = w
        .engine
        .issue(&request(false), &t.credential.name, &mut w.key, now)
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Engine(EngineError::SelfService(
                SelfServiceError::HolderPinRequired
            ))
        ),
        "{err:?}"
    );
    assert!(w.emulator.methods(&w.kim_id).is_empty());
    let blank = w
        .engine
        .find_keys(&lifecycle::store::KeyQuery::ByState(CredentialState::Blank))
        .unwrap();
    assert_eq!(blank.len(), 1, "refused before any step");

    // A fresh key with the holder present: issued and active at once.
    let soft = SoftAuthenticator::new(SoftConfig::default()).unwrap();
    let mut key = Authenticator::new(SoftTransport::new(soft));
    let mut req = request(false);
    req.serial = "SN0002".into();
    w.engine
        .add_template(t.clone())
        .expect("the template loads");
    let rec = w
        .engine
        .issue_and_activate(&req, &t.credential.name, HOLDER_PIN, &mut key, now + 1)
        .expect("issue and activate");
    assert_eq!(rec.state, CredentialState::Active);
    assert_eq!(w.emulator.methods(&w.kim_id).len(), 1);
    let m = &w.emulator.methods(&w.kim_id)[0];
    assert_eq!(m.display_name.as_deref(), Some(KIM));
    w.engine
        .sign_in(&rec.key_id, HOLDER_PIN, &mut key)
        .expect("sign in");
}

#[test]
fn activation_refused_by_the_idp_can_be_retried() {
    let mut w = world("retry-activate");
    let t = template(60, true);
    let now = now_ms();
    let key = load_and_issue(&mut w, &t, now);
    w.emulator.inject(FaultRule::new(
        "POST",
        "fido2Methods",
        Fault::Status {
            status: 403,
            retry_after: None,
        },
        1,
    ));
    let err = w
        .engine
        .activate("self:kim", &key.key_id, HOLDER_PIN, &mut w.key, now + 1)
        .unwrap_err();
    assert!(matches!(err, Error::Idp(_)), "{err:?}");
    assert_eq!(
        w.engine.key(&key.key_id).unwrap().state,
        CredentialState::Issued
    );
    assert!(w.emulator.methods(&w.kim_id).is_empty());
    // The refused registration is closed, not replayed.
    assert!(w.engine.store().journal_unfinished().unwrap().is_empty());
    // A wrong PIN on the retry is caught by the key before the IdP is called.
    assert!(w
        .engine
        .activate(
            "self:kim",
            &key.key_id,
            "not-the-pin-1",
            &mut w.key,
            now + 2
        )
        .is_err());
    assert!(w.emulator.methods(&w.kim_id).is_empty());
    let key = w
        .engine
        .activate("self:kim", &key.key_id, HOLDER_PIN, &mut w.key, now + 3)
        .expect("retry");
    assert_eq!(key.state, CredentialState::Active);
    assert_eq!(w.emulator.methods(&w.kim_id).len(), 1);
}

#[test]
fn another_station_waits_for_the_lease_before_replaying() {
    let mut w = world("lease");
    let t = template(60, true);
    let now = now_ms();
    let key = load_and_issue(&mut w, &t, now);
    w.engine.crash_at(Some(CrashPoint::AfterIdpCall));
    assert!(w
        .engine
        .activate("self:kim", &key.key_id, HOLDER_PIN, &mut w.key, now + 1)
        .is_err());
    // Station B shares the database; station A's claim is still running.
    let b = engine_for(&w.emulator, &w.db, "station-b");
    let r = b.replay_journal(now + 2).unwrap();
    assert_eq!(r.len(), 2, "{r:?}");
    // Both entries are A's: the registration's claim and the activation's state intent,
    // claimed since it was written (before, B claimed the intent and only found it
    // waiting; a live flow's intent taken over that way could be failed under it).
    assert_eq!(r[0].outcome.to_string(), "busy");
    assert_eq!(r[1].outcome.to_string(), "busy");
    assert_eq!(b.key(&key.key_id).unwrap().state, CredentialState::Issued);
    // Once the lease ran out (15 minutes: the Graph client's retry budget), B finishes
    // it without a second registration.
    let r = b.replay_journal(now + 16 * 60_000).unwrap();
    assert_eq!(r[0].outcome.to_string(), "found at IdP");
    assert_eq!(w.emulator.methods(&w.kim_id).len(), 1);
    assert_eq!(b.key(&key.key_id).unwrap().state, CredentialState::Active);
}

#[test]
fn two_operators_revoking_at_once_revoke_once() {
    let mut w = world("race");
    let t = template(60, true);
    let now = now_ms();
    let key = load_and_issue(&mut w, &t, now);
    let key = w
        .engine
        .activate("self:kim", &key.key_id, HOLDER_PIN, &mut w.key, now + 1)
        .expect("activate");
    let other = engine_for(&w.emulator, &w.db, "station-b");
    other.add_template(t.clone()).unwrap();
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| {
            w.engine
                .revoke("operator:alice", &key.key_id, None, now + 2)
        });
        let b = s.spawn(|| other.revoke("operator:bob", &key.key_id, None, now + 2));
        (a.join().unwrap(), b.join().unwrap())
    });
    let oks = [&a, &b].iter().filter(|r| r.is_ok()).count();
    assert_eq!(oks, 1, "exactly one revocation wins: {a:?} / {b:?}");
    let loser = match (a, b) {
        (Err(e), _) | (_, Err(e)) => e,
        _ => unreachable!("one of them failed"),
    };
    assert!(
        matches!(
            loser,
            Error::Store(lifecycle::store::StoreError::Conflict { .. })
                | Error::Transition(TransitionError::NotAllowed { .. })
                | Error::Engine(EngineError::IdpEffect(
                    IdpEffectError::IdpDeletionCancelled { .. }
                ))
        ),
        "{loser:?}"
    );
    assert_eq!(
        w.engine.key(&key.key_id).unwrap().state,
        CredentialState::Revoked
    );
    assert!(w.emulator.methods(&w.kim_id).is_empty());
    let revokes = w
        .engine
        .audit_for(&key.key_id)
        .unwrap()
        .into_iter()
        .filter(|r| r.event.action == "revoke" && r.event.outcome == "success")
        .count();
    assert_eq!(revokes, 1);
}

#[test]
fn challenge_expired_at_the_idp_only_also_needs_reissue() {
    let mut w = world("idp-expired");
    let t = template(60, true);
    let now = now_ms();
    let key = load_and_issue(&mut w, &t, now);
    // The IdP's clock runs ahead of ours: our plan still sees a valid challenge.
    w.emulator
        .advance_clock(std::time::Duration::from_secs(2 * 3600));
    let err = w
        .engine
        .activate("self:kim", &key.key_id, HOLDER_PIN, &mut w.key, now + 1)
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Transition(TransitionError::ChallengeExpired { .. })
        ),
        "{err:?}"
    );
    let after = w.engine.key(&key.key_id).unwrap();
    assert!(after.needs_reissue);
    assert_eq!(after.state, CredentialState::Issued);
    assert!(w.emulator.methods(&w.kim_id).is_empty());
    assert!(w.engine.store().journal_unfinished().unwrap().is_empty());
    let audit = w.engine.audit_for(&key.key_id).unwrap();
    let last = &audit.last().unwrap().event;
    assert_eq!(
        (last.action.as_str(), last.outcome.as_str()),
        ("activate", "refused")
    );
    assert!(last.idp_request_id.is_some());
}

#[test]
fn force_change_pin_is_set_after_the_passkey_and_cleared_by_activation() {
    let mut w = world("force-change");
    // The standard test template plus forceChangePin in the FIDO2 options.
    let mut t = template(60, true);
    t.credential.fido2.force_change_pin = true;
    let now = now_ms();
    w.engine
        .add_template(t.clone())
        .expect("the template loads");
    let key = w
        .engine
        .issue(&request(true), &t.credential.name, &mut w.key, now)
        .expect("issue with forceChangePin");
    assert_eq!(key.state, CredentialState::Issued);
    // The key now demands a new PIN before any token is given out.
    let info = w.key.refresh_info().expect("getInfo");
    assert_eq!(info.force_pin_change, Some(true));
    // Activation replaces the transport PIN, which clears the demand, then registers.
    let key = w
        .engine
        .activate("self:kim", &key.key_id, HOLDER_PIN, &mut w.key, now + 1)
        .expect("activate");
    assert_eq!(key.state, CredentialState::Active);
    assert_eq!(
        w.key.refresh_info().expect("getInfo").force_pin_change,
        Some(false)
    );
    assert_eq!(w.emulator.methods(&w.kim_id).len(), 1);
}

#[test]
fn fingerprints_are_enrolled_at_issuance_with_prompts() {
    let mut w = world("bio-enrol");
    let prompts = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = prompts.clone();
    let engine = sqlite_engine_builder(&w.emulator, &w.db, "station-a", 7)
        .prompt(Arc::new(move |p: &DevicePrompt| {
            seen.lock().unwrap().push(p.clone())
        }))
        .build()
        .expect("engine");
    let soft = SoftAuthenticator::new(SoftConfig::with_bio()).expect("softkey with bio");
    let mut key = Authenticator::new(SoftTransport::new(soft));
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/templates/entra-standard.toml"
    ))
    .unwrap();
    let t = TemplateSet::from_toml_str(&text).unwrap();
    engine.add_template(t.clone()).expect("the template loads");
    let issued = engine
        .issue(&request(false), &t.credential.name, &mut key, now_ms())
        .expect("issue with fingerprint enrolment");
    assert_eq!(issued.state, CredentialState::Issued);

    // Two fingerprints are on the key (checked with the sealed transport PIN).
    let pin = engine
        .store()
        .get_transport_pin(&issued.key_id, &PinKey::from_bytes([7; 32]))
        .unwrap()
        .expect("transport PIN stored");
    let token = key
        .pin_token(
            pin.expose(),
            fido_core::pin::Permissions::BIO_ENROLLMENT,
            None,
        )
        .unwrap();
    assert_eq!(key.bio_enumerate(&token).unwrap().len(), 2);

    let prompts = prompts.lock().unwrap().clone();
    let announced: Vec<(u32, u32)> = prompts
        .iter()
        .filter_map(|p| match p {
            DevicePrompt::EnrollFingerprint { number, of } => Some((*number, *of)),
            _ => None,
        })
        .collect();
    assert_eq!(announced, vec![(1, 2), (2, 2)]);
    // Every sample of both fingerprints was reported, the last of each with none left.
    let finished = prompts
        .iter()
        .filter(|p| matches!(p, DevicePrompt::FingerprintSample { remaining: 0, .. }))
        .count();
    assert_eq!(finished, 2);

    // The holder activates the key and signs in with it.
    let again = engine.activate("self:kim", &issued.key_id, HOLDER_PIN, &mut key, now_ms());
    assert_eq!(again.expect("activate").state, CredentialState::Active);
    w.key = key;
    engine
        .sign_in(&issued.key_id, HOLDER_PIN, &mut w.key)
        .expect("sign in");
}

/// One key, passkeys for two IdPs (two tenants where the same person has different
/// object ids): issued, activated, used and revoked at both.
#[test]
fn one_key_carries_passkeys_for_two_idps() {
    let mut w = world("multi-idp");
    let mut second = EmulatorConfig::default();
    second.tenant.tenant_id = "0f0e0d0c-0b0a-4909-8807-060504030201".into();
    for u in &mut second.tenant.users {
        // Another tenant: same people, other object ids.
        u.id = u.id.chars().rev().collect();
    }
    let fabrikam = Emulator::start(second).expect("second emulator");
    let fabrikam_client = graph_client(&fabrikam);
    let kim_at_fabrikam: String = w.kim_id.chars().rev().collect();
    let engine = sqlite_engine_builder(&w.emulator, &w.db, "station-a", 7)
        .idp(Arc::new(EntraIdp::new("fabrikam-entra", fabrikam_client)))
        .build()
        .expect("engine");
    let t = TemplateSet::from_toml_str(
        r#"
[passkey.entra]
idp = { connection = "contoso-entra", kind = "entra", graph_api_version = "beta" }
display_name = "{displayName}"
challenge_timeout_minutes = 60

[passkey.fabrikam]
idp = { connection = "fabrikam-entra", kind = "entra", graph_api_version = "beta" }
display_name = "{displayName} (partner)"
challenge_timeout_minutes = 60

[credential]
name = "two-idps"
passkey_templates = ["entra", "fabrikam"]
user_assignment = { directory = "contoso-entra" }

[credential.lifecycle]
force_idp_deletion_on_revoke = true
"#,
    )
    .expect("template");
    let now = now_ms();
    engine.add_template(t.clone()).expect("the template loads");
    let key = engine
        .issue(&request(false), &t.credential.name, &mut w.key, now)
        .expect("issue");
    let pending = engine.store().pending_for_key(&key.key_id).unwrap();
    assert_eq!(pending.len(), 2);
    let at = |pt: &str| {
        pending
            .iter()
            .find(|p| p.passkey_template == pt)
            .map(|p| p.user_id.clone())
    };
    assert_eq!(at("entra").as_deref(), Some(w.kim_id.as_str()));
    assert_eq!(at("fabrikam").as_deref(), Some(kim_at_fabrikam.as_str()));

    let key = engine
        .activate("self:kim", &key.key_id, HOLDER_PIN, &mut w.key, now + 1)
        .expect("activate");
    assert_eq!(key.state, CredentialState::Active);
    assert_eq!(w.emulator.methods(&w.kim_id).len(), 1);
    assert_eq!(fabrikam.methods(&kim_at_fabrikam).len(), 1);
    let partner_name = fabrikam.methods(&kim_at_fabrikam)[0].display_name.clone();
    assert!(
        partner_name
            .as_deref()
            .is_some_and(|n| n.ends_with(" (partner)")),
        "{partner_name:?}"
    );
    let signed = engine
        .sign_in(&key.key_id, HOLDER_PIN, &mut w.key)
        .expect("sign in at both");
    let mut templates: Vec<&str> = signed.iter().map(|s| s.passkey_template.as_str()).collect();
    templates.sort_unstable();
    assert_eq!(templates, vec!["entra", "fabrikam"]);

    let key = engine
        .revoke("operator:alice", &key.key_id, None, now + 2)
        .expect("revoke");
    assert_eq!(key.state, CredentialState::Revoked);
    assert!(w.emulator.methods(&w.kim_id).is_empty());
    assert!(fabrikam.methods(&kim_at_fabrikam).is_empty());
}

#[test]
fn connectivity_check_and_directory_search() {
    let w = world("directory");
    let ms = w
        .engine
        .check_connection("contoso-entra")
        .expect("reachable");
    assert!(ms < 60_000);
    assert!(matches!(
        w.engine.check_connection("nowhere"),
        Err(Error::Engine(EngineError::Lookup(
            LookupError::UnknownConnection { .. }
        )))
    ));
    // A wrong client secret fails the check with the IdP's error.
    let bad = GraphClient::new(
        w.emulator.graph_config(ApiVersion::Beta),
        Credential::ClientSecret {
            client_id: w.emulator.client_id().to_owned(),
            secret: Secret::new("not-the-secret"),
        },
    )
    .expect("graph client");
    let engine = Engine::builder(
        Arc::new(SqliteStore::open(&w.db).unwrap()),
        PinKey::from_bytes([7; 32]),
        "station-b",
    )
    .idp(Arc::new(EntraIdp::new("contoso-entra", bad)))
    .build()
    .expect("engine");
    assert!(matches!(
        engine.check_connection("contoso-entra"),
        Err(Error::Idp(_))
    ));

    let found = w
        .engine
        .search_users("contoso-entra", "kim", 10)
        .expect("search");
    assert!(
        found
            .iter()
            .any(|u| u.user_principal_name.as_deref() == Some(KIM) && u.id == w.kim_id),
        "{found:?}"
    );
    assert!(w
        .engine
        .search_users("contoso-entra", "zzz-nobody", 10)
        .unwrap()
        .is_empty());
}
