//! The server half of a split deployment (`docs/split-protocol.md`): the [`Coordinator`]
//! consumes the device half's signed messages and produces its own, keeping every session's
//! state in the repository so any server node can take the next message.
//!
//! It holds what the device half must never hold: the IdP credential (through the
//! [`Engine`]), the repository, the server signing key and the transport PINs. What crosses
//! to the device half is data: signed jobs of device steps, and the transport PIN only
//! sealed to the device session's ephemeral key.
//!
//! Messages it cannot accept into a session — a bad signature, an unknown or revoked
//! agent, a session that is unknown, expired or broken, a sequence gap — are
//! [`Rejected`]: nothing in the session changes, and the carrier reports the code to the
//! sender (over HTTP a 4xx with the code). Refusals *inside* an accepted message (not the
//! key's owner, a capability the station lacks, an expired challenge) are signed
//! `Refused` replies, audited like every other refusal.

mod claims;
mod context;
mod flows;
mod remote_link;
mod session;
mod wake;

pub use flows::StationRequest;
pub use session::SessionOpened;

use std::sync::Arc;

use keysmith_wire::{RefusalCode, SigningKey};

use crate::engine::Engine;
use crate::store::StoreError;

pub use crate::store::{AgentClass, AgentStatus};

/// An enrolled agent as the coordinator needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentEntry {
    /// Lower-case hex of its key id (SHA-256 of the public key).
    pub agent_id: String,
    /// Its P-256 public key, SEC1 uncompressed.
    pub public_key: [u8; 65],
    /// Station or holder.
    pub class: AgentClass,
    /// Its enrolment's state.
    pub status: AgentStatus,
    /// The station's name (stations only).
    pub station: Option<String>,
}

/// Where the coordinator looks agents up (the server's enrolment records).
pub trait AgentDirectory: Send + Sync {
    /// The agent with this id (lower-case hex), if enrolled.
    fn agent(&self, agent_id: &str) -> Result<Option<AgentEntry>, StoreError>;
}

/// The agents enrolled in the repository (`keysmith serve`'s enrolment), shared by every
/// server node.
pub struct StoreAgents(pub Arc<dyn crate::store::Store>);

impl std::fmt::Debug for StoreAgents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreAgents")
    }
}

impl AgentDirectory for StoreAgents {
    fn agent(&self, agent_id: &str) -> Result<Option<AgentEntry>, StoreError> {
        let Some(a) = self.0.get_agent(agent_id)? else {
            return Ok(None);
        };
        let public_key =
            <[u8; 65]>::try_from(a.public_key.as_slice()).map_err(|_| StoreError::Corrupt {
                what: format!("agent {agent_id}: public key is not 65 bytes"),
            })?;
        Ok(Some(AgentEntry {
            agent_id: a.agent_id,
            public_key,
            class: a.class,
            status: a.status,
            station: a.station,
        }))
    }
}

/// Limits and timings of the coordinator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CoordinatorConfig {
    /// A session is refused this long after its `AgentHello` (the server's clock only).
    pub session_ttl_ms: u64,
    /// How long the device half may act on a server message (`ttl_ms`), except jobs,
    /// whose deadline follows the IdP challenge.
    pub message_ttl_ms: u64,
    /// What `Wait` tells an idle station.
    pub poll_ms: u64,
    /// A message whose processing started this long ago without a reply is taken as lost
    /// with its node: the session is closed and the device half starts over (and replans).
    pub stalled_after_ms: u64,
    /// Accept keys the device half reports as software authenticators (tests and demos
    /// only: their keys can be copied).
    pub allow_software_keys: bool,
    /// How many times a key's transport PIN may be released to holders' sessions for
    /// activation before the key is marked as needing reissue instead.
    pub max_transport_pin_releases: u32,
    /// Flows this node runs at once (each in a thread of its own). At the limit a
    /// station's poll is told to wait (its work stays queued) and a holder's sign-in is
    /// refused as busy. A soft limit: handlers checking at the same moment may pass it by
    /// a few.
    pub max_flows: usize,
}

impl Default for CoordinatorConfig {
    fn default() -> Self {
        CoordinatorConfig {
            session_ttl_ms: 15 * 60 * 1000,
            message_ttl_ms: 60 * 1000,
            poll_ms: 2_000,
            stalled_after_ms: 2 * 60 * 1000,
            allow_software_keys: false,
            max_transport_pin_releases: 3,
            max_flows: 256,
        }
    }
}

/// A message the coordinator did not accept into a session; nothing changed. The carrier
/// tells the sender `code` (and may show `reason`, which never holds a secret).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}: {reason}", .code.as_str())]
pub struct Rejected {
    /// The stable code (`docs/split-protocol.md` §7).
    pub code: RefusalCode,
    /// Why, for people.
    pub reason: String,
}

impl Rejected {
    fn new(code: RefusalCode, reason: impl Into<String>) -> Self {
        Rejected {
            code,
            reason: reason.into(),
        }
    }
}

/// Why a message could not be handled at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CoordinatorError {
    /// Not accepted into a session (see [`Rejected`]).
    #[error(transparent)]
    Rejected(#[from] Rejected),
    /// The repository failed; the sender may send the same bytes again.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The (verified) agent may not open another session now.
    #[error("agent {agent_id} opened too many sessions; try again later")]
    RateLimited {
        /// The agent.
        agent_id: String,
    },
    /// The session's stored context is unreadable (a bug or an altered row that still
    /// passed its MAC, which cannot happen with the row key installed).
    #[error("split session {session_id}: stored context unreadable: {reason}")]
    Context {
        /// The session.
        session_id: String,
        /// What failed.
        reason: String,
    },
}

/// The server half: see the module documentation.
pub struct Coordinator {
    engine: Arc<Engine>,
    key: SigningKey,
    agents: Arc<dyn AgentDirectory>,
    config: CoordinatorConfig,
    /// Flows running in this node's threads.
    flows: Arc<std::sync::atomic::AtomicUsize>,
}

impl std::fmt::Debug for Coordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coordinator")
            .field("server_key", &self.key.key_id())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Coordinator {
    /// A coordinator over `engine` (its repository keeps the sessions), signing with `key`
    /// (the key agents pin), looking agents up in `agents`.
    pub fn new(
        engine: Arc<Engine>,
        key: SigningKey,
        agents: Arc<dyn AgentDirectory>,
        config: CoordinatorConfig,
    ) -> Self {
        // Another node's change to a session wakes this node's waiters at once where the
        // repository can tell (PostgreSQL); else they see it at their next read.
        let ring: crate::store::split::SessionChanged = Arc::new(wake::ring);
        match engine.store().watch_sessions(ring) {
            Ok(true) => tracing::debug!("split sessions: other nodes' changes are notified"),
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(error = %e, "split sessions: no notifications from other nodes; their changes are seen at the next read")
            }
        }
        Coordinator {
            engine,
            key,
            agents,
            config,
            flows: Arc::default(),
        }
    }

    /// Whether this node runs as many flows as it may.
    fn at_flow_limit(&self) -> bool {
        self.flows.load(std::sync::atomic::Ordering::SeqCst) >= self.config.max_flows
    }

    /// The engine it drives.
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }
}
