//! Issue 12 item 2 in the device half: a `Reset` step at a USB station replugs the key
//! (prompts, long touch), and a key replugged too late fails typed.

use keysmith_testkit::replug::Operator;

use super::*;

/// A used YubiKey-like key (PIN set) plugged in for a minute, in a simulated USB port
/// its client knows, and the operator at the station who replugs it, taking `slow_s`
/// seconds between "insert it again" and the reset reaching the key.
fn key_at_a_usb_station(slow_s: u64) -> (Authenticator<SoftTransport>, SoftTransport, Operator) {
    keysmith_testkit::replug::used_usb_key(21, TRANSPORT_PIN, slow_s)
}

#[test]
fn a_reset_step_at_a_usb_station_replugs_the_key_and_asks_for_a_long_touch() {
    use fido_transport::client::ResetPrompt;
    let (mut key, t, mut op) = key_at_a_usb_station(1);
    let steps = [
        DeviceStep::Reset {
            require_replug: false,
            only_if_aaguid: None,
        },
        DeviceStep::SetPin {
            pin: PinSource::Secret(1),
        },
    ];
    let out = run_steps(
        &steps,
        &secrets(TRANSPORT_PIN),
        &mut PinMemory::default(),
        &mut key,
        &mut op,
    );
    assert!(out.iter().all(|o| o.status == OutcomeStatus::Ok), "{out:?}");
    let prompts = op.prompts.borrow();
    let at = |p: &Prompt| prompts.iter().position(|q| q == p);
    let remove = at(&Prompt::Replug(ResetPrompt::RemoveKey)).expect("remove the key");
    let insert = at(&Prompt::Replug(ResetPrompt::InsertKey)).expect("insert it again");
    let touch = at(&Prompt::TouchKey { op: "reset" }).expect("touch");
    let hold = at(&Prompt::HoldKey { op: "reset" }).expect("press and hold");
    assert!(
        remove < insert && insert < touch && touch < hold,
        "{prompts:?}"
    );
    assert!(t.with(|a| a.state().credentials.is_empty()));
}

#[test]
fn a_key_replugged_too_late_fails_with_too_late_replug_and_try_again() {
    let (mut key, t, mut op) = key_at_a_usb_station(6);
    let out = run_steps(
        &[DeviceStep::Reset {
            require_replug: true,
            only_if_aaguid: None,
        }],
        &Secrets::new(),
        &mut PinMemory::default(),
        &mut key,
        &mut op,
    );
    assert_eq!(out[0].status, OutcomeStatus::Ctap);
    assert_eq!(out[0].ctap, Some(0x34), "the YubiKey-like key blocks reset");
    let e = keysmith_device::OpError::from_outcome(&out[0]).expect("a failure");
    assert_eq!(e.fault, keysmith_device::DeviceFault::ResetBlocked);
    assert!(
        e.fault
            .to_string()
            .starts_with("too late, replug and try again"),
        "{e}"
    );
    assert!(t.with(|a| a.state().pin.is_some()), "nothing erased");
}
