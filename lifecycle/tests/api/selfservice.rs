//! Self-service flows end to end: the holder authenticated by an ID token from the real
//! Entra emulator (its OIDC endpoints on loopback), the software authenticator, SQLite.

use std::path::PathBuf;
use std::time::Duration;

use entra_graph::emulator::{Emulator, EmulatorConfig, HolderTokenOptions};
use fido_transport::client::Authenticator;
use fido_transport::softkey::{SoftAuthenticator, SoftConfig, SoftTransport};
use lifecycle::engine::{Engine, EngineError, IssueRequest, LookupError, SelfServiceError};
use lifecycle::state::TransitionError;
use lifecycle::store::AuditRecord;
use lifecycle::template::{KeyTransport, TemplateSet};
use lifecycle::{CredentialState, Error};

use crate::common::{now_ms, sqlite_engine, temp_dir, KIM, KIM_ID};
pub(crate) const ADELE: &str = "adelev@contoso.onmicrosoft.com";
pub(crate) const ADELE_ID: &str = "87d349ed-44d7-43e1-9a83-5f2406dee5bd";
pub(crate) const AUDIENCE: &str = "keysmith-self-service";
pub(crate) const NEW_PIN: &str = "holder-pin-9753";
pub(crate) const HOUR: Duration = Duration::from_secs(3600);

/// Switches of the template's `[credential.self_service]`.
#[derive(Clone, Copy)]
pub(crate) struct Allow {
    pub(crate) pin_set: bool,
    pub(crate) self_issue: bool,
    pub(crate) unblock: bool,
    pub(crate) auto_initiate: bool,
}

pub(crate) const ALL: Allow = Allow {
    pin_set: true,
    self_issue: true,
    unblock: true,
    auto_initiate: false,
};

pub(crate) fn template(emu: &Emulator, name: &str, allow: Allow) -> TemplateSet {
    let text = format!(
        r#"
[passkey.entra]
idp = {{ connection = "contoso-entra", kind = "entra", graph_api_version = "beta" }}
display_name = "{{displayName}} {{serial}}"
truncate_display_name = true
rp_id = "login.microsoft.com"
challenge_timeout_minutes = 60

[credential]
name = "{name}"
passkey_templates = ["entra"]
user_assignment = {{ directory = "contoso-entra" }}

[credential.lifecycle]
auto_initiate_after_issuance = {auto}

[credential.self_service]
pin_set_allowed = {pin_set}
pin_unblock_allowed = {unblock}
self_issuance_allowed = {self_issue}
oidc = {{ issuer = "{issuer}", audience = "{AUDIENCE}", jwks_url = "{jwks}" }}
"#,
        auto = allow.auto_initiate,
        pin_set = allow.pin_set,
        unblock = allow.unblock,
        self_issue = allow.self_issue,
        issuer = emu.oidc_issuer(),
        jwks = emu.jwks_url(),
    );
    TemplateSet::from_toml_str(&text).expect("test template parses")
}

pub(crate) struct World {
    pub(crate) emulator: Emulator,
    db: PathBuf,
    pub(crate) engine: Engine,
    pub(crate) key: Authenticator<SoftTransport>,
    pub(crate) transport: SoftTransport,
}

