//! authenticatorReset.

use fido_core::commands::Reset;
use fido_core::CtapStatus;

use super::{is_status, Authenticator};
use crate::{Error, Progress, Transport};

impl<T: Transport> Authenticator<T> {
    /// Erases every credential and the PIN (authenticatorReset); the user must touch the
    /// key, which `progress` reports.
    ///
    /// Keys accept a reset only shortly after power-up. When the key refuses
    /// (NOT_ALLOWED) and the transport can power-cycle it (NFC), the power cycle is done
    /// and the reset retried once; otherwise the error says "reattach the key and retry
    /// within 10 seconds" ([`Error::ReattachRequired`]). The cached
    /// getInfo is refreshed afterwards either way.
    pub fn reset(&mut self, progress: &mut dyn FnMut(Progress)) -> Result<(), Error> {
        tracing::debug!("authenticatorReset");
        let first = self.call(&Reset, progress);
        self.invalidate_info();
        match first {
            Ok(()) => Ok(()),
            Err(e) if is_status(&e, CtapStatus::NotAllowed) => {
                if self.transport_mut().power_cycle().is_err() {
                    return Err(Error::ReattachRequired);
                }
                match self.call(&Reset, progress) {
                    Ok(()) => Ok(()),
                    Err(e) if is_status(&e, CtapStatus::NotAllowed) => Err(Error::ReattachRequired),
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }
}
