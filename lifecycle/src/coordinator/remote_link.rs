//! The engine's link to a remote device half. A flow runs on the node that started it, in
//! a thread of its own; its jobs go out as the reply to the device message the session is
//! waiting on, and the device half's result comes back through the session row, whichever
//! node received it (its handler puts the message in the row's inbox and waits for the
//! flow's next reply). If the flow's node dies, the session stalls and is closed; the
//! device half starts over and the engine replans from the key's recorded state (the
//! journal guards every IdP call made before).

use std::sync::Arc;
use std::time::{Duration, Instant};

use fido_core::commands::AuthenticatorInfo;
use keysmith_wire::{
    open_agent, AgentMessage, DeviceStep, HolderGraphCall, HolderGraphOp, Outcome, OutcomeStatus,
    PinSource, PublicKey, ServerMessage, StepOutput,
};

use super::claims;
use super::context::{hex, unhex, SessionContext};
use super::CoordinatorConfig;
use crate::engine::Engine;
use crate::idp::RelayedAnswer;
use crate::remote::{DeviceLink, JobSpec, LinkError, ServerChannel, JOB_TTL_MS};
use crate::store::{SplitSession, SplitSessionState};
use crate::Error;

/// The server's end of a session whose device half is elsewhere.
pub(super) struct RemoteLink {
    pub(super) engine: Arc<Engine>,
    pub(super) session_id: String,
    pub(super) channel: ServerChannel,
    pub(super) agent: PublicKey,
    pub(super) info: AuthenticatorInfo,
    pub(super) holder_ui: bool,
    /// The device half reported raw CTAP access.
    pub(super) raw_ctap: bool,
    pub(super) current_known: bool,
    pub(super) config: CoordinatorConfig,
    /// The caller's time when the flow started, and the instant it was read: the flow's
    /// clock is that time plus what elapsed since (the coordinator reads no wall clock).
    pub(super) started: (u64, Instant),
    /// The last job whose result was accepted (a final `JobAck` names it).
    pub(super) last_job: Option<keysmith_wire::JobId>,
    /// The device report's getInfo was recorded as claimed.
    pub(super) info_claimed: bool,
    /// The flow registers with the holder's delegated token (the device half's calls).
    pub(super) delegated: bool,
}

fn link_err(what: &'static str) -> Error {
    LinkError::Unexpected(what).into()
}

impl RemoteLink {
    fn load(&self) -> Result<(SplitSession, SessionContext), Error> {
        let row = self
            .engine
            .store()
            .split_session_get(&self.session_id)?
            .ok_or_else(|| link_err("the session is gone"))?;
        if row.state != SplitSessionState::Open {
            return Err(link_err("the session was closed"));
        }
        let ctx = SessionContext::from_json(&row.context)
            .map_err(|_| link_err("the session's context is unreadable"))?;
        Ok((row, ctx))
    }

    /// Sends the message `build` signs (given the next server seq) as the reply to the
    /// device message the session waits on. `finished` closes the session with it.
    pub(super) fn post(
        &mut self,
        finished: bool,
        build: impl FnOnce(&mut ServerChannel) -> Result<Vec<u8>, LinkError>,
    ) -> Result<(), Error> {
        let (mut row, mut ctx) = self.load()?;
        if !row.reply.is_empty() || ctx.processing_since.is_none() {
            return Err(link_err("no device message waits for a reply"));
        }
        let seq = row.sent_seq.saturating_add(1);
        self.channel.set_next_out(seq);
        let bytes = build(&mut self.channel)?;
        let expected = row.version;
        row.reply = bytes.clone();
        row.sent_seq = seq;
        ctx.processing_since = None;
        if finished {
            ctx.flow = None;
            ctx.phase = super::context::Phase::Finished;
            row.state = SplitSessionState::Done;
        }
        row.context = ctx.to_json();
        row.version = expected.saturating_add(1);
        let now = self.engine_now();
        // The reply and its log entry: one commit.
        let m = super::session::split_message(
            &self.session_id,
            crate::store::SplitDirection::Out,
            seq,
            bytes,
            now,
        );
        if !self
            .engine
            .store()
            .split_session_update_logged(&row, expected, now, &[m])?
        {
            return Err(link_err("the session moved while the flow replied"));
        }
        super::wake::ring(&self.session_id);
        Ok(())
    }

