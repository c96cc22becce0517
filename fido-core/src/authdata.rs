//! Authenticator data (WebAuthn §6.1): rpIdHash, flags, signature counter, attested
//! credential data and extensions.
//!
//! Parsing is strict: the AT and ED flags must agree with what follows the fixed
//! 37-byte header, the credential public key must be CTAP2 canonical CBOR, and no bytes
//! may follow the last item. [`AuthenticatorData::to_bytes`] produces the same layout, so
//! a software authenticator can build authData with [`AuthenticatorData::new`].

use crate::cbor::{self, CborError, Limits, Value};
use crate::cose::{CoseError, CoseKey};
use sha2::{Digest, Sha256};

/// Length of the fixed part: rpIdHash (32), flags (1), signCount (4).
const HEADER_LEN: usize = 37;
/// Largest credential id CTAP allows.
pub const MAX_CREDENTIAL_ID_LEN: usize = 1023;

/// What is wrong with authenticator data.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthDataError {
    /// Fewer bytes than the 37-byte fixed header.
    #[error("authenticator data of {len} bytes is shorter than the 37-byte header")]
    TooShort {
        /// Length of the input.
        len: usize,
    },
    /// A field runs past the end of the input.
    #[error("authenticator data ends inside {field}: {needed} bytes needed, {available} left")]
    Truncated {
        /// The field being read (e.g. `attestedCredentialData.credentialId`).
        field: &'static str,
        /// Bytes the field needs.
        needed: usize,
        /// Bytes that were left.
        available: usize,
    },
    /// The credential id is longer than CTAP allows (1023 bytes).
    #[error("credential id of {len} bytes exceeds the maximum of 1023")]
    CredentialIdTooLong {
        /// The declared length.
        len: usize,
    },
    /// The AT flag is set but no attested credential data follows.
    #[error("AT flag set but attested credential data is missing")]
    AttestedCredentialDataMissing,
    /// The ED flag is set but no extensions follow.
    #[error("ED flag set but extensions are missing")]
    ExtensionsMissing,
    /// Bytes follow the last item the flags announce.
    #[error("{count} unexpected bytes at offset {offset} of authenticator data")]
    TrailingBytes {
        /// Offset of the first extra byte.
        offset: usize,
        /// How many extra bytes there are.
        count: usize,
    },
    /// The credential public key is malformed, non-canonical or unsupported.
    #[error("attestedCredentialData.credentialPublicKey: {0}")]
    PublicKey(CoseError),
    /// The extensions map is malformed or an extension has a value of the wrong type.
    #[error("authenticator data extensions: {0}")]
    Extensions(CborError),
}

/// The flags byte. Unknown (reserved) bits are kept as they are.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct AuthDataFlags(u8);

impl AuthDataFlags {
    /// User present.
    pub const UP: AuthDataFlags = AuthDataFlags(0x01);
    /// User verified.
    pub const UV: AuthDataFlags = AuthDataFlags(0x04);
    /// Backup eligible.
    pub const BE: AuthDataFlags = AuthDataFlags(0x08);
    /// Backed up (backup state).
    pub const BS: AuthDataFlags = AuthDataFlags(0x10);
    /// Attested credential data included.
    pub const AT: AuthDataFlags = AuthDataFlags(0x40);
    /// Extension data included.
    pub const ED: AuthDataFlags = AuthDataFlags(0x80);

    /// The flags from the raw byte (every bit kept).
    pub const fn from_bits(bits: u8) -> Self {
        AuthDataFlags(bits)
    }

