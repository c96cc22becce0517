//! USB HID (CTAPHID) transport: hidapi devices and any 64-byte report pipe.
//!
//! The framing itself (channels, fragmentation, keepalives, cancel) is
//! `fido_core::ctaphid`'s sans-IO [`HidClient`](fido_core::ctaphid::HidClient); this
//! module adds the IO and the clock:
//!
//! - [`ReportPipe`]: write one 64-byte report, read one with a timeout. Implement it over
//!   your own device handle to put keysmith on top of it.
//! - [`CtapHidTransport`]: the blocking driver over any [`ReportPipe`]. Allocates a
//!   channel, sends CTAPHID_CBOR / PING / WINK, turns keepalives into
//!   [`Progress`](crate::Progress), honours a [`CancelToken`](crate::CancelToken) from
//!   another thread, retries when the key is busy and resynchronises after errors. It
//!   implements [`Transport`](crate::Transport).
//! - [`list_devices`] / [`open`]: the hidapi backend (usage page 0xF1D0, usage 0x01).
//! - [`InProcessHid`]: an in-process key (fido-core's `HidDevice` state machine and a
//!   [`CtapHandler`]) behind real 64-byte reports, with fault injection for tests.
//!
//! ```
//! use fido_transport::hid::{CtapHidTransport, InProcessHid, RequestContext};
//! use fido_transport::{Progress, Transport};
//! use fido_core::ctaphid::KeepaliveStatus;
//!
//! // A key that asks for a touch, then answers every request with status 0.
//! let key = InProcessHid::from_fn(|_request: &[u8], ctx: &mut RequestContext<'_>| {
//!     ctx.keepalive(KeepaliveStatus::UpNeeded);
//!     vec![0x00]
//! });
//! let mut transport = CtapHidTransport::new(key)?;
//! let mut touch_asked = false;
//! let answer = transport.transact(&[0x04], &mut |p| {
//!     touch_asked |= p == Progress::UserPresenceNeeded;
//! })?;
//! assert_eq!(answer, [0x00]);
//! assert!(touch_asked);
//! # Ok::<(), fido_transport::Error>(())
//! ```

#[doc(hidden)]
pub mod fuzzing;
#[cfg(feature = "hid")]
mod hidapi_backend;
mod inprocess;
#[cfg(feature = "hid")]
mod slot;
mod transport;

#[cfg(feature = "hid")]
pub use hidapi_backend::{list_devices, open, open_with, HidDeviceInfo, HidapiPipe};
pub use inprocess::{CtapHandler, InProcessHid, ReportFilter, RequestContext};
#[cfg(feature = "hid")]
pub use slot::HidSlot;
pub use transport::{CtapHidTransport, HidConfig};

pub use fido_core::ctaphid::REPORT_LEN;

use std::time::Duration;

use crate::{Error, TransportKind};

/// The HID usage page of FIDO authenticators.
pub const FIDO_USAGE_PAGE: u16 = 0xF1D0;
/// The HID usage of the CTAPHID interface on [`FIDO_USAGE_PAGE`].
pub const FIDO_USAGE_CTAPHID: u16 = 0x01;

/// A bidirectional pipe of 64-byte HID reports to one authenticator.
///
/// Reports are exactly [`REPORT_LEN`] bytes *without* an OS report id: a backend whose
/// OS API wants a leading report id (hidapi: `0`) adds and strips it itself. A host
/// product implements this trait over its own device handle and wraps it in a
/// [`CtapHidTransport`].
pub trait ReportPipe: Send {
    /// Writes one report to the device.
    fn write_report(&mut self, report: &[u8; REPORT_LEN]) -> Result<(), Error>;

    /// Reads one report, waiting at most `timeout`; `Ok(None)` when nothing arrived.
    ///
    /// The report is returned as read; a length other than 64 is rejected by the
    /// transport with a typed error.
    fn read_report(&mut self, timeout: Duration) -> Result<Option<Vec<u8>>, Error>;

    /// A human description (device path).
    fn describe(&self) -> String;

    /// How this pipe reaches the key (USB unless overridden).
    fn kind(&self) -> TransportKind {
        TransportKind::Usb
    }
}

impl<P: ReportPipe + ?Sized> ReportPipe for Box<P> {
    fn write_report(&mut self, report: &[u8; REPORT_LEN]) -> Result<(), Error> {
        (**self).write_report(report)
    }
    fn read_report(&mut self, timeout: Duration) -> Result<Option<Vec<u8>>, Error> {
        (**self).read_report(timeout)
    }
    fn describe(&self) -> String {
        (**self).describe()
    }
    fn kind(&self) -> TransportKind {
        (**self).kind()
    }
}

/// The error for a USB HID request in a build without the `hid` feature.
pub fn unavailable() -> Error {
    Error::TransportNotBuilt {
        transport: "USB HID",
        feature: "hid",
        hint: "use a keysmith built with the `hid` feature (the default)",
    }
}
