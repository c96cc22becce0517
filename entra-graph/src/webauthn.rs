//! Building the WebAuthn registration body from creation options and a makeCredential
//! result, without depending on the transport crate.
//!
//! Flow: [`ClientData::for_creation`] gives the clientDataJSON and the hash the
//! authenticator must sign (`clientDataHash` of makeCredential); the key's answer comes
//! back as [`MakeCredentialResult`] (authData, fmt, attStmt CBOR); [`build_registration`]
//! turns both into the body of `POST .../fido2Methods`.

use fido_core::cbor::{self, Value};
use sha2::{Digest, Sha256};

use crate::ids::{decode_b64url_strict, encode_b64url};
use crate::wire::{
    AttestationResponse, ClientExtensionResults, CreationOptions, PublicKeyCredential,
    RegistrationBody,
};
use crate::GraphError;

/// Longest display name Entra accepts (characters).
pub const MAX_DISPLAY_NAME_CHARS: usize = 30;

/// authData flag: user present.
pub const FLAG_UP: u8 = 0x01;
/// authData flag: user verified.
pub const FLAG_UV: u8 = 0x04;
/// authData flag: attested credential data included.
pub const FLAG_AT: u8 = 0x40;

/// The clientDataJSON of a registration and its SHA-256 (the `clientDataHash` the
/// authenticator signs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientData {
    /// The exact JSON bytes (as text).
    pub json: String,
    /// SHA-256 of `json`.
    pub hash: [u8; 32],
}

impl ClientData {
    /// Builds clientDataJSON the way every working tool does:
    /// `{"type":"webauthn.create","challenge":"…","origin":"https://<rp.id>","crossOrigin":false}`.
    /// `origin` overrides the default `https://{rp.id}` (a template may pin it).
    pub fn for_creation(
        options: &CreationOptions,
        origin: Option<&str>,
    ) -> Result<Self, GraphError> {
        let challenge = &options.public_key.challenge;
        // The challenge goes through verbatim; it must already be base64url.
        decode_b64url_strict(challenge, "publicKey.challenge")?;
        let origin = match origin {
            Some(o) => o.to_owned(),
            None => format!("https://{}", options.public_key.rp.id),
        };
        // Member order as browsers and every working tool write it.
        let quote = |v: &str| serde_json::Value::from(v).to_string();
        let json = format!(
            r#"{{"type":"webauthn.create","challenge":{},"origin":{},"crossOrigin":false}}"#,
            quote(challenge),
            quote(&origin)
        );
        let hash = Sha256::digest(json.as_bytes()).into();
        Ok(ClientData { json, hash })
    }
}

/// What an authenticator's makeCredential returned, as plain bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MakeCredentialResult {
    /// Authenticator data (with attested credential data).
    pub auth_data: Vec<u8>,
    /// Attestation statement format (`packed`, `none`, ...).
    pub fmt: String,
    /// The attestation statement, CBOR-encoded (a map; `{}` = `a0` for `none`).
    pub att_stmt: Vec<u8>,
}

/// The parts of authenticator data the registration needs.
#[derive(Clone, Debug, PartialEq)]
pub struct AttestedCredential {
    /// SHA-256 of the RP id.
    pub rp_id_hash: [u8; 32],
    /// Flags byte.
    pub flags: u8,
    /// Signature counter.
    pub sign_count: u32,
    /// AAGUID.
    pub aaguid: [u8; 16],
    /// Credential id.
    pub credential_id: Vec<u8>,
    /// The credential public key (COSE, as decoded CBOR).
    pub public_key: Value,
}

fn take<'a>(data: &mut &'a [u8], n: usize, field: &'static str) -> Result<&'a [u8], GraphError> {
    if data.len() < n {
        return Err(GraphError::InvalidInput {
            field,
            reason: format!(
                "authenticator data too short: need {n} more bytes, have {}",
                data.len()
            ),
        });
    }
    let (head, tail) = data.split_at(n);
    *data = tail;
    Ok(head)
}

