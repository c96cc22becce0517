//! Signed envelopes: COSE_Sign1 (RFC 9052 §4.2, tag 18), ES256 only (split-protocol.md §1).
//!
//! Opening checks, in order: the outer bytes are strict canonical CBOR; a tagged COSE_Sign1
//! with an embedded payload; an empty unprotected header; a protected header of exactly
//! `{1: -7, 4: kid, 16: typ}` for this direction (byte for byte, so no unknown label, no
//! `crit`, no other algorithm); a kid this side trusts; the signature over the received
//! bytes with the pinned key; only then is the payload decoded.

use coset::{iana, CoseSign1, CoseSign1Builder, HeaderBuilder, TaggedCborSerializable};
use fido_core::cbor::{self, Limits, Value};

use crate::codec::{decode_agent, decode_server, encode_agent, encode_server, MAX_MESSAGE};
use crate::error::WireError;
use crate::keys::{sha256, PublicKey, SigningKey};
use crate::msg::{AgentMessage, Direction, Envelope, KeyId, ServerMessage};

/// `typ` (RFC 9596) of server → device messages.
pub const TYP_SERVER: &str = "application/keysmith-server+cose";
/// `typ` (RFC 9596) of device → server messages.
pub const TYP_AGENT: &str = "application/keysmith-agent+cose";
/// `external_aad` of server → device messages.
pub const AAD_SERVER: &[u8] = b"keysmith/v1 s2a";
/// `external_aad` of device → server messages.
pub const AAD_AGENT: &[u8] = b"keysmith/v1 a2s";

/// The COSE header label of `typ` (RFC 9596).
const TYP_LABEL: i64 = 16;
/// Room for the COSE structure around a maximal payload.
const COSE_OVERHEAD: usize = 1024;

impl Direction {
    fn typ(self) -> &'static str {
        match self {
            Direction::ServerToAgent => TYP_SERVER,
            Direction::AgentToServer => TYP_AGENT,
        }
    }
    fn aad(self) -> &'static [u8] {
        match self {
            Direction::ServerToAgent => AAD_SERVER,
            Direction::AgentToServer => AAD_AGENT,
        }
    }
}

/// A verified, decoded message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Opened<M> {
    /// The decoded envelope.
    pub envelope: Envelope<M>,
    /// The key id of the key whose signature verified.
    pub signer: KeyId,
    /// SHA-256 of the message bytes as received (for `hello_digest`, `job_digest` and
    /// retransmission checks).
    pub digest: [u8; 32],
}

/// The protected header's exact bytes: `{1: -7, 4: kid, 16: typ}`, canonical.
fn protected_bytes(kid: &KeyId, dir: Direction) -> Vec<u8> {
    cbor::encode(&Value::Map(vec![
        (Value::Unsigned(1), Value::Negative(6)),
        (Value::Unsigned(4), Value::Bytes(kid.0.to_vec())),
        (Value::Unsigned(16), Value::Text(dir.typ().to_owned())),
    ]))
}

fn seal(payload: Vec<u8>, key: &SigningKey, dir: Direction) -> Vec<u8> {
    let protected = HeaderBuilder::new()
        .algorithm(iana::Algorithm::ES256)
        .key_id(key.key_id().0.to_vec())
        .value(
            TYP_LABEL,
            coset::cbor::value::Value::Text(dir.typ().to_owned()),
        )
        .build();
    let sign1 = CoseSign1Builder::new()
        .protected(protected)
        .payload(payload)
        .create_signature(dir.aad(), |tbs| key.sign_raw(tbs).to_vec())
        .build();
    // Serialising a structure we built from byte strings and integers cannot fail.
    sign1.to_tagged_vec().unwrap_or_default()
}

/// Signs a server message for the device half.
pub fn seal_server(env: &Envelope<ServerMessage>, key: &SigningKey) -> Vec<u8> {
    seal(encode_server(env), key, Direction::ServerToAgent)
}

/// Signs a device message with the agent's key.
pub fn seal_agent(env: &Envelope<AgentMessage>, key: &SigningKey) -> Vec<u8> {
    seal(encode_agent(env), key, Direction::AgentToServer)
}

