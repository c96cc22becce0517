//! The software key in a simulated USB port, for the replug reset in tests and demos.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::{SoftAuthenticator, SoftTransport};
use crate::client::KeySlot;
use crate::{Error, TransportKind};

/// A simulated USB port holding a [`SoftTransport`] (opened with
/// [`SoftTransport::as_usb`], so software cannot power-cycle it): [`SoftKeyHands::unplug`] and
/// [`SoftKeyHands::plug`] play the operator (plugging in power-cycles the key, which
/// opens its reset window at the key's clock).
#[derive(Clone, Debug)]
pub struct SoftKeySlot {
    transport: SoftTransport,
    attached: Arc<AtomicBool>,
}

/// The operator's hands on a [`SoftKeySlot`] (cheap to clone, usable from prompts).
#[derive(Clone, Debug)]
pub struct SoftKeyHands {
    transport: SoftTransport,
    attached: Arc<AtomicBool>,
}

impl SoftKeySlot {
    /// A port with `transport`'s key plugged in.
    pub fn new(transport: SoftTransport) -> Self {
        SoftKeySlot {
            transport,
            attached: Arc::new(AtomicBool::new(true)),
        }
    }

    /// Hands that unplug and plug the key.
    pub fn hands(&self) -> SoftKeyHands {
        SoftKeyHands {
            transport: self.transport.clone(),
            attached: Arc::clone(&self.attached),
        }
    }
}

impl SoftKeyHands {
    /// Pulls the key out.
    pub fn unplug(&self) {
        self.attached.store(false, Ordering::SeqCst);
    }

    /// Plugs the key in: a power cycle (the reset window opens now, by the key's clock).
    pub fn plug(&self) {
        self.transport.with(SoftAuthenticator::power_cycle);
        self.attached.store(true, Ordering::SeqCst);
    }
}

impl KeySlot for SoftKeySlot {
    type Transport = SoftTransport;

    fn is_attached(&mut self) -> Result<bool, Error> {
        Ok(self.attached.load(Ordering::SeqCst))
    }

    fn open(&mut self) -> Result<SoftTransport, Error> {
        if !self.attached.load(Ordering::SeqCst) {
            return Err(Error::DeviceNotFound(
                "the software key is unplugged".into(),
            ));
        }
        Ok(self.transport.clone().as_usb())
    }

    fn kind(&self) -> TransportKind {
        TransportKind::Usb
    }
}
