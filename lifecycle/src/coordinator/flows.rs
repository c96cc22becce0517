//! The operations a session carries: operator work at a station, and the holder's own
//! operations after they signed in. Each runs as a flow of the engine in a thread of the
//! node that started it, over a [`RemoteLink`] to the device half.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use keysmith_wire::{
    holder_nonce, HolderAuth, JobAck, NeedHolderAuth, PublicKey, RefusalCode, Refused, Request,
    RequestOp, ServerMessage,
};

use super::context::{unhex, FlowJson, Phase, SessionContext};
use super::remote_link::{finish, RemoteLink};
use super::session::{Dispatched, Reply};
use super::{AgentClass, AgentEntry, Coordinator, CoordinatorError, Rejected};
use crate::engine::{nonce_digest, Engine, IssueRequest};
use crate::remote::ServerChannel;
use crate::store::{KeyRecord, SplitSession, StationWork, StationWorkState};
use crate::template::KeyTransport;
use crate::{Error, ErrorKind};

/// Operator work for a station, as queued (the `request` of [`StationWork`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "operation", rename_all = "snake_case", deny_unknown_fields)]
pub enum StationRequest {
    /// Central issuance of the key attached at the station.
    Issue {
        /// The user (object id or UPN).
        user: String,
        /// The loaded credential template.
        template: String,
    },
    /// Reissue of a recorded key to its holder (revoke, retire, unregister and issue
    /// again, as planned for its state), with that key attached at the station: a key
    /// whose AAGUID and serial name another key is refused before anything is done.
    Reissue {
        /// The key.
        key_id: String,
    },
}

/// A flow to start.
pub(super) enum FlowStart {
    /// Operator work at a station.
    Station(StationWork, StationRequest),
    /// A holder's operation after sign-in.
    Holder {
        operation: HolderOp,
        id_token: Zeroizing<String>,
        nonce: String,
    },
}

/// What a signed-in holder does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum HolderOp {
    /// Issue the attached blank key to themself with `template`.
    SelfIssue { template: String },
    /// Set their PIN on their issued key: `key_id`, or (when the holder does not know
    /// it) whichever of their issued keys a possession proof finds attached.
    Activate { key_id: Option<String> },
    /// A sign-in check with their key `key_id`.
    Verify { key_id: String },
}

/// A short code the agent's UI and the sign-in page both show (review G2): the first
/// 6 characters of the nonce, grouped 3 + 3.
fn session_code(nonce: &str) -> String {
    let c: String = nonce
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(6)
        .collect::<String>()
        .to_ascii_uppercase();
    match c.get(..3).zip(c.get(3..)) {
        Some((a, b)) => format!("{a}-{b}"),
        None => c,
    }
}

fn session_bytes(row: &SplitSession) -> Option<([u8; 65], [u8; 16])> {
    Some((
        <[u8; 65]>::try_from(row.session_pub.as_slice()).ok()?,
        <[u8; 16]>::try_from(row.server_nonce.as_slice()).ok()?,
    ))
}

impl Coordinator {
    /// A station polls for operator work: the oldest queued for it starts, if any.
    pub(super) fn station_work(
        &self,
        agent: &AgentEntry,
        row: &SplitSession,
        ctx: &mut SessionContext,
        now: u64,
    ) -> Result<Dispatched, CoordinatorError> {
        let wait = || {
            Ok(Dispatched::Reply(Reply::new(
                ServerMessage::Wait {
                    retry_ms: self.config.poll_ms,
                },
                self.config.message_ttl_ms,
            )))
        };
        if ctx.report.is_none() || self.at_flow_limit() {
            // No key reported yet, or this node runs all the flows it may: nothing starts
            // (queued work stays queued for the next poll).
            return wait();
        }
        let Some(work) =
            self.engine
                .store()
                .station_work_take(&agent.agent_id, &row.session_id, now)?
        else {
            return wait();
        };
        let request: StationRequest = match serde_json::from_str(&work.request) {
            Ok(r) => r,
            Err(e) => {
                let outcome = serde_json::json!({ "error": format!("unreadable request: {e}") });
                self.engine.store().station_work_finish(
                    &work.work_id,
                    StationWorkState::Failed,
                    &outcome.to_string(),
                    now,
                )?;
                return Err(
                    Rejected::new(RefusalCode::Internal, "queued work is unreadable").into(),
                );
            }
        };
        ctx.flow = Some(FlowJson {
            operation: "issue".into(),
            work_id: Some(work.work_id.clone()),
            started_ms: now,
        });
        Ok(Dispatched::Start(FlowStart::Station(work, request)))
    }