    /// The raw byte.
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// Whether every bit of `other` is set.
    pub const fn contains(self, other: AuthDataFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// These flags with the bits of `other` set or cleared.
    pub const fn with(self, other: AuthDataFlags, on: bool) -> Self {
        if on {
            AuthDataFlags(self.0 | other.0)
        } else {
            AuthDataFlags(self.0 & !other.0)
        }
    }

    /// UP is set.
    pub const fn user_present(self) -> bool {
        self.contains(Self::UP)
    }

    /// UV is set.
    pub const fn user_verified(self) -> bool {
        self.contains(Self::UV)
    }

    /// BE is set.
    pub const fn backup_eligible(self) -> bool {
        self.contains(Self::BE)
    }

    /// BS is set.
    pub const fn backed_up(self) -> bool {
        self.contains(Self::BS)
    }

    /// Bits no flag is defined for (0x02, 0x20).
    pub const fn unknown_bits(self) -> u8 {
        self.0 & !(0x01 | 0x04 | 0x08 | 0x10 | 0x40 | 0x80)
    }
}

impl std::ops::BitOr for AuthDataFlags {
    type Output = AuthDataFlags;
    fn bitor(self, rhs: Self) -> Self {
        AuthDataFlags(self.0 | rhs.0)
    }
}

/// The SHA-256 of an RP id, as authenticator data carries it.
pub fn rp_id_hash(rp_id: &str) -> [u8; 32] {
    Sha256::digest(rp_id.as_bytes()).into()
}

/// Attested credential data: the new credential's AAGUID, id and public key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttestedCredentialData {
    aaguid: [u8; 16],
    credential_id: Vec<u8>,
    public_key: CoseKey,
    public_key_bytes: Vec<u8>,
}

impl AttestedCredentialData {
    /// Attested credential data for a new credential (the key is encoded canonically).
    pub fn new(
        aaguid: [u8; 16],
        credential_id: Vec<u8>,
        public_key: CoseKey,
    ) -> Result<Self, AuthDataError> {
        if credential_id.len() > MAX_CREDENTIAL_ID_LEN {
            return Err(AuthDataError::CredentialIdTooLong {
                len: credential_id.len(),
            });
        }
        let public_key_bytes = public_key.to_cbor();
        Ok(AttestedCredentialData {
            aaguid,
            credential_id,
            public_key,
            public_key_bytes,
        })
    }

    /// The authenticator model's AAGUID.
    pub fn aaguid(&self) -> [u8; 16] {
        self.aaguid
    }

    /// The credential id.
    pub fn credential_id(&self) -> &[u8] {
        &self.credential_id
    }

    /// The credential public key.
    pub fn public_key(&self) -> &CoseKey {
        &self.public_key
    }

    /// The credential public key's CBOR exactly as carried in authenticator data.
    pub fn public_key_bytes(&self) -> &[u8] {
        &self.public_key_bytes
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.aaguid);
        // Length is bounded by MAX_CREDENTIAL_ID_LEN at construction.
        out.extend_from_slice(&(self.credential_id.len() as u16).to_be_bytes());
        out.extend_from_slice(&self.credential_id);
        out.extend_from_slice(&self.public_key_bytes);
    }
}

/// Parsed (or built) authenticator data.
#[derive(Clone, Debug, PartialEq)]
pub struct AuthenticatorData {
    rp_id_hash: [u8; 32],
    flags: AuthDataFlags,
    sign_count: u32,
    attested_credential: Option<AttestedCredentialData>,
    extensions: Option<Extensions>,
}

/// The extensions map of authenticator data, decoded and as raw bytes.
#[derive(Clone, Debug, PartialEq)]
struct Extensions {
    value: Value,
    raw: Vec<u8>,
}

impl AuthenticatorData {
    /// Authenticator data with no attested credential data and no extensions.
    /// The AT and ED bits of `flags` are managed by the builder methods and
    /// [`to_bytes`](Self::to_bytes).
    pub fn new(rp_id_hash: [u8; 32], flags: AuthDataFlags, sign_count: u32) -> Self {
        AuthenticatorData {
            rp_id_hash,
            flags: flags
                .with(AuthDataFlags::AT, false)
                .with(AuthDataFlags::ED, false),
            sign_count,
            attested_credential: None,
            extensions: None,
        }
    }

    /// Adds attested credential data (sets AT).
    pub fn with_attested_credential(mut self, data: AttestedCredentialData) -> Self {
        self.attested_credential = Some(data);
        self.flags = self.flags.with(AuthDataFlags::AT, true);
        self
    }

