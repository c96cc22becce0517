//! WebAuthn clientDataJSON (`CollectedClientData`, WebAuthn §5.8.1): builder with the
//! standard serialization, strict parser, and verification against what the relying
//! party expected.
//!
//! A verifier must hash the clientDataJSON bytes it actually received
//! ([`client_data_hash`]), not a re-serialization: [`CollectedClientData::to_json`]
//! reproduces only the members this type knows.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sha2::{Digest, Sha256};

/// Largest clientDataJSON the parser accepts.
pub const MAX_CLIENT_DATA_LEN: usize = 64 * 1024;

/// What is wrong with clientDataJSON, or how it differs from what was expected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientDataError {
    /// The input is larger than [`MAX_CLIENT_DATA_LEN`].
    #[error("clientDataJSON of {len} bytes exceeds the limit of {limit}")]
    TooLarge {
        /// Input length.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// The input is not valid UTF-8.
    #[error("clientDataJSON is not valid UTF-8")]
    InvalidUtf8,
    /// The input is not valid JSON.
    #[error("clientDataJSON is not valid JSON: {0}")]
    InvalidJson(String),
    /// The top-level JSON value is not an object.
    #[error("clientDataJSON is not a JSON object")]
    NotAnObject,
    /// A top-level member appears twice (JSON parsers disagree on which one wins).
    #[error("clientDataJSON has a duplicate member: {0}")]
    DuplicateMember(String),
    /// A required member is absent.
    #[error("clientDataJSON.{0} is missing")]
    MissingField(&'static str),
    /// A member has the wrong JSON type.
    #[error("clientDataJSON.{field}: expected {expected}")]
    WrongFieldType {
        /// The member.
        field: &'static str,
        /// The JSON type it must have.
        expected: &'static str,
    },
    /// `challenge` is not unpadded base64url.
    #[error("clientDataJSON.challenge is not unpadded base64url")]
    InvalidChallengeEncoding,
    /// `type` is not the expected one.
    #[error("clientDataJSON.type is {found:?}, expected {expected:?}")]
    WrongType {
        /// The expected type.
        expected: String,
        /// The type found.
        found: String,
    },
    /// `challenge` differs from the challenge that was issued.
    #[error("clientDataJSON.challenge does not match the issued challenge")]
    ChallengeMismatch,
    /// `origin` is not one of the allowed origins.
    #[error("clientDataJSON.origin {origin:?} is not an allowed origin")]
    OriginMismatch {
        /// The origin found.
        origin: String,
    },
}

/// The ceremony a clientDataJSON belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ClientDataType {
    /// `webauthn.create` (registration).
    Create,
    /// `webauthn.get` (authentication).
    Get,
    /// Any other string (kept so verification can report it).
    Other(String),
}

impl ClientDataType {
    /// The wire string.
    pub fn as_str(&self) -> &str {
        match self {
            ClientDataType::Create => "webauthn.create",
            ClientDataType::Get => "webauthn.get",
            ClientDataType::Other(s) => s,
        }
    }

    fn from_wire(s: &str) -> Self {
        match s {
            "webauthn.create" => ClientDataType::Create,
            "webauthn.get" => ClientDataType::Get,
            other => ClientDataType::Other(other.to_owned()),
        }
    }
}

/// WebAuthn `CollectedClientData`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CollectedClientData {
    /// `type`.
    pub type_: ClientDataType,
    /// `challenge`, decoded (base64url without padding on the wire).
    pub challenge: Vec<u8>,
    /// `origin`, e.g. `https://login.microsoft.com`.
    pub origin: String,
    /// `crossOrigin` (false when absent).
    pub cross_origin: bool,
    /// `topOrigin`, only meaningful when `cross_origin` is true.
    pub top_origin: Option<String>,
}

/// SHA-256 of clientDataJSON bytes: the `clientDataHash` CTAP takes.
pub fn client_data_hash(client_data_json: &[u8]) -> [u8; 32] {
    Sha256::digest(client_data_json).into()
}

impl CollectedClientData {
    /// Client data for a same-origin ceremony.
    pub fn new(type_: ClientDataType, challenge: Vec<u8>, origin: impl Into<String>) -> Self {
        CollectedClientData {
            type_,
            challenge,
            origin: origin.into(),
            cross_origin: false,
            top_origin: None,
        }
    }

