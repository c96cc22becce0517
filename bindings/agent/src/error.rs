//! The agent's one error type.

use std::path::PathBuf;

/// Everything the agent can fail with. No variant carries a secret (a PIN, an ID token,
/// an enrolment code, a private key): those never reach an error message.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The configuration file is missing, unreadable or invalid.
    #[error("configuration: {setting}: {reason}")]
    Config {
        /// The setting (or `file`) at fault.
        setting: &'static str,
        /// Why.
        reason: String,
    },
    /// A file holding a secret (the agent key) is readable by group or others, is a
    /// symbolic link, or sits in a directory others can write.
    #[error("{path}: {reason}")]
    InsecureFile {
        /// The file or directory.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The agent key file exists but is not a P-256 PKCS#8 PEM key.
    #[error("agent key {path}: {reason}")]
    BadKey {
        /// The key file.
        path: PathBuf,
        /// Why it was refused.
        reason: String,
    },
    /// A local file or socket operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// An HTTP request to the server or the identity provider failed before an answer.
    #[error("{url}: {reason}")]
    Http {
        /// The URL (never with secrets in its query).
        url: String,
        /// The transport error.
        reason: String,
    },
    /// The server or the identity provider answered with an error or an unexpected body.
    #[error("{url}: HTTP {status}: {reason}")]
    Refused {
        /// The URL.
        url: String,
        /// The HTTP status (0 when the body, not the status, was wrong).
        status: u16,
        /// The error the peer gave, or what was wrong with the answer.
        reason: String,
    },
    /// The server's enrolment answer does not match this agent's key (another agent id
    /// or fingerprint): the answer is not for this key.
    #[error("enrolment answer mismatch: {0}")]
    EnrollMismatch(String),
    /// The holder's sign-in failed: the identity provider answered with an error, the
    /// redirect carried the wrong `state`, or the token was not for this sign-in.
    #[error("sign-in: {0}")]
    SignIn(String),
    /// The sign-in did not complete in time.
    #[error("sign-in timed out after {0} s")]
    SignInTimeout(u64),
    /// The local UI channel cannot be set up: the path is squatted by a non-socket, a
    /// live agent already listens there, or the directory is unsafe.
    #[error("UI channel {path}: {reason}")]
    UiChannel {
        /// The socket or pipe path.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A UI peer was refused: it runs as a user the configuration does not allow (or,
    /// seen from the UI, the agent end is not the keysmith service).
    #[error("UI peer refused: {0}")]
    PeerRefused(String),
    /// The UI peer sent something that is not the protocol (bad JSON, an over-long line,
    /// an unexpected message).
    #[error("UI protocol: {0}")]
    UiProtocol(String),
    /// The holder cancelled in the UI, or the UI went away.
    #[error("cancelled by the holder")]
    Cancelled,
    /// The security key could not be opened or failed outside a job.
    #[error("device: {0}")]
    Device(String),
    /// The split session failed (a refused message, a broken session, a server refusal).
    #[error("session: {0}")]
    Session(String),
}

impl AgentError {
    /// An [`AgentError::Io`] for `what`.
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        AgentError::Io {
            what: what.into(),
            source,
        }
    }

    /// A configuration error naming `setting`.
    pub fn config(setting: &'static str, reason: impl Into<String>) -> Self {
        AgentError::Config {
            setting,
            reason: reason.into(),
        }
    }
}
