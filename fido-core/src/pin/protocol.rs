//! PIN/UV auth protocols one and two (CTAP 2.1 §6.5.6, §6.5.7): ECDH P-256 key
//! agreement, key derivation, AES-256-CBC and HMAC-SHA-256.

use core::fmt;

use aes::Aes256;
use cbc::cipher::{block_padding::NoPadding, BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use hmac::{Hmac, Mac};
use p256::elliptic_curve::sec1::{FromEncodedPoint, ToEncodedPoint};
use p256::{EncodedPoint, PublicKey, SecretKey};
use rand_core::CryptoRngCore;
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::PinError;
use crate::cose::{CoseKey, ALG_ECDH_ES_HKDF_256};

type HmacSha256 = Hmac<Sha256>;

/// AES block length, also the length of protocol two's IV.
const BLOCK: usize = 16;
/// HMAC-SHA-256 block length: keys up to this length are zero-padded (RFC 2104).
const HMAC_BLOCK: usize = 64;
/// How many times a fresh scalar is drawn before the RNG is declared broken. A good RNG
/// fails one draw with probability below 2^-32.
const SCALAR_ATTEMPTS: usize = 16;

/// A PIN/UV auth protocol, as numbered in `pinUvAuthProtocol` (1 or 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PinUvAuthProtocol {
    /// Protocol one (CTAP 2.0 and 2.1): SHA-256 KDF, zero IV, 16-byte auth params.
    One,
    /// Protocol two (CTAP 2.1): HKDF-SHA-256, random IV, 32-byte auth params.
    Two,
}

impl PinUvAuthProtocol {
    /// The wire number (1 or 2).
    pub const fn id(self) -> u8 {
        match self {
            PinUvAuthProtocol::One => 1,
            PinUvAuthProtocol::Two => 2,
        }
    }

    /// The protocol with wire number `id`.
    pub fn from_id(id: u64) -> Result<Self, PinError> {
        match id {
            1 => Ok(PinUvAuthProtocol::One),
            2 => Ok(PinUvAuthProtocol::Two),
            other => Err(PinError::UnsupportedProtocol(other)),
        }
    }

    /// Length of a pinUvAuthParam under this protocol (16 or 32 bytes).
    pub const fn auth_param_len(self) -> usize {
        match self {
            PinUvAuthProtocol::One => 16,
            PinUvAuthProtocol::Two => 32,
        }
    }

    /// Platform side of key agreement: generates an ephemeral P-256 key pair from `rng`,
    /// runs ECDH with the authenticator's `peer` key (from clientPIN getKeyAgreement) and
    /// derives the shared secret. Returns the platform's public key (alg -25, sent as
    /// `keyAgreement`) and the shared secret.
    ///
    /// The private scalar is the first 32-byte big-endian draw from `rng` that is a valid
    /// P-256 scalar. Fails with [`PinError::UnsupportedKeyAgreementKey`] if `peer` is not
    /// an EC2 key, [`PinError::InvalidPoint`] if it is not a point on P-256. The peer's
    /// `alg` is not checked: only the curve point matters for the agreement.
    pub fn encapsulate(
        self,
        peer: &CoseKey,
        rng: &mut impl CryptoRngCore,
    ) -> Result<(CoseKey, SharedSecret), PinError> {
        let peer = peer_public_key(peer)?;
        let secret = random_secret_key(rng)?;
        let platform_key = cose_public_key(&secret.public_key())?;
        let shared = self.derive(&secret, &peer);
        Ok((platform_key, shared))
    }

    /// ECDH then KDF: protocol one SHA-256(Z.x); protocol two HKDF-SHA-256.
    fn derive(self, secret: &SecretKey, peer: &PublicKey) -> SharedSecret {
        let dh = p256::ecdh::diffie_hellman(secret.to_nonzero_scalar(), peer.as_affine());
        let mut z = Zeroizing::new([0u8; 32]);
        z.copy_from_slice(dh.raw_secret_bytes());
        self.kdf(&z)
    }

