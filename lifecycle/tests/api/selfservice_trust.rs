//! How far a holder's ID token is trusted (issue 10, items 9 and 10), end to end through
//! the engine against the Entra emulator as a real HTTP server: a nonce from
//! `self_service_begin` the token must carry, one use per token, a recent MFA sign-in,
//! ID tokens only (no access tokens), the issuer bound to the directory's tenant, a
//! per-user limit of self-issued keys and disabled accounts. Every refusal has its own
//! reason and is audited.

use std::time::Duration;

use entra_graph::emulator::{Emulator, EmulatorConfig, HolderTokenOptions};
use fido_transport::client::Authenticator;
use fido_transport::softkey::{SoftAuthenticator, SoftConfig, SoftTransport};
use lifecycle::engine::{EngineError, IssueRequest, SelfServiceError};
use lifecycle::template::{KeyTransport, TemplateSet};
use lifecycle::{CredentialState, Error};
use serde_json::{json, Value};

use crate::common::{now_ms, KIM, KIM_ID};
use crate::selfservice::{
    assert_no_secrets, operator_issue, template, token, world, Tok, World, ALL, AUDIENCE, HOUR,
    NEW_PIN,
};

/// A sign-in of `user` with a nonce from the engine, shaped by `opts`.
fn sign_in(w: &World, user: &str, opts: impl FnOnce(&mut HolderTokenOptions)) -> Tok {
    let nonce = w.engine.self_service_begin(now_ms()).unwrap().nonce;
    let mut o = HolderTokenOptions {
        lifetime: HOUR,
        ..HolderTokenOptions::new(user, AUDIENCE).nonce(nonce.clone())
    };
    opts(&mut o);
    Tok {
        id: w.emulator.holder_token_with(&o).unwrap(),
        nonce,
    }
}

/// A sign-in of `user` whose claims `edit` changes, signed by the emulator's published key.
fn edited(w: &World, user: &str, edit: impl FnOnce(&mut Value)) -> Tok {
    let nonce = w.engine.self_service_begin(now_ms()).unwrap().nonce;
    let opts = HolderTokenOptions {
        lifetime: HOUR,
        ..HolderTokenOptions::new(user, AUDIENCE).nonce(nonce.clone())
    };
    let mut claims: Value =
        serde_json::from_str(&w.emulator.holder_claims_json_with(&opts).unwrap()).unwrap();
    edit(&mut claims);
    Tok {
        id: w.emulator.sign_claims(&claims.to_string()).unwrap(),
        nonce,
    }
}

fn set_pin(w: &mut World, key_id: &str, t: &Tok) -> Result<lifecycle::store::KeyRecord, Error> {
    w.engine
        .self_set_pin(key_id, &t.id, &t.nonce, NEW_PIN, &mut w.key, now_ms())
}

/// The refusal is a `SelfServiceError` with `reason`, the key did not change, and the
/// last audit record of the key is `action` refused with the error's text.
#[track_caller]
fn assert_refused(w: &World, key_id: &str, action: &str, err: &Error, reason: &str) {
    assert!(
        matches!(err, Error::Engine(EngineError::SelfService(_))),
        "{err:?}"
    );
    assert_eq!(err.reason(), reason, "{err}");
    let audit = w.engine.audit_for(key_id).unwrap();
    let last = &audit.last().expect("audited").event;
    assert_eq!(
        (last.action.as_str(), last.outcome.as_str()),
        (action, "refused"),
        "{audit:#?}"
    );
    assert_eq!(last.detail.as_deref(), Some(err.to_string().as_str()));
}

/// A change to a token's claims.
type Edit = fn(&mut Value);

#[track_caller]
fn assert_still_issued(w: &World, key_id: &str) {
    let key = w.engine.key(key_id).unwrap();
    assert_eq!(key.state, CredentialState::Issued);
    assert!(w.emulator.methods(KIM_ID).is_empty());
}

