//! Agent enrolment (split design review O7 + G4), shared by every server node through
//! the repository.
//!
//! * A **station** enrols with a single-use code an admin issued for that station
//!   (`POST /v1/agents/enrolments`). The code is derived from a random id under the
//!   server key (HMAC-SHA256 of the id under a key HKDF-derived from the server key), so
//!   the repository holds only the id and the code's SHA-256, and every node holding the
//!   server key checks it. The agent proves the code without sending it:
//!   `proof = HMAC-SHA256(key = code bytes, msg = public_key bytes)`, compared in
//!   constant time against each unused, unexpired code of the station. A station starts
//!   `pending` until an admin approves its fingerprint.
//! * A **holder** agent registers itself and is `approved` at once; its class limits it
//!   to holder-authenticated jobs (the coordinator enforces that).
//!
//! Every code issued, enrolment, refusal, approval and revocation is audited.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use lifecycle::store::{
    AgentClass, AgentRecord, AgentStatus, EnrolmentCode, NewAuditRecord, StoreError,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use zeroize::Zeroizing;

use crate::auth::{Caller, Role};
use crate::error::{json_body, ApiError, ErrorBody};
use crate::keyfile::grouped;
use crate::state::{AppState, PeerAddr};
use crate::{now_ms, rfc3339};

type HmacSha256 = Hmac<Sha256>;

/// Shortest and longest code lifetime, seconds.
const TTL_RANGE: std::ops::RangeInclusive<u64> = 1..=86_400;

/// `POST /v1/agents/enrolments` request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrolmentRequest {
    /// The station the code enrols (1–64 of `[A-Za-z0-9._-]`).
    pub station: String,
    /// `station` (holder agents need no code).
    #[schema(value_type = String, example = "station")]
    pub class: AgentClass,
    /// Lifetime in seconds, 1–86400 (default 600).
    #[serde(default)]
    pub ttl_s: Option<u64>,
}

/// A freshly issued enrolment code: shown once, never stored.
#[derive(Debug, Serialize, ToSchema)]
pub struct EnrolmentCodeView {
    /// The single-use code to type at the station.
    pub code: String,
    /// When it stops being accepted (RFC 3339, UTC).
    pub expires_at: String,
}

/// Host facts an agent reports (claims).
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct HostInfo {
    /// Host name.
    #[serde(default)]
    pub name: Option<String>,
    /// Operating system.
    #[serde(default)]
    pub os: Option<String>,
}

/// `POST /v1/agents/enroll` request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrollRequest {
    /// `station` or `holder`.
    #[schema(value_type = String, example = "station")]
    pub class: AgentClass,
    /// The station name the code was issued for (stations only).
    #[serde(default)]
    pub station: Option<String>,
    /// base64url (no padding) of the agent's P-256 public key, SEC1 uncompressed.
    pub public_key: String,
    /// base64url of HMAC-SHA256(key = code bytes, msg = public key bytes) (stations only).
    #[serde(default)]
    pub proof: Option<String>,
    /// Host facts (claims).
    #[serde(default)]
    pub host: Option<HostInfo>,
}

/// An agent's enrolment state.
#[derive(Debug, Serialize, ToSchema)]
pub struct EnrollResponse {
    /// Lowercase hex SHA-256 of the public key.
    pub agent_id: String,
    /// `pending` or `approved`.
    #[schema(value_type = String, example = "pending")]
    pub status: AgentStatus,
    /// The agent id in groups of four, to compare at the station.
    pub fingerprint: String,
}

/// `GET /v1/agents/{agent_id}` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct AgentStatusView {
    /// The agent.
    pub agent_id: String,
    /// Its status: `pending`, `approved` or `revoked`.
    #[schema(value_type = String)]
    pub status: AgentStatus,
}

/// An agent as an admin sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct AgentView {
    /// The agent id.
    pub agent_id: String,
    /// `station` or `holder`.
    #[schema(value_type = String)]
    pub class: AgentClass,
    /// The station name (stations).
    pub station: Option<String>,
    /// `pending`, `approved` or `revoked`.
    #[schema(value_type = String)]
    pub status: AgentStatus,
    /// The agent id in groups of four.
    pub fingerprint: String,
    /// Reported host name.
    pub host_name: Option<String>,
    /// Reported OS.
    pub host_os: Option<String>,
    /// Enrolled at (RFC 3339).
    pub created_at: String,
    /// Status changed at (RFC 3339).
    pub updated_at: String,
}