    /// Key derivation from the ECDH x coordinate `z`.
    pub(crate) fn kdf(self, z: &[u8; 32]) -> SharedSecret {
        match self {
            PinUvAuthProtocol::One => {
                let key: [u8; 32] = Sha256::digest(z).into();
                SharedSecret {
                    protocol: self,
                    hmac_key: key,
                    aes_key: key,
                }
            }
            PinUvAuthProtocol::Two => {
                // HKDF-SHA-256 (RFC 5869) with a 32-byte zero salt. Each output is exactly
                // one hash length, so expand is a single HMAC block: T(1) = HMAC(PRK, info || 0x01).
                let prk = Zeroizing::new(hmac_sha256(&[0u8; 32], &[z]));
                SharedSecret {
                    protocol: self,
                    hmac_key: hmac_sha256(&*prk, &[b"CTAP2 HMAC key", &[1]]),
                    aes_key: hmac_sha256(&*prk, &[b"CTAP2 AES key", &[1]]),
                }
            }
        }
    }

    fn check(self, shared: &SharedSecret) -> Result<(), PinError> {
        if shared.protocol == self {
            Ok(())
        } else {
            Err(PinError::ProtocolMismatch {
                expected: self.id(),
                found: shared.protocol.id(),
            })
        }
    }

    /// Encrypts `plaintext` (a whole number of 16-byte blocks) with AES-256-CBC under the
    /// shared secret's AES key. Protocol one uses a zero IV; protocol two draws a random
    /// IV from `rng` and prepends it.
    pub fn encrypt(
        self,
        shared: &SharedSecret,
        plaintext: &[u8],
        rng: &mut impl CryptoRngCore,
    ) -> Result<Vec<u8>, PinError> {
        self.check(shared)?;
        if !plaintext.len().is_multiple_of(BLOCK) {
            return Err(PinError::UnalignedPlaintext {
                len: plaintext.len(),
            });
        }
        match self {
            PinUvAuthProtocol::One => Ok(cbc_encrypt(&shared.aes_key, &[0u8; BLOCK], plaintext)),
            PinUvAuthProtocol::Two => {
                let mut iv = [0u8; BLOCK];
                rng.try_fill_bytes(&mut iv).map_err(|_| PinError::Rng)?;
                let mut out = Vec::with_capacity(BLOCK + plaintext.len());
                out.extend_from_slice(&iv);
                out.extend_from_slice(&cbc_encrypt(&shared.aes_key, &iv, plaintext));
                Ok(out)
            }
        }
    }

    /// Decrypts what [`encrypt`](Self::encrypt) produced. The ciphertext must be whole
    /// AES blocks (protocol two: a 16-byte IV followed by whole blocks), otherwise
    /// [`PinError::CiphertextLength`].
    pub fn decrypt(
        self,
        shared: &SharedSecret,
        ciphertext: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, PinError> {
        self.decrypt_field(shared, ciphertext, "ciphertext")
    }

    /// [`decrypt`](Self::decrypt), naming the field in errors.
    pub(crate) fn decrypt_field(
        self,
        shared: &SharedSecret,
        ciphertext: &[u8],
        field: &'static str,
    ) -> Result<Zeroizing<Vec<u8>>, PinError> {
        self.check(shared)?;
        let length_error = PinError::CiphertextLength {
            field,
            len: ciphertext.len(),
            protocol: self.id(),
        };
        let (iv, body) = match self {
            PinUvAuthProtocol::One => (&[0u8; BLOCK], ciphertext),
            PinUvAuthProtocol::Two => ciphertext
                .split_first_chunk::<BLOCK>()
                .ok_or_else(|| length_error.clone())?,
        };
        if !body.len().is_multiple_of(BLOCK) {
            return Err(length_error);
        }
        cbc::Decryptor::<Aes256>::new((&shared.aes_key).into(), iv.into())
            .decrypt_padded_vec_mut::<NoPadding>(body)
            .map(Zeroizing::new)
            .map_err(|_| length_error)
    }

    /// HMAC-SHA-256 of `message` under `key`, truncated to 16 bytes for protocol one.
    ///
    /// `key` is used whole: pass a pinUvAuthToken here. To authenticate with a shared
    /// secret (whose protocol-two HMAC key is only its first half), use
    /// [`SharedSecret::authenticate`].
    pub fn authenticate(self, key: &[u8], message: &[u8]) -> Vec<u8> {
        let mac = hmac_sha256(key, &[message]);
        match self {
            PinUvAuthProtocol::One => mac.get(..16).unwrap_or(&mac).to_vec(),
            PinUvAuthProtocol::Two => mac.to_vec(),
        }
    }

    /// Checks `signature` against [`authenticate`](Self::authenticate) in constant time.
    /// A signature of the wrong length gives [`PinError::AuthParamLength`], a wrong one
    /// [`PinError::AuthParamInvalid`].
    pub fn verify(self, key: &[u8], message: &[u8], signature: &[u8]) -> Result<(), PinError> {
        let expected = self.auth_param_len();
        if signature.len() != expected {
            return Err(PinError::AuthParamLength {
                expected,
                actual: signature.len(),
            });
        }
        let mac = hmac_instance(key, &[message]);
        let result = match self {
            PinUvAuthProtocol::One => mac.verify_truncated_left(signature),
            PinUvAuthProtocol::Two => mac.verify_slice(signature),
        };
        result.map_err(|_| PinError::AuthParamInvalid)
    }
}

/// Key material agreed by the PIN/UV auth protocol: one 32-byte key for protocol one,
/// an HMAC key and an AES key for protocol two. Zeroized on drop, redacted in `Debug`.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct SharedSecret {
    #[zeroize(skip)]
    protocol: PinUvAuthProtocol,
    hmac_key: [u8; 32],
    aes_key: [u8; 32],
}