    /// Waits for the device message a handler puts in the session's inbox.
    fn await_inbox(&self, deadline: Instant) -> Result<Vec<u8>, Error> {
        let mut pause = super::wake::FIRST_WAIT;
        loop {
            let seen = super::wake::seen(&self.session_id);
            let (mut row, mut ctx) = self.load()?;
            if let Some(h) = ctx.inbox.take() {
                let bytes = unhex(&h).ok_or_else(|| link_err("the inbox is not hex"))?;
                let expected = row.version;
                row.context = ctx.to_json();
                row.version = expected.saturating_add(1);
                if self
                    .engine
                    .store()
                    .split_session_update(&row, expected, self.engine_now())?
                {
                    return Ok(bytes);
                }
                continue;
            }
            if Instant::now() >= deadline {
                return Err(LinkError::NoAnswer.into());
            }
            super::wake::wait(&self.session_id, seen, pause);
            pause = super::wake::back_off(pause);
        }
    }

    pub(super) fn engine_now(&self) -> u64 {
        let elapsed = u64::try_from(self.started.1.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.started.0.saturating_add(elapsed)
    }
}

impl DeviceLink for RemoteLink {
    fn info(&self) -> &AuthenticatorInfo {
        &self.info
    }
    fn has_holder_pin(&self) -> bool {
        self.holder_ui
    }
    fn raw_ctap(&self) -> bool {
        self.raw_ctap
    }
    fn current_known(&self) -> bool {
        self.current_known
    }
    fn set_current_known(&mut self, known: bool) {
        self.current_known = known;
    }
    fn delegated(&self) -> bool {
        self.delegated
    }
    fn holder_call(
        &mut self,
        op: HolderGraphOp,
        body: Option<String>,
    ) -> Result<RelayedAnswer, Error> {
        if !self.delegated {
            return Err(link_err(
                "this session registers with the server's permission",
            ));
        }
        let ttl = self.config.message_ttl_ms;
        let msg = ServerMessage::HolderGraph(HolderGraphCall { op, body });
        self.post(false, |ch| Ok(ch.message_with_ttl(None, msg, ttl)))?;
        // The holder's calls are two HTTPS requests at most: a minute is plenty.
        let deadline = Instant::now() + Duration::from_millis(ttl.saturating_add(60_000));
        let bytes = self.await_inbox(deadline)?;
        let opened = open_agent(&bytes, &self.agent).map_err(LinkError::from)?;
        match opened.envelope.msg {
            AgentMessage::HolderGraphResult(r) if r.op == op => Ok(RelayedAnswer {
                status: r.status,
                body: r.body,
                error: r.error,
                request_id: r.request_id,
            }),
            AgentMessage::HolderGraphResult(_) => {
                Err(link_err("the device half answered another holder call"))
            }
            AgentMessage::Abort(a) => Err(LinkError::Aborted {
                reason: a.reason,
                detail: a.detail,
            }
            .into()),
            _ => Err(link_err(
                "a device message that is not the holder call's answer",
            )),
        }
    }
    /// A one-step job reading the key's device identifier with the PIN the device
    /// session holds (set or verified earlier in this session). Without that PIN, or on
    /// a key without `encIdentifier`, nothing is asked: the PIN is not sent again for it.
    fn device_identifier(&mut self, _pin: &str) -> Result<Option<Vec<u8>>, Error> {
        if !self.raw_ctap || !self.current_known || self.info.enc_identifier.is_none() {
            return Ok(None);
        }
        let outcomes = self.run(JobSpec {
            operation: "identify".into(),
            key_id: None,
            expect_aaguid: Some(self.info.aaguid),
            deadline_ms: JOB_TTL_MS,
            steps: vec![DeviceStep::ReadIdentifier {
                pin: PinSource::Current,
            }],
            secrets: Vec::new(),
        })?;
        let Some(o) = outcomes.into_iter().next() else {
            return Err(link_err("an identify job without its outcome"));
        };
        match (o.status, o.out.clone()) {
            (OutcomeStatus::Ok, Some(StepOutput::Identifier { identifier })) => {
                Ok(Some(identifier))
            }
            (OutcomeStatus::Ok, None) | (OutcomeStatus::Unsupported, _) => Ok(None),
            (OutcomeStatus::Ok, Some(_)) => Err(link_err(
                "an identify step answered with another step's output",
            )),
            (_, _) => Err(keysmith_device::OpError::from_outcome(&o)
                .map(Error::from)
                .unwrap_or_else(|| link_err("the identify step failed without a reason"))),
        }
    }
    fn run(&mut self, spec: JobSpec) -> Result<Vec<Outcome>, Error> {
        let ttl = JOB_TTL_MS;
        if !spec.secrets.is_empty() {
            // The transport PIN leaves the server, sealed to this session: audited, and
            // refused (the key marked for reissue) past the limit.
            let key_id = spec.key_id.clone().unwrap_or_default();
            let to = format!(
                "{} job to session {} of agent {}",
                spec.operation,
                self.session_id,
                hex(&self.agent.key_id().0).get(..16).unwrap_or_default()
            );
            let limit = if spec.operation == "activate" {
                self.config.max_transport_pin_releases
            } else {
                u32::MAX
            };
            self.engine
                .release_transport_pin(&key_id, &to, limit, self.engine_now())?;
        }
        let claims: Vec<Option<String>> = spec.steps.iter().map(claims::step_claim).collect();
        let key_id = spec.key_id.clone();
        self.post(false, |ch| ch.job(spec, ttl))?;
        let deadline = Instant::now() + Duration::from_millis(ttl.saturating_add(5_000));
        let bytes = self.await_inbox(deadline)?;
        let opened = open_agent(&bytes, &self.agent).map_err(LinkError::from)?;
        let env = opened.envelope;
        match env.msg {
            AgentMessage::JobResult(r) => {
                self.channel.check_result(env.job, &r)?;
                self.last_job = env.job;
                let mut made = Vec::new();
                if !self.info_claimed {
                    made.push(claims::info_claim(&self.info));
                    self.info_claimed = true;
                }
                made.extend(claims::outcome_claims(&claims, &r.outcomes));
                let agent = hex(&self.agent.key_id().0);
                claims::record(
                    &self.engine,
                    &agent,
                    key_id.as_deref(),
                    made,
                    self.engine_now(),
                )?;
                Ok(r.outcomes)
            }
            AgentMessage::Abort(a) => {
                self.channel.close_job();
                Err(LinkError::Aborted {
                    reason: a.reason,
                    detail: a.detail,
                }
                .into())
            }
            _ => Err(link_err("a device message that is not a job's result")),
        }
    }
}

/// Signs `msg` as the flow's last reply and closes the session.
pub(super) fn finish(link: &mut RemoteLink, msg: ServerMessage) -> Result<(), Error> {
    let ttl = link.config.message_ttl_ms;
    let job = link.last_job;
    let msg = match (msg, job) {
        // A `JobAck` answers a job; a flow that ran none ends with `Done`.
        (ServerMessage::JobAck(a), None) => ServerMessage::Done {
            key_id: Some(a.key_id),
            state: Some(a.state),
        },
        (m, _) => m,
    };
    let job = match &msg {
        ServerMessage::JobAck(_) => job,
        _ => None,
    };
    link.post(true, |ch| Ok(ch.message_with_ttl(job, msg, ttl)))
}
