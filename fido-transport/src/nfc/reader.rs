//! The PC/SC transport: CTAP over ISO 7816 APDUs through pcscd.
//!
//! The APDU framing (chaining, GET RESPONSE, `9100` polling, cancel) is
//! [`fido_core::apdu::NfcCtapExchange`]; this module only moves its APDUs through a
//! PC/SC card handle, paces the polls, reports progress, and chooses the APDU mode.

use std::ffi::CString;
use std::fmt;
use std::time::{Duration, Instant};

use fido_core::apdu::{
    ApduError, ApduMode, AppletVersion, CommandApdu, HostConfig, HostEvent, LengthForm,
    NfcCtapExchange, ProcessingStatus, StatusWord,
};
use zeroize::Zeroize;

use crate::{CancelToken, Error, Progress, Transport, TransportKind};

/// How CTAP messages are put into APDUs on a connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NfcMode {
    /// Try one extended APDU first; when the card answers `6700` or the reader cannot
    /// transmit it, use chained short APDUs instead, and keep that choice for the rest
    /// of the connection.
    #[default]
    Auto,
    /// Extended APDUs only (fails plainly on short-only readers and cards).
    Extended,
    /// Chained short APDUs and GET RESPONSE only (works everywhere, more round trips).
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
        let fido_applet = select_applet(&mut link, &name).ok();
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
}

impl NfcTransport {
    /// Connects to the card in `reader` and SELECTs the FIDO applet.
    ///
    /// # Errors
    /// [`Error::DeviceNotFound`] when there is no such reader, no card in it, or no FIDO
    /// applet on the card; [`Error::Pcsc`] when pcscd is not reachable or fails.
    pub fn open(reader: &str, mode: NfcMode) -> Result<Self, Error> {
        let cname = CString::new(reader).map_err(|_| {
            Error::InvalidArgument(format!("reader name {reader:?} contains a NUL byte"))
        })?;
        let context = establish()?;
        let card = context
            .connect(&cname, pcsc::ShareMode::Shared, pcsc::Protocols::ANY)
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
        };
        transport.applet = transport.select()?;
        Ok(transport)
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

    /// Sets the pause between `9100` polls (default [`DEFAULT_POLL_INTERVAL`]).
    pub fn set_poll_interval(&mut self, interval: Duration) {
        self.poll_interval = interval;
    }

    fn select(&mut self) -> Result<AppletVersion, Error> {
        let mut selected = None;
        with_card(&mut self.card, &self.reader, &mut self.applet, |link| {
            selected = Some(select_applet(link, &self.reader)?);
            Ok(())
        })?;
        selected.ok_or_else(|| Error::Pcsc {
            reader: self.reader.clone(),
            message: "SELECT of the FIDO applet ended without an answer".to_owned(),
        })
    }
}

/// Runs `f` inside an exclusive PC/SC transaction, so no other client's APDUs come
/// between ours (a chained message, GET RESPONSE, polls). When another client reset the
/// card since our last use, reconnects first and SELECTs the applet again (once).
fn with_card<T>(
    card: &mut pcsc::Card,
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
                    .reconnect(
                        pcsc::ShareMode::Shared,
                        pcsc::Protocols::ANY,
                        pcsc::Disposition::LeaveCard,
                    )
                    .map_err(|e| card_error(reader, "reconnecting after a card reset", e))?;
                reselect = true;
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
        let Self {
            card,
            reader,
            mode,
            active,
            applet,
            cancel,
            poll_interval,
            ..
        } = self;
        let result = with_card(card, reader, applet, |link| {
            let mut session = Session {
                link,
                reader,
                cancel,
                poll_interval: *poll_interval,
            };
            session.ctap(*mode, active, request, progress)
        });
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
                pcsc::ShareMode::Shared,
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
                format!("the PC/SC service (pcscd) is not running or not reachable ({e})")
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
        other => pcsc_error(reader, "connecting to the card", other),
    }
}

