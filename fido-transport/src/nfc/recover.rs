//! Recovering a PC/SC connection without the caller (issue 12 item 4):
//!
//! - **The applet lost between messages.** In shared mode another client (Windows smart
//!   card Plug and Play, a minidriver, Yubico Authenticator) can SELECT another applet
//!   between two CTAP messages of one operation (credMgmt Begin and GetNext,
//!   getKeyAgreement and getPinToken); our next NFCCTAP_MSG then reaches that applet and
//!   is refused (`6D00`, `6E00`, or `6985` for "no applet selected"). The message did not
//!   run, so the FIDO applet is SELECTed again and the message resent once.
//!   [`crate::nfc::NfcTransport::open_exclusive`] keeps other clients out altogether.
//! - **The PC/SC service restarted.** pcscd or the Windows Smart Card service stopped and
//!   came back (Windows stops it when the last reader goes): the context and the card
//!   handle are stale. The transport re-creates both; a message that had not reached the
//!   key is sent once more, one that may have is not (typed
//!   [`Error::PcscServiceRestarted`]).

use fido_core::apdu::{ApduError, StatusWord};

use crate::Error;

/// `SCARD_E_INVALID_HANDLE`: the handle belongs to a context the service forgot.
pub(crate) const SCARD_E_INVALID_HANDLE: u32 = 0x8010_0003;
/// `SCARD_E_NO_SERVICE`: the service is not running.
pub(crate) const SCARD_E_NO_SERVICE: u32 = 0x8010_001D;
/// `SCARD_E_SERVICE_STOPPED`: the service stopped under the context.
pub(crate) const SCARD_E_SERVICE_STOPPED: u32 = 0x8010_001E;
/// `SCARD_E_INVALID_VALUE` is not one: the service is fine, the call was wrong.
#[cfg(test)]
const SCARD_E_INVALID_VALUE: u32 = 0x8010_0011;

/// Whether a PC/SC error code says the service went away under our context.
pub(crate) fn service_lost(code: u32) -> bool {
    matches!(
        code,
        SCARD_E_INVALID_HANDLE | SCARD_E_NO_SERVICE | SCARD_E_SERVICE_STOPPED
    )
}

/// Whether `e` is the FIDO applet refusing an NFCCTAP_MSG (or a block of its chain) as
/// if another applet were selected: the message did not run.
pub(crate) fn applet_lost(e: &Error) -> bool {
    match e {
        Error::Core(fido_core::Error::Apdu(ApduError::Status { sw, during })) => {
            during.contains("NFCCTAP_MSG")
                && matches!(
                    sw,
                    StatusWord::InsNotSupported
                        | StatusWord::ClaNotSupported
                        | StatusWord::ConditionsNotSatisfied
                )
        }
        _ => false,
    }
}