impl Drop for World {
    fn drop(&mut self) {
        if let Some(dir) = self.db.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

pub(crate) fn world(name: &str) -> World {
    let emulator = Emulator::start(EmulatorConfig::default()).expect("emulator");
    let db = temp_dir(&format!("selfservice-{name}")).join("keysmith.db");
    let engine = sqlite_engine(&emulator, &db, "station-a", 9);
    let soft = SoftAuthenticator::new(SoftConfig::default()).expect("softkey");
    let transport = SoftTransport::new(soft);
    let key = Authenticator::new(transport.clone());
    World {
        emulator,
        db,
        engine,
        key,
        transport,
    }
}

pub(crate) fn operator_issue(w: &mut World, t: &TemplateSet, user: &str, now: u64) -> String {
    let req = IssueRequest {
        actor: "operator:alice".into(),
        user: user.into(),
        serial: "SN-SELF-1".into(),
        transport: KeyTransport::Usb,
        can_reset_in_place: false,
    };
    w.engine
        .add_template(t.clone())
        .expect("the template loads");
    let key = w
        .engine
        .issue(&req, &t.credential.name, &mut w.key, now)
        .expect("central issue");
    assert_eq!(key.state, CredentialState::Issued);
    key.key_id
}

/// A holder's sign-in: the nonce the engine handed out and the ID token carrying it.
pub(crate) struct Tok {
    pub(crate) id: String,
    pub(crate) nonce: String,
}

/// A fresh sign-in of `user` (scope `openid profile`, MFA, just now).
pub(crate) fn token(w: &World, user: &str) -> Tok {
    let nonce = w.engine.self_service_begin(now_ms()).expect("nonce").nonce;
    let id = w
        .emulator
        .holder_token_with(&HolderTokenOptions {
            lifetime: HOUR,
            ..HolderTokenOptions::new(user, AUDIENCE).nonce(nonce.clone())
        })
        .expect("holder token");
    Tok { id, nonce }
}

/// Audit records never carry the PIN or any token.
pub(crate) fn assert_no_secrets(audit: &[AuditRecord], secrets: &[&str]) {
    for a in audit {
        let text = format!("{:?}", a.event);
        for s in secrets {
            assert!(!text.contains(s), "secret in audit record {text}");
        }
        assert!(!text.contains("eyJ"), "token-like text in audit: {text}");
    }
}

#[test]
fn owner_sets_pin_and_activates() {
    let mut w = world("pinset");
    let t = template(&w.emulator, "self-pin", ALL);
    let now = now_ms();
    let key_id = operator_issue(&mut w, &t, KIM, now);
    assert!(w.emulator.methods(KIM_ID).is_empty());

    let tok = token(&w, KIM);
    let key = w
        .engine
        .self_set_pin(
            &key_id,
            &tok.id,
            &tok.nonce,
            NEW_PIN,
            &mut w.key,
            now + 1_000,
        )
        .expect("self PIN set");
    assert_eq!(key.state, CredentialState::Active);
    assert_eq!(key.user_id.as_deref(), Some(KIM_ID));
    // The IdP holds the passkey and a sign-in with the new PIN verifies against it.
    assert_eq!(w.emulator.methods(KIM_ID).len(), 1);
    let signed = w
        .engine
        .sign_in(&key_id, NEW_PIN, &mut w.key)
        .expect("sign in with the holder's PIN");
    assert_eq!(signed.len(), 1);
    assert!(w
        .engine
        .sign_in(&key_id, "not-the-pin-1", &mut w.key)
        .is_err());

    let audit = w.engine.audit_for(&key_id).unwrap();
    let actor = format!("self:{KIM_ID}");
    assert!(
        audit.iter().any(|a| a.event.action == "activate"
            && a.event.outcome == "success"
            && a.event.actor == actor),
        "{audit:#?}"
    );
    assert_no_secrets(&audit, &[NEW_PIN, &tok.id]);

    // A second PIN set on the now Active key is refused by the state machine.
    let tok = token(&w, KIM);
    let err = w
        .engine
        .self_set_pin(
            &key_id,
            &tok.id,
            &tok.nonce,
            "another-pin-123",
            &mut w.key,
            now + 2_000,
        )
        .unwrap_err();
    assert!(matches!(err, Error::Transition(_)), "{err:?}");
    w.engine
        .sign_in(&key_id, NEW_PIN, &mut w.key)
        .expect("PIN unchanged");
}

fn assert_unchanged(w: &World, key_id: &str, user_id: &str) {
    let key = w.engine.key(key_id).unwrap();
    assert_eq!(key.state, CredentialState::Issued);
    assert_eq!(key.user_id.as_deref(), Some(user_id));
    assert!(w.emulator.methods(user_id).is_empty());
    assert_eq!(w.engine.store().pending_for_key(key_id).unwrap().len(), 1);
}

#[test]
fn another_users_token_is_refused_and_nothing_changes() {
    let mut w = world("notowner");
    let t = template(&w.emulator, "self-pin", ALL);
    let now = now_ms();
    let key_id = operator_issue(&mut w, &t, KIM, now);
    let adele = token(&w, ADELE);
    let err = w
        .engine
        .self_set_pin(
            &key_id,
            &adele.id,
            &adele.nonce,
            NEW_PIN,
            &mut w.key,
            now + 1_000,
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Engine(EngineError::SelfService(
                SelfServiceError::NotKeyOwner { .. }
            ))
        ),
        "{err:?}"
    );
    assert_unchanged(&w, &key_id, KIM_ID);
    // The key still takes the rightful holder's PIN set (the transport PIN is intact).
    let audit = w.engine.audit_for(&key_id).unwrap();
    let last = &audit.last().unwrap().event;
    assert_eq!(
        (
            last.action.as_str(),
            last.outcome.as_str(),
            last.actor.as_str()
        ),
        (
            "self_set_pin",
            "refused",
            format!("self:{ADELE_ID}").as_str()
        )
    );
    assert!(last
        .detail
        .as_deref()
        .unwrap_or("")
        .contains("does not own"));
    assert_no_secrets(&audit, &[NEW_PIN, &adele.id]);
    let fresh = token(&w, KIM);
    w.engine
        .self_set_pin(
            &key_id,
            &fresh.id,
            &fresh.nonce,
            NEW_PIN,
            &mut w.key,
            now + 2_000,
        )
        .expect("the owner still can");
}

#[test]
fn expired_forged_and_wrong_audience_tokens_are_refused() {
    let mut w = world("badtokens");
    let t = template(&w.emulator, "self-pin", ALL);
    let now = now_ms();
    let key_id = operator_issue(&mut w, &t, KIM, now);
    let mut claims: serde_json::Value =
        serde_json::from_str(&w.emulator.holder_claims_json(KIM, AUDIENCE, HOUR).unwrap()).unwrap();
    let genuine = claims.to_string();
    let secs = now / 1000;
    claims["exp"] = serde_json::json!(secs - 3600);
    claims["iat"] = serde_json::json!(secs - 7200);
    claims["nbf"] = serde_json::json!(secs - 7200);
    let expired = w.emulator.sign_claims(&claims.to_string()).unwrap();
    let forged = w.emulator.sign_unpublished(&genuine).unwrap();
    let wrong_aud = w
        .emulator
        .holder_token(KIM, "some-other-app", HOUR)
        .unwrap();
    let mut tampered: Vec<String> = token(&w, ADELE).id.split('.').map(str::to_owned).collect();
    tampered[1] = base64_url(genuine.as_bytes());
    let tampered = tampered.join(".");
    for (tok, claim) in [
        (&expired, "exp"),
        (&forged, "kid"),
        (&wrong_aud, "aud"),
        (&tampered, "signature"),
        (&"garbage".to_owned(), "token"),
    ] {
        let err = w
            .engine
            .self_set_pin(&key_id, tok, "no-nonce", NEW_PIN, &mut w.key, now + 1_000)
            .unwrap_err();
        match &err {
            Error::Engine(EngineError::SelfService(SelfServiceError::HolderAuth {
                claim: c,
                ..
            })) => assert_eq!(c, claim),
            other => panic!("{claim}: {other:?}"),
        }
        assert_unchanged(&w, &key_id, KIM_ID);
    }
    let audit = w.engine.audit_for(&key_id).unwrap();
    let refusals: Vec<_> = audit
        .iter()
        .filter(|a| a.event.action == "self_set_pin" && a.event.outcome == "refused")
        .collect();
    assert_eq!(refusals.len(), 5);
    assert!(refusals.iter().all(|a| a.event.actor == "self:unverified"));
    assert_no_secrets(&audit, &[NEW_PIN, &expired, &forged, &wrong_aud, &tampered]);
}

fn base64_url(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[test]
fn templates_without_permission_refuse() {
    let mut w = world("noperm");
    let none = Allow {
        pin_set: false,
        self_issue: false,
        unblock: true,
        auto_initiate: false,
    };
    let t = template(&w.emulator, "no-self-service", none);
    let now = now_ms();
    let key_id = operator_issue(&mut w, &t, KIM, now);
    let tok = token(&w, KIM);
    let err = w
        .engine
        .self_set_pin(
            &key_id,
            &tok.id,
            &tok.nonce,
            NEW_PIN,
            &mut w.key,
            now + 1_000,
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Engine(EngineError::SelfService(
                SelfServiceError::SelfServiceNotAllowed {
                    what: "PIN set",
                    ..
                }
            ))
        ),
        "{err:?}"
    );
    assert_unchanged(&w, &key_id, KIM_ID);

    // Self-issuance with that template, on a fresh key.
    let mut w2 = world("noperm2");
    let t2 = template(&w2.emulator, "no-self-service", none);
    w2.engine.add_template(t2).unwrap();
    let tok2 = token(&w2, KIM);
    let err = w2
        .engine
        .self_issue(
            &tok2.id,
            &tok2.nonce,
            "no-self-service",
            "SN-SELF-9",
            KeyTransport::Usb,
            NEW_PIN,
            &mut w2.key,
            now,
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Engine(EngineError::SelfService(
                SelfServiceError::SelfServiceNotAllowed {
                    what: "self-issuance",
                    ..
                }
            ))
        ),
        "{err:?}"
    );
    assert!(w2.emulator.methods(KIM_ID).is_empty());
    // A template that is not loaded is refused too (a holder never supplies one).
    let err = w2
        .engine
        .self_issue(
            &tok2.id,
            &tok2.nonce,
            "unknown",
            "SN-SELF-9",
            KeyTransport::Usb,
            NEW_PIN,
            &mut w2.key,
            now,
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Engine(EngineError::Lookup(LookupError::UnknownTemplate { .. }))
        ),
        "{err:?}"
    );
}

