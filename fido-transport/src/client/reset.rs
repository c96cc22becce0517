//! authenticatorReset, and the reset window a key gives after power-up.

use std::time::Duration;

use fido_core::commands::{AuthenticatorInfo, Reset};
use fido_core::CtapStatus;

use super::{is_status, Authenticator};
use crate::{Error, Progress, Transport, TransportKind};

/// The reset window of a key: 5 s on YubiKeys before firmware 5.5.2 (getInfo
/// `firmwareVersion` 0x05MMPP below 0x050502), 10 s otherwise (the CTAP 2.1 text and
/// later YubiKeys).
pub fn reset_window(info: &AuthenticatorInfo) -> Duration {
    match info.firmware_version {
        Some(v) if (0x05_00_00..0x05_05_02).contains(&v) => Duration::from_secs(5),
        _ => Duration::from_secs(10),
    }
}

/// The getInfo transport name of a transport kind (`None`: in-process, no check).
fn transport_name(kind: TransportKind) -> Option<&'static str> {
    match kind {
        TransportKind::Usb => Some("usb"),
        TransportKind::Nfc => Some("nfc"),
        _ => None,
    }
}

impl<T: Transport> Authenticator<T> {
    /// Erases every credential and the PIN (authenticatorReset); the user must touch the
    /// key, which `progress` reports (followed by [`Progress::LongTouchNeeded`] on keys
    /// whose getInfo says `longTouchForReset`: "press and hold").
    ///
    /// Refused before sending when getInfo `transportsForReset` leaves out this
    /// transport ([`Error::ResetRefused`]). Keys accept a reset only shortly after
    /// power-up: when the key refuses (NOT_ALLOWED 0x30, or PIN_AUTH_BLOCKED 0x34 as
    /// some YubiKeys answer) and the transport can power-cycle it (NFC), the power cycle
    /// is done and the reset retried once; otherwise [`Error::ReattachRequired`] (0x30)
    /// or [`Error::ResetBlocked`] (0x34), both "too late, replug and try again"
    /// ([`Authenticator::reset_at_station`] and
    /// [`reset_after_replug`](super::reset_after_replug) guide the operator through it).
    /// OPERATION_DENIED (0x27) over NFC is [`Error::ResetRefused`] (Yubico: reset over
    /// NFC may be disabled); over USB it is [`Error::ResetDenied`] (declined at the key). The cached getInfo is refreshed afterwards either way.
    pub fn reset(&mut self, progress: &mut dyn FnMut(Progress)) -> Result<(), Error> {
        let info = self.info_owned()?;
        let kind = self.transport().kind();
        if let (Some(name), Some(allowed)) = (transport_name(kind), &info.transports_for_reset) {
            if !allowed.iter().any(|t| t == name) {
                return Err(Error::ResetRefused {
                    transport: name.to_owned(),
                    allowed: Some(allowed.clone()),
                });
            }
        }
        let long_touch = info.needs_long_touch_for_reset();
        // A long-touch key still reports "touch" first (callers that do not know
        // LongTouchNeeded keep prompting), then "press and hold".
        let mut progress = |p: Progress| {
            progress(p);
            if p == Progress::UserPresenceNeeded && long_touch {
                progress(Progress::LongTouchNeeded);
            }
        };
        tracing::debug!(long_touch, "authenticatorReset");
        let too_late = |e: &Error| {
            is_status(e, CtapStatus::NotAllowed) || is_status(e, CtapStatus::PinAuthBlocked)
        };
        let first = self.call(&Reset, &mut progress);
        self.invalidate_info();
        // Each refusal its own error: 0x30 too late, 0x34 blocked until replugged, 0x27
        // not over NFC (Yubico 6F27) or declined at the key (USB).
        let typed = |e: Error| match e {
            Error::Ctap(CtapStatus::NotAllowed) => Error::ReattachRequired,
            Error::Ctap(CtapStatus::PinAuthBlocked) => Error::ResetBlocked,
            Error::Ctap(CtapStatus::OperationDenied) if kind == TransportKind::Nfc => {
                Error::ResetRefused {
                    transport: "nfc".to_owned(),
                    allowed: info.transports_for_reset.clone(),
                }
            }
            Error::Ctap(CtapStatus::OperationDenied) => Error::ResetDenied,
            e => e,
        };
        match first {
            Ok(()) => Ok(()),
            Err(e) if too_late(&e) => {
                if self.transport_mut().power_cycle().is_err() {
                    return Err(typed(e));
                }
                self.call(&Reset, &mut progress).map_err(typed)
            }
            Err(e) => Err(typed(e)),
        }
    }
}