fn pcsc_error(reader: &str, during: &str, e: pcsc::Error) -> Error {
    Error::Pcsc {
        reader: reader.to_owned(),
        message: format!("{during}: {e}"),
    }
}

/// A transmit failure in the layer below the APDUs.
#[derive(Debug)]
pub(crate) struct LinkError {
    /// What went wrong, in words.
    message: String,
    /// The card or the service is gone (removed, reset, unpowered): no point retrying
    /// in another APDU mode.
    card_gone: bool,
}

/// Moves one command APDU to the card and its response back.
pub(crate) trait ApduLink {
    /// Sends `apdu`, returns the response APDU (data + SW1 SW2).
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, LinkError>;
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

/// Why one exchange failed.
#[derive(Debug)]
enum ExchangeError {
    /// The transmit itself failed; `extended` tells whether the APDU was extended.
    Link { error: LinkError, extended: bool },
    /// The card's answer ended the exchange.
    Apdu(ApduError),
    /// The exchange stopped without a result (a framing bug, not the card).
    NoResult,
    /// The key confirmed our cancel (CTAP2_ERR_KEEPALIVE_CANCEL).
    Cancelled,
}

impl ExchangeError {
    /// Whether retrying in short mode could help (only meaningful after extended).
    fn suggests_short(&self) -> bool {
        match self {
            ExchangeError::Link { error, extended } => *extended && !error.card_gone,
            ExchangeError::Apdu(e) => e.suggests_short_mode(),
            ExchangeError::NoResult | ExchangeError::Cancelled => false,
        }
    }
}

/// One transaction's worth of context over a link.
pub(crate) struct Session<'a, L: ApduLink> {
    pub(crate) link: &'a mut L,
    pub(crate) reader: &'a str,
    pub(crate) cancel: &'a CancelToken,
    pub(crate) poll_interval: Duration,
}

