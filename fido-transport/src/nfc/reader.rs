//! The PC/SC transport: CTAP over ISO 7816 APDUs through pcscd.
//!
//! The APDU framing (chaining, GET RESPONSE, `9100` polling, cancel) is
//! [`fido_core::apdu::NfcCtapExchange`]; this module moves its APDUs through a PC/SC
//! card handle, and the `session` module paces the polls, reports progress and chooses
//! the APDU mode.

use std::ffi::CString;
use std::fmt;
use std::time::Duration;

use fido_core::apdu::{ApduMode, AppletVersion};
use zeroize::Zeroize;

use super::session::{select_applet, ApduLink, LinkError, Session};
use crate::{CancelToken, Error, Progress, Transport, TransportKind};

/// How CTAP messages are put into APDUs on a connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NfcMode {
    /// Probe extended APDUs: the first message tries one; when the card answers `6700`
    /// or the reader cannot transmit it, chained short APDUs are used instead. A reader
    /// that carried extended APDUs so far and then refuses one with `6700` (a size
    /// limit: cheap readers pass the 1-byte getInfo but not a makeCredential) gets the
    /// message again in short APDUs. Either way the connection stays short after that.
    Auto,
    /// Extended APDUs only (fails plainly on short-only readers and cards): when asked.
    Extended,
    /// Chained short APDUs ([`DEFAULT_SHORT_BLOCK`]-byte blocks, see
    /// [`NfcTransport::set_short_block_size`]) and GET RESPONSE only: the default, as
    /// libfido2 and python-fido2 do, because it works on every reader.
    #[default]
    Short,
}

impl fmt::Display for NfcMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NfcMode::Auto => "auto",
            NfcMode::Extended => "extended",
            NfcMode::Short => "short",
        })
    }
}

/// A PC/SC reader and what is in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReaderInfo {
    /// The reader name, as [`NfcTransport::open`] takes it.
    pub name: String,
    /// Whether a card is present (it could be connected to).
    pub card_present: bool,
    /// The FIDO applet's SELECT answer, when the card has one.
    pub fido_applet: Option<AppletVersion>,
}

impl ReaderInfo {
    /// Whether the reader holds a card with a FIDO applet.
    pub fn has_fido_applet(&self) -> bool {
        self.fido_applet.is_some()
    }
}

/// Default pause between `9100` polls.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(100);

/// Default data bytes per chained short APDU: 240, as libfido2 sends (python-fido2 sends
/// 250). Below the 255 the standard allows, which some cheap readers mishandle.
pub const DEFAULT_SHORT_BLOCK: usize = 240;

/// Lists the PC/SC readers, and for each whether it holds a card with the FIDO applet
/// (found by connecting, SELECTing the applet and disconnecting again).
///
/// # Errors
/// [`Error::Pcsc`] when the PC/SC service (pcscd) cannot be reached or fails.
pub fn list_readers() -> Result<Vec<ReaderInfo>, Error> {
    let context = establish()?;
    let names = match context.list_readers_owned() {
        Ok(names) => names,
        Err(pcsc::Error::NoReadersAvailable) => return Ok(Vec::new()),
        Err(e) => return Err(pcsc_error("", "listing readers", e)),
    };
    let mut out = Vec::with_capacity(names.len());
    for cname in names {
        let name = cname.to_string_lossy().into_owned();
        let card = match context.connect(&cname, pcsc::ShareMode::Shared, pcsc::Protocols::ANY) {
            Ok(card) => card,
            Err(e) => {
                // Without a card the connect fails with one of these; anything else
                // (another client holds it exclusively, ...) means a card is there but
                // could not be asked.
                let absent = matches!(
                    e,
                    pcsc::Error::NoSmartcard
                        | pcsc::Error::RemovedCard
                        | pcsc::Error::UnknownReader
                        | pcsc::Error::ReaderUnavailable
                );
                out.push(ReaderInfo {
                    name,
                    card_present: !absent,
                    fido_applet: None,
                });
                continue;
            }
        };
        let mut link = PcscLink::new(&card);
        let fido_applet = match select_applet(&mut link, &name) {
            Ok(version) => Some(version),
            // On Windows an unelevated process is refused the FIDO applet: say so instead
            // of reporting a card without one.
            Err(e @ Error::NeedsElevation { .. }) => return Err(e),
            Err(_) => None,
        };
        drop(link);
        // A failed disconnect still releases the handle when the card is dropped.
        let _ = card.disconnect(pcsc::Disposition::LeaveCard);
        out.push(ReaderInfo {
            name,
            card_present: true,
            fido_applet,
        });
    }
    Ok(out)
}

