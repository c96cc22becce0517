//! The split protocol `keysmith/v1` between the server half (`Coordinator`, in `lifecycle`)
//! and the device half (`DeviceSession`, in `keysmith-device`): the message types, their
//! CTAP2-canonical CBOR form, COSE_Sign1 (ES256) envelopes and HPKE-sealed secrets.
//!
//! No IO: both halves consume `&[u8]` and produce `Vec<u8>`; whoever connects them (a CMS's
//! channel, `keysmith serve` + `keysmith agent`, or an in-memory link) carries the bytes.
//! The byte-level contract is `docs/split-protocol.md`; this crate's types mirror its tables.
//! No type of a dependency appears in this API: keys, entropy and errors are this crate's.
//!
//! A hello round trip: the agent signs its `AgentHello`, the server looks the agent's key up
//! by kid, verifies and answers; the agent verifies the answer with the pinned server key.
//!
//! ```
//! use keysmith_wire::*;
//!
//! let server_key = SigningKey::generate();
//! let agent_key = SigningKey::generate();
//! let session_key = SessionKey::generate();
//!
//! // Device half.
//! let hello = Envelope {
//!     session: None,
//!     seq: 0,
//!     job: None,
//!     ttl_ms: None,
//!     msg: AgentMessage::Hello(AgentHello {
//!         agent_id: agent_key.key_id(),
//!         agent_version: "0.1.0".into(),
//!         versions: vec![1],
//!         session_pub: session_key.public(),
//!         nonce: [7; 16],
//!         caps: Capabilities { ctap_raw: true, max_job_steps: 64, ..Default::default() },
//!         host: HostClaim { name: "desk-1".into(), os: "linux".into(), ..Default::default() },
//!     }),
//! };
//! let bytes = seal_agent(&hello, &agent_key);
//!
//! // Server half: find the enrolled key by kid, then verify and decode.
//! assert_eq!(peek_kid(&bytes)?, agent_key.key_id());
//! let opened = open_agent(&bytes, &agent_key.public_key())?;
//! let AgentMessage::Hello(h) = &opened.envelope.msg else { unreachable!() };
//! let reply = Envelope {
//!     session: Some(SessionId([1; 16])),
//!     seq: 0,
//!     job: None,
//!     ttl_ms: Some(30_000),
//!     msg: ServerMessage::Hello(ServerHello {
//!         server_nonce: [9; 16],
//!         version: 1,
//!         server_time_ms: 0,
//!         hello_digest: opened.digest,
//!         next_server_key: None,
//!     }),
//! };
//! let reply_bytes = seal_server(&reply, &server_key);
//!
//! // Device half: only the pinned server key verifies.
//! let back = open_server(&reply_bytes, &[server_key.public_key()])?;
//! assert_eq!(back.envelope, reply);
//! assert_eq!(holder_nonce(&h.session_pub, &[9; 16]).len(), 43);
//! # Ok::<(), WireError>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod channel;
pub mod codec;
pub mod cose;
pub mod error;
pub mod keys;
pub mod msg;
pub mod secret;

pub use channel::{Channel, SeqCheck, SeqWindow, TtlDeadline};
pub use codec::{decode_agent, decode_server, encode_agent, encode_server};
pub use cose::{open_agent, open_server, peek_kid, seal_agent, seal_server, Opened};
pub use error::WireError;
pub use keys::{sha256, Entropy, OsEntropy, PublicKey, SigningKey};
pub use msg::*;
pub use secret::{holder_nonce, open_secret, seal_secret, SecretContext, SessionKey};

#[cfg(test)]
mod tests;
