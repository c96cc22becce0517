//! `keysmith serve`: the HTTPS server half of a split deployment.
//!
//! It carries agent session messages to a [`SessionHandler`] (the coordinator, plugged
//! in with [`Server::with_sessions`]), enrols agents, and offers the server-only
//! lifecycle operations to operators behind OIDC bearer access tokens. Every lifecycle
//! operation runs through [`keysmith_facade::Session`] on a blocking thread; the
//! repository (SQLite, or PostgreSQL shared by several nodes) holds keys, agents,
//! enrolment codes and the audit log, so any node answers any request.
//!
//! # Endpoints and roles
//!
//! Roles come from the token's `roles` claim through the configured map
//! ([`config::OidcConfig::roles`]). A request without a valid token gets 401; a valid
//! token without one of the roles listed gets 403.
//!
//! | endpoint | roles |
//! |---|---|
//! | `GET /v1/keys?user=&serial=&state=` | operator, helpdesk, auditor |
//! | `GET /v1/keys/{key_id}` (passkeys, pending, audit trail) | operator, helpdesk, auditor |
//! | `GET /v1/keys/{key_id}/audit` | operator, auditor |
//! | `POST /v1/keys/{key_id}/revoke`, `/inactivate` | operator, helpdesk |
//! | `POST /v1/keys/{key_id}/retire`, `/unregister` | operator |
//! | `POST /v1/reconcile` | operator |
//! | `POST /v1/bulk`, `POST /v1/bulk/{id}/resume` | operator |
//! | `GET /v1/bulk/{id}` | operator, auditor |
//! | `GET /v1/audit/verify` | auditor, operator |
//! | `POST /v1/agents/enrolments`, `GET /v1/agents`, `POST /v1/agents/{id}/approve`, `/revoke` | admin |
//! | `POST /v1/agents/enroll`, `GET /v1/agents/{id}` | none (enrolment proof / status only) |
//! | `POST /v1/sessions`, `POST /v1/sessions/{id}` | none (the messages are signed by the agent) |
//! | `GET /v1/openapi.json` | none |
//!
//! Operations that need a device (issue, activate, reissue, reset, sign-in) are not in
//! the operator API: they start through agent sessions.
//!
//! # Limits
//!
//! Request bodies are capped at [`MAX_BODY_BYTES`] (413 beyond), every request at the
//! configured timeout (408), enrolment attempts per source address and session opens per
//! agent per minute (429).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod agents;
pub mod auth;
pub mod config;
pub mod error;
pub mod keyfile;
pub mod openapi;
pub mod ops;
pub mod ratelimit;
pub mod sessions;
pub mod state;
mod tls;
pub mod work;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use entra_graph::oidc::{AccessTokenSettings, AccessTokenVerifier};

pub use config::ServerConfig;
pub use error::{ApiError, ServerError};
pub use keyfile::ServerKey;
pub use sessions::{Admission, NoSessions, Opened, SessionError, SessionHandler};
pub use state::AppState;

/// Largest request body accepted (as fido-core's largest message).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Unix time in milliseconds.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// `ms` (Unix milliseconds) as RFC 3339 UTC, whole seconds (past year 9999: its end).
pub fn rfc3339(ms: u64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(i64::try_from(ms / 1000).unwrap_or(i64::MAX))
        .unwrap_or_else(|_| time::PrimitiveDateTime::MAX.assume_utc());
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// The router over `state` (no TLS, no peer addresses: [`Server`] adds those).
pub fn router(state: Arc<AppState>, timeout: Duration) -> Router {
    Router::new()
        .route("/v1/keys", get(ops::search_keys))
        .route("/v1/keys/{key_id}", get(ops::key_details))
        .route("/v1/keys/{key_id}/audit", get(ops::key_audit))
        .route("/v1/keys/{key_id}/revoke", post(ops::revoke))
        .route("/v1/keys/{key_id}/inactivate", post(ops::inactivate))
        .route("/v1/keys/{key_id}/retire", post(ops::retire))
        .route("/v1/keys/{key_id}/unregister", post(ops::unregister))
        .route("/v1/reconcile", post(ops::reconcile))
        .route("/v1/bulk", post(ops::bulk_submit))
        .route("/v1/bulk/{job_id}", get(ops::bulk_status))
        .route("/v1/bulk/{job_id}/resume", post(ops::bulk_resume))
        .route("/v1/audit/verify", get(ops::audit_verify))
        .route("/v1/agents", get(agents::list_agents))
        .route("/v1/agents/enrolments", post(agents::create_enrolment))
        .route("/v1/agents/enroll", post(agents::enroll))
        .route("/v1/agents/{agent_id}", get(agents::agent_status))
        .route("/v1/agents/{agent_id}/approve", post(agents::approve_agent))
        .route("/v1/agents/{agent_id}/revoke", post(agents::revoke_agent))
        .route("/v1/agents/{agent_id}/work", post(work::queue_work))
        .route("/v1/work/{work_id}", get(work::work_status))
        .route("/v1/server-key", get(work::server_key))
        .route("/v1/sessions", post(sessions::open_session))
        .route("/v1/sessions/{session_id}", post(sessions::session_message))
        .route("/v1/openapi.json", get(openapi::serve))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(
            MAX_BODY_BYTES,
        ))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
        .with_state(state)
}

