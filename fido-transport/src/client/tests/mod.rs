//! Unit tests of request building and answer handling, against a scripted fake key:
//! a minimal authenticator (getInfo, clientPIN with real PIN/UV auth crypto from
//! fido-core's authenticator side) plus per-test hooks for everything else. Every
//! request is logged so tests can check what was (and was not) sent.

use std::sync::{Arc, Mutex};

use fido_core::cbor::Value;
use fido_core::commands::*;
use fido_core::pin::{
    decrypt_pin_hash, verify_change_pin, verify_set_pin, AuthenticatorKeyAgreement, Permissions,
    Pin, PinUvAuthProtocol, PinUvAuthToken,
};
use fido_core::CtapStatus;
use rand_core::OsRng;

use super::*;
use crate::TransportKind;

mod fake;
mod features;

use fake::*;

// ---------------------------------------------------------------------------------
// Session basics

#[test]
fn authenticator_is_send() {
    fn assert_send<S: Send>() {}
    assert_send::<Authenticator<FakeKey>>();
    assert_send::<Authenticator<Box<dyn Transport>>>();
}

#[test]
fn get_info_is_cached_and_counted() {
    let (mut a, s) = key(info21(), no_hook);
    assert_eq!(a.info().unwrap().aaguid, [7; 16]);
    assert_eq!(a.info().unwrap().aaguid, [7; 16]);
    assert_eq!(sent_count(&s), 1);
    let st = a.stats();
    assert_eq!(st.round_trips, 1);
    assert_eq!(st.bytes_sent, 1);
    assert_eq!(st.bytes_received, encode_response(&info21()).len() as u64);
    a.refresh_info().unwrap();
    assert_eq!(sent_count(&s), 2);
    a.reset_stats();
    assert_eq!(a.stats(), TransferStats::default());
}

#[test]
fn a_status_byte_becomes_a_lossless_ctap_error() {
    let (mut a, _) = key(info21(), |_, r| {
        matches!(r, Request::GetInfo(_)).then(|| vec![0x6A])
    });
    assert!(matches!(
        a.info(),
        Err(Error::Ctap(CtapStatus::Other(0x6A)))
    ));
}

#[test]
fn requests_over_max_msg_size_are_refused_before_sending() {
    let mut info = info21();
    info.max_msg_size = Some(100);
    let (mut a, s) = key(info, no_hook);
    a.info().unwrap();
    let mut args = GetAssertionArgs::new("example.com", [0; 32]);
    args.allow_list = vec![CredentialDescriptor::public_key(vec![1; 120])];
    let err = a.get_assertion(&args, None, &mut |_| {}).unwrap_err();
    assert!(
        matches!(&err, Error::InvalidArgument(m) if m.contains("maxMsgSize of 100")),
        "{err}"
    );
    assert_eq!(sent_count(&s), 1);
}

#[test]
fn keepalive_cancel_becomes_cancelled_and_selection_waits_for_a_touch() {
    let (mut a, _) = key(info21(), |_, r| match r {
        Request::MakeCredential(_) => Some(encode_status(CtapStatus::KeepaliveCancel)),
        Request::Selection(_) => ok_empty(),
        _ => None,
    });
    assert!(matches!(
        a.make_credential(&features::mc_args("example.com"), None, &mut |_| {}),
        Err(Error::Cancelled)
    ));
    a.selection(&mut |_| {}).unwrap();
    assert_eq!(a.stats().round_trips, 3);
}

// ---------------------------------------------------------------------------------
// PIN

#[test]
fn protocol_two_is_preferred_and_one_is_the_fallback() {
    let (mut a, _) = key(info21(), no_hook);
    assert_eq!(a.pin_protocol().unwrap(), PinUvAuthProtocol::Two);
    let mut info = info21();
    info.pin_uv_auth_protocols = Some(vec![1]);
    let (mut a, _) = key(info, no_hook);
    assert_eq!(a.pin_protocol().unwrap(), PinUvAuthProtocol::One);
    let mut info = info21();
    info.pin_uv_auth_protocols = Some(vec![3]);
    let (mut a, _) = key(info, no_hook);
    assert!(matches!(a.pin_protocol(), Err(Error::Unsupported(_))));
}

#[test]
fn pin_retries_reads_the_counter() {
    let (mut a, s) = key(info21(), no_hook);
    s.lock().unwrap().retries = 5;
    s.lock().unwrap().power_cycle = true;
    assert_eq!(
        a.pin_retries().unwrap(),
        PinRetries {
            retries: 5,
            power_cycle_required: true
        }
    );
    assert_eq!(a.uv_retries().unwrap(), 3);
}