#[test]
fn self_issuance_makes_an_active_key_for_the_tokens_subject() {
    for auto_initiate in [false, true] {
        let mut w = world(&format!("selfissue-{auto_initiate}"));
        let allow = Allow {
            auto_initiate,
            ..ALL
        };
        let t = template(&w.emulator, "self-issue", allow);
        w.engine.add_template(t).unwrap();
        let now = now_ms();
        let tok = token(&w, KIM);
        let key = w
            .engine
            .self_issue(
                &tok.id,
                &tok.nonce,
                "self-issue",
                "SN-SELF-2",
                KeyTransport::Usb,
                NEW_PIN,
                &mut w.key,
                now,
            )
            .expect("self-issue");
        assert_eq!(key.state, CredentialState::Active, "auto={auto_initiate}");
        assert_eq!(key.user_id.as_deref(), Some(KIM_ID));
        assert_eq!(key.template_id.as_deref(), Some("self-issue"));
        assert_eq!(w.emulator.methods(KIM_ID).len(), 1);
        assert!(w.emulator.methods(ADELE_ID).is_empty());
        w.engine
            .sign_in(&key.key_id, NEW_PIN, &mut w.key)
            .expect("sign in");
        let audit = w.engine.audit_for(&key.key_id).unwrap();
        let actor = format!("self:{KIM_ID}");
        for action in ["issue", "activate"] {
            assert!(
                audit.iter().any(|a| a.event.action == action
                    && a.event.outcome == "success"
                    && a.event.actor == actor),
                "{action}: {audit:#?}"
            );
        }
        assert!(audit.iter().all(|a| a.event.actor == actor), "{audit:#?}");
        assert_no_secrets(&audit, &[NEW_PIN, &tok.id]);

        // Doing it again on the same (now Active) key is refused.
        let tok = token(&w, KIM);
        let err = w
            .engine
            .self_issue(
                &tok.id,
                &tok.nonce,
                "self-issue",
                "SN-SELF-2",
                KeyTransport::Usb,
                NEW_PIN,
                &mut w.key,
                now + 1_000,
            )
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::Engine(EngineError::SelfService(
                    SelfServiceError::AlreadyIssued { .. }
                ))
            ),
            "{err:?}"
        );
    }
}

