//! The UI channel over a Unix socket.
//!
//! The agent binds the socket in a directory owned by root or by the agent's user that
//! group and others cannot write (`/run/keysmith-agent`, `0755`, made by systemd's
//! `RuntimeDirectory=`), so nobody else can put a socket or a file there. The socket
//! itself must let the interactive user connect (a root-owned `0600` socket would lock
//! the UI out, review E11): with one allowed user and the agent running as root it is
//! handed to that user, `0600`; otherwise it is `0666`. Either way every client is checked
//! with `SO_PEERCRED` against the allowed uids before a byte is exchanged.
//!
//! What is at the path when the agent starts: nothing (bind), a socket nobody listens
//! on (a stale one from a crash: removed, then bind), a socket a live process answers on
//! (refused: another agent runs), anything else — a file, a symlink, a directory —
//! (refused as squatted; the agent never deletes what it did not make).
//!
//! The UI checks the other way round: the agent end must run as one of the configured
//! agent uids (root by default) before the UI sends a PIN.

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::sys::{euid, peer_uid};
use super::{UiClient, UiSession};
use crate::AgentError;

/// The agent's listening socket. The socket file is removed on drop when it is still
/// the one this listener made.
#[derive(Debug)]
pub struct UiListener {
    listener: UnixListener,
    path: PathBuf,
    ino: u64,
    allowed: Vec<u32>,
    agent_fingerprint: String,
    timeout: Duration,
}

/// The uid of the user at the console (logind's `ACTIVE_UID` of seat0), if any.
pub fn console_uid() -> Option<u32> {
    let text = std::fs::read_to_string("/run/systemd/seats/seat0").ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("ACTIVE_UID="))
        .and_then(|v| v.trim().parse().ok())
}

fn channel_err(path: &Path, reason: impl Into<String>) -> AgentError {
    AgentError::UiChannel {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

fn check_dir(path: &Path) -> Result<(), AgentError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if !dir.exists() {
        let mut b = std::fs::DirBuilder::new();
        std::os::unix::fs::DirBuilderExt::mode(b.recursive(true), 0o755);
        b.create(dir)
            .map_err(|e| AgentError::io(format!("creating {}", dir.display()), e))?;
    }
    let meta = std::fs::symlink_metadata(dir)
        .map_err(|e| AgentError::io(format!("{}", dir.display()), e))?;
    if meta.file_type().is_symlink() || !meta.is_dir() {
        return Err(channel_err(
            path,
            "the socket's directory is not a plain directory",
        ));
    }
    if meta.uid() != 0 && meta.uid() != euid() {
        return Err(channel_err(
            path,
            format!("the socket's directory is owned by uid {}", meta.uid()),
        ));
    }
    if meta.permissions().mode() & 0o022 != 0 {
        return Err(channel_err(
            path,
            format!(
                "the socket's directory is mode {:o}: others could replace the socket",
                meta.permissions().mode() & 0o777
            ),
        ));
    }
    Ok(())
}

/// Clears a stale socket at `path`; refuses a live one and anything not a socket.
fn clear_path(path: &Path) -> Result<(), AgentError> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(AgentError::io(format!("{}", path.display()), e)),
    };
    if !meta.file_type().is_socket() {
        return Err(channel_err(
            path,
            "something that is not a socket is at the path (squatted?): refused; remove it",
        ));
    }
    match UnixStream::connect(path) {
        Ok(_) => Err(channel_err(
            path,
            "a live process answers on this socket (another agent?): refused",
        )),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            tracing::info!(path = %path.display(), "removing a stale UI socket");
            std::fs::remove_file(path)
                .map_err(|e| AgentError::io(format!("removing {}", path.display()), e))
        }
        Err(e) => Err(AgentError::io(format!("probing {}", path.display()), e)),
    }
}