    /// A holder's agent asks for a holder operation: the holder signs in first, with a
    /// nonce bound to this session (`holder_nonce(session_pub, server_nonce)`), recorded so
    /// the token is good for one use.
    pub(super) fn holder_request(
        &self,
        _agent: &AgentEntry,
        row: &SplitSession,
        ctx: &mut SessionContext,
        req: Request,
        now: u64,
    ) -> Result<Reply, CoordinatorError> {
        let operation = match req.operation {
            RequestOp::Activate => "activate",
            RequestOp::SelfIssue => "self_issue",
            RequestOp::Verify => "verify",
            _ => {
                return Err(Rejected::new(
                    RefusalCode::NotAllowed,
                    "this operation is not started by a holder",
                )
                .into())
            }
        };
        if ctx.phase != Phase::Open {
            return Err(Rejected::new(
                RefusalCode::NotAllowed,
                "the session is already busy with an operation",
            )
            .into());
        }
        if req.operation == RequestOp::Verify && req.key_id.is_none() {
            return Err(Rejected::new(
                RefusalCode::NotAllowed,
                "a sign-in check names the key (key_id)",
            )
            .into());
        }
        if req.operation == RequestOp::SelfIssue && req.template.is_none() {
            return Err(Rejected::new(
                RefusalCode::NotAllowed,
                "self-issuance names the credential template",
            )
            .into());
        }
        let oidc = self.holder_oidc(req.template.as_deref())?;
        // Delegated registration: the holder's sign-in also asks for the IdP scope their
        // device half registers with (the token stays there).
        let delegated_scope = match (&req.operation, req.template.as_deref()) {
            (RequestOp::SelfIssue, Some(t)) => self
                .engine
                .delegated_scope_of(t)
                .map_err(|e| Rejected::new(RefusalCode::NotAllowed, e.to_string()))?,
            // The key (and so its template) is found by a possession proof after the
            // sign-in: ask for the scope when a template activating by self-service
            // registers with the holder's token.
            (RequestOp::Activate, _) => self.engine.activation_delegated_scope(),
            _ => None,
        };
        let Some((session_pub, server_nonce)) = session_bytes(row) else {
            return Err(CoordinatorError::Context {
                session_id: row.session_id.clone(),
                reason: "session key or nonce has the wrong length".into(),
            });
        };
        let nonce = holder_nonce(&session_pub, &server_nonce);
        self.engine
            .store()
            .put_nonce(&nonce_digest(&nonce), row.expires_ms, now)?;
        ctx.phase = Phase::AwaitHolder {
            operation: operation.to_owned(),
            template: req.template,
            key_id: req.key_id,
        };
        Ok(Reply::new(
            ServerMessage::NeedHolderAuth(NeedHolderAuth {
                issuer: oidc.issuer.clone(),
                client_id: oidc.audience.clone(),
                scopes: ["openid".to_owned(), "profile".to_owned()]
                    .into_iter()
                    .chain(delegated_scope)
                    .collect(),
                session_code: session_code(&nonce),
                nonce,
                login_hint: None,
                max_age_s: u32::try_from(oidc.max_age_secs).unwrap_or(u32::MAX),
            }),
            self.config.session_ttl_ms,
        ))
    }

    /// The OIDC settings holders sign in with: the named template's, or (activation and
    /// sign-in checks, before the key is known) those every loaded template that allows
    /// holder self-service shares.
    fn holder_oidc(
        &self,
        template: Option<&str>,
    ) -> Result<crate::template::OidcConfig, CoordinatorError> {
        let none = || -> CoordinatorError {
            Rejected::new(
                RefusalCode::NotAllowed,
                "no credential template allows holder self-service here",
            )
            .into()
        };
        match template {
            Some(name) => self
                .engine
                .holder_oidc_of(name)
                .map_err(|e| Rejected::new(RefusalCode::NotAllowed, e.to_string()))?
                .ok_or_else(none),
            None => self.engine.shared_holder_oidc().ok_or_else(none),
        }
    }

