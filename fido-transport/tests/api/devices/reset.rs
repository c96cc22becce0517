//! Reset at the station: the reset window (5 s / 10 s), 0x30 / 0x34 / 0x27,
//! `transportsForReset`, `longTouchForReset`, and the replug helper on a simulated USB
//! port.

use std::time::Duration;

use fido_core::pin::Permissions;
use fido_core::CtapStatus;
use fido_transport::client::{
    reset_after_replug, reset_window, Authenticator, KeyIdentity, ReplugTimeouts, ResetPrompt,
};
use fido_transport::softkey::{
    ManualClock, SeededRng, SoftAuthenticator, SoftConfig, SoftKeySlot, SoftTransport,
};
use fido_transport::{Error, Progress};

use super::{soft_key, PIN, RP};

fn fast() -> ReplugTimeouts {
    ReplugTimeouts {
        remove: Duration::from_secs(2),
        insert: Duration::from_secs(2),
        poll: Duration::from_millis(1),
    }
}

/// A used YubiKey-like key (PIN set, a credential on it) that has been plugged in for a
/// minute: long past its 5-second reset window.
fn used_key() -> (Authenticator<SoftTransport>, SoftTransport, ManualClock) {
    let (_in_process, t, clock) = soft_key(SoftConfig::yubikey_like());
    let mut key = Authenticator::new(t.clone().as_usb());
    key.set_pin(PIN).unwrap();
    key.pin_token(PIN, Permissions::MAKE_CREDENTIAL, Some(RP))
        .unwrap();
    clock.advance(Duration::from_secs(60));
    (key, t, clock)
}

#[test]
fn a_late_reset_says_too_late_replug_and_try_again() {
    // YubiKey before 5.5.2: 0x34 PIN_AUTH_BLOCKED outside the window, like 0x30.
    let (mut key, _t, _c) = used_key();
    let blocked = key.reset(&mut |_| {}).unwrap_err();
    assert!(matches!(blocked, Error::ResetBlocked), "{blocked}");
    assert!(blocked.needs_replug());
    assert!(
        blocked
            .to_string()
            .starts_with("too late, replug and try again"),
        "{blocked}"
    );
    assert!(
        blocked.to_string().contains("PIN_AUTH_BLOCKED"),
        "{blocked}"
    );
    // The default key answers 0x30: "too late" in its own words.
    let (_plain, t, clock) = soft_key(SoftConfig::default());
    let mut plain = Authenticator::new(t.as_usb());
    clock.advance(Duration::from_secs(11));
    let late = plain.reset(&mut |_| {}).unwrap_err();
    assert!(matches!(late, Error::ReattachRequired), "{late}");
    assert!(late.needs_replug());
    assert!(late
        .to_string()
        .starts_with("too late, replug and try again"));
    assert_ne!(late.to_string(), blocked.to_string());
    assert_eq!(late.ctap_status(), Some(CtapStatus::NotAllowed));
    assert_eq!(blocked.ctap_status(), Some(CtapStatus::PinAuthBlocked));
}

#[test]
fn a_reset_declined_over_usb_has_its_own_message() {
    // OPERATION_DENIED (0x27) over USB: the holder declined at the key; not "too late",
    // not "not over this transport".
    let (_k, t, _c) = soft_key(SoftConfig::default());
    t.with(|a| {
        a.control()
            .set_presence(fido_transport::softkey::UserPresence::Deny)
    });
    let mut key = Authenticator::new(t.clone().as_usb());
    let e = key.reset(&mut |_| {}).unwrap_err();
    assert!(matches!(e, Error::ResetDenied), "{e}");
    assert!(!e.needs_replug());
    assert!(e.to_string().contains("declined at the key"), "{e}");
    assert_eq!(e.ctap_status(), Some(CtapStatus::OperationDenied));
}

#[test]
fn usb_reset_before_issuance_with_a_simulated_replug() {
    let (mut key, t, clock) = used_key();
    assert_eq!(reset_window(key.info().unwrap()), Duration::from_secs(10));
    let expected = KeyIdentity::of(key.info().unwrap(), None);
    let mut slot = SoftKeySlot::new(t.clone());
    let hands = slot.hands();
    let mut prompts = Vec::new();
    let mut touches = Vec::new();
    let mut fresh = reset_after_replug(
        &mut slot,
        &expected,
        fast(),
        &mut |p| {
            prompts.push(p);
            match p {
                ResetPrompt::RemoveKey => hands.unplug(),
                ResetPrompt::InsertKey => {
                    hands.plug();
                    // The operator and the station take 2 s: inside the 5 s window.
                    clock.advance(Duration::from_secs(2));
                }
                _ => {}
            }
        },
        &mut |p| touches.push(p),
    )
    .expect("reset right after the replug");
    assert_eq!(prompts, [ResetPrompt::RemoveKey, ResetPrompt::InsertKey]);
    // longTouchForReset: the client asks for a press and hold, not a tap.
    // "Touch" first (for callers that know no better), then "press and hold".
    let up = touches
        .iter()
        .position(|p| *p == Progress::UserPresenceNeeded);
    let hold = touches.iter().position(|p| *p == Progress::LongTouchNeeded);
    assert!(up.is_some() && hold == up.map(|u| u + 1), "{touches:?}");
    assert_eq!(
        fresh.info().unwrap().supports_option("clientPin"),
        Some(false)
    );
    assert!(t.with(|a| a.state().credentials.is_empty()));
    // Issuance goes on with the same client: a new PIN can be set at once.
    fresh.set_pin("13572468").unwrap();
}

