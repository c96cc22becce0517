//! [`WireError`]: every way a message, an envelope, a key or a sealed secret can be refused.
//!
//! Messages name the field or the rule, never a value: a relayed message may carry an ID
//! token or a PIN-bearing ciphertext, and errors end up in logs.

use crate::msg::RefusalCode;

/// Why bytes or keys were refused. Each variant names what was wrong, never the value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// The bytes are not strict CBOR (indefinite length, duplicate map key, not canonical,
    /// nested too deep, trailing bytes, truncated, ...).
    #[error("malformed CBOR: {0}")]
    Cbor(fido_core::cbor::CborError),
    /// A message, a list or a string is larger than `docs/split-protocol.md` §1 allows.
    #[error("{field}: larger than the limit of {limit}")]
    TooLarge {
        /// The field (or `message`).
        field: &'static str,
        /// The limit (bytes, or items for a list).
        limit: usize,
    },
    /// A required field is absent.
    #[error("{field}: required field is missing")]
    MissingField {
        /// The field.
        field: &'static str,
    },
    /// A field has the wrong CBOR type or size.
    #[error("{field}: expected {expected}")]
    WrongType {
        /// The field.
        field: &'static str,
        /// What it must be.
        expected: &'static str,
    },
    /// A field has the right type but a value that is not allowed.
    #[error("{field}: {reason}")]
    InvalidValue {
        /// The field.
        field: &'static str,
        /// The rule the value broke.
        reason: &'static str,
    },
    /// A key the protocol does not define, where unknown keys are refused (the envelope, a
    /// `Job`, `expect`, a step, a `PinSource`, and every other non-informational map).
    #[error("{field}: unknown key {key}")]
    UnknownField {
        /// The map holding the key.
        field: &'static str,
        /// The key (an integer key; a non-integer key is reported as -1_000_000).
        key: i64,
    },
    /// A device step type this device half does not know: the whole job is refused.
    #[error("unknown step type {step_type}")]
    UnknownStep {
        /// The type number (key 0 of the step).
        step_type: u64,
    },
    /// A message kind this side does not know.
    #[error("unknown message kind {kind}")]
    UnknownKind {
        /// The kind number (key 1 of the envelope).
        kind: u64,
    },
    /// A message kind of the other direction (e.g. a server kind in a device message).
    #[error("message kind {kind} does not travel in this direction")]
    WrongDirection {
        /// The kind number.
        kind: u64,
    },
    /// The bytes are not a tagged COSE_Sign1 (tag 18) with a payload.
    #[error("not a COSE_Sign1 message: {reason}")]
    NotCoseSign1 {
        /// What is wrong with the structure.
        reason: &'static str,
    },
    /// A COSE header breaks the profile (alg other than ES256, unknown or `crit` label,
    /// non-empty unprotected header, missing kid, wrong `typ` for the direction).
    #[error("COSE header refused: {reason}")]
    BadHeader {
        /// The rule the header broke.
        reason: &'static str,
    },
    /// The signer's key id is not pinned (server) or not the expected agent key.
    #[error("the signer's key is not one this side trusts")]
    UnknownKey,
    /// The signature does not verify over the received bytes.
    #[error("the signature does not verify")]
    BadSignature,
    /// A key could not be read (not P-256, not SEC1 uncompressed, bad PKCS#8 or SPKI).
    #[error("invalid key: {reason}")]
    InvalidKey {
        /// What is wrong.
        reason: &'static str,
    },
    /// Sealing a secret failed (the session public key is not a valid P-256 point).
    #[error("sealing the secret failed")]
    SealFailed,
    /// Opening a sealed secret failed (wrong session key, wrong context, or altered
    /// `enc`/`ct`).
    #[error("the sealed secret does not open")]
    OpenFailed,
    /// A message of another session.
    #[error("the message belongs to another session")]
    SessionMismatch,
    /// A sequence gap, a reorder, or a repeat with other bytes: the session is closed.
    #[error("sequence broken: expected seq {expected}, got {got}")]
    SessionBroken {
        /// The seq this side expected.
        expected: u64,
        /// The seq the message carried.
        got: u64,
    },
    /// A server message whose ttl ran out before the device acted on it.
    #[error("the message's ttl ran out")]
    TtlExpired,
}

impl WireError {
    /// The refusal code (split-protocol.md §7) a receiver answers this error with.
    pub fn refusal_code(&self) -> RefusalCode {
        match self {
            WireError::UnknownStep { .. } => RefusalCode::UnknownStep,
            WireError::UnknownField { .. } => RefusalCode::UnknownField,
            WireError::UnknownKey => RefusalCode::UnknownKey,
            WireError::NotCoseSign1 { .. }
            | WireError::BadHeader { .. }
            | WireError::BadSignature => RefusalCode::BadSignature,
            WireError::SessionMismatch => RefusalCode::SessionUnknown,
            WireError::SessionBroken { .. } => RefusalCode::SessionBroken,
            WireError::TtlExpired => RefusalCode::TtlExpired,
            WireError::InvalidKey { .. } | WireError::SealFailed => RefusalCode::Internal,
            // Everything else is a malformed message: the sender speaks something this side
            // does not understand.
            _ => RefusalCode::UnknownField,
        }
    }
}

impl From<fido_core::cbor::CborError> for WireError {
    fn from(e: fido_core::cbor::CborError) -> Self {
        use fido_core::cbor::CborError as C;
        match e {
            C::WrongType {
                field, expected, ..
            } => WireError::WrongType { field, expected },
            C::MissingField { field } => WireError::MissingField { field },
            C::InvalidValue { field, .. } => WireError::InvalidValue {
                field,
                reason: "value out of range",
            },
            C::InputTooLarge { limit, .. } => WireError::TooLarge {
                field: "message",
                limit,
            },
            other => WireError::Cbor(other),
        }
    }
}
