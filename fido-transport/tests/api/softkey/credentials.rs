//! makeCredential and getAssertion: attestation modes, resident and non-resident credentials, lists and limits.

use super::*;

#[test]
fn make_credential_packed_attestation_verifies() {
    let mut h = harness();
    let mc = h
        .make_credential(RP, user(1, "alice"), false, None)
        .expect("makeCredential");
    assert_eq!(mc.fmt, "packed");
    let obj = AttestationObject::from_parts(&mc.fmt, &mc.auth_data, &mc.att_stmt).expect("object");
    let verified = obj.verify(&cdh(1)).expect("attestation verifies (strict)");
    assert_eq!(verified.aaguid, AAGUID);
    assert!(matches!(
        verified.attestation_type,
        AttestationType::BasicOrAttCa { .. }
    ));
    let ad = obj.auth_data();
    assert!(ad.is_for_rp_id(RP));
    assert!(ad.flags().user_present());
    assert!(!ad.flags().user_verified());
    // A wrong clientDataHash does not verify.
    assert!(obj.verify(&cdh(9)).is_err());
}

#[test]
fn self_and_none_attestation_modes() {
    let mut h = harness_with(SoftConfig {
        attestation: AttestationMode::SelfAttestation,
        ..SoftConfig::default()
    });
    let mc = h
        .make_credential(RP, user(1, "a"), false, None)
        .expect("mc");
    let obj = AttestationObject::from_parts(&mc.fmt, &mc.auth_data, &mc.att_stmt).expect("obj");
    assert_eq!(
        obj.verify(&cdh(1)).expect("verifies").attestation_type,
        AttestationType::Self_
    );
    let mut h = harness_with(SoftConfig {
        attestation: AttestationMode::None,
        ..SoftConfig::default()
    });
    let mc = h
        .make_credential(RP, user(1, "a"), false, None)
        .expect("mc");
    assert_eq!(mc.fmt, "none");
}

#[test]
fn resident_credential_with_pin_and_assertion_signature() {
    let mut h = harness();
    assert_eq!(h.set_pin(2, "1234"), None);
    // rk without UV is refused once a PIN is set.
    let r = h.make_credential(RP, user(1, "alice"), true, None);
    assert_eq!(ctap(r), CtapStatus::PuatRequired);
    let t = h
        .token(
            2,
            "1234",
            Some(Permissions::MAKE_CREDENTIAL | Permissions::GET_ASSERTION),
            None,
        )
        .expect("token");
    let mc = h
        .make_credential(RP, user(1, "alice"), true, Some(&t))
        .expect("mc rk");
    let ad = AuthenticatorData::parse(&mc.auth_data).expect("ad");
    assert!(ad.flags().user_verified());
    let (id, key) = credential_of(&mc);
    assert_eq!(h.auth.state().credentials.len(), 1);
    // The token is now bound to RP; another RP is refused.
    let other = h.make_credential("example.com", user(2, "bob"), true, Some(&t));
    assert_eq!(ctap(other), CtapStatus::PinAuthInvalid);

    // Discoverable assertion with UV returns the user with names.
    let ga = h.get_assertion(RP, None, Some(&t)).expect("ga");
    assert_eq!(
        ga.credential.as_ref().map(|c| c.id.clone()),
        Some(id.clone())
    );
    let parsed = verify_assertion(&key, &ga.auth_data, &cdh(2), &ga.signature).expect("signature");
    assert!(parsed.flags().user_verified());
    assert!(parsed.sign_count() > ad.sign_count());
    let u = ga.user.expect("user");
    assert_eq!(u.id, vec![1; 16]);
    assert_eq!(u.name.as_deref(), Some("alice"));
    // Without UV: user id only.
    let ga = h.get_assertion(RP, None, None).expect("ga without uv");
    let u = ga.user.expect("user");
    assert_eq!(u.name, None);
    verify_assertion(&key, &ga.auth_data, &cdh(2), &ga.signature).expect("signature");
}

#[test]
fn non_resident_credential_round_trip_and_foreign_ids() {
    let mut h = harness();
    let mc = h
        .make_credential(RP, user(1, "a"), false, None)
        .expect("mc");
    let (id, key) = credential_of(&mc);
    assert!(h.auth.state().credentials.is_empty(), "not stored");
    let ga = h
        .get_assertion(RP, Some(vec![id.clone()]), None)
        .expect("ga with allow list");
    verify_assertion(&key, &ga.auth_data, &cdh(2), &ga.signature).expect("signature");
    assert_eq!(ga.user, None);
    // Same id for another RP, or a foreign id: no credentials.
    assert_eq!(
        ctap(h.get_assertion("evil.example", Some(vec![id.clone()]), None)),
        CtapStatus::NoCredentials
    );
    let mut forged = id.clone();
    forged[5] ^= 1;
    assert_eq!(
        ctap(h.get_assertion(RP, Some(vec![forged]), None)),
        CtapStatus::NoCredentials
    );
    // No discoverable credentials at all.
    assert_eq!(
        ctap(h.get_assertion(RP, None, None)),
        CtapStatus::NoCredentials
    );
}