impl<L: ApduLink> Session<'_, L> {
    /// Sends one CTAP message in `mode`, choosing (and remembering in `active`) the APDU
    /// mode for [`NfcMode::Auto`].
    pub(crate) fn ctap(
        &mut self,
        mode: NfcMode,
        active: &mut Option<ApduMode>,
        request: &[u8],
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Vec<u8>, Error> {
        if request.is_empty() {
            return Err(Error::InvalidArgument(
                "empty CTAP request: it needs at least the command byte".to_owned(),
            ));
        }
        let first = match (mode, *active) {
            (NfcMode::Extended, _) => ApduMode::Extended,
            (NfcMode::Short, _) => ApduMode::Short,
            (NfcMode::Auto, Some(chosen)) => chosen,
            (NfcMode::Auto, None) => ApduMode::Extended,
        };
        let probing = mode == NfcMode::Auto && active.is_none();
        match self.ctap_in(first, request, progress) {
            Ok(answer) => {
                if mode == NfcMode::Auto {
                    *active = Some(first);
                }
                Ok(answer)
            }
            Err(e) if probing && e.suggests_short() => {
                *active = Some(ApduMode::Short);
                self.ctap_in(ApduMode::Short, request, progress)
                    .map_err(|short| self.error(short, request.len(), ApduMode::Short, true))
            }
            Err(e) => Err(self.error(e, request.len(), first, false)),
        }
    }

    fn ctap_in(
        &mut self,
        mode: ApduMode,
        request: &[u8],
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Vec<u8>, ExchangeError> {
        let exchange =
            NfcCtapExchange::ctap(request, &HostConfig::new(mode)).map_err(ExchangeError::Apdu)?;
        match self.drive(exchange, progress)? {
            HostEvent::Response(answer) => Ok(answer),
            _ => Err(ExchangeError::NoResult),
        }
    }

    /// Runs an exchange to its end: transmits, paces `9100` polls, reports progress,
    /// passes a cancel request on.
    fn drive(
        &mut self,
        mut exchange: NfcCtapExchange,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<HostEvent, ExchangeError> {
        let mut cancel_passed = false;
        loop {
            if !cancel_passed && self.cancel.is_cancelled() {
                exchange.cancel();
                cancel_passed = true;
            }
            let Some(mut apdu) = exchange.poll_transmit() else {
                return Err(ExchangeError::NoResult);
            };
            let result = self.link.transmit(&apdu);
            let extended = matches!(
                CommandApdu::parse_with_form(&apdu),
                Ok((_, LengthForm::Extended))
            );
            apdu.zeroize();
            let mut response = result.map_err(|error| ExchangeError::Link { error, extended })?;
            let handled = exchange.handle_response(&response);
            response.zeroize();
            handled.map_err(ExchangeError::Apdu)?;
            let mut wait = false;
            while let Some(event) = exchange.poll_event() {
                match event {
                    HostEvent::StatusUpdate(status) => {
                        progress(match status {
                            ProcessingStatus::UserPresenceNeeded => Progress::UserPresenceNeeded,
                            _ => Progress::Processing,
                        });
                        wait = true;
                    }
                    HostEvent::Response(answer) => {
                        if cancel_passed && answer == [CTAP2_ERR_KEEPALIVE_CANCEL] {
                            return Err(ExchangeError::Cancelled);
                        }
                        return Ok(HostEvent::Response(answer));
                    }
                    selected @ HostEvent::Selected(_) => return Ok(selected),
                }
            }
            if wait {
                self.pause();
            }
        }
    }

    /// Waits the poll interval in short slices, ending early on cancel.
    fn pause(&self) {
        let end = Instant::now() + self.poll_interval;
        loop {
            let now = Instant::now();
            if now >= end || self.cancel.is_cancelled() {
                return;
            }
            std::thread::sleep((end - now).min(Duration::from_millis(10)));
        }
    }

    /// Turns an exchange failure into the crate error, in plain words.
    fn error(&self, e: ExchangeError, size: usize, mode: ApduMode, after_fallback: bool) -> Error {
        let reader = self.reader.to_owned();
        match e {
            ExchangeError::Cancelled => Error::Cancelled,
            ExchangeError::Apdu(ApduError::MessageTooLarge { .. }) => Error::MessageNotCarried {
                reader,
                size,
                reason: format!(
                    "one NFCCTAP message carries at most {} bytes, in extended and in chained \
                     short APDUs alike",
                    fido_core::apdu::MAX_EXTENDED_DATA
                ),
            },
            ExchangeError::Apdu(ApduError::Status {
                sw: StatusWord::WrongLength,
                during,
            }) if during == "NFCCTAP_MSG" || during.contains("chained") => {
                let reason = match (mode, after_fallback) {
                    (ApduMode::Extended, _) => "the card or reader answered 6700 (wrong length) \
                        to an extended APDU: it supports short APDUs only; open it in Auto or \
                        Short mode to use chained short APDUs"
                        .to_owned(),
                    (ApduMode::Short, true) => "extended APDUs were refused (6700) and chained \
                        short APDUs were refused too (6700 wrong length): the message is larger \
                        than the card accepts"
                        .to_owned(),
                    (ApduMode::Short, false) => "the card refused the chained short APDUs with \
                        6700 (wrong length): the message is larger than the card accepts"
                        .to_owned(),
                };
                Error::MessageNotCarried {
                    reader,
                    size,
                    reason,
                }
            }
            ExchangeError::Link { error, extended } if extended && !error.card_gone => {
                Error::MessageNotCarried {
                    reader,
                    size,
                    reason: format!(
                        "the reader could not transmit an extended APDU ({}); it may support \
                         short APDUs only: open it in Auto or Short mode",
                        error.message
                    ),
                }
            }
            ExchangeError::Link { error, .. } => Error::Pcsc {
                reader,
                message: format!("transmitting an APDU: {}", error.message),
            },
            ExchangeError::Apdu(other) => Error::Core(other.into()),
            ExchangeError::NoResult => Error::Pcsc {
                reader,
                message: "the APDU exchange ended without a result".to_owned(),
            },
        }
    }
}

/// CTAP2_ERR_KEEPALIVE_CANCEL.
const CTAP2_ERR_KEEPALIVE_CANCEL: u8 = 0x2D;

/// SELECTs the FIDO applet over `link`.
pub(crate) fn select_applet<L: ApduLink>(
    link: &mut L,
    reader: &str,
) -> Result<AppletVersion, Error> {
    let cancel = CancelToken::new();
    let mut session = Session {
        link,
        reader,
        cancel: &cancel,
        poll_interval: DEFAULT_POLL_INTERVAL,
    };
    let exchange = NfcCtapExchange::select(&HostConfig::new(ApduMode::Short));
    match session.drive(exchange, &mut |_| {}) {
        Ok(HostEvent::Selected(version)) => Ok(version),
        Ok(_) => Err(Error::Pcsc {
            reader: reader.to_owned(),
            message: "SELECT of the FIDO applet ended without an answer".to_owned(),
        }),
        Err(ExchangeError::Apdu(ApduError::Status {
            sw:
                sw @ (StatusWord::FileNotFound
                | StatusWord::InsNotSupported
                | StatusWord::ClaNotSupported),
            ..
        })) => Err(Error::DeviceNotFound(format!(
            "the card in reader {reader:?} has no FIDO applet (SELECT answered {sw})"
        ))),
        Err(e) => Err(session.error(e, 0, ApduMode::Short, false)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fido_core::apdu::{CardConfig, CardOutput, VirtualCard};

    /// An in-process card behind the link, with a scripted fault.
    struct CardLink {
        card: VirtualCard,
        /// Fail the transmit of extended APDUs at the link level (a reader that cannot
        /// carry them), instead of letting the card answer 6700.
        reader_refuses_extended: bool,
        apdus: Vec<Vec<u8>>,
        cancels_seen: usize,
    }

    impl CardLink {
        fn new(config: CardConfig) -> Self {
            Self {
                card: VirtualCard::new(config),
                reader_refuses_extended: false,
                apdus: Vec::new(),
                cancels_seen: 0,
            }
        }
    }

    impl ApduLink for CardLink {
        fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, LinkError> {
            self.apdus.push(apdu.to_vec());
            if self.reader_refuses_extended
                && matches!(
                    CommandApdu::parse_with_form(apdu),
                    Ok((_, LengthForm::Extended))
                )
            {
                return Err(LinkError {
                    message: "Transaction failed".to_owned(),
                    card_gone: false,
                });
            }
            Ok(match self.card.handle_apdu(apdu) {
                CardOutput::Response(r) => r,
                CardOutput::CtapRequest(req) => {
                    let mut answer = vec![0x00];
                    answer.extend_from_slice(req.get(1..).unwrap_or_default());
                    self.card.ctap_response(&answer).unwrap_or_default()
                }
                CardOutput::CancelRequested => {
                    self.cancels_seen += 1;
                    self.card.ctap_response(&[0x2D]).unwrap_or_default()
                }
            })
        }
    }

    fn message(len: usize) -> Vec<u8> {
        let mut m = vec![0x41];
        m.extend((1..len).map(|i| (i % 251) as u8));
        m
    }

    fn echo_of(request: &[u8]) -> Vec<u8> {
        let mut e = vec![0x00];
        e.extend_from_slice(request.get(1..).unwrap_or_default());
        e
    }

    fn run(
        link: &mut CardLink,
        mode: NfcMode,
        active: &mut Option<ApduMode>,
        request: &[u8],
        cancel: &CancelToken,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Vec<u8>, Error> {
        let mut s = Session {
            link,
            reader: "test reader",
            cancel,
            poll_interval: Duration::from_millis(1),
        };
        s.ctap(mode, active, request, progress)
    }

    #[test]
    fn select_reports_version_and_missing_applet() {
        let mut link = CardLink::new(CardConfig::quirky());
        let v = select_applet(&mut link, "r");
        assert_eq!(v.ok(), Some(AppletVersion::Fido2_0));
        // 61xx then GET RESPONSE.
        assert_eq!(link.apdus.len(), 2);

        struct NoApplet;
        impl ApduLink for NoApplet {
            fn transmit(&mut self, _: &[u8]) -> Result<Vec<u8>, LinkError> {
                Ok(vec![0x6A, 0x82])
            }
        }
        let e = select_applet(&mut NoApplet, "r");
        assert!(matches!(e, Err(Error::DeviceNotFound(m)) if m.contains("no FIDO applet")));
    }

    #[test]
    fn auto_falls_back_to_short_on_6700_and_remembers() {
        let mut link = CardLink::new(CardConfig::short_only());
        assert!(select_applet(&mut link, "r").is_ok());
        let cancel = CancelToken::new();
        let mut active = None;
        let req = message(600);
        let rsp = run(
            &mut link,
            NfcMode::Auto,
            &mut active,
            &req,
            &cancel,
            &mut |_| {},
        );
        assert_eq!(rsp.ok(), Some(echo_of(&req)));
        assert_eq!(active, Some(ApduMode::Short));
        // Next message: no extended attempt any more.
        link.apdus.clear();
        let req = message(10);
        let rsp = run(
            &mut link,
            NfcMode::Auto,
            &mut active,
            &req,
            &cancel,
            &mut |_| {},
        );
        assert_eq!(rsp.ok(), Some(echo_of(&req)));
        assert_eq!(link.apdus.len(), 1);
        assert!(matches!(
            CommandApdu::parse_with_form(&link.apdus[0]),
            Ok((_, LengthForm::Short))
        ));
    }

    #[test]
    fn auto_keeps_extended_on_capable_card() {
        let mut link = CardLink::new(CardConfig::extended());
        assert!(select_applet(&mut link, "r").is_ok());
        let mut active = None;
        let req = message(3000);
        link.apdus.clear();
        let rsp = run(
            &mut link,
            NfcMode::Auto,
            &mut active,
            &req,
            &CancelToken::new(),
            &mut |_| {},
        );
        assert_eq!(rsp.ok(), Some(echo_of(&req)));
        assert_eq!(active, Some(ApduMode::Extended));
        assert_eq!(link.apdus.len(), 1);
    }

    #[test]
    fn auto_falls_back_when_reader_cannot_transmit_extended() {
        let mut link = CardLink::new(CardConfig::extended());
        link.reader_refuses_extended = true;
        assert!(select_applet(&mut link, "r").is_ok());
        let mut active = None;
        let req = message(300);
        let rsp = run(
            &mut link,
            NfcMode::Auto,
            &mut active,
            &req,
            &CancelToken::new(),
            &mut |_| {},
        );
        assert_eq!(rsp.ok(), Some(echo_of(&req)));
        assert_eq!(active, Some(ApduMode::Short));
        // Explicit extended mode on that reader: a plain error naming reader and size.
        let e = run(
            &mut link,
            NfcMode::Extended,
            &mut None,
            &req,
            &CancelToken::new(),
            &mut |_| {},
        );
        match e {
            Err(Error::MessageNotCarried {
                reader,
                size,
                reason,
            }) => {
                assert_eq!(reader, "test reader");
                assert_eq!(size, 300);
                assert!(reason.contains("extended APDU"), "{reason}");
            }
            other => panic!("expected MessageNotCarried, got {other:?}"),
        }
    }

    #[test]
    fn extended_mode_on_short_only_card_is_not_carried() {
        let mut link = CardLink::new(CardConfig::short_only());
        assert!(select_applet(&mut link, "r").is_ok());
        let e = run(
            &mut link,
            NfcMode::Extended,
            &mut None,
            &message(5),
            &CancelToken::new(),
            &mut |_| {},
        );
        assert!(
            matches!(&e, Err(Error::MessageNotCarried { size: 5, reason, .. }) if reason.contains("6700")),
            "{e:?}"
        );
    }

    #[test]
    fn oversized_message_is_not_carried_in_any_mode() {
        let mut link = CardLink::new(CardConfig::extended());
        for mode in [NfcMode::Auto, NfcMode::Extended, NfcMode::Short] {
            let e = run(
                &mut link,
                mode,
                &mut None,
                &message(70_000),
                &CancelToken::new(),
                &mut |_| {},
            );
            assert!(
                matches!(&e, Err(Error::MessageNotCarried { size: 70_000, .. })),
                "{mode}: {e:?}"
            );
        }
        assert!(link.apdus.is_empty(), "nothing may be sent");
    }

    #[test]
    fn short_mode_larger_than_card_accepts() {
        let mut config = CardConfig::short_only();
        config.max_message_len = 500;
        let mut link = CardLink::new(config);
        assert!(select_applet(&mut link, "r").is_ok());
        let e = run(
            &mut link,
            NfcMode::Auto,
            &mut None,
            &message(800),
            &CancelToken::new(),
            &mut |_| {},
        );
        assert!(
            matches!(&e, Err(Error::MessageNotCarried { size: 800, reason, .. }) if reason.contains("refused too")),
            "{e:?}"
        );
    }

    #[test]
    fn quirky_card_reports_user_presence_and_answers() {
        let mut link = CardLink::new(CardConfig::quirky());
        assert!(select_applet(&mut link, "r").is_ok());
        for mode in [NfcMode::Auto, NfcMode::Extended, NfcMode::Short] {
            let mut seen = Vec::new();
            let req = message(1024);
            let rsp = run(
                &mut link,
                mode,
                &mut None,
                &req,
                &CancelToken::new(),
                &mut |p| seen.push(p),
            );
            assert_eq!(rsp.ok(), Some(echo_of(&req)), "{mode}");
            assert_eq!(seen, vec![Progress::UserPresenceNeeded; 2], "{mode}");
        }
    }

    #[test]
    fn cancel_during_status_updates_becomes_cancelled() {
        let mut link = CardLink::new(CardConfig::quirky());
        assert!(select_applet(&mut link, "r").is_ok());
        let cancel = CancelToken::new();
        let c2 = cancel.clone();
        let e = run(
            &mut link,
            NfcMode::Auto,
            &mut None,
            &message(20),
            &cancel,
            &mut |_| c2.cancel(),
        );
        assert!(matches!(e, Err(Error::Cancelled)), "{e:?}");
        // The cancel went out as NFCCTAP_GETRESPONSE with P1 = 0x11.
        assert!(link
            .apdus
            .iter()
            .any(|a| a.get(..3) == Some(&[0x80, 0x11, 0x11][..])));
    }

    #[test]
    fn link_failure_is_a_pcsc_error_with_reader() {
        struct Gone;
        impl ApduLink for Gone {
            fn transmit(&mut self, _: &[u8]) -> Result<Vec<u8>, LinkError> {
                Err(LinkError {
                    message: "card removed".to_owned(),
                    card_gone: true,
                })
            }
        }
        let cancel = CancelToken::new();
        let mut s = Session {
            link: &mut Gone,
            reader: "r1",
            cancel: &cancel,
            poll_interval: Duration::from_millis(1),
        };
        let e = s.ctap(NfcMode::Auto, &mut None, &message(3), &mut |_| {});
        assert!(
            matches!(&e, Err(Error::Pcsc { reader, message }) if reader == "r1" && message.contains("card removed")),
            "{e:?}"
        );
        let e = s.ctap(NfcMode::Auto, &mut None, &[], &mut |_| {});
        assert!(matches!(e, Err(Error::InvalidArgument(_))));
    }

    #[test]
    fn truncated_card_answer_is_a_core_error() {
        struct Mute;
        impl ApduLink for Mute {
            fn transmit(&mut self, _: &[u8]) -> Result<Vec<u8>, LinkError> {
                Ok(vec![0x90])
            }
        }
        let cancel = CancelToken::new();
        let mut s = Session {
            link: &mut Mute,
            reader: "r",
            cancel: &cancel,
            poll_interval: Duration::from_millis(1),
        };
        let e = s.ctap(NfcMode::Short, &mut None, &message(3), &mut |_| {});
        assert!(matches!(e, Err(Error::Core(_))), "{e:?}");
    }
}
