//! Registration validation the way Entra does it.
//!
//! Everything goes through [`validate_registration`]; its result is either the method to
//! store or the 400 Entra would answer (message surfaced verbatim by the client).

use std::collections::HashMap;
use std::time::SystemTime;

use fido_core::cbor::{self, Value};
use sha2::{Digest, Sha256};

use super::state::{IssuedChallenge, StoredMethod};
use crate::ids::{decode_lenient, encode_with_padding_digit};
use crate::policy::{check_aaguid, effective_restrictions, format_aaguid};
use crate::webauthn::{parse_attested_credential, FLAG_UP, FLAG_UV, MAX_DISPLAY_NAME_CHARS};
use crate::wire::{AttestationLevel, Fido2Method, Fido2Policy, MethodState, PasskeyType};

/// Why Entra refuses a registration: HTTP status, Graph code and message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Rejection {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

fn bad(message: impl Into<String>) -> Rejection {
    Rejection {
        status: 400,
        code: "badRequest",
        message: message.into(),
    }
}

/// What the validation needs to know about the tenant.
pub(crate) struct RegistrationContext<'a> {
    pub user_id: &'a str,
    pub rp_id: &'a str,
    pub now: SystemTime,
    pub challenges: &'a HashMap<String, IssuedChallenge>,
    pub policy: &'a Fido2Policy,
    pub existing: &'a [StoredMethod],
    pub v1: bool,
    /// Ids of the groups the user is a member of (for include/exclude targets).
    pub user_groups: &'a [String],
}

/// A validated registration: the method to store and the challenge it consumed.
pub(crate) struct Accepted {
    pub stored: StoredMethod,
    pub challenge: String,
}

const MISSING_ENTITY: &str = "The request is missing a fido2AuthenticationMethod entity";

fn b64_field(v: &serde_json::Value, field: &'static str) -> Result<Vec<u8>, Rejection> {
    let s = v
        .as_str()
        .ok_or_else(|| bad(format!("{field} is missing or not a string")))?;
    decode_lenient(s, field).map_err(|e| bad(format!("Invalid base64url in {field}: {e}")))
}

