//! The device half's typed error: which CTAP operation failed and why, kept losslessly
//! across the wire (an outcome's `ctap`, `retries` and `error` map).

use std::time::Duration;

use fido_core::CtapStatus;
use keysmith_wire::{DeviceFailure, Outcome, OutcomeStatus};

/// Why a device operation failed. The same information as the transport's error, in a
/// form that crosses the wire: [`DeviceFault::to_failure`] and [`OpError::from_outcome`]
/// are inverse to each other.
///
/// Its message ([`std::fmt::Display`]) is the transport's: a variant without a message
/// of its own is shown by the [`fido_transport::Error`] it came from, so each text is
/// written once. The server half shows the same words: lifecycle's `DeviceError` carries
/// the fault.
///
/// Exhaustive on purpose: the server half gives every fault its own reason (lifecycle's
/// `DeviceError::reason`), so a new fault must be given one there before it builds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeviceFault {
    /// A wrong PIN (CTAP 0x31), with the retry counter read afterwards.
    PinInvalid {
        /// Attempts left before the PIN blocks.
        retries_left: u32,
        /// Three wrong PINs in a row: the key needs a power cycle before the next try.
        power_cycle_required: bool,
    },
    /// Built-in user verification failed (CTAP 0x3E), with the retries left when the key
    /// told them.
    UvInvalid {
        /// Attempts left before built-in UV blocks, if the key said.
        retries_left: Option<u32>,
    },
    /// Another non-success CTAP status, kept as the key sent it.
    Ctap(CtapStatus),
    /// The key refused a reset (CTAP 0x30) because it was not powered up within its reset
    /// window (5 to 10 seconds), and the transport cannot power-cycle it: the key must be
    /// reattached.
    ReattachRequired,
    /// A reset refused with PIN_AUTH_BLOCKED (CTAP 0x34, some YubiKeys): the key takes a
    /// reset again only after it is removed and reattached.
    ResetBlocked,
    /// A reset declined at the key over USB (CTAP 0x27 OPERATION_DENIED); nothing erased.
    ResetDenied,
    /// The key does not allow a reset over this transport (getInfo `transportsForReset`,
    /// or OPERATION_DENIED over NFC); nothing erased. The message names the transports.
    ResetRefused {
        /// The transport's message (which transport, which ones the key allows).
        message: String,
    },
    /// After a replug, another key was attached than the one removed; nothing erased.
    DifferentKey {
        /// What differs (AAGUID, serial, getInfo), in the transport's words.
        message: String,
    },
    /// The OS lets only elevated processes open the key directly (Windows): run the
    /// keysmith agent service or elevate.
    NeedsElevation {
        /// The transport's message (device, what the OS said, what to do).
        message: String,
    },
    /// The platform WebAuthn API (Windows webauthn.dll) failed.
    Platform {
        /// The API's error name and HRESULT.
        message: String,
    },
    /// The wait for the user was cancelled (by the caller or the holder's UI).
    Cancelled,
    /// The key did not answer in time.
    Timeout(Duration),
    /// No key was found, it is gone (unplugged, card removed), or no device could be
    /// opened for the operation.
    NotFound {
        /// What was looked for, or why it could not be opened.
        message: String,
    },
    /// The attached key is not the recorded key's model (the AAGUID the job expects).
    WrongKey,
    /// The PIN breaks CTAP's rules before it is sent (too short, too long, NUL).
    PinFormat {
        /// Which rule.
        message: String,
    },
    /// The key, its reader or this device half cannot do what is asked.
    Unsupported {
        /// What is not supported.
        message: String,
    },
    /// An argument was refused (by the transport, or a PIN source the job cannot resolve).
    InvalidArgument {
        /// Which and why.
        message: String,
    },
    /// The USB HID, PC/SC, socket or state file layer failed.
    Io {
        /// What failed, with the device or reader.
        message: String,
    },
    /// The key's answer is malformed (CBOR, COSE, attestation, framing, PIN protocol).
    Protocol {
        /// What is malformed.
        message: String,
    },
    /// A failure this version does not classify further.
    Other {
        /// The message.
        message: String,
    },
}

