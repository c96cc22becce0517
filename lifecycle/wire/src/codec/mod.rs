//! The payload codec: [`Envelope`]s to and from CTAP2-canonical CBOR (split-protocol.md §1).
//!
//! Encoding uses `fido-core::cbor`'s canonical writer. Decoding is strict: the input must be
//! canonical CBOR within the §1 size limits (no indefinite lengths, no duplicate keys, no
//! trailing bytes, depth ≤ 16); every required key must be present with its type; an
//! unknown key is refused everywhere except in the informational maps `AgentHello.host`,
//! `Progress` and `Abort`; an unknown step type refuses the whole message.

mod agent;
mod server;
mod step;

use fido_core::cbor::{self, Limits, Value};

use crate::error::WireError;
use crate::msg::{AgentMessage, Envelope, JobId, ServerMessage, SessionId};

/// The largest message (COSE bytes or payload) accepted: 1 MiB.
pub const MAX_MESSAGE: usize = 1 << 20;
/// The most steps in one job.
pub const MAX_STEPS: usize = 64;
/// The most sealed secrets in one job.
pub const MAX_SECRETS: usize = 8;
/// The most credential ids in an `exclude`, `allow` or `expect.credential_ids` list.
pub const MAX_IDS: usize = 256;
/// The most items in any other list.
pub(crate) const MAX_LIST: usize = 64;
/// The longest text string, except `id_token`.
pub const MAX_TEXT: usize = 4 * 1024;
/// The longest `id_token`.
pub const MAX_ID_TOKEN: usize = 16 * 1024;
/// The longest byte string, except attestation objects and raw getInfo responses.
pub const MAX_BYTES: usize = 4 * 1024;
/// The longest attestation object or raw getInfo response.
pub const MAX_LARGE_BYTES: usize = 64 * 1024;

/// Reader limits for payloads: canonical form enforced, depth 16, 1 MiB.
pub(crate) const LIMITS: Limits = Limits {
    max_depth: 16,
    max_input: MAX_MESSAGE,
    canonical: true,
};

/// Encodes a device message's envelope payload (the bytes a COSE_Sign1 carries).
pub fn encode_agent(env: &Envelope<AgentMessage>) -> Vec<u8> {
    let (kind, body) = agent::body(&env.msg);
    cbor::encode(&envelope_value(kind, env, body))
}

/// Encodes a server message's envelope payload (the bytes a COSE_Sign1 carries).
pub fn encode_server(env: &Envelope<ServerMessage>) -> Vec<u8> {
    let (kind, body) = server::body(&env.msg);
    cbor::encode(&envelope_value(kind, env, body))
}

/// Decodes a device message's envelope payload, strictly (module docs).
pub fn decode_agent(payload: &[u8]) -> Result<Envelope<AgentMessage>, WireError> {
    let (head, body) = decode_envelope(payload, false)?;
    let msg = agent::from_body(head.kind, body)?;
    head.finish(msg)
}

/// Decodes a server message's envelope payload, strictly (module docs).
pub fn decode_server(payload: &[u8]) -> Result<Envelope<ServerMessage>, WireError> {
    let (head, body) = decode_envelope(payload, true)?;
    let msg = server::from_body(head.kind, body)?;
    head.finish(msg)
}

fn envelope_value<M>(kind: u64, env: &Envelope<M>, body: Value) -> Value {
    MapB::new()
        .put(1, kind)
        .opt(2, env.session.map(|s| s.0.to_vec()))
        .put(3, env.seq)
        .opt(4, env.job.map(|j| j.0.to_vec()))
        .opt(5, env.ttl_ms)
        .put(6, body)
        .build()
}

/// The envelope fields other than the message.
struct Head {
    kind: u64,
    session: Option<SessionId>,
    seq: u64,
    job: Option<JobId>,
    ttl_ms: Option<u64>,
}

impl Head {
    fn finish<M>(self, msg: M) -> Result<Envelope<M>, WireError> {
        Ok(Envelope {
            session: self.session,
            seq: self.seq,
            job: self.job,
            ttl_ms: self.ttl_ms,
            msg,
        })
    }
}

/// Kinds whose envelope must carry a job id.
fn needs_job(kind: u64) -> bool {
    matches!(kind, 5 | 6 | 34 | 35)
}