    /// Adds an extensions map (sets ED). The map must have text keys; it is encoded
    /// canonically.
    pub fn with_extensions(mut self, extensions: Value) -> Result<Self, AuthDataError> {
        check_extensions(&extensions).map_err(AuthDataError::Extensions)?;
        let raw = cbor::encode(&extensions);
        // Keep the value in wire (canonical) order, as parsing would.
        let value = cbor::decode(&raw).map_err(AuthDataError::Extensions)?;
        self.extensions = Some(Extensions { value, raw });
        self.flags = self.flags.with(AuthDataFlags::ED, true);
        Ok(self)
    }

    /// Parses authenticator data strictly (see the module docs).
    pub fn parse(bytes: &[u8]) -> Result<Self, AuthDataError> {
        let (header, mut rest) = match bytes.split_at_checked(HEADER_LEN) {
            Some(parts) => parts,
            None => return Err(AuthDataError::TooShort { len: bytes.len() }),
        };
        let mut rp_id_hash = [0u8; 32];
        rp_id_hash.copy_from_slice(&header[..32]);
        let flags = AuthDataFlags(header[32]);
        let mut count = [0u8; 4];
        count.copy_from_slice(&header[33..37]);
        let sign_count = u32::from_be_bytes(count);

        let attested_credential = if flags.contains(AuthDataFlags::AT) {
            if rest.is_empty() {
                return Err(AuthDataError::AttestedCredentialDataMissing);
            }
            let (data, used) = parse_attested(rest)?;
            rest = rest.get(used..).unwrap_or_default();
            Some(data)
        } else {
            None
        };

        let extensions = if flags.contains(AuthDataFlags::ED) {
            if rest.is_empty() {
                return Err(AuthDataError::ExtensionsMissing);
            }
            let (value, used) = cbor::decode_prefix_with(rest, Limits::RESPONSE)
                .map_err(AuthDataError::Extensions)?;
            check_extensions(&value).map_err(AuthDataError::Extensions)?;
            let raw = rest.get(..used).unwrap_or_default().to_vec();
            rest = rest.get(used..).unwrap_or_default();
            Some(Extensions { value, raw })
        } else {
            None
        };

        if !rest.is_empty() {
            return Err(AuthDataError::TrailingBytes {
                offset: bytes.len() - rest.len(),
                count: rest.len(),
            });
        }
        Ok(AuthenticatorData {
            rp_id_hash,
            flags,
            sign_count,
            attested_credential,
            extensions,
        })
    }

    /// The bytes of this authenticator data. For parsed data these are the input bytes.
    /// The AT and ED bits follow what is present.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + 256);
        out.extend_from_slice(&self.rp_id_hash);
        let flags = self
            .flags
            .with(AuthDataFlags::AT, self.attested_credential.is_some())
            .with(AuthDataFlags::ED, self.extensions.is_some());
        out.push(flags.bits());
        out.extend_from_slice(&self.sign_count.to_be_bytes());
        if let Some(a) = &self.attested_credential {
            a.write(&mut out);
        }
        if let Some(e) = &self.extensions {
            out.extend_from_slice(&e.raw);
        }
        out
    }

    /// SHA-256 of the RP id.
    pub fn rp_id_hash(&self) -> &[u8; 32] {
        &self.rp_id_hash
    }

    /// Whether this data is for `rp_id`.
    pub fn is_for_rp_id(&self, rp_id: &str) -> bool {
        self.rp_id_hash == rp_id_hash(rp_id)
    }

    /// The flags.
    pub fn flags(&self) -> AuthDataFlags {
        self.flags
    }

    /// The signature counter.
    pub fn sign_count(&self) -> u32 {
        self.sign_count
    }

    /// The attested credential data, present when AT is set.
    pub fn attested_credential(&self) -> Option<&AttestedCredentialData> {
        self.attested_credential.as_ref()
    }

    /// The extensions map as decoded, present when ED is set.
    pub fn extensions(&self) -> Option<&Value> {
        self.extensions.as_ref().map(|e| &e.value)
    }

    fn extension(&self, name: &str) -> Option<&Value> {
        let map = self.extensions()?.as_map("extensions").ok()?;
        map.get_text(name)
    }

    /// The `credProtect` level (1..=3) the authenticator applied.
    pub fn cred_protect(&self) -> Option<u8> {
        self.extension("credProtect")?.as_u8("credProtect").ok()
    }

    /// `hmac-secret` in a makeCredential response: whether the secret was created.
    pub fn hmac_secret_created(&self) -> Option<bool> {
        self.extension("hmac-secret")?.as_bool("hmac-secret").ok()
    }

    /// `hmac-secret` in a getAssertion response: the encrypted output.
    pub fn hmac_secret_output(&self) -> Option<&[u8]> {
        self.extension("hmac-secret")?.as_bytes("hmac-secret").ok()
    }

    /// `minPinLength`: the current minimum PIN length.
    pub fn min_pin_length(&self) -> Option<u32> {
        self.extension("minPinLength")?.as_u32("minPinLength").ok()
    }

    /// `credBlob` in a makeCredential response: whether the blob was stored.
    pub fn cred_blob_stored(&self) -> Option<bool> {
        self.extension("credBlob")?.as_bool("credBlob").ok()
    }

    /// `credBlob` in a getAssertion response: the blob.
    pub fn cred_blob(&self) -> Option<&[u8]> {
        self.extension("credBlob")?.as_bytes("credBlob").ok()
    }
}

