//! The operator API: the server-only lifecycle operations of the facade, each run on a
//! blocking thread with the caller recorded as the actor. Operations that need a device
//! (issue, activate, reset, reissue, sign-in) are not here: they run through agent
//! sessions ([`crate::sessions`]).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use keysmith_facade::{
    AuditCheck, AuditEntry, BulkJob, BulkRunOptions, Key, KeyDetails, KeyFilter, ReconcileReport,
    Session,
};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use crate::auth::{Caller, Role};
use crate::error::{json_body, ApiError, ErrorBody};
use crate::state::AppState;

/// Who may read keys and their details.
const READERS: &[Role] = &[Role::Operator, Role::Helpdesk, Role::Auditor];

async fn run<T: Send + 'static>(
    st: &AppState,
    caller: &Caller,
    f: impl FnOnce(Session) -> keysmith_facade::Result<T> + Send + 'static,
) -> Result<T, ApiError> {
    let session = st.session.with_actor(&caller.actor);
    Ok(crate::off_runtime(move || f(session)).await??)
}

/// Search criteria (all optional; combined with AND).
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct KeySearch {
    /// Issued to this user (IdP object id or UPN).
    pub user: Option<String>,
    /// With this serial number.
    pub serial: Option<String>,
    /// In this state (`blank`, `issued`, `active`, `inactive`, `revoked`, ...).
    pub state: Option<String>,
}

/// Searches keys (operator, helpdesk, auditor).
#[utoipa::path(get, path = "/v1/keys", tag = "keys", params(KeySearch), security(("bearer" = [])),
    responses((status = 200, body = Vec<Object>, description = "Keys, sorted by id"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
pub async fn search_keys(
    State(st): State<Arc<AppState>>,
    caller: Caller,
    Query(q): Query<KeySearch>,
) -> Result<Json<Vec<Key>>, ApiError> {
    caller.require(READERS)?;
    let filter = KeyFilter {
        user: q.user,
        serial: q.serial,
        state: q.state,
    };
    Ok(Json(
        run(&st, &caller, move |s| s.list_keys(&filter)).await?,
    ))
}

/// A key with its passkeys, pending registrations and audit trail (operator, helpdesk,
/// auditor).
#[utoipa::path(get, path = "/v1/keys/{key_id}", tag = "keys",
    params(("key_id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = Object), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn key_details(
    State(st): State<Arc<AppState>>,
    caller: Caller,
    Path(key_id): Path<String>,
) -> Result<Json<KeyDetails>, ApiError> {
    caller.require(READERS)?;
    Ok(Json(run(&st, &caller, move |s| s.key(&key_id)).await?))
}

/// A key's audit trail, oldest first (operator, auditor).
#[utoipa::path(get, path = "/v1/keys/{key_id}/audit", tag = "audit",
    params(("key_id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = Vec<Object>), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn key_audit(
    State(st): State<Arc<AppState>>,
    caller: Caller,
    Path(key_id): Path<String>,
) -> Result<Json<Vec<AuditEntry>>, ApiError> {
    caller.require(&[Role::Operator, Role::Auditor])?;
    Ok(Json(run(&st, &caller, move |s| s.audit(&key_id)).await?))
}

/// `POST /v1/keys/{key_id}/revoke` body.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeRequest {
    /// Override the template's `force_idp_deletion_on_revoke`.
    #[serde(default)]
    pub force: Option<bool>,
}

/// Revokes a key (operator, helpdesk).
#[utoipa::path(post, path = "/v1/keys/{key_id}/revoke", tag = "keys",
    params(("key_id" = String, Path)), request_body(content = RevokeRequest, description = "Optional"),
    security(("bearer" = [])),
    responses((status = 200, body = Object), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 502, body = ErrorBody)))]
pub async fn revoke(
    State(st): State<Arc<AppState>>,
    caller: Caller,
    Path(key_id): Path<String>,
    body: Bytes,
) -> Result<Json<Key>, ApiError> {
    caller.require(&[Role::Operator, Role::Helpdesk])?;
    let force = json_body::<RevokeRequest>(&body)?.force;
    Ok(Json(
        run(&st, &caller, move |s| s.revoke(&key_id, force)).await?,
    ))
}