/// A connection to a FIDO authenticator (NFC or contact card) through a PC/SC reader.
///
/// Opening connects in shared mode and SELECTs the FIDO applet; so does every reconnect
/// ([`Transport::power_cycle`], or after another client reset the card). Each CTAP
/// message runs inside one exclusive PC/SC transaction.
///
/// Cancel: a [`CancelToken`] cancelled before [`Transport::transact`] starts makes it
/// return [`Error::Cancelled`] without sending anything. During a transaction the
/// cancel reaches the key with its next `9100` poll (CTAP over NFC has no other
/// cancel); the key answers CTAP2_ERR_KEEPALIVE_CANCEL and `transact` returns
/// [`Error::Cancelled`]. A key that answers without `9100` updates cannot be
/// interrupted: its answer is returned. The token is cleared when `transact` returns.
pub struct NfcTransport {
    // Field order matters: the card handle is released before its context.
    card: pcsc::Card,
    _context: pcsc::Context,
    reader: String,
    mode: NfcMode,
    active: Option<ApduMode>,
    applet: AppletVersion,
    cancel: CancelToken,
    poll_interval: Duration,
    short_block: usize,
    /// The CLA of GET RESPONSE the card took last (`0x00` until a card refuses it).
    get_response_cla: u8,
    /// Shared (the default) or exclusive ([`NfcTransport::open_exclusive`]).
    share: pcsc::ShareMode,
}

impl NfcTransport {
    /// Connects to the card in `reader` and SELECTs the FIDO applet.
    ///
    /// # Errors
    /// [`Error::DeviceNotFound`] when there is no such reader, no card in it, or no FIDO
    /// applet on the card; [`Error::Pcsc`] when pcscd is not reachable or fails.
    pub fn open(reader: &str, mode: NfcMode) -> Result<Self, Error> {
        Self::open_with(reader, mode, pcsc::ShareMode::Shared)
    }

    fn open_with(reader: &str, mode: NfcMode, share: pcsc::ShareMode) -> Result<Self, Error> {
        let cname = CString::new(reader).map_err(|_| {
            Error::InvalidArgument(format!("reader name {reader:?} contains a NUL byte"))
        })?;
        let context = establish()?;
        let card = context
            .connect(&cname, share, pcsc::Protocols::ANY)
            .map_err(|e| connect_error(reader, e))?;
        let mut transport = Self {
            card,
            _context: context,
            reader: reader.to_owned(),
            mode,
            active: None,
            applet: AppletVersion::Fido2_0,
            cancel: CancelToken::new(),
            poll_interval: DEFAULT_POLL_INTERVAL,
            short_block: DEFAULT_SHORT_BLOCK,
            get_response_cla: 0x00,
            share,
        };
        transport.applet = transport.select()?;
        Ok(transport)
    }

    /// [`NfcTransport::open`], holding the card exclusively: no other PC/SC client
    /// (Windows smart-card Plug and Play, a minidriver, another FIDO tool) can send APDUs
    /// between the messages of a multi-message operation (credential enumeration, PIN
    /// token, large blobs), as python-fido2's device tests hold it; other clients get a
    /// sharing violation until this transport is dropped. (Shared, the default, a
    /// message refused because another client selected another applet is resent once
    /// after a new SELECT.) Reconnects (power cycle, after a card reset) keep the mode.
    ///
    /// # Errors
    /// As [`NfcTransport::open`]; `Error::Pcsc` saying another client holds the card
    /// when one has it open (exclusive needs it alone).
    pub fn open_exclusive(reader: &str, mode: NfcMode) -> Result<Self, Error> {
        Self::open_with(reader, mode, pcsc::ShareMode::Exclusive)
    }