/// Runs `attempt`; when it fails with [`Error::PcscServiceRestarted`], `reopen`s the
/// connection (new context, reconnect, SELECT) and, when the message had not reached
/// the key (`sent == false`), runs `attempt` once more. A message that may have reached
/// the key is not resent: its error is returned after the reopen, so the next message
/// works. When the reopen fails, its error says why (the service is still down, the key
/// is gone).
pub(crate) fn after_service_restart<T>(
    mut attempt: impl FnMut() -> Result<T, Error>,
    reopen: impl FnOnce() -> Result<(), Error>,
) -> Result<T, Error> {
    match attempt() {
        Err(Error::PcscServiceRestarted {
            reader,
            message,
            sent,
        }) => {
            tracing::warn!(
                reader = %reader,
                %message,
                sent,
                "the PC/SC service restarted: reopening the connection"
            );
            reopen()?;
            if sent {
                Err(Error::PcscServiceRestarted {
                    reader,
                    message,
                    sent,
                })
            } else {
                attempt()
            }
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    fn restarted(sent: bool) -> Error {
        Error::PcscServiceRestarted {
            reader: "r".into(),
            message: "Service was stopped".into(),
            sent,
        }
    }

    #[test]
    fn service_lost_codes() {
        assert!(service_lost(SCARD_E_SERVICE_STOPPED));
        assert!(service_lost(SCARD_E_NO_SERVICE));
        assert!(service_lost(SCARD_E_INVALID_HANDLE));
        assert!(!service_lost(SCARD_E_INVALID_VALUE));
    }

    #[test]
    fn a_message_not_sent_is_sent_again_once_after_the_reopen() {
        let tries = Cell::new(0);
        let reopened = Cell::new(0);
        let r = after_service_restart(
            || {
                tries.set(tries.get() + 1);
                if tries.get() == 1 {
                    Err(restarted(false))
                } else {
                    Ok(vec![0x00])
                }
            },
            || {
                reopened.set(reopened.get() + 1);
                Ok(())
            },
        );
        assert_eq!(r.unwrap(), vec![0x00]);
        assert_eq!((tries.get(), reopened.get()), (2, 1));
    }

    #[test]
    fn a_second_restart_is_the_typed_error_and_not_a_loop() {
        let tries = Cell::new(0);
        let r: Result<(), Error> = after_service_restart(
            || {
                tries.set(tries.get() + 1);
                Err(restarted(false))
            },
            || Ok(()),
        );
        assert!(matches!(
            r,
            Err(Error::PcscServiceRestarted { sent: false, .. })
        ));
        assert_eq!(tries.get(), 2, "retried once, not more");
    }

    #[test]
    fn a_message_that_may_have_run_is_not_resent_but_the_connection_is_reopened() {
        let tries = Cell::new(0);
        let reopened = Cell::new(false);
        let r: Result<(), Error> = after_service_restart(
            || {
                tries.set(tries.get() + 1);
                Err(restarted(true))
            },
            || {
                reopened.set(true);
                Ok(())
            },
        );
        let e = r.unwrap_err();
        assert!(matches!(e, Error::PcscServiceRestarted { sent: true, .. }));
        assert!(e.to_string().contains("run the operation again"), "{e}");
        assert_eq!(tries.get(), 1);
        assert!(reopened.get());
    }

    #[test]
    fn a_failed_reopen_says_why() {
        let r: Result<(), Error> = after_service_restart(
            || Err(restarted(false)),
            || {
                Err(Error::Pcsc {
                    reader: String::new(),
                    message: "the PC/SC service (pcscd) is not running".into(),
                })
            },
        );
        assert!(matches!(r, Err(Error::Pcsc { message, .. }) if message.contains("not running")));
    }

    #[test]
    fn other_errors_pass_untouched() {
        let r: Result<(), Error> =
            after_service_restart(|| Err(Error::Cancelled), || panic!("no reopen"));
        assert!(matches!(r, Err(Error::Cancelled)));
    }

    #[test]
    fn an_nfcctap_msg_refused_as_by_another_applet_is_the_applet_lost() {
        let status =
            |sw, during| Error::Core(fido_core::Error::Apdu(ApduError::Status { sw, during }));
        assert!(applet_lost(&status(
            StatusWord::InsNotSupported,
            "NFCCTAP_MSG"
        )));
        assert!(applet_lost(&status(
            StatusWord::ClaNotSupported,
            "a chained NFCCTAP_MSG block"
        )));
        assert!(applet_lost(&status(
            StatusWord::ConditionsNotSatisfied,
            "NFCCTAP_MSG"
        )));
        // After the message ran (its answer's GET RESPONSE) nothing is resent.
        assert!(!applet_lost(&status(
            StatusWord::InsNotSupported,
            "GET RESPONSE"
        )));
        assert!(!applet_lost(&status(
            StatusWord::WrongLength,
            "NFCCTAP_MSG"
        )));
    }

    // --- Through a session over an in-process card.

    use super::super::reader::{NfcMode, DEFAULT_SHORT_BLOCK};
    use super::super::session::{select_applet, ApduLink, LinkError, Session};
    use crate::CancelToken;
    use fido_core::apdu::{ApduMode, CardConfig, CardOutput, VirtualCard};
    use std::time::Duration;

    /// A card behind the link whose authenticator echoes; `intruder` SELECTs another
    /// applet (as another PC/SC client would) before the next APDU when set.
    struct Card {
        card: VirtualCard,
        answers: Vec<[u8; 2]>,
        intruder: bool,
    }

    impl ApduLink for Card {
        fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, LinkError> {
            if std::mem::take(&mut self.intruder) {
                // 00 A4 04 00 07 A0000005272101 (the OATH applet) from another client.
                let other = [
                    0x00, 0xA4, 0x04, 0x00, 0x07, 0xA0, 0x00, 0x00, 0x05, 0x27, 0x21, 0x01,
                ];
                let _ = self.card.handle_apdu(&other);
            }
            let r = match self.card.handle_apdu(apdu) {
                CardOutput::Response(r) => r,
                CardOutput::CtapRequest(req) => {
                    let mut answer = vec![0x00];
                    answer.extend_from_slice(req.get(1..).unwrap_or_default());
                    self.card.ctap_response(&answer).unwrap_or_default()
                }
                CardOutput::CancelRequested => self.card.ctap_response(&[0x2D]).unwrap_or_default(),
            };
            if let [.., a, b] = r[..] {
                self.answers.push([a, b]);
            }
            Ok(r)
        }
    }

    fn card(config: CardConfig) -> Card {
        let mut c = Card {
            card: VirtualCard::new(config),
            answers: Vec::new(),
            intruder: false,
        };
        select_applet(&mut c, "r").unwrap();
        c
    }

    fn message(len: usize) -> Vec<u8> {
        let mut m = vec![0x41];
        m.extend((1..len).map(|i| (i % 251) as u8));
        m
    }

    fn send(link: &mut Card, cla: &mut u8, request: &[u8]) -> Result<Vec<u8>, Error> {
        let cancel = CancelToken::new();
        let mut s = Session {
            link,
            reader: "r",
            cancel: &cancel,
            poll_interval: Duration::from_millis(1),
            short_block: DEFAULT_SHORT_BLOCK,
            get_response_cla: *cla,
        };
        let r = s.ctap(NfcMode::Short, &mut None::<ApduMode>, request, &mut |_| {});
        *cla = s.get_response_cla;
        r
    }

    #[test]
    fn the_get_response_cla_a_card_takes_is_learned_once_and_kept() {
        let mut link = card(CardConfig::get_response_only_with_cla(0x80));
        let mut cla = 0x00;
        let m = message(600);
        let echo = |m: &[u8]| {
            let mut e = vec![0x00];
            e.extend_from_slice(&m[1..]);
            e
        };
        assert_eq!(send(&mut link, &mut cla, &m).unwrap(), echo(&m));
        assert_eq!(cla, 0x80);
        assert_eq!(send(&mut link, &mut cla, &m).unwrap(), echo(&m));
        let refused = link.answers.iter().filter(|a| **a == [0x6E, 0x00]).count();
        assert_eq!(
            refused, 1,
            "one 6E00 for the connection, not one per message"
        );
    }

    #[test]
    fn a_message_after_another_client_selected_another_applet_is_resent_after_a_select() {
        let mut link = card(CardConfig::short_only());
        let mut cla = 0x00;
        let m = message(300);
        assert!(send(&mut link, &mut cla, &m).is_ok());
        link.intruder = true;
        let answer = send(&mut link, &mut cla, &m).expect("resent after a new SELECT");
        assert_eq!(answer.len(), m.len());
        // The refused block (6985: no applet selected), then SELECT, then the message.
        assert!(link.answers.contains(&[0x69, 0x85]), "{:?}", link.answers);
        // Twice in a row: the second refusal is returned, not retried for ever.
        struct Stubborn;
        impl ApduLink for Stubborn {
            fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, LinkError> {
                Ok(if apdu.get(1) == Some(&0xA4) {
                    vec![b'F', b'I', b'D', b'O', b'_', b'2', b'_', b'0', 0x90, 0x00]
                } else {
                    vec![0x6D, 0x00]
                })
            }
        }
        let cancel = CancelToken::new();
        let mut stubborn = Stubborn;
        let mut s = Session {
            link: &mut stubborn,
            reader: "r",
            cancel: &cancel,
            poll_interval: Duration::from_millis(1),
            short_block: DEFAULT_SHORT_BLOCK,
            get_response_cla: 0x00,
        };
        let e = s
            .ctap(NfcMode::Short, &mut None, &message(10), &mut |_| {})
            .unwrap_err();
        assert!(applet_lost(&e), "{e}");
    }

    #[test]
    fn a_service_gone_during_transmit_is_the_typed_error_marked_sent() {
        struct Stopped;
        impl ApduLink for Stopped {
            fn transmit(&mut self, _: &[u8]) -> Result<Vec<u8>, LinkError> {
                Err(LinkError {
                    message: "Service was stopped".to_owned(),
                    card_gone: true,
                    code: Some(SCARD_E_SERVICE_STOPPED),
                })
            }
        }
        let cancel = CancelToken::new();
        let mut s = Session {
            link: &mut Stopped,
            reader: "r",
            cancel: &cancel,
            poll_interval: Duration::from_millis(1),
            short_block: DEFAULT_SHORT_BLOCK,
            get_response_cla: 0x00,
        };
        let e = s
            .ctap(NfcMode::Short, &mut None, &message(10), &mut |_| {})
            .unwrap_err();
        assert!(
            matches!(e, Error::PcscServiceRestarted { sent: true, ref reader, .. } if reader == "r"),
            "{e}"
        );
    }
}
