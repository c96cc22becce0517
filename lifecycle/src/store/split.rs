//! What the server half of a split deployment keeps between messages: one row per device
//! session (its sequence numbers, the reply last sent, the coordinator's context), the
//! messages received and sent (evidence, review G7), and the work operators queue for a
//! station.
//!
//! Any server node can take a session's next message: the session row moves by
//! compare-and-set on its version, so two nodes handling the same message never both
//! advance it. Rows that decide IdP calls (the session's context names the holder and the
//! operation; queued work names the user and template) carry a MAC under the row key like
//! pending registrations do (`docs/database-trust.md`).

use super::{Result, UnixMillis};

/// Where a session stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SplitSessionState {
    /// Messages are accepted.
    Open,
    /// Finished normally.
    Done,
    /// Closed after a sequence or signature violation; nothing more is accepted.
    Broken,
}

impl SplitSessionState {
    /// The stable name stored.
    pub const fn as_str(self) -> &'static str {
        match self {
            SplitSessionState::Open => "open",
            SplitSessionState::Done => "done",
            SplitSessionState::Broken => "broken",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "open" => Some(SplitSessionState::Open),
            "done" => Some(SplitSessionState::Done),
            "broken" => Some(SplitSessionState::Broken),
            _ => None,
        }
    }
}

/// One device session as the server keeps it.
#[derive(Clone, PartialEq, Eq)]
pub struct SplitSession {
    /// Lower-case hex of the 16-byte session id.
    pub session_id: String,
    /// Lower-case hex of the agent's key id.
    pub agent_id: String,
    /// When `AgentHello` arrived.
    pub created_ms: UnixMillis,
    /// After this instant nothing more is accepted.
    pub expires_ms: UnixMillis,
    /// Where it stands.
    pub state: SplitSessionState,
    /// The device session's ephemeral public key (SEC1 uncompressed) secrets are sealed to.
    pub session_pub: Vec<u8>,
    /// The server's nonce from `ServerHello`.
    pub server_nonce: Vec<u8>,
    /// The last device sequence number accepted.
    pub recv_seq: u64,
    /// SHA-256 of the last device message accepted (to recognise a retransmission).
    pub recv_digest: Vec<u8>,
    /// The last server sequence number sent.
    pub sent_seq: u64,
    /// The last reply sent (signed bytes), answered again to a retransmission.
    pub reply: Vec<u8>,
    /// The coordinator's state between messages (JSON it owns).
    pub context: String,
    /// Compare-and-set version; starts at 1.
    pub version: u64,
}

impl std::fmt::Debug for SplitSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SplitSession")
            .field("session_id", &self.session_id)
            .field("agent_id", &self.agent_id)
            .field("state", &self.state)
            .field("recv_seq", &self.recv_seq)
            .field("sent_seq", &self.sent_seq)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// Which way a logged message went.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SplitDirection {
    /// Device → server.
    In,
    /// Server → device.
    Out,
}

impl SplitDirection {
    /// The stable name stored.
    pub const fn as_str(self) -> &'static str {
        match self {
            SplitDirection::In => "in",
            SplitDirection::Out => "out",
        }
    }
}

/// A message of a session as it crossed (the signed bytes; no secret is ever in clear in
/// them: the transport PIN is sealed to the session, the holder's PIN never crosses, and
/// ID tokens are not logged — a `HolderAuth` is logged as its SHA-256 only).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SplitMessage {
    /// The session.
    pub session_id: String,
    /// Which way.
    pub direction: SplitDirection,
    /// Its sequence number in that direction.
    pub seq: u64,
    /// The bytes (or, for a message carrying an ID token, its SHA-256).
    pub bytes: Vec<u8>,
    /// When it was handled.
    pub at_ms: UnixMillis,
}

/// Where queued station work stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StationWorkState {
    /// Waiting for the station.
    Queued,
    /// A session of the station took it.
    Taken,
    /// Finished (see the outcome).
    Done,
    /// Failed or cancelled (see the outcome).
    Failed,
}

impl StationWorkState {
    /// The stable name stored.
    pub const fn as_str(self) -> &'static str {
        match self {
            StationWorkState::Queued => "queued",
            StationWorkState::Taken => "taken",
            StationWorkState::Done => "done",
            StationWorkState::Failed => "failed",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "queued" => Some(StationWorkState::Queued),
            "taken" => Some(StationWorkState::Taken),
            "done" => Some(StationWorkState::Done),
            "failed" => Some(StationWorkState::Failed),
            _ => None,
        }
    }
}