/// Parses the outer structure strictly and checks the headers; returns the parsed message
/// and its kid. Nothing here is trusted until the signature verifies.
fn parse(bytes: &[u8], dir: Option<Direction>) -> Result<(CoseSign1, KeyId), WireError> {
    if bytes.len() > MAX_MESSAGE + COSE_OVERHEAD {
        return Err(WireError::TooLarge {
            field: "message",
            limit: MAX_MESSAGE + COSE_OVERHEAD,
        });
    }
    let outer = cbor::decode_with(
        bytes,
        Limits {
            max_depth: 4,
            max_input: MAX_MESSAGE + COSE_OVERHEAD,
            canonical: true,
        },
    )?;
    if !matches!(outer, Value::Tag(18, _)) {
        return Err(WireError::NotCoseSign1 {
            reason: "not tagged 18 (COSE_Sign1)",
        });
    }
    let sign1 = CoseSign1::from_tagged_slice(bytes).map_err(|_| WireError::NotCoseSign1 {
        reason: "not a COSE_Sign1 structure",
    })?;
    if !sign1.unprotected.is_empty() {
        return Err(WireError::BadHeader {
            reason: "the unprotected header is not empty",
        });
    }
    let h = &sign1.protected.header;
    if h.alg
        != Some(coset::RegisteredLabelWithPrivate::Assigned(
            iana::Algorithm::ES256,
        ))
    {
        return Err(WireError::BadHeader {
            reason: "alg is not ES256",
        });
    }
    if !h.crit.is_empty() {
        return Err(WireError::BadHeader {
            reason: "crit is not allowed",
        });
    }
    let kid: [u8; 32] = h
        .key_id
        .as_slice()
        .try_into()
        .map_err(|_| WireError::BadHeader {
            reason: "kid missing or not 32 bytes",
        })?;
    let kid = KeyId(kid);
    if let Some(dir) = dir {
        let typ_ok = h
            .rest
            .iter()
            .any(|(l, v)| *l == coset::Label::Int(TYP_LABEL) && v.as_text() == Some(dir.typ()));
        if !typ_ok {
            return Err(WireError::BadHeader {
                reason: "typ is not this direction's",
            });
        }
        let original = sign1.protected.original_data.as_deref().unwrap_or_default();
        if original != protected_bytes(&kid, dir).as_slice() {
            return Err(WireError::BadHeader {
                reason: "unknown header label or non-canonical protected header",
            });
        }
    }
    if sign1.payload.is_none() {
        return Err(WireError::NotCoseSign1 {
            reason: "detached payload",
        });
    }
    Ok((sign1, kid))
}

/// The signer's key id, read before verification so the receiver can look the key up.
/// Nothing else in the message may be trusted before [`open_agent`] / [`open_server`].
pub fn peek_kid(bytes: &[u8]) -> Result<KeyId, WireError> {
    parse(bytes, None).map(|(_, kid)| kid)
}

fn verify(
    bytes: &[u8],
    dir: Direction,
    pinned: &[PublicKey],
) -> Result<(Vec<u8>, KeyId), WireError> {
    let (sign1, kid) = parse(bytes, Some(dir))?;
    let key = pinned
        .iter()
        .find(|k| k.key_id() == kid)
        .ok_or(WireError::UnknownKey)?;
    if sign1.signature.len() != 64 {
        return Err(WireError::BadSignature);
    }
    sign1.verify_signature(dir.aad(), |sig, tbs| key.verify_raw(tbs, sig))?;
    Ok((sign1.payload.unwrap_or_default(), kid))
}

/// Verifies a server message against the pinned server keys (the current one and, during a
/// roll, the announced next one), then decodes it strictly.
pub fn open_server(bytes: &[u8], pinned: &[PublicKey]) -> Result<Opened<ServerMessage>, WireError> {
    let (payload, signer) = verify(bytes, Direction::ServerToAgent, pinned)?;
    Ok(Opened {
        envelope: decode_server(&payload)?,
        signer,
        digest: sha256(bytes),
    })
}

/// Verifies a device message against the agent's enrolled key (found with [`peek_kid`]),
/// then decodes it strictly.
pub fn open_agent(bytes: &[u8], agent_key: &PublicKey) -> Result<Opened<AgentMessage>, WireError> {
    let (payload, signer) = verify(
        bytes,
        Direction::AgentToServer,
        std::slice::from_ref(agent_key),
    )?;
    let envelope = decode_agent(&payload)?;
    if let AgentMessage::Hello(h) = &envelope.msg {
        if h.agent_id != signer {
            return Err(WireError::InvalidValue {
                field: "AgentHello.agent_id",
                reason: "not the signer's key id",
            });
        }
    }
    Ok(Opened {
        envelope,
        signer,
        digest: sha256(bytes),
    })
}

/// Test support for the COSE vectors: the Sig_structure and a bare signature check.
#[cfg(test)]
pub(crate) fn raw_tbs_and_verify(
    bytes: &[u8],
    aad: &[u8],
    key: &PublicKey,
) -> Result<Vec<u8>, WireError> {
    let sign1 = CoseSign1::from_tagged_slice(bytes).map_err(|_| WireError::NotCoseSign1 {
        reason: "not a COSE_Sign1 structure",
    })?;
    let tbs = sign1.tbs_data(aad);
    key.verify_raw(&tbs, &sign1.signature)?;
    Ok(tbs)
}
