//! Integration tests: pin.
//!
//! Protocol-one known-answer vectors are from Yubico python-fido2 `tests/test_ctap2.py`
//! (BSD-2-Clause), used as data.

use fido_core::cose::{CoseKey, ALG_ECDH_ES_HKDF_256};
use fido_core::pin::{
    change_pin, decrypt_pin_hash, pin_token_request, set_pin, verify_change_pin, verify_set_pin,
    AuthMessage, AuthenticatorKeyAgreement, Permissions, Pin, PinError, PinUvAuthProtocol,
    PinUvAuthToken, SharedSecret,
};
use hmac::{Hmac, Mac};
use rand_core::{CryptoRng, OsRng, RngCore};
use sha2::{Digest, Sha256};

use super::support::hex;

const EC_PRIV: &str = "7452E599FEE739D8A653F6A507343D12D382249108A651402520B72F24FE7684";
const EC_PUB_X: &str = "44D78D7989B97E62EA993496C9EF6E8FD58B8B00715F9A89153DDD9C4657E47F";
const EC_PUB_Y: &str = "EC802EE7D22BD4E100F12E48537EB4E7E96ED3A47A0A3BD5F5EEAB65001664F9";
const DEV_PUB_X: &str = "0501D5BC78DA9252560A26CB08FCC60CBE0B6D3B8E1D1FCEE514FAC0AF675168";
const DEV_PUB_Y: &str = "D551B3ED46F665731F95B4532939C25D91DB7EB844BD96D4ABD4083785F8DF47";
const SHARED: &str = "c42a039d548100dfba521e487debcbbb8b66bb7496f8b1862a7a395ed83e1a1c";
const TOKEN_ENC: &str = "7A9F98E31B77BE90F9C64D12E9635040";
const TOKEN: &str = "aff12c6dcfbf9df52f7a09211e8865cd";
const PIN_HASH_ENC: &str = "afe8327ce416da8ee3d057589c2ce1a9";
const SET_PIN_NEW_PIN_ENC: &str = "0222fc42c6dd76a274a7057858b9b29d98e8a722ec2dc6668476168c5320473cec9907b4cd76ce7943c96ba5683943211d84471e64d9c51e54763488cd66526a";
const SET_PIN_PARAM: &str = "7b40c084ccc5794194189ab57836475f";
const CHANGE_PIN_NEW_PIN_ENC: &str = "4280e14aac4fcbf02dd079985f0c0ffc9ea7d5f9c173fd1a4c843826f7590cb3c2d080c6923e2fe6d7a52c31ea1309d3fcca3dedae8a2ef14b6330cafc79339e";
const CHANGE_PIN_PARAM: &str = "fb97e92f3724d7c85e001d7f93e6490a";

/// A deterministic "RNG" that yields the given bytes, then counts upward.
struct ScriptedRng {
    script: Vec<u8>,
    pos: usize,
    counter: u8,
}

impl ScriptedRng {
    fn new(script: Vec<u8>) -> Self {
        ScriptedRng {
            script,
            pos: 0,
            counter: 0,
        }
    }
}

