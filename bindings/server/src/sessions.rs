//! Agent sessions: opaque message bytes (`application/cose`) in, reply bytes out.
//!
//! The server carries the messages; what they mean is the [`SessionHandler`]'s (the
//! coordinator, the server half of the split protocol, plugged in by whoever builds the
//! server: [`crate::Server::with_sessions`]). Without one, session endpoints answer 503.
//! Operations that need a device (issuing at a station, reset, activation) start there;
//! the operator API offers none of them.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::state::{AppState, PeerAddr};

/// The media type of session messages.
pub const COSE: &str = "application/cose";

/// Why a session message was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// The bytes do not decode or verify (400).
    #[error("bad message: {0}")]
    BadMessage(String),
    /// No such session (404).
    #[error("unknown session")]
    UnknownSession,
    /// The agent is unknown, not approved or revoked, or may not do this (403).
    #[error("refused: {0}")]
    Refused(String),
    /// Out of order, a replay, or the session moved on (409).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The session expired (410).
    #[error("session expired")]
    Expired,
    /// Too many sessions for this agent (429).
    #[error("rate limited")]
    RateLimited,
    /// The handler cannot answer now (503).
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// A bug or an unexpected failure (500; the detail is logged).
    #[error("internal: {0}")]
    Internal(String),
}

impl From<SessionError> for ApiError {
    fn from(e: SessionError) -> Self {
        let status = match &e {
            SessionError::BadMessage(_) => StatusCode::BAD_REQUEST,
            SessionError::UnknownSession => StatusCode::NOT_FOUND,
            SessionError::Refused(_) => StatusCode::FORBIDDEN,
            SessionError::Conflict(_) => StatusCode::CONFLICT,
            SessionError::Expired => StatusCode::GONE,
            SessionError::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            SessionError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            SessionError::Internal(d) => return ApiError::internal(d),
        };
        let code = match &e {
            SessionError::BadMessage(_) => "bad_message",
            SessionError::UnknownSession => "unknown_session",
            SessionError::Refused(_) => "refused",
            SessionError::Conflict(_) => "conflict",
            SessionError::Expired => "expired",
            SessionError::RateLimited => "rate_limited",
            _ => "unavailable",
        };
        ApiError::new(status, code, e.to_string())
    }
}

/// A session the handler opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Opened {
    /// The new session's id (URL-safe: `[A-Za-z0-9_-]`, at most 128 characters).
    pub session_id: String,
    /// The reply to the agent's first message.
    pub reply: Vec<u8>,
}

/// Lets the handler ask, once it has verified which agent is speaking, whether that
/// agent may open another session now (the server's per-agent rate limit, review G12).
pub trait Admission: Send + Sync {
    /// False: refuse with [`SessionError::RateLimited`].
    fn admit(&self, agent_id: &str) -> bool;
}

/// The server half of the split protocol, as the HTTP server sees it. Called on a
/// plain thread outside the runtime; `now` is Unix milliseconds of the server's clock.
pub trait SessionHandler: Send + Sync {
    /// The agent's first message: opens a session.
    fn open(
        &self,
        body: &[u8],
        now: u64,
        admission: &dyn Admission,
    ) -> Result<Opened, SessionError>;
    /// A later message of session `session_id`: its reply.
    fn handle(&self, session_id: &str, body: &[u8], now: u64) -> Result<Vec<u8>, SessionError>;
}

/// The handler used until a coordinator is plugged in: every message is answered 503.
#[derive(Debug, Default)]
pub struct NoSessions;

impl SessionHandler for NoSessions {
    fn open(&self, _: &[u8], _: u64, _: &dyn Admission) -> Result<Opened, SessionError> {
        Err(SessionError::Unavailable(
            "this server has no session coordinator".into(),
        ))
    }
    fn handle(&self, _: &str, _: &[u8], _: u64) -> Result<Vec<u8>, SessionError> {
        Err(SessionError::Unavailable(
            "this server has no session coordinator".into(),
        ))
    }
}

struct AgentLimit(Arc<AppState>);

impl Admission for AgentLimit {
    fn admit(&self, agent_id: &str) -> bool {
        self.0.sessions_per_agent.allow(agent_id)
    }
}

fn check_media(headers: &HeaderMap) -> Result<(), ApiError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if ct.split(';').next().map(str::trim) == Some(COSE) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("session messages are {COSE}"),
        ))
    }
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn cose(status: StatusCode, body: Vec<u8>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, HeaderValue::from_static(COSE))],
        body,
    )
        .into_response()
}

/// Opens an agent session.
#[utoipa::path(post, path = "/v1/sessions", tag = "sessions",
    request_body(content = Vec<u8>, content_type = "application/cose",
        description = "The agent's first message"),
    responses(
        (status = 201, description = "Opened; the reply bytes, Location: /v1/sessions/{id}",
            content_type = "application/cose"),
        (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
        (status = 413, description = "Body over 1 MiB"), (status = 415, body = crate::error::ErrorBody),
        (status = 429, body = crate::error::ErrorBody), (status = 503, body = crate::error::ErrorBody)))]
pub async fn open_session(
    State(st): State<Arc<AppState>>,
    PeerAddr(peer): PeerAddr,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    check_media(&headers)?;
    if !st.messages_per_source.allow(&peer.ip().to_string()) {
        return Err(ApiError::too_many(
            "too many session messages from this address",
        ));
    }
    let handler = st.sessions();
    let admission = AgentLimit(st.clone());
    let opened =
        crate::off_runtime(move || handler.open(&body, crate::now_ms(), &admission)).await??;
    if !valid_id(&opened.session_id) {
        return Err(ApiError::internal(
            "the session handler returned an unusable id",
        ));
    }
    let mut r = cose(StatusCode::CREATED, opened.reply);
    let loc = HeaderValue::from_str(&format!("/v1/sessions/{}", opened.session_id))
        .map_err(ApiError::internal)?;
    r.headers_mut().insert(header::LOCATION, loc);
    Ok(r)
}

/// Carries one message of an open session.
#[utoipa::path(post, path = "/v1/sessions/{session_id}", tag = "sessions",
    params(("session_id" = String, Path, description = "From the Location of the open")),
    request_body(content = Vec<u8>, content_type = "application/cose"),
    responses(
        (status = 200, description = "The reply bytes", content_type = "application/cose"),
        (status = 400, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody),
        (status = 409, body = crate::error::ErrorBody), (status = 410, body = crate::error::ErrorBody),
        (status = 413, description = "Body over 1 MiB"), (status = 415, body = crate::error::ErrorBody),
        (status = 503, body = crate::error::ErrorBody)))]
pub async fn session_message(
    State(st): State<Arc<AppState>>,
    PeerAddr(peer): PeerAddr,
    Path(session_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    check_media(&headers)?;
    if !valid_id(&session_id) {
        return Err(SessionError::UnknownSession.into());
    }
    if !st.messages_per_source.allow(&peer.ip().to_string()) {
        return Err(ApiError::too_many(
            "too many session messages from this address",
        ));
    }
    let handler = st.sessions();
    let reply =
        crate::off_runtime(move || handler.handle(&session_id, &body, crate::now_ms())).await??;
    Ok(cose(StatusCode::OK, reply))
}