impl std::fmt::Display for DeviceFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use fido_transport::Error as T;
        match self {
            DeviceFault::PinInvalid {
                retries_left,
                power_cycle_required,
            } => T::PinInvalid {
                retries_left: *retries_left,
                power_cycle_required: *power_cycle_required,
            }
            .fmt(f),
            DeviceFault::UvInvalid { retries_left } => T::UvInvalid {
                retries_left: *retries_left,
            }
            .fmt(f),
            DeviceFault::Ctap(s) => T::Ctap(*s).fmt(f),
            DeviceFault::ReattachRequired => T::ReattachRequired.fmt(f),
            DeviceFault::ResetBlocked => T::ResetBlocked.fmt(f),
            DeviceFault::ResetDenied => T::ResetDenied.fmt(f),
            DeviceFault::Cancelled => T::Cancelled.fmt(f),
            DeviceFault::Timeout(d) => T::Timeout(*d).fmt(f),
            DeviceFault::WrongKey => {
                f.write_str("the attached key is not the recorded key's model")
            }
            DeviceFault::ResetRefused { message }
            | DeviceFault::DifferentKey { message }
            | DeviceFault::NeedsElevation { message }
            | DeviceFault::Platform { message }
            | DeviceFault::NotFound { message }
            | DeviceFault::PinFormat { message }
            | DeviceFault::Unsupported { message }
            | DeviceFault::InvalidArgument { message }
            | DeviceFault::Io { message }
            | DeviceFault::Protocol { message }
            | DeviceFault::Other { message } => f.write_str(message),
        }
    }
}

impl std::error::Error for DeviceFault {}

/// A failed device operation: the CTAP operation (`getPinUvAuthToken`, `makeCredential`,
/// ...) and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{op} failed: {fault}")]
pub struct OpError {
    /// The CTAP operation, one of [`KNOWN_OPS`] (`device` when not known).
    pub op: &'static str,
    /// Why.
    pub fault: DeviceFault,
}

/// The operation names an [`OpError`] carries; an outcome naming another is read back as
/// `device`.
pub const KNOWN_OPS: &[&str] = &[
    "getInfo",
    "reset",
    "setPIN",
    "changePIN",
    "getPinUvAuthToken",
    "setMinPINLength",
    "toggleAlwaysUv",
    "makeCredential",
    "getAssertion",
    "bioEnrollment.enumerateEnrollments",
    "bioEnrollment.enroll",
    "credentialManagement.deleteCredential",
    "getPINRetries",
    "holderUi",
    "job",
    "device",
];

impl OpError {
    /// `fault` in `op`.
    pub fn new(op: &'static str, fault: DeviceFault) -> Self {
        OpError { op, fault }
    }

    /// Wraps a transport error of `op`.
    pub fn transport(op: &'static str) -> impl Fn(fido_transport::Error) -> OpError {
        move |e| OpError {
            op,
            fault: e.into(),
        }
    }

    /// The failed outcome of step `step` that carries this error: status, CTAP byte,
    /// retries and the `error` map (`message` = `"<op>: <detail>"`).
    pub fn to_outcome(&self, step: u32) -> Outcome {
        let f = &self.fault;
        let status = match f {
            DeviceFault::PinInvalid { .. }
            | DeviceFault::UvInvalid { .. }
            | DeviceFault::Ctap(_)
            | DeviceFault::ReattachRequired
            | DeviceFault::ResetBlocked
            | DeviceFault::ResetDenied
            | DeviceFault::ResetRefused { .. } => OutcomeStatus::Ctap,
            DeviceFault::Cancelled => OutcomeStatus::Cancelled,
            DeviceFault::Unsupported { .. } => OutcomeStatus::Unsupported,
            _ => OutcomeStatus::DeviceError,
        };
        Outcome {
            step,
            status,
            ctap: f.ctap_status(),
            retries: f.retries_left(),
            out: None,
            error: Some(f.to_failure(self.op)),
        }
    }