#[test]
fn replayed_token_token_without_nonce_and_access_token_are_refused_each_with_its_reason() {
    let mut w = world("trust-replay");
    let t = template(&w.emulator, "self-pin", ALL);
    let key_id = operator_issue(&mut w, &t, KIM, now_ms());

    // No nonce in the token (a sign-in not started here).
    let no_nonce = Tok {
        id: w.emulator.holder_token(KIM, AUDIENCE, HOUR).unwrap(),
        nonce: w.engine.self_service_begin(now_ms()).unwrap().nonce,
    };
    let err = set_pin(&mut w, &key_id, &no_nonce).unwrap_err();
    assert_refused(&w, &key_id, "self_set_pin", &err, "nonce_missing");
    assert_still_issued(&w, &key_id);

    // An access token for the same audience: scp / roles / idtyp / ver 1.0 / azp.
    let edits: [(&str, Edit); 5] = [
        ("scp", |c| c["scp"] = json!("User.Read")),
        ("roles", |c| c["roles"] = json!(["Keys.Write"])),
        ("idtyp", |c| c["idtyp"] = json!("user")),
        ("ver", |c| c["ver"] = json!("1.0")),
        ("azp", |c| c["azp"] = json!("another-client")),
    ];
    for (claim, edit) in edits {
        let access = edited(&w, KIM, edit);
        let err = set_pin(&mut w, &key_id, &access).unwrap_err();
        assert_refused(&w, &key_id, "self_set_pin", &err, "not_an_id_token");
        assert!(err.to_string().contains(claim), "{claim}: {err}");
        assert_still_issued(&w, &key_id);
    }

    // The nonce of another sign-in, and a nonce never handed out.
    let other = w.engine.self_service_begin(now_ms()).unwrap().nonce;
    let tok = token(&w, KIM);
    let mismatched = Tok {
        id: tok.id.clone(),
        nonce: other,
    };
    let err = set_pin(&mut w, &key_id, &mismatched).unwrap_err();
    assert_refused(&w, &key_id, "self_set_pin", &err, "nonce_mismatch");
    let forged_nonce = sign_in(&w, KIM, |o| o.nonce = Some("made-up-nonce".into()));
    let err = set_pin(
        &mut w,
        &key_id,
        &Tok {
            id: forged_nonce.id,
            nonce: "made-up-nonce".into(),
        },
    )
    .unwrap_err();
    assert_refused(&w, &key_id, "self_set_pin", &err, "nonce_unknown");
    assert_still_issued(&w, &key_id);

    // A genuine sign-in works once; the same token again is a replay.
    let tok = token(&w, KIM);
    assert_eq!(
        set_pin(&mut w, &key_id, &tok).unwrap().state,
        CredentialState::Active
    );
    let err = set_pin(&mut w, &key_id, &tok).unwrap_err();
    assert_refused(&w, &key_id, "self_set_pin", &err, "token_replayed");
    // The same token with a fresh nonce is still the same token.
    let again = Tok {
        id: tok.id.clone(),
        nonce: w.engine.self_service_begin(now_ms()).unwrap().nonce,
    };
    let err = set_pin(&mut w, &key_id, &again).unwrap_err();
    assert!(
        matches!(err.reason(), "nonce_mismatch" | "token_replayed"),
        "{err}"
    );

    let audit = w.engine.audit_for(&key_id).unwrap();
    let sign_ins: Vec<_> = audit
        .iter()
        .filter(|a| a.event.action == "self_set_pin_sign_in" && a.event.outcome == "success")
        .collect();
    assert_eq!(sign_ins.len(), 1, "{audit:#?}");
    assert_no_secrets(&audit, &[NEW_PIN, &tok.id, &tok.nonce, &no_nonce.id]);
}

