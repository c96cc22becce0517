//! Extensions: credProtect, credBlob, largeBlobKey and hmac-secret.

use super::*;

#[test]
fn cred_protect_levels_are_honoured_without_uv() {
    let mut h = harness();
    let make = |h: &mut Harness, uid: u8, level: u8| {
        let mut mc = MakeCredential::new(
            cdh(1),
            rp(RP),
            user(uid, "u"),
            vec![PublicKeyCredentialParameters::public_key(ALG_ES256)],
        );
        mc.options.rk = Some(true);
        mc.extensions = Some(MakeCredentialExtensions {
            cred_protect: Some(level),
            ..Default::default()
        });
        let r = h.send(&mc).expect("mc");
        let ad = AuthenticatorData::parse(&r.auth_data).expect("ad");
        assert_eq!(ad.cred_protect(), Some(level));
        credential_of(&r).0
    };
    let id1 = make(&mut h, 1, 1);
    let id2 = make(&mut h, 2, 2);
    let id3 = make(&mut h, 3, 3);
    // Discoverable without UV: only level 1.
    let ga = h.get_assertion(RP, None, None).expect("ga");
    assert_eq!(ga.number_of_credentials, None);
    assert_eq!(ga.credential.map(|c| c.id), Some(id1.clone()));
    // Allow list without UV: level 2 allowed, level 3 not.
    let ga = h
        .get_assertion(RP, Some(vec![id2.clone()]), None)
        .expect("ga");
    assert_eq!(ga.credential.map(|c| c.id), Some(id2.clone()));
    assert_eq!(
        ctap(h.get_assertion(RP, Some(vec![id3.clone()]), None)),
        CtapStatus::NoCredentials
    );
    // With UV, all three.
    assert_eq!(h.set_pin(2, "1234"), None);
    let t = h
        .token(2, "1234", Some(Permissions::GET_ASSERTION), Some(RP))
        .expect("token");
    let ga = h.get_assertion(RP, None, Some(&t)).expect("ga");
    assert_eq!(ga.number_of_credentials, Some(3));
    let ga = h
        .get_assertion(RP, Some(vec![id3.clone()]), Some(&t))
        .expect("ga");
    assert_eq!(ga.credential.map(|c| c.id), Some(id3));
    // Invalid level.
    let mut mc = MakeCredential::new(
        cdh(1),
        rp(RP),
        user(9, "u"),
        vec![PublicKeyCredentialParameters::public_key(ALG_ES256)],
    );
    mc.extensions = Some(MakeCredentialExtensions {
        cred_protect: Some(4),
        ..Default::default()
    });
    assert_eq!(h.status(&mc), Some(CtapStatus::InvalidParameter));
}

#[test]
fn cred_blob_and_large_blob_key_extensions() {
    let mut h = harness();
    let mut mc = MakeCredential::new(
        cdh(1),
        rp(RP),
        user(1, "u"),
        vec![PublicKeyCredentialParameters::public_key(ALG_ES256)],
    );
    mc.options.rk = Some(true);
    mc.extensions = Some(MakeCredentialExtensions {
        cred_blob: Some(b"hello".to_vec()),
        large_blob_key: Some(true),
        ..Default::default()
    });
    let r = h.send(&mc).expect("mc");
    let ad = AuthenticatorData::parse(&r.auth_data).expect("ad");
    assert_eq!(ad.cred_blob_stored(), Some(true));
    let lbk = r.large_blob_key.expect("largeBlobKey").expose().to_vec();
    assert_eq!(lbk.len(), 32);
    let mut ga = GetAssertion::new(RP, cdh(2));
    ga.extensions = Some(GetAssertionExtensions {
        cred_blob: Some(true),
        large_blob_key: Some(true),
        ..Default::default()
    });
    let a = h.send(&ga).expect("ga");
    assert_eq!(
        AuthenticatorData::parse(&a.auth_data)
            .expect("ad")
            .cred_blob(),
        Some(&b"hello"[..])
    );
    assert_eq!(a.large_blob_key.map(|k| k.expose().to_vec()), Some(lbk));
    // largeBlobKey needs rk.
    mc.options.rk = Some(false);
    assert_eq!(h.status(&mc), Some(CtapStatus::InvalidOption));
}

