//! Building the WebAuthn registration body from creation options and a makeCredential
//! result, without depending on the transport crate.
//!
//! Flow: [`ClientData::for_creation`] gives the clientDataJSON and the hash the
//! authenticator must sign (`clientDataHash` of makeCredential); the key's answer comes
//! back as [`MakeCredentialResult`] (authData, fmt, attStmt CBOR); [`build_registration`]
//! turns both into the body of `POST .../fido2Methods`.

use fido_core::attestation::AttestationObject;
use fido_core::cbor;
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

impl MakeCredentialResult {
    /// Takes the parts from a decoded CTAP authenticatorMakeCredential response map
    /// (1 fmt, 2 authData, 3 attStmt).
    pub fn from_ctap_response(response: &cbor::Value) -> Result<Self, GraphError> {
        let obj = AttestationObject::from_ctap_response(response).map_err(|e| {
            GraphError::InvalidInput {
                field: "makeCredential response",
                reason: e.to_string(),
            }
        })?;
        Ok(MakeCredentialResult {
            auth_data: obj.auth_data_bytes().to_vec(),
            fmt: obj.fmt().to_owned(),
            att_stmt: cbor::encode(obj.att_stmt()),
        })
    }
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

/// Parses the makeCredential result with fido-core: the attestation object, whose
/// authenticator data must carry the new credential.
pub fn attestation_object(result: &MakeCredentialResult) -> Result<AttestationObject, GraphError> {
    let att_stmt = cbor::decode(&result.att_stmt).map_err(|e| GraphError::InvalidInput {
        field: "attStmt",
        reason: e.to_string(),
    })?;
    let obj =
        AttestationObject::from_parts(&result.fmt, &result.auth_data, &att_stmt).map_err(|e| {
            GraphError::InvalidInput {
                field: "makeCredential result",
                reason: e.to_string(),
            }
        })?;
    if obj.auth_data().attested_credential().is_none() {
        return Err(GraphError::InvalidInput {
            field: "authData",
            reason: "no attested credential data (AT flag clear)".into(),
        });
    }
    Ok(obj)
}

/// Builds the registration body from the creation options' clientData and the key's
/// makeCredential result. The credential id is taken from authData.
pub fn build_registration(
    client_data: &ClientData,
    display_name: &str,
    result: &MakeCredentialResult,
) -> Result<RegistrationBody, GraphError> {
    validate_display_name(display_name)?;
    let att = attestation_object(result)?;
    let credential_id = att
        .auth_data()
        .attested_credential()
        .map(|c| c.credential_id().to_vec())
        .unwrap_or_default();
    Ok(RegistrationBody {
        display_name: display_name.to_owned(),
        public_key_credential: PublicKeyCredential {
            id: encode_b64url(&credential_id),
            response: AttestationResponse {
                client_data_json: encode_b64url(client_data.json.as_bytes()),
                attestation_object: encode_b64url(&att.to_cbor()),
            },
            client_extension_results: ClientExtensionResults::default(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{PublicKeyCreationOptions, RelyingParty, WebauthnUser};
    use p256::elliptic_curve::sec1::ToEncodedPoint;

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
        let point = p256::SecretKey::random(&mut rand_core::OsRng)
            .public_key()
            .to_encoded_point(false);
        let key = fido_core::cose::CoseKey::Ec2 {
            alg: fido_core::cose::ALG_ES256,
            x: point.x().unwrap().as_slice().try_into().unwrap(),
            y: point.y().unwrap().as_slice().try_into().unwrap(),
        };
        a.extend_from_slice(&cbor::encode(&key.to_value()));
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
    fn from_ctap_response_round_trips_through_the_body() {
        let r = MakeCredentialResult {
            auth_data: auth_data(&[7; 20]),
            fmt: "none".into(),
            att_stmt: vec![0xa0],
        };
        let ctap = attestation_object(&r).unwrap().to_ctap_response();
        assert_eq!(MakeCredentialResult::from_ctap_response(&ctap).unwrap(), r);
        assert!(matches!(
            MakeCredentialResult::from_ctap_response(&cbor::Value::from(1u64)),
            Err(GraphError::InvalidInput { .. })
        ));
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
    fn truncated_auth_data_is_refused_naming_the_input() {
        let full = auth_data(&[1; 16]);
        for cut in [10, 33, 40, 55, 56, 60, full.len() - 1] {
            let r = MakeCredentialResult {
                auth_data: full[..cut].to_vec(),
                fmt: "none".into(),
                att_stmt: vec![0xa0],
            };
            let e = attestation_object(&r).unwrap_err();
            assert!(
                matches!(e, GraphError::InvalidInput { .. }),
                "cut {cut}: {e:?}"
            );
        }
        let mut no_at = full.clone();
        no_at[32] &= !FLAG_AT;
        no_at.truncate(37);
        let r = MakeCredentialResult {
            auth_data: no_at,
            fmt: "none".into(),
            att_stmt: vec![0xa0],
        };
        assert!(matches!(
            attestation_object(&r),
            Err(GraphError::InvalidInput {
                field: "authData",
                ..
            })
        ));
    }
}