impl SharedSecret {
    /// Rebuilds a shared secret from its raw bytes: 32 bytes for protocol one, 64
    /// (HMAC key then AES key) for protocol two.
    pub fn from_bytes(protocol: PinUvAuthProtocol, bytes: &[u8]) -> Result<Self, PinError> {
        let wrong = || PinError::SharedSecretLength {
            len: bytes.len(),
            protocol: protocol.id(),
        };
        match protocol {
            PinUvAuthProtocol::One => {
                let key: [u8; 32] = bytes.try_into().map_err(|_| wrong())?;
                Ok(SharedSecret {
                    protocol,
                    hmac_key: key,
                    aes_key: key,
                })
            }
            PinUvAuthProtocol::Two => {
                let (hmac_key, aes_key) = bytes.split_first_chunk::<32>().ok_or_else(wrong)?;
                let aes_key: [u8; 32] = aes_key.try_into().map_err(|_| wrong())?;
                Ok(SharedSecret {
                    protocol,
                    hmac_key: *hmac_key,
                    aes_key,
                })
            }
        }
    }

    /// The protocol this secret was derived for.
    pub fn protocol(&self) -> PinUvAuthProtocol {
        self.protocol
    }

    /// The raw secret: 32 bytes (protocol one) or HMAC key || AES key (protocol two).
    pub fn expose_secret(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(64));
        out.extend_from_slice(&self.hmac_key);
        if self.protocol == PinUvAuthProtocol::Two {
            out.extend_from_slice(&self.aes_key);
        }
        out
    }

    /// pinUvAuthParam over `message` with this secret's HMAC key (protocol two: the
    /// first half only).
    pub fn authenticate(&self, message: &[u8]) -> Vec<u8> {
        self.protocol.authenticate(&self.hmac_key, message)
    }

    /// Constant-time check of a pinUvAuthParam made with [`authenticate`](Self::authenticate).
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), PinError> {
        self.protocol.verify(&self.hmac_key, message, signature)
    }

    /// Encrypts with this secret's protocol; see [`PinUvAuthProtocol::encrypt`].
    pub fn encrypt(
        &self,
        plaintext: &[u8],
        rng: &mut impl CryptoRngCore,
    ) -> Result<Vec<u8>, PinError> {
        self.protocol.encrypt(self, plaintext, rng)
    }

    /// Decrypts with this secret's protocol; see [`PinUvAuthProtocol::decrypt`].
    pub fn decrypt(&self, ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>, PinError> {
        self.protocol.decrypt(self, ciphertext)
    }
}

