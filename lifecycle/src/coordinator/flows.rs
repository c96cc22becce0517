//! The operations a session carries: station work, holder sign-in, job results.

use keysmith_wire::{
    holder_nonce, HolderAuth, JobResult, NeedHolderAuth, RefusalCode, Request, RequestOp,
    ServerMessage,
};

use super::context::{Phase, SessionContext};
use super::session::Reply;
use super::{AgentEntry, Coordinator, CoordinatorError, Rejected};
use crate::engine::nonce_digest;
use crate::store::split::SplitSession;

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

impl Coordinator {
    /// A station polls for operator work.
    pub(super) fn station_work(
        &self,
        _agent: &AgentEntry,
        _row: &SplitSession,
        _ctx: &mut SessionContext,
        _now: u64,
    ) -> Result<Reply, CoordinatorError> {
        Ok(Reply::new(
            ServerMessage::Wait {
                retry_ms: self.config.poll_ms,
            },
            self.config.message_ttl_ms,
        ))
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
        let oidc = self.holder_oidc(req.template.as_deref())?;
        let (Ok(session_pub), Ok(server_nonce)) = (
            <[u8; 65]>::try_from(row.session_pub.as_slice()),
            <[u8; 16]>::try_from(row.server_nonce.as_slice()),
        ) else {
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
        };
        Ok(Reply::new(
            ServerMessage::NeedHolderAuth(NeedHolderAuth {
                issuer: oidc.issuer.clone(),
                client_id: oidc.audience.clone(),
                scopes: vec!["openid".into(), "profile".into()],
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

    /// The holder's ID token.
    pub(super) fn holder_auth(
        &self,
        _agent: &AgentEntry,
        _row: &SplitSession,
        ctx: &mut SessionContext,
        _auth: HolderAuth,
        _now: u64,
    ) -> Result<Reply, CoordinatorError> {
        if !matches!(ctx.phase, Phase::AwaitHolder { .. }) {
            return Err(Rejected::new(RefusalCode::NotAllowed, "no sign-in was asked for").into());
        }
        Err(Rejected::new(
            RefusalCode::NotAllowed,
            "holder operations over the split are not wired in this build yet",
        )
        .into())
    }

    /// A job's result.
    pub(super) fn job_result(
        &self,
        _agent: &AgentEntry,
        _row: &SplitSession,
        _ctx: &mut SessionContext,
        _result: JobResult,
        _now: u64,
    ) -> Result<Reply, CoordinatorError> {
        Err(Rejected::new(
            RefusalCode::NotAllowed,
            "no job is outstanding in this session",
        )
        .into())
    }
}
