//! Channel bookkeeping shared by both halves (split-protocol.md §2): per-direction sequence
//! numbers with retransmission detection, the session check, and ttl arithmetic on the
//! caller's monotonic clock (this crate reads no clock).

use crate::error::WireError;
use crate::msg::SessionId;

/// What an incoming message is, sequence-wise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeqCheck {
    /// The next message (seq = last + 1, or 0 first): process it.
    Next,
    /// The message last accepted, again (same seq, same bytes): answer it with the stored
    /// reply, do not process it again.
    Retransmission,
}

/// The receive side of one direction: accepts seq = last + 1 only.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SeqWindow {
    last: Option<(u64, [u8; 32])>,
}

impl SeqWindow {
    /// A window expecting seq 0 first.
    pub fn new() -> Self {
        Self::default()
    }

    /// A window resumed from stored state: the last accepted seq and its message digest.
    pub fn resume(last_seq: u64, last_digest: [u8; 32]) -> Self {
        SeqWindow {
            last: Some((last_seq, last_digest)),
        }
    }

    /// The last accepted seq and digest, to store.
    pub fn last(&self) -> Option<(u64, [u8; 32])> {
        self.last
    }

    /// The seq expected next.
    pub fn expected(&self) -> u64 {
        self.last.map_or(0, |(s, _)| s.saturating_add(1))
    }

    /// Classifies a message without changing the window. Any gap, reorder, or repeat with
    /// other bytes is `SessionBroken` (the caller closes the session).
    pub fn check(&self, seq: u64, digest: &[u8; 32]) -> Result<SeqCheck, WireError> {
        if let Some((last, d)) = self.last {
            if seq == last {
                return if d == *digest {
                    Ok(SeqCheck::Retransmission)
                } else {
                    Err(WireError::SessionBroken {
                        expected: self.expected(),
                        got: seq,
                    })
                };
            }
        }
        if seq == self.expected() {
            Ok(SeqCheck::Next)
        } else {
            Err(WireError::SessionBroken {
                expected: self.expected(),
                got: seq,
            })
        }
    }

    /// [`SeqWindow::check`], then advances the window on [`SeqCheck::Next`].
    pub fn accept(&mut self, seq: u64, digest: &[u8; 32]) -> Result<SeqCheck, WireError> {
        let verdict = self.check(seq, digest)?;
        if verdict == SeqCheck::Next {
            self.last = Some((seq, *digest));
        }
        Ok(verdict)
    }
}

/// One side's view of a session: the session id (once known), the receive window and the
/// next seq to send.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Channel {
    session: Option<SessionId>,
    incoming: SeqWindow,
    next_out: u64,
}

impl Channel {
    /// A channel before the hellos.
    pub fn new() -> Self {
        Self::default()
    }

    /// A channel resumed from stored state.
    pub fn resume(session: Option<SessionId>, incoming: SeqWindow, next_out: u64) -> Self {
        Channel {
            session,
            incoming,
            next_out,
        }
    }

    /// The session, once set.
    pub fn session(&self) -> Option<SessionId> {
        self.session
    }

    /// Sets the session (the server when it answers `AgentHello`, the device when it
    /// accepts `ServerHello`). Setting a different one later is refused.
    pub fn set_session(&mut self, session: SessionId) -> Result<(), WireError> {
        match self.session {
            Some(s) if s != session => Err(WireError::SessionMismatch),
            _ => {
                self.session = Some(session);
                Ok(())
            }
        }
    }

    /// The receive window.
    pub fn incoming(&self) -> &SeqWindow {
        &self.incoming
    }

    /// The seq the next outgoing message carries (without using it).
    pub fn peek_out(&self) -> u64 {
        self.next_out
    }

    /// Takes the seq for the next outgoing message.
    pub fn next_out(&mut self) -> u64 {
        let s = self.next_out;
        self.next_out = self.next_out.saturating_add(1);
        s
    }

    /// Checks an opened incoming message: its session (when this channel has one) and its
    /// seq; advances the window when it is the next message.
    pub fn receive(
        &mut self,
        session: Option<SessionId>,
        seq: u64,
        digest: &[u8; 32],
    ) -> Result<SeqCheck, WireError> {
        if let Some(mine) = self.session {
            if session != Some(mine) {
                return Err(WireError::SessionMismatch);
            }
        }
        self.incoming.accept(seq, digest)
    }
}

/// A server message's ttl, counted on the receiver's monotonic clock from receipt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TtlDeadline {
    received_at_ms: u64,
    ttl_ms: Option<u64>,
}

impl TtlDeadline {
    /// `received_at_ms`: the caller's monotonic reading (ms) when the bytes arrived;
    /// `ttl_ms`: the envelope's (`None`: no ttl).
    pub fn new(received_at_ms: u64, ttl_ms: Option<u64>) -> Self {
        TtlDeadline {
            received_at_ms,
            ttl_ms,
        }
    }

    /// Milliseconds left at monotonic reading `now_ms` (`None`: no ttl).
    pub fn remaining(&self, now_ms: u64) -> Option<u64> {
        let ttl = self.ttl_ms?;
        let elapsed = now_ms.saturating_sub(self.received_at_ms);
        Some(ttl.saturating_sub(elapsed))
    }

    /// `TtlExpired` once the ttl ran out (at `received_at + ttl` exactly, it has).
    pub fn check(&self, now_ms: u64) -> Result<(), WireError> {
        match self.remaining(now_ms) {
            Some(0) => Err(WireError::TtlExpired),
            _ => Ok(()),
        }
    }
}
