//! Issue 12 item 2 through the engine: a used USB key is reset before issuance at a
//! station that knows its port (the replug: "remove the key", "insert it again", same
//! key, reset at once, "press and hold" on a long-touch key); replugged too late, the
//! issuance stops with "too late, replug and try again" and nothing is erased.

use std::sync::Mutex;

use fido_transport::client::ResetPrompt;
use keysmith_testkit::replug::used_usb_key;

use super::*;

/// A used YubiKey-like key (PIN set) plugged in a minute ago, its client knowing its
/// simulated USB port; an engine whose operator replugs it when asked, taking `slow_s`
/// seconds between "insert it again" and the reset.
fn usb_station(
    w: &World,
    slow_s: u64,
) -> (
    Engine,
    Authenticator<SoftTransport>,
    SoftTransport,
    Arc<Mutex<Vec<DevicePrompt>>>,
) {
    let (key, t, operator) = used_usb_key(42, "old-pin-1357", slow_s);
    let hands = operator.hands();
    let prompts = Arc::new(Mutex::new(Vec::new()));
    let seen = prompts.clone();
    let engine = sqlite_engine_builder(&w.emulator, &w.db, "station-usb", 7)
        .prompt(Arc::new(move |p: &DevicePrompt| {
            if let DevicePrompt::Replug(r) = p {
                hands.replug(r);
            }
            seen.lock().unwrap().push(p.clone());
        }))
        .build()
        .expect("engine");
    (engine, key, t, prompts)
}

#[test]
fn usb_reset_before_issuance_with_a_simulated_replug_through_the_engine() {
    let w = world("usb-replug");
    let (engine, mut key, t, prompts) = usb_station(&w, 1);
    assert!(key.can_replug(), "the station knows the key's port");
    let tpl = template(60, true);
    engine
        .add_template(tpl.clone())
        .expect("the template loads");
    // A USB station that can replug reports `can_reset_in_place`: the template's
    // `reset_before_issuance` is carried out instead of refused.
    let issued = engine
        .issue(&request(true), &tpl.credential.name, &mut key, now_ms())
        .expect("issued after the replug reset");
    assert_eq!(issued.state, CredentialState::Issued);
    let p = prompts.lock().unwrap().clone();
    let at = |want: &DevicePrompt| p.iter().position(|q| q == want);
    let remove = at(&DevicePrompt::Replug(ResetPrompt::RemoveKey)).expect("remove");
    let insert = at(&DevicePrompt::Replug(ResetPrompt::InsertKey)).expect("insert");
    let touch = at(&DevicePrompt::TouchKey { step: "reset" }).expect("touch");
    let hold = at(&DevicePrompt::HoldKey { step: "reset" }).expect("press and hold");
    assert!(remove < insert && insert < touch && touch < hold, "{p:?}");
    // The old PIN is gone: the key holds the transport PIN and one credential.
    assert!(t.with(|a| a.state().credentials.len() == 1));
    assert!(key.pin_retries().is_ok());
}

#[test]
fn a_usb_key_replugged_too_late_stops_issuance_with_too_late_replug_and_try_again() {
    let w = world("usb-replug-late");
    let (engine, mut key, t, _prompts) = usb_station(&w, 6);
    let tpl = template(60, true);
    engine
        .add_template(tpl.clone())
        .expect("the template loads");
    let e = engine
        .issue(&request(true), &tpl.credential.name, &mut key, now_ms())
        .expect_err("the 5-second window passed");
    assert!(
        e.to_string().contains("too late, replug and try again"),
        "{e}"
    );
    assert!(t.with(|a| a.state().pin.is_some()), "nothing erased");
    assert!(
        w.emulator.methods(&w.kim_id).is_empty(),
        "nothing at the IdP"
    );
}
