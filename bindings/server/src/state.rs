//! What every request handler shares.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use keysmith_facade::Session;
use lifecycle::store::Store;

use crate::auth::Authenticator;
use crate::keyfile::ServerKey;
use crate::ratelimit::RateLimiter;
use crate::sessions::SessionHandler;

/// The server's state.
pub struct AppState {
    /// The keysmith session (engine, repository, IdP connections, templates).
    pub session: Session,
    /// The repository (agents, enrolment codes, audit).
    pub store: Arc<dyn Store>,
    /// Verifies operators' bearer tokens.
    pub auth: Authenticator,
    /// The server signing key.
    pub server_key: Arc<ServerKey>,
    /// The session handler (the coordinator, or [`crate::sessions::NoSessions`]); see
    /// [`AppState::set_sessions`].
    pub sessions: RwLock<Arc<dyn SessionHandler>>,
    /// Sessions opened per agent.
    pub sessions_per_agent: RateLimiter,
    /// Session messages per source address.
    pub messages_per_source: RateLimiter,
    /// Enrolment attempts per source address.
    pub enrolments_per_source: RateLimiter,
    /// Bulk jobs running in this process.
    pub bulk_running: Mutex<HashSet<i64>>,
}

impl AppState {
    /// The session handler now.
    pub fn sessions(&self) -> Arc<dyn SessionHandler> {
        self.sessions
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Plugs in `handler` (the coordinator, typically built over [`AppState::session`],
    /// [`AppState::store`] and [`AppState::server_key`]); later messages go to it.
    pub fn set_sessions(&self, handler: Arc<dyn SessionHandler>) {
        *self
            .sessions
            .write()
            .unwrap_or_else(PoisonError::into_inner) = handler;
    }
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("session", &self.session)
            .field("server_key", &self.server_key)
            .finish_non_exhaustive()
    }
}

/// The connection's peer address (inserted by the accept loop; unspecified when the
/// router is called without one, e.g. in unit tests).
#[derive(Clone, Copy, Debug)]
pub struct PeerAddr(pub SocketAddr);

impl<S: Send + Sync> FromRequestParts<S> for PeerAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<PeerAddr>()
            .copied()
            .unwrap_or(PeerAddr(SocketAddr::from(([0, 0, 0, 0], 0)))))
    }
}
