//! Recorded traffic: libfido2 wiredata of a Security Key by Yubico.

use super::*;

/// Reassembles a CTAPHID CBOR reply from its 64-byte reports and splits off the status.
fn recorded_cbor_reply(name: &str) -> (u8, fido_core::cbor::Value) {
    let reports = crate::api::support::fixture_lines(name);
    let first = &reports[0];
    assert_eq!(first[4], 0x90, "CTAPHID_CBOR reply");
    let len = usize::from(u16::from_be_bytes([first[5], first[6]]));
    let mut payload = first[7..].to_vec();
    for report in &reports[1..] {
        payload.extend_from_slice(&report[5..]);
    }
    payload.truncate(len);
    let value = fido_core::cbor::decode(&payload[1..]).expect("CBOR reply");
    (payload[0], value)
}

#[test]
fn recorded_key_agreement_key_is_accepted() {
    let (status, reply) = recorded_cbor_reply("wiredata-ctap_cbor_authkey.hex");
    assert_eq!(status, 0);
    let map = reply.as_map("clientPIN reply").expect("map");
    let key = CoseKey::from_value(map.get_int(1).expect("keyAgreement")).expect("COSE key");
    assert_eq!(key.alg(), ALG_ECDH_ES_HKDF_256);
    for protocol in [PinUvAuthProtocol::One, PinUvAuthProtocol::Two] {
        let (platform, shared) = protocol.encapsulate(&key, &mut OsRng).expect("valid point");
        assert_eq!(platform.alg(), ALG_ECDH_ES_HKDF_256);
        assert_eq!(shared.protocol(), protocol);
        let params = set_pin(protocol, &key, &pin("1234"), &mut OsRng).expect("setPIN");
        assert_eq!(
            params.new_pin_enc.len(),
            64 + if protocol == PinUvAuthProtocol::Two {
                16
            } else {
                0
            }
        );
    }
    // The same key with y nudged off the curve is refused.
    let CoseKey::Ec2 { alg, x, mut y } = key else {
        panic!("EC2 key expected")
    };
    y[0] ^= 0x01;
    assert_eq!(
        PinUvAuthProtocol::One
            .encapsulate(&CoseKey::Ec2 { alg, x, y }, &mut OsRng)
            .err(),
        Some(PinError::InvalidPoint)
    );
}

#[test]
fn recorded_pin_token_has_protocol_one_length() {
    let (status, reply) = recorded_cbor_reply("wiredata-ctap_cbor_pintoken.hex");
    assert_eq!(status, 0);
    let map = reply.as_map("clientPIN reply").expect("map");
    let enc = map
        .get_int(2)
        .expect("pinUvAuthToken")
        .as_bytes("pinUvAuthToken")
        .expect("bytes");
    assert_eq!(enc.len(), 16);
    // Whatever the (unknown) secret, a 16-byte protocol-one token decrypts to 16 bytes...
    let v1 = SharedSecret::from_bytes(PinUvAuthProtocol::One, &[5; 32]).expect("32");
    let token =
        PinUvAuthToken::decrypt(PinUvAuthProtocol::One, &v1, enc, Permissions::empty(), None)
            .expect("16-byte token");
    assert_eq!(token.expose_secret().len(), 16);
    // ...while under protocol two the 16 bytes are only an IV: no token at all.
    let v2 = SharedSecret::from_bytes(PinUvAuthProtocol::Two, &[5; 64]).expect("64");
    assert_eq!(
        PinUvAuthToken::decrypt(PinUvAuthProtocol::Two, &v2, enc, Permissions::empty(), None).err(),
        Some(PinError::TokenLength {
            len: 0,
            protocol: 2
        })
    );
}
