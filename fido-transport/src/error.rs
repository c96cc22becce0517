//! The crate's one error type.

use fido_core::CtapStatus;

/// Everything that can go wrong while talking to an authenticator.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A protocol-level failure from fido-core (framing, CBOR, PIN protocol, attestation).
    #[error(transparent)]
    Core(#[from] fido_core::Error),
    /// The authenticator answered with a non-success CTAP status (kept losslessly).
    #[error("authenticator error: {0}")]
    Ctap(CtapStatus),
    /// A wrong PIN (CTAP 0x31 PIN_INVALID), with the retry counter read afterwards.
    #[error("wrong PIN: {retries_left} attempt(s) left{}", if *.power_cycle_required {
        "; too many wrong PINs in a row: remove and reattach the key before trying again"
    } else {
        " before the PIN blocks"
    })]
    PinInvalid {
        /// Attempts left before the PIN blocks.
        retries_left: u32,
        /// Three wrong PINs in a row: the key needs a power cycle before the next try.
        power_cycle_required: bool,
    },
    /// Built-in user verification failed (CTAP 0x3E UV_INVALID), with the retries left
    /// when the key told them.
    #[error("user verification failed{}", match .retries_left {
        Some(n) => format!(": {n} attempt(s) left before built-in UV blocks"),
        None => String::new(),
    })]
    UvInvalid {
        /// Attempts left before built-in UV blocks, if known.
        retries_left: Option<u32>,
    },
    /// The key refused a reset with CTAP 0x30 NOT_ALLOWED because it was not powered up
    /// within its reset window (5 s on YubiKeys before firmware 5.5.2, 10 s on most
    /// keys), and this transport could not power-cycle it (or the power cycle did not
    /// reopen the window).
    #[error("too late, replug and try again: the key accepts a reset only within 5 to 10 seconds of being plugged in (or placed on the reader); remove and reattach the key and reset right away")]
    ReattachRequired,
    /// The key refused a reset with CTAP 0x34 PIN_AUTH_BLOCKED (YubiKey firmware answers
    /// this outside the reset window, or after wrong PINs since power-up): it takes a
    /// reset again only after it is removed and reattached. Like
    /// [`Error::ReattachRequired`], a replug helps.
    #[error("too late, replug and try again: the key blocks reset until it is removed and reattached (PIN_AUTH_BLOCKED: its reset window has passed, or a wrong PIN was entered since it was plugged in); remove and reattach the key and reset right away")]
    ResetBlocked,
    /// The key refused a reset over USB with CTAP 0x27 OPERATION_DENIED: the holder
    /// declined it on the key, or did not press and hold long enough where the key
    /// wants a long touch. Nothing was erased.
    #[error("the reset was declined at the key (OPERATION_DENIED): nothing was erased; reset again and touch the key when it blinks (press and hold it if it asks for a long touch)")]
    ResetDenied,
    /// The key does not allow reset over this transport: its getInfo
    /// `transportsForReset` leaves it out, or it answered OPERATION_DENIED (0x27) over
    /// NFC. Nothing was erased.
    #[error("this key does not allow a reset over {transport}{}: reset it over {}", match .allowed {
        Some(a) => format!(" (it allows: {})", a.join(", ")),
        None => String::new(),
    }, match .allowed {
        Some(a) if !a.is_empty() => a.join(" or "),
        _ => "USB".to_owned(),
    })]
    ResetRefused {
        /// The transport the reset was tried over (`usb`, `nfc`).
        transport: String,
        /// The transports the key lists for reset, when it lists them.
        allowed: Option<Vec<String>>,
    },
    /// After a replug, the key attached is not the one that was removed (another AAGUID,
    /// serial or getInfo): nothing was erased.
    #[error("the key attached now is not the one that was removed ({0}); attach the same key and try again")]
    DifferentKey(String),
    /// Windows (10 1903 and later) lets only elevated processes open FIDO keys over USB
    /// HID or select the FIDO applet over PC/SC, and this process is not elevated: the
    /// OS answered "Access is denied" (HID) or SCARD_E_NO_ACCESS /
    /// SCARD_W_SECURITY_VIOLATION (PC/SC). Nothing was sent to the key.
    #[error("{device}: Windows lets only elevated processes use FIDO security keys directly ({detail}). Run the keysmith agent service (it runs as LocalSystem and serves this desktop) or start this program as administrator; without either, only self-service issuance and sign-in through Windows (webauthn.dll) are possible")]
    NeedsElevation {
        /// The device path or reader name.
        device: String,
        /// What the OS said.
        detail: String,
    },
    /// The Windows WebAuthn platform API (webauthn.dll) failed, with its HRESULT and
    /// error name.
    #[error("Windows WebAuthn (webauthn.dll) failed: {name} (HRESULT 0x{hresult:08x})")]
    Platform {
        /// The HRESULT the API returned.
        hresult: u32,
        /// Its name (WebAuthNGetErrorName) or a description.
        name: String,
    },
    /// No authenticator was found (or the named one is gone).
    #[error("no authenticator found: {0}")]
    DeviceNotFound(String),
    /// The USB HID layer failed (open, read, write), with the device path.
    #[error("USB HID error on {device}: {message}")]
    Hid {
        /// The device path or description.
        device: String,
        /// What went wrong.
        message: String,
    },
    /// The PC/SC layer failed, with the reader name.
    #[error("PC/SC error on reader {reader:?}: {message}")]
    Pcsc {
        /// The reader name.
        reader: String,
        /// What went wrong.
        message: String,
    },
    /// The PC/SC service (pcscd, or the Windows Smart Card service SCardSvr) stopped or
    /// restarted under an open connection, so its context and card handle went stale.
    /// [`crate::nfc::NfcTransport`] then re-creates them (a new context, a reconnect, the
    /// applet SELECTed again) and sends a message that had not reached the key once more;
    /// this error is what is left when that failed too, or when the message may have
    /// reached the key (`sent`: it is not resent, so run the operation again).
    #[error("the PC/SC service stopped or restarted under reader {reader:?} ({message}){}", if *.sent {
        "; the message may have reached the key and was not resent: the connection was reopened, run the operation again"
    } else {
        "; reopening the connection failed too: check that the service runs and the key is on the reader"
    })]
    PcscServiceRestarted {
        /// The reader name.
        reader: String,
        /// What PC/SC said.
        message: String,
        /// The message may have reached the key (the service went away during transmit).
        sent: bool,
    },
    /// The transport is not in this build: the library was compiled without the cargo
    /// feature that links it (`nfc` for PC/SC readers, which needs libpcsclite.so.1 and a
    /// running pcscd; `hid` for USB HID).
    #[error("{transport} unavailable: this build of keysmith was made without the `{feature}` feature; {hint}")]
    TransportNotBuilt {
        /// The transport asked for (`NFC`, `USB HID`).
        transport: &'static str,
        /// The cargo feature that adds it.
        feature: &'static str,
        /// What to do about it.
        hint: &'static str,
    },
    /// A message cannot be carried by this reader/card in the configured mode.
    #[error("a {size}-byte message cannot be sent through reader {reader:?}: {reason}")]
    MessageNotCarried {
        /// The reader name.
        reader: String,
        /// The message size in bytes.
        size: usize,
        /// What the reader supports and why it does not fit.
        reason: String,
    },
    /// The device did not answer in time.
    #[error("the authenticator did not answer within {0:?}")]
    Timeout(std::time::Duration),
    /// The transaction was cancelled by the caller.
    #[error("cancelled")]
    Cancelled,
    /// The operation needs something the authenticator does not support.
    #[error("not supported by this authenticator: {0}")]
    Unsupported(String),
    /// The caller passed an invalid argument (bad PIN, bad option), with the reason.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The software authenticator's state file could not be read or written.
    #[error("state file {path}: {message}")]
    State {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// A local IO failure (socket to vpcd, files).
    #[error("{context}: {message}")]
    Io {
        /// What was being done.
        context: String,
        /// The OS error text.
        message: String,
    },
}

impl Error {
    /// True for a reset refused as too late ([`Error::ReattachRequired`],
    /// [`Error::ResetBlocked`]): removing and reattaching the key helps.
    pub fn needs_replug(&self) -> bool {
        matches!(self, Error::ReattachRequired | Error::ResetBlocked)
    }

    /// The CTAP status byte behind this error, when the authenticator sent one.
    pub fn ctap_status(&self) -> Option<CtapStatus> {
        match self {
            Error::Ctap(s) | Error::Core(fido_core::Error::Ctap(s)) => Some(*s),
            Error::PinInvalid { .. } => Some(CtapStatus::PinInvalid),
            Error::UvInvalid { .. } => Some(CtapStatus::UvInvalid),
            Error::ReattachRequired => Some(CtapStatus::NotAllowed),
            Error::ResetBlocked => Some(CtapStatus::PinAuthBlocked),
            Error::ResetRefused { .. } | Error::ResetDenied => Some(CtapStatus::OperationDenied),
            _ => None,
        }
    }
}

impl From<CtapStatus> for Error {
    fn from(s: CtapStatus) -> Self {
        Error::Ctap(s)
    }
}