    /// Reads the error back from a failed outcome (the inverse of
    /// [`OpError::to_outcome`]). `None` for an ok or skipped outcome.
    pub fn from_outcome(o: &Outcome) -> Option<OpError> {
        if matches!(o.status, OutcomeStatus::Ok | OutcomeStatus::Skipped) {
            return None;
        }
        let Some(f) = &o.error else {
            // A failure without its error map: what the status says.
            let fault = match (o.status, o.ctap) {
                (OutcomeStatus::Cancelled, _) => DeviceFault::Cancelled,
                (_, Some(b)) => DeviceFault::Ctap(CtapStatus::from_u8(b)),
                (OutcomeStatus::Unsupported, None) => DeviceFault::Unsupported {
                    message: "the device half cannot run this step".into(),
                },
                _ => DeviceFault::Other {
                    message: "the device half reported a failure without details".into(),
                },
            };
            return Some(OpError::new("device", fault));
        };
        let (op, detail) = match f.message.split_once(": ") {
            Some((op, rest)) => match KNOWN_OPS.iter().find(|k| **k == op) {
                Some(k) => (*k, rest.to_owned()),
                None => ("device", f.message.clone()),
            },
            None => ("device", f.message.clone()),
        };
        let message = detail;
        let fault = match f.reason.as_str() {
            "pin_invalid" => DeviceFault::PinInvalid {
                retries_left: o.retries.unwrap_or(0),
                power_cycle_required: f.power_cycle_required.unwrap_or(false),
            },
            "uv_invalid" => DeviceFault::UvInvalid {
                retries_left: o.retries,
            },
            "ctap" => match o.ctap {
                Some(b) => DeviceFault::Ctap(CtapStatus::from_u8(b)),
                None => DeviceFault::Protocol {
                    message: format!("a CTAP failure without its status byte: {message}"),
                },
            },
            "reattach_required" => DeviceFault::ReattachRequired,
            "reset_blocked" => DeviceFault::ResetBlocked,
            "reset_denied" => DeviceFault::ResetDenied,
            "reset_refused" => DeviceFault::ResetRefused { message },
            "different_key" => DeviceFault::DifferentKey { message },
            "needs_elevation" => DeviceFault::NeedsElevation { message },
            "platform" => DeviceFault::Platform { message },
            "cancelled" => DeviceFault::Cancelled,
            "timeout" => DeviceFault::Timeout(Duration::from_millis(f.timeout_ms.unwrap_or(0))),
            "not_found" => DeviceFault::NotFound { message },
            "wrong_key" => DeviceFault::WrongKey,
            "pin_format" => DeviceFault::PinFormat { message },
            "unsupported" => DeviceFault::Unsupported { message },
            "invalid_argument" => DeviceFault::InvalidArgument { message },
            "io" => DeviceFault::Io { message },
            "protocol" => DeviceFault::Protocol { message },
            _ => DeviceFault::Other { message },
        };
        Some(OpError { op, fault })
    }
}

impl DeviceFault {
    /// The stable reason on the wire (key 1 of an outcome's `error`).
    pub fn reason(&self) -> &'static str {
        match self {
            DeviceFault::PinInvalid { .. } => "pin_invalid",
            DeviceFault::UvInvalid { .. } => "uv_invalid",
            DeviceFault::Ctap(_) => "ctap",
            DeviceFault::ReattachRequired => "reattach_required",
            DeviceFault::ResetBlocked => "reset_blocked",
            DeviceFault::ResetDenied => "reset_denied",
            DeviceFault::ResetRefused { .. } => "reset_refused",
            DeviceFault::DifferentKey { .. } => "different_key",
            DeviceFault::NeedsElevation { .. } => "needs_elevation",
            DeviceFault::Platform { .. } => "platform",
            DeviceFault::Cancelled => "cancelled",
            DeviceFault::Timeout(_) => "timeout",
            DeviceFault::NotFound { .. } => "not_found",
            DeviceFault::WrongKey => "wrong_key",
            DeviceFault::PinFormat { .. } => "pin_format",
            DeviceFault::Unsupported { .. } => "unsupported",
            DeviceFault::InvalidArgument { .. } => "invalid_argument",
            DeviceFault::Io { .. } => "io",
            DeviceFault::Protocol { .. } => "protocol",
            DeviceFault::Other { .. } => "other",
        }
    }

    /// The CTAP status byte the key answered, if it answered one.
    pub fn ctap_status(&self) -> Option<u8> {
        match self {
            DeviceFault::PinInvalid { .. } => Some(CtapStatus::PinInvalid.to_u8()),
            DeviceFault::UvInvalid { .. } => Some(CtapStatus::UvInvalid.to_u8()),
            DeviceFault::Ctap(s) => Some(s.to_u8()),
            DeviceFault::ReattachRequired => Some(CtapStatus::NotAllowed.to_u8()),
            DeviceFault::ResetBlocked => Some(CtapStatus::PinAuthBlocked.to_u8()),
            DeviceFault::ResetDenied | DeviceFault::ResetRefused { .. } => {
                Some(CtapStatus::OperationDenied.to_u8())
            }
            _ => None,
        }
    }

    /// PIN (or built-in UV) attempts left, where the key said.
    pub fn retries_left(&self) -> Option<u32> {
        match self {
            DeviceFault::PinInvalid { retries_left, .. } => Some(*retries_left),
            DeviceFault::UvInvalid { retries_left } => *retries_left,
            _ => None,
        }
    }

    /// The `error` map of an outcome for this fault in operation `op`.
    pub fn to_failure(&self, op: &str) -> DeviceFailure {
        DeviceFailure {
            reason: self.reason().to_owned(),
            // A variant with a message of its own shows just that message.
            message: format!("{op}: {self}"),
            power_cycle_required: match self {
                DeviceFault::PinInvalid {
                    power_cycle_required,
                    ..
                } => Some(*power_cycle_required),
                _ => None,
            },
            timeout_ms: match self {
                DeviceFault::Timeout(d) => Some(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
                _ => None,
            },
        }
    }
}