    /// The holder's ID token: the operation asked for starts; the engine checks the token
    /// (issuer, audience, expiry, the session-bound nonce, single use, freshness, MFA,
    /// tenant) and the owner before any device step.
    pub(super) fn holder_auth(
        &self,
        agent: &AgentEntry,
        row: &SplitSession,
        ctx: &mut SessionContext,
        auth: HolderAuth,
        now: u64,
    ) -> Result<Dispatched, CoordinatorError> {
        let Phase::AwaitHolder {
            operation,
            template,
            key_id,
        } = ctx.phase.clone()
        else {
            return Err(Rejected::new(RefusalCode::NotAllowed, "no sign-in was asked for").into());
        };
        let op = match (operation.as_str(), template, key_id) {
            ("self_issue", Some(template), _) => HolderOp::SelfIssue { template },
            ("activate", _, key_id) => HolderOp::Activate { key_id },
            ("verify", _, Some(key_id)) => HolderOp::Verify { key_id },
            _ => {
                return Err(CoordinatorError::Context {
                    session_id: row.session_id.clone(),
                    reason: format!("holder operation {operation:?} without its key or template"),
                })
            }
        };
        if agent.class == AgentClass::Holder && ctx.report.is_none() {
            return Err(Rejected::new(RefusalCode::NotAllowed, "no key was reported").into());
        }
        let Some((session_pub, server_nonce)) = session_bytes(row) else {
            return Err(CoordinatorError::Context {
                session_id: row.session_id.clone(),
                reason: "session key or nonce has the wrong length".into(),
            });
        };
        if self.at_flow_limit() {
            return Err(Rejected::new(
                RefusalCode::Busy,
                "the server runs as many operations as it may; sign in again shortly",
            )
            .into());
        }
        ctx.phase = Phase::Open;
        ctx.flow = Some(FlowJson {
            operation,
            work_id: None,
            started_ms: now,
        });
        Ok(Dispatched::Start(FlowStart::Holder {
            operation: op,
            id_token: auth.id_token,
            nonce: holder_nonce(&session_pub, &server_nonce),
        }))
    }

    /// Starts `start` in a thread of this node, over a link to the session's device half.
    pub(super) fn spawn_flow(
        &self,
        session_id: &str,
        agent: &AgentEntry,
        start: FlowStart,
        now: u64,
    ) {
        let env = FlowEnv {
            engine: self.engine.clone(),
            key: self.key.clone(),
            config: self.config.clone(),
            session_id: session_id.to_owned(),
            agent_key: agent.public_key,
        };
        let running = FlowCount::start(&self.flows);
        let spawned = std::thread::Builder::new()
            .name(format!(
                "keysmith-flow-{}",
                session_id.get(..8).unwrap_or_default()
            ))
            .spawn(move || {
                let _running = running;
                env.run(start, now);
            });
        if let Err(e) = spawned {
            // The waiting handler sees the session stall and closes it.
            tracing::error!(error = %e, "could not start a flow thread");
        }
    }
}

/// One running flow, counted until dropped (when its thread ends, or its start failed).
struct FlowCount(Arc<AtomicUsize>);

impl FlowCount {
    fn start(flows: &Arc<AtomicUsize>) -> FlowCount {
        flows.fetch_add(1, Ordering::SeqCst);
        FlowCount(flows.clone())
    }
}

impl Drop for FlowCount {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// What a flow thread needs from its coordinator.
struct FlowEnv {
    engine: Arc<Engine>,
    key: keysmith_wire::SigningKey,
    config: super::CoordinatorConfig,
    session_id: String,
    agent_key: [u8; 65],
}

impl FlowEnv {
    fn link(&self, now: u64) -> Result<(RemoteLink, SessionContext), Error> {
        let unexpected = |what| -> Error { crate::remote::LinkError::Unexpected(what).into() };
        let row = self
            .engine
            .store()
            .split_session_get(&self.session_id)?
            .ok_or_else(|| unexpected("the session is gone"))?;
        let ctx = SessionContext::from_json(&row.context)
            .map_err(|_| unexpected("the session's context is unreadable"))?;
        let (session_pub, server_nonce) =
            session_bytes(&row).ok_or_else(|| unexpected("the session's keys are malformed"))?;
        let sid = super::session::session_id_from_hex(&self.session_id)
            .ok_or_else(|| unexpected("the session id is malformed"))?;
        let agent = PublicKey::from_sec1(&self.agent_key)
            .map_err(|_| unexpected("the agent's key is malformed"))?;
        let report = ctx
            .report
            .as_ref()
            .ok_or_else(|| unexpected("no device report"))?;
        let raw = report.get_info_hex.as_deref().and_then(unhex);
        let info = crate::remote::parse_info(raw.as_deref())?;
        let channel = ServerChannel::resume(
            self.key.clone(),
            agent.clone(),
            sid,
            session_pub,
            server_nonce,
            row.sent_seq.saturating_add(1),
        );
        Ok((
            RemoteLink {
                engine: self.engine.clone(),
                session_id: self.session_id.clone(),
                channel,
                agent,
                info,
                holder_ui: ctx.caps.interactive_holder_ui,
                raw_ctap: ctx.caps.ctap_raw,
                current_known: false,
                config: self.config.clone(),
                started: (now, Instant::now()),
                last_job: None,
                info_claimed: false,
                delegated: false,
            },
            ctx,
        ))
    }

