//! One CTAP message's APDU exchange over an [`ApduLink`]: the APDU mode choice
//! (with the fallback to short APDUs), `9100` polling, cancel, and the errors.

use std::time::{Duration, Instant};

use fido_core::apdu::{
    ApduError, ApduMode, AppletVersion, CommandApdu, HostConfig, HostEvent, LengthForm,
    NfcCtapExchange, ProcessingStatus, StatusWord,
};
use zeroize::Zeroize;

use super::reader::{NfcMode, DEFAULT_POLL_INTERVAL, DEFAULT_SHORT_BLOCK};
use crate::{CancelToken, Error, Progress};

/// A transmit failure in the layer below the APDUs.
#[derive(Debug)]
pub(crate) struct LinkError {
    /// What went wrong, in words.
    pub(super) message: String,
    /// The card or the service is gone (removed, reset, unpowered): no point retrying
    /// in another APDU mode.
    pub(super) card_gone: bool,
    /// The PC/SC error code, when the link is PC/SC (access-denied codes become
    /// [`Error::NeedsElevation`] on Windows).
    pub(super) code: Option<u32>,
}

/// Moves one command APDU to the card and its response back.
pub(crate) trait ApduLink {
    /// Sends `apdu`, returns the response APDU (data + SW1 SW2).
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, LinkError>;
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
    /// Data bytes per chained short APDU.
    pub(crate) short_block: usize,
    /// The CLA of GET RESPONSE after `61xx` (see [`HostConfig::get_response_cla`]); after
    /// the session, the one the card took (the transport keeps it).
    pub(crate) get_response_cla: u8,
}