#[test]
fn same_user_replaces_and_get_next_assertion_walks_the_rest() {
    let mut h = harness();
    let first = h.make_credential(RP, user(1, "a"), true, None).expect("mc");
    h.make_credential(RP, user(1, "a2"), true, None)
        .expect("replace");
    assert_eq!(h.auth.state().credentials.len(), 1);
    let (old_id, _) = credential_of(&first);
    assert_eq!(
        ctap(h.get_assertion(RP, Some(vec![old_id]), None)),
        CtapStatus::NoCredentials,
        "replaced credential is gone"
    );
    h.make_credential(RP, user(2, "b"), true, None).expect("mc");
    h.make_credential(RP, user(3, "c"), true, None).expect("mc");
    h.make_credential("other.example", user(4, "d"), true, None)
        .expect("mc");
    let ga = h.get_assertion(RP, None, None).expect("ga");
    assert_eq!(ga.number_of_credentials, Some(3));
    // Newest first.
    assert_eq!(ga.user.map(|u| u.id), Some(vec![3; 16]));
    let n1 = h.send(&GetNextAssertion).expect("next");
    let n2 = h.send(&GetNextAssertion).expect("next");
    assert_eq!(n1.user.map(|u| u.id), Some(vec![2; 16]));
    assert_eq!(n2.user.map(|u| u.id), Some(vec![1; 16]));
    assert_eq!(n1.number_of_credentials, None);
    assert_eq!(h.status(&GetNextAssertion), Some(CtapStatus::NotAllowed));
    // Any other command in between ends the sequence.
    h.get_assertion(RP, None, None).expect("ga");
    h.info();
    assert_eq!(h.status(&GetNextAssertion), Some(CtapStatus::NotAllowed));
    // And it expires after 30 s.
    h.get_assertion(RP, None, None).expect("ga");
    h.clock.advance(Duration::from_secs(31));
    assert_eq!(h.status(&GetNextAssertion), Some(CtapStatus::NotAllowed));
}

#[test]
fn exclude_list_gives_credential_excluded_after_presence() {
    let mut h = harness();
    let mc = h
        .make_credential(RP, user(1, "a"), false, None)
        .expect("mc");
    let (id, _) = credential_of(&mc);
    let mut req = MakeCredential::new(
        cdh(1),
        rp(RP),
        user(2, "b"),
        vec![PublicKeyCredentialParameters::public_key(ALG_ES256)],
    );
    req.exclude_list = Some(vec![CredentialDescriptor::public_key(id.clone())]);
    let mut touched = 0;
    let reply = h.auth.handle(&encode_request(&req), &mut |p: Progress| {
        if p == Progress::UserPresenceNeeded {
            touched += 1;
        }
    });
    assert_eq!(reply, vec![CtapStatus::CredentialExcluded.to_u8()]);
    assert_eq!(touched, 1, "asked for presence first");
    // For another RP the id is unknown, so the credential is made.
    req.rp = rp("other.example");
    h.send(&req).expect("not excluded elsewhere");
}

#[test]
fn unsupported_algorithm_and_invalid_options() {
    let mut h = harness();
    let mut req = MakeCredential::new(
        cdh(1),
        rp(RP),
        user(1, "a"),
        vec![PublicKeyCredentialParameters::public_key(-257)],
    );
    assert_eq!(h.status(&req), Some(CtapStatus::UnsupportedAlgorithm));
    req.pub_key_cred_params = vec![PublicKeyCredentialParameters::public_key(ALG_ES256)];
    req.options.up = Some(false);
    assert_eq!(h.status(&req), Some(CtapStatus::InvalidOption));
    req.options.up = None;
    req.options.uv = Some(true);
    assert_eq!(h.status(&req), Some(CtapStatus::InvalidOption));
}

#[test]
fn pin_probe_with_empty_auth_param() {
    let mut h = harness();
    let mut req = MakeCredential::new(
        cdh(1),
        rp(RP),
        user(1, "a"),
        vec![PublicKeyCredentialParameters::public_key(ALG_ES256)],
    );
    req.pin_uv_auth_param = Some(Vec::new());
    req.pin_uv_auth_protocol = Some(2);
    assert_eq!(h.status(&req), Some(CtapStatus::PinNotSet));
    assert_eq!(h.set_pin(2, "1234"), None);
    assert_eq!(h.status(&req), Some(CtapStatus::PinInvalid));
}

#[test]
fn list_and_user_id_limits() {
    let mut h = harness();
    let ids: Vec<Vec<u8>> = (0..9u8).map(|i| vec![i; 34]).collect();
    assert_eq!(h.info().max_credential_count_in_list, Some(8));
    assert_eq!(
        ctap(h.get_assertion(RP, Some(ids.clone()), None)),
        CtapStatus::LimitExceeded
    );
    assert_eq!(
        ctap(h.get_assertion(RP, Some(ids[..8].to_vec()), None)),
        CtapStatus::NoCredentials
    );
    let mut mc = MakeCredential::new(
        cdh(1),
        rp(RP),
        user(1, "a"),
        vec![PublicKeyCredentialParameters::public_key(ALG_ES256)],
    );
    mc.exclude_list = Some(
        ids.into_iter()
            .map(CredentialDescriptor::public_key)
            .collect(),
    );
    assert_eq!(h.status(&mc), Some(CtapStatus::LimitExceeded));
    mc.exclude_list = None;
    mc.user.id = vec![1; 65];
    assert_eq!(h.status(&mc), Some(CtapStatus::InvalidLength));
}