/// Parses authenticator data that must carry attested credential data.
pub fn parse_attested_credential(auth_data: &[u8]) -> Result<AttestedCredential, GraphError> {
    let mut d = auth_data;
    let mut rp_id_hash = [0u8; 32];
    rp_id_hash.copy_from_slice(take(&mut d, 32, "authData.rpIdHash")?);
    let flags = take(&mut d, 1, "authData.flags")?[0];
    let mut counter = [0u8; 4];
    counter.copy_from_slice(take(&mut d, 4, "authData.signCount")?);
    if flags & FLAG_AT == 0 {
        return Err(GraphError::InvalidInput {
            field: "authData.flags",
            reason: "AT flag not set: no attested credential data".into(),
        });
    }
    let mut aaguid = [0u8; 16];
    aaguid.copy_from_slice(take(&mut d, 16, "authData.aaguid")?);
    let mut len = [0u8; 2];
    len.copy_from_slice(take(&mut d, 2, "authData.credentialIdLength")?);
    let len = usize::from(u16::from_be_bytes(len));
    if len == 0 || len > 1023 {
        return Err(GraphError::InvalidInput {
            field: "authData.credentialIdLength",
            reason: format!("{len} is outside 1..=1023"),
        });
    }
    let credential_id = take(&mut d, len, "authData.credentialId")?.to_vec();
    let (public_key, _used) =
        cbor::decode_prefix_with(d, cbor::Limits::default()).map_err(|e| {
            GraphError::InvalidInput {
                field: "authData.credentialPublicKey",
                reason: e.to_string(),
            }
        })?;
    Ok(AttestedCredential {
        rp_id_hash,
        flags,
        sign_count: u32::from_be_bytes(counter),
        aaguid,
        credential_id,
        public_key,
    })
}

/// Checks a display name the way Entra does (1–30 characters, no control characters).
pub fn validate_display_name(name: &str) -> Result<(), GraphError> {
    let chars = name.chars().count();
    if chars == 0 || chars > MAX_DISPLAY_NAME_CHARS {
        return Err(GraphError::InvalidInput {
            field: "displayName",
            reason: format!("{chars} characters; Entra accepts 1 to {MAX_DISPLAY_NAME_CHARS}"),
        });
    }
    if name.chars().any(char::is_control) {
        return Err(GraphError::InvalidInput {
            field: "displayName",
            reason: "contains control characters".into(),
        });
    }
    Ok(())
}

/// Builds the attestation object CBOR (`{"fmt", "attStmt", "authData"}`, canonical).
pub fn attestation_object(result: &MakeCredentialResult) -> Result<Vec<u8>, GraphError> {
    let att_stmt = cbor::decode(&result.att_stmt).map_err(|e| GraphError::InvalidInput {
        field: "attStmt",
        reason: e.to_string(),
    })?;
    if !matches!(att_stmt, Value::Map(_)) {
        return Err(GraphError::InvalidInput {
            field: "attStmt",
            reason: "not a CBOR map".into(),
        });
    }
    let obj = Value::map([
        (Value::from("fmt"), Value::from(result.fmt.as_str())),
        (Value::from("attStmt"), att_stmt),
        (
            Value::from("authData"),
            Value::from(result.auth_data.clone()),
        ),
    ]);
    Ok(cbor::encode(&obj))
}

