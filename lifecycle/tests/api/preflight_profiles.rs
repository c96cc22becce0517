//! Issue 19 item 2 (rest): an issuance the pre-flight refuses names the passkey
//! profile(s) that block the key, with the profile's name, id and reason, in the error
//! the engine returns (and the CLI, facade, C and Python show).

use entra_graph::wire::{EnforcementType, KeyRestrictions, PasskeyProfile};
use lifecycle::idp::IdpError;
use lifecycle::Error;

use crate::support::*;

fn allow_only(id: &str, name: &str, aaguid: &str) -> PasskeyProfile {
    PasskeyProfile {
        id: id.into(),
        name: Some(name.into()),
        passkey_types: Some("deviceBound".into()),
        attestation_enforcement: None,
        key_restrictions: Some(KeyRestrictions {
            is_enforced: true,
            enforcement_type: Some(EnforcementType::Allow),
            aa_guids: vec![aaguid.into()],
        }),
    }
}

#[test]
fn a_refused_issuance_names_the_blocking_profile() {
    const OTHER: &str = "00000000-0000-0000-0000-0000000000aa";
    let w = world("preflight-profiles");
    let mut p = w.emulator.policy();
    p.passkey_profiles = vec![allow_only("p-sales", "Sales keys", OTHER)];
    p.default_passkey_profile = Some("p-sales".into());
    w.emulator.update_policy(p).unwrap();
    let mut key = softkey();
    let e = w
        .engine
        .issue(
            &request(KIM, "SN-PROFILE"),
            &template().credential.name,
            &mut key,
            now_ms(),
        )
        .unwrap_err();
    let Error::Idp(IdpError::Policy { message, .. }) = &e else {
        panic!("not a policy refusal: {e:?}");
    };
    assert!(
        message.contains("not on the tenant's allow list"),
        "{message}"
    );
    assert!(
        message.contains("passkey profile \"Sales keys\" (id p-sales)"),
        "{message}"
    );
    assert!(w.emulator.methods(KIM_ID).is_empty());
}