impl<L: ApduLink> Session<'_, L> {
    /// Sends one CTAP message in `mode`, choosing (and remembering in `active`) the APDU
    /// mode for [`NfcMode::Auto`]. A message refused as if another applet were selected
    /// (another client SELECTed one since our last message) is resent once after the
    /// FIDO applet is SELECTed again (see `recover`).
    pub(crate) fn ctap(
        &mut self,
        mode: NfcMode,
        active: &mut Option<ApduMode>,
        request: &[u8],
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Vec<u8>, Error> {
        match self.ctap_once(mode, active, request, progress) {
            Err(e) if super::recover::applet_lost(&e) => {
                tracing::info!(
                    reader = self.reader,
                    error = %e,
                    "the FIDO applet is no longer selected (another client?): SELECT and resend once"
                );
                select_applet(&mut *self.link, self.reader)?;
                self.ctap_once(mode, active, request, progress)
            }
            other => other,
        }
    }

    fn ctap_once(
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
        // The first message probes extended APDUs: any failure that suggests short
        // APDUs switches. Later, a reader that carried extended APDUs so far but now
        // refuses one (a size limit: 6700, so the card did not run it) switches too, and
        // the connection stays in short mode.
        let probing = mode == NfcMode::Auto && active.is_none();
        let size_limited = |e: &ExchangeError| {
            mode == NfcMode::Auto
                && first == ApduMode::Extended
                && matches!(e, ExchangeError::Apdu(a) if a.suggests_short_mode())
        };
        match self.ctap_in(first, request, progress) {
            Ok(answer) => {
                if mode == NfcMode::Auto {
                    *active = Some(first);
                }
                Ok(answer)
            }
            Err(e) if (probing && e.suggests_short()) || size_limited(&e) => {
                tracing::info!(
                    reader = self.reader,
                    size = request.len(),
                    "extended APDU refused; short chaining from now on"
                );
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
        let config = HostConfig {
            short_block_size: self.short_block,
            get_response_cla: self.get_response_cla,
            ..HostConfig::new(mode)
        };
        let exchange = NfcCtapExchange::ctap(request, &config).map_err(ExchangeError::Apdu)?;
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
            self.get_response_cla = exchange.get_response_cla();
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
        if let ExchangeError::Link {
            error:
                LinkError {
                    code: Some(code),
                    message,
                    ..
                },
            ..
        } = &e
        {
            if let Some(denied) = crate::elevation::map_pcsc(&reader, *code, message) {
                return denied;
            }
            if super::recover::service_lost(*code) {
                return Error::PcscServiceRestarted {
                    reader,
                    message: format!("transmitting an APDU: {message}"),
                    sent: true,
                };
            }
        }
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
        short_block: DEFAULT_SHORT_BLOCK,
        get_response_cla: 0x00,
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
                    code: None,
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
            short_block: DEFAULT_SHORT_BLOCK,
            get_response_cla: 0x00,
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
                    code: None,
                })
            }
        }
        let cancel = CancelToken::new();
        let mut s = Session {
            link: &mut Gone,
            reader: "r1",
            cancel: &cancel,
            poll_interval: Duration::from_millis(1),
            short_block: DEFAULT_SHORT_BLOCK,
            get_response_cla: 0x00,
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
            short_block: DEFAULT_SHORT_BLOCK,
            get_response_cla: 0x00,
        };
        let e = s.ctap(NfcMode::Short, &mut None, &message(3), &mut |_| {});
        assert!(matches!(e, Err(Error::Core(_))), "{e:?}");
    }

    /// The data bytes of each NFCCTAP_MSG command APDU sent.
    fn msg_blocks(link: &CardLink) -> Vec<(usize, LengthForm)> {
        link.apdus
            .iter()
            .filter_map(|a| CommandApdu::parse_with_form(a).ok())
            .filter(|(c, _)| c.ins == 0x10)
            .map(|(c, f)| (c.data.len(), f))
            .collect()
    }

    #[test]
    fn short_chaining_in_240_byte_blocks_is_the_default() {
        assert_eq!(NfcMode::default(), NfcMode::Short);
        let mut link = CardLink::new(CardConfig::extended());
        assert!(select_applet(&mut link, "r").is_ok());
        link.apdus.clear();
        let req = message(600);
        let rsp = run(
            &mut link,
            NfcMode::default(),
            &mut None,
            &req,
            &CancelToken::new(),
            &mut |_| {},
        );
        assert_eq!(rsp.ok(), Some(echo_of(&req)));
        assert_eq!(
            msg_blocks(&link),
            [
                (240, LengthForm::Short),
                (240, LengthForm::Short),
                (120, LengthForm::Short)
            ]
        );
        // Settable: 250-byte blocks as python-fido2 sends.
        link.apdus.clear();
        let cancel = CancelToken::new();
        let mut s = Session {
            link: &mut link,
            reader: "r",
            cancel: &cancel,
            poll_interval: Duration::from_millis(1),
            short_block: 250,
            get_response_cla: 0x00,
        };
        let rsp = s.ctap(NfcMode::Short, &mut None, &req, &mut |_| {});
        assert_eq!(rsp.ok(), Some(echo_of(&req)));
        let sizes: Vec<usize> = msg_blocks(&link).iter().map(|b| b.0).collect();
        assert_eq!(sizes, [250, 250, 100]);
    }

    #[test]
    fn auto_falls_back_when_a_size_limited_reader_refuses_a_later_extended_apdu() {
        // The reader carries the first extended APDU (getInfo) and refuses the next.
        let mut link = CardLink::new(CardConfig::extended_at_first(1));
        assert!(select_applet(&mut link, "r").is_ok());
        let cancel = CancelToken::new();
        let mut active = None;
        let small = message(1);
        let rsp = run(
            &mut link,
            NfcMode::Auto,
            &mut active,
            &small,
            &cancel,
            &mut |_| {},
        );
        assert_eq!(rsp.ok(), Some(echo_of(&small)));
        assert_eq!(active, Some(ApduMode::Extended), "the probe passed");
        link.apdus.clear();
        let big = message(600);
        let rsp = run(
            &mut link,
            NfcMode::Auto,
            &mut active,
            &big,
            &cancel,
            &mut |_| {},
        );
        assert_eq!(rsp.ok(), Some(echo_of(&big)), "retried in short APDUs");
        assert_eq!(active, Some(ApduMode::Short), "and sticks");
        let blocks = msg_blocks(&link);
        assert_eq!(blocks.first().map(|b| b.1), Some(LengthForm::Extended));
        assert!(
            blocks[1..].iter().all(|b| b.1 == LengthForm::Short),
            "{blocks:?}"
        );
        link.apdus.clear();
        let rsp = run(
            &mut link,
            NfcMode::Auto,
            &mut active,
            &big,
            &cancel,
            &mut |_| {},
        );
        assert_eq!(rsp.ok(), Some(echo_of(&big)));
        assert!(msg_blocks(&link).iter().all(|b| b.1 == LengthForm::Short));
    }
}
