//! Secrets sealed to the device session (split-protocol.md §6): HPKE (RFC 9180) base mode,
//! single shot, DHKEM(P-256, HKDF-SHA256) / HKDF-SHA256 / AES-128-GCM, `aad` empty, and the
//! holder nonce for the ID token.

use base64::Engine as _;
use fido_core::cbor::{self, Value};
use hpke::{Deserializable, Kem as _, OpModeR, OpModeS, Serializable};
use zeroize::Zeroizing;

use crate::error::WireError;
use crate::keys::{sha256, Entropy, OsEntropy, Rng};
use crate::msg::{JobId, SealedSecret, SessionId};

type Kem = hpke::kem::DhP256HkdfSha256;
type Kdf = hpke::kdf::HkdfSha256;
type Aead = hpke::aead::AesGcm128;

/// The prefix of every secret's HPKE `info`.
pub const INFO_PREFIX: &[u8] = b"keysmith/v1 secret";

/// The device session's ephemeral HPKE key pair. Lives in memory only; the private key is
/// zeroized when dropped and never shown by `Debug`.
pub struct SessionKey {
    sk: <Kem as hpke::Kem>::PrivateKey,
    public: [u8; 65],
}

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionKey")
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl SessionKey {
    /// A fresh key pair from the operating system's CSPRNG.
    pub fn generate() -> Self {
        Self::generate_with(&mut OsEntropy)
    }

    /// A fresh key pair from `entropy` (RFC 9180 `DeriveKeyPair` over 32 bytes of it).
    pub fn generate_with(entropy: &mut dyn Entropy) -> Self {
        let mut ikm = Zeroizing::new([0u8; 32]);
        entropy.fill(ikm.as_mut());
        Self::derive(ikm.as_ref())
    }

    /// RFC 9180 `DeriveKeyPair(ikm)`.
    pub(crate) fn derive(ikm: &[u8]) -> Self {
        let (sk, pk) = Kem::derive_keypair(ikm);
        let mut public = [0u8; 65];
        public.copy_from_slice(&pk.to_bytes());
        SessionKey { sk, public }
    }

    /// The public key (SEC1 uncompressed) that goes into `AgentHello.session_pub`.
    pub fn public(&self) -> [u8; 65] {
        self.public
    }
}

/// What a sealed secret is bound to (split-protocol.md §6).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretContext {
    /// The session.
    pub session: SessionId,
    /// The job carrying the secret.
    pub job: JobId,
    /// The job's key id (`None` is encoded as `""`).
    pub key_id: Option<String>,
    /// The secret's id in the job (`PinSource::Secret`).
    pub secret_id: u32,
}

impl SecretContext {
    /// The HPKE `info`: `"keysmith/v1 secret"` ‖ SHA-256(CBOR `[session, job, key_id,
    /// secret_id]`).
    pub fn info(&self) -> Vec<u8> {
        let ctx = cbor::encode(&Value::Array(vec![
            Value::Bytes(self.session.0.to_vec()),
            Value::Bytes(self.job.0.to_vec()),
            Value::Text(self.key_id.clone().unwrap_or_default()),
            Value::Unsigned(u64::from(self.secret_id)),
        ]));
        let mut info = INFO_PREFIX.to_vec();
        info.extend_from_slice(&sha256(&ctx));
        info
    }
}

/// Seals `plaintext` (the transport PIN) to the session key `session_pub` for `ctx`.
pub fn seal_secret(
    session_pub: &[u8; 65],
    ctx: &SecretContext,
    plaintext: &[u8],
    entropy: &mut dyn Entropy,
) -> Result<SealedSecret, WireError> {
    let (enc, ct) = seal_raw(session_pub, &ctx.info(), b"", plaintext, entropy)?;
    Ok(SealedSecret {
        id: ctx.secret_id,
        enc,
        ct,
    })
}

/// Opens a sealed secret with the session key; the plaintext is zeroized when dropped.
/// Call it only after the envelope's signature, session, seq and ttl checks.
pub fn open_secret(
    key: &SessionKey,
    ctx: &SecretContext,
    sealed: &SealedSecret,
) -> Result<Zeroizing<Vec<u8>>, WireError> {
    if sealed.id != ctx.secret_id {
        return Err(WireError::OpenFailed);
    }
    open_raw(key, &sealed.enc, &ctx.info(), b"", &sealed.ct)
}

pub(crate) fn seal_raw(
    pk: &[u8; 65],
    info: &[u8],
    aad: &[u8],
    plaintext: &[u8],
    entropy: &mut dyn Entropy,
) -> Result<([u8; 65], Vec<u8>), WireError> {
    let pk = <Kem as hpke::Kem>::PublicKey::from_bytes(pk).map_err(|_| WireError::SealFailed)?;
    let (enc, ct) = hpke::single_shot_seal::<Aead, Kdf, Kem, _>(
        &OpModeS::Base,
        &pk,
        info,
        plaintext,
        aad,
        &mut Rng(entropy),
    )
    .map_err(|_| WireError::SealFailed)?;
    let mut out = [0u8; 65];
    out.copy_from_slice(&enc.to_bytes());
    Ok((out, ct))
}

pub(crate) fn open_raw(
    key: &SessionKey,
    enc: &[u8; 65],
    info: &[u8],
    aad: &[u8],
    ct: &[u8],
) -> Result<Zeroizing<Vec<u8>>, WireError> {
    let enc =
        <Kem as hpke::Kem>::EncappedKey::from_bytes(enc).map_err(|_| WireError::OpenFailed)?;
    hpke::single_shot_open::<Aead, Kdf, Kem>(&OpModeR::Base, &key.sk, &enc, info, ct, aad)
        .map(Zeroizing::new)
        .map_err(|_| WireError::OpenFailed)
}

/// The holder nonce for the ID token: base64url-no-pad(SHA-256(`session_pub` ‖
/// `server_nonce`)).
pub fn holder_nonce(session_pub: &[u8; 65], server_nonce: &[u8; 16]) -> String {
    let mut input = Vec::with_capacity(81);
    input.extend_from_slice(session_pub);
    input.extend_from_slice(server_nonce);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha256(&input))
}
