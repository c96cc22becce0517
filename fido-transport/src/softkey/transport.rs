//! The software authenticator behind the [`Transport`] trait, in-process.

use std::sync::{Arc, Mutex, PoisonError};

use super::{Presence, SoftAuthenticator};
use crate::{CancelToken, Error, Progress, Transport, TransportKind};

/// A [`Transport`] that hands each request straight to a shared
/// [`SoftAuthenticator`]. Clones share the authenticator; the test can keep one clone
/// (or [`SoftTransport::authenticator`]) to inspect or power-cycle it.
#[derive(Clone, Debug)]
pub struct SoftTransport {
    inner: Arc<Mutex<SoftAuthenticator>>,
    cancel: CancelToken,
    usb: bool,
}

struct Ctx<'a> {
    progress: &'a mut dyn FnMut(Progress),
    cancel: &'a CancelToken,
}

impl Presence for Ctx<'_> {
    fn progress(&mut self, progress: Progress) {
        (self.progress)(progress)
    }
    fn is_cancelled(&mut self) -> bool {
        self.cancel.is_cancelled()
    }
}

impl SoftTransport {
    /// Wraps an authenticator.
    pub fn new(authenticator: SoftAuthenticator) -> Self {
        SoftTransport {
            inner: Arc::new(Mutex::new(authenticator)),
            cancel: CancelToken::new(),
            usb: false,
        }
    }

    /// The same key as if in a USB port: reports [`TransportKind::Usb`] and cannot
    /// power-cycle the key (the operator must replug it, see
    /// [`crate::client::reset_after_replug`]).
    pub fn as_usb(mut self) -> Self {
        self.usb = true;
        self
    }

    /// The shared authenticator.
    pub fn authenticator(&self) -> Arc<Mutex<SoftAuthenticator>> {
        Arc::clone(&self.inner)
    }

    /// Runs `f` with the authenticator locked.
    pub fn with<T>(&self, f: impl FnOnce(&mut SoftAuthenticator) -> T) -> T {
        let mut guard = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut guard)
    }
}

impl Transport for SoftTransport {
    fn transact(
        &mut self,
        request: &[u8],
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Vec<u8>, Error> {
        self.cancel.reset();
        let mut ctx = Ctx {
            progress,
            cancel: &self.cancel,
        };
        let answer = self.with(|a| a.handle(request, &mut ctx));
        Ok(answer)
    }

    fn cancel_token(&self) -> CancelToken {
        self.cancel.clone()
    }

    fn kind(&self) -> TransportKind {
        if self.usb {
            TransportKind::Usb
        } else {
            TransportKind::InProcess
        }
    }

    fn describe(&self) -> String {
        if self.usb {
            "keysmith software authenticator (simulated USB port)".to_owned()
        } else {
            "keysmith software authenticator (in-process)".to_owned()
        }
    }

    fn power_cycle(&mut self) -> Result<(), Error> {
        if self.usb {
            return Err(Error::Unsupported(
                "a USB key cannot be power-cycled by software: remove and reattach it".into(),
            ));
        }
        self.with(SoftAuthenticator::power_cycle);
        Ok(())
    }
}

/// The authenticator as the applet of a virtual card ([`crate::nfc::VpcdCard`],
/// [`crate::nfc::VpcdCardHandle`]): a card power-up is a power cycle (reset window,
/// PIN_AUTH_BLOCKED cleared).
impl crate::nfc::CardApplet for SoftAuthenticator {
    fn ctap(&mut self, request: &[u8]) -> Vec<u8> {
        self.handle_over("nfc", request, &mut super::NoPresence)
    }

    fn power_cycle(&mut self) {
        SoftAuthenticator::power_cycle(self);
    }
}

/// A shared authenticator as a card applet (keep a [`SoftTransport`] clone or the
/// `Arc` to inspect it while the card runs).
impl crate::nfc::CardApplet for SoftTransport {
    fn ctap(&mut self, request: &[u8]) -> Vec<u8> {
        self.with(|a| a.handle_over("nfc", request, &mut super::NoPresence))
    }

    fn power_cycle(&mut self) {
        self.with(SoftAuthenticator::power_cycle);
    }
}

/// Progress of the software key as CTAPHID KEEPALIVE reports; CTAPHID_CANCEL reaches it
/// as a cancelled presence wait.
struct HidPresence<'a, 'b>(&'a mut crate::hid::RequestContext<'b>);

impl Presence for HidPresence<'_, '_> {
    fn progress(&mut self, progress: Progress) {
        self.0.keepalive(match progress {
            Progress::UserPresenceNeeded => fido_core::ctaphid::KeepaliveStatus::UpNeeded,
            _ => fido_core::ctaphid::KeepaliveStatus::Processing,
        });
    }
    fn is_cancelled(&mut self) -> bool {
        self.0.is_cancelled()
    }
}

/// The software key behind in-process CTAPHID reports
/// ([`InProcessHid::new`](crate::hid::InProcessHid::new)).
impl crate::hid::CtapHandler for SoftAuthenticator {
    fn handle(&mut self, request: &[u8], ctx: &mut crate::hid::RequestContext<'_>) -> Vec<u8> {
        SoftAuthenticator::handle(self, request, &mut HidPresence(ctx))
    }
}

/// A shared software key behind in-process CTAPHID reports, so a test can keep a handle
/// to inspect or steer the key while the client talks to it.
impl crate::hid::CtapHandler for std::sync::Arc<std::sync::Mutex<SoftAuthenticator>> {
    fn handle(&mut self, request: &[u8], ctx: &mut crate::hid::RequestContext<'_>) -> Vec<u8> {
        let mut key = self.lock().unwrap_or_else(|e| e.into_inner());
        SoftAuthenticator::handle(&mut key, request, &mut HidPresence(ctx))
    }
}