#[test]
fn self_issuance_of_a_key_issued_to_someone_else_is_refused() {
    let mut w = world("taken");
    let t = template(&w.emulator, "self-issue", ALL);
    let now = now_ms();
    let key_id = operator_issue(&mut w, &t, ADELE, now);
    let tok = token(&w, KIM);
    let err = w
        .engine
        .self_issue(
            &tok.id,
            &tok.nonce,
            "self-issue",
            "SN-SELF-1",
            KeyTransport::Usb,
            NEW_PIN,
            &mut w.key,
            now + 1_000,
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Engine(EngineError::SelfService(SelfServiceError::AlreadyIssued {
                state: CredentialState::Issued,
                ..
            }))
        ),
        "{err:?}"
    );
    assert_unchanged(&w, &key_id, ADELE_ID);
    assert!(w.emulator.methods(KIM_ID).is_empty());
    let audit = w.engine.audit_for(&key_id).unwrap();
    let last = &audit.last().unwrap().event;
    assert_eq!(
        (
            last.action.as_str(),
            last.outcome.as_str(),
            last.actor.as_str()
        ),
        ("self_issue", "refused", format!("self:{KIM_ID}").as_str())
    );
    assert_no_secrets(&audit, &[NEW_PIN, &tok.id]);
}

#[test]
fn pin_unblock_is_refused_honestly() {
    let mut w = world("unblock");
    let t = template(&w.emulator, "self-pin", ALL);
    let now = now_ms();
    let key_id = operator_issue(&mut w, &t, KIM, now);
    let tok = token(&w, KIM);
    w.engine
        .self_set_pin(
            &key_id,
            &tok.id,
            &tok.nonce,
            NEW_PIN,
            &mut w.key,
            now + 1_000,
        )
        .expect("activate");
    // Not blocked: nothing to unblock.
    let tok = token(&w, KIM);
    let err = w
        .engine
        .self_unblock_pin(&key_id, &tok.id, &tok.nonce, &mut w.key, now + 2_000)
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Engine(EngineError::SelfService(SelfServiceError::PinNotBlocked {
                retries: 8
            }))
        ),
        "{err:?}"
    );
    // Another user may not even ask.
    let fresh = token(&w, ADELE);
    let err = w
        .engine
        .self_unblock_pin(&key_id, &fresh.id, &fresh.nonce, &mut w.key, now + 2_500)
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Engine(EngineError::SelfService(
                SelfServiceError::NotKeyOwner { .. }
            ))
        ),
        "{err:?}"
    );
    assert!(!w.engine.key(&key_id).unwrap().needs_reissue);

    // Block the PIN: eight wrong PINs (the key wants a power cycle after three).
    for i in 0..8 {
        if i % 3 == 0 {
            w.transport.with(|a| a.power_cycle());
        }
        assert!(w
            .engine
            .sign_in(&key_id, "wrong-pin-000", &mut w.key)
            .is_err());
    }
    assert_eq!(w.key.pin_retries().unwrap().retries, 0);
    let tok = token(&w, KIM);
    let err = w
        .engine
        .self_unblock_pin(&key_id, &tok.id, &tok.nonce, &mut w.key, now + 3_000)
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Engine(EngineError::SelfService(
                SelfServiceError::PinBlockedNeedsReissue { .. }
            ))
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("reissued"), "{err}");
    let key = w.engine.key(&key_id).unwrap();
    assert_eq!(key.state, CredentialState::Active);
    assert!(key.needs_reissue, "flagged for the operator's reissue");
    // The passkey was not destroyed behind anyone's back.
    assert_eq!(w.emulator.methods(KIM_ID).len(), 1);
    let audit = w.engine.audit_for(&key_id).unwrap();
    let last = &audit.last().unwrap().event;
    assert_eq!(
        (
            last.action.as_str(),
            last.outcome.as_str(),
            last.actor.as_str()
        ),
        (
            "self_unblock_pin",
            "refused",
            format!("self:{KIM_ID}").as_str()
        )
    );
    assert_no_secrets(&audit, &[NEW_PIN, &tok.id]);

    // A template that does not allow unblock refuses before looking at the key.
    let mut w2 = world("unblock-no");
    let t2 = template(
        &w2.emulator,
        "self-pin",
        Allow {
            unblock: false,
            ..ALL
        },
    );
    let key2 = operator_issue(&mut w2, &t2, KIM, now);
    let fresh = token(&w2, KIM);
    let err = w2
        .engine
        .self_unblock_pin(&key2, &fresh.id, &fresh.nonce, &mut w2.key, now + 1_000)
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Engine(EngineError::SelfService(
                SelfServiceError::SelfServiceNotAllowed {
                    what: "PIN unblock",
                    ..
                }
            ))
        ),
        "{err:?}"
    );
}