/// Validates a registration body against issued challenges, RP, flags, attestation,
/// policy and the user's existing credentials.
pub(crate) fn validate_registration(
    body: &[u8],
    ctx: &RegistrationContext<'_>,
) -> Result<Accepted, Rejection> {
    let json: serde_json::Value = serde_json::from_slice(body).map_err(|_| bad(MISSING_ENTITY))?;
    let Some(obj) = json.as_object() else {
        // Includes a body serialised twice (a JSON string holding JSON).
        return Err(bad(MISSING_ENTITY));
    };
    let pkc = obj
        .get("publicKeyCredential")
        .filter(|v| v.is_object())
        .ok_or_else(|| bad(MISSING_ENTITY))?;
    let display_name = obj
        .get("displayName")
        .and_then(|v| v.as_str())
        .ok_or_else(|| bad("displayName is required"))?;
    let chars = display_name.chars().count();
    if chars == 0 || chars > MAX_DISPLAY_NAME_CHARS {
        return Err(bad(format!(
            "displayName must be between 1 and {MAX_DISPLAY_NAME_CHARS} characters"
        )));
    }
    let targeted = |t: &crate::wire::PolicyTarget| {
        t.id == "all_users" || t.id == ctx.user_id || ctx.user_groups.contains(&t.id)
    };
    let in_scope = ctx.policy.include_targets.iter().any(targeted)
        && !ctx.policy.exclude_targets.iter().any(targeted);
    if ctx.policy.state != MethodState::Enabled || !in_scope {
        return Err(Rejection {
            status: 403,
            code: "accessDenied",
            message: "The FIDO2 authentication method is not enabled for this user".into(),
        });
    }
    if ctx.v1 && ctx.policy.is_self_service_registration_allowed != Some(true) {
        return Err(bad(
            "Passkey registration requires isSelfServiceRegistrationAllowed in the FIDO2 policy",
        ));
    }
    let cred_id = b64_field(&pkc["id"], "publicKeyCredential.id")?;
    let response = &pkc["response"];
    let client_data_raw = b64_field(&response["clientDataJSON"], "clientDataJSON")?;
    let att_raw = b64_field(&response["attestationObject"], "attestationObject")?;

    // clientDataJSON: type, challenge (issued here, for this user, unexpired), origin.
    let cd: serde_json::Value = serde_json::from_slice(&client_data_raw)
        .map_err(|e| bad(format!("clientDataJSON is not JSON: {e}")))?;
    if cd["type"].as_str() != Some("webauthn.create") {
        return Err(bad("clientDataJSON.type must be webauthn.create"));
    }
    let challenge = cd["challenge"]
        .as_str()
        .ok_or_else(|| bad("clientDataJSON.challenge is missing"))?;
    let issued = ctx
        .challenges
        .get(challenge)
        .filter(|c| c.user_id == ctx.user_id)
        .ok_or_else(|| bad("The challenge was not issued for this user or is invalid"))?;
    if ctx.now >= issued.expires {
        return Err(bad(
            "The challenge has expired. Request new creation options",
        ));
    }
    let origin = format!("https://{}", ctx.rp_id);
    if cd["origin"].as_str() != Some(origin.as_str()) {
        return Err(bad(format!(
            "clientDataJSON.origin {} does not match {origin}",
            cd["origin"]
        )));
    }
    if cd["crossOrigin"].as_bool() == Some(true) {
        return Err(bad("clientDataJSON.crossOrigin must be false"));
    }

    // attestationObject: fmt, attStmt, authData.
    let att = cbor::decode(&att_raw).map_err(|e| bad(format!("attestationObject: {e}")))?;
    let att = att
        .as_map("attestationObject")
        .map_err(|e| bad(e.to_string()))?;
    let fmt = att
        .require_text("fmt", "attestationObject.fmt")
        .and_then(|v| v.as_text("attestationObject.fmt"))
        .map_err(|e| bad(e.to_string()))?
        .to_owned();
    let att_stmt = att
        .require_text("attStmt", "attestationObject.attStmt")
        .map_err(|e| bad(e.to_string()))?;
    let auth_data = att
        .require_text("authData", "attestationObject.authData")
        .and_then(|v| v.as_bytes("attestationObject.authData"))
        .map_err(|e| bad(e.to_string()))?;
    let cred = parse_attested_credential(auth_data).map_err(|e| bad(e.to_string()))?;
    if cred.rp_id_hash != <[u8; 32]>::from(Sha256::digest(ctx.rp_id.as_bytes())) {
        return Err(bad(
            "authenticatorData.rpIdHash does not match the relying party",
        ));
    }
    if cred.flags & FLAG_UP == 0 {
        return Err(bad("User presence flag not set"));
    }
    if cred.flags & FLAG_UV == 0 {
        return Err(bad("User verification is required"));
    }
    if cred.credential_id != cred_id {
        return Err(bad(
            "publicKeyCredential.id does not match the credential in authenticatorData",
        ));
    }
    if ctx.existing.iter().any(|m| m.credential_id == cred_id) {
        return Err(bad(
            "The credential is already registered for this user (excludeCredentials)",
        ));
    }

    let client_data_hash: [u8; 32] = Sha256::digest(&client_data_raw).into();
    let (attested, certs) = verify_attestation(
        &fmt,
        att_stmt,
        auth_data,
        &client_data_hash,
        &cred.public_key,
    )?;

    if let Some(types) = ctx
        .policy
        .passkey_profiles
        .first()
        .and_then(|p| p.passkey_types.as_deref())
    {
        if !types.split(',').any(|t| t.trim() == "deviceBound") {
            return Err(bad(
                "Device-bound passkeys are not allowed by the passkey profile",
            ));
        }
    }
    let aaguid = format_aaguid(&cred.aaguid);
    let eff = effective_restrictions(ctx.policy);
    check_aaguid(&eff, &aaguid)
        .map_err(|e| bad(format!("Security key is restricted by policy: {e}")))?;
    if eff.attestation_enforced && !attested {
        return Err(bad(
            "Attestation is enforced by policy and the security key provided none that verifies",
        ));
    }

    let method = Fido2Method {
        odata_type: Some("#microsoft.graph.fido2AuthenticationMethod".into()),
        id: encode_with_padding_digit(&cred_id),
        display_name: Some(display_name.to_owned()),
        created_date_time: Some(super::state::iso8601(ctx.now)),
        aa_guid: Some(aaguid.clone()),
        model: model_for(&aaguid),
        attestation_certificates: certs,
        attestation_level: Some(if attested {
            AttestationLevel::Attested
        } else {
            AttestationLevel::NotAttested
        }),
        passkey_type: ctx.v1.then_some(PasskeyType::DeviceBound),
    };
    Ok(Accepted {
        stored: StoredMethod {
            method,
            credential_id: cred_id,
        },
        challenge: challenge.to_owned(),
    })
}

