//! Typed errors: wrong lengths, tampered auth parameters, invalid curve points.

use super::*;

#[test]
fn wrong_length_ciphertexts_are_typed_errors() {
    let v1 = SharedSecret::from_bytes(PinUvAuthProtocol::One, &[1; 32]).expect("32");
    assert_eq!(
        v1.decrypt(&[0; 15]).err(),
        Some(PinError::CiphertextLength {
            field: "ciphertext",
            len: 15,
            protocol: 1
        })
    );
    let v2 = SharedSecret::from_bytes(PinUvAuthProtocol::Two, &[1; 64]).expect("64");
    for len in [0usize, 15, 24, 33] {
        assert_eq!(
            v2.decrypt(&vec![0; len]).err(),
            Some(PinError::CiphertextLength {
                field: "ciphertext",
                len,
                protocol: 2
            }),
            "length {len}"
        );
    }
    assert_eq!(
        PinUvAuthToken::decrypt(
            PinUvAuthProtocol::Two,
            &v2,
            &[0; 40],
            Permissions::empty(),
            None
        )
        .err(),
        Some(PinError::CiphertextLength {
            field: "pinUvAuthToken",
            len: 40,
            protocol: 2
        })
    );
    // A whole-block ciphertext of the wrong size for a token.
    assert_eq!(
        PinUvAuthToken::decrypt(
            PinUvAuthProtocol::Two,
            &v2,
            &[0; 32],
            Permissions::empty(),
            None
        )
        .err(),
        Some(PinError::TokenLength {
            len: 16,
            protocol: 2
        })
    );
    assert_eq!(
        decrypt_pin_hash(&v1, &[0; 32]).err(),
        Some(PinError::PinHashLength { len: 32 })
    );
    assert_eq!(
        v1.encrypt(&[0; 17], &mut OsRng).err(),
        Some(PinError::UnalignedPlaintext { len: 17 })
    );
}

#[test]
fn tampered_or_short_auth_params_are_rejected() {
    for protocol in [PinUvAuthProtocol::One, PinUvAuthProtocol::Two] {
        let key = [9u8; 32];
        let msg = b"clientDataHash";
        let mut sig = protocol.authenticate(&key, msg);
        assert_eq!(protocol.verify(&key, msg, &sig), Ok(()));
        let last = sig.len() - 1;
        sig[last] ^= 1;
        assert_eq!(
            protocol.verify(&key, msg, &sig),
            Err(PinError::AuthParamInvalid)
        );
        assert_eq!(
            protocol.verify(&key, msg, &sig[..8]),
            Err(PinError::AuthParamLength {
                expected: protocol.auth_param_len(),
                actual: 8
            })
        );
        assert_eq!(
            protocol.verify(&key, msg, &[]),
            Err(PinError::AuthParamLength {
                expected: protocol.auth_param_len(),
                actual: 0
            })
        );
    }
    // Protocol one's 16-byte param is not accepted under protocol two, and vice versa.
    let key = [3u8; 32];
    let p1 = PinUvAuthProtocol::One.authenticate(&key, b"m");
    assert!(PinUvAuthProtocol::Two.verify(&key, b"m", &p1).is_err());
    let p2 = PinUvAuthProtocol::Two.authenticate(&key, b"m");
    assert!(PinUvAuthProtocol::One.verify(&key, b"m", &p2).is_err());
}

#[test]
fn invalid_curve_points_are_typed_errors() {
    let off_curve = CoseKey::Ec2 {
        alg: ALG_ECDH_ES_HKDF_256,
        x: [1; 32],
        y: [1; 32],
    };
    let zero = CoseKey::Ec2 {
        alg: ALG_ECDH_ES_HKDF_256,
        x: [0; 32],
        y: [0; 32],
    };
    let mut y_flipped = arr32(DEV_PUB_Y);
    y_flipped[31] ^= 1;
    let tweaked = CoseKey::Ec2 {
        alg: ALG_ECDH_ES_HKDF_256,
        x: arr32(DEV_PUB_X),
        y: y_flipped,
    };
    let ka = AuthenticatorKeyAgreement::new(&mut OsRng).expect("key");
    for key in [&off_curve, &zero, &tweaked] {
        for protocol in [PinUvAuthProtocol::One, PinUvAuthProtocol::Two] {
            assert_eq!(
                protocol.encapsulate(key, &mut OsRng).err(),
                Some(PinError::InvalidPoint)
            );
            assert_eq!(
                ka.decapsulate(protocol, key).err(),
                Some(PinError::InvalidPoint)
            );
        }
    }
    let okp = CoseKey::Okp {
        alg: -8,
        x: [2; 32],
    };
    assert_eq!(
        PinUvAuthProtocol::Two.encapsulate(&okp, &mut OsRng).err(),
        Some(PinError::UnsupportedKeyAgreementKey)
    );
}

#[test]
fn shared_secret_and_private_key_length_errors() {
    assert_eq!(
        SharedSecret::from_bytes(PinUvAuthProtocol::One, &[0; 64]).err(),
        Some(PinError::SharedSecretLength {
            len: 64,
            protocol: 1
        })
    );
    assert_eq!(
        SharedSecret::from_bytes(PinUvAuthProtocol::Two, &[0; 32]).err(),
        Some(PinError::SharedSecretLength {
            len: 32,
            protocol: 2
        })
    );
    assert_eq!(
        AuthenticatorKeyAgreement::from_secret_bytes(&[0; 32]).err(),
        Some(PinError::InvalidPrivateKey)
    );
    assert_eq!(
        AuthenticatorKeyAgreement::from_secret_bytes(&[0xff; 32]).err(),
        Some(PinError::InvalidPrivateKey)
    );
}