/// Builds the registration body from the creation options' clientData and the key's
/// makeCredential result. The credential id is taken from authData.
pub fn build_registration(
    client_data: &ClientData,
    display_name: &str,
    result: &MakeCredentialResult,
) -> Result<RegistrationBody, GraphError> {
    validate_display_name(display_name)?;
    let cred = parse_attested_credential(&result.auth_data)?;
    let att = attestation_object(result)?;
    Ok(RegistrationBody {
        display_name: display_name.to_owned(),
        public_key_credential: PublicKeyCredential {
            id: encode_b64url(&cred.credential_id),
            response: AttestationResponse {
                client_data_json: encode_b64url(client_data.json.as_bytes()),
                attestation_object: encode_b64url(&att),
            },
            client_extension_results: ClientExtensionResults::default(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{PublicKeyCreationOptions, RelyingParty, WebauthnUser};

    pub(crate) fn options(challenge: &str) -> CreationOptions {
        CreationOptions {
            challenge_timeout_date_time: None,
            public_key: PublicKeyCreationOptions {
                challenge: challenge.into(),
                timeout: None,
                attestation: None,
                rp: RelyingParty {
                    id: "login.microsoft.com".into(),
                    name: None,
                },
                user: WebauthnUser {
                    id: "dQ".into(),
                    name: None,
                    display_name: None,
                },
                pub_key_cred_params: vec![],
                exclude_credentials: vec![],
                authenticator_selection: None,
                extensions: None,
            },
        }
    }

    fn auth_data(cred_id: &[u8]) -> Vec<u8> {
        let mut a = Sha256::digest(b"login.microsoft.com").to_vec();
        a.push(FLAG_UP | FLAG_UV | FLAG_AT);
        a.extend_from_slice(&7u32.to_be_bytes());
        a.extend_from_slice(&[0x11; 16]);
        a.extend_from_slice(&(cred_id.len() as u16).to_be_bytes());
        a.extend_from_slice(cred_id);
        a.extend_from_slice(&cbor::encode(&Value::map([(
            Value::from(1u64),
            Value::from(2u64),
        )])));
        a
    }

    #[test]
    fn client_data_is_exactly_what_tools_send() {
        let cd = ClientData::for_creation(&options("Y2hh"), None).unwrap();
        assert_eq!(
            cd.json,
            r#"{"type":"webauthn.create","challenge":"Y2hh","origin":"https://login.microsoft.com","crossOrigin":false}"#
        );
        let v: serde_json::Value = serde_json::from_str(&cd.json).unwrap();
        assert_eq!(v["type"], "webauthn.create");
        assert_eq!(v["challenge"], "Y2hh");
        assert_eq!(v["origin"], "https://login.microsoft.com");
        assert_eq!(v["crossOrigin"], false);
        assert_eq!(
            cd.hash,
            <[u8; 32]>::from(Sha256::digest(cd.json.as_bytes()))
        );
        assert!(ClientData::for_creation(&options("not+url/safe=="), None).is_err());
    }

    #[test]
    fn registration_body_fields_are_unpadded_base64url() {
        let cd =
            ClientData::for_creation(&options("Y2hh"), Some("https://pinned.example")).unwrap();
        let r = MakeCredentialResult {
            auth_data: auth_data(&[0xfb; 17]),
            fmt: "none".into(),
            att_stmt: vec![0xa0],
        };
        let body = build_registration(&cd, "Kim's key", &r).unwrap();
        let json = serde_json::to_string(&body).unwrap();
        assert!(!json.contains('='), "{json}");
        assert_eq!(body.public_key_credential.id, encode_b64url(&[0xfb; 17]));
        let att = crate::ids::decode_b64url_strict(
            &body.public_key_credential.response.attestation_object,
            "x",
        )
        .unwrap();
        let v = cbor::decode_with(&att, cbor::Limits::CANONICAL).unwrap();
        let m = v.as_map("attObj").unwrap();
        assert_eq!(
            m.require_text("fmt", "fmt")
                .unwrap()
                .as_text("fmt")
                .unwrap(),
            "none"
        );
        assert!(json.contains(r#""clientExtensionResults":{}"#));
    }

    #[test]
    fn display_name_limits() {
        assert!(validate_display_name(&"x".repeat(30)).is_ok());
        assert!(validate_display_name(&"é".repeat(30)).is_ok());
        assert!(matches!(
            validate_display_name(&"x".repeat(31)),
            Err(GraphError::InvalidInput {
                field: "displayName",
                ..
            })
        ));
        assert!(validate_display_name("").is_err());
        assert!(validate_display_name("a\nb").is_err());
    }

    #[test]
    fn truncated_auth_data_names_the_field() {
        let full = auth_data(&[1; 16]);
        for cut in [10, 33, 40, 55, 56, 60, full.len() - 1] {
            let e = parse_attested_credential(&full[..cut]).unwrap_err();
            assert!(
                matches!(e, GraphError::InvalidInput { .. }),
                "cut {cut}: {e:?}"
            );
        }
        let c = parse_attested_credential(&full).unwrap();
        assert_eq!(c.sign_count, 7);
        assert_eq!(c.credential_id, vec![1; 16]);
    }
}