impl From<fido_transport::Error> for DeviceFault {
    fn from(e: fido_transport::Error) -> Self {
        use fido_core::pin::PinError;
        use fido_transport::Error as T;
        match e {
            T::PinInvalid {
                retries_left,
                power_cycle_required,
            } => DeviceFault::PinInvalid {
                retries_left,
                power_cycle_required,
            },
            T::UvInvalid { retries_left } => DeviceFault::UvInvalid { retries_left },
            T::Ctap(s) | T::Core(fido_core::Error::Ctap(s)) => DeviceFault::Ctap(s),
            T::ReattachRequired => DeviceFault::ReattachRequired,
            T::ResetBlocked => DeviceFault::ResetBlocked,
            T::ResetDenied => DeviceFault::ResetDenied,
            e @ T::ResetRefused { .. } => DeviceFault::ResetRefused {
                message: e.to_string(),
            },
            e @ T::DifferentKey(_) => DeviceFault::DifferentKey {
                message: e.to_string(),
            },
            e @ T::NeedsElevation { .. } => DeviceFault::NeedsElevation {
                message: e.to_string(),
            },
            e @ T::Platform { .. } => DeviceFault::Platform {
                message: e.to_string(),
            },
            T::Cancelled => DeviceFault::Cancelled,
            T::Timeout(d) => DeviceFault::Timeout(d),
            e @ T::DeviceNotFound(_) => DeviceFault::NotFound {
                message: e.to_string(),
            },
            e @ (T::Unsupported(_) | T::MessageNotCarried { .. }) => DeviceFault::Unsupported {
                message: e.to_string(),
            },
            e @ T::InvalidArgument(_) => DeviceFault::InvalidArgument {
                message: e.to_string(),
            },
            e @ (T::Hid { .. }
            | T::Pcsc { .. }
            | T::PcscServiceRestarted { .. }
            | T::State { .. }
            | T::Io { .. }) => DeviceFault::Io {
                message: e.to_string(),
            },
            T::Core(
                c @ fido_core::Error::Pin(
                    PinError::TooShort { .. } | PinError::TooLong { .. } | PinError::ContainsNul,
                ),
            ) => DeviceFault::PinFormat {
                message: c.to_string(),
            },
            T::Core(c) => DeviceFault::Protocol {
                message: c.to_string(),
            },
            // The transport's error is non-exhaustive: a newer variant keeps its message.
            e => DeviceFault::Other {
                message: e.to_string(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(e: OpError) {
        let o = e.to_outcome(3);
        assert_eq!(o.step, 3);
        assert_eq!(OpError::from_outcome(&o), Some(e));
    }

    #[test]
    fn every_fault_survives_the_outcome() {
        let m = || "a message: with a colon".to_owned();
        for fault in [
            DeviceFault::PinInvalid {
                retries_left: 5,
                power_cycle_required: true,
            },
            DeviceFault::UvInvalid {
                retries_left: Some(2),
            },
            DeviceFault::UvInvalid { retries_left: None },
            DeviceFault::Ctap(CtapStatus::PinPolicyViolation),
            DeviceFault::Ctap(CtapStatus::from_u8(0x7f)),
            DeviceFault::ReattachRequired,
            DeviceFault::ResetBlocked,
            DeviceFault::ResetDenied,
            DeviceFault::ResetRefused { message: m() },
            DeviceFault::DifferentKey { message: m() },
            DeviceFault::NeedsElevation { message: m() },
            DeviceFault::Platform { message: m() },
            DeviceFault::Cancelled,
            DeviceFault::Timeout(Duration::from_millis(1500)),
            DeviceFault::NotFound { message: m() },
            DeviceFault::WrongKey,
            DeviceFault::PinFormat { message: m() },
            DeviceFault::Unsupported { message: m() },
            DeviceFault::InvalidArgument { message: m() },
            DeviceFault::Io { message: m() },
            DeviceFault::Protocol { message: m() },
            DeviceFault::Other { message: m() },
        ] {
            round_trip(OpError::new("getPinUvAuthToken", fault));
        }
    }

    #[test]
    fn an_unknown_op_reads_back_as_device() {
        let mut o = OpError::new("changePIN", DeviceFault::Cancelled).to_outcome(0);
        if let Some(f) = o.error.as_mut() {
            f.message = "frobnicate: cancelled".into();
        }
        let e = OpError::from_outcome(&o).expect("a failure");
        assert_eq!(e.op, "device");
        assert_eq!(e.fault, DeviceFault::Cancelled);
    }

    #[test]
    fn a_wrong_pin_keeps_status_and_retries() {
        let e: DeviceFault = fido_transport::Error::PinInvalid {
            retries_left: 4,
            power_cycle_required: false,
        }
        .into();
        let o = OpError::new("getPinUvAuthToken", e).to_outcome(1);
        assert_eq!(o.status, OutcomeStatus::Ctap);
        assert_eq!(o.ctap, Some(0x31));
        assert_eq!(o.retries, Some(4));
    }
}

#[cfg(test)]
mod wire_tests {
    use super::*;
    use keysmith_wire::{
        decode_agent, encode_agent, AgentMessage, Envelope, JobId, JobResult, SessionId,
    };

    /// A transport error through the device half's fault, a `JobResult` encoded and
    /// decoded by keysmith-wire, and back.
    fn across_the_wire(e: fido_transport::Error, op: &'static str) -> (OpError, OpError) {
        let sent = OpError::new(op, e.into());
        let env = Envelope {
            session: Some(SessionId([7; 16])),
            seq: 3,
            job: Some(JobId([9; 16])),
            ttl_ms: None,
            msg: AgentMessage::JobResult(JobResult {
                job_digest: [1; 32],
                outcomes: vec![sent.to_outcome(0)],
                info_after: None,
            }),
        };
        let decoded = decode_agent(&encode_agent(&env)).expect("canonical payload");
        let AgentMessage::JobResult(r) = decoded.msg else {
            panic!("not a job result");
        };
        let got = OpError::from_outcome(&r.outcomes[0]).expect("a failure");
        (sent, got)
    }

    #[test]
    fn the_new_transport_errors_cross_the_split_as_data() {
        use fido_transport::Error as T;
        let cases: Vec<(T, &str, Option<u8>)> = vec![
            (
                T::NeedsElevation {
                    device: "\\\\?\\hid#vid_1050".into(),
                    detail: "Access is denied".into(),
                },
                "needs_elevation",
                None,
            ),
            (
                T::ResetRefused {
                    transport: "nfc".into(),
                    allowed: Some(vec!["usb".into()]),
                },
                "reset_refused",
                Some(0x27),
            ),
            (
                T::DifferentKey("serial 456 instead of 123".into()),
                "different_key",
                None,
            ),
            (
                T::Platform {
                    hresult: 0x8009_0027,
                    name: "NTE_INVALID_PARAMETER".into(),
                },
                "platform",
                None,
            ),
            (T::ReattachRequired, "reattach_required", Some(0x30)),
            (T::ResetBlocked, "reset_blocked", Some(0x34)),
            (T::ResetDenied, "reset_denied", Some(0x27)),
        ];
        let mut messages = Vec::new();
        let n = cases.len();
        for (e, reason, ctap) in cases {
            let text = e.to_string();
            let (sent, got) = across_the_wire(e, "reset");
            assert_eq!(got, sent, "{reason}");
            assert_eq!(got.op, "reset");
            assert_eq!(got.fault.reason(), reason);
            assert_eq!(got.fault.ctap_status(), ctap, "{reason}");
            // The operator reads the transport's own words on the other side.
            assert_eq!(got.fault.to_string(), text, "{reason}");
            assert!(!matches!(got.fault, DeviceFault::Other { .. }), "{reason}");
            messages.push(text);
        }
        // 0x30, 0x34 and 0x27 each in words of their own.
        messages.sort();
        messages.dedup();
        assert_eq!(messages.len(), n);
    }
}
