//! Device → server bodies (kinds 1–9).

use fido_core::cbor::Value;
use zeroize::Zeroizing;

use super::{
    boolean, bytes, bytes_max, bytes_n, list, text, text_max, u32_of, u8_of, uint, MapB, Obj,
    MAX_ID_TOKEN, MAX_LARGE_BYTES, MAX_LIST, MAX_STEPS,
};
use crate::error::WireError;
use crate::msg::{
    Abort, AgentHello, AgentMessage, Capabilities, DeviceFailure, DeviceReport, HolderAuth,
    HolderGraphOp, HolderGraphResult, HostClaim, JobResult, KeyId, Outcome, OutcomeStatus,
    ProgressNote, Request, RequestOp, StepOutput,
};

pub(super) fn body(msg: &AgentMessage) -> (u64, Value) {
    match msg {
        AgentMessage::Hello(h) => (1, hello(h)),
        AgentMessage::DeviceReport(r) => (
            2,
            MapB::new()
                .put(1, r.transport.as_str())
                .opt(2, r.get_info.clone())
                .opt(3, r.serial_claim.clone())
                .opt(4, r.serial_source.clone())
                .opt(5, r.pin_retries)
                .opt(6, r.uv_retries)
                .opt(7, r.reader.clone())
                .build(),
        ),
        AgentMessage::Request(r) => (
            3,
            MapB::new()
                .put(1, request_op_str(&r.operation))
                .opt(2, r.template.clone())
                .opt(3, r.key_id.clone())
                .build(),
        ),
        AgentMessage::HolderAuth(a) => (4, MapB::new().put(1, a.id_token.as_str()).build()),
        AgentMessage::Progress(p) => (
            5,
            MapB::new()
                .put(1, p.step)
                .put(2, p.prompt.as_str())
                .opt(3, p.n)
                .opt(4, p.of)
                .build(),
        ),
        AgentMessage::JobResult(r) => (
            6,
            MapB::new()
                .put(1, r.job_digest.to_vec())
                .put(2, Value::Array(r.outcomes.iter().map(outcome).collect()))
                .opt(3, r.info_after.clone())
                .build(),
        ),
        AgentMessage::Abort(a) => (
            7,
            MapB::new()
                .put(1, a.reason.as_str())
                .opt(2, a.detail.clone())
                .build(),
        ),
        AgentMessage::Ready => (8, MapB::new().build()),
        AgentMessage::HolderGraphResult(r) => (
            9,
            MapB::new()
                .put(1, r.op.as_str())
                .put(2, u64::from(r.status))
                .put(3, r.body.as_str())
                .opt(4, r.error.clone())
                .opt(5, r.request_id.clone())
                .build(),
        ),
    }
}

fn hello(h: &AgentHello) -> Value {
    let c = &h.caps;
    let caps = MapB::new()
        .put(1, c.ctap_raw)
        .put(2, c.webauthn_platform)
        .put(3, c.can_reset_in_place)
        .put(4, c.interactive_holder_ui)
        .put(5, c.bio_ui)
        .put(6, c.max_job_steps)
        .build();
    let host = MapB::new()
        .put(1, h.host.name.as_str())
        .put(2, h.host.os.as_str())
        .put(3, h.host.elevated)
        .put(4, h.host.remote_session)
        .build();
    MapB::new()
        .put(1, h.agent_id.0.to_vec())
        .put(2, h.agent_version.as_str())
        .put(
            3,
            Value::Array(h.versions.iter().map(|v| Value::from(*v)).collect()),
        )
        .put(4, h.session_pub.to_vec())
        .put(5, h.nonce.to_vec())
        .put(6, caps)
        .put(7, host)
        .build()
}

