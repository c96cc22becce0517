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

impl From<CtapStatus> for Error {
    fn from(s: CtapStatus) -> Self {
        Error::Ctap(s)
    }
}
