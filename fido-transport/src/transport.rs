//! The transport abstraction every device connection implements.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::Error;

/// What a transaction reports while it waits for the authenticator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Progress {
    /// The authenticator is working.
    Processing,
    /// The authenticator waits for the user: "touch your key".
    UserPresenceNeeded,
    /// The authenticator waits for a long touch: "press and hold the key's button for
    /// about 5 seconds" (reset on keys with getInfo `longTouchForReset`).
    LongTouchNeeded,
}

/// How a transport reaches the authenticator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransportKind {
    /// USB HID (CTAPHID).
    Usb,
    /// NFC or contact card through PC/SC.
    Nfc,
    /// In-process (software authenticator or a host-supplied handle).
    InProcess,
}

/// Cancels a transaction in progress from another thread. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    /// A token that is not cancelled.
    pub fn new() -> Self {
        Self::default()
    }
    /// Asks the transaction in progress (or the next one) to stop.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
    /// True once [`CancelToken::cancel`] was called and not yet consumed.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
    /// Clears the request (a transport calls this when it starts a transaction).
    pub fn reset(&self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

/// A connection to one authenticator that carries whole CTAP2 messages.
///
/// `request` is the CTAP2 command byte followed by its CBOR parameters; the answer is
/// the status byte followed by the CBOR response. Host products that own the device
/// handle implement this trait to plug their own IO under keysmith.
pub trait Transport: Send {
    /// Sends one CTAP2 request and waits for its answer, reporting progress.
    fn transact(
        &mut self,
        request: &[u8],
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Vec<u8>, Error>;

    /// A token that cancels this transport's transaction in progress.
    fn cancel_token(&self) -> CancelToken;

    /// How this transport reaches the authenticator.
    fn kind(&self) -> TransportKind;

    /// A human description (device path, reader name).
    fn describe(&self) -> String;

    /// Power-cycles the authenticator where the transport can (NFC: card reset), so a
    /// CTAP reset is possible within its power-up window. USB cannot: the key must be
    /// unplugged and reattached.
    fn power_cycle(&mut self) -> Result<(), Error> {
        Err(Error::Unsupported(format!(
            "{} cannot power-cycle the key: remove and reattach it, then retry within 5 seconds",
            self.describe()
        )))
    }
}