impl From<AgentRecord> for AgentView {
    fn from(a: AgentRecord) -> Self {
        AgentView {
            fingerprint: grouped(&a.agent_id),
            agent_id: a.agent_id,
            class: a.class,
            station: a.station,
            status: a.status,
            host_name: a.host_name,
            host_os: a.host_os,
            created_at: rfc3339(a.created_ms),
            updated_at: rfc3339(a.updated_ms),
        }
    }
}

fn check_station(s: &str) -> Result<(), ApiError> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "station: 1 to 64 of A-Z a-z 0-9 . _ -",
        ))
    }
}

fn audit(actor: &str, action: &str, outcome: &str, detail: String, now: u64) -> NewAuditRecord {
    NewAuditRecord {
        actor: actor.to_owned(),
        time_ms: now,
        action: action.to_owned(),
        key_id: None,
        user_id: None,
        template_id: None,
        outcome: outcome.to_owned(),
        idp_request_id: None,
        detail: Some(detail),
    }
}

/// RFC 4648 base32 without padding, in dash-separated groups of four.
fn base32_groups(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::new();
    let (mut acc, mut bits, mut n) = (0u32, 0u32, 0usize);
    for &b in bytes {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            if n > 0 && n % 4 == 0 {
                out.push('-');
            }
            n += 1;
            out.push(char::from(ALPHABET[((acc >> bits) & 31) as usize]));
        }
    }
    out
}

/// The code of `code_id` under the server's enrolment key: 15 bytes of
/// HMAC-SHA256(key, code_id), base32 in groups of four (24 characters).
fn derive_code(key: &[u8; 32], code_id: &str) -> Zeroizing<String> {
    let mut mac = <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(code_id.as_bytes());
    let tag = Zeroizing::new(mac.finalize().into_bytes());
    Zeroizing::new(base32_groups(&tag[..15]))
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    crate::off_runtime(f).await?
}

/// Issues a single-use enrolment code for a station (admin).
#[utoipa::path(post, path = "/v1/agents/enrolments", tag = "agents",
    request_body = EnrolmentRequest, security(("bearer" = [])),
    responses((status = 201, body = EnrolmentCodeView), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn create_enrolment(
    State(st): State<Arc<AppState>>,
    caller: Caller,
    body: Bytes,
) -> Result<(StatusCode, Json<EnrolmentCodeView>), ApiError> {
    caller.require(&[Role::Admin])?;
    let req: EnrolmentRequest = json_body(&body)?;
    check_station(&req.station)?;
    if req.class != AgentClass::Station {
        return Err(ApiError::bad_request(
            "class: codes enrol stations; holder agents register themselves",
        ));
    }
    let ttl = req.ttl_s.unwrap_or(600);
    if !TTL_RANGE.contains(&ttl) {
        return Err(ApiError::bad_request("ttl_s: 1 to 86400"));
    }
    let mut id = [0u8; 16];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut id);
    let code_id = hex::encode(id);
    let code = derive_code(&st.server_key.enrolment_key(), &code_id);
    let now = now_ms();
    let expires_ms = now + ttl * 1000;
    let record = EnrolmentCode {
        code_id,
        code_hash: hex::encode(Sha256::digest(code.as_bytes())),
        station: req.station.clone(),
        class: req.class,
        created_by: caller.actor.clone(),
        created_ms: now,
        expires_ms,
        used_ms: None,
        used_by: None,
    };
    let event = audit(
        &caller.actor,
        "agent_enrolment_code",
        "success",
        format!("station={} expires_ms={expires_ms}", req.station),
        now,
    );
    let store = st.store.clone();
    blocking(move || Ok(store.put_enrolment_code(&record, &event)?)).await?;
    Ok((
        StatusCode::CREATED,
        Json(EnrolmentCodeView {
            code: code.to_string(),
            expires_at: rfc3339(expires_ms),
        }),
    ))
}

fn decode_b64(field: &'static str, s: &str) -> Result<Vec<u8>, ApiError> {
    URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .map_err(|_| ApiError::bad_request(format!("{field}: not base64url")))
}

