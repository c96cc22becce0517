//! The split's server half plugged into the server: agent sessions carried by the
//! [`lifecycle::coordinator::Coordinator`], and the operator endpoints that queue work for
//! a station (an issuance at the desk where the key is plugged in) and read its outcome.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use lifecycle::coordinator::{Coordinator, CoordinatorError, StationRequest};
use lifecycle::store::{AgentClass, AgentStatus, NewAuditRecord, StationWork, StationWorkState};
use serde::{Deserialize, Serialize};

use crate::auth::{Caller, Role};
use crate::error::{json_body, ApiError, ErrorBody};
use crate::now_ms;
use crate::sessions::{Admission, Opened, SessionError, SessionHandler};
use crate::state::AppState;

/// Agent sessions carried by the coordinator.
pub struct CoordinatorSessions(pub Coordinator);

impl std::fmt::Debug for CoordinatorSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("CoordinatorSessions").field(&self.0).finish()
    }
}

fn session_error(e: CoordinatorError) -> SessionError {
    use keysmith_wire::RefusalCode as C;
    match e {
        CoordinatorError::Rejected(r) => match r.code {
            C::SessionUnknown => SessionError::UnknownSession,
            C::SessionExpired => SessionError::Expired,
            C::SessionBroken | C::Busy => SessionError::Conflict(r.to_string()),
            C::UnknownKey | C::AgentNotApproved | C::AgentRevoked | C::NotAllowed => {
                SessionError::Refused(r.to_string())
            }
            _ => SessionError::BadMessage(r.to_string()),
        },
        CoordinatorError::RateLimited { .. } => SessionError::RateLimited,
        CoordinatorError::Store(e) => SessionError::Unavailable(e.to_string()),
        other => SessionError::Internal(other.to_string()),
    }
}

impl SessionHandler for CoordinatorSessions {
    fn open(
        &self,
        body: &[u8],
        now: u64,
        admission: &dyn Admission,
    ) -> Result<Opened, SessionError> {
        let o = self
            .0
            .open_admitted(body, now, &|agent| admission.admit(agent))
            .map_err(session_error)?;
        Ok(Opened {
            session_id: o.session_id,
            reply: o.reply,
        })
    }

    fn handle(&self, session_id: &str, body: &[u8], now: u64) -> Result<Vec<u8>, SessionError> {
        self.0.handle(session_id, body, now).map_err(session_error)
    }
}

/// Work queued for a station.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WorkView {
    /// Its id.
    pub work_id: String,
    /// The station's agent id.
    pub agent_id: String,
    /// `queued`, `taken`, `done` or `failed`.
    pub state: String,
    /// The outcome (JSON: the key id and state, or the error), once finished.
    pub outcome: Option<serde_json::Value>,
}

impl From<StationWork> for WorkView {
    fn from(w: StationWork) -> Self {
        WorkView {
            work_id: w.work_id,
            agent_id: w.agent_id,
            state: w.state.as_str().to_owned(),
            outcome: w.outcome.and_then(|o| serde_json::from_str(&o).ok()),
        }
    }
}

/// What an operator asks a station to do: `{"operation":"issue","user":..,"template":..}`
/// or `{"operation":"reissue","key_id":..}` (the key attached at the station must be that
/// key: its AAGUID and the serial read from it).
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkRequest {
    /// `issue` or `reissue`.
    pub operation: String,
    /// The user (object id or UPN): `issue`.
    #[serde(default)]
    pub user: Option<String>,
    /// The loaded credential template: `issue`.
    #[serde(default)]
    pub template: Option<String>,
    /// The key: `reissue`.
    #[serde(default)]
    pub key_id: Option<String>,
}

/// Queues work for an approved station (operator); the station's agent takes it at its
/// next poll, with the key attached there.
#[utoipa::path(post, path = "/v1/agents/{agent_id}/work", tag = "agents",
    params(("agent_id" = String, Path)), request_body = WorkRequest, security(("bearer" = [])),
    responses((status = 201, body = WorkView), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn queue_work(
    State(st): State<Arc<AppState>>,
    caller: Caller,
    Path(agent_id): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<WorkView>), ApiError> {
    caller.require(&[Role::Operator])?;
    let req: WorkRequest = json_body(&body)?;
    let station_request = match (
        req.operation.as_str(),
        &req.user,
        &req.template,
        &req.key_id,
    ) {
        ("issue", Some(user), Some(template), None) => StationRequest::Issue {
            user: user.clone(),
            template: template.clone(),
        },
        ("reissue", None, None, Some(key_id)) => StationRequest::Reissue {
            key_id: key_id.clone(),
        },
        _ => {
            return Err(ApiError::bad_request(
                "a station takes {\"operation\":\"issue\",\"user\",\"template\"} or \
                 {\"operation\":\"reissue\",\"key_id\"}",
            ))
        }
    };
    let request =
        serde_json::to_string(&station_request).map_err(|e| ApiError::internal(e.to_string()))?;
    let store = st.store.clone();
    crate::off_runtime(move || {
        let agent = store
            .get_agent(&agent_id)?
            .ok_or_else(|| ApiError::not_found("no such agent"))?;
        if agent.class != AgentClass::Station || agent.status != AgentStatus::Approved {
            return Err(ApiError::conflict("the agent is not an approved station"));
        }
        let mut id = [0u8; 16];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut id);
        let now = now_ms();
        let work = StationWork {
            work_id: hex::encode(id),
            agent_id: agent_id.clone(),
            request,
            actor: caller.actor.clone(),
            created_ms: now,
            state: StationWorkState::Queued,
            session_id: None,
            outcome: None,
        };
        store.station_work_put(&work)?;
        store.append_audit(&NewAuditRecord {
            actor: caller.actor.clone(),
            time_ms: now,
            action: "station_work_queued".into(),
            key_id: req.key_id,
            user_id: req.user,
            template_id: req.template,
            outcome: "success".into(),
            idp_request_id: None,
            detail: Some(format!("work={} agent={agent_id}", work.work_id)),
        })?;
        Ok((StatusCode::CREATED, Json(WorkView::from(work))))
    })
    .await?
}

/// Work queued for a station, with its outcome once finished.
#[utoipa::path(get, path = "/v1/work/{work_id}", tag = "agents",
    params(("work_id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = WorkView), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn work_status(
    State(st): State<Arc<AppState>>,
    caller: Caller,
    Path(work_id): Path<String>,
) -> Result<Json<WorkView>, ApiError> {
    caller.require(&[Role::Operator, Role::Helpdesk, Role::Auditor])?;
    let store = st.store.clone();
    crate::off_runtime(move || {
        let w = store
            .station_work_get(&work_id)?
            .ok_or_else(|| ApiError::not_found("no such work"))?;
        Ok(Json(WorkView::from(w)))
    })
    .await?
}

/// The server's signing key, for agents to check against the fingerprint they pinned.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ServerKeyView {
    /// SEC1 uncompressed P-256 public key, base64url.
    pub public_key: String,
    /// Lowercase hex SHA-256 of the public key (what agents pin).
    pub fingerprint: String,
}

/// The server's public signing key (no bearer: agents compare it with their pin, which
/// came out of band; a key that does not match is refused by them).
#[utoipa::path(get, path = "/v1/server-key", tag = "sessions",
    responses((status = 200, body = ServerKeyView)))]
pub async fn server_key(State(st): State<Arc<AppState>>) -> Json<ServerKeyView> {
    use base64::Engine as _;
    Json(ServerKeyView {
        public_key: base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(st.server_key.public_key()),
        fingerprint: st.server_key.fingerprint(),
    })
}
