//! NFC and contact cards through PC/SC, and the virtual card on vpcd.
//!
//! - [`NfcTransport`]: a [`crate::Transport`] over a PC/SC reader (pcscd): SELECT of the
//!   FIDO applet after every connect, NFCCTAP_MSG in extended or chained short APDUs
//!   ([`NfcMode`]), GET RESPONSE, `9100` status updates reported as
//!   [`crate::Progress`], cancel, and power cycling by reconnecting with the card
//!   unpowered. [`list_readers`] tells which readers hold a FIDO card.
//! - [`VpcdCard`] / [`VpcdCardHandle`]: a virtual FIDO card for vsmartcard's `vpcd`
//!   reader driver, so a software authenticator ([`CardApplet`]) can be reached through
//!   a real pcscd, with the personalities of [`fido_core::apdu::CardConfig`]
//!   (extended, short-only, quirky `61xx` + `9100`).
//!
//! The APDU framing itself lives in [`fido_core::apdu`]; this module only does IO.
//!
//! # Example (needs pcscd and a FIDO card)
//! ```no_run
//! use fido_transport::nfc::{NfcMode, NfcTransport};
//! use fido_transport::Transport;
//!
//! let mut key = NfcTransport::open_first(NfcMode::Auto)?;
//! let info = key.transact(&[0x04], &mut |_| {})?; // authenticatorGetInfo
//! assert_eq!(info.first(), Some(&0x00));
//! # Ok::<(), fido_transport::Error>(())
//! ```
#[cfg(feature = "nfc")]
mod reader;
#[cfg(feature = "nfc")]
mod recover;
#[cfg(feature = "nfc")]
mod session;
#[cfg(feature = "nfc")]
mod slot;
mod vpcd;

#[cfg(feature = "nfc")]
pub use reader::{
    list_readers, NfcMode, NfcTransport, ReaderInfo, DEFAULT_POLL_INTERVAL, DEFAULT_SHORT_BLOCK,
};
#[cfg(feature = "nfc")]
pub use slot::NfcSlot;
pub use vpcd::{
    encode_frame, CardApplet, VpcdCard, VpcdCardHandle, VpcdCardOptions, DEFAULT_ATR,
    DEFAULT_RECONNECT_DELAY, DEFAULT_VPCD_ADDR, MAX_FRAME_PAYLOAD,
};

/// The error for an NFC/PC-SC request in a build without the `nfc` feature.
pub fn unavailable() -> crate::Error {
    crate::Error::TransportNotBuilt {
        transport: "NFC",
        feature: "nfc",
        hint: "install pcscd/pcsc-lite and use a keysmith built with NFC \
               (the CLI, or the C library / Python module built with `--features nfc`)",
    }
}