#[test]
fn self_pin_set_after_the_challenge_expired_needs_reissue() {
    let mut w = world("expired");
    let mut t = template(&w.emulator, "self-pin", ALL);
    for p in t.passkey.values_mut() {
        p.challenge_timeout_minutes = Some(5);
    }
    let now = now_ms();
    let key_id = operator_issue(&mut w, &t, KIM, now);
    w.emulator.advance_clock(Duration::from_secs(6 * 60));
    let later = now + 6 * 60 * 1000;
    // The token is fresh (the emulator's clock moved too).
    let tok = token(&w, KIM);
    let err = w
        .engine
        .self_set_pin(&key_id, &tok.id, &tok.nonce, NEW_PIN, &mut w.key, later)
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Transition(TransitionError::ChallengeExpired { .. })
        ),
        "{err:?}"
    );
    let key = w.engine.key(&key_id).unwrap();
    assert_eq!(key.state, CredentialState::Issued);
    assert!(key.needs_reissue);
    assert!(w.emulator.methods(KIM_ID).is_empty());
    let audit = w.engine.audit_for(&key_id).unwrap();
    assert!(audit.iter().any(|a| a.event.action == "activate"
        && a.event.outcome == "refused"
        && a.event.actor == format!("self:{KIM_ID}")));
}