#[test]
fn hmac_secret_outputs_are_stable_per_credential_and_uv() {
    let mut h = harness();
    assert!(h.info().has_extension("hmac-secret"));
    let mut mc = MakeCredential::new(
        cdh(1),
        rp(RP),
        user(1, "a"),
        vec![PublicKeyCredentialParameters::public_key(ALG_ES256)],
    );
    mc.extensions = Some(MakeCredentialExtensions {
        hmac_secret: Some(true),
        ..Default::default()
    });
    let r = h.send(&mc).expect("mc");
    assert_eq!(
        AuthenticatorData::parse(&r.auth_data)
            .expect("ad")
            .hmac_secret_created(),
        Some(true)
    );
    let (id, _) = credential_of(&r);
    mc.extensions = None;
    let plain = h.send(&mc).expect("mc without hmac-secret");
    let (plain_id, _) = credential_of(&plain);

    let eval = |h: &mut Harness, id: &[u8], salt: &[u8], p: u8, token: Option<&PinUvAuthToken>| {
        let peer = h.key_agreement(p);
        let (platform_key, shared) = protocol(p)
            .encapsulate(&peer, &mut h.rng)
            .expect("encapsulate");
        let salt_enc = shared.encrypt(salt, &mut h.rng).expect("encrypt");
        let salt_auth = shared.authenticate(&salt_enc);
        let mut ga = GetAssertion::new(RP, cdh(2));
        ga.allow_list = Some(vec![CredentialDescriptor::public_key(id.to_vec())]);
        ga.extensions = Some(GetAssertionExtensions {
            hmac_secret: Some(HmacSecretInput {
                key_agreement: platform_key,
                salt_enc,
                salt_auth,
                pin_uv_auth_protocol: Some(p),
            }),
            ..Default::default()
        });
        if let Some(t) = token {
            ga.pin_uv_auth_param = Some(t.authenticate_message(&AuthMessage::GetAssertion {
                client_data_hash: &ga.client_data_hash,
            }));
            ga.pin_uv_auth_protocol = Some(t.protocol().id());
        }
        let a = h.send(&ga).expect("ga");
        let ad = AuthenticatorData::parse(&a.auth_data).expect("ad");
        ad.hmac_secret_output()
            .map(|enc| shared.decrypt(enc).expect("decrypt").to_vec())
    };
    let salt1 = [7u8; 32];
    let salt2 = [[7u8; 32], [8u8; 32]].concat();
    let o1 = eval(&mut h, &id, &salt1, 2, None).expect("output");
    assert_eq!(o1.len(), 32);
    assert_eq!(
        eval(&mut h, &id, &salt1, 1, None),
        Some(o1.clone()),
        "same across protocols"
    );
    let o2 = eval(&mut h, &id, &salt2, 2, None).expect("output");
    assert_eq!(o2.len(), 64);
    assert_eq!(o2[..32], o1[..]);
    assert_eq!(
        eval(&mut h, &plain_id, &salt1, 2, None),
        None,
        "not enabled"
    );
    // With UV, a different CredRandom.
    assert_eq!(h.set_pin(2, "1234"), None);
    let t = h
        .token(2, "1234", Some(Permissions::GET_ASSERTION), Some(RP))
        .expect("token");
    let uv = eval(&mut h, &id, &salt1, 2, Some(&t)).expect("output");
    assert_ne!(uv, o1);
    // A bad saltAuth.
    let peer = h.key_agreement(2);
    let (platform_key, shared) = PinUvAuthProtocol::Two
        .encapsulate(&peer, &mut h.rng)
        .expect("encapsulate");
    let salt_enc = shared.encrypt(&salt1, &mut h.rng).expect("encrypt");
    let mut ga = GetAssertion::new(RP, cdh(2));
    ga.allow_list = Some(vec![CredentialDescriptor::public_key(id.clone())]);
    ga.extensions = Some(GetAssertionExtensions {
        hmac_secret: Some(HmacSecretInput {
            key_agreement: platform_key,
            salt_enc,
            salt_auth: vec![0; 32],
            pin_uv_auth_protocol: Some(2),
        }),
        ..Default::default()
    });
    assert_eq!(h.status(&ga), Some(CtapStatus::ExtensionFirst));
}

#[test]
fn exclude_list_ignores_cred_protect_3_without_uv() {
    let mut h = harness();
    let mut mc = MakeCredential::new(
        cdh(1),
        rp(RP),
        user(1, "a"),
        vec![PublicKeyCredentialParameters::public_key(ALG_ES256)],
    );
    mc.extensions = Some(MakeCredentialExtensions {
        cred_protect: Some(3),
        ..Default::default()
    });
    let r = h.send(&mc).expect("mc");
    let (id, _) = credential_of(&r);
    mc.extensions = None;
    mc.exclude_list = Some(vec![CredentialDescriptor::public_key(id)]);
    h.send(&mc)
        .expect("a UV-only credential is invisible without UV, so not excluded");
    assert_eq!(h.set_pin(2, "1234"), None);
    let t = h
        .token(2, "1234", Some(Permissions::MAKE_CREDENTIAL), Some(RP))
        .expect("token");
    mc.pin_uv_auth_protocol = Some(2);
    mc.pin_uv_auth_param = Some(t.authenticate_message(&AuthMessage::MakeCredential {
        client_data_hash: &mc.client_data_hash,
    }));
    assert_eq!(h.status(&mc), Some(CtapStatus::CredentialExcluded));
}