/// Inactivates a key: its passkeys are removed at the IdP (operator, helpdesk).
#[utoipa::path(post, path = "/v1/keys/{key_id}/inactivate", tag = "keys",
    params(("key_id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = Object), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 502, body = ErrorBody)))]
pub async fn inactivate(
    State(st): State<Arc<AppState>>,
    caller: Caller,
    Path(key_id): Path<String>,
) -> Result<Json<Key>, ApiError> {
    caller.require(&[Role::Operator, Role::Helpdesk])?;
    Ok(Json(
        run(&st, &caller, move |s| s.inactivate(&key_id)).await?,
    ))
}

/// Retires a key (operator).
#[utoipa::path(post, path = "/v1/keys/{key_id}/retire", tag = "keys",
    params(("key_id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = Object), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn retire(
    State(st): State<Arc<AppState>>,
    caller: Caller,
    Path(key_id): Path<String>,
) -> Result<Json<Key>, ApiError> {
    caller.require(&[Role::Operator])?;
    Ok(Json(run(&st, &caller, move |s| s.retire(&key_id)).await?))
}

/// Unregisters a key: its records are forgotten, the audit log stays (operator).
#[utoipa::path(post, path = "/v1/keys/{key_id}/unregister", tag = "keys",
    params(("key_id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = Object), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn unregister(
    State(st): State<Arc<AppState>>,
    caller: Caller,
    Path(key_id): Path<String>,
) -> Result<Json<Key>, ApiError> {
    caller.require(&[Role::Operator])?;
    Ok(Json(
        run(&st, &caller, move |s| s.unregister(&key_id)).await?,
    ))
}

/// `POST /v1/reconcile` body.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReconcileBody {
    /// IdP object ids or UPNs; empty: every user holding a key.
    #[serde(default)]
    pub users: Vec<String>,
    /// Repair what is found.
    #[serde(default)]
    pub fix: bool,
    /// With `fix`: also delete passkeys nobody issued.
    #[serde(default)]
    pub delete_unknown: bool,
}

/// Compares the repository with the IdP and reports (with `fix`, repairs) the drift
/// (operator).
#[utoipa::path(post, path = "/v1/reconcile", tag = "keys", request_body = ReconcileBody,
    security(("bearer" = [])),
    responses((status = 200, body = Object), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn reconcile(
    State(st): State<Arc<AppState>>,
    caller: Caller,
    body: Bytes,
) -> Result<Json<ReconcileReport>, ApiError> {
    caller.require(&[Role::Operator])?;
    let b: ReconcileBody = json_body(&body)?;
    Ok(Json(
        run(&st, &caller, move |s| {
            s.reconcile(&b.users, b.fix, b.delete_unknown)
        })
        .await?,
    ))
}

/// Checks the whole audit log's hash chain and MACs (auditor, operator).
#[utoipa::path(get, path = "/v1/audit/verify", tag = "audit", security(("bearer" = [])),
    responses((status = 200, body = Object), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
pub async fn audit_verify(
    State(st): State<Arc<AppState>>,
    caller: Caller,
) -> Result<Json<AuditCheck>, ApiError> {
    caller.require(&[Role::Auditor, Role::Operator])?;
    Ok(Json(run(&st, &caller, |s| s.audit_verify()).await?))
}

/// `POST /v1/bulk` body: a server-only bulk job.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkRequest {
    /// `revoke` (columns `key_id` or `user`, optional `force`) or `reconcile` (`user`).
    /// Issue jobs need a device and run through agent sessions.
    pub kind: String,
    /// The CSV text with a header row.
    pub csv: String,
    /// Worker threads (1–32, default 1).
    #[serde(default)]
    pub workers: Option<usize>,
    /// Reconcile rows: repair what is found.
    #[serde(default)]
    pub fix: bool,
}

fn start_bulk(st: &Arc<AppState>, caller: &Caller, job_id: i64, options: BulkRunOptions) {
    {
        let mut running = st
            .bulk_running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !running.insert(job_id) {
            return; // already running in this process
        }
    }
    let session = st.session.with_actor(&caller.actor);
    let st = st.clone();
    let spawned = std::thread::Builder::new()
        .name("keysmith-bulk".into())
        .spawn(move || {
            let mut no_device = |_: &keysmith_facade::BulkRow| {
                Err("issue rows need a device: run them through an agent session".to_owned())
            };
            let r = session.bulk_run(job_id, &options, &mut no_device, &mut |_| {});
            if let Err(e) = r {
                tracing::warn!(job_id, error = %e, "bulk job stopped");
            }
            st.bulk_running
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .remove(&job_id);
        });
    if let Err(e) = spawned {
        tracing::warn!(job_id, error = %e, "could not start the bulk job's thread");
    }
}

/// Records a server-only bulk job and starts it in the background (operator). The same
/// CSV for the same kind returns the unfinished job already recorded (and resumes it).
#[utoipa::path(post, path = "/v1/bulk", tag = "bulk", request_body = BulkRequest,
    security(("bearer" = [])),
    responses((status = 202, body = Object, description = "The job, running"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
pub async fn bulk_submit(
    State(st): State<Arc<AppState>>,
    caller: Caller,
    body: Bytes,
) -> Result<(StatusCode, Json<BulkJob>), ApiError> {
    caller.require(&[Role::Operator])?;
    let b: BulkRequest = json_body(&body)?;
    if b.kind == "issue" {
        return Err(ApiError::bad_request(
            "kind: issue jobs need a device; the server runs revoke and reconcile jobs",
        ));
    }
    let options = BulkRunOptions {
        workers: b.workers.unwrap_or(1),
        fix: b.fix,
        // The background run's summary is dropped: keep no per-row results.
        keep_items: false,
        ..BulkRunOptions::default()
    };
    if !(1..=keysmith_facade::MAX_WORKERS).contains(&options.workers) {
        return Err(ApiError::bad_request("workers: 1 to 32"));
    }
    let (kind, csv) = (b.kind, b.csv);
    let job = run(&st, &caller, move |s| s.bulk_create(&kind, &csv)).await?;
    start_bulk(&st, &caller, job.job_id, options);
    Ok((StatusCode::ACCEPTED, Json(job)))
}

/// A bulk job's record (operator, auditor); `finished_ms` is set once every row ran.
#[utoipa::path(get, path = "/v1/bulk/{job_id}", tag = "bulk",
    params(("job_id" = i64, Path)), security(("bearer" = [])),
    responses((status = 200, body = Object), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn bulk_status(
    State(st): State<Arc<AppState>>,
    caller: Caller,
    Path(job_id): Path<i64>,
) -> Result<Json<BulkJob>, ApiError> {
    caller.require(&[Role::Operator, Role::Auditor])?;
    Ok(Json(run(&st, &caller, move |s| s.bulk_job(job_id)).await?))
}

/// Resumes a bulk job in the background: rows not done yet (failed ones again) run
/// (operator).
#[utoipa::path(post, path = "/v1/bulk/{job_id}/resume", tag = "bulk",
    params(("job_id" = i64, Path)), security(("bearer" = [])),
    responses((status = 202, body = Object), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn bulk_resume(
    State(st): State<Arc<AppState>>,
    caller: Caller,
    Path(job_id): Path<i64>,
) -> Result<(StatusCode, Json<BulkJob>), ApiError> {
    caller.require(&[Role::Operator])?;
    let job = run(&st, &caller, move |s| s.bulk_job(job_id)).await?;
    if job.kind == "issue" {
        return Err(ApiError::bad_request("issue jobs need a device"));
    }
    start_bulk(&st, &caller, job_id, BulkRunOptions::default());
    Ok((StatusCode::ACCEPTED, Json(job)))
}
