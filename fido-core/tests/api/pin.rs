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

mod errors;
mod recorded;
mod round_trip;
mod rules;

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
