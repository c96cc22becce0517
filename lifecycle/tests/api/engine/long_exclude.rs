//! Issue 12 item 3: a user who already holds more passkeys than the key accepts in an
//! exclude list (`maxCredentialCountInList`, 8 on YubiKeys) can still be issued a key.

use super::*;

#[test]
fn issuance_to_a_user_with_twelve_passkeys_on_a_key_with_a_limit_of_eight() {
    let mut w = world("twelve");
    assert_eq!(
        w.key.info().unwrap().max_credential_count_in_list,
        Some(8),
        "the software key is taught the YubiKey limit"
    );
    assert_eq!(w.emulator.seed_methods(KIM, 12).len(), 12);
    let t = template(60, true);
    w.engine
        .add_template(t.clone())
        .expect("the template loads");
    let now = now_ms();
    let key = w
        .engine
        .issue(&request(true), &t.credential.name, &mut w.key, now)
        .expect("issued although Entra excludes 12 credentials");
    assert_eq!(key.state, CredentialState::Issued);
    let key = w
        .engine
        .activate("self:kim", &key.key_id, HOLDER_PIN, &mut w.key, now + 1_000)
        .expect("activate");
    assert_eq!(key.state, CredentialState::Active);
    assert_eq!(w.emulator.methods(&w.kim_id).len(), 13);
}