impl RngCore for ScriptedRng {
    fn next_u32(&mut self) -> u32 {
        rand_core::impls::next_u32_via_fill(self)
    }
    fn next_u64(&mut self) -> u64 {
        rand_core::impls::next_u64_via_fill(self)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for b in dest {
            *b = match self.script.get(self.pos) {
                Some(v) => {
                    self.pos += 1;
                    *v
                }
                None => {
                    self.counter = self.counter.wrapping_add(1);
                    self.counter
                }
            };
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl CryptoRng for ScriptedRng {}

fn arr32(s: &str) -> [u8; 32] {
    hex(s).try_into().expect("32 bytes of test data")
}

fn device_key() -> CoseKey {
    CoseKey::Ec2 {
        alg: ALG_ECDH_ES_HKDF_256,
        x: arr32(DEV_PUB_X),
        y: arr32(DEV_PUB_Y),
    }
}

fn platform_rng() -> ScriptedRng {
    ScriptedRng::new(hex(EC_PRIV))
}

fn pin(s: &str) -> Pin {
    Pin::new(s).expect("valid test PIN")
}

/// The ECDH x coordinate of the vector's key pair, computed with p256 directly.
fn vector_z() -> [u8; 32] {
    use p256::elliptic_curve::sec1::{FromEncodedPoint, ToEncodedPoint};
    let secret = p256::SecretKey::from_slice(&hex(EC_PRIV)).expect("scalar");
    let point = p256::EncodedPoint::from_affine_coordinates(
        (&arr32(DEV_PUB_X)).into(),
        (&arr32(DEV_PUB_Y)).into(),
        false,
    );
    let peer = p256::PublicKey::from_encoded_point(&point).expect("on curve");
    let product = (peer.to_projective() * *secret.to_nonzero_scalar()).to_affine();
    let encoded = product.to_encoded_point(false);
    encoded
        .x()
        .expect("not identity")
        .as_slice()
        .try_into()
        .expect("32")
}

// ---- protocol one known answers (python-fido2) ----

#[test]
fn v1_encapsulate_matches_python_fido2() {
    let (platform, shared) = PinUvAuthProtocol::One
        .encapsulate(&device_key(), &mut platform_rng())
        .expect("encapsulate");
    assert_eq!(
        platform,
        CoseKey::Ec2 {
            alg: ALG_ECDH_ES_HKDF_256,
            x: arr32(EC_PUB_X),
            y: arr32(EC_PUB_Y),
        }
    );
    assert_eq!(shared.protocol(), PinUvAuthProtocol::One);
    assert_eq!(shared.expose_secret().as_slice(), hex(SHARED).as_slice());
}

#[test]
fn v1_authenticator_side_derives_the_same_secret() {
    // ECDH is symmetric: the platform's private key with the device's public key.
    let ka = AuthenticatorKeyAgreement::from_secret_bytes(&arr32(EC_PRIV)).expect("key");
    assert_eq!(
        ka.public_key(),
        CoseKey::Ec2 {
            alg: ALG_ECDH_ES_HKDF_256,
            x: arr32(EC_PUB_X),
            y: arr32(EC_PUB_Y),
        }
    );
    let shared = ka
        .decapsulate(PinUvAuthProtocol::One, &device_key())
        .expect("decapsulate");
    assert_eq!(shared.expose_secret().as_slice(), hex(SHARED).as_slice());
}

#[test]
fn v1_pin_hash_enc_and_token_match_python_fido2() {
    let req = pin_token_request(
        PinUvAuthProtocol::One,
        &device_key(),
        &pin("1234"),
        &mut platform_rng(),
    )
    .expect("request");
    assert_eq!(req.pin_hash_enc, hex(PIN_HASH_ENC));
    let token = PinUvAuthToken::decrypt(
        PinUvAuthProtocol::One,
        &req.shared_secret,
        &hex(TOKEN_ENC),
        Permissions::empty(),
        None,
    )
    .expect("token");
    assert_eq!(token.expose_secret(), hex(TOKEN).as_slice());
}

#[test]
fn v1_set_pin_matches_python_fido2() {
    let params = set_pin(
        PinUvAuthProtocol::One,
        &device_key(),
        &pin("1234"),
        &mut platform_rng(),
    )
    .expect("set_pin");
    assert_eq!(params.new_pin_enc, hex(SET_PIN_NEW_PIN_ENC));
    assert_eq!(params.pin_uv_auth_param, hex(SET_PIN_PARAM));
    assert_eq!(params.key_agreement.alg(), ALG_ECDH_ES_HKDF_256);
}

#[test]
fn v1_change_pin_matches_python_fido2() {
    let params = change_pin(
        PinUvAuthProtocol::One,
        &device_key(),
        &pin("1234"),
        &pin("4321"),
        &mut platform_rng(),
    )
    .expect("change_pin");
    assert_eq!(params.pin_hash_enc, hex(PIN_HASH_ENC));
    assert_eq!(params.new_pin_enc, hex(CHANGE_PIN_NEW_PIN_ENC));
    assert_eq!(params.pin_uv_auth_param, hex(CHANGE_PIN_PARAM));
}

#[test]
fn v1_shared_secret_from_bytes_gives_same_params() {
    let shared = SharedSecret::from_bytes(PinUvAuthProtocol::One, &hex(SHARED)).expect("32");
    let enc = shared
        .encrypt(&*pin("1234").padded(), &mut OsRng)
        .expect("aligned");
    assert_eq!(enc, hex(SET_PIN_NEW_PIN_ENC));
    assert_eq!(shared.authenticate(&enc), hex(SET_PIN_PARAM));
}

#[test]
fn vector_z_is_consistent_with_shared() {
    assert_eq!(
        Sha256::digest(vector_z()).as_slice(),
        hex(SHARED).as_slice()
    );
}

// ---- protocol two ----

#[test]
fn v2_kdf_matches_independent_hkdf() {
    let z = vector_z();
    let hk = hkdf::Hkdf::<Sha256>::new(Some(&[0u8; 32]), &z);
    let mut hmac_key = [0u8; 32];
    let mut aes_key = [0u8; 32];
    hk.expand(b"CTAP2 HMAC key", &mut hmac_key).expect("32");
    hk.expand(b"CTAP2 AES key", &mut aes_key).expect("32");

    // RFC 5869 by hand too: PRK = HMAC(salt, IKM); T(1) = HMAC(PRK, info || 0x01).
    let mut prk_mac = Hmac::<Sha256>::new_from_slice(&[0u8; 32]).expect("key");
    prk_mac.update(&z);
    let prk = prk_mac.finalize().into_bytes();
    let mut t1 = Hmac::<Sha256>::new_from_slice(&prk).expect("key");
    t1.update(b"CTAP2 HMAC key\x01");
    assert_eq!(t1.finalize().into_bytes().as_slice(), &hmac_key);

    let (_, shared) = PinUvAuthProtocol::Two
        .encapsulate(&device_key(), &mut platform_rng())
        .expect("encapsulate");
    assert_eq!(shared.protocol(), PinUvAuthProtocol::Two);
    assert_eq!(
        shared.expose_secret().as_slice(),
        [hmac_key, aes_key].concat().as_slice()
    );
    assert_ne!(hmac_key, aes_key);
}

#[test]
fn v2_encrypt_prepends_random_iv_and_decrypts() {
    let (_, shared) = PinUvAuthProtocol::Two
        .encapsulate(&device_key(), &mut platform_rng())
        .expect("encapsulate");
    let iv = [0x5a; 16];
    let mut rng = ScriptedRng::new(iv.to_vec());
    let plaintext = [0x11; 32];
    let ct = PinUvAuthProtocol::Two
        .encrypt(&shared, &plaintext, &mut rng)
        .expect("encrypt");
    assert_eq!(ct.len(), 48);
    assert_eq!(ct.get(..16), Some(&iv[..]));

    // Independent AES-256-CBC with the AES half of the secret.
    use cbc::cipher::{block_padding::NoPadding, BlockEncryptMut, KeyIvInit};
    let secret = shared.expose_secret();
    let aes_key: [u8; 32] = secret[32..].try_into().expect("32");
    let expected = cbc::Encryptor::<aes::Aes256>::new(&aes_key.into(), &iv.into())
        .encrypt_padded_vec_mut::<NoPadding>(&plaintext);
    assert_eq!(ct.get(16..), Some(expected.as_slice()));

    let back = shared.decrypt(&ct).expect("decrypt");
    assert_eq!(back.as_slice(), &plaintext);

    // Two encryptions of the same plaintext differ (fresh IV).
    let ct2 = shared.encrypt(&plaintext, &mut OsRng).expect("encrypt");
    assert_ne!(ct, ct2);
}

#[test]
fn v2_authenticate_uses_hmac_half_for_secret_and_whole_token() {
    let (_, shared) = PinUvAuthProtocol::Two
        .encapsulate(&device_key(), &mut platform_rng())
        .expect("encapsulate");
    let secret = shared.expose_secret();
    let msg = b"message";
    let mut mac = Hmac::<Sha256>::new_from_slice(&secret[..32]).expect("key");
    mac.update(msg);
    let want = mac.finalize().into_bytes().to_vec();
    assert_eq!(shared.authenticate(msg), want);
    assert_eq!(want.len(), 32);

    let token_bytes = [0x42u8; 32];
    let token = PinUvAuthToken::from_bytes(
        PinUvAuthProtocol::Two,
        &token_bytes,
        Permissions::GET_ASSERTION,
        None,
    )
    .expect("token");
    let mut mac = Hmac::<Sha256>::new_from_slice(&token_bytes).expect("key");
    mac.update(msg);
    assert_eq!(
        token.authenticate(msg),
        mac.finalize().into_bytes().to_vec()
    );
}

#[test]
fn v1_authenticate_is_left_16_bytes() {
    let key = [7u8; 32];
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("key");
    mac.update(b"abc");
    let full = mac.finalize().into_bytes();
    assert_eq!(
        PinUvAuthProtocol::One.authenticate(&key, b"abc"),
        full[..16].to_vec()
    );
    assert_eq!(
        PinUvAuthProtocol::Two.authenticate(&key, b"abc"),
        full.to_vec()
    );
}

// ---- round trips platform <-> authenticator ----

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

// ---- typed errors ----

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

// ---- PIN rules ----

#[test]
fn pin_lengths_count_code_points_and_bytes() {
    // 4 code points of 2 bytes each: fine.
    assert_eq!(pin("éééé").code_points(), 4);
    assert_eq!(pin("😀😀😀😀").as_str().len(), 16);
    assert_eq!(
        Pin::new("ééé").err(),
        Some(PinError::TooShort { min: 4, actual: 3 })
    );
    assert_eq!(
        Pin::new("").err(),
        Some(PinError::TooShort { min: 4, actual: 0 })
    );
    // 63 bytes fine, 64 too long (ASCII and 3-byte characters).
    assert!(Pin::new(&"1".repeat(63)).is_ok());
    assert_eq!(
        Pin::new(&"1".repeat(64)).err(),
        Some(PinError::TooLong {
            max: 63,
            actual: 64
        })
    );
    assert!(Pin::new(&"€".repeat(21)).is_ok());
    assert_eq!(
        Pin::new(&"€".repeat(22)).err(),
        Some(PinError::TooLong {
            max: 63,
            actual: 66
        })
    );
    assert_eq!(Pin::new("1234\0").err(), Some(PinError::ContainsNul));
}

#[test]
fn pin_minimum_comes_from_the_key_but_never_below_four() {
    assert_eq!(
        Pin::with_min_length("12345", 6).err(),
        Some(PinError::TooShort { min: 6, actual: 5 })
    );
    assert!(Pin::with_min_length("123456", 6).is_ok());
    assert_eq!(
        Pin::with_min_length("123", 2).err(),
        Some(PinError::TooShort { min: 4, actual: 3 })
    );
    let p = pin("1234");
    assert_eq!(
        p.check_min_length(8),
        Err(PinError::TooShort { min: 8, actual: 4 })
    );
    assert_eq!(p.check_min_length(4), Ok(()));
}

#[test]
fn pin_padding_and_hash() {
    let p = pin("héllo");
    let padded = p.padded();
    assert_eq!(padded.len(), 64);
    assert_eq!(&padded[..6], "héllo".as_bytes());
    assert!(padded[6..].iter().all(|&b| b == 0));
    let digest = Sha256::digest("héllo".as_bytes());
    assert_eq!(&p.pin_hash()[..], &digest[..16]);
    // A 63-byte PIN still leaves its terminating zero.
    let long = pin(&"7".repeat(63));
    assert_eq!(long.padded()[63], 0);
}

#[test]
fn pin_try_from_string() {
    assert!(Pin::try_from(String::from("2468")).is_ok());
    assert_eq!(
        Pin::try_from("24").err(),
        Some(PinError::TooShort { min: 4, actual: 2 })
    );
}

// ---- redaction ----

#[test]
fn debug_output_does_not_leak_secrets() {
    let p = pin("271828");
    let shown = format!("{p:?}");
    assert!(!shown.contains("271828"), "{shown}");

    let secret_bytes = [0xabu8; 32];
    let shared = SharedSecret::from_bytes(PinUvAuthProtocol::One, &secret_bytes).expect("32");
    let token = PinUvAuthToken::from_bytes(
        PinUvAuthProtocol::Two,
        &secret_bytes,
        Permissions::GET_ASSERTION,
        Some("rp.example".into()),
    )
    .expect("token");
    let ka = AuthenticatorKeyAgreement::from_secret_bytes(&arr32(EC_PRIV)).expect("key");
    let req = pin_token_request(
        PinUvAuthProtocol::One,
        &device_key(),
        &p,
        &mut platform_rng(),
    )
    .expect("request");
    for shown in [format!("{shared:?}"), format!("{token:?}")] {
        assert!(!shown.to_lowercase().contains("abab"), "{shown}");
        assert!(!shown.contains("171"), "{shown}");
        assert!(shown.contains("redacted"), "{shown}");
    }
    // The private scalar 74 52 e5 99 … in neither hex nor decimal.
    let shown = format!("{ka:?}");
    assert!(!shown.to_lowercase().contains("7452e599"), "{shown}");
    assert!(!shown.contains("116, 82, 229, 153"), "{shown}");
    assert!(shown.contains("redacted"), "{shown}");
    // The shared secret c4 2a 03 9d … in neither hex nor decimal.
    let shown = format!("{req:?}");
    assert!(!shown.to_lowercase().contains("c42a039d"), "{shown}");
    assert!(!shown.contains("196, 42, 3, 157"), "{shown}");
    assert!(shown.contains("redacted"), "{shown}");
    // The token's non-secret metadata is still shown.
    assert!(format!("{token:?}").contains("rp.example"));
}

// ---- recorded traffic (libfido2 wiredata, a Security Key by Yubico) ----

/// Reassembles a CTAPHID CBOR reply from its 64-byte reports and splits off the status.
fn recorded_cbor_reply(name: &str) -> (u8, fido_core::cbor::Value) {
    let reports = super::support::fixture_lines(name);
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

// ---- properties ----

mod properties {
    use super::*;
    use proptest::prelude::*;

    fn protocol() -> impl Strategy<Value = PinUvAuthProtocol> {
        prop_oneof![Just(PinUvAuthProtocol::One), Just(PinUvAuthProtocol::Two)]
    }

    fn secret(protocol: PinUvAuthProtocol, seed: u8) -> SharedSecret {
        let len = match protocol {
            PinUvAuthProtocol::One => 32,
            PinUvAuthProtocol::Two => 64,
        };
        let bytes: Vec<u8> = (0..len).map(|i| seed.wrapping_add(i as u8)).collect();
        SharedSecret::from_bytes(protocol, &bytes).expect("right length")
    }

    proptest! {
        #[test]
        fn pin_validation_follows_the_rules(s in "\\PC{0,24}|[0-9\u{0}]{0,70}") {
            let expected_ok = !s.contains('\0') && s.len() <= 63 && s.chars().count() >= 4;
            let result = Pin::new(&s);
            prop_assert_eq!(result.is_ok(), expected_ok, "{:?} -> {:?}", s, result.as_ref().err());
            if let Ok(p) = result {
                let back = Pin::from_padded(&*p.padded(), 4).expect("padded PIN parses back");
                prop_assert_eq!(back.as_str(), s.as_str());
            }
        }

        #[test]
        fn encrypt_decrypt_round_trip(
            protocol in protocol(),
            seed in any::<u8>(),
            blocks in proptest::collection::vec(any::<[u8; 16]>(), 0..6),
        ) {
            let shared = secret(protocol, seed);
            let plaintext = blocks.concat();
            let ct = shared.encrypt(&plaintext, &mut OsRng).expect("aligned");
            let extra = if protocol == PinUvAuthProtocol::Two { 16 } else { 0 };
            prop_assert_eq!(ct.len(), plaintext.len() + extra);
            let back = shared.decrypt(&ct).expect("decrypts");
            prop_assert_eq!(back.as_slice(), plaintext.as_slice());
        }

        #[test]
        fn decrypt_and_verify_never_panic(
            protocol in protocol(),
            bytes in proptest::collection::vec(any::<u8>(), 0..100),
        ) {
            let shared = secret(protocol, 1);
            match shared.decrypt(&bytes) {
                Ok(_) | Err(PinError::CiphertextLength { .. }) => {}
                Err(other) => prop_assert!(false, "unexpected error {other:?}"),
            }
            let _ = PinUvAuthToken::decrypt(protocol, &shared, &bytes, Permissions::empty(), None);
            prop_assert!(shared.verify(b"message", &bytes).is_err());
            let _ = Pin::from_padded(&bytes, 4);
        }
    }
}
