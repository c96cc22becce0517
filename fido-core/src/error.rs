//! The crate's one error type.

use crate::{
    apdu::ApduError, attestation::AttestationError, authdata::AuthDataError, cbor::CborError,
    clientdata::ClientDataError, cose::CoseError, ctaphid::HidError, pin::PinError, CtapStatus,
};

/// Everything that can go wrong in fido-core. Each variant wraps the typed error of the
/// module it comes from.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Malformed, oversized or wrongly typed CBOR, naming the field where known.
    #[error(transparent)]
    Cbor(#[from] CborError),
    /// The authenticator answered with a non-success status byte (kept losslessly).
    #[error("authenticator error: {0}")]
    Ctap(CtapStatus),
    /// A COSE key is malformed or unsupported, or a signature did not verify.
    #[error(transparent)]
    Cose(#[from] CoseError),
    /// Authenticator data is malformed.
    #[error(transparent)]
    AuthData(#[from] AuthDataError),
    /// An attestation statement is malformed or does not verify.
    #[error(transparent)]
    Attestation(#[from] AttestationError),
    /// clientDataJSON is malformed or does not match what was expected.
    #[error(transparent)]
    ClientData(#[from] ClientDataError),
    /// PIN/UV auth protocol failure or a PIN that breaks the rules.
    #[error(transparent)]
    Pin(#[from] PinError),
    /// CTAPHID framing failure.
    #[error(transparent)]
    Hid(#[from] HidError),
    /// ISO 7816 / NFCCTAP APDU failure.
    #[error(transparent)]
    Apdu(#[from] ApduError),
}

impl From<CtapStatus> for Error {
    fn from(s: CtapStatus) -> Self {
        Error::Ctap(s)
    }
}