fn decode_envelope(payload: &[u8], server: bool) -> Result<(Head, Value), WireError> {
    if payload.len() > MAX_MESSAGE {
        return Err(WireError::TooLarge {
            field: "message",
            limit: MAX_MESSAGE,
        });
    }
    let value = cbor::decode_with(payload, LIMITS)?;
    let Value::Map(entries) = value else {
        return Err(WireError::WrongType {
            field: "envelope",
            expected: "map",
        });
    };
    let mut body = None;
    let mut rest = Vec::with_capacity(entries.len());
    for (k, v) in entries {
        if matches!(k, Value::Unsigned(6)) {
            body = Some(v);
        } else {
            rest.push((k, v));
        }
    }
    let env = Obj::strict_entries(&rest, "envelope", &[1, 2, 3, 4, 5])?;
    let kind = uint(env.req(1, "envelope.kind")?, "envelope.kind")?;
    let known_agent = (1..=9).contains(&kind);
    let known_server = (32..=39).contains(&kind);
    match (server, known_agent, known_server) {
        (true, _, true) | (false, true, _) => {}
        (true, true, _) | (false, _, true) => return Err(WireError::WrongDirection { kind }),
        _ => return Err(WireError::UnknownKind { kind }),
    }
    let session = env
        .get(2)
        .map(|v| bytes_n::<16>(v, "envelope.session"))
        .transpose()?
        .map(SessionId);
    let is_hello = kind == 1;
    match (is_hello, session.is_some()) {
        (true, true) => {
            return Err(WireError::InvalidValue {
                field: "envelope.session",
                reason: "AgentHello carries no session",
            })
        }
        (false, false) => {
            return Err(WireError::MissingField {
                field: "envelope.session",
            })
        }
        _ => {}
    }
    let seq = uint(env.req(3, "envelope.seq")?, "envelope.seq")?;
    let job = env
        .get(4)
        .map(|v| bytes_n::<16>(v, "envelope.job"))
        .transpose()?
        .map(JobId);
    if job.is_none() && needs_job(kind) {
        return Err(WireError::MissingField {
            field: "envelope.job",
        });
    }
    let ttl_ms = env.get(5).map(|v| uint(v, "envelope.ttl_ms")).transpose()?;
    if ttl_ms.is_some() && !server {
        return Err(WireError::InvalidValue {
            field: "envelope.ttl_ms",
            reason: "device messages carry no ttl",
        });
    }
    let body = body.ok_or(WireError::MissingField {
        field: "envelope.body",
    })?;
    Ok((
        Head {
            kind,
            session,
            seq,
            job,
            ttl_ms,
        },
        body,
    ))
}

// ---- encoding helpers ----

/// A map under construction (the encoder sorts keys canonically).
pub(crate) struct MapB(Vec<(Value, Value)>);

impl MapB {
    pub(crate) fn new() -> Self {
        MapB(Vec::new())
    }
    pub(crate) fn put(mut self, key: u64, v: impl Into<Value>) -> Self {
        self.0.push((Value::Unsigned(key), v.into()));
        self
    }
    pub(crate) fn opt<T: Into<Value>>(self, key: u64, v: Option<T>) -> Self {
        match v {
            Some(v) => self.put(key, v),
            None => self,
        }
    }
    pub(crate) fn build(self) -> Value {
        Value::Map(self.0)
    }
}

pub(crate) fn bytes_list(items: &[Vec<u8>]) -> Value {
    Value::Array(items.iter().map(|b| Value::Bytes(b.clone())).collect())
}

pub(crate) fn text_list(items: &[String]) -> Value {
    Value::Array(items.iter().map(|s| Value::Text(s.clone())).collect())
}

// ---- decoding helpers ----

/// A decoded map whose keys were checked against the allowed set.
pub(crate) struct Obj<'a> {
    entries: &'a [(Value, Value)],
}

fn key_of(k: &Value) -> Option<i64> {
    match k {
        Value::Unsigned(n) => i64::try_from(*n).ok(),
        Value::Negative(n) => i64::try_from(*n).ok().map(|n| -1 - n),
        _ => None,
    }
}

impl<'a> Obj<'a> {
    /// A map whose every key must be one of `allowed` (else `UnknownField`).
    pub(crate) fn strict(
        v: &'a Value,
        field: &'static str,
        allowed: &[i64],
    ) -> Result<Self, WireError> {
        match v {
            Value::Map(entries) => Self::strict_entries(entries, field, allowed),
            _ => Err(WireError::WrongType {
                field,
                expected: "map",
            }),
        }
    }

    fn strict_entries(
        entries: &'a [(Value, Value)],
        field: &'static str,
        allowed: &[i64],
    ) -> Result<Self, WireError> {
        for (k, _) in entries {
            match key_of(k) {
                Some(n) if allowed.contains(&n) => {}
                Some(n) => return Err(WireError::UnknownField { field, key: n }),
                None => {
                    return Err(WireError::UnknownField {
                        field,
                        key: -1_000_000,
                    })
                }
            }
        }
        Ok(Obj { entries })
    }