#[test]
fn set_pin_sends_the_encrypted_pin_and_refreshes_info() {
    let mut info = info21();
    set_option(&mut info, "clientPin", false);
    let (mut a, s) = key(info, no_hook);
    a.set_pin("98765").unwrap();
    assert_eq!(
        s.lock().unwrap().pin_hash,
        Some(*Pin::new("98765").unwrap().pin_hash())
    );
    assert_eq!(a.info().unwrap().supports_option("clientPin"), Some(true));
    // getInfo, getKeyAgreement, setPIN, getInfo again.
    assert_eq!(sent_count(&s), 4);
    // A second setPIN is refused locally.
    assert!(matches!(a.set_pin("98765"), Err(Error::InvalidArgument(_))));
    assert_eq!(sent_count(&s), 4);
}

#[test]
fn set_pin_checks_the_minimum_length_before_sending() {
    let mut info = info21();
    set_option(&mut info, "clientPin", false);
    info.min_pin_length = Some(6);
    let (mut a, s) = key(info, no_hook);
    let err = a.set_pin("12345").unwrap_err();
    assert!(
        matches!(
            err,
            Error::Core(fido_core::Error::Pin(fido_core::pin::PinError::TooShort {
                min: 6,
                actual: 5
            }))
        ),
        "{err:?}"
    );
    assert_eq!(sent_count(&s), 1);
}

#[test]
fn change_pin_reports_retries_left_on_a_wrong_pin() {
    let (mut a, s) = key(info21(), no_hook);
    let err = a.change_pin("0000", "56789").unwrap_err();
    assert!(
        matches!(
            &err,
            Error::PinInvalid {
                retries_left: 7,
                power_cycle_required: false
            }
        ) && err.to_string().contains("7 attempt(s) left"),
        "{err}"
    );
    a.change_pin(PIN, "56789").unwrap();
    assert_eq!(
        s.lock().unwrap().pin_hash,
        Some(*Pin::new("56789").unwrap().pin_hash())
    );
}

#[test]
fn change_pin_does_not_spend_an_attempt_on_a_blocked_key() {
    let (mut a, s) = key(info21(), no_hook);
    s.lock().unwrap().retries = 0;
    assert!(matches!(
        a.change_pin(PIN, "56789"),
        Err(Error::Ctap(CtapStatus::PinBlocked))
    ));
    s.lock().unwrap().retries = 3;
    s.lock().unwrap().power_cycle = true;
    let err = a.change_pin(PIN, "56789").unwrap_err();
    assert!(matches!(err, Error::Ctap(CtapStatus::PinAuthBlocked)));
    assert!(err.to_string().contains("remove and reattach"));
    assert!(!sent(&s)
        .iter()
        .any(|r| matches!(r, Request::ClientPin(ClientPin::ChangePin { .. }))));
}

#[test]
fn pin_token_asks_for_exactly_the_permissions_and_rp_id() {
    let (mut a, s) = key(info21(), no_hook);
    let t = a
        .pin_token(PIN, Permissions::MAKE_CREDENTIAL, Some("example.com"))
        .unwrap();
    assert_eq!(t.protocol(), PinUvAuthProtocol::Two);
    assert_eq!(t.permissions(), Permissions::MAKE_CREDENTIAL);
    assert_eq!(t.rp_id(), Some("example.com"));
    assert_eq!(
        t.expose_secret(),
        s.lock().unwrap().token.as_ref().unwrap().expose_secret()
    );
    let last = sent(&s).pop().unwrap();
    match last {
        Request::ClientPin(ClientPin::GetPinUvAuthTokenUsingPinWithPermissions {
            pin_uv_auth_protocol,
            permissions,
            rp_id,
            ..
        }) => {
            assert_eq!(pin_uv_auth_protocol, 2);
            assert_eq!(permissions, Permissions::MAKE_CREDENTIAL);
            assert_eq!(rp_id.as_deref(), Some("example.com"));
        }
        other => panic!("unexpected request {other:?}"),
    }
}

#[test]
fn pin_token_uses_get_pin_token_on_ctap20_keys() {
    let mut info = info21();
    info.versions = vec!["FIDO_2_0".into()];
    info.pin_uv_auth_protocols = None;
    info.options = None;
    set_option(&mut info, "clientPin", true);
    let (mut a, s) = key(info, no_hook);
    let t = a
        .pin_token(PIN, Permissions::MAKE_CREDENTIAL, Some("example.com"))
        .unwrap();
    assert_eq!(t.protocol(), PinUvAuthProtocol::One);
    assert_eq!(t.rp_id(), None);
    assert!(matches!(
        sent(&s).pop(),
        Some(Request::ClientPin(ClientPin::GetPinToken {
            pin_uv_auth_protocol: 1,
            ..
        }))
    ));
}

