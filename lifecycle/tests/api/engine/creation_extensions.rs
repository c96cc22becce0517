//! Issue 12 item 8: the extensions in Entra's creationOptions (`hmacCreateSecret`,
//! `credentialProtectionPolicy`, `enforceCredentialProtectionPolicy`) reach the key as a
//! browser or Windows carries them: the credential on the software key is made with
//! hmac-secret and the credProtect level asked for; an enforced policy a key cannot
//! honour stops the issuance before anything is made.

use super::*;

/// The software key's one credential: (credProtect level, made with hmac-secret). The
/// software key's credential ids carry the hmac-secret flag (0x80) in byte 1.
fn made_with(t: &SoftTransport) -> (u8, bool) {
    t.with(|a| {
        let c = &a.state().credentials;
        assert_eq!(c.len(), 1, "one credential on the key");
        let hmac = c[0].id.get(1).is_some_and(|f| f & 0x80 != 0);
        (c[0].cred_protect, hmac)
    })
}

fn issue(w: &mut World) -> Result<lifecycle::store::KeyRecord, Error> {
    let t = template(60, true);
    w.engine
        .add_template(t.clone())
        .expect("the template loads");
    w.engine
        .issue(&request(true), &t.credential.name, &mut w.key, now_ms())
}

#[test]
fn entras_own_extensions_make_an_hmac_secret_credential_with_cred_protect() {
    let mut w = world("ext-entra");
    // The emulator answers as Graph's sample: hmacCreateSecret, credProtect
    // userVerificationOptional, enforced.
    issue(&mut w).expect("issued");
    assert_eq!(made_with(&w.transport), (1, true));
}

#[test]
fn another_policy_reaches_the_key_as_its_cred_protect_level() {
    let mut w = world("ext-level2");
    w.emulator.set_creation_extensions(Some(serde_json::json!({
        "hmacCreateSecret": false,
        "enforceCredentialProtectionPolicy": true,
        "credentialProtectionPolicy": "userVerificationOptionalWithCredentialIDList",
    })));
    issue(&mut w).expect("issued");
    assert_eq!(made_with(&w.transport), (2, false));
}

#[test]
fn no_extensions_leave_the_key_at_its_defaults() {
    let mut w = world("ext-none");
    w.emulator
        .set_creation_extensions(Some(serde_json::json!({})));
    issue(&mut w).expect("issued");
    assert_eq!(made_with(&w.transport), (1, false));
}

/// A key without credProtect (and hmac-secret): the extension is not sent, and the
/// enforced `userVerificationOptional` of Entra is no failure (it is every credential's
/// default); an enforced stronger policy stops the issuance typed, before the key makes
/// anything and before anything reaches the IdP.
#[test]
fn an_enforced_policy_a_key_cannot_honour_stops_issuance() {
    let mut w = world("ext-enforced");
    let small = SoftTransport::new(
        SoftAuthenticator::new(SoftConfig {
            without_extensions: vec!["credProtect".into(), "hmac-secret".into()],
            ..SoftConfig::default()
        })
        .expect("softkey"),
    );
    w.transport = small.clone();
    w.key = Authenticator::new(small);
    w.emulator.set_creation_extensions(Some(serde_json::json!({
        "hmacCreateSecret": true,
        "enforceCredentialProtectionPolicy": true,
        "credentialProtectionPolicy": "userVerificationRequired",
    })));
    let e = issue(&mut w).expect_err("a browser refuses this key too");
    assert_eq!(e.reason(), "device_unsupported", "{e}");
    assert!(
        e.to_string().contains("userVerificationRequired") && e.to_string().contains("credProtect"),
        "{e}"
    );
    assert!(w.transport.with(|a| a.state().credentials.is_empty()));
    assert!(w.emulator.methods(&w.kim_id).is_empty());

    // Not enforced: the key makes the credential without credProtect.
    let mut w2 = world("ext-unenforced");
    let small = SoftTransport::new(
        SoftAuthenticator::new(SoftConfig {
            without_extensions: vec!["credProtect".into(), "hmac-secret".into()],
            ..SoftConfig::default()
        })
        .expect("softkey"),
    );
    w2.transport = small.clone();
    w2.key = Authenticator::new(small);
    w2.emulator.set_creation_extensions(Some(serde_json::json!({
        "hmacCreateSecret": true,
        "enforceCredentialProtectionPolicy": false,
        "credentialProtectionPolicy": "userVerificationRequired",
    })));
    issue(&mut w2).expect("issued without credProtect");
    assert_eq!(made_with(&w2.transport), (1, false));
}
