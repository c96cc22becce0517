//! getInfo and clientPIN: PIN set/change, tokens of both protocols, retries and blocking.

use super::*;

#[test]
fn get_info_reflects_configuration() {
    let mut h = harness();
    let info = h.info();
    assert_eq!(info.aaguid, AAGUID);
    assert!(info.is_ctap21());
    assert_eq!(info.pin_uv_auth_protocols, Some(vec![2, 1]));
    assert_eq!(info.supports_option("clientPin"), Some(false));
    assert_eq!(info.supports_option("rk"), Some(true));
    assert_eq!(info.supports_option("credMgmt"), Some(true));
    assert_eq!(info.supports_option("alwaysUv"), Some(false));
    assert_eq!(info.supports_option("bioEnroll"), None);
    assert_eq!(info.min_pin_length, Some(4));
    assert_eq!(info.force_pin_change, Some(false));
    assert!(info.has_extension("credProtect"));
    assert!(info.has_extension("minPinLength"));
    assert_eq!(info.remaining_discoverable_credentials, Some(25));

    let mut h20 = harness_with(SoftConfig::ctap20());
    let info = h20.info();
    assert!(!info.is_ctap21());
    assert_eq!(info.pin_uv_auth_protocols, Some(vec![1]));
    assert_eq!(info.supports_option("credMgmt"), None);
    assert_eq!(h20.status(&Selection), Some(CtapStatus::InvalidCommand));
}

// ---------------------------------------------------------------------------------
// clientPIN

#[test]
fn set_pin_then_tokens_with_both_protocols() {
    for p in [2u8, 1] {
        let mut h = harness();
        assert_eq!(h.set_pin(p, "1234"), None);
        assert_eq!(h.info().supports_option("clientPin"), Some(true));
        // A second setPIN is not allowed.
        assert_eq!(h.set_pin(p, "5678"), Some(CtapStatus::NotAllowed));
        let t = h
            .token(p, "1234", Some(Permissions::MAKE_CREDENTIAL), Some(RP))
            .expect("token");
        assert_eq!(t.protocol().id(), p);
        // Legacy getPinToken too.
        h.token(p, "1234", None, None).expect("getPinToken");
        assert_eq!(h.retries(), 8);
    }
}

#[test]
fn set_pin_rejects_short_pin_and_bad_auth() {
    let mut h = harness();
    // Raise the minimum first (allowed without a PIN), then a 4-digit PIN is refused.
    let cmd = AuthenticatorConfig::new(ConfigSubCommand::SetMinPinLength {
        new_min_pin_length: Some(6),
        min_pin_length_rpids: None,
        force_change_pin: None,
    });
    assert_eq!(h.status(&cmd), None);
    assert_eq!(h.set_pin(2, "1234"), Some(CtapStatus::PinPolicyViolation));
    // A tampered pinUvAuthParam.
    let peer = h.key_agreement(2);
    let params = set_pin(
        PinUvAuthProtocol::Two,
        &peer,
        &Pin::new("123456").expect("pin"),
        &mut h.rng,
    )
    .expect("params");
    let mut bad = params.pin_uv_auth_param.clone();
    bad[0] ^= 1;
    let status = h.status(&ClientPin::SetPin {
        pin_uv_auth_protocol: 2,
        key_agreement: params.key_agreement,
        new_pin_enc: params.new_pin_enc,
        pin_uv_auth_param: bad,
    });
    assert_eq!(status, Some(CtapStatus::PinAuthInvalid));
    assert_eq!(h.set_pin(2, "123456"), None);
}

#[test]
fn token_without_pin_is_pin_not_set() {
    let mut h = harness();
    assert_eq!(
        h.token(2, "1234", Some(Permissions::GET_ASSERTION), Some(RP))
            .err(),
        Some(CtapStatus::PinNotSet)
    );
}

#[test]
fn wrong_pins_block_until_power_cycle_then_for_good() {
    let mut h = harness();
    assert_eq!(h.set_pin(2, "1234"), None);
    let perm = Some(Permissions::GET_ASSERTION);
    assert_eq!(
        h.token(2, "9999", perm, None).err(),
        Some(CtapStatus::PinInvalid)
    );
    assert_eq!(h.retries(), 7);
    assert_eq!(
        h.token(2, "9999", perm, None).err(),
        Some(CtapStatus::PinInvalid)
    );
    assert_eq!(
        h.token(2, "9999", perm, None).err(),
        Some(CtapStatus::PinAuthBlocked)
    );
    assert_eq!(h.retries(), 5);
    // Even the right PIN is refused until a power cycle, without using a retry.
    assert_eq!(
        h.token(2, "1234", perm, None).err(),
        Some(CtapStatus::PinAuthBlocked)
    );
    assert_eq!(h.retries(), 5);
    let state = h
        .send(&ClientPin::GetPinRetries {
            pin_uv_auth_protocol: Some(2),
        })
        .expect("retries");
    assert_eq!(state.power_cycle_state, Some(true));
    h.auth.power_cycle();
    // The right PIN resets the counter.
    h.token(2, "1234", perm, None)
        .expect("token after power cycle");
    assert_eq!(h.retries(), 8);
    // Eight wrong PINs in all (with power cycles) block the PIN.
    let mut last = None;
    for i in 0..8 {
        if i % 3 == 0 {
            h.auth.power_cycle();
        }
        last = h.token(2, "0000", perm, None).err();
    }
    assert_eq!(last, Some(CtapStatus::PinBlocked));
    assert_eq!(h.retries(), 0);
    h.auth.power_cycle();
    assert_eq!(
        h.token(2, "1234", perm, None).err(),
        Some(CtapStatus::PinBlocked)
    );
}

#[test]
fn wrong_pin_regenerates_key_agreement() {
    let mut h = harness();
    assert_eq!(h.set_pin(2, "1234"), None);
    let before = h.key_agreement(2);
    assert_eq!(h.key_agreement(2), before, "stable while nothing happens");
    let _ = h.token(2, "4321", Some(Permissions::GET_ASSERTION), None);
    assert_ne!(h.key_agreement(2), before);
}

#[test]
fn change_pin_invalidates_token_and_checks_old_pin() {
    let mut h = harness();
    assert_eq!(h.set_pin(1, "1234"), None);
    let t = h
        .token(2, "1234", Some(Permissions::MAKE_CREDENTIAL), Some(RP))
        .expect("token");
    assert_eq!(
        h.change_pin(2, "0000", "5678"),
        Some(CtapStatus::PinInvalid)
    );
    assert_eq!(h.change_pin(2, "1234", "5678"), None);
    // The old token is gone.
    let r = h.make_credential(RP, user(1, "a"), false, Some(&t));
    assert_eq!(ctap(r), CtapStatus::PinAuthInvalid);
    assert_eq!(
        h.token(2, "1234", Some(Permissions::GET_ASSERTION), None)
            .err(),
        Some(CtapStatus::PinInvalid)
    );
    h.token(1, "5678", Some(Permissions::GET_ASSERTION), None)
        .expect("new PIN works");
}