fn parse_attested(bytes: &[u8]) -> Result<(AttestedCredentialData, usize), AuthDataError> {
    let truncated = |field, needed| AuthDataError::Truncated {
        field,
        needed,
        available: bytes.len(),
    };
    let aaguid: [u8; 16] = bytes
        .get(..16)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| truncated("attestedCredentialData.aaguid", 16))?;
    let len_bytes: [u8; 2] = bytes
        .get(16..18)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| truncated("attestedCredentialData.credentialIdLength", 18))?;
    let id_len = usize::from(u16::from_be_bytes(len_bytes));
    if id_len > MAX_CREDENTIAL_ID_LEN {
        return Err(AuthDataError::CredentialIdTooLong { len: id_len });
    }
    let credential_id = bytes
        .get(18..18 + id_len)
        .ok_or_else(|| truncated("attestedCredentialData.credentialId", 18 + id_len))?
        .to_vec();
    let key_start = 18 + id_len;
    let key_bytes = bytes.get(key_start..).unwrap_or_default();
    if key_bytes.is_empty() {
        return Err(truncated(
            "attestedCredentialData.credentialPublicKey",
            key_start + 1,
        ));
    }
    let (public_key, used) =
        CoseKey::from_cbor_canonical_prefix(key_bytes).map_err(AuthDataError::PublicKey)?;
    let public_key_bytes = key_bytes.get(..used).unwrap_or_default().to_vec();
    Ok((
        AttestedCredentialData {
            aaguid,
            credential_id,
            public_key,
            public_key_bytes,
        },
        key_start + used,
    ))
}