    /// The WebAuthn serialization (§5.8.1.1): `type`, `challenge`, `origin`,
    /// `crossOrigin`, then `topOrigin` when set; no whitespace.
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(128 + self.origin.len());
        out.push_str("{\"type\":");
        push_json_string(&mut out, self.type_.as_str());
        out.push_str(",\"challenge\":");
        push_json_string(&mut out, &URL_SAFE_NO_PAD.encode(&self.challenge));
        out.push_str(",\"origin\":");
        push_json_string(&mut out, &self.origin);
        out.push_str(",\"crossOrigin\":");
        out.push_str(if self.cross_origin { "true" } else { "false" });
        if let Some(top) = &self.top_origin {
            out.push_str(",\"topOrigin\":");
            push_json_string(&mut out, top);
        }
        out.push('}');
        out
    }

    /// SHA-256 of [`to_json`](Self::to_json).
    pub fn hash(&self) -> [u8; 32] {
        client_data_hash(self.to_json().as_bytes())
    }

    /// Parses clientDataJSON strictly: UTF-8 JSON object with string `type`, `challenge`
    /// (unpadded base64url) and `origin`; `crossOrigin` boolean and `topOrigin` string
    /// when present. Other members are ignored.
    pub fn parse(bytes: &[u8]) -> Result<Self, ClientDataError> {
        if bytes.len() > MAX_CLIENT_DATA_LEN {
            return Err(ClientDataError::TooLarge {
                len: bytes.len(),
                limit: MAX_CLIENT_DATA_LEN,
            });
        }
        let text = std::str::from_utf8(bytes).map_err(|_| ClientDataError::InvalidUtf8)?;
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| ClientDataError::InvalidJson(e.to_string()))?;
        let obj = value.as_object().ok_or(ClientDataError::NotAnObject)?;
        serde_json::from_str::<UniqueMembers>(text)
            .map_err(|e| ClientDataError::DuplicateMember(e.to_string()))?;
        let string = |field: &'static str| -> Result<Option<&str>, ClientDataError> {
            match obj.get(field) {
                None => Ok(None),
                Some(v) => v.as_str().map(Some).ok_or(ClientDataError::WrongFieldType {
                    field,
                    expected: "string",
                }),
            }
        };
        let required =
            |field: &'static str| string(field)?.ok_or(ClientDataError::MissingField(field));
        let type_ = ClientDataType::from_wire(required("type")?);
        let challenge = URL_SAFE_NO_PAD
            .decode(required("challenge")?)
            .map_err(|_| ClientDataError::InvalidChallengeEncoding)?;
        let origin = required("origin")?.to_owned();
        let cross_origin = match obj.get("crossOrigin") {
            None => false,
            Some(v) => v.as_bool().ok_or(ClientDataError::WrongFieldType {
                field: "crossOrigin",
                expected: "boolean",
            })?,
        };
        let top_origin = string("topOrigin")?.map(str::to_owned);
        Ok(CollectedClientData {
            type_,
            challenge,
            origin,
            cross_origin,
            top_origin,
        })
    }

    /// Checks type, challenge and origin against what the relying party expects
    /// (`expected_origins` are compared exactly). `crossOrigin`/`topOrigin` policy is
    /// the caller's.
    pub fn verify(
        &self,
        expected_type: &ClientDataType,
        expected_challenge: &[u8],
        expected_origins: &[&str],
    ) -> Result<(), ClientDataError> {
        if &self.type_ != expected_type {
            return Err(ClientDataError::WrongType {
                expected: expected_type.as_str().to_owned(),
                found: self.type_.as_str().to_owned(),
            });
        }
        if self.challenge != expected_challenge {
            return Err(ClientDataError::ChallengeMismatch);
        }
        if !expected_origins.iter().any(|o| *o == self.origin) {
            return Err(ClientDataError::OriginMismatch {
                origin: self.origin.clone(),
            });
        }
        Ok(())
    }
}

/// Deserializes a JSON object only to reject repeated top-level member names.
struct UniqueMembers;

impl<'de> serde::Deserialize<'de> for UniqueMembers {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = UniqueMembers;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<UniqueMembers, A::Error> {
                let mut seen = std::collections::HashSet::new();
                while let Some(key) = map.next_key::<String>()? {
                    map.next_value::<serde::de::IgnoredAny>()?;
                    if !seen.insert(key.clone()) {
                        return Err(serde::de::Error::custom(format!("{key:?}")));
                    }
                }
                Ok(UniqueMembers)
            }
        }
        d.deserialize_map(Visitor)
    }
}

/// Appends `s` as a JSON string the way WebAuthn's CCDToString does: `"` and `\`
/// escaped with a backslash, other code points below U+0020 as `\u00xx`.
fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialization_order_and_escaping() {
        let mut cd =
            CollectedClientData::new(ClientDataType::Get, vec![0xfb, 0xff], "https://a\"b");
        assert_eq!(
            cd.to_json(),
            r#"{"type":"webauthn.get","challenge":"-_8","origin":"https://a\"b","crossOrigin":false}"#
        );
        cd.cross_origin = true;
        cd.top_origin = Some("https://top\n".into());
        assert_eq!(
            cd.to_json(),
            r#"{"type":"webauthn.get","challenge":"-_8","origin":"https://a\"b","crossOrigin":true,"topOrigin":"https://top\u000a"}"#
        );
        assert_eq!(
            CollectedClientData::parse(cd.to_json().as_bytes()).unwrap(),
            cd
        );
    }

    #[test]
    fn duplicate_member_is_rejected() {
        let json = br#"{"type":"webauthn.get","challenge":"AA","origin":"a","origin":"b"}"#;
        assert!(matches!(
            CollectedClientData::parse(json),
            Err(ClientDataError::DuplicateMember(m)) if m.contains("origin")
        ));
    }

    #[test]
    fn padded_challenge_is_rejected() {
        let json = br#"{"type":"webauthn.get","challenge":"-_8=","origin":"x"}"#;
        assert_eq!(
            CollectedClientData::parse(json),
            Err(ClientDataError::InvalidChallengeEncoding)
        );
    }
}
