//! WebAuthn entities carried by several commands, and a redacting byte buffer.

use core::fmt;

use zeroize::Zeroize;

use super::MapBuilder;
use crate::cbor::{CborError, Value};

/// Secret bytes (an encrypted PIN token, a large-blob key): zeroized on drop,
/// redacted in `Debug`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretBytes(Vec<u8>);

impl SecretBytes {
    /// Wraps the bytes.
    pub fn new(bytes: Vec<u8>) -> Self {
        SecretBytes(bytes)
    }
    /// The bytes.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
    /// How many bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }
    /// True if there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<Vec<u8>> for SecretBytes {
    fn from(bytes: Vec<u8>) -> Self {
        SecretBytes(bytes)
    }
}

impl From<&[u8]> for SecretBytes {
    fn from(bytes: &[u8]) -> Self {
        SecretBytes(bytes.to_vec())
    }
}

impl Drop for SecretBytes {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBytes(<{} bytes redacted>)", self.0.len())
    }
}

impl From<&SecretBytes> for Value {
    fn from(s: &SecretBytes) -> Self {
        Value::Bytes(s.0.clone())
    }
}

/// PublicKeyCredentialRpEntity: `{id, name}` (icon of CTAP 2.0 ignored).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RpEntity {
    /// The RP id (a domain). Required in makeCredential; may be the only field in
    /// credentialManagement answers.
    pub id: String,
    /// Human-palatable name.
    pub name: Option<String>,
}

impl RpEntity {
    /// Reads `{id, name}`.
    pub fn from_value(v: &Value) -> Result<Self, CborError> {
        let m = v.as_map("rp")?;
        Ok(RpEntity {
            id: m.require_text("id", "rp.id")?.as_text("rp.id")?.to_owned(),
            name: m
                .get_text("name")
                .map(|v| v.as_text("rp.name").map(str::to_owned))
                .transpose()?,
        })
    }
    /// As a CBOR map.
    pub fn to_value(&self) -> Value {
        MapBuilder::new()
            .put_text("id", self.id.as_str())
            .put_text_opt("name", self.name.as_deref())
            .build()
    }
}

/// PublicKeyCredentialUserEntity: `{id, name, displayName}`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserEntity {
    /// The user handle (at most 64 bytes per WebAuthn; not enforced here).
    pub id: Vec<u8>,
    /// Account name (e.g. `alice@contoso.com`).
    pub name: Option<String>,
    /// Display name.
    pub display_name: Option<String>,
}

impl UserEntity {
    /// Reads `{id, name, displayName}`.
    pub fn from_value(v: &Value) -> Result<Self, CborError> {
        let m = v.as_map("user")?;
        Ok(UserEntity {
            id: m
                .require_text("id", "user.id")?
                .as_bytes("user.id")?
                .to_vec(),
            name: m
                .get_text("name")
                .map(|v| v.as_text("user.name").map(str::to_owned))
                .transpose()?,
            display_name: m
                .get_text("displayName")
                .map(|v| v.as_text("user.displayName").map(str::to_owned))
                .transpose()?,
        })
    }
    /// As a CBOR map.
    pub fn to_value(&self) -> Value {
        MapBuilder::new()
            .put_text("id", self.id.clone())
            .put_text_opt("name", self.name.as_deref())
            .put_text_opt("displayName", self.display_name.as_deref())
            .build()
    }
}

/// PublicKeyCredentialDescriptor: `{type, id, transports}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CredentialDescriptor {
    /// Credential type, `"public-key"` in practice (others are kept as sent).
    pub cred_type: String,
    /// Credential id.
    pub id: Vec<u8>,
    /// Transport hints, if any.
    pub transports: Option<Vec<String>>,
}

impl CredentialDescriptor {
    /// A `public-key` descriptor without transports.
    pub fn public_key(id: Vec<u8>) -> Self {
        CredentialDescriptor {
            cred_type: "public-key".to_owned(),
            id,
            transports: None,
        }
    }
    /// Reads `{type, id, transports}`.
    pub fn from_value(v: &Value) -> Result<Self, CborError> {
        let m = v.as_map("credentialDescriptor")?;
        Ok(CredentialDescriptor {
            cred_type: m
                .require_text("type", "credentialDescriptor.type")?
                .as_text("credentialDescriptor.type")?
                .to_owned(),
            id: m
                .require_text("id", "credentialDescriptor.id")?
                .as_bytes("credentialDescriptor.id")?
                .to_vec(),
            transports: m
                .get_text("transports")
                .map(|v| v.as_text_array("credentialDescriptor.transports"))
                .transpose()?,
        })
    }
    /// As a CBOR map.
    pub fn to_value(&self) -> Value {
        MapBuilder::new()
            .put_text("type", self.cred_type.as_str())
            .put_text("id", self.id.clone())
            .put_text_opt(
                "transports",
                self.transports
                    .as_ref()
                    .map(|t| Value::Array(t.iter().map(|s| Value::from(s.as_str())).collect())),
            )
            .build()
    }
}

/// PublicKeyCredentialParameters: `{type, alg}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKeyCredentialParameters {
    /// Credential type, `"public-key"` in practice.
    pub cred_type: String,
    /// COSE algorithm identifier (e.g. -7 for ES256).
    pub alg: i64,
}

impl PublicKeyCredentialParameters {
    /// A `public-key` entry for `alg`.
    pub fn public_key(alg: i64) -> Self {
        PublicKeyCredentialParameters {
            cred_type: "public-key".to_owned(),
            alg,
        }
    }
    /// Reads `{type, alg}`.
    pub fn from_value(v: &Value) -> Result<Self, CborError> {
        let m = v.as_map("pubKeyCredParams")?;
        Ok(PublicKeyCredentialParameters {
            cred_type: m
                .require_text("type", "pubKeyCredParams.type")?
                .as_text("pubKeyCredParams.type")?
                .to_owned(),
            alg: m
                .require_text("alg", "pubKeyCredParams.alg")?
                .as_i64("pubKeyCredParams.alg")?,
        })
    }
    /// As a CBOR map.
    pub fn to_value(&self) -> Value {
        MapBuilder::new()
            .put_text("type", self.cred_type.as_str())
            .put_text("alg", self.alg)
            .build()
    }
}
