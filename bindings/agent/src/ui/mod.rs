//! The local UI channel between the agent (a service) and the holder's UI process
//! (review E11).
//!
//! The protocol is JSON lines, one message a line, at most [`MAX_LINE`] bytes:
//! - agent → UI ([`ToUi`]): `hello`, `prompt` (touch the key, insert the key, fingerprint
//!   sample n of m), `need_pin {min_len, confirm}`, `need_sign_in {url}` (the UI opens the
//!   system browser, or shows the URL), `session_code {code}` (review G2: a short code the
//!   UI shows and the sign-in page repeats), `done {ok, message}`;
//! - UI → agent ([`FromUi`]): `pin {pin}` and `cancel`.
//!
//! Unknown message types and unknown fields are refused. The PIN is read into zeroized
//! buffers, is redacted in every `Debug`, and the channel logs (tracing, `debug`) only
//! the redacted forms. One client at a time: the agent serves the connection it
//! accepted; later ones wait in the listen backlog until it is done.
//!
//! Transports: [`unix`] (a socket in a root- or agent-owned directory, clients checked
//! with `SO_PEERCRED`) and `windows` (a named pipe, first instance only, with a DACL for
//! SYSTEM and the UI session's logon SID; clients checked by session and user, the
//! server checked by the UI).

use std::io::{Read, Write};

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::AgentError;

#[cfg(unix)]
pub mod unix;
#[cfg(windows)]
pub mod windows;

#[cfg(unix)]
pub(crate) mod sys;

mod holder;
pub use holder::ChannelUi;

/// Longest line either side sends.
pub const MAX_LINE: usize = 4096;
/// The protocol version in `hello`.
pub const VERSION: u32 = 1;

/// A PIN typed by the holder. Zeroized on drop, redacted in `Debug`, serialized only on
/// the channel itself.
#[derive(Clone, PartialEq, Eq)]
pub struct HolderPin(Zeroizing<String>);

impl HolderPin {
    /// Wraps a PIN.
    pub fn new(pin: Zeroizing<String>) -> Self {
        HolderPin(pin)
    }
    /// The PIN, for the key (never for a log).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for HolderPin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HolderPin(<redacted>)")
    }
}

impl Serialize for HolderPin {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for HolderPin {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(HolderPin(Zeroizing::new(String::deserialize(d)?)))
    }
}

/// What the agent asks the holder to do with the key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PromptKind {
    /// Touch the key.
    TouchKey,
    /// Insert (or re-insert) the key.
    InsertKey,
    /// Give a fingerprint sample (`sample` of `of`).
    FingerprintSample,
    /// Press and hold the key (a long touch, e.g. for a reset).
    HoldKey,
    /// Remove the key, or lift it off the reader, or put it back (a reset's replug):
    /// `message` says which.
    Replug,
}

/// Agent → UI.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ToUi {
    /// First message: the protocol version and the agent's fingerprint.
    Hello {
        /// [`VERSION`].
        version: u32,
        /// The agent's fingerprint.
        agent: String,
    },
    /// A prompt about the key.
    Prompt {
        /// What to do.
        prompt: PromptKind,
        /// For fingerprint samples: this sample's number (from 1).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sample: Option<u32>,
        /// For fingerprint samples: how many are needed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        of: Option<u32>,
        /// The text to show, where the kind alone does not say it (`replug`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
    /// Ask for a PIN: the new one, or (`current`) the one the key has now.
    NeedPin {
        /// Least length, in Unicode code points.
        min_len: u32,
        /// Ask twice.
        confirm: bool,
        /// The key's current PIN is asked for (a check), not a new one.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        current: bool,
    },
    /// The holder must sign in: open this URL in the browser.
    NeedSignIn {
        /// The authorize URL (carries no secret: PKCE keeps the verifier in the agent).
        url: String,
    },
    /// The session code to show (review G2).
    SessionCode {
        /// A short code, e.g. `K7QF-2MXD`.
        code: String,
    },
    /// The end of the interaction.
    Done {
        /// Whether it succeeded.
        ok: bool,
        /// What to tell the holder.
        message: String,
    },
}

/// What the holder asks the agent service to do (the first message of a UI connection
/// to `keysmith agent holder`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HolderOperation {
    /// Activate an issued key (set the PIN).
    Activate,
    /// Issue the attached blank key to oneself.
    SelfIssue,
    /// A sign-in check.
    Verify,
}