    /// Whether the card is held exclusively ([`NfcTransport::open_exclusive`]).
    pub fn is_exclusive(&self) -> bool {
        self.share == pcsc::ShareMode::Exclusive
    }

    /// The CLA the card takes on GET RESPONSE (`0x00`, or `0x80` after a card refused
    /// `0x00` with `6E00` / `6D00`; kept for the connection).
    pub fn get_response_cla(&self) -> u8 {
        self.get_response_cla
    }

    /// After the PC/SC service restarted: a new context, a new connection in the same
    /// share mode, and the applet SELECTed again.
    fn reopen(&mut self) -> Result<(), Error> {
        let cname = CString::new(self.reader.as_str()).map_err(|_| {
            Error::InvalidArgument(format!("reader name {:?} contains a NUL byte", self.reader))
        })?;
        let context = establish()?;
        let card = context
            .connect(&cname, self.share, pcsc::Protocols::ANY)
            .map_err(|e| connect_error(&self.reader, e))?;
        // The stale handle goes before its stale context.
        drop(std::mem::replace(&mut self.card, card));
        self._context = context;
        self.applet = self.select()?;
        Ok(())
    }

    /// One message, without the service-restart recovery of [`Transport::transact`].
    fn transact_once(
        &mut self,
        request: &[u8],
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Vec<u8>, Error> {
        let Self {
            card,
            reader,
            mode,
            active,
            applet,
            cancel,
            poll_interval,
            short_block,
            get_response_cla,
            share,
            ..
        } = self;
        with_card(card, *share, reader, applet, |link| {
            let mut session = Session {
                link,
                reader,
                cancel,
                poll_interval: *poll_interval,
                short_block: *short_block,
                get_response_cla: *get_response_cla,
            };
            let result = session.ctap(*mode, active, request, progress);
            *get_response_cla = session.get_response_cla;
            result
        })
    }

    /// Opens the first reader that holds a card with the FIDO applet.
    ///
    /// # Errors
    /// [`Error::DeviceNotFound`] when no reader has one; as [`NfcTransport::open`].
    pub fn open_first(mode: NfcMode) -> Result<Self, Error> {
        let readers = list_readers()?;
        let Some(found) = readers.iter().find(|r| r.has_fido_applet()) else {
            return Err(Error::DeviceNotFound(format!(
                "no PC/SC reader holds a card with a FIDO applet ({} reader(s) seen)",
                readers.len()
            )));
        };
        Self::open(&found.name, mode)
    }

    /// The reader name.
    pub fn reader(&self) -> &str {
        &self.reader
    }

    /// The mode asked for at open.
    pub fn mode(&self) -> NfcMode {
        self.mode
    }

    /// The APDU mode in use: fixed for [`NfcMode::Extended`] and [`NfcMode::Short`];
    /// for [`NfcMode::Auto`], `None` until the first message decided it.
    pub fn active_mode(&self) -> Option<ApduMode> {
        match self.mode {
            NfcMode::Extended => Some(ApduMode::Extended),
            NfcMode::Short => Some(ApduMode::Short),
            NfcMode::Auto => self.active,
        }
    }

    /// What the FIDO applet answered to the last SELECT.
    pub fn applet_version(&self) -> &AppletVersion {
        &self.applet
    }

    /// Sets the data bytes per chained short APDU (default [`DEFAULT_SHORT_BLOCK`];
    /// clamped to 1..=255): 250 matches python-fido2, smaller values suit readers with
    /// small buffers.
    pub fn set_short_block_size(&mut self, bytes: usize) {
        self.short_block = bytes.clamp(1, 255);
    }

    /// The data bytes per chained short APDU.
    pub fn short_block_size(&self) -> usize {
        self.short_block
    }

    /// Sets the pause between `9100` polls (default [`DEFAULT_POLL_INTERVAL`]).
    pub fn set_poll_interval(&mut self, interval: Duration) {
        self.poll_interval = interval;
    }

    fn select(&mut self) -> Result<AppletVersion, Error> {
        let mut selected = None;
        with_card(
            &mut self.card,
            self.share,
            &self.reader,
            &mut self.applet,
            |link| {
                selected = Some(select_applet(link, &self.reader)?);
                Ok(())
            },
        )?;
        selected.ok_or_else(|| Error::Pcsc {
            reader: self.reader.clone(),
            message: "SELECT of the FIDO applet ended without an answer".to_owned(),
        })
    }
}

/// Runs `f` inside an exclusive PC/SC transaction, so no other client's APDUs come
/// between ours (a chained message, GET RESPONSE, polls). When another client reset the
/// card since our last use, reconnects first and SELECTs the applet again (once). When
/// the PC/SC service went away under the context, says so typed
/// ([`Error::PcscServiceRestarted`], nothing sent) for the caller to reopen.
fn with_card<T>(
    card: &mut pcsc::Card,
    share: pcsc::ShareMode,
    reader: &str,
    applet: &mut AppletVersion,
    f: impl FnOnce(&mut PcscLink<'_>) -> Result<T, Error>,
) -> Result<T, Error> {
    let mut reselect = false;
    let tx = loop {
        match card.transaction2() {
            Ok(tx) => break tx,
            Err((again, pcsc::Error::ResetCard)) if !reselect => {
                again
                    .reconnect(share, pcsc::Protocols::ANY, pcsc::Disposition::LeaveCard)
                    .map_err(|e| card_error(reader, "reconnecting after a card reset", e))?;
                reselect = true;
            }
            Err((_, e)) if super::recover::service_lost(e as u32) => {
                return Err(Error::PcscServiceRestarted {
                    reader: reader.to_owned(),
                    message: format!("starting a PC/SC transaction: {e}"),
                    sent: false,
                })
            }
            Err((_, e)) => return Err(card_error(reader, "starting a PC/SC transaction", e)),
        }
    };
    let mut link = PcscLink::new(&tx);
    if reselect {
        *applet = select_applet(&mut link, reader)?;
    }
    f(&mut link)
}

/// A PC/SC failure on an open connection: a removed card is "not found".
fn card_error(reader: &str, during: &str, e: pcsc::Error) -> Error {
    match e {
        pcsc::Error::RemovedCard | pcsc::Error::NoSmartcard => {
            Error::DeviceNotFound(format!("the card was removed from PC/SC reader {reader:?}"))
        }
        pcsc::Error::ReaderUnavailable | pcsc::Error::UnknownReader => {
            Error::DeviceNotFound(format!("PC/SC reader {reader:?} is gone"))
        }
        other => pcsc_error(reader, during, other),
    }
}

impl fmt::Debug for NfcTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NfcTransport")
            .field("reader", &self.reader)
            .field("mode", &self.mode)
            .field("active", &self.active)
            .field("applet", &self.applet)
            .finish_non_exhaustive()
    }
}

