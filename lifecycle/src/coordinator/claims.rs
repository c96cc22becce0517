//! What a remote device half can only claim: the key's getInfo and the outcome of steps
//! that leave nothing the server can check (a reset, a minimum PIN length, alwaysUv, the
//! number of fingerprints enrolled). Attestations and assertions are verified; these are
//! recorded in the audit log as `device_claim` entries with the outcome `claimed`, naming
//! the agent that made them, so nobody reads them as verified facts.

use fido_core::commands::AuthenticatorInfo;
use keysmith_wire::{DeviceStep, Outcome, OutcomeStatus, StepOutput};

use crate::engine::{Engine, UnixMillis};
use crate::store::{NewAuditRecord, UnitOfWork};
use crate::Error;

/// The claim a step's success makes, if it is one the server cannot check.
pub(super) fn step_claim(step: &DeviceStep) -> Option<String> {
    match step {
        DeviceStep::Reset { .. } => Some("the key was reset".into()),
        DeviceStep::SetMinPinLength {
            min,
            rp_ids,
            force_change,
            ..
        } => Some(format!(
            "minimum PIN length set to {} (rp ids allowed to read it: {}; force change: {force_change})",
            min.map_or_else(|| "unchanged".to_owned(), |m| m.to_string()),
            if rp_ids.is_empty() {
                "none".to_owned()
            } else {
                rp_ids.join(", ")
            },
        )),
        DeviceStep::EnableAlwaysUv { .. } => Some("alwaysUv turned on".into()),
        DeviceStep::EnrollFingerprints { .. } => Some("fingerprints enrolled".into()),
        _ => None,
    }
}

/// The getInfo claim of a device report.
pub(super) fn info_claim(info: &AuthenticatorInfo) -> String {
    let hex = base16ct::lower::encode_string(&info.aaguid);
    let options = info
        .options
        .as_deref()
        .unwrap_or_default()
        .iter()
        .filter(|(k, _)| matches!(k.as_str(), "alwaysUv" | "clientPin" | "uv" | "bioEnroll"))
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ");
    format!(
        "getInfo: aaguid {hex}, versions {}, firmware {}, options [{options}]",
        info.versions.join(","),
        info.firmware_version
            .map_or_else(|| "not given".to_owned(), |v| v.to_string()),
    )
}

/// The claims of a job's outcomes (`claims[i]` for step `i`), with what a step's output
/// adds (the fingerprints enrolled).
pub(super) fn outcome_claims(claims: &[Option<String>], outcomes: &[Outcome]) -> Vec<String> {
    claims
        .iter()
        .zip(outcomes)
        .filter(|(_, o)| o.status == OutcomeStatus::Ok)
        .filter_map(|(c, o)| {
            let c = c.as_ref()?;
            Some(match &o.out {
                Some(StepOutput::Enrolled { enrolled }) => format!("{c}: {enrolled} in all"),
                _ => c.clone(),
            })
        })
        .collect()
}

/// Records `claims` by agent `agent_id` about key `key_id` as `claimed` audit entries.
pub(super) fn record(
    engine: &Engine,
    agent_id: &str,
    key_id: Option<&str>,
    claims: Vec<String>,
    now: UnixMillis,
) -> Result<(), Error> {
    if claims.is_empty() {
        return Ok(());
    }
    let audit = claims
        .into_iter()
        .map(|c| NewAuditRecord {
            actor: format!("agent:{agent_id}"),
            time_ms: now,
            action: "device_claim".into(),
            key_id: key_id.map(str::to_owned),
            user_id: None,
            template_id: None,
            outcome: "claimed".into(),
            idp_request_id: None,
            detail: Some(format!("{c} (claimed by the device half, not verifiable)")),
        })
        .collect();
    engine.store().commit(
        UnitOfWork {
            audit,
            ..UnitOfWork::default()
        },
        now,
    )?;
    Ok(())
}