/// UI → agent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum FromUi {
    /// The holder asks for an operation (to a holder service only).
    Request {
        /// What to do.
        operation: HolderOperation,
        /// The key (activate: optional; verify: required).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key_id: Option<String>,
        /// The credential template (self-issue).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        template: Option<String>,
    },
    /// The PIN the holder typed (answers `need_pin`).
    Pin {
        /// The PIN.
        pin: HolderPin,
    },
    /// The holder cancelled.
    Cancel,
}

/// Reads one line (without the newline) into a zeroized buffer, byte by byte (no
/// buffered copy of a PIN is left behind). `Ok(None)` at end of stream.
pub(crate) fn read_line(r: &mut impl Read) -> Result<Option<Zeroizing<Vec<u8>>>, AgentError> {
    let mut line = Zeroizing::new(Vec::with_capacity(256));
    let mut b = [0u8; 1];
    loop {
        match r.read(&mut b) {
            Ok(0) if line.is_empty() => return Ok(None),
            Ok(0) => return Err(AgentError::UiProtocol("line cut short".into())),
            Ok(_) if b[0] == b'\n' => return Ok(Some(line)),
            Ok(_) => {
                if line.len() >= MAX_LINE {
                    return Err(AgentError::UiProtocol(format!(
                        "line longer than {MAX_LINE} bytes"
                    )));
                }
                line.push(b[0]);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(AgentError::io("reading from the UI channel", e)),
        }
    }
    // b is one byte of the line; it is overwritten by each read and dropped here.
}

/// Writes `msg` as one line.
pub(crate) fn write_msg<T: Serialize>(w: &mut impl Write, msg: &T) -> Result<(), AgentError> {
    let mut line =
        Zeroizing::new(serde_json::to_vec(msg).map_err(|e| AgentError::UiProtocol(e.to_string()))?);
    if line.len() >= MAX_LINE {
        return Err(AgentError::UiProtocol("message too long".into()));
    }
    line.push(b'\n');
    w.write_all(&line)
        .and_then(|()| w.flush())
        .map_err(|e| AgentError::io("writing to the UI channel", e))
}

fn parse<'a, T: Deserialize<'a>>(line: &'a [u8]) -> Result<T, AgentError> {
    serde_json::from_slice(line).map_err(|e| {
        // serde_json's own message can quote the value (a PIN sent as a number): only
        // the category and the position are kept.
        AgentError::UiProtocol(format!(
            "not a protocol message ({:?} error at column {})",
            e.classify(),
            e.column()
        ))
    })
}

/// The agent's end of one UI connection.
#[derive(Debug)]
pub struct UiSession<S> {
    stream: S,
    /// Who is on the other end (Unix uid, or Windows session id).
    peer: u32,
}

impl<S: Read + Write> UiSession<S> {
    /// Wraps an accepted, checked connection and sends `hello`.
    pub fn start(stream: S, peer: u32, agent_fingerprint: &str) -> Result<Self, AgentError> {
        let mut s = UiSession { stream, peer };
        s.send(&ToUi::Hello {
            version: VERSION,
            agent: agent_fingerprint.to_owned(),
        })?;
        Ok(s)
    }

    /// The peer's uid (Unix) or session id (Windows).
    pub fn peer(&self) -> u32 {
        self.peer
    }

    /// Sends one message.
    pub fn send(&mut self, msg: &ToUi) -> Result<(), AgentError> {
        tracing::debug!(peer = self.peer, ?msg, "to UI");
        write_msg(&mut self.stream, msg)
    }

    /// Receives one message; the end of the stream is [`AgentError::Cancelled`].
    pub fn recv(&mut self) -> Result<FromUi, AgentError> {
        let line = read_line(&mut self.stream)?.ok_or(AgentError::Cancelled)?;
        let msg: FromUi = parse(&line)?;
        tracing::debug!(peer = self.peer, ?msg, "from UI");
        Ok(msg)
    }

    /// Asks for a PIN of at least `min_len` characters; a cancel (or the UI going away)
    /// is [`AgentError::Cancelled`], a shorter PIN [`AgentError::UiProtocol`].
    pub fn ask_pin(&mut self, min_len: u32, confirm: bool) -> Result<HolderPin, AgentError> {
        self.ask(min_len, confirm, false)
    }

    /// Asks for the key's current PIN (a check before a step that needs it).
    pub fn ask_current_pin(&mut self) -> Result<HolderPin, AgentError> {
        self.ask(0, false, true)
    }

    fn ask(&mut self, min_len: u32, confirm: bool, current: bool) -> Result<HolderPin, AgentError> {
        self.send(&ToUi::NeedPin {
            min_len,
            confirm,
            current,
        })?;
        match self.recv()? {
            FromUi::Pin { pin } if pin.expose().is_empty() => {
                Err(AgentError::UiProtocol("an empty PIN".into()))
            }
            FromUi::Pin { pin } if pin.expose().chars().count() >= min_len as usize => Ok(pin),
            FromUi::Pin { .. } => Err(AgentError::UiProtocol(format!(
                "the PIN is shorter than {min_len} characters"
            ))),
            FromUi::Cancel => Err(AgentError::Cancelled),
            FromUi::Request { .. } => Err(AgentError::UiProtocol(
                "a request while a PIN was asked for".into(),
            )),
        }
    }
}

/// The UI's end of the channel.
#[derive(Debug)]
pub struct UiClient<S> {
    stream: S,
}

impl<S: Read + Write> UiClient<S> {
    /// Wraps a connected, checked stream.
    pub fn new(stream: S) -> Self {
        UiClient { stream }
    }

    /// Receives one message; `Ok(None)` when the agent closed the channel.
    pub fn recv(&mut self) -> Result<Option<ToUi>, AgentError> {
        match read_line(&mut self.stream)? {
            None => Ok(None),
            Some(line) => parse(&line).map(Some),
        }
    }

    /// Sends one message.
    pub fn send(&mut self, msg: &FromUi) -> Result<(), AgentError> {
        write_msg(&mut self.stream, msg)
    }
}

/// A session code for people to compare (review G2): 8 characters from an alphabet
/// without look-alikes, as `XXXX-XXXX` (40 bits).
pub fn session_code() -> String {
    use rand_core::{OsRng, RngCore};
    const ALPHABET: &[u8; 31] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
    let mut raw = [0u8; 8];
    OsRng.fill_bytes(&mut raw);
    let chars: Vec<char> = raw
        .iter()
        .map(|b| ALPHABET[usize::from(b % 31)] as char)
        .collect();
    format!(
        "{}-{}",
        chars[..4].iter().collect::<String>(),
        chars[4..].iter().collect::<String>()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_unknown_ones_are_refused() {
        let m = ToUi::Prompt {
            prompt: PromptKind::FingerprintSample,
            sample: Some(2),
            of: Some(5),
            message: None,
        };
        let text = serde_json::to_string(&m).unwrap();
        assert_eq!(
            text,
            r#"{"type":"prompt","prompt":"fingerprint_sample","sample":2,"of":5}"#
        );
        assert_eq!(parse::<ToUi>(text.as_bytes()).unwrap(), m);
        assert!(parse::<FromUi>(br#"{"type":"pin","pin":"1234","extra":1}"#).is_err());
        assert!(parse::<FromUi>(br#"{"type":"shell","cmd":"rm"}"#).is_err());
        let pin = parse::<FromUi>(br#"{"type":"pin","pin":"654321"}"#).unwrap();
        assert!(!format!("{pin:?}").contains("654321"));
        let err = parse::<FromUi>(br#"{"type":"pin","pin":654321}"#).unwrap_err();
        assert!(!err.to_string().contains("654321"), "{err}");
    }

    #[test]
    fn lines_are_bounded() {
        let long = vec![b'a'; MAX_LINE + 10];
        assert!(matches!(
            read_line(&mut &long[..]),
            Err(AgentError::UiProtocol(_))
        ));
        assert!(read_line(&mut &b""[..]).unwrap().is_none());
        assert!(read_line(&mut &b"abc"[..]).is_err());
    }

    proptest::proptest! {
        /// Whatever a peer sends, the agent side answers with a message or an error,
        /// never a panic, and a refusal never quotes the bytes it got.
        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600)) {
            let mut r = &data[..];
            while let Ok(Some(line)) = read_line(&mut r) {
                if let Err(e) = parse::<FromUi>(&line) {
                    let text = e.to_string();
                    proptest::prop_assert!(text.starts_with("UI protocol: not a protocol message ("));
                }
                let _ = parse::<ToUi>(&line);
            }
        }
    }

    #[test]
    fn session_codes_look_right() {
        let c = session_code();
        assert_eq!(c.len(), 9);
        assert_eq!(&c[4..5], "-");
        assert!(c
            .chars()
            .all(|ch| ch == '-' || ch.is_ascii_uppercase() || ch.is_ascii_digit()));
    }
}