#[test]
fn sign_ins_must_be_recent_and_multi_factor() {
    let mut w = world("trust-fresh");
    let mut t = template(&w.emulator, "self-pin", ALL);
    let key_id = operator_issue(&mut w, &t, KIM, now_ms());

    let stale = sign_in(&w, KIM, |o| o.auth_age = Duration::from_secs(11 * 60));
    let err = set_pin(&mut w, &key_id, &stale).unwrap_err();
    assert_refused(&w, &key_id, "self_set_pin", &err, "sign_in_too_old");
    let no_auth_time = edited(&w, KIM, |c| {
        c.as_object_mut().unwrap().remove("auth_time");
    });
    let err = set_pin(&mut w, &key_id, &no_auth_time).unwrap_err();
    assert_refused(&w, &key_id, "self_set_pin", &err, "sign_in_too_old");

    let password_only = sign_in(&w, KIM, |o| o.amr = vec!["pwd".into()]);
    let err = set_pin(&mut w, &key_id, &password_only).unwrap_err();
    assert_refused(&w, &key_id, "self_set_pin", &err, "mfa_required");
    // An authentication context the template does not accept is no better.
    let other_context = sign_in(&w, KIM, |o| {
        o.amr = vec!["pwd".into()];
        o.acrs = vec!["c2".into()];
    });
    let err = set_pin(&mut w, &key_id, &other_context).unwrap_err();
    assert_refused(&w, &key_id, "self_set_pin", &err, "mfa_required");
    assert_still_issued(&w, &key_id);

    // A template accepting authentication context c1 (and a longer max_age) takes a
    // password sign-in that satisfied c1 fifteen minutes ago.
    let oidc = t.credential.self_service.oidc.as_mut().unwrap();
    oidc.acrs = vec!["c1".into()];
    oidc.max_age_secs = 3600;
    w.engine.add_template(t).unwrap();
    let c1 = sign_in(&w, KIM, |o| {
        o.amr = vec!["pwd".into()];
        o.acrs = vec!["c1".into()];
        o.auth_age = Duration::from_secs(15 * 60);
    });
    assert_eq!(
        set_pin(&mut w, &key_id, &c1).unwrap().state,
        CredentialState::Active
    );
}

#[test]
fn issuer_must_be_the_directory_tenant_unless_mapped() {
    let mut w = world("trust-issuer");
    let t = template(&w.emulator, "self-pin", ALL);
    let key_id = operator_issue(&mut w, &t, KIM, now_ms());

    // A token of another tenant from the right issuer URL: tid is checked.
    let foreign = edited(&w, KIM, |c| {
        c["tid"] = json!("11111111-2222-3333-4444-555555555555")
    });
    let err = set_pin(&mut w, &key_id, &foreign).unwrap_err();
    assert_refused(&w, &key_id, "self_set_pin", &err, "tenant_mismatch");
    let no_tid = edited(&w, KIM, |c| {
        c.as_object_mut().unwrap().remove("tid");
    });
    let err = set_pin(&mut w, &key_id, &no_tid).unwrap_err();
    assert_refused(&w, &key_id, "self_set_pin", &err, "tenant_mismatch");

    // A template naming another issuer (a second identity platform whose users carry
    // the same object ids) is refused before any token is looked at...
    let other = Emulator::start(EmulatorConfig::default()).unwrap();
    let mut t2 = t.clone();
    t2.credential.name = "self-pin-other-issuer".into();
    let oidc = t2.credential.self_service.oidc.as_mut().unwrap();
    oidc.issuer = other.oidc_issuer();
    oidc.jwks_url = other.jwks_url();
    let mut w2 = world("trust-issuer-2");
    let key2 = operator_issue(&mut w2, &t2, KIM, now_ms());
    let nonce = w2.engine.self_service_begin(now_ms()).unwrap().nonce;
    let tok = other
        .holder_token_with(&HolderTokenOptions::new(KIM, AUDIENCE).nonce(nonce.clone()))
        .unwrap();
    let err = w2
        .engine
        .self_set_pin(&key2, &tok, &nonce, NEW_PIN, &mut w2.key, now_ms())
        .unwrap_err();
    assert_refused(&w2, &key2, "self_set_pin", &err, "issuer_not_trusted");
    assert!(
        err.to_string().contains(&w2.emulator.oidc_issuer()),
        "{err}"
    );
    assert_eq!(w2.engine.key(&key2).unwrap().state, CredentialState::Issued);

    // ...unless the template maps that issuer to the directory explicitly.
    let mut mapped = t2.clone();
    mapped
        .credential
        .self_service
        .oidc
        .as_mut()
        .unwrap()
        .directory = Some(t2.credential.user_assignment.directory.clone());
    w2.engine.add_template(mapped).unwrap();
    let nonce = w2.engine.self_service_begin(now_ms()).unwrap().nonce;
    let tok = other
        .holder_token_with(&HolderTokenOptions::new(KIM, AUDIENCE).nonce(nonce.clone()))
        .unwrap();
    let key = w2
        .engine
        .self_set_pin(&key2, &tok, &nonce, NEW_PIN, &mut w2.key, now_ms())
        .expect("mapped issuer");
    assert_eq!(key.state, CredentialState::Active);
}

