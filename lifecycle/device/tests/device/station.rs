//! Issue 12 item 2 in the device half: a `Reset` step at a USB station replugs the key
//! (prompts, long touch), and a key replugged too late fails typed.

use super::*;

/// The operator at a USB station: unplugs and plugs the software key when asked.
struct Operator {
    hands: fido_transport::softkey::SoftKeyHands,
    clock: fido_transport::softkey::ManualClock,
    /// Seconds between "insert it again" and the reset reaching the key.
    slow_s: u64,
    prompts: RefCell<Vec<Prompt>>,
}

impl HolderUi for Operator {
    fn new_pin(&mut self, _: u32, _: bool) -> Result<Zeroizing<String>, HolderUiError> {
        Err(HolderUiError::Unavailable)
    }
    fn holder_pin(&mut self) -> Result<Zeroizing<String>, HolderUiError> {
        Err(HolderUiError::Unavailable)
    }
    fn prompt(&self, p: &Prompt) {
        use fido_transport::client::ResetPrompt;
        match p {
            Prompt::Replug(ResetPrompt::RemoveKey) => self.hands.unplug(),
            Prompt::Replug(ResetPrompt::InsertKey) => {
                self.hands.plug();
                self.clock
                    .advance(std::time::Duration::from_secs(self.slow_s));
            }
            _ => {}
        }
        self.prompts.borrow_mut().push(p.clone());
    }
}

/// A used YubiKey-like key (PIN set) plugged in for a minute, in a simulated USB port
/// its client knows.
fn key_at_a_usb_station(slow_s: u64) -> (Authenticator<SoftTransport>, SoftTransport, Operator) {
    use fido_transport::client::ReplugTimeouts;
    use fido_transport::softkey::{ManualClock, SeededRng, SoftKeySlot};
    let clock = ManualClock::new();
    let t = SoftTransport::new(
        SoftAuthenticator::with_rng_and_clock(
            SoftConfig::yubikey_like(),
            SeededRng::new(21),
            clock.clone(),
        )
        .expect("softkey"),
    );
    let mut key = Authenticator::new(t.clone().as_usb());
    key.set_pin(TRANSPORT_PIN).expect("set PIN");
    clock.advance(std::time::Duration::from_secs(60));
    let slot = SoftKeySlot::new(t.clone());
    let hands = slot.hands();
    key.attach_slot(
        slot,
        ReplugTimeouts {
            remove: std::time::Duration::from_secs(2),
            insert: std::time::Duration::from_secs(2),
            poll: std::time::Duration::from_millis(1),
        },
    );
    let op = Operator {
        hands,
        clock,
        slow_s,
        prompts: RefCell::new(Vec::new()),
    };
    (key, t, op)
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