/// Extensions must be a map with text keys; the known ones must have their types.
fn check_extensions(value: &Value) -> Result<(), CborError> {
    let map = value.as_map("extensions")?;
    for (k, v) in map.entries() {
        let name = k.as_text("extensions key")?;
        match name {
            "credProtect" => {
                let level = v.as_u8("extensions.credProtect")?;
                if !(1..=3).contains(&level) {
                    return Err(CborError::InvalidValue {
                        field: "extensions.credProtect",
                        reason: format!("level {level} is not 1, 2 or 3"),
                    });
                }
            }
            "minPinLength" => {
                v.as_u32("extensions.minPinLength")?;
            }
            "hmac-secret" | "credBlob" if !matches!(v, Value::Bool(_) | Value::Bytes(_)) => {
                return Err(CborError::WrongType {
                    field: if name == "credBlob" {
                        "extensions.credBlob"
                    } else {
                        "extensions.hmac-secret"
                    },
                    expected: "boolean or byte string",
                    found: v.type_name(),
                });
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cose::ALG_ES256;

    fn key() -> CoseKey {
        CoseKey::Ec2 {
            alg: ALG_ES256,
            x: [1; 32],
            y: [2; 32],
        }
    }

    fn sample() -> AuthenticatorData {
        let acd = AttestedCredentialData::new([3; 16], vec![4; 20], key()).unwrap();
        AuthenticatorData::new(rp_id_hash("example.com"), AuthDataFlags::UP, 7)
            .with_attested_credential(acd)
            .with_extensions(Value::map([
                ("credProtect", Value::from(2u8)),
                ("hmac-secret", Value::Bool(true)),
            ]))
            .unwrap()
    }

    #[test]
    fn round_trip_with_everything() {
        let ad = sample();
        let bytes = ad.to_bytes();
        assert_eq!(bytes[32], 0x01 | 0x40 | 0x80);
        let parsed = AuthenticatorData::parse(&bytes).unwrap();
        assert_eq!(parsed, ad);
        assert_eq!(parsed.cred_protect(), Some(2));
        assert_eq!(parsed.hmac_secret_created(), Some(true));
        assert_eq!(parsed.min_pin_length(), None);
        assert!(parsed.is_for_rp_id("example.com"));
        assert_eq!(parsed.to_bytes(), bytes);
    }

    #[test]
    fn at_flag_without_data_is_rejected() {
        let mut bytes = AuthenticatorData::new([0; 32], AuthDataFlags::UP, 1).to_bytes();
        bytes[32] |= 0x40;
        assert_eq!(
            AuthenticatorData::parse(&bytes),
            Err(AuthDataError::AttestedCredentialDataMissing)
        );
        bytes[32] = 0x81;
        assert_eq!(
            AuthenticatorData::parse(&bytes),
            Err(AuthDataError::ExtensionsMissing)
        );
    }

    #[test]
    fn data_without_at_flag_is_trailing() {
        let mut bytes = sample().to_bytes();
        bytes[32] &= !0x40 & !0x80;
        assert_eq!(
            AuthenticatorData::parse(&bytes),
            Err(AuthDataError::TrailingBytes {
                offset: 37,
                count: bytes.len() - 37
            })
        );
    }

    #[test]
    fn long_credential_id_is_rejected() {
        assert_eq!(
            AttestedCredentialData::new([0; 16], vec![0; 1024], key()),
            Err(AuthDataError::CredentialIdTooLong { len: 1024 })
        );
        let mut bytes = sample().to_bytes();
        bytes[53] = 0x04; // credentialIdLength = 0x0414
        assert_eq!(
            AuthenticatorData::parse(&bytes),
            Err(AuthDataError::CredentialIdTooLong { len: 0x0414 })
        );
    }

    #[test]
    fn bad_extension_type_is_rejected() {
        let err = AuthenticatorData::new([0; 32], AuthDataFlags::UP, 0)
            .with_extensions(Value::map([("credProtect", Value::from("high"))]))
            .unwrap_err();
        assert!(matches!(
            err,
            AuthDataError::Extensions(CborError::WrongType { .. })
        ));
        let err = AuthenticatorData::new([0; 32], AuthDataFlags::UP, 0)
            .with_extensions(Value::map([("credProtect", Value::from(4u8))]))
            .unwrap_err();
        assert!(matches!(
            err,
            AuthDataError::Extensions(CborError::InvalidValue { .. })
        ));
    }

    #[test]
    fn every_truncation_is_an_error() {
        let bytes = sample().to_bytes();
        for n in 0..bytes.len() {
            assert!(AuthenticatorData::parse(&bytes[..n]).is_err(), "prefix {n}");
        }
    }

    #[test]
    fn flags_keep_unknown_bits() {
        let f = AuthDataFlags::from_bits(0x23);
        assert!(f.user_present());
        assert!(!f.user_verified());
        assert_eq!(f.unknown_bits(), 0x22);
        assert_eq!(f.bits(), 0x23);
    }
}