#[test]
fn pin_token_refuses_bad_requests_locally() {
    let mut info = info21();
    info.options
        .as_mut()
        .unwrap()
        .retain(|(k, _)| k != "credMgmt");
    let (mut a, s) = key(info, no_hook);
    assert!(matches!(
        a.pin_token(PIN, Permissions::GET_ASSERTION, None),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        a.pin_token(PIN, Permissions::empty(), None),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        a.pin_token(PIN, Permissions::CREDENTIAL_MANAGEMENT, None),
        Err(Error::Unsupported(m)) if m.contains("credMgmt")
    ));
    assert_eq!(sent_count(&s), 1);
    let err = a
        .pin_token("9999", Permissions::AUTHENTICATOR_CONFIG, None)
        .unwrap_err();
    assert!(
        matches!(
            &err,
            Error::PinInvalid {
                retries_left: 7,
                power_cycle_required: false
            }
        ) && err.to_string().contains("7 attempt(s) left")
    );
}

#[test]
fn pin_token_is_refused_while_a_pin_change_is_forced() {
    let mut info = info21();
    info.force_pin_change = Some(true);
    let (mut a, s) = key(info, no_hook);
    assert!(matches!(
        a.pin_token(PIN, Permissions::MAKE_CREDENTIAL, Some("example.com")),
        Err(Error::Ctap(CtapStatus::PinPolicyViolation))
    ));
    assert_eq!(sent_count(&s), 1);
}

#[test]
fn uv_token_uses_built_in_verification_and_reports_progress() {
    let (mut a, s) = key(info21(), no_hook);
    let mut seen = 0;
    let t = a
        .uv_token(Permissions::BIO_ENROLLMENT, None, &mut |_| seen += 1)
        .unwrap();
    assert_eq!(t.permissions(), Permissions::BIO_ENROLLMENT);
    assert!(matches!(
        sent(&s).pop(),
        Some(Request::ClientPin(
            ClientPin::GetPinUvAuthTokenUsingUvWithPermissions { .. }
        ))
    ));
    assert_eq!(seen, 1);
    let mut info = info21();
    set_option(&mut info, "uv", false);
    let (mut a, _) = key(info, no_hook);
    assert!(matches!(
        a.uv_token(Permissions::BIO_ENROLLMENT, None, &mut |_| {}),
        Err(Error::Unsupported(_))
    ));
}

// ---------------------------------------------------------------------------------
// Reset

#[test]
fn reset_reports_progress_and_refreshes_info() {
    let (mut a, s) = key(info21(), |_, r| {
        matches!(r, Request::Reset(_)).then(ok_empty).flatten()
    });
    a.info().unwrap();
    let mut touches = Vec::new();
    a.reset(&mut |p| touches.push(p)).unwrap();
    assert_eq!(touches, vec![Progress::UserPresenceNeeded]);
    a.info().unwrap();
    assert_eq!(sent_count(&s), 3);
}

#[test]
fn reset_outside_the_window_says_too_late_replug_and_try_again() {
    let (mut a, _) = key(info21(), |_, r| {
        matches!(r, Request::Reset(_)).then(|| encode_status(CtapStatus::NotAllowed))
    });
    let err = a.reset(&mut |_| {}).unwrap_err();
    assert!(
        matches!(&err, Error::ReattachRequired)
            && err
                .to_string()
                .starts_with("too late, replug and try again"),
        "{err}"
    );
}

#[test]
fn reset_power_cycles_when_the_transport_can_and_retries_once() {
    let s = state(info21());
    let t = FakeKey {
        state: s.clone(),
        hook: Box::new(move |st: &mut KeyState, r: &Request| {
            if !matches!(r, Request::Reset(_)) {
                return None;
            }
            Some(if st.power_cycles > 0 {
                vec![0]
            } else {
                encode_status(CtapStatus::NotAllowed)
            })
        }),
        can_power_cycle: true,
        cancel: CancelToken::new(),
    };
    let mut a = Authenticator::new(t);
    a.reset(&mut |_| {}).unwrap();
    assert_eq!(s.lock().unwrap().power_cycles, 1);
    // getInfo (transportsForReset, longTouchForReset) and the two resets.
    assert_eq!(sent_count(&s), 3);
}
