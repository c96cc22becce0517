//! The agent's end of the split protocol: a [`keysmith_device::DeviceSession`] on the
//! attached key, its messages carried to `keysmith serve` over HTTPS (outbound only), the
//! server's key pinned. A station polls for operator work; a holder's agent asks for an
//! activation, a self-issuance or a sign-in check, signs the holder in (OIDC, the nonce
//! bound to this session) and takes their PIN from the local UI — the PIN goes to the key,
//! never to the server.

use std::time::{Duration, Instant};

use base64::Engine as _;
use keysmith_device::{DeviceConfig, DeviceSession, Event, HolderUi};
use keysmith_wire::{
    Capabilities, HostClaim, NeedHolderAuth, OsEntropy, PublicKey, Request, RequestOp,
};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::device::OpenedDevice;
use crate::key::AgentKey;
use crate::AgentError;

/// What the agent is there for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    /// A station: poll for operator work; with `once`, stop after the first finished
    /// operation (or when `max_wait` passed without work).
    Station {
        /// Stop after one operation.
        once: bool,
        /// How long to wait for work before giving up (with `once`).
        max_wait: Duration,
        /// The holder is at the desk with a UI (issuance with activation there): the
        /// station reports a holder UI, so templates that activate at issuance run.
        holder_at_desk: bool,
    },
    /// The holder activates their issued key (the server finds which by a possession
    /// proof when `key_id` is `None`).
    Activate {
        /// The key, if the holder knows it.
        key_id: Option<String>,
    },
    /// The holder issues the attached blank key to themself.
    SelfIssue {
        /// The credential template.
        template: String,
    },
    /// A sign-in check with the holder's key.
    Verify {
        /// The key.
        key_id: String,
    },
}

/// Reads the server's signing key and checks it against the pinned fingerprint.
pub fn server_key(
    http: &reqwest::blocking::Client,
    base: &str,
    pinned: &[u8; 32],
) -> Result<PublicKey, AgentError> {
    let url = format!("{}/v1/server-key", base.trim_end_matches('/'));
    let r = http.get(&url).send().map_err(|e| AgentError::Http {
        url: url.clone(),
        reason: e.to_string(),
    })?;
    let v: serde_json::Value = r.json().map_err(|e| AgentError::Http {
        url: url.clone(),
        reason: e.to_string(),
    })?;
    let raw = v["public_key"]
        .as_str()
        .and_then(|s| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(s)
                .ok()
        })
        .ok_or_else(|| AgentError::Session("the server sent no key".into()))?;
    let digest: [u8; 32] = Sha256::digest(&raw).into();
    if &digest != pinned {
        return Err(AgentError::Session(
            "the server's key does not match the pinned fingerprint".into(),
        ));
    }
    PublicKey::from_sec1(&raw).map_err(|e| AgentError::Session(format!("server key: {e}")))
}

/// Carries one session's messages to the server: the first opens the session, each later
/// one goes to `/v1/sessions/{id}`. A message is sent again, same bytes, when the answer
/// is lost or the server is busy (the server answers a retransmission with the reply it
/// stored).
struct Carrier<'a> {
    http: &'a reqwest::blocking::Client,
    base: String,
    session: Option<String>,
}

impl Carrier<'_> {
    fn post(&mut self, bytes: &[u8]) -> Result<Vec<u8>, AgentError> {
        let url = match &self.session {
            None => format!("{}/v1/sessions", self.base),
            Some(id) => format!("{}/v1/sessions/{id}", self.base),
        };
        let mut last = String::new();
        for attempt in 0..6u32 {
            if attempt > 0 {
                std::thread::sleep(Duration::from_millis(200 * u64::from(attempt)));
            }
            let r = match self
                .http
                .post(&url)
                .header("content-type", "application/cose")
                .body(bytes.to_vec())
                .send()
            {
                Ok(r) => r,
                Err(e) => {
                    last = e.to_string();
                    continue;
                }
            };
            let status = r.status().as_u16();
            let location = r
                .headers()
                .get("location")
                .and_then(|l| l.to_str().ok())
                .map(str::to_owned);
            let body = r.bytes().map(|b| b.to_vec()).unwrap_or_default();
            match status {
                200 | 201 => {
                    if self.session.is_none() {
                        let id = location
                            .and_then(|l| l.rsplit('/').next().map(str::to_owned))
                            .ok_or_else(|| {
                                AgentError::Session("the server named no session".into())
                            })?;
                        self.session = Some(id);
                    }
                    return Ok(body);
                }
                // Busy (another node still works on it) or unavailable: same bytes again.
                409 | 503 if attempt < 5 => {
                    last = String::from_utf8_lossy(&body).into_owned();
                    continue;
                }
                _ => {
                    return Err(AgentError::Refused {
                        url,
                        status,
                        reason: String::from_utf8_lossy(&body).chars().take(300).collect(),
                    })
                }
            }
        }
        Err(AgentError::Http { url, reason: last })
    }
}

/// Signs the holder in for `need` and returns their ID token (for the server) and, when
/// the server asked for delegated registration, their Graph token (kept here).
pub type SignIn<'a> =
    dyn FnMut(&NeedHolderAuth) -> Result<crate::me::HolderTokens, AgentError> + 'a;