fn outcome(o: &Outcome) -> Value {
    let status: u64 = match o.status {
        OutcomeStatus::Ok => 0,
        OutcomeStatus::Ctap => 1,
        OutcomeStatus::Cancelled => 2,
        OutcomeStatus::Skipped => 3,
        OutcomeStatus::Unsupported => 4,
        OutcomeStatus::DeviceError => 5,
    };
    let out = o.out.as_ref().map(|out| match out {
        StepOutput::Made {
            credential_id,
            attestation_object,
        } => MapB::new()
            .put(1, credential_id.clone())
            .put(2, attestation_object.clone())
            .build(),
        StepOutput::Asserted {
            credential_id,
            auth_data,
            signature,
            user_handle,
        } => MapB::new()
            .put(1, credential_id.clone())
            .put(2, auth_data.clone())
            .put(3, signature.clone())
            .opt(4, user_handle.clone())
            .build(),
        StepOutput::Info { get_info } => MapB::new().put(1, get_info.clone()).build(),
        StepOutput::Enrolled { enrolled } => MapB::new().put(1, *enrolled).build(),
        StepOutput::Identifier { identifier } => MapB::new().put(5, identifier.clone()).build(),
    });
    MapB::new()
        .put(1, o.step)
        .put(2, status)
        .opt(3, o.ctap)
        .opt(4, o.retries)
        .opt(5, out)
        .opt(
            6,
            o.error.as_ref().map(|e| {
                MapB::new()
                    .put(1, e.reason.as_str())
                    .put(2, e.message.as_str())
                    .opt(3, e.power_cycle_required)
                    .opt(4, e.timeout_ms)
                    .build()
            }),
        )
        .build()
}

/// The wire name of a request operation.
pub(crate) fn request_op_str(op: &RequestOp) -> &'static str {
    match op {
        RequestOp::Work => "work",
        RequestOp::Activate => "activate",
        RequestOp::SelfIssue => "self_issue",
        RequestOp::Verify => "verify",
        RequestOp::Reset => "reset",
    }
}

pub(super) fn from_body(kind: u64, v: Value) -> Result<AgentMessage, WireError> {
    let v = &v;
    Ok(match kind {
        1 => AgentMessage::Hello(hello_from(v)?),
        2 => {
            let m = Obj::strict(v, "DeviceReport", &[1, 2, 3, 4, 5, 6, 7])?;
            AgentMessage::DeviceReport(DeviceReport {
                transport: text(
                    m.req(1, "DeviceReport.transport")?,
                    "DeviceReport.transport",
                )?,
                get_info: m
                    .get(2)
                    .map(|v| bytes_max(v, "DeviceReport.get_info", MAX_LARGE_BYTES))
                    .transpose()?,
                serial_claim: m
                    .get(3)
                    .map(|v| text(v, "DeviceReport.serial_claim"))
                    .transpose()?,
                serial_source: m
                    .get(4)
                    .map(|v| text(v, "DeviceReport.serial_source"))
                    .transpose()?,
                pin_retries: m
                    .get(5)
                    .map(|v| u32_of(v, "DeviceReport.pin_retries"))
                    .transpose()?,
                uv_retries: m
                    .get(6)
                    .map(|v| u32_of(v, "DeviceReport.uv_retries"))
                    .transpose()?,
                reader: m
                    .get(7)
                    .map(|v| text(v, "DeviceReport.reader"))
                    .transpose()?,
            })
        }
        3 => {
            let m = Obj::strict(v, "Request", &[1, 2, 3])?;
            let op = text(m.req(1, "Request.operation")?, "Request.operation")?;
            let operation = match op.as_str() {
                "work" => RequestOp::Work,
                "activate" => RequestOp::Activate,
                "self_issue" => RequestOp::SelfIssue,
                "verify" => RequestOp::Verify,
                "reset" => RequestOp::Reset,
                _ => {
                    return Err(WireError::InvalidValue {
                        field: "Request.operation",
                        reason: "unknown operation",
                    })
                }
            };
            AgentMessage::Request(Request {
                operation,
                template: m.get(2).map(|v| text(v, "Request.template")).transpose()?,
                key_id: m.get(3).map(|v| text(v, "Request.key_id")).transpose()?,
            })
        }
        4 => {
            let m = Obj::strict(v, "HolderAuth", &[1])?;
            let token = text_max(
                m.req(1, "HolderAuth.id_token")?,
                "HolderAuth.id_token",
                MAX_ID_TOKEN,
            )?;
            AgentMessage::HolderAuth(HolderAuth {
                id_token: Zeroizing::new(token),
            })
        }
        5 => {
            let m = Obj::lenient(v, "Progress")?;
            AgentMessage::Progress(ProgressNote {
                step: u32_of(m.req(1, "Progress.step")?, "Progress.step")?,
                prompt: text(m.req(2, "Progress.prompt")?, "Progress.prompt")?,
                n: m.get(3).map(|v| u32_of(v, "Progress.n")).transpose()?,
                of: m.get(4).map(|v| u32_of(v, "Progress.of")).transpose()?,
            })
        }
        6 => {
            let m = Obj::strict(v, "JobResult", &[1, 2, 3])?;
            let outcomes = list(
                m.req(2, "JobResult.outcomes")?,
                "JobResult.outcomes",
                MAX_STEPS,
            )?
            .iter()
            .map(outcome_from)
            .collect::<Result<_, _>>()?;
            AgentMessage::JobResult(JobResult {
                job_digest: bytes_n::<32>(
                    m.req(1, "JobResult.job_digest")?,
                    "JobResult.job_digest",
                )?,
                outcomes,
                info_after: m
                    .get(3)
                    .map(|v| bytes_max(v, "JobResult.info_after", MAX_LARGE_BYTES))
                    .transpose()?,
            })
        }
        7 => {
            let m = Obj::lenient(v, "Abort")?;
            AgentMessage::Abort(Abort {
                reason: text(m.req(1, "Abort.reason")?, "Abort.reason")?,
                detail: m.get(2).map(|v| text(v, "Abort.detail")).transpose()?,
            })
        }
        8 => {
            Obj::strict(v, "Ready", &[])?;
            AgentMessage::Ready
        }
        9 => {
            let m = Obj::strict(v, "HolderGraphResult", &[1, 2, 3, 4, 5])?;
            let op = text(m.req(1, "HolderGraphResult.op")?, "HolderGraphResult.op")?;
            let status = uint(
                m.req(2, "HolderGraphResult.status")?,
                "HolderGraphResult.status",
            )?;
            AgentMessage::HolderGraphResult(HolderGraphResult {
                op: HolderGraphOp::parse(&op).ok_or(WireError::InvalidValue {
                    field: "HolderGraphResult.op",
                    reason: "unknown holder Graph call",
                })?,
                status: u16::try_from(status).ok().filter(|s| *s < 600).ok_or(
                    WireError::InvalidValue {
                        field: "HolderGraphResult.status",
                        reason: "not an HTTP status",
                    },
                )?,
                body: text_max(
                    m.req(3, "HolderGraphResult.body")?,
                    "HolderGraphResult.body",
                    MAX_LARGE_BYTES,
                )?,
                error: m
                    .get(4)
                    .map(|v| text(v, "HolderGraphResult.error"))
                    .transpose()?,
                request_id: m
                    .get(5)
                    .map(|v| text(v, "HolderGraphResult.request_id"))
                    .transpose()?,
            })
        }
        _ => return Err(WireError::UnknownKind { kind }),
    })
}