#[test]
fn replugged_too_late_gets_too_late_replug_and_try_again() {
    let (_key, t, clock) = used_key();
    let expected = KeyIdentity::of(&t.with(|a: &mut SoftAuthenticator| a.info()), None);
    let mut slot = SoftKeySlot::new(t.clone());
    let hands = slot.hands();
    let e = reset_after_replug(
        &mut slot,
        &expected,
        fast(),
        &mut |p| match p {
            ResetPrompt::RemoveKey => hands.unplug(),
            ResetPrompt::InsertKey => {
                hands.plug();
                clock.advance(Duration::from_secs(6));
            }
            _ => {}
        },
        &mut |_| {},
    )
    .unwrap_err();
    // The YubiKey-like key answers 0x34 once its window has passed.
    assert!(matches!(e, Error::ResetBlocked), "{e}");
    assert!(
        e.to_string().starts_with("too late, replug and try again"),
        "{e}"
    );
    assert!(t.with(|a| a.state().pin.is_some()), "nothing erased");
}

#[test]
fn another_key_in_the_port_is_not_reset() {
    let (key, t, _clock) = used_key();
    let _ = key;
    let expected = KeyIdentity::of(&t.with(|a| a.info()), None);
    // The operator plugs in another key of another model.
    let other = SoftTransport::new(
        SoftAuthenticator::with_rng_and_clock(
            SoftConfig::default(),
            SeededRng::new(3),
            ManualClock::new(),
        )
        .unwrap(),
    );
    let mut slot = SoftKeySlot::new(other.clone());
    let hands = slot.hands();
    let e = reset_after_replug(
        &mut slot,
        &expected,
        fast(),
        &mut |p| match p {
            ResetPrompt::RemoveKey => hands.unplug(),
            ResetPrompt::InsertKey => hands.plug(),
            _ => {}
        },
        &mut |_| {},
    )
    .unwrap_err();
    assert!(matches!(e, Error::DifferentKey(_)), "{e}");
    assert!(t.with(|a| a.state().pin.is_some()));
}

#[test]
fn a_key_never_removed_times_out() {
    let (_key, t, _c) = used_key();
    let expected = KeyIdentity::of(&t.with(|a| a.info()), None);
    let mut slot = SoftKeySlot::new(t);
    let e = reset_after_replug(
        &mut slot,
        &expected,
        ReplugTimeouts {
            remove: Duration::from_millis(20),
            ..fast()
        },
        &mut |_| {},
        &mut |_| {},
    )
    .unwrap_err();
    assert!(matches!(e, Error::Timeout(_)), "{e}");
}

/// The software key as if on an NFC reader (the transport kind is all that differs).
struct OnReader(SoftTransport);

impl fido_transport::Transport for OnReader {
    fn transact(
        &mut self,
        request: &[u8],
        _progress: &mut dyn FnMut(Progress),
    ) -> Result<Vec<u8>, Error> {
        Ok(self
            .0
            .with(|a| a.handle_over("nfc", request, &mut fido_transport::softkey::NoPresence)))
    }
    fn cancel_token(&self) -> fido_transport::CancelToken {
        fido_transport::Transport::cancel_token(&self.0)
    }
    fn kind(&self) -> fido_transport::TransportKind {
        fido_transport::TransportKind::Nfc
    }
    fn describe(&self) -> String {
        "software key on a reader".into()
    }
}

#[test]
fn reset_over_nfc_is_refused_when_the_key_allows_usb_only() {
    let (_k, t, _c) = soft_key(SoftConfig::yubikey_like());
    let mut key = Authenticator::new(OnReader(t.clone()));
    key.info().unwrap();
    let rounds = key.stats().round_trips;
    let e = key.reset(&mut |_| {}).unwrap_err();
    assert!(
        matches!(&e, Error::ResetRefused { transport, .. } if transport == "nfc"),
        "{e}"
    );
    assert_eq!(key.stats().round_trips, rounds, "refused before sending");
    // A key that does not list transportsForReset but answers OPERATION_DENIED (0x27)
    // over NFC (Yubico's 6F27 when NFC reset is disabled): the same typed error.
    let (_k, t, _c) = soft_key(SoftConfig::default());
    t.with(|a| {
        a.control()
            .set_presence(fido_transport::softkey::UserPresence::Deny)
    });
    let mut key = Authenticator::new(OnReader(t));
    let e = key.reset(&mut |_| {}).unwrap_err();
    assert!(
        matches!(&e, Error::ResetRefused { allowed: None, .. }),
        "{e}"
    );
}

