//! Recovering a PC/SC connection without the caller (issue 12 item 4):
//!
//! - **The applet lost between messages.** In shared mode another client (Windows smart
//!   card Plug and Play, a minidriver, Yubico Authenticator) can SELECT another applet
//!   between two CTAP messages of one operation (credMgmt Begin and GetNext,
//!   getKeyAgreement and getPinToken); our next NFCCTAP_MSG then reaches that applet and
//!   is refused (`6D00`, `6E00`, or `6985` for "no applet selected"). The message did not
//!   run, so the FIDO applet is SELECTed again and the message resent once.
//!   [`crate::nfc::NfcTransport::set_exclusive`] keeps other clients out altogether.
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
        let status = |sw, during| {
            Error::Core(fido_core::Error::Apdu(ApduError::Status { sw, during }))
        };
        assert!(applet_lost(&status(StatusWord::InsNotSupported, "NFCCTAP_MSG")));
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
        assert!(!applet_lost(&status(StatusWord::WrongLength, "NFCCTAP_MSG")));
    }
}