impl Transport for NfcTransport {
    fn transact(
        &mut self,
        request: &[u8],
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Vec<u8>, Error> {
        if self.cancel.is_cancelled() {
            self.cancel.reset();
            return Err(Error::Cancelled);
        }
        // A restarted PC/SC service: reopen, and resend a message that had not gone out.
        let this = std::cell::RefCell::new(&mut *self);
        let result = super::recover::after_service_restart(
            || this.borrow_mut().transact_once(request, progress),
            || this.borrow_mut().reopen(),
        );
        self.cancel.reset();
        result
    }

    fn cancel_token(&self) -> CancelToken {
        self.cancel.clone()
    }

    fn kind(&self) -> TransportKind {
        TransportKind::Nfc
    }

    fn describe(&self) -> String {
        format!("PC/SC reader {:?} ({} APDUs)", self.reader, self.mode)
    }

    /// Reconnects with the card unpowered (the reader powers it down and up again),
    /// then SELECTs the FIDO applet again.
    fn power_cycle(&mut self) -> Result<(), Error> {
        self.card
            .reconnect(
                self.share,
                pcsc::Protocols::ANY,
                pcsc::Disposition::UnpowerCard,
            )
            .map_err(|e| card_error(&self.reader, "power-cycling the card (reconnect)", e))?;
        self.applet = self.select()?;
        Ok(())
    }
}

fn establish() -> Result<pcsc::Context, Error> {
    pcsc::Context::establish(pcsc::Scope::User).map_err(|e| Error::Pcsc {
        reader: String::new(),
        message: match e {
            pcsc::Error::NoService | pcsc::Error::ServiceStopped => {
                if cfg!(windows) {
                    format!(
                        "the Smart Card service (SCardSvr) is not running; Windows starts it \
                         when a reader is attached ({e})"
                    )
                } else {
                    format!("the PC/SC service (pcscd) is not running or not reachable ({e})")
                }
            }
            other => format!("cannot open a PC/SC context: {other}"),
        },
    })
}

fn connect_error(reader: &str, e: pcsc::Error) -> Error {
    match e {
        pcsc::Error::UnknownReader | pcsc::Error::ReaderUnavailable => {
            Error::DeviceNotFound(format!("no PC/SC reader named {reader:?}"))
        }
        pcsc::Error::NoSmartcard | pcsc::Error::RemovedCard | pcsc::Error::UnpoweredCard => {
            Error::DeviceNotFound(format!("no card in PC/SC reader {reader:?}"))
        }
        pcsc::Error::SharingViolation => Error::Pcsc {
            reader: reader.to_owned(),
            message: format!(
                "connecting to the card: another PC/SC client holds it exclusively ({e});                  close the other program (or its exclusive connection) and try again"
            ),
        },
        other => pcsc_error(reader, "connecting to the card", other),
    }
}

fn pcsc_error(reader: &str, during: &str, e: pcsc::Error) -> Error {
    if let Some(denied) = crate::elevation::map_pcsc(reader, e as u32, &format!("{during}: {e}")) {
        return denied;
    }
    Error::Pcsc {
        reader: reader.to_owned(),
        message: format!("{during}: {e}"),
    }
}

struct PcscLink<'a> {
    card: &'a pcsc::Card,
    buf: Vec<u8>,
}

impl<'a> PcscLink<'a> {
    fn new(card: &'a pcsc::Card) -> Self {
        Self {
            card,
            buf: vec![0; pcsc::MAX_BUFFER_SIZE_EXTENDED],
        }
    }
}

impl ApduLink for PcscLink<'_> {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, LinkError> {
        match self.card.transmit(apdu, &mut self.buf) {
            Ok(rsp) => Ok(rsp.to_vec()),
            Err(e) => Err(LinkError {
                message: e.to_string(),
                code: Some(e as u32),
                card_gone: matches!(
                    e,
                    pcsc::Error::RemovedCard
                        | pcsc::Error::ResetCard
                        | pcsc::Error::NoSmartcard
                        | pcsc::Error::UnpoweredCard
                        | pcsc::Error::UnresponsiveCard
                        | pcsc::Error::ReaderUnavailable
                        | pcsc::Error::UnknownReader
                        | pcsc::Error::NoService
                        | pcsc::Error::ServiceStopped
                        | pcsc::Error::InvalidHandle
                        | pcsc::Error::Cancelled
                ),
            }),
        }
    }
}

impl Drop for PcscLink<'_> {
    fn drop(&mut self) {
        self.buf.zeroize();
    }
}
