//! Every device fault the device half reports crosses the split as data (a `JobResult`
//! encoded and decoded by keysmith-wire) and comes out on the server as a typed
//! `DeviceError` (carrying the fault) with its own reason code, CTAP status and message — none of them falls
//! back to `device_error` except the fault that is "other" on the device half too.

use std::time::Duration;

use fido_core::CtapStatus;
use keysmith_device::{DeviceFault, OpError};
use keysmith_wire::{
    decode_agent, encode_agent, AgentMessage, Envelope, JobId, JobResult, SessionId,
};
use lifecycle::{DeviceError, ErrorKind};

/// One of each fault, with the reason lifecycle gives it and the CTAP byte it keeps.
/// The match makes this list fail to build when the device half adds a fault.
fn every_fault() -> Vec<(DeviceFault, &'static str, Option<u8>)> {
    let m = |s: &str| s.to_owned();
    let all = vec![
        DeviceFault::PinInvalid {
            retries_left: 5,
            power_cycle_required: false,
        },
        DeviceFault::UvInvalid {
            retries_left: Some(2),
        },
        DeviceFault::Ctap(CtapStatus::KeyStoreFull),
        DeviceFault::ReattachRequired,
        DeviceFault::ResetBlocked,
        DeviceFault::ResetDenied,
        DeviceFault::ResetRefused {
            message: m("this key allows a reset over usb only, not over nfc"),
        },
        DeviceFault::DifferentKey {
            message: m("another key was attached: serial 456 instead of 123"),
        },
        DeviceFault::NeedsElevation {
            message: m("Windows lets only elevated processes open FIDO keys: run the keysmith agent service, or elevate"),
        },
        DeviceFault::Platform {
            message: m("webauthn.dll: NTE_INVALID_PARAMETER (0x80090027)"),
        },
        DeviceFault::Cancelled,
        DeviceFault::Timeout(Duration::from_millis(1500)),
        DeviceFault::NotFound {
            message: m("no authenticator found: /dev/hidraw9"),
        },
        DeviceFault::WrongKey,
        DeviceFault::PinFormat {
            message: m("PIN too short: 2 code points, at least 4"),
        },
        DeviceFault::Unsupported {
            message: m("the reader cannot carry this message"),
        },
        DeviceFault::InvalidArgument {
            message: m("exclude list too long"),
        },
        DeviceFault::Io {
            message: m("PC/SC: the Smart Card service restarted"),
        },
        DeviceFault::Protocol {
            message: m("malformed CBOR: with a colon"),
        },
        DeviceFault::Other {
            message: m("something this version does not classify"),
        },
    ];
    all.into_iter()
        .map(|f| {
            let (reason, ctap) = match &f {
                DeviceFault::PinInvalid { .. } => ("pin_invalid", Some(0x31)),
                DeviceFault::UvInvalid { .. } => ("uv_invalid", Some(0x3E)),
                DeviceFault::Ctap(_) => ("key_store_full", Some(0x28)),
                DeviceFault::ReattachRequired => ("reattach_required", Some(0x30)),
                DeviceFault::ResetBlocked => ("reset_blocked", Some(0x34)),
                DeviceFault::ResetDenied => ("reset_denied", Some(0x27)),
                DeviceFault::ResetRefused { .. } => ("reset_refused", Some(0x27)),
                DeviceFault::DifferentKey { .. } => ("different_key", None),
                DeviceFault::NeedsElevation { .. } => ("needs_elevation", None),
                DeviceFault::Platform { .. } => ("platform_error", None),
                DeviceFault::Cancelled => ("cancelled", None),
                DeviceFault::Timeout(_) => ("timeout", None),
                DeviceFault::NotFound { .. } => ("device_not_found", None),
                DeviceFault::WrongKey => ("wrong_key", None),
                DeviceFault::PinFormat { .. } => ("pin_format_invalid", None),
                DeviceFault::Unsupported { .. } => ("device_unsupported", None),
                DeviceFault::InvalidArgument { .. } => ("invalid_argument", None),
                DeviceFault::Io { .. } => ("device_io", None),
                DeviceFault::Protocol { .. } => ("protocol_error", None),
                DeviceFault::Other { .. } => ("device_error", None),
            };
            (f, reason, ctap)
        })
        .collect()
}

/// `fault` in `op` as the device half sends it, decoded as the server reads it.
fn across_the_wire(op: &'static str, fault: DeviceFault) -> OpError {
    let sent = OpError::new(op, fault);
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
    let decoded = decode_agent(&encode_agent(&env)).expect("a canonical payload");
    let AgentMessage::JobResult(r) = decoded.msg else {
        panic!("not a job result")
    };
    let got = OpError::from_outcome(&r.outcomes[0]).expect("a failure");
    assert_eq!(got, sent, "the fault survives the wire");
    got
}

#[test]
fn every_device_fault_crosses_the_split_typed_with_its_reason() {
    let cases = every_fault();
    let mut reasons = std::collections::BTreeSet::new();
    for (fault, reason, ctap) in cases.iter().cloned() {
        let text = fault.to_string();
        let carries_words = matches!(
            fault,
            DeviceFault::ResetRefused { .. }
                | DeviceFault::DifferentKey { .. }
                | DeviceFault::NeedsElevation { .. }
                | DeviceFault::Platform { .. }
                | DeviceFault::NotFound { .. }
                | DeviceFault::PinFormat { .. }
                | DeviceFault::Unsupported { .. }
                | DeviceFault::InvalidArgument { .. }
                | DeviceFault::Io { .. }
                | DeviceFault::Protocol { .. }
                | DeviceFault::Other { .. }
                | DeviceFault::ResetBlocked
                | DeviceFault::ResetDenied
                | DeviceFault::ReattachRequired
        );
        let got = across_the_wire("reset", fault);
        let e = lifecycle::Error::from(got);
        assert_eq!(e.kind(), ErrorKind::Device, "{text}");
        assert_eq!(e.reason(), reason, "{text}");
        assert_eq!(e.ctap_status(), ctap, "{text}");
        assert!(
            !carries_words || e.to_string().ends_with(&text),
            "the device half's words are kept: {e} / {text}"
        );
        assert!(reasons.insert(reason), "{reason} is given to two faults");
    }
    assert_eq!(reasons.len(), cases.len());
}

#[test]
fn the_reset_faults_are_their_own_device_errors() {
    let typed = |f: DeviceFault| match lifecycle::Error::from(across_the_wire("reset", f)) {
        lifecycle::Error::Engine(lifecycle::engine::EngineError::Device { cause, .. }) => cause,
        other => panic!("not a device error: {other:?}"),
    };
    assert_eq!(
        typed(DeviceFault::ResetBlocked),
        DeviceError::Fault(DeviceFault::ResetBlocked)
    );
    assert!(typed(DeviceFault::ResetBlocked).power_cycle_required());
    assert_eq!(
        typed(DeviceFault::ResetDenied),
        DeviceError::Fault(DeviceFault::ResetDenied)
    );
    let message = "after the replug another key was attached".to_owned();
    assert_eq!(
        typed(DeviceFault::DifferentKey {
            message: message.clone()
        }),
        DeviceError::Fault(DeviceFault::DifferentKey { message })
    );
    let message = "run the keysmith agent service, or elevate".to_owned();
    assert_eq!(
        typed(DeviceFault::NeedsElevation {
            message: message.clone()
        }),
        DeviceError::Fault(DeviceFault::NeedsElevation { message })
    );
}