/// A configured server, not yet listening.
pub struct Server {
    config: ServerConfig,
    state: Arc<AppState>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("listen", &self.config.listen)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Opens the session, loads the server key and prepares token verification. Blocking
    /// (opens the repository): call it before starting a runtime or on a blocking thread.
    pub fn new(config: ServerConfig) -> Result<Server, ServerError> {
        let server_key = Arc::new(ServerKey::load(&config.server_key)?);
        let session = keysmith_facade::Session::open_file(&config.session_config)?;
        let o = &config.oidc;
        let settings = AccessTokenSettings {
            jwks_url: o.jwks_url.clone(),
            tenant_id: o.tenant_id.clone(),
            roles_claim: o.roles_claim.clone(),
            leeway: Duration::from_secs(o.leeway_s),
            // `ca_file`, `proxy`, `no_proxy`: entra-graph's own network options, as for an
            // IdP connection (OS trust store plus the CA file; the proxy or HTTPS_PROXY).
            network: o.network(),
            ..AccessTokenSettings::new(o.issuer.clone(), o.audience.clone())
        };
        let verifier = AccessTokenVerifier::new(settings, None)
            .map_err(|e| ServerError::Config(format!("oidc: {e}")))?;
        let l = &config.limits;
        let minute = Duration::from_secs(60);
        let sessions: Arc<dyn SessionHandler> =
            Arc::new(work::CoordinatorSessions(session.coordinator(
                server_key.wire_key()?,
                lifecycle::coordinator::CoordinatorConfig {
                    max_flows: config.limits.max_flows,
                    ..lifecycle::coordinator::CoordinatorConfig::default()
                },
            )));
        let state = Arc::new(AppState {
            store: session.store(),
            session,
            auth: auth::Authenticator::new(verifier, o.roles.clone()),
            server_key,
            sessions: std::sync::RwLock::new(sessions),
            sessions_per_agent: ratelimit::RateLimiter::new(
                l.sessions_per_minute_per_agent,
                minute,
            ),
            messages_per_source: ratelimit::RateLimiter::new(
                l.session_messages_per_minute_per_source,
                minute,
            ),
            enrolments_per_source: ratelimit::RateLimiter::new(
                l.enrolments_per_minute_per_source,
                minute,
            ),
            bulk_running: Mutex::new(Default::default()),
        });
        Ok(Server { config, state })
    }

    /// The same server with `handler` carrying agent sessions (the coordinator); see
    /// also [`AppState::set_sessions`].
    pub fn with_sessions(self, handler: Arc<dyn SessionHandler>) -> Server {
        self.state.set_sessions(handler);
        self
    }

    /// The shared state (for a coordinator built over the same session and key).
    pub fn state(&self) -> &Arc<AppState> {
        &self.state
    }

    /// Binds the listening socket and serves until `shutdown` resolves. `on_bound` gets
    /// the bound address (port 0 in the config picks a free one).
    pub async fn serve(
        self,
        on_bound: impl FnOnce(SocketAddr),
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        let timeout = Duration::from_secs(self.config.limits.request_timeout_s);
        let app = router(self.state.clone(), timeout);
        let acceptor = match &self.config.tls {
            Some(t) => Some(tls::acceptor(t)?),
            None => None,
        };
        let listener = tokio::net::TcpListener::bind(self.config.listen).await?;
        let replays = tokio::spawn(replay_journal(
            self.state.clone(),
            self.config.journal_replay_interval_s,
        ));
        on_bound(listener.local_addr()?);
        let served = tls::serve(listener, acceptor, app, timeout, shutdown).await;
        replays.abort();
        served
    }
}

/// Replays the journal now and then every `every_s` seconds (0: once): what a crashed
/// node journalled but did not finish (a registration after its job result arrived, a
/// deletion, a state change) is finished here, exactly once.
async fn replay_journal(state: Arc<AppState>, every_s: u64) {
    loop {
        let s = state.clone();
        match off_runtime(move || s.session.replay_journal()).await {
            Ok(Ok(done)) => {
                for e in done {
                    tracing::info!(
                        journal_id = e.id,
                        key_id = %e.key_id,
                        operation = %e.operation,
                        outcome = %e.outcome,
                        "journal entry replayed"
                    );
                }
            }
            Ok(Err(e)) => tracing::warn!(error = %e.message, "journal replay failed"),
            Err(e) => tracing::warn!(error = ?e, "journal replay not run"),
        }
        if every_s == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_secs(every_s)).await;
    }
}

/// Runs `keysmith serve run`: loads `config_path`, serves until SIGINT/SIGTERM, printing
/// `listening on https://ADDR` (or `http://` in loopback test mode) once bound.
pub fn run(config_path: &std::path::Path) -> Result<(), ServerError> {
    let config = ServerConfig::from_file(config_path)?;
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let server = Server::new(config)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(server.serve(
        |addr| {
            use std::io::Write as _;
            let mut out = std::io::stdout();
            let _ = writeln!(out, "listening on {scheme}://{addr}");
            let _ = out.flush();
        },
        async {
            #[cfg(unix)]
            {
                let mut term =
                    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    {
                        Ok(s) => s,
                        Err(_) => return,
                    };
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            #[cfg(not(unix))]
            {
                let _ = tokio::signal::ctrl_c().await;
            }
        },
    ))
}

/// Most blocking operations running at once (further ones wait).
const MAX_BLOCKING: usize = 64;

static BLOCKING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(MAX_BLOCKING);

/// Runs `f` on a plain thread, outside the runtime, and awaits its result. The facade
/// and the Graph client are blocking and refuse to run inside a runtime's context (which
/// `spawn_blocking` threads carry), so every lifecycle call goes through here.
pub async fn off_runtime<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    let _permit = BLOCKING.acquire().await.map_err(ApiError::internal)?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("keysmith-op".into())
        .spawn(move || {
            let _ = tx.send(f());
        })
        .map_err(ApiError::internal)?;
    rx.await
        .map_err(|_| ApiError::internal("the operation's thread panicked"))
}