#[test]
fn a_token_without_the_profile_scope_says_so() {
    let mut w = world("trust-profile");
    let t = template(&w.emulator, "self-pin", ALL);
    let key_id = operator_issue(&mut w, &t, KIM, now_ms());
    let tok = sign_in(&w, KIM, |o| o.scope = "openid".into());
    let err = set_pin(&mut w, &key_id, &tok).unwrap_err();
    assert_refused(&w, &key_id, "self_set_pin", &err, "profile_scope_required");
    assert!(err.to_string().contains("profile scope"), "{err}");
}

fn blank_key() -> Authenticator<SoftTransport> {
    Authenticator::new(SoftTransport::new(
        SoftAuthenticator::new(SoftConfig::default()).unwrap(),
    ))
}

fn self_issue(
    w: &World,
    serial: &str,
    key: &mut Authenticator<SoftTransport>,
) -> Result<lifecycle::store::KeyRecord, Error> {
    let tok = token(w, KIM);
    w.engine.self_issue(
        &tok.id,
        &tok.nonce,
        "self-issue",
        serial,
        KeyTransport::Usb,
        NEW_PIN,
        key,
        now_ms(),
    )
}

#[test]
fn self_issued_keys_are_limited_per_user() {
    let w = world("trust-limit");
    let t: TemplateSet = template(&w.emulator, "self-issue", ALL);
    assert_eq!(t.credential.self_service.self_issue_limit, 2, "the default");
    w.engine.add_template(t).unwrap();
    let mut keys: Vec<_> = (0..3).map(|_| blank_key()).collect();
    for (i, key) in keys.iter_mut().take(2).enumerate() {
        let k = self_issue(&w, &format!("SN-LIMIT-{i}"), key).expect("within the limit");
        assert_eq!(k.state, CredentialState::Active);
    }
    let err = self_issue(&w, "SN-LIMIT-2", &mut keys[2]).unwrap_err();
    let info = keys[2].info().unwrap().clone();
    let key_id = lifecycle::engine::key_id_for(&info.aaguid, "SN-LIMIT-2");
    assert_refused(&w, &key_id, "self_issue", &err, "self_issue_limit_reached");
    assert_eq!(w.emulator.methods(KIM_ID).len(), 2);
}

#[test]
fn disabled_accounts_get_no_keys() {
    let mut w = world("trust-disabled");
    let t = template(&w.emulator, "self-pin", ALL);
    let key_id = operator_issue(&mut w, &t, KIM, now_ms());
    // A token from before the account was disabled is still within its lifetime.
    let tok = token(&w, KIM);
    assert!(w.emulator.set_account_enabled(KIM, false));

    let err = set_pin(&mut w, &key_id, &tok).unwrap_err();
    assert_refused(&w, &key_id, "self_set_pin", &err, "account_disabled");
    assert_still_issued(&w, &key_id);

    // Operator issuance refuses too, before anything is written to the key.
    let mut other = blank_key();
    let req = IssueRequest {
        actor: "operator:alice".into(),
        user: KIM.into(),
        serial: "SN-DISABLED".into(),
        transport: KeyTransport::Usb,
        can_reset_in_place: false,
    };
    let err = w
        .engine
        .issue(&req, "self-pin", &mut other, now_ms())
        .unwrap_err();
    assert_eq!(err.reason(), "account_disabled", "{err}");
    assert!(matches!(
        err,
        Error::Engine(EngineError::SelfService(
            SelfServiceError::AccountDisabled { .. }
        ))
    ));
    let info = other.info().unwrap().clone();
    let other_id = lifecycle::engine::key_id_for(&info.aaguid, "SN-DISABLED");
    let other_key = w.engine.key(&other_id).unwrap();
    assert_eq!(other_key.state, CredentialState::Blank);
    assert!(w
        .engine
        .audit_for(&other_id)
        .unwrap()
        .iter()
        .any(|a| a.event.outcome != "success"));

    // Enabled again: the holder can go on.
    assert!(w.emulator.set_account_enabled(KIM, true));
    let tok = token(&w, KIM);
    assert_eq!(
        set_pin(&mut w, &key_id, &tok).unwrap().state,
        CredentialState::Active
    );
}

