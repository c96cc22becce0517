//! Round trips platform <-> authenticator: PIN set/change, tokens and large-blob
//! parameters in both protocols.

use super::*;

fn full_round_trip(protocol: PinUvAuthProtocol) {
    let mut rng = OsRng;
    let mut authenticator = AuthenticatorKeyAgreement::new(&mut rng).expect("key");

    // setPIN
    let first = pin("123456");
    let params = set_pin(protocol, &authenticator.public_key(), &first, &mut rng).expect("set");
    assert_eq!(params.pin_uv_auth_param.len(), protocol.auth_param_len());
    let shared = authenticator
        .decapsulate(protocol, &params.key_agreement)
        .expect("decapsulate");
    let stored = verify_set_pin(&shared, &params.new_pin_enc, &params.pin_uv_auth_param, 4)
        .expect("authenticator accepts setPIN");
    assert_eq!(stored.as_str(), "123456");
    let stored_hash = stored.pin_hash();

    // A raised minimum length is enforced on the authenticator side.
    assert_eq!(
        verify_set_pin(&shared, &params.new_pin_enc, &params.pin_uv_auth_param, 8).err(),
        Some(PinError::TooShort { min: 8, actual: 6 })
    );

    // changePIN
    authenticator.regenerate(&mut rng).expect("regenerate");
    let second = pin("ünïcødé");
    let params = change_pin(
        protocol,
        &authenticator.public_key(),
        &first,
        &second,
        &mut rng,
    )
    .expect("change");
    let shared = authenticator
        .decapsulate(protocol, &params.key_agreement)
        .expect("decapsulate");
    let (current, new) = verify_change_pin(
        &shared,
        &params.pin_hash_enc,
        &params.new_pin_enc,
        &params.pin_uv_auth_param,
        4,
    )
    .expect("authenticator accepts changePIN");
    assert!(Pin::hashes_match(&current, &stored_hash));
    assert_eq!(new.as_str(), "ünïcødé");

    // Tampered param on changePIN.
    let mut bad = params.pin_uv_auth_param.clone();
    bad[0] ^= 0x80;
    assert_eq!(
        verify_change_pin(&shared, &params.pin_hash_enc, &params.new_pin_enc, &bad, 4).err(),
        Some(PinError::AuthParamInvalid)
    );

    // getPinUvAuthTokenUsingPinWithPermissions
    let req = pin_token_request(protocol, &authenticator.public_key(), &second, &mut rng)
        .expect("request");
    let auth_shared = authenticator
        .decapsulate(protocol, &req.key_agreement)
        .expect("decapsulate");
    let hash = decrypt_pin_hash(&auth_shared, &req.pin_hash_enc).expect("pin hash");
    assert!(Pin::hashes_match(&hash, &new.pin_hash()));
    assert!(!Pin::hashes_match(&hash, &stored_hash));

    let perms = Permissions::MAKE_CREDENTIAL | Permissions::GET_ASSERTION;
    let issued = PinUvAuthToken::generate(protocol, perms, Some("example.com".into()), &mut rng)
        .expect("token");
    let enc = issued.encrypt_for(&auth_shared, &mut rng).expect("encrypt");
    let client = PinUvAuthToken::decrypt(
        protocol,
        &req.shared_secret,
        &enc,
        perms,
        Some("example.com".into()),
    )
    .expect("decrypt token");
    assert_eq!(client.expose_secret(), issued.expose_secret());
    assert_eq!(client.permissions(), perms);
    assert_eq!(client.rp_id(), Some("example.com"));

    // The token authenticates a getAssertion and the authenticator verifies it.
    let cdh = [0x33u8; 32];
    let msg = AuthMessage::GetAssertion {
        client_data_hash: &cdh,
    };
    let param = client.authenticate_message(&msg);
    assert_eq!(param.len(), protocol.auth_param_len());
    assert_eq!(issued.verify_message(&msg, &param), Ok(()));
    assert_eq!(
        issued.verify(&[0x34u8; 32], &param),
        Err(PinError::AuthParamInvalid)
    );
    assert_eq!(
        issued.require(Permissions::GET_ASSERTION, Some("example.com")),
        Ok(())
    );
}

#[test]
fn v1_round_trip() {
    full_round_trip(PinUvAuthProtocol::One);
}

#[test]
fn v2_round_trip() {
    full_round_trip(PinUvAuthProtocol::Two);
}

#[test]
fn large_blob_param_round_trip() {
    let token = PinUvAuthToken::generate(
        PinUvAuthProtocol::Two,
        Permissions::LARGE_BLOB_WRITE,
        None,
        &mut OsRng,
    )
    .expect("token");
    let msg = AuthMessage::LargeBlobs {
        offset: 1024,
        data: b"blob fragment",
    };
    let param = token.authenticate_message(&msg);
    assert_eq!(token.verify_message(&msg, &param), Ok(()));
    let other = AuthMessage::LargeBlobs {
        offset: 1025,
        data: b"blob fragment",
    };
    assert_eq!(
        token.verify_message(&other, &param),
        Err(PinError::AuthParamInvalid)
    );
}