    fn run(self, start: FlowStart, now: u64) {
        let (mut link, ctx) = match self.link(now) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(error = %e, session_id = %self.session_id, "flow could not start");
                return;
            }
        };
        let report = ctx.report.clone().unwrap_or_default();
        let transport = match report.transport.as_str() {
            "usb" => Some(KeyTransport::Usb),
            "nfc" => Some(KeyTransport::Nfc),
            "software" if self.config.allow_software_keys => Some(KeyTransport::Software),
            _ => None,
        };
        let serial = report.serial_claim.clone().unwrap_or_default();
        // Queued work ends done or failed, whatever ends the flow (a refused transport too).
        let work_id = match &start {
            FlowStart::Station(work, _) => Some(work.work_id.clone()),
            FlowStart::Holder { .. } => None,
        };
        let result: Result<KeyRecord, Error> = match (start, transport) {
            (_, None) => Err(crate::engine::PlanError::Unsupported {
                step: "device",
                reason: format!(
                    "a key attached as {:?} is not accepted by this server",
                    report.transport
                ),
            }
            .into()),
            (FlowStart::Station(work, StationRequest::Issue { user, template }), Some(t)) => {
                let request = IssueRequest {
                    actor: work.actor.clone(),
                    user,
                    serial,
                    transport: t,
                    can_reset_in_place: ctx.caps.can_reset_in_place,
                };
                self.engine.issue_via(&request, &template, &mut link, now)
            }
            (FlowStart::Station(work, StationRequest::Reissue { key_id }), Some(t)) => {
                let attached = crate::engine::key_id_for(
                    &crate::remote::DeviceLink::info(&link).aaguid,
                    &serial,
                );
                match self.engine.key(&key_id) {
                    Err(e) => Err(e),
                    Ok(_) if attached != key_id => Err(crate::engine::PlanError::Unsupported {
                        step: "device",
                        reason: format!(
                            "the key attached ({attached}) is not the key to reissue ({key_id})"
                        ),
                    }
                    .into()),
                    Ok(key) => {
                        let request = IssueRequest {
                            actor: work.actor.clone(),
                            user: key.user_id.clone().unwrap_or_default(),
                            serial,
                            transport: t,
                            can_reset_in_place: ctx.caps.can_reset_in_place,
                        };
                        self.engine.reissue_via(&request, key, &mut link, now)
                    }
                }
            }
            (
                FlowStart::Holder {
                    operation,
                    id_token,
                    nonce,
                },
                Some(t),
            ) => match operation {
                HolderOp::SelfIssue { template } => {
                    link.delegated =
                        matches!(self.engine.delegated_scope_of(&template), Ok(Some(_)));
                    self.engine
                        .self_issue_via(&id_token, &nonce, &template, &serial, t, &mut link, now)
                }
                // Always by possession proof first, named key or not.
                HolderOp::Activate { key_id } => {
                    // The holder's calls are there when the sign-in asked for them; the
                    // key's template decides whether its registration uses them.
                    link.delegated = self.engine.activation_delegated_scope().is_some();
                    self.engine.self_set_pin_probed_via(
                        &id_token,
                        &nonce,
                        key_id.as_deref(),
                        &mut link,
                        now,
                    )
                }
                HolderOp::Verify { key_id } => self
                    .engine
                    .self_verify_via(&key_id, &id_token, &nonce, &mut link, now),
            },
        };
        let msg = match &result {
            Ok(key) => {
                let registered = self
                    .engine
                    .store()
                    .list_passkeys(&key.key_id)
                    .map(|p| p.iter().filter(|p| p.idp_method_id.is_some()).count())
                    .unwrap_or(0);
                ServerMessage::JobAck(JobAck {
                    key_id: key.key_id.clone(),
                    state: key.state.as_str().to_owned(),
                    needs_reissue: key.needs_reissue,
                    registered: u32::try_from(registered).unwrap_or(u32::MAX),
                })
            }
            Err(e) => ServerMessage::Refused(refusal(e)),
        };
        if let Some(work_id) = work_id {
            let (state, outcome) = match &result {
                Ok(k) => (
                    StationWorkState::Done,
                    serde_json::json!({"key_id": k.key_id, "state": k.state.as_str()}),
                ),
                Err(e) => (
                    StationWorkState::Failed,
                    serde_json::json!({"error": e.to_string(), "kind": e.kind().as_str()}),
                ),
            };
            if let Err(e) = self.engine.store().station_work_finish(
                &work_id,
                state,
                &outcome.to_string(),
                link.engine_now(),
            ) {
                tracing::error!(error = %e, work_id, "station work outcome not recorded");
            }
        }
        if let Err(e) = finish(&mut link, msg) {
            // Nobody waits for the reply (the device half went silent): the session ends.
            tracing::warn!(error = %e, session_id = %self.session_id, "flow ended without a waiting message");
            close_after_flow(&self.engine, &self.session_id, link.engine_now());
        }
    }
}