/// Enrols an agent (no bearer token: stations prove an enrolment code, holder agents
/// register themselves).
#[utoipa::path(post, path = "/v1/agents/enroll", tag = "agents", request_body = EnrollRequest,
    responses((status = 202, body = EnrollResponse), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "No unused, unexpired code of this station matches the proof"),
        (status = 409, body = ErrorBody, description = "This public key is already enrolled"),
        (status = 429, body = ErrorBody)))]
pub async fn enroll(
    State(st): State<Arc<AppState>>,
    PeerAddr(peer): PeerAddr,
    body: Bytes,
) -> Result<(StatusCode, Json<EnrollResponse>), ApiError> {
    let source = peer.ip().to_string();
    if !st.enrolments_per_source.allow(&source) {
        return Err(ApiError::too_many(
            "too many enrolment attempts from this address",
        ));
    }
    let req: EnrollRequest = json_body(&body)?;
    let public_key = decode_b64("public_key", &req.public_key)?;
    if public_key.len() != 65
        || public_key[0] != 0x04
        || p256::ecdsa::VerifyingKey::from_sec1_bytes(&public_key).is_err()
    {
        return Err(ApiError::bad_request(
            "public_key: not an uncompressed SEC1 P-256 point (65 bytes)",
        ));
    }
    let agent_id = hex::encode(Sha256::digest(&public_key));
    let host = req.host.unwrap_or_default();
    let clip = |s: Option<String>| s.map(|s| s.chars().take(128).collect::<String>());
    let now = now_ms();
    let mut agent = AgentRecord {
        agent_id: agent_id.clone(),
        class: req.class,
        station: None,
        public_key: public_key.clone(),
        status: AgentStatus::Approved,
        host_name: clip(host.name),
        host_os: clip(host.os),
        created_ms: now,
        updated_ms: now,
    };
    let actor = format!("agent:{agent_id}");
    let st2 = st.clone();
    let status = match req.class {
        AgentClass::Holder => {
            if req.station.is_some() || req.proof.is_some() {
                return Err(ApiError::bad_request(
                    "holder agents enrol without station and proof",
                ));
            }
            let event = audit(
                &actor,
                "agent_enrolled",
                "success",
                format!("class=holder source={source}"),
                now,
            );
            blocking(
                move || match st2.store.enrol_agent(&agent, None, &event, now) {
                    Ok(_) => Ok(AgentStatus::Approved),
                    Err(StoreError::Invalid { field: "agent", .. }) => {
                        Err(ApiError::conflict("this public key is already enrolled"))
                    }
                    Err(e) => Err(e.into()),
                },
            )
            .await?
        }
        AgentClass::Station => {
            let station = req
                .station
                .ok_or_else(|| ApiError::bad_request("station: required for a station"))?;
            check_station(&station)?;
            let proof = decode_b64(
                "proof",
                req.proof
                    .as_deref()
                    .ok_or_else(|| ApiError::bad_request("proof: required for a station"))?,
            )?;
            agent.station = Some(station.clone());
            agent.status = AgentStatus::Pending;
            blocking(move || {
                let store = &st2.store;
                let key = st2.server_key.enrolment_key();
                let mut matched = None;
                for c in store.open_enrolment_codes(&station, now)? {
                    let code = derive_code(&key, &c.code_id);
                    if hex::encode(Sha256::digest(code.as_bytes())) != c.code_hash
                        || c.class != AgentClass::Station
                    {
                        continue; // issued under another server key
                    }
                    let mut mac = <HmacSha256 as Mac>::new_from_slice(code.as_bytes())
                        .expect("HMAC takes any key length");
                    mac.update(&public_key);
                    // Constant-time comparison.
                    if mac.verify_slice(&proof).is_ok() {
                        matched = Some(c.code_id);
                        break;
                    }
                }
                let refused = |why: &str| {
                    let event = audit(
                        &actor,
                        "agent_enrolled",
                        "refused",
                        format!("class=station station={station} source={source} reason={why}"),
                        now,
                    );
                    if let Err(e) = store.append_audit(&event) {
                        tracing::warn!(error = %e, "auditing a refused enrolment failed");
                    }
                    ApiError::forbidden(
                        "enrolment refused: no unused, unexpired code of this station matches",
                    )
                };
                let Some(code_id) = matched else {
                    return Err(refused("no_matching_code"));
                };
                let event = audit(
                    &actor,
                    "agent_enrolled",
                    "success",
                    format!("class=station station={station} source={source} status=pending"),
                    now,
                );
                match store.enrol_agent(&agent, Some(&code_id), &event, now) {
                    Ok(true) => Ok(AgentStatus::Pending),
                    Ok(false) => Err(refused("code_used_meanwhile")),
                    Err(StoreError::Invalid { field: "agent", .. }) => {
                        Err(ApiError::conflict("this public key is already enrolled"))
                    }
                    Err(e) => Err(e.into()),
                }
            })
            .await?
        }
    };
    Ok((
        StatusCode::ACCEPTED,
        Json(EnrollResponse {
            fingerprint: grouped(&agent_id),
            agent_id,
            status,
        }),
    ))
}