fn pg_url() -> Option<String> {
    keysmith_testkit::pg_url("PostgreSQL self-service test")
}

/// Two stations on one PostgreSQL repository: a token used at one is a replay at the
/// other, and a nonce handed out by one is taken once by either.
#[test]
fn a_token_used_at_one_station_is_a_replay_at_another_on_postgres() {
    use lifecycle::engine::Engine;
    use lifecycle::idp::EntraIdp;
    use lifecycle::store::{PgStore, PinKey};
    use std::sync::Arc;

    let Some(url) = pg_url() else { return };
    let emulator = Emulator::start(EmulatorConfig::default()).unwrap();
    let schema = format!("selfsvc_{}_{}", std::process::id(), now_ms() % 1_000_000);
    let station = |name: &str| {
        let store = PgStore::connect_in_schema(&url, &schema).expect("postgres store");
        Engine::builder(Arc::new(store), PinKey::from_bytes([7; 32]), name)
            .idp(Arc::new(EntraIdp::new(
                crate::common::CONNECTION,
                crate::common::graph_client(&emulator),
            )))
            .template(template(&emulator, "self-issue", ALL))
            .build()
            .expect("engine")
    };
    let (a, b) = (station("station-a"), station("station-b"));
    let nonce = a.self_service_begin(now_ms()).unwrap().nonce;
    let token = emulator
        .holder_token_with(&HolderTokenOptions::new(KIM, AUDIENCE).nonce(nonce.clone()))
        .unwrap();
    let issue = |engine: &Engine, serial: &str, key: &mut Authenticator<SoftTransport>| {
        engine.self_issue(
            &token,
            &nonce,
            "self-issue",
            serial,
            KeyTransport::Usb,
            NEW_PIN,
            key,
            now_ms(),
        )
    };
    let k = issue(&b, "SN-PG-1", &mut blank_key()).expect("first use, at station b");
    assert_eq!(k.state, CredentialState::Active);
    let mut other = blank_key();
    let err = issue(&a, "SN-PG-2", &mut other).unwrap_err();
    assert_eq!(err.reason(), "token_replayed", "{err}");
    let info = other.info().unwrap().clone();
    let key_id = lifecycle::engine::key_id_for(&info.aaguid, "SN-PG-2");
    let audit = a.audit_for(&key_id).unwrap();
    let last = &audit.last().expect("audited").event;
    assert_eq!(
        (last.action.as_str(), last.outcome.as_str()),
        ("self_issue", "refused")
    );
    assert!(last
        .detail
        .as_deref()
        .unwrap_or("")
        .contains("already used"));
}

/// A token just past its `exp` still verifies within the verifier's leeway, so its id is
/// kept until then too: the replay inside the leeway is refused.
#[test]
fn a_token_inside_the_expiry_leeway_is_still_used_once() {
    let mut w = world("trust-leeway");
    let t = template(&w.emulator, "self-pin", ALL);
    let key_id = operator_issue(&mut w, &t, KIM, now_ms());
    let secs = now_ms() / 1000;
    let tok = edited(&w, KIM, |c| {
        c["iat"] = json!(secs - 600);
        c["nbf"] = json!(secs - 600);
        c["exp"] = json!(secs - 120);
        c["auth_time"] = json!(secs - 60);
    });
    assert_eq!(
        set_pin(&mut w, &key_id, &tok).unwrap().state,
        CredentialState::Active
    );
    let err = set_pin(&mut w, &key_id, &tok).unwrap_err();
    assert_refused(&w, &key_id, "self_set_pin", &err, "token_replayed");
}