impl fmt::Debug for SharedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedSecret")
            .field("protocol", &self.protocol)
            .field("key", &"<redacted>")
            .finish()
    }
}

/// The authenticator's key-agreement key pair (CTAP 2.1 §6.5.6 `initialize`/
/// `regenerate`/`getPublicKey`/`decapsulate`). The private key is zeroized on drop and
/// never shown by `Debug`.
pub struct AuthenticatorKeyAgreement {
    secret: SecretKey,
}

impl AuthenticatorKeyAgreement {
    /// A fresh key pair drawn from `rng`.
    pub fn new(rng: &mut impl CryptoRngCore) -> Result<Self, PinError> {
        Ok(AuthenticatorKeyAgreement {
            secret: random_secret_key(rng)?,
        })
    }

    /// A key pair from a known big-endian private scalar (tests, persisted state).
    pub fn from_secret_bytes(secret: &[u8; 32]) -> Result<Self, PinError> {
        SecretKey::from_bytes(secret.into())
            .map(|secret| AuthenticatorKeyAgreement { secret })
            .map_err(|_| PinError::InvalidPrivateKey)
    }

    /// Replaces the key pair with a fresh one (done at power-up and after PIN changes).
    pub fn regenerate(&mut self, rng: &mut impl CryptoRngCore) -> Result<(), PinError> {
        self.secret = random_secret_key(rng)?;
        Ok(())
    }

    /// The public key as getKeyAgreement returns it (EC2, P-256, alg -25).
    pub fn public_key(&self) -> CoseKey {
        let point = self.secret.public_key().to_encoded_point(false);
        let mut x = [0u8; 32];
        let mut y = [0u8; 32];
        // A public key derived from a non-zero scalar is never the identity, so both
        // coordinates are present.
        if let (Some(px), Some(py)) = (point.x(), point.y()) {
            x.copy_from_slice(px);
            y.copy_from_slice(py);
        }
        CoseKey::Ec2 {
            alg: ALG_ECDH_ES_HKDF_256,
            x,
            y,
        }
    }

    /// Authenticator side of key agreement: ECDH with the platform's `keyAgreement` key,
    /// then the protocol's KDF. Same errors as [`PinUvAuthProtocol::encapsulate`].
    pub fn decapsulate(
        &self,
        protocol: PinUvAuthProtocol,
        platform_key: &CoseKey,
    ) -> Result<SharedSecret, PinError> {
        let peer = peer_public_key(platform_key)?;
        Ok(protocol.derive(&self.secret, &peer))
    }
}

impl fmt::Debug for AuthenticatorKeyAgreement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthenticatorKeyAgreement")
            .field("public_key", &self.public_key())
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// Validates a peer COSE key as a P-256 point.
fn peer_public_key(key: &CoseKey) -> Result<PublicKey, PinError> {
    match key {
        CoseKey::Ec2 { x, y, .. } => {
            let point = EncodedPoint::from_affine_coordinates(x.into(), y.into(), false);
            Option::from(PublicKey::from_encoded_point(&point)).ok_or(PinError::InvalidPoint)
        }
        _ => Err(PinError::UnsupportedKeyAgreementKey),
    }
}

/// The COSE form (alg -25) of a P-256 public key.
fn cose_public_key(key: &PublicKey) -> Result<CoseKey, PinError> {
    let point = key.to_encoded_point(false);
    let (Some(px), Some(py)) = (point.x(), point.y()) else {
        return Err(PinError::InvalidPoint);
    };
    let mut x = [0u8; 32];
    let mut y = [0u8; 32];
    x.copy_from_slice(px);
    y.copy_from_slice(py);
    Ok(CoseKey::Ec2 {
        alg: ALG_ECDH_ES_HKDF_256,
        x,
        y,
    })
}

/// Draws 32 bytes at a time until they form a valid scalar (bounded).
fn random_secret_key(rng: &mut impl CryptoRngCore) -> Result<SecretKey, PinError> {
    let mut bytes = Zeroizing::new([0u8; 32]);
    for _ in 0..SCALAR_ATTEMPTS {
        rng.try_fill_bytes(&mut *bytes).map_err(|_| PinError::Rng)?;
        if let Ok(secret) = SecretKey::from_bytes((&*bytes).into()) {
            return Ok(secret);
        }
    }
    Err(PinError::Rng)
}