fn model_for(aaguid: &str) -> Option<String> {
    match aaguid {
        "cb69481e-8ff7-4039-93ec-0a2729a154a8" => Some("YubiKey 5 Series".into()),
        "ee882879-721c-4913-9775-3dfcce97072a" => Some("YubiKey 5 Series with NFC".into()),
        _ => None,
    }
}

/// Checks the attestation statement. Returns whether the key is attested (a verified
/// certificate chain leaf) and the attestation certificates' SHA-1-style thumbprints.
///
/// Interim: until `fido_core::attestation` lands this checks packed signatures (ES256,
/// x5c leaf or self attestation) directly; the swap is confined to this function.
fn verify_attestation(
    fmt: &str,
    att_stmt: &Value,
    auth_data: &[u8],
    client_data_hash: &[u8; 32],
    credential_key: &Value,
) -> Result<(bool, Vec<String>), Rejection> {
    use p256::ecdsa::signature::Verifier;
    use p256::ecdsa::{Signature, VerifyingKey};
    let stmt = att_stmt.as_map("attStmt").map_err(|e| bad(e.to_string()))?;
    match fmt {
        "none" => {
            if !stmt.entries().is_empty() {
                return Err(bad("attStmt must be empty for fmt none"));
            }
            Ok((false, vec![]))
        }
        "packed" => {
            let alg = stmt
                .require_text("alg", "attStmt.alg")
                .and_then(|v| v.as_i64("attStmt.alg"))
                .map_err(|e| bad(e.to_string()))?;
            if alg != fido_core::cose::ALG_ES256 {
                return Err(bad(format!("Unsupported attestation algorithm {alg}")));
            }
            let sig = stmt
                .require_text("sig", "attStmt.sig")
                .and_then(|v| v.as_bytes("attStmt.sig"))
                .map_err(|e| bad(e.to_string()))?;
            let sig = Signature::from_der(sig)
                .map_err(|_| bad("attStmt.sig is not a DER ECDSA signature"))?;
            let mut signed = auth_data.to_vec();
            signed.extend_from_slice(client_data_hash);
            let (key, attested, certs) = match stmt.get_text("x5c") {
                Some(x5c) => {
                    let chain = x5c
                        .as_array("attStmt.x5c")
                        .map_err(|e| bad(e.to_string()))?;
                    let leaf = chain
                        .first()
                        .ok_or_else(|| bad("attStmt.x5c is empty"))?
                        .as_bytes("attStmt.x5c[0]")
                        .map_err(|e| bad(e.to_string()))?;
                    let key = leaf_p256_key(leaf)?;
                    let thumbs = chain
                        .iter()
                        .filter_map(|c| c.as_bytes("x5c").ok())
                        .map(|c| hex_lower(&Sha256::digest(c)[..20]))
                        .collect();
                    (key, true, thumbs)
                }
                None => {
                    let cose = fido_core::cose::CoseKey::from_value(credential_key)
                        .map_err(|e| bad(format!("credentialPublicKey: {e}")))?;
                    let fido_core::cose::CoseKey::Ec2 { x, y, .. } = cose else {
                        return Err(bad("Self attestation needs an EC2 P-256 credential key"));
                    };
                    let mut sec1 = vec![0x04];
                    sec1.extend_from_slice(&x);
                    sec1.extend_from_slice(&y);
                    let key = VerifyingKey::from_sec1_bytes(&sec1)
                        .map_err(|_| bad("credentialPublicKey is not a P-256 point"))?;
                    (key, false, vec![])
                }
            };
            key.verify(&signed, &sig)
                .map_err(|_| bad("Attestation signature verification failed"))?;
            Ok((attested, certs))
        }
        other => Err(bad(format!("Unsupported attestation format {other}"))),
    }
}

fn leaf_p256_key(der: &[u8]) -> Result<p256::ecdsa::VerifyingKey, Rejection> {
    use x509_cert::der::Decode;
    let cert = x509_cert::Certificate::from_der(der)
        .map_err(|e| bad(format!("attStmt.x5c[0] is not a certificate: {e}")))?;
    let bits = cert
        .tbs_certificate
        .subject_public_key_info
        .subject_public_key
        .as_bytes()
        .ok_or_else(|| bad("attStmt.x5c[0] public key has unused bits"))?;
    p256::ecdsa::VerifyingKey::from_sec1_bytes(bits)
        .map_err(|_| bad("attStmt.x5c[0] public key is not P-256"))
}

fn hex_lower(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
