//! Issue 12's USB replug reset in tests: a used software key in a simulated USB port its
//! client knows, and the operator at the station who replugs it when asked. One set-up
//! for the engine's, the split's and the device half's replug tests.

use std::cell::RefCell;
use std::time::Duration;

use fido_transport::client::{Authenticator, ReplugTimeouts, ResetPrompt};
use fido_transport::softkey::{
    ManualClock, SeededRng, SoftAuthenticator, SoftConfig, SoftKeyHands, SoftKeySlot, SoftTransport,
};
use keysmith_device::{HolderUi, HolderUiError, Prompt};
use zeroize::Zeroizing;

/// The operator's hands at a USB station: unplugs the key when told to remove it, and
/// plugs it back when told to insert it, taking `slow_s` seconds (on the key's clock)
/// before the reset reaches the key. Cheap to clone, usable from an engine's prompt
/// callback.
#[derive(Clone, Debug)]
pub struct Replugger {
    hands: SoftKeyHands,
    clock: ManualClock,
    slow_s: u64,
}

impl Replugger {
    /// Does what a USB replug prompt asks (the card reader's prompts are ignored).
    pub fn replug(&self, prompt: &ResetPrompt) {
        match prompt {
            ResetPrompt::RemoveKey => self.hands.unplug(),
            ResetPrompt::InsertKey => {
                self.hands.plug();
                self.clock.advance(Duration::from_secs(self.slow_s));
            }
            _ => {}
        }
    }
}

/// The operator at a USB station as the device half's [`HolderUi`]: replugs the key when
/// asked ([`Replugger`]), answers no PIN question, and records every prompt in order.
#[derive(Debug)]
pub struct Operator {
    hands: Replugger,
    /// Every prompt shown, in order.
    pub prompts: RefCell<Vec<Prompt>>,
}

impl Operator {
    /// The operator's hands, for a prompt callback of its own.
    pub fn hands(&self) -> Replugger {
        self.hands.clone()
    }
}

impl HolderUi for Operator {
    fn new_pin(&mut self, _: u32, _: bool) -> Result<Zeroizing<String>, HolderUiError> {
        Err(HolderUiError::Unavailable)
    }
    fn holder_pin(&mut self) -> Result<Zeroizing<String>, HolderUiError> {
        Err(HolderUiError::Unavailable)
    }
    fn prompt(&self, p: &Prompt) {
        if let Prompt::Replug(r) = p {
            self.hands.replug(r);
        }
        self.prompts.borrow_mut().push(p.clone());
    }
}

/// A used YubiKey-like software key (random numbers from `seed`, PIN `pin` set) plugged
/// in a minute ago, whose client knows its simulated USB port (`can_replug()`), as
/// `keysmith-agent` opens a listed `usb:` key; the software key itself (to look at its
/// state); and the operator, who takes `slow_s` seconds between "insert it again" and
/// the reset.
pub fn used_usb_key(
    seed: u64,
    pin: &str,
    slow_s: u64,
) -> (Authenticator<SoftTransport>, SoftTransport, Operator) {
    let clock = ManualClock::new();
    let t = SoftTransport::new(
        SoftAuthenticator::with_rng_and_clock(
            SoftConfig::yubikey_like(),
            SeededRng::new(seed),
            clock.clone(),
        )
        .expect("softkey"),
    );
    let mut key = Authenticator::new(t.clone().as_usb());
    key.set_pin(pin).expect("a used key has a PIN");
    clock.advance(Duration::from_secs(60));
    let slot = SoftKeySlot::new(t.clone());
    let hands = slot.hands();
    key.attach_slot(
        slot,
        ReplugTimeouts {
            remove: Duration::from_secs(2),
            insert: Duration::from_secs(2),
            poll: Duration::from_millis(1),
        },
    );
    let op = Operator {
        hands: Replugger {
            hands,
            clock,
            slow_s,
        },
        prompts: RefCell::new(Vec::new()),
    };
    (key, t, op)
}