/// Runs one session on `device` in `mode`; returns the final answer as JSON (`job_ack`
/// with the key's id and state, or `done`).
#[allow(clippy::too_many_arguments)]
pub fn run(
    http: &reqwest::blocking::Client,
    base: &str,
    server_key: PublicKey,
    key: &AgentKey,
    device: &mut OpenedDevice,
    mode: &Mode,
    ui: &mut dyn HolderUi,
    sign_in: &mut SignIn<'_>,
) -> Result<serde_json::Value, AgentError> {
    let agent_key = {
        let scalar = Zeroizing::new(<[u8; 32]>::from(key.signing_key().to_bytes()));
        keysmith_wire::SigningKey::from_scalar(&scalar)
            .map_err(|e| AgentError::Session(format!("agent key: {e}")))?
    };
    let started = Instant::now();
    let now = || u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let holder = !matches!(mode, Mode::Station { .. });
    let holder_ui = holder
        || matches!(
            mode,
            Mode::Station {
                holder_at_desk: true,
                ..
            }
        );
    let host = crate::enroll::HostInfo::current();
    // What this process can reach: raw CTAP, or (an unelevated Windows process) only the
    // platform WebAuthn API; the server refuses plans it cannot carry out up front.
    let detected = fido_transport::platform::Capabilities::detect();
    let (mut session, hello) = DeviceSession::new(
        DeviceConfig {
            agent_key,
            server_keys: vec![server_key],
            caps: Capabilities {
                ctap_raw: detected.ctap_raw,
                webauthn_platform: detected.webauthn_platform(),
                can_reset_in_place: device.can_reset_in_place,
                interactive_holder_ui: holder_ui,
                bio_ui: false,
                max_job_steps: 64,
            },
            host: HostClaim {
                name: host.name,
                os: host.os,
                elevated: detected.ctap_raw && cfg!(windows),
                remote_session: false,
            },
            agent_version: env!("CARGO_PKG_VERSION").into(),
        },
        &mut OsEntropy,
    );
    let mut carrier = Carrier {
        http,
        base: base.trim_end_matches('/').to_owned(),
        session: None,
    };
    let session_err = |e: keysmith_device::SessionError| AgentError::Session(e.to_string());
    let reply = carrier.post(&hello)?;
    match session.receive(&reply, now()).map_err(session_err)? {
        Event::Established => {}
        other => return Err(AgentError::Session(format!("no ServerHello: {other:?}"))),
    }
    let report = session
        .report(
            &mut device.authenticator,
            device.transport,
            device.serial.clone(),
            device.serial.as_ref().map(|_| "transport".to_owned()),
        )
        .map_err(session_err)?;
    let mut msg = report;
    let mut asked = false;
    // The holder's delegated Graph token, after a sign-in that asked for one (zeroized
    // when the session ends).
    let mut graph: Option<crate::me::GraphAccess> = None;
    loop {
        let reply = carrier.post(&msg)?;
        match session.receive(&reply, now()).map_err(session_err)? {
            Event::Job(job) => {
                tracing::info!(operation = %job.operation, steps = job.steps, "running a job");
                msg = session
                    .run_job(now(), &mut device.authenticator, ui)
                    .map_err(session_err)?;
            }
            Event::JobRefused { reply, reason } => {
                tracing::warn!(%reason, "job refused by this device half");
                msg = reply;
            }
            Event::NeedHolderAuth(need) => {
                let tokens = sign_in(&need)?;
                graph = tokens.graph;
                msg = session.holder_auth(tokens.id_token).map_err(session_err)?;
            }
            Event::HolderGraph(call) => {
                // The holder's own Graph call; the token stays here, the answer goes to
                // the server as it came.
                let result = crate::me::call(graph.as_ref(), &call);
                msg = session.holder_graph_result(result).map_err(session_err)?;
            }
            Event::Wait { retry_ms } => {
                if !asked {
                    asked = true;
                    msg = match mode {
                        Mode::Station { .. } => session.ready().map_err(session_err)?,
                        Mode::Activate { key_id } => session
                            .request(Request {
                                operation: RequestOp::Activate,
                                template: None,
                                key_id: key_id.clone(),
                            })
                            .map_err(session_err)?,
                        Mode::SelfIssue { template } => session
                            .request(Request {
                                operation: RequestOp::SelfIssue,
                                template: Some(template.clone()),
                                key_id: None,
                            })
                            .map_err(session_err)?,
                        Mode::Verify { key_id } => session
                            .request(Request {
                                operation: RequestOp::Verify,
                                template: None,
                                key_id: Some(key_id.clone()),
                            })
                            .map_err(session_err)?,
                    };
                    continue;
                }
                if let Mode::Station {
                    once: true,
                    max_wait,
                    ..
                } = mode
                {
                    if started.elapsed() >= *max_wait {
                        return Ok(serde_json::json!({"outcome": "no_work"}));
                    }
                }
                std::thread::sleep(Duration::from_millis(retry_ms.clamp(50, 10_000)));
                msg = session.ready().map_err(session_err)?;
            }
            Event::JobAck(ack) => {
                let out = serde_json::json!({
                    "outcome": "job_ack",
                    "key_id": ack.key_id,
                    "state": ack.state,
                    "needs_reissue": ack.needs_reissue,
                    "registered": ack.registered,
                });
                return Ok(out);
            }
            Event::Done { key_id, state } => {
                return Ok(serde_json::json!({"outcome": "done", "key_id": key_id, "state": state}))
            }
            Event::Refused(r) => {
                return Err(AgentError::Session(format!(
                    "refused ({}): {}",
                    r.code.as_str(),
                    r.reason
                )))
            }
            Event::Retransmission { reply: Some(r) } => msg = r,
            other => return Err(AgentError::Session(format!("unexpected: {other:?}"))),
        }
    }
}