fn hello_from(v: &Value) -> Result<AgentHello, WireError> {
    let m = Obj::strict(v, "AgentHello", &[1, 2, 3, 4, 5, 6, 7])?;
    let versions = list(
        m.req(3, "AgentHello.versions")?,
        "AgentHello.versions",
        MAX_LIST,
    )?
    .iter()
    .map(|v| u32_of(v, "AgentHello.versions"))
    .collect::<Result<_, _>>()?;
    let c = Obj::strict(
        m.req(6, "AgentHello.caps")?,
        "AgentHello.caps",
        &[1, 2, 3, 4, 5, 6],
    )?;
    let caps = Capabilities {
        ctap_raw: boolean(c.req(1, "caps.ctap_raw")?, "caps.ctap_raw")?,
        webauthn_platform: boolean(
            c.req(2, "caps.webauthn_platform")?,
            "caps.webauthn_platform",
        )?,
        can_reset_in_place: boolean(
            c.req(3, "caps.can_reset_in_place")?,
            "caps.can_reset_in_place",
        )?,
        interactive_holder_ui: boolean(
            c.req(4, "caps.interactive_holder_ui")?,
            "caps.interactive_holder_ui",
        )?,
        bio_ui: boolean(c.req(5, "caps.bio_ui")?, "caps.bio_ui")?,
        max_job_steps: u32_of(c.req(6, "caps.max_job_steps")?, "caps.max_job_steps")?,
    };
    let h = Obj::lenient(m.req(7, "AgentHello.host")?, "AgentHello.host")?;
    let host = HostClaim {
        name: text(h.req(1, "host.name")?, "host.name")?,
        os: text(h.req(2, "host.os")?, "host.os")?,
        elevated: boolean(h.req(3, "host.elevated")?, "host.elevated")?,
        remote_session: boolean(h.req(4, "host.remote_session")?, "host.remote_session")?,
    };
    Ok(AgentHello {
        agent_id: KeyId(bytes_n::<32>(
            m.req(1, "AgentHello.agent_id")?,
            "AgentHello.agent_id",
        )?),
        agent_version: text(
            m.req(2, "AgentHello.agent_version")?,
            "AgentHello.agent_version",
        )?,
        versions,
        session_pub: bytes_n::<65>(
            m.req(4, "AgentHello.session_pub")?,
            "AgentHello.session_pub",
        )?,
        nonce: bytes_n::<16>(m.req(5, "AgentHello.nonce")?, "AgentHello.nonce")?,
        caps,
        host,
    })
}