/// An operation an operator queued for a station (issue a key there, reset one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StationWork {
    /// Chosen by the caller (random, lower-case hex).
    pub work_id: String,
    /// The station's agent id.
    pub agent_id: String,
    /// The operation (JSON the coordinator owns: kind, user, template, ...).
    pub request: String,
    /// Who queued it.
    pub actor: String,
    /// When.
    pub created_ms: UnixMillis,
    /// Where it stands.
    pub state: StationWorkState,
    /// The session that took it.
    pub session_id: Option<String>,
    /// The outcome (JSON), once finished.
    pub outcome: Option<String>,
}

/// Called with the id of a split session another connection changed (see
/// [`SplitStore::watch_sessions`]).
pub type SessionChanged = std::sync::Arc<dyn Fn(&str) + Send + Sync>;

/// The split deployment's part of the repository. Every [`super::Store`] implements it.
pub trait SplitStore {
    /// Records a new session. A session id that exists is [`super::StoreError::Duplicate`].
    fn split_session_create(&self, session: &SplitSession, now: UnixMillis) -> Result<()>;
    /// [`SplitStore::split_session_create`] and the [`SplitStore::split_log`] of `log` in
    /// one transaction (a session's opening: one commit where it used to cost three).
    /// This default runs them one after the other (a log failure then only warns).
    fn split_session_create_logged(
        &self,
        session: &SplitSession,
        now: UnixMillis,
        log: &[SplitMessage],
    ) -> Result<()> {
        self.split_session_create(session, now)?;
        for m in log {
            if let Err(e) = self.split_log(m) {
                tracing::warn!(error = %e, session_id = %m.session_id, "split message log write failed");
            }
        }
        Ok(())
    }
    /// The session, checked against its MAC when the row key is installed.
    fn split_session_get(&self, session_id: &str) -> Result<Option<SplitSession>>;
    /// Replaces the session if its stored version is still `expected_version` (the new
    /// row carries `expected_version + 1`); `false` when another node moved it first.
    fn split_session_update(
        &self,
        session: &SplitSession,
        expected_version: u64,
        now: UnixMillis,
    ) -> Result<bool>;
    /// Logs a message (a repeat of the same direction and seq is ignored).
    fn split_log(&self, message: &SplitMessage) -> Result<()>;
    /// [`SplitStore::split_session_update`] and, when it moved the session, the
    /// [`SplitStore::split_log`] of `log` in the same transaction: one commit where a
    /// message used to cost two, and the log holds a message exactly when the session
    /// moved past it. `false` (nothing logged) when another node moved the session first.
    /// This default runs the two one after the other (a log failure then only warns).
    fn split_session_update_logged(
        &self,
        session: &SplitSession,
        expected_version: u64,
        now: UnixMillis,
        log: &[SplitMessage],
    ) -> Result<bool> {
        if !self.split_session_update(session, expected_version, now)? {
            return Ok(false);
        }
        for m in log {
            if let Err(e) = self.split_log(m) {
                tracing::warn!(error = %e, session_id = %m.session_id, "split message log write failed");
            }
        }
        Ok(true)
    }
    /// The messages of a session, in order.
    fn split_messages(&self, session_id: &str) -> Result<Vec<SplitMessage>>;
    /// Queues work for a station.
    fn station_work_put(&self, work: &StationWork) -> Result<()>;
    /// Hands the oldest queued work of `agent_id` to `session_id` (atomically: two
    /// sessions never take the same work).
    fn station_work_take(
        &self,
        agent_id: &str,
        session_id: &str,
        now: UnixMillis,
    ) -> Result<Option<StationWork>>;
    /// Finishes work taken by a session with `outcome`; `false` if it was not taken.
    fn station_work_finish(
        &self,
        work_id: &str,
        state: StationWorkState,
        outcome: &str,
        now: UnixMillis,
    ) -> Result<bool>;
    /// One piece of work.
    fn station_work_get(&self, work_id: &str) -> Result<Option<StationWork>>;
    /// Tells `changed`, from a thread of the store's own until the store is dropped, the
    /// id of each split session another connection to this repository moves (another
    /// server node): the waits of this node then see that change at once instead of at
    /// their next read of the row. `false` when the backend has no such feed (this
    /// default; SQLite, whose server is one process). A store keeps the first watcher it
    /// is given. A hint only: the row stays the truth.
    fn watch_sessions(&self, changed: SessionChanged) -> Result<bool> {
        let _ = changed;
        Ok(false)
    }
}
