//! Server → device bodies (kinds 32–39).

use fido_core::cbor::Value;

use super::step::{step_from, step_value};
use super::{
    boolean, bytes, bytes_list, bytes_list_of, bytes_n, list, text, text_list, text_list_of,
    text_max, u32_of, uint, MapB, Obj, MAX_IDS, MAX_LARGE_BYTES, MAX_SECRETS, MAX_STEPS,
};
use crate::error::WireError;
use crate::msg::{
    Expect, HolderGraphCall, HolderGraphOp, Job, JobAck, NeedHolderAuth, RefusalCode, Refused,
    SealedSecret, ServerHello, ServerMessage,
};

pub(super) fn body(msg: &ServerMessage) -> (u64, Value) {
    match msg {
        ServerMessage::Hello(h) => (
            32,
            MapB::new()
                .put(1, h.server_nonce.to_vec())
                .put(2, h.version)
                .put(3, h.server_time_ms)
                .put(4, h.hello_digest.to_vec())
                .opt(5, h.next_server_key.map(|k| k.to_vec()))
                .build(),
        ),
        ServerMessage::NeedHolderAuth(n) => (
            33,
            MapB::new()
                .put(1, n.issuer.as_str())
                .put(2, n.client_id.as_str())
                .put(3, text_list(&n.scopes))
                .put(4, n.nonce.as_str())
                .opt(5, n.login_hint.clone())
                .put(6, n.max_age_s)
                .put(7, n.session_code.as_str())
                .build(),
        ),
        ServerMessage::Job(j) => (34, job(j)),
        ServerMessage::JobAck(a) => (
            35,
            MapB::new()
                .put(1, a.key_id.as_str())
                .put(2, a.state.as_str())
                .put(3, a.needs_reissue)
                .put(4, a.registered)
                .build(),
        ),
        ServerMessage::Refused(r) => (
            36,
            MapB::new()
                .put(1, r.code.as_str())
                .put(2, r.reason.as_str())
                .opt(3, r.needs_reissue)
                .opt(4, r.step.clone())
                .build(),
        ),
        ServerMessage::Wait { retry_ms } => (37, MapB::new().put(1, *retry_ms).build()),
        ServerMessage::HolderGraph(c) => (
            39,
            MapB::new()
                .put(1, c.op.as_str())
                .opt(2, c.body.clone())
                .build(),
        ),
        ServerMessage::Done { key_id, state } => (
            38,
            MapB::new()
                .opt(1, key_id.clone())
                .opt(2, state.clone())
                .build(),
        ),
    }
}

fn job(j: &Job) -> Value {
    let expect = MapB::new()
        .opt(1, j.expect.aaguid.map(|a| a.to_vec()))
        .opt(2, j.expect.serial.clone())
        .opt(3, j.expect.credential_ids.as_deref().map(bytes_list))
        .build();
    let secrets = j
        .secrets
        .iter()
        .map(|s| {
            MapB::new()
                .put(1, s.id)
                .put(2, s.enc.to_vec())
                .put(3, s.ct.clone())
                .build()
        })
        .collect::<Vec<_>>();
    MapB::new()
        .put(1, j.operation.as_str())
        .opt(2, j.key_id.clone())
        .put(3, expect)
        .put(4, j.deadline_ms)
        .put(5, Value::Array(j.steps.iter().map(step_value).collect()))
        .put(6, Value::Array(secrets))
        .build()
}

/// The refusal code named `s` on the wire.
pub(crate) fn refusal_code_from(s: &str) -> Option<RefusalCode> {
    use RefusalCode::*;
    [
        BadSignature,
        UnknownKey,
        AgentNotApproved,
        AgentRevoked,
        SessionUnknown,
        SessionBroken,
        SessionExpired,
        TtlExpired,
        UnknownStep,
        UnknownField,
        VersionUnsupported,
        CapabilityMissing,
        NotKeyOwner,
        HolderAuthFailed,
        ChallengeExpired,
        WrongKey,
        NotAllowed,
        VerificationFailed,
        Busy,
        Internal,
    ]
    .into_iter()
    .find(|c| c.as_str() == s)
}