fn check_agent_id(id: &str) -> Result<(), ApiError> {
    if id.len() == 64 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        Ok(())
    } else {
        Err(ApiError::not_found("no such agent"))
    }
}

/// An agent's status (no bearer token: the agent polls it after enrolling).
#[utoipa::path(get, path = "/v1/agents/{agent_id}", tag = "agents",
    params(("agent_id" = String, Path, description = "Lowercase hex SHA-256 of the public key")),
    responses((status = 200, body = AgentStatusView), (status = 404, body = ErrorBody)))]
pub async fn agent_status(
    State(st): State<Arc<AppState>>,
    Path(agent_id): Path<String>,
) -> Result<Json<AgentStatusView>, ApiError> {
    check_agent_id(&agent_id)?;
    let store = st.store.clone();
    let id = agent_id.clone();
    let a = blocking(move || Ok(store.get_agent(&id)?)).await?;
    let a = a.ok_or_else(|| ApiError::not_found("no such agent"))?;
    Ok(Json(AgentStatusView {
        agent_id,
        status: a.status,
    }))
}

/// Every enrolled agent (admin).
#[utoipa::path(get, path = "/v1/agents", tag = "agents", security(("bearer" = [])),
    responses((status = 200, body = Vec<AgentView>), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
pub async fn list_agents(
    State(st): State<Arc<AppState>>,
    caller: Caller,
) -> Result<Json<Vec<AgentView>>, ApiError> {
    caller.require(&[Role::Admin])?;
    let store = st.store.clone();
    let all = blocking(move || Ok(store.list_agents()?)).await?;
    Ok(Json(all.into_iter().map(AgentView::from).collect()))
}

async fn move_agent(
    st: Arc<AppState>,
    caller: Caller,
    agent_id: String,
    from: &'static [AgentStatus],
    to: AgentStatus,
    action: &'static str,
) -> Result<Json<AgentView>, ApiError> {
    caller.require(&[Role::Admin])?;
    check_agent_id(&agent_id)?;
    let store = st.store.clone();
    blocking(move || {
        let now = now_ms();
        let event = audit(
            &caller.actor,
            action,
            "success",
            format!("agent={agent_id}"),
            now,
        );
        if !store.set_agent_status(&agent_id, from, to, &event, now)? {
            return Err(ApiError::conflict(format!(
                "the agent is not {}",
                from.iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(" or ")
            )));
        }
        let a = store
            .get_agent(&agent_id)?
            .ok_or_else(|| ApiError::not_found("no such agent"))?;
        Ok(Json(AgentView::from(a)))
    })
    .await
}

/// Approves a pending agent (admin) after comparing its fingerprint.
#[utoipa::path(post, path = "/v1/agents/{agent_id}/approve", tag = "agents",
    params(("agent_id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = AgentView), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn approve_agent(
    State(st): State<Arc<AppState>>,
    caller: Caller,
    Path(agent_id): Path<String>,
) -> Result<Json<AgentView>, ApiError> {
    move_agent(
        st,
        caller,
        agent_id,
        &[AgentStatus::Pending],
        AgentStatus::Approved,
        "agent_approved",
    )
    .await
}

/// Revokes an agent (admin); it can open no more sessions.
#[utoipa::path(post, path = "/v1/agents/{agent_id}/revoke", tag = "agents",
    params(("agent_id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = AgentView), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn revoke_agent(
    State(st): State<Arc<AppState>>,
    caller: Caller,
    Path(agent_id): Path<String>,
) -> Result<Json<AgentView>, ApiError> {
    move_agent(
        st,
        caller,
        agent_id,
        &[AgentStatus::Pending, AgentStatus::Approved],
        AgentStatus::Revoked,
        "agent_revoked",
    )
    .await
}