fn cbc_encrypt(key: &[u8; 32], iv: &[u8; BLOCK], plaintext: &[u8]) -> Vec<u8> {
    cbc::Encryptor::<Aes256>::new(key.into(), iv.into())
        .encrypt_padded_vec_mut::<NoPadding>(plaintext)
}

/// An HMAC-SHA-256 instance keyed with `key` and fed `parts`. Keys longer than the block
/// are hashed first and shorter ones zero-padded, exactly as RFC 2104 does, which keeps
/// this infallible.
fn hmac_instance(key: &[u8], parts: &[&[u8]]) -> HmacSha256 {
    let mut block = Zeroizing::new([0u8; HMAC_BLOCK]);
    if key.len() > HMAC_BLOCK {
        let digest: [u8; 32] = Sha256::digest(key).into();
        block[..32].copy_from_slice(&digest);
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut mac = <HmacSha256 as Mac>::new((&*block).into());
    for part in parts {
        mac.update(part);
    }
    mac
}

/// HMAC-SHA-256 over the concatenation of `parts`.
fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    hmac_instance(key, parts).finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Yields fixed bytes, then zeros.
    struct FixedRng(Vec<u8>);
    impl rand_core::RngCore for FixedRng {
        fn next_u32(&mut self) -> u32 {
            rand_core::impls::next_u32_via_fill(self)
        }
        fn next_u64(&mut self) -> u64 {
            rand_core::impls::next_u64_via_fill(self)
        }
        fn fill_bytes(&mut self, dest: &mut [u8]) {
            for b in dest {
                *b = if self.0.is_empty() {
                    0
                } else {
                    self.0.remove(0)
                };
            }
        }
        fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
            self.fill_bytes(dest);
            Ok(())
        }
    }
    impl rand_core::CryptoRng for FixedRng {}

    #[test]
    fn hmac_long_key_is_hashed_first() {
        // RFC 4231 test case 6: 131-byte key of 0xaa.
        let key = [0xaa; 131];
        let mac = hmac_sha256(
            &key,
            &[b"Test Using Larger Than Block-Size Key - Hash Key First"],
        );
        assert_eq!(
            hex::encode(mac),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn hmac_short_key_rfc4231_case2() {
        let mac = hmac_sha256(b"Jefe", &[b"what do ya want ", b"for nothing?"]);
        assert_eq!(
            hex::encode(mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn zero_scalar_draws_are_rejected_then_rng_error() {
        // All-zero output is never a valid scalar: bounded retries, then a typed error.
        let mut rng = FixedRng(Vec::new());
        assert_eq!(random_secret_key(&mut rng).err(), Some(PinError::Rng));
    }

    #[test]
    fn scalar_at_or_above_order_is_skipped() {
        let mut bytes = vec![0xff; 32];
        let mut good = [0u8; 32];
        good[31] = 7;
        bytes.extend_from_slice(&good);
        let key = random_secret_key(&mut FixedRng(bytes)).map(|k| k.to_bytes().to_vec());
        assert_eq!(key, Ok(good.to_vec()));
    }

    #[test]
    fn protocol_mismatch_is_typed() {
        let shared = PinUvAuthProtocol::Two.kdf(&[1; 32]);
        let err = PinUvAuthProtocol::One.decrypt(&shared, &[0; 16]).err();
        assert_eq!(
            err,
            Some(PinError::ProtocolMismatch {
                expected: 1,
                found: 2
            })
        );
    }

    #[test]
    fn from_id_round_trips_and_rejects_others() {
        for p in [PinUvAuthProtocol::One, PinUvAuthProtocol::Two] {
            assert_eq!(PinUvAuthProtocol::from_id(u64::from(p.id())), Ok(p));
        }
        assert_eq!(
            PinUvAuthProtocol::from_id(3),
            Err(PinError::UnsupportedProtocol(3))
        );
    }
}