#[test]
fn transports_for_reset_refuses_nfc_before_sending() {
    // The YubiKey-like key lists [usb, smart-card]: over NFC it answers 0x27, and the
    // client refuses before sending once it has read getInfo.
    let soft = SoftAuthenticator::with_rng_and_clock(
        SoftConfig::yubikey_like(),
        SeededRng::new(5),
        ManualClock::new(),
    )
    .unwrap();
    let mut raw = soft;
    let reply = raw.handle_over(
        "nfc",
        &fido_core::commands::encode_request(&fido_core::commands::Reset),
        &mut fido_transport::softkey::NoPresence,
    );
    assert_eq!(reply, vec![CtapStatus::OperationDenied.to_u8()]);
    let msg = Error::ResetRefused {
        transport: "nfc".into(),
        allowed: Some(vec!["usb".into(), "smart-card".into()]),
    }
    .to_string();
    assert!(msg.contains("usb or smart-card"), "{msg}");
}

#[test]
fn reset_at_station_replugs_a_usb_key_and_keeps_the_client() {
    let (mut key, t, clock) = used_key();
    assert!(!key.can_replug());
    let slot = SoftKeySlot::new(t.clone());
    let hands = slot.hands();
    key.attach_slot(slot, fast());
    assert!(key.can_replug());
    let mut prompts = Vec::new();
    let mut touches = Vec::new();
    key.reset_at_station(
        true,
        &mut |p| {
            prompts.push(p);
            match p {
                ResetPrompt::RemoveKey => hands.unplug(),
                ResetPrompt::InsertKey => {
                    hands.plug();
                    clock.advance(Duration::from_secs(1));
                }
                _ => {}
            }
        },
        &mut |p| touches.push(p),
    )
    .expect("reset after the replug");
    assert_eq!(prompts, [ResetPrompt::RemoveKey, ResetPrompt::InsertKey]);
    assert!(touches.contains(&Progress::LongTouchNeeded), "{touches:?}");
    assert!(t.with(|a| a.state().pin.is_none()), "the key was reset");
    // The same client goes on with the reattached key, and can replug again.
    key.set_pin("13572468").unwrap();
    assert!(key.can_replug());
}

#[test]
fn reset_at_station_without_a_slot_is_a_plain_reset() {
    let (mut key, _t, _clock) = used_key();
    let e = key
        .reset_at_station(true, &mut |_| panic!("no slot, no prompt"), &mut |_| {})
        .unwrap_err();
    assert!(e.needs_replug(), "{e}");
}

/// A reader whose "unpowered reconnect" keeps the field on: the power cycle succeeds
/// but the key's reset window does not restart.
struct DeafReader(SoftTransport);

impl fido_transport::Transport for DeafReader {
    fn transact(
        &mut self,
        request: &[u8],
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Vec<u8>, Error> {
        OnReader(self.0.clone()).transact(request, progress)
    }
    fn cancel_token(&self) -> fido_transport::CancelToken {
        fido_transport::Transport::cancel_token(&self.0)
    }
    fn kind(&self) -> fido_transport::TransportKind {
        fido_transport::TransportKind::Nfc
    }
    fn describe(&self) -> String {
        "software key on a reader that keeps the field on".into()
    }
    fn power_cycle(&mut self) -> Result<(), Error> {
        Ok(())
    }
}

/// The reader as a slot: the card is on it while `on` is set.
struct ReaderSlot {
    t: SoftTransport,
    on: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl fido_transport::client::KeySlot for ReaderSlot {
    type Transport = DeafReader;
    fn is_attached(&mut self) -> Result<bool, Error> {
        Ok(self.on.load(std::sync::atomic::Ordering::SeqCst))
    }
    fn open(&mut self) -> Result<DeafReader, Error> {
        Ok(DeafReader(self.t.clone()))
    }
    fn kind(&self) -> fido_transport::TransportKind {
        fido_transport::TransportKind::Nfc
    }
}

#[test]
fn over_nfc_a_reader_that_keeps_the_field_on_gets_lift_the_key_and_put_it_back() {
    let (_k, t, clock) = soft_key(SoftConfig::default());
    let mut key = Authenticator::new(DeafReader(t.clone()));
    key.set_pin(PIN).unwrap();
    clock.advance(Duration::from_secs(60));
    let on = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    key.attach_slot(
        ReaderSlot {
            t: t.clone(),
            on: on.clone(),
        },
        fast(),
    );
    let mut prompts = Vec::new();
    key.reset_at_station(
        false,
        &mut |p| {
            prompts.push(p);
            match p {
                ResetPrompt::LiftKey => on.store(false, std::sync::atomic::Ordering::SeqCst),
                ResetPrompt::PlaceKey => {
                    t.with(SoftAuthenticator::power_cycle);
                    on.store(true, std::sync::atomic::Ordering::SeqCst);
                }
                _ => {}
            }
        },
        &mut |_| {},
    )
    .expect("reset after lifting the key");
    assert_eq!(prompts, [ResetPrompt::LiftKey, ResetPrompt::PlaceKey]);
    assert!(ResetPrompt::LiftKey.message().contains("Lift"));
    assert!(t.with(|a| a.state().pin.is_none()));
}
