//! The facade's one error type: a stable kind (with a numeric code the C ABI returns)
//! and a message that never carries a secret.

use lifecycle::engine::EngineError;

/// What kind of failure a [`FacadeError`] is. The numeric codes are stable (the C ABI
/// returns them as `ks_status`); see [`ErrorKind::code`].
///
/// Not `#[non_exhaustive]`, like [`lifecycle::ErrorKind`] which it mirrors 1:1: a new kind
/// is a breaking change, so that every binding classifies it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// Bad input: malformed JSON or config, unknown key/template/connection, an action
    /// the caller may not take (code 2, the CLI's usage exit code).
    Usage,
    /// The security key or its transport failed (code 3, as the CLI).
    Device,
    /// The identity provider refused or failed (code 4, as the CLI).
    Idp,
    /// The repository failed or refused (code 5, the CLI's "other" family).
    Repository,
    /// A template is invalid or asks for something unsupported (code 6; the CLI reports
    /// it as usage, 2).
    Template,
    /// The action is not allowed in the key's state (code 7; the CLI reports it as
    /// usage, 2).
    Transition,
    /// A bug or an unexpected failure, e.g. a panic caught at the boundary (code 9; the
    /// CLI's "other" family, 5).
    Internal,
}

impl ErrorKind {
    /// Every kind.
    pub const ALL: [ErrorKind; 7] = [
        ErrorKind::Usage,
        ErrorKind::Device,
        ErrorKind::Idp,
        ErrorKind::Repository,
        ErrorKind::Template,
        ErrorKind::Transition,
        ErrorKind::Internal,
    ];

    /// The stable numeric code (never 0, which means success at the C ABI).
    pub const fn code(self) -> i32 {
        match self {
            ErrorKind::Usage => 2,
            ErrorKind::Device => 3,
            ErrorKind::Idp => 4,
            ErrorKind::Repository => 5,
            ErrorKind::Template => 6,
            ErrorKind::Transition => 7,
            ErrorKind::Internal => 9,
        }
    }

    /// The `keysmith` CLI exit code of the same family (2 usage, 3 device, 4 IdP,
    /// 5 other).
    pub const fn cli_exit_code(self) -> i32 {
        match self {
            ErrorKind::Usage | ErrorKind::Template | ErrorKind::Transition => 2,
            ErrorKind::Device => 3,
            ErrorKind::Idp => 4,
            ErrorKind::Repository | ErrorKind::Internal => 5,
        }
    }

    /// The stable lower-case name (`usage`, `device`, ...).
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Usage => "usage",
            ErrorKind::Device => "device",
            ErrorKind::Idp => "idp",
            ErrorKind::Repository => "repository",
            ErrorKind::Template => "template",
            ErrorKind::Transition => "transition",
            ErrorKind::Internal => "internal",
        }
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed facade call.
///
/// Serialized (for C's `ks_last_error_json` and Python's exceptions) as
/// `{"kind", "reason", "message", "ctap_status"?, "retries_left"?}`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, serde::Serialize)]
#[error("{kind}: {message}")]
pub struct FacadeError {
    /// The kind (and so the numeric code).
    pub kind: ErrorKind,
    /// Why, as a stable snake_case word a program can branch on (`pin_invalid`,
    /// `pin_blocked`, `key_not_found`, `cancelled`, ...); the kind's name when nothing
    /// more precise is known.
    pub reason: &'static str,
    /// What went wrong; names the field or key at fault, never a secret.
    pub message: String,
    /// The CTAP status byte the security key answered, where the failure is the key's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ctap_status: Option<u8>,
    /// PIN (or UV) attempts left on the key, where the key reported them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retries_left: Option<u32>,
    /// The split protocol's stable refusal code (`BadSignature`, `SessionBroken`,
    /// `NotKeyOwner`, ... — `docs/split-protocol.md` §7) when a half of the split refused
    /// a message (reason `split_refused`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refusal_code: Option<&'static str>,
}

impl FacadeError {
    /// An error of `kind` with `message` (its reason is the kind's name).
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        FacadeError {
            kind,
            reason: kind.as_str(),
            message: message.into(),
            ctap_status: None,
            retries_left: None,
            refusal_code: None,
        }
    }

    /// The same error with a more precise `reason`.
    pub fn with_reason(mut self, reason: &'static str) -> Self {
        self.reason = reason;
        self
    }

    /// A usage error.
    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Usage, message)
    }

    /// A device error.
    pub fn device(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Device, message)
    }

    /// An internal error.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }

    /// The numeric code of the kind.
    pub fn code(&self) -> i32 {
        self.kind.code()
    }
}

