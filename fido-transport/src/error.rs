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
    /// The key refused a reset (CTAP 0x30 NOT_ALLOWED) because it was not powered up
    /// within the last ~10 seconds, and this transport cannot power-cycle it.
    #[error("the key accepts a reset only within about 10 seconds of being powered up: remove and reattach the key and retry within 10 seconds")]
    ReattachRequired,
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
    /// The CTAP status byte behind this error, when the authenticator sent one.
    pub fn ctap_status(&self) -> Option<CtapStatus> {
        match self {
            Error::Ctap(s) | Error::Core(fido_core::Error::Ctap(s)) => Some(*s),
            Error::PinInvalid { .. } => Some(CtapStatus::PinInvalid),
            Error::UvInvalid { .. } => Some(CtapStatus::UvInvalid),
            Error::ReattachRequired => Some(CtapStatus::NotAllowed),
            _ => None,
        }
    }
}

impl From<CtapStatus> for Error {
    fn from(s: CtapStatus) -> Self {
        Error::Ctap(s)
    }
}