/// Closes a session whose flow ended with nobody waiting for its reply.
fn close_after_flow(engine: &Engine, session_id: &str, now: u64) {
    for _ in 0..5 {
        let Ok(Some(mut row)) = engine.store().split_session_get(session_id) else {
            return;
        };
        let mut ctx = SessionContext::from_json(&row.context).unwrap_or_default();
        ctx.flow = None;
        ctx.inbox = None;
        ctx.phase = Phase::Finished;
        let expected = row.version;
        row.state = crate::store::SplitSessionState::Broken;
        row.context = ctx.to_json();
        row.version = expected.saturating_add(1);
        let moved = engine.store().split_session_update(&row, expected, now);
        super::wake::ring(session_id);
        if matches!(moved, Ok(true) | Err(_)) {
            return;
        }
    }
}

/// The signed refusal a failed flow answers with: a stable code for the device half, the
/// error's message (never a secret) for people.
fn refusal(e: &Error) -> Refused {
    use crate::engine::{EngineError, SelfServiceError};
    use crate::state::TransitionError;
    let mut needs_reissue = None;
    let code = match e {
        Error::Engine(EngineError::SelfService(s)) => match s {
            SelfServiceError::NotKeyOwner { .. } => RefusalCode::NotKeyOwner,
            SelfServiceError::SelfServiceNotAllowed { .. }
            | SelfServiceError::AlreadyIssued { .. }
            | SelfServiceError::HolderPinRequired => RefusalCode::NotAllowed,
            _ => RefusalCode::HolderAuthFailed,
        },
        Error::Transition(TransitionError::ChallengeExpired { .. }) => {
            needs_reissue = Some(true);
            RefusalCode::ChallengeExpired
        }
        // The holder's own IdP call refused their token (a stale MFA, a missing grant):
        // the holder signs in again.
        Error::Idp(crate::idp::IdpError::Call {
            operation,
            status: Some(401 | 403),
            ..
        }) if operation.ends_with("(holder)") => RefusalCode::HolderAuthFailed,
        Error::Engine(EngineError::Attestation { .. })
        | Error::Engine(EngineError::SignIn { .. }) => RefusalCode::VerificationFailed,
        Error::Engine(EngineError::Device {
            cause: crate::DeviceError::Fault(crate::DeviceFault::WrongKey),
            ..
        }) => RefusalCode::WrongKey,
        e => match e.kind() {
            ErrorKind::Usage | ErrorKind::Transition | ErrorKind::Template => {
                RefusalCode::NotAllowed
            }
            ErrorKind::Device => RefusalCode::VerificationFailed,
            ErrorKind::Idp | ErrorKind::Repository | ErrorKind::Internal => RefusalCode::Internal,
        },
    };
    Refused {
        code,
        reason: e.to_string(),
        needs_reissue,
        step: None,
    }
}
