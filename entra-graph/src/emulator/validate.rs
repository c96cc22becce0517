//! Registration validation the way Entra does it.
//!
//! Everything goes through [`validate_registration`]; its result is either the method to
//! store or the 400 Entra would answer (message surfaced verbatim by the client).

use std::collections::HashMap;
use std::time::SystemTime;

use fido_core::attestation::{AttestationObject, AttestationType, FMT_NONE, FMT_PACKED};
use sha2::{Digest, Sha256};

use super::state::{IssuedChallenge, StoredMethod};
use crate::ids::{decode_base64, encode_with_padding_digit};
use crate::policy::{check_key_for_user, check_targets, format_aaguid, PreflightError, UserScope};
use crate::webauthn::MAX_DISPLAY_NAME_CHARS;
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
    /// The tenant's FIDO metadata: with it, "attested" means the chain validates to an
    /// MDS root listed for the AAGUID (what enforcement needs).
    pub trust: Option<&'a fido_core::trust::TrustStore>,
}

/// A validated registration: the method to store (the challenge stays valid until it
/// expires).
pub(crate) struct Accepted {
    pub stored: StoredMethod,
}

const MISSING_ENTITY: &str = "The request is missing a fido2AuthenticationMethod entity";

fn b64_field(v: &serde_json::Value, field: &'static str) -> Result<Vec<u8>, Rejection> {
    let s = v
        .as_str()
        .ok_or_else(|| bad(format!("{field} is missing or not a string")))?;
    decode_base64(s, field).map_err(|e| bad(format!("Invalid base64url in {field}: {e}")))
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
    // Entra accepts only these members (DSInternals strips `type`, `rawId` and
    // `authenticatorAttachment` for that reason, DSI-PKC).
    only_members(
        obj,
        &["displayName", "publicKeyCredential", "@odata.type"],
        "fido2AuthenticationMethod",
    )?;
    if let Some(p) = pkc.as_object() {
        only_members(
            p,
            &["id", "response", "clientExtensionResults"],
            "publicKeyCredential",
        )?;
        if let Some(r) = p.get("response").and_then(|r| r.as_object()) {
            only_members(
                r,
                &["clientDataJSON", "attestationObject"],
                "publicKeyCredential.response",
            )?;
        }
    }
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
    let scope = UserScope::new(ctx.user_id, ctx.user_groups.to_vec());
    let in_scope = check_targets(ctx.policy, &scope).is_ok();
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

    // attestationObject: parsed, and its statement verified, by fido-core.
    let att = AttestationObject::from_cbor(&att_raw)
        .map_err(|e| bad(format!("attestationObject: {e}")))?;
    let auth_data = att.auth_data();
    let cred = auth_data
        .attested_credential()
        .ok_or_else(|| bad("authenticatorData has no attested credential data"))?;
    if !auth_data.is_for_rp_id(ctx.rp_id) {
        return Err(bad(
            "authenticatorData.rpIdHash does not match the relying party",
        ));
    }
    if !auth_data.flags().user_present() {
        return Err(bad("User presence flag not set"));
    }
    if !auth_data.flags().user_verified() {
        return Err(bad("User verification is required"));
    }
    if cred.credential_id() != cred_id.as_slice() {
        return Err(bad(
            "publicKeyCredential.id does not match the credential in authenticatorData",
        ));
    }
    if ctx.existing.iter().any(|m| m.credential_id == cred_id) {
        return Err(bad(
            "The credential is already registered for this user (excludeCredentials)",
        ));
    }
    // Entra documents packed and none only.
    if !matches!(att.fmt(), FMT_PACKED | FMT_NONE) {
        return Err(bad(format!("Unsupported attestation format {}", att.fmt())));
    }
    let client_data_hash: [u8; 32] = Sha256::digest(&client_data_raw).into();
    let verified = att
        .verify(&client_data_hash)
        .map_err(|e| bad(format!("Attestation signature verification failed: {e}")))?;
    // "Attested" as Entra means it (MAESTER, PROF): the AAGUID is in the FIDO Metadata
    // Service and the chain validates to a root MDS lists for it. Self attestation
    // never is; without metadata (`set_attestation_metadata(None)`) no key is in MDS,
    // so none is attested, whatever chain it carries.
    let (chained, certs) = match &verified.attestation_type {
        AttestationType::BasicOrAttCa { chain } => (
            true,
            chain
                .iter()
                .map(|c| base16ct::lower::encode_string(&openssl::sha::sha1(c)))
                .collect(),
        ),
        _ => (false, vec![]),
    };
    let attested = chained
        && match ctx.trust {
            None => false,
            Some(trust) => {
                let now = ctx
                    .now
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                matches!(
                    trust.verify(&att, &client_data_hash, now),
                    Ok(t) if t.source == fido_core::trust::TrustSource::Mds
                )
            }
        };

    // The passkey profiles that apply to the user (by target), or the deprecated
    // top-level fields: the key must satisfy one of them.
    let aaguid = format_aaguid(&verified.aaguid);
    check_key_for_user(ctx.policy, &scope, &aaguid, attested).map_err(|e| match e.cause() {
        PreflightError::DeviceBoundNotAllowed { .. } => {
            bad("Device-bound passkeys are not allowed by the passkey profile")
        }
        PreflightError::AttestationRequired => bad(
            "Attestation is enforced by policy and the security key provided none that verifies",
        ),
        other => bad(format!("Security key is restricted by policy: {other}")),
    })?;

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
        last_used_date_time: None,
    };
    Ok(Accepted {
        stored: StoredMethod {
            method,
            credential_id: cred_id,
            stored_at: std::time::Instant::now(),
        },
    })
}

fn model_for(aaguid: &str) -> Option<String> {
    match aaguid {
        "cb69481e-8ff7-4039-93ec-0a2729a154a8" => Some("YubiKey 5 Series".into()),
        "ee882879-721c-4913-9775-3dfcce97072a" => Some("YubiKey 5 Series with NFC".into()),
        _ => None,
    }
}

/// Refuses a member not in `allowed`, with the message shape OData uses.
fn only_members(
    obj: &serde_json::Map<String, serde_json::Value>,
    allowed: &[&str],
    type_name: &str,
) -> Result<(), Rejection> {
    match obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(bad(format!(
            "The property '{k}' does not exist on type '{type_name}'. Make sure to only use property names that are defined by the type."
        ))),
        None => Ok(()),
    }
}
