//! Issue 13 items 9 and 10: a revocation warns when it removes the user's last
//! phishing-resistant method, and signs the user out once the passkey is gone.

use super::*;

fn active_key(w: &mut World, t: &TemplateSet) -> String {
    let now = now_ms();
    let key = load_and_issue(w, t, now);
    w.engine
        .activate("self:kim", &key.key_id, HOLDER_PIN, &mut w.key, now + 1_000)
        .expect("activate");
    assert_eq!(w.emulator.methods(&w.kim_id).len(), 1);
    key.key_id
}

fn actions(w: &World, key_id: &str) -> Vec<(String, String)> {
    w.engine
        .audit_for(key_id)
        .unwrap()
        .into_iter()
        .map(|r| (r.event.action, r.event.outcome))
        .collect()
}

#[test]
fn revoke_warns_about_the_last_phishing_resistant_method_and_signs_the_user_out() {
    let mut w = world("revoke-sign-out");
    let key_id = active_key(&mut w, &template(60, true));
    w.engine
        .revoke("operator:alice", &key_id, None, now_ms() + 10_000)
        .expect("revoke");
    assert!(w.emulator.methods(&w.kim_id).is_empty());
    assert_eq!(w.emulator.sign_in_revocations(&w.kim_id), 1);
    let a = actions(&w, &key_id);
    assert!(
        a.contains(&("idp-last-method".into(), "warning".into())),
        "{a:?}"
    );
    assert!(
        a.contains(&("idp-sign-out".into(), "success".into())),
        "{a:?}"
    );
}

#[test]
fn no_warning_while_windows_hello_remains_and_the_switch_turns_sign_out_off() {
    let mut w = world("revoke-no-sign-out");
    w.emulator
        .add_authentication_method(
            KIM,
            "#microsoft.graph.windowsHelloForBusinessAuthenticationMethod",
        )
        .expect("kim exists");
    // Microsoft Authenticator push is not phishing-resistant; it changes nothing.
    w.emulator
        .add_authentication_method(
            KIM,
            "#microsoft.graph.microsoftAuthenticatorAuthenticationMethod",
        )
        .expect("kim exists");
    let mut t = template(60, true);
    t.credential.lifecycle.revoke_sign_in_sessions_on_revoke = false;
    let key_id = active_key(&mut w, &t);
    w.engine
        .revoke("operator:alice", &key_id, None, now_ms() + 10_000)
        .expect("revoke");
    assert!(w.emulator.methods(&w.kim_id).is_empty());
    assert_eq!(w.emulator.sign_in_revocations(&w.kim_id), 0);
    let a = actions(&w, &key_id);
    assert!(!a.iter().any(|(act, _)| act == "idp-last-method"), "{a:?}");
    assert!(!a.iter().any(|(act, _)| act == "idp-sign-out"), "{a:?}");
}

#[test]
fn inactivation_does_not_sign_the_user_out() {
    let mut w = world("inactivate-no-sign-out");
    let key_id = active_key(&mut w, &template(60, true));
    w.engine
        .inactivate("operator:alice", &key_id, now_ms() + 10_000)
        .expect("inactivate");
    assert!(w.emulator.methods(&w.kim_id).is_empty());
    assert_eq!(w.emulator.sign_in_revocations(&w.kim_id), 0);
}

/// Issue 13 item 11: a lost key is revoked and its holder gets a Temporary Access Pass
/// for the day until the replacement key is issued; audited without the pass.
#[test]
fn a_replacement_pass_for_the_day_is_issued_and_audited() {
    let mut w = world("replacement-pass");
    let key_id = active_key(&mut w, &template(60, true));
    let now = now_ms() + 10_000;
    w.engine
        .revoke("operator:alice", &key_id, None, now)
        .expect("revoke");
    let pass = w
        .engine
        .replacement_pass(
            "operator:alice",
            &key_id,
            lifecycle::engine::REPLACEMENT_PASS_MINUTES,
            now + 1,
        )
        .expect("a pass");
    assert!(pass.pass.len() >= 8);
    assert_eq!(pass.lifetime_minutes, 480);
    assert!(!format!("{pass:?}").contains(pass.pass.as_str()));
    let audit = w.engine.audit_for(&key_id).unwrap();
    let rec = audit
        .iter()
        .find(|r| r.event.action == "idp-temporary-pass")
        .expect("audited");
    assert_eq!(rec.event.outcome, "success");
    assert!(!rec
        .event
        .detail
        .as_deref()
        .unwrap_or("")
        .contains(pass.pass.as_str()));
    // Entra holds one pass per user: a second is refused, and that is audited too.
    assert!(w
        .engine
        .replacement_pass("operator:alice", &key_id, 60, now + 2)
        .is_err());
    assert!(w
        .engine
        .audit_for(&key_id)
        .unwrap()
        .iter()
        .any(|r| r.event.action == "idp-temporary-pass" && r.event.outcome == "failure"));
}
