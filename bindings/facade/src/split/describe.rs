//! [`describe`]: a JSON view of a split message for logs.

use keysmith_wire::{AgentMessage, ServerMessage};

use crate::types::hex;
use crate::{FacadeError, Result};

// ---------------------------------------------------------------------------------------
// describe

/// A JSON view of a split message for logs: direction, kind, session, seq, job, ttl, the
/// signer's key id and the non-secret fields of its body. Nothing is verified (the
/// signature is not checked: this is for looking, not for trusting); ID tokens, sealed
/// secrets, attestation objects and signatures are left out. Bytes that are no split
/// message are a usage error.
pub fn describe(bytes: &[u8]) -> Result<serde_json::Value> {
    use coset::{CborSerializable, TaggedCborSerializable};
    use serde_json::json;
    let bad = |why: &str| FacadeError::usage(format!("not a split message: {why}"));
    let sign1 = coset::CoseSign1::from_tagged_slice(bytes)
        .or_else(|_| coset::CoseSign1::from_slice(bytes))
        .map_err(|_| bad("not a COSE_Sign1"))?;
    let kid = hex(&sign1.protected.header.key_id);
    let payload = sign1.payload.as_deref().ok_or_else(|| bad("no payload"))?;
    let sid = |s: Option<keysmith_wire::SessionId>| s.map(|s| hex(&s.0));
    let jid = |j: Option<keysmith_wire::JobId>| j.map(|j| hex(&j.0));
    if let Ok(env) = keysmith_wire::decode_agent(payload) {
        let (kind, body) = match &env.msg {
            AgentMessage::Hello(h) => (
                "AgentHello",
                json!({"agent_id": hex(&h.agent_id.0), "agent_version": h.agent_version,
                       "versions": h.versions, "host": {"name": h.host.name, "os": h.host.os,
                       "elevated": h.host.elevated, "remote_session": h.host.remote_session}}),
            ),
            AgentMessage::DeviceReport(r) => (
                "DeviceReport",
                json!({"transport": r.transport, "serial_claim": r.serial_claim,
                       "serial_source": r.serial_source}),
            ),
            AgentMessage::Request(r) => (
                "Request",
                json!({"operation": format!("{:?}", r.operation), "template": r.template,
                       "key_id": r.key_id}),
            ),
            AgentMessage::HolderAuth(_) => ("HolderAuth", json!({"id_token": "<redacted>"})),
            AgentMessage::Progress(p) => ("Progress", json!({"step": p.step, "prompt": p.prompt})),
            AgentMessage::JobResult(r) => (
                "JobResult",
                json!({"outcomes": r.outcomes.len(), "job_digest": hex(&r.job_digest)}),
            ),
            AgentMessage::Abort(a) => ("Abort", json!({"reason": a.reason, "detail": a.detail})),
            AgentMessage::Ready => ("Ready", json!({})),
            // Graph's answer is the holder's own data (their passkey's options): its
            // size only.
            AgentMessage::HolderGraphResult(r) => (
                "HolderGraphResult",
                json!({"op": r.op.as_str(), "status": r.status, "body_bytes": r.body.len(),
                       "error": r.error, "request_id": r.request_id}),
            ),
            _ => ("unknown", json!({})),
        };
        return Ok(
            json!({"direction": "device_to_server", "kind": kind, "kid": kid,
            "session": sid(env.session), "seq": env.seq, "job": jid(env.job), "body": body}),
        );
    }
    let env = keysmith_wire::decode_server(payload).map_err(|e| bad(&e.to_string()))?;
    let (kind, body) = match &env.msg {
        ServerMessage::Hello(h) => (
            "ServerHello",
            json!({"version": h.version, "server_time_ms": h.server_time_ms}),
        ),
        ServerMessage::NeedHolderAuth(n) => (
            "NeedHolderAuth",
            json!({"issuer": n.issuer, "client_id": n.client_id, "scopes": n.scopes,
                   "max_age_s": n.max_age_s, "session_code": n.session_code}),
        ),
        ServerMessage::Job(j) => (
            "Job",
            json!({"operation": j.operation, "key_id": j.key_id, "steps": j.steps.len(),
                   "deadline_ms": j.deadline_ms, "secrets": "<redacted>"}),
        ),
        ServerMessage::JobAck(a) => (
            "JobAck",
            json!({"key_id": a.key_id, "state": a.state, "needs_reissue": a.needs_reissue,
                   "registered": a.registered}),
        ),
        ServerMessage::Refused(r) => (
            "Refused",
            json!({"code": r.code.as_str(), "reason": r.reason, "step": r.step}),
        ),
        ServerMessage::Wait { retry_ms } => ("Wait", json!({"retry_ms": retry_ms})),
        ServerMessage::HolderGraph(c) => (
            "HolderGraph",
            json!({"op": c.op.as_str(), "body_bytes": c.body.as_ref().map(String::len)}),
        ),
        ServerMessage::Done { key_id, state } => {
            ("Done", json!({"key_id": key_id, "state": state}))
        }
        _ => ("unknown", json!({})),
    };
    Ok(
        json!({"direction": "server_to_device", "kind": kind, "kid": kid,
        "session": sid(env.session), "seq": env.seq, "job": jid(env.job),
        "ttl_ms": env.ttl_ms, "body": body}),
    )
}
