//! authenticatorConfig: alwaysUv, minimum PIN length, forced PIN change, token expiry.

use super::*;

fn config_cmd(sub: ConfigSubCommand, token: Option<&PinUvAuthToken>) -> AuthenticatorConfig {
    let mut cmd = AuthenticatorConfig::new(sub);
    if let Some(t) = token {
        cmd.pin_uv_auth_protocol = Some(t.protocol().id());
        cmd.pin_uv_auth_param = Some(t.authenticate(&cmd.pin_uv_auth_message()));
    }
    cmd
}

fn min_len(n: Option<u8>, rpids: Option<Vec<&str>>, force: Option<bool>) -> ConfigSubCommand {
    ConfigSubCommand::SetMinPinLength {
        new_min_pin_length: n,
        min_pin_length_rpids: rpids.map(|r| r.into_iter().map(str::to_owned).collect()),
        force_change_pin: force,
    }
}

#[test]
fn toggle_always_uv_needs_acfg_token_and_is_reflected() {
    let mut h = harness();
    assert_eq!(h.set_pin(2, "1234"), None);
    // Without a token: PUAT_REQUIRED; with a token lacking acfg: PIN_AUTH_INVALID.
    assert_eq!(
        h.status(&config_cmd(ConfigSubCommand::ToggleAlwaysUv, None)),
        Some(CtapStatus::PuatRequired)
    );
    let ga = h
        .token(2, "1234", Some(Permissions::GET_ASSERTION), None)
        .expect("token");
    assert_eq!(
        h.status(&config_cmd(ConfigSubCommand::ToggleAlwaysUv, Some(&ga))),
        Some(CtapStatus::PinAuthInvalid)
    );
    let t = h
        .token(2, "1234", Some(Permissions::AUTHENTICATOR_CONFIG), None)
        .expect("token");
    assert_eq!(
        h.status(&config_cmd(ConfigSubCommand::ToggleAlwaysUv, Some(&t))),
        None
    );
    assert_eq!(h.info().supports_option("alwaysUv"), Some(true));
    // alwaysUv: a non-resident credential now needs UV too.
    let r = h.make_credential(RP, user(1, "a"), false, None);
    assert_eq!(ctap(r), CtapStatus::PuatRequired);
    assert_eq!(
        h.status(&config_cmd(ConfigSubCommand::ToggleAlwaysUv, Some(&t))),
        None
    );
    assert_eq!(h.info().supports_option("alwaysUv"), Some(false));
    h.make_credential(RP, user(1, "a"), false, None)
        .expect("no UV needed again");
}

#[test]
fn set_min_pin_length_only_grows_and_bounds_rpids() {
    let mut h = harness();
    assert_eq!(
        h.status(&config_cmd(min_len(Some(6), None, None), None)),
        None
    );
    assert_eq!(h.info().min_pin_length, Some(6));
    assert_eq!(
        h.status(&config_cmd(min_len(Some(5), None, None), None)),
        Some(CtapStatus::PinPolicyViolation)
    );
    assert_eq!(
        h.status(&config_cmd(
            min_len(
                None,
                Some(vec!["a.example", "b.example", "c.example"]),
                None
            ),
            None
        )),
        Some(CtapStatus::PinPolicyViolation),
        "more RP ids than maxRPIDsForSetMinPINLength (2)"
    );
    assert_eq!(h.info().max_rpids_for_set_min_pin_length, Some(2));
    assert_eq!(
        h.status(&config_cmd(min_len(None, Some(vec![RP]), None), None)),
        None
    );
    // forceChangePin without a PIN.
    assert_eq!(
        h.status(&config_cmd(min_len(None, None, Some(true)), None)),
        Some(CtapStatus::PinNotSet)
    );
    assert_eq!(h.info().min_pin_length, Some(6));
}

#[test]
fn min_pin_length_extension_only_for_listed_rp_ids() {
    let mut h = harness();
    assert_eq!(
        h.status(&config_cmd(min_len(Some(7), Some(vec![RP]), None), None)),
        None
    );
    let ask = |h: &mut Harness, rp_id: &str| {
        let mut mc = MakeCredential::new(
            cdh(1),
            rp(rp_id),
            user(1, "a"),
            vec![PublicKeyCredentialParameters::public_key(ALG_ES256)],
        );
        mc.extensions = Some(MakeCredentialExtensions {
            min_pin_length: Some(true),
            ..Default::default()
        });
        let r = h.send(&mc).expect("mc");
        AuthenticatorData::parse(&r.auth_data)
            .expect("ad")
            .min_pin_length()
    };
    assert_eq!(ask(&mut h, RP), Some(7));
    assert_eq!(ask(&mut h, "other.example"), None);
}

#[test]
fn force_pin_change_blocks_tokens_until_change_pin() {
    let mut h = harness();
    assert_eq!(h.set_pin(2, "1234"), None);
    let t = h
        .token(2, "1234", Some(Permissions::AUTHENTICATOR_CONFIG), None)
        .expect("token");
    // Raising the minimum above the PIN's length forces a change.
    assert_eq!(
        h.status(&config_cmd(min_len(Some(6), None, None), Some(&t))),
        None
    );
    assert_eq!(h.info().force_pin_change, Some(true));
    assert_eq!(
        h.token(2, "1234", Some(Permissions::GET_ASSERTION), None)
            .err(),
        Some(CtapStatus::PinPolicyViolation)
    );
    // The new PIN must satisfy the new minimum.
    assert_eq!(
        h.change_pin(2, "1234", "12345"),
        Some(CtapStatus::PinPolicyViolation)
    );
    assert_eq!(h.change_pin(2, "1234", "123456"), None);
    assert_eq!(h.info().force_pin_change, Some(false));
    h.token(2, "123456", Some(Permissions::GET_ASSERTION), None)
        .expect("token after change");

    // Explicit forceChangePin: the same PIN is not accepted as the "new" one.
    let t = h
        .token(2, "123456", Some(Permissions::AUTHENTICATOR_CONFIG), None)
        .expect("token");
    assert_eq!(
        h.status(&config_cmd(min_len(None, None, Some(true)), Some(&t))),
        None
    );
    assert_eq!(
        h.change_pin(2, "123456", "123456"),
        Some(CtapStatus::PinPolicyViolation)
    );
    assert_eq!(h.change_pin(2, "123456", "654321"), None);
}

#[test]
fn tokens_expire_and_always_uv_without_pin() {
    let mut h = harness();
    assert_eq!(h.set_pin(2, "1234"), None);
    let t = h
        .token(2, "1234", Some(Permissions::MAKE_CREDENTIAL), Some(RP))
        .expect("token");
    h.make_credential(RP, user(1, "a"), true, Some(&t))
        .expect("fresh token works");
    h.clock.advance(Duration::from_secs(601));
    assert_eq!(
        ctap(h.make_credential(RP, user(1, "a"), true, Some(&t))),
        CtapStatus::PinAuthInvalid
    );

    // alwaysUv with no PIN: makeCredential asks for a PIN to be set.
    let mut h = harness();
    assert_eq!(
        h.status(&config_cmd(ConfigSubCommand::ToggleAlwaysUv, None)),
        None
    );
    assert_eq!(
        ctap(h.make_credential(RP, user(1, "a"), false, None)),
        CtapStatus::PinNotSet
    );
    // Turning it off again now needs PIN/UV auth.
    assert_eq!(
        h.status(&config_cmd(ConfigSubCommand::ToggleAlwaysUv, None)),
        Some(CtapStatus::PuatRequired)
    );
}
