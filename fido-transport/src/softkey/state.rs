//! The authenticator's persistent state and its JSON form.

use core::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::Zeroize;

/// Version of the JSON state format.
pub(crate) const STATE_FORMAT: u32 = 1;

/// Secret bytes kept in the state (keys, PIN hash): zeroized on drop, redacted in
/// `Debug`, written to the state file as lowercase hex.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(Vec<u8>);

impl Secret {
    pub(crate) fn new(bytes: Vec<u8>) -> Self {
        Secret(bytes)
    }
    pub(crate) fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret(<{} bytes redacted>)", self.0.len())
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut text = hex_encode(&self.0);
        let r = s.serialize_str(&text);
        text.zeroize();
        r
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut text = String::deserialize(d)?;
        let r = hex_decode(&text)
            .map(Secret)
            .map_err(serde::de::Error::custom);
        text.zeroize();
        r
    }
}

/// Plain (non-secret) bytes written as hex.
pub(crate) mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::hex_encode(v))
    }
    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        super::hex_decode(&text).map_err(serde::de::Error::custom)
    }
}

/// Lower-case hex through base16ct (constant-time: the state holds the master and
/// attestation keys).
pub(crate) fn hex_encode(bytes: &[u8]) -> String {
    base16ct::lower::encode_string(bytes)
}

/// Hex of either case through base16ct (constant-time).
pub(crate) fn hex_decode(text: &str) -> Result<Vec<u8>, String> {
    base16ct::mixed::decode_vec(text).map_err(|e| format!("not hex: {e}"))
}

/// The stored PIN: its hash and length (to tell whether a raised minimum forces a
/// change).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredPin {
    /// `LEFT(SHA-256(pin), 16)`.
    pub(crate) hash: Secret,
    /// Length in Unicode code points.
    pub code_points: usize,
}

/// A discoverable credential.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResidentCredential {
    /// The credential id.
    #[serde(with = "hex_bytes")]
    pub id: Vec<u8>,
    /// The RP id.
    pub rp_id: String,
    /// The RP name, if given.
    pub rp_name: Option<String>,
    /// The user handle.
    #[serde(with = "hex_bytes")]
    pub user_id: Vec<u8>,
    /// The user name, if given.
    pub user_name: Option<String>,
    /// The user display name, if given.
    pub user_display_name: Option<String>,
    /// credProtect level (1, 2 or 3).
    pub cred_protect: u8,
    /// The credBlob, if one was stored.
    pub cred_blob: Option<Secret>,
    /// The large-blob key, if one was requested.
    pub large_blob_key: Option<Secret>,
    /// Creation order (larger is newer).
    pub created: u64,
}

/// An enrolled (simulated) fingerprint template.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Template {
    /// Template id.
    #[serde(with = "hex_bytes")]
    pub id: Vec<u8>,
    /// Friendly name.
    pub name: Option<String>,
}

/// Everything the authenticator remembers across power cycles. Written to the state
/// file as JSON **including private keys in clear**: this is a test authenticator.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SoftState {
    pub(crate) format: u32,
    /// Master key that wraps credential ids and derives credential keys.
    pub(crate) master_key: Secret,
    /// The attestation private key (P-256 scalar).
    pub(crate) attestation_key: Secret,
    /// The PIN, if set.
    pub pin: Option<StoredPin>,
    /// PIN retries left.
    pub pin_retries: u8,
    /// Built-in UV retries left.
    pub uv_retries: u8,
    /// Current minimum PIN length.
    pub min_pin_length: u8,
    /// RP ids that may read the minimum PIN length.
    pub min_pin_length_rpids: Vec<String>,
    /// The PIN must be changed before use.
    pub force_pin_change: bool,
    /// The alwaysUv option.
    pub always_uv: bool,
    /// Enterprise attestation enabled.
    pub enterprise_attestation: bool,
    /// Global signature counter.
    pub sign_count: u32,
    /// Discoverable credentials.
    pub credentials: Vec<ResidentCredential>,
    /// The serialized large-blob array (with its 16-byte hash trailer).
    #[serde(with = "hex_bytes")]
    pub large_blob_array: Vec<u8>,
    /// Enrolled fingerprint templates.
    pub templates: Vec<Template>,
    /// Counter for creation order and template ids.
    pub(crate) next_serial: u64,
}

/// The empty serialized large-blob array: CBOR `[]` and the first 16 bytes of its
/// SHA-256.
pub(crate) fn empty_large_blob_array() -> Vec<u8> {
    use sha2::{Digest, Sha256};
    let mut v = vec![0x80];
    let d = Sha256::digest([0x80u8]);
    v.extend_from_slice(d.get(..16).unwrap_or_default());
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_errors() {
        assert_eq!(hex_encode(&[0x00, 0xab, 0xff]), "00abff");
        assert_eq!(hex_decode("00abFF"), Ok(vec![0x00, 0xab, 0xff]));
        assert!(hex_decode("abc").is_err());
        assert!(hex_decode("zz").is_err());
    }

    #[test]
    fn empty_array_has_known_trailer() {
        // SHA-256(0x80) starts with 76be8b528d0075f7aae98d6fa57a6d3c.
        assert_eq!(
            hex_encode(&empty_large_blob_array()),
            "8076be8b528d0075f7aae98d6fa57a6d3c"
        );
    }

    #[test]
    fn secret_debug_is_redacted() {
        let s = Secret::new(vec![1, 2, 3]);
        assert_eq!(format!("{s:?}"), "Secret(<3 bytes redacted>)");
    }
}