impl From<lifecycle::ErrorKind> for ErrorKind {
    fn from(k: lifecycle::ErrorKind) -> Self {
        match k {
            lifecycle::ErrorKind::Usage => ErrorKind::Usage,
            lifecycle::ErrorKind::Device => ErrorKind::Device,
            lifecycle::ErrorKind::Idp => ErrorKind::Idp,
            lifecycle::ErrorKind::Repository => ErrorKind::Repository,
            lifecycle::ErrorKind::Template => ErrorKind::Template,
            lifecycle::ErrorKind::Transition => ErrorKind::Transition,
            lifecycle::ErrorKind::Internal => ErrorKind::Internal,
        }
    }
}

impl From<lifecycle::Error> for FacadeError {
    /// Kind, reason, CTAP status and retries as lifecycle classifies them (see
    /// [`lifecycle::Error`]'s reason table).
    fn from(e: lifecycle::Error) -> Self {
        FacadeError {
            kind: e.kind().into(),
            reason: e.reason(),
            ctap_status: e.ctap_status(),
            retries_left: e.retries_left(),
            message: e.to_string(),
            refusal_code: None,
        }
    }
}

impl From<EngineError> for FacadeError {
    fn from(e: EngineError) -> Self {
        lifecycle::Error::from(e).into()
    }
}

impl From<lifecycle::DeviceError> for FacadeError {
    /// A device error of the facade's own device operations (open, getInfo), classified
    /// as lifecycle classifies the engine's.
    fn from(e: lifecycle::DeviceError) -> Self {
        FacadeError {
            kind: ErrorKind::Device,
            reason: e.reason(),
            ctap_status: e.ctap_status(),
            retries_left: e.retries_left(),
            message: format!("security key: {e}"),
            refusal_code: None,
        }
    }
}

impl From<fido_transport::Error> for FacadeError {
    fn from(e: fido_transport::Error) -> Self {
        lifecycle::DeviceError::from(e).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lifecycle::engine::LookupError;

    #[test]
    fn codes_are_distinct_nonzero_and_in_cli_families() {
        let mut seen = std::collections::BTreeSet::new();
        for k in ErrorKind::ALL {
            assert_ne!(k.code(), 0);
            assert!(seen.insert(k.code()), "duplicate code {}", k.code());
            assert!((2..=5).contains(&k.cli_exit_code()));
        }
        assert_eq!(ErrorKind::Usage.code(), 2);
        assert_eq!(ErrorKind::Device.code(), 3);
        assert_eq!(ErrorKind::Idp.code(), 4);
        assert_eq!(ErrorKind::Repository.code(), 5);
    }

    #[test]
    fn engine_errors_map_to_kinds() {
        let e: FacadeError =
            EngineError::Lookup(LookupError::UnknownKey { key_id: "k".into() }).into();
        assert_eq!(e.kind, ErrorKind::Usage);
        assert_eq!(e.reason, "key_not_found");
        assert!(e.message.contains("\"k\""));
        let e: FacadeError = EngineError::Device {
            step: "getInfo",
            cause: fido_transport::Error::DeviceNotFound("gone".into()).into(),
        }
        .into();
        assert_eq!(e.kind, ErrorKind::Device);
        assert_eq!(e.reason, "device_not_found");
        assert_eq!(
            e.message,
            "security key: getInfo failed: no authenticator found: gone"
        );
        let e: FacadeError = fido_transport::Error::ReattachRequired.into();
        assert_eq!(e.kind, ErrorKind::Device);
        assert_eq!((e.reason, e.ctap_status), ("reattach_required", Some(0x30)));
        let e: FacadeError =
            lifecycle::Error::from(lifecycle::state::TransitionError::NeedsReissue).into();
        assert_eq!((e.kind, e.reason), (ErrorKind::Transition, "needs_reissue"));
    }

    #[test]
    fn a_wrong_pin_serializes_with_its_retries() {
        let e: FacadeError = EngineError::Device {
            step: "getPinUvAuthToken",
            cause: fido_transport::Error::PinInvalid {
                retries_left: 6,
                power_cycle_required: false,
            }
            .into(),
        }
        .into();
        assert_eq!((e.kind, e.reason), (ErrorKind::Device, "pin_invalid"));
        assert_eq!((e.ctap_status, e.retries_left), (Some(0x31), Some(6)));
        let json = serde_json::to_value(&e).expect("serializable");
        assert_eq!(json["kind"], "device");
        assert_eq!(json["reason"], "pin_invalid");
        assert_eq!(json["ctap_status"], 0x31);
        assert_eq!(json["retries_left"], 6);
        let plain = serde_json::to_value(FacadeError::usage("bad")).expect("serializable");
        assert_eq!(
            plain,
            serde_json::json!({"kind": "usage", "reason": "usage", "message": "bad"})
        );
    }
}