impl UiListener {
    /// Binds `path` for clients running as one of `allowed` uids (empty: the console
    /// user; none known is an error).
    pub fn bind(path: &Path, allowed: &[u32], agent_fingerprint: &str) -> Result<Self, AgentError> {
        let allowed = if allowed.is_empty() {
            vec![console_uid().ok_or_else(|| {
                channel_err(
                    path,
                    "no console user is signed in and ui.allowed_uids is empty",
                )
            })?]
        } else {
            allowed.to_vec()
        };
        check_dir(path)?;
        clear_path(path)?;
        let listener = UnixListener::bind(path)
            .map_err(|e| AgentError::io(format!("binding {}", path.display()), e))?;
        let set = |mode: u32| {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
                .map_err(|e| AgentError::io(format!("chmod {}", path.display()), e))
        };
        match allowed.as_slice() {
            [uid] if euid() == 0 => {
                std::os::unix::fs::chown(path, Some(*uid), None)
                    .map_err(|e| AgentError::io(format!("chown {}", path.display()), e))?;
                set(0o600)?;
            }
            _ => set(0o666)?,
        }
        let ino = std::fs::symlink_metadata(path)
            .map_err(|e| AgentError::io(format!("{}", path.display()), e))?
            .ino();
        Ok(UiListener {
            listener,
            path: path.to_owned(),
            ino,
            allowed,
            agent_fingerprint: agent_fingerprint.to_owned(),
            timeout: Duration::from_secs(300),
        })
    }

    /// How long a session waits for the UI's answer (default 5 minutes).
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// The uids allowed to connect.
    pub fn allowed(&self) -> &[u32] {
        &self.allowed
    }

    /// Accepts one connection: a session when its uid is allowed, else
    /// [`AgentError::PeerRefused`] (the connection is closed unanswered).
    pub fn accept_one(&self) -> Result<UiSession<UnixStream>, AgentError> {
        let (stream, _) = self
            .listener
            .accept()
            .map_err(|e| AgentError::io("accepting a UI connection", e))?;
        let uid = peer_uid(&stream).map_err(|e| AgentError::io("SO_PEERCRED", e))?;
        if !self.allowed.contains(&uid) {
            tracing::warn!(
                uid,
                "UI connection from a user that is not allowed: refused"
            );
            let _ = stream.shutdown(std::net::Shutdown::Both);
            return Err(AgentError::PeerRefused(format!(
                "uid {uid} is not an allowed UI user"
            )));
        }
        stream
            .set_read_timeout(Some(self.timeout))
            .and_then(|()| stream.set_write_timeout(Some(Duration::from_secs(10))))
            .map_err(|e| AgentError::io("UI socket timeouts", e))?;
        UiSession::start(stream, uid, &self.agent_fingerprint)
    }

    /// Accepts the next connection from an allowed user, skipping (and logging) refused
    /// ones.
    pub fn accept(&self) -> Result<UiSession<UnixStream>, AgentError> {
        loop {
            match self.accept_one() {
                Err(AgentError::PeerRefused(_)) => continue,
                other => return other,
            }
        }
    }
}

impl Drop for UiListener {
    fn drop(&mut self) {
        let ours = std::fs::symlink_metadata(&self.path)
            .map(|m| m.file_type().is_socket() && m.ino() == self.ino)
            .unwrap_or(false);
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Connects the UI to the agent at `path` and checks that the agent end runs as one of
/// `agent_uids` (empty: root only) before anything is exchanged.
pub fn connect(path: &Path, agent_uids: &[u32]) -> Result<UiClient<UnixStream>, AgentError> {
    let stream = UnixStream::connect(path)
        .map_err(|e| AgentError::io(format!("connecting to {}", path.display()), e))?;
    let uid = peer_uid(&stream).map_err(|e| AgentError::io("SO_PEERCRED", e))?;
    let ok = if agent_uids.is_empty() {
        uid == 0
    } else {
        agent_uids.contains(&uid)
    };
    if !ok {
        return Err(AgentError::PeerRefused(format!(
            "the process at {} runs as uid {uid}, not as the keysmith agent",
            path.display()
        )));
    }
    Ok(UiClient::new(stream))
}