pub(super) fn from_body(kind: u64, v: Value) -> Result<ServerMessage, WireError> {
    let v = &v;
    Ok(match kind {
        32 => {
            let m = Obj::strict(v, "ServerHello", &[1, 2, 3, 4, 5])?;
            ServerMessage::Hello(ServerHello {
                server_nonce: bytes_n::<16>(
                    m.req(1, "ServerHello.server_nonce")?,
                    "ServerHello.server_nonce",
                )?,
                version: u32_of(m.req(2, "ServerHello.version")?, "ServerHello.version")?,
                server_time_ms: uint(
                    m.req(3, "ServerHello.server_time_ms")?,
                    "ServerHello.server_time_ms",
                )?,
                hello_digest: bytes_n::<32>(
                    m.req(4, "ServerHello.hello_digest")?,
                    "ServerHello.hello_digest",
                )?,
                next_server_key: m
                    .get(5)
                    .map(|v| bytes_n::<65>(v, "ServerHello.next_server_key"))
                    .transpose()?,
            })
        }
        33 => {
            let m = Obj::strict(v, "NeedHolderAuth", &[1, 2, 3, 4, 5, 6, 7])?;
            ServerMessage::NeedHolderAuth(NeedHolderAuth {
                issuer: text(m.req(1, "NeedHolderAuth.issuer")?, "NeedHolderAuth.issuer")?,
                client_id: text(
                    m.req(2, "NeedHolderAuth.client_id")?,
                    "NeedHolderAuth.client_id",
                )?,
                scopes: text_list_of(m.req(3, "NeedHolderAuth.scopes")?, "NeedHolderAuth.scopes")?,
                nonce: text(m.req(4, "NeedHolderAuth.nonce")?, "NeedHolderAuth.nonce")?,
                login_hint: m
                    .get(5)
                    .map(|v| text(v, "NeedHolderAuth.login_hint"))
                    .transpose()?,
                max_age_s: u32_of(
                    m.req(6, "NeedHolderAuth.max_age_s")?,
                    "NeedHolderAuth.max_age_s",
                )?,
                session_code: text(
                    m.req(7, "NeedHolderAuth.session_code")?,
                    "NeedHolderAuth.session_code",
                )?,
            })
        }
        34 => ServerMessage::Job(job_from(v)?),
        35 => {
            let m = Obj::strict(v, "JobAck", &[1, 2, 3, 4])?;
            ServerMessage::JobAck(JobAck {
                key_id: text(m.req(1, "JobAck.key_id")?, "JobAck.key_id")?,
                state: text(m.req(2, "JobAck.state")?, "JobAck.state")?,
                needs_reissue: boolean(m.req(3, "JobAck.needs_reissue")?, "JobAck.needs_reissue")?,
                registered: u32_of(m.req(4, "JobAck.registered")?, "JobAck.registered")?,
            })
        }
        36 => {
            let m = Obj::strict(v, "Refused", &[1, 2, 3, 4])?;
            let code = text(m.req(1, "Refused.code")?, "Refused.code")?;
            ServerMessage::Refused(Refused {
                code: refusal_code_from(&code).ok_or(WireError::InvalidValue {
                    field: "Refused.code",
                    reason: "unknown refusal code",
                })?,
                reason: text(m.req(2, "Refused.reason")?, "Refused.reason")?,
                needs_reissue: m
                    .get(3)
                    .map(|v| boolean(v, "Refused.needs_reissue"))
                    .transpose()?,
                step: m.get(4).map(|v| text(v, "Refused.step")).transpose()?,
            })
        }
        37 => {
            let m = Obj::strict(v, "Wait", &[1])?;
            ServerMessage::Wait {
                retry_ms: uint(m.req(1, "Wait.retry_ms")?, "Wait.retry_ms")?,
            }
        }
        39 => {
            let m = Obj::strict(v, "HolderGraph", &[1, 2])?;
            let op = text(m.req(1, "HolderGraph.op")?, "HolderGraph.op")?;
            ServerMessage::HolderGraph(HolderGraphCall {
                op: HolderGraphOp::parse(&op).ok_or(WireError::InvalidValue {
                    field: "HolderGraph.op",
                    reason: "unknown holder Graph call",
                })?,
                body: m
                    .get(2)
                    .map(|v| text_max(v, "HolderGraph.body", MAX_LARGE_BYTES))
                    .transpose()?,
            })
        }
        38 => {
            let m = Obj::strict(v, "Done", &[1, 2])?;
            ServerMessage::Done {
                key_id: m.get(1).map(|v| text(v, "Done.key_id")).transpose()?,
                state: m.get(2).map(|v| text(v, "Done.state")).transpose()?,
            }
        }
        _ => return Err(WireError::UnknownKind { kind }),
    })
}

fn job_from(v: &Value) -> Result<Job, WireError> {
    let m = Obj::strict(v, "Job", &[1, 2, 3, 4, 5, 6])?;
    let e = Obj::strict(m.req(3, "Job.expect")?, "Job.expect", &[1, 2, 3])?;
    let expect = Expect {
        aaguid: e
            .get(1)
            .map(|v| bytes_n::<16>(v, "expect.aaguid"))
            .transpose()?,
        serial: e.get(2).map(|v| text(v, "expect.serial")).transpose()?,
        credential_ids: e
            .get(3)
            .map(|v| bytes_list_of(v, "expect.credential_ids", MAX_IDS))
            .transpose()?,
    };
    let steps = list(m.req(5, "Job.steps")?, "Job.steps", MAX_STEPS)?
        .iter()
        .map(step_from)
        .collect::<Result<_, _>>()?;
    let secrets = list(m.req(6, "Job.secrets")?, "Job.secrets", MAX_SECRETS)?
        .iter()
        .map(|s| {
            let s = Obj::strict(s, "Job.secrets", &[1, 2, 3])?;
            Ok(SealedSecret {
                id: u32_of(s.req(1, "secret.id")?, "secret.id")?,
                enc: bytes_n::<65>(s.req(2, "secret.enc")?, "secret.enc")?,
                ct: bytes(s.req(3, "secret.ct")?, "secret.ct")?,
            })
        })
        .collect::<Result<_, WireError>>()?;
    Ok(Job {
        operation: text(m.req(1, "Job.operation")?, "Job.operation")?,
        key_id: m.get(2).map(|v| text(v, "Job.key_id")).transpose()?,
        expect,
        deadline_ms: uint(m.req(4, "Job.deadline_ms")?, "Job.deadline_ms")?,
        steps,
        secrets,
    })
}