    /// A map whose unknown keys are ignored (informational bodies only).
    pub(crate) fn lenient(v: &'a Value, field: &'static str) -> Result<Self, WireError> {
        match v {
            Value::Map(entries) => Ok(Obj { entries }),
            _ => Err(WireError::WrongType {
                field,
                expected: "map",
            }),
        }
    }

    pub(crate) fn get(&self, key: i64) -> Option<&'a Value> {
        self.entries
            .iter()
            .find(|(k, _)| key_of(k) == Some(key))
            .map(|(_, v)| v)
    }

    pub(crate) fn req(&self, key: i64, field: &'static str) -> Result<&'a Value, WireError> {
        self.get(key).ok_or(WireError::MissingField { field })
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

pub(crate) fn uint(v: &Value, field: &'static str) -> Result<u64, WireError> {
    match v {
        Value::Unsigned(n) => Ok(*n),
        _ => Err(WireError::WrongType {
            field,
            expected: "unsigned integer",
        }),
    }
}

pub(crate) fn u32_of(v: &Value, field: &'static str) -> Result<u32, WireError> {
    u32::try_from(uint(v, field)?).map_err(|_| WireError::InvalidValue {
        field,
        reason: "does not fit 32 bits",
    })
}

pub(crate) fn u8_of(v: &Value, field: &'static str) -> Result<u8, WireError> {
    u8::try_from(uint(v, field)?).map_err(|_| WireError::InvalidValue {
        field,
        reason: "does not fit 8 bits",
    })
}

pub(crate) fn int(v: &Value, field: &'static str) -> Result<i64, WireError> {
    key_of(v).ok_or(WireError::WrongType {
        field,
        expected: "integer in the 64-bit signed range",
    })
}

pub(crate) fn boolean(v: &Value, field: &'static str) -> Result<bool, WireError> {
    match v {
        Value::Bool(b) => Ok(*b),
        _ => Err(WireError::WrongType {
            field,
            expected: "boolean",
        }),
    }
}

pub(crate) fn text_max(v: &Value, field: &'static str, max: usize) -> Result<String, WireError> {
    match v {
        Value::Text(s) if s.len() <= max => Ok(s.clone()),
        Value::Text(_) => Err(WireError::TooLarge { field, limit: max }),
        _ => Err(WireError::WrongType {
            field,
            expected: "text string",
        }),
    }
}

pub(crate) fn text(v: &Value, field: &'static str) -> Result<String, WireError> {
    text_max(v, field, MAX_TEXT)
}

pub(crate) fn bytes_max(v: &Value, field: &'static str, max: usize) -> Result<Vec<u8>, WireError> {
    match v {
        Value::Bytes(b) if b.len() <= max => Ok(b.clone()),
        Value::Bytes(_) => Err(WireError::TooLarge { field, limit: max }),
        _ => Err(WireError::WrongType {
            field,
            expected: "byte string",
        }),
    }
}

pub(crate) fn bytes(v: &Value, field: &'static str) -> Result<Vec<u8>, WireError> {
    bytes_max(v, field, MAX_BYTES)
}

pub(crate) fn bytes_n<const N: usize>(
    v: &Value,
    field: &'static str,
) -> Result<[u8; N], WireError> {
    match v {
        Value::Bytes(b) => b.as_slice().try_into().map_err(|_| WireError::WrongType {
            field,
            expected: "byte string of the fixed length",
        }),
        _ => Err(WireError::WrongType {
            field,
            expected: "byte string",
        }),
    }
}

pub(crate) fn list<'a>(
    v: &'a Value,
    field: &'static str,
    max: usize,
) -> Result<&'a [Value], WireError> {
    match v {
        Value::Array(a) if a.len() <= max => Ok(a),
        Value::Array(_) => Err(WireError::TooLarge { field, limit: max }),
        _ => Err(WireError::WrongType {
            field,
            expected: "array",
        }),
    }
}

pub(crate) fn bytes_list_of(
    v: &Value,
    field: &'static str,
    max: usize,
) -> Result<Vec<Vec<u8>>, WireError> {
    list(v, field, max)?
        .iter()
        .map(|b| bytes(b, field))
        .collect()
}

pub(crate) fn text_list_of(v: &Value, field: &'static str) -> Result<Vec<String>, WireError> {
    list(v, field, MAX_LIST)?
        .iter()
        .map(|s| text(s, field))
        .collect()
}

/// `true`, the only value of the marker keys (`PinSource` 3 and 4).
pub(crate) fn true_only(v: &Value, field: &'static str) -> Result<(), WireError> {
    match v {
        Value::Bool(true) => Ok(()),
        _ => Err(WireError::InvalidValue {
            field,
            reason: "must be true",
        }),
    }
}