fn outcome_from(v: &Value) -> Result<Outcome, WireError> {
    let m = Obj::strict(v, "Outcome", &[1, 2, 3, 4, 5, 6])?;
    let status = match uint(m.req(2, "Outcome.status")?, "Outcome.status")? {
        0 => OutcomeStatus::Ok,
        1 => OutcomeStatus::Ctap,
        2 => OutcomeStatus::Cancelled,
        3 => OutcomeStatus::Skipped,
        4 => OutcomeStatus::Unsupported,
        5 => OutcomeStatus::DeviceError,
        _ => {
            return Err(WireError::InvalidValue {
                field: "Outcome.status",
                reason: "unknown status",
            })
        }
    };
    let out = m.get(5).map(step_output_from).transpose()?;
    Ok(Outcome {
        step: u32_of(m.req(1, "Outcome.step")?, "Outcome.step")?,
        status,
        ctap: m.get(3).map(|v| u8_of(v, "Outcome.ctap")).transpose()?,
        retries: m.get(4).map(|v| u32_of(v, "Outcome.retries")).transpose()?,
        out,
        error: m
            .get(6)
            .map(|v| -> Result<DeviceFailure, WireError> {
                let e = Obj::strict(v, "Outcome.error", &[1, 2, 3, 4])?;
                Ok(DeviceFailure {
                    reason: text(e.req(1, "error.reason")?, "error.reason")?,
                    message: text(e.req(2, "error.message")?, "error.message")?,
                    power_cycle_required: e
                        .get(3)
                        .map(|v| boolean(v, "error.power_cycle_required"))
                        .transpose()?,
                    timeout_ms: e.get(4).map(|v| uint(v, "error.timeout_ms")).transpose()?,
                })
            })
            .transpose()?,
    })
}

/// The shape of `out` is told by its keys: 3 present = an assertion, 2 = a credential,
/// otherwise key 1 is getInfo (bytes) or an enrolment count (uint); key 5 alone is a
/// device identifier.
fn step_output_from(v: &Value) -> Result<StepOutput, WireError> {
    let m = Obj::strict(v, "Outcome.out", &[1, 2, 3, 4, 5])?;
    if let Some(id) = m.get(5) {
        if [1, 2, 3, 4].iter().any(|k| m.get(*k).is_some()) {
            return Err(WireError::InvalidValue {
                field: "Outcome.out",
                reason: "a device identifier comes alone",
            });
        }
        return Ok(StepOutput::Identifier {
            identifier: bytes_max(id, "out.identifier", 64)?,
        });
    }
    if m.get(3).is_some() {
        return Ok(StepOutput::Asserted {
            credential_id: bytes(m.req(1, "out.credential_id")?, "out.credential_id")?,
            auth_data: bytes(m.req(2, "out.auth_data")?, "out.auth_data")?,
            signature: bytes(m.req(3, "out.signature")?, "out.signature")?,
            user_handle: m.get(4).map(|v| bytes(v, "out.user_handle")).transpose()?,
        });
    }
    if m.get(4).is_some() {
        return Err(WireError::MissingField {
            field: "out.signature",
        });
    }
    if m.get(2).is_some() {
        return Ok(StepOutput::Made {
            credential_id: bytes(m.req(1, "out.credential_id")?, "out.credential_id")?,
            attestation_object: bytes_max(
                m.req(2, "out.attestation_object")?,
                "out.attestation_object",
                MAX_LARGE_BYTES,
            )?,
        });
    }
    match m.req(1, "Outcome.out")? {
        Value::Unsigned(_) => Ok(StepOutput::Enrolled {
            enrolled: u32_of(m.req(1, "out.enrolled")?, "out.enrolled")?,
        }),
        v => Ok(StepOutput::Info {
            get_info: bytes_max(v, "out.get_info", MAX_LARGE_BYTES)?,
        }),
    }
}
