//! The blocking `Authenticator` client: CTAP 2.1 operations over any transport.
//!
//! [`Authenticator`] owns one [`Transport`] and drives the typed commands of
//! [`fido_core::commands`] over it: one generic path encodes a request, sends it,
//! and decodes the typed answer (a non-success status becomes [`Error::Ctap`] with the
//! byte kept). Everything it returns is owned data; secrets (PIN tokens, large-blob
//! keys) are zeroized on drop and redacted in `Debug`.
//!
//! How the pieces fit:
//! - getInfo is read once per session and cached ([`Authenticator::info`]); operations
//!   that change what it reports (setPIN, reset, authenticatorConfig) refresh it.
//! - PIN/UV auth tokens ([`Authenticator::pin_token`], [`Authenticator::uv_token`]) are
//!   requested with exactly the permissions and RP id the caller names, PIN/UV auth
//!   protocol 2 when the key offers it and 1 otherwise, and passed by reference to the
//!   operations that need them (so a token is never re-acquired behind the caller's back,
//!   which would break a credential enumeration in progress).
//! - Operations gated by getInfo (config, bio, credential management, large blobs) are
//!   refused with [`Error::Unsupported`] before anything is sent when the key does not
//!   offer them; arguments the key cannot honour are refused, never silently dropped.
//! - "Touch your key" is reported through a `progress` callback; any transaction can be
//!   cancelled from another thread with [`Authenticator::cancel_token`].
//!
//! ```no_run
//! use fido_core::pin::Permissions;
//! use fido_transport::client::Authenticator;
//! # fn demo<T: fido_transport::Transport>(transport: T) -> Result<(), fido_transport::Error> {
//! let mut key = Authenticator::new(transport);
//! if key.info()?.supports_option("clientPin") == Some(false) {
//!     key.set_pin("correct horse")?;
//! }
//! let token = key.pin_token("correct horse", Permissions::MAKE_CREDENTIAL, Some("login.microsoft.com"))?;
//! # let _ = token; Ok(()) }
//! ```

use fido_core::commands::{decode_response, encode_request, AuthenticatorInfo, Command, GetInfo};
use fido_core::pin::{Permissions, PinUvAuthToken};
use fido_core::CtapStatus;
use rand_core::OsRng;

use crate::{CancelToken, Error, Progress, Transport};

mod bio;
mod config;
mod cred_mgmt;
mod large_blob_data;
mod large_blobs;
mod lists;
mod pin;
mod replug;
mod reset;
mod webauthn;

pub use bio::{BioSensorInfo, EnrollProgress};
pub use cred_mgmt::{CredentialInfo, CredentialsMetadata, RpInfo};
pub use large_blob_data::{
    decrypt_large_blob, decrypt_large_blob_with_limit, encrypt_large_blob, LargeBlobError,
    LARGE_BLOB_KEY_LEN, LARGE_BLOB_NONCE_LEN, MAX_LARGE_BLOB_SIZE,
};
pub use large_blobs::{serialize_large_blob_array, LARGE_BLOB_HASH_LEN};
pub use pin::PinRetries;
pub use replug::{
    reset_after_replug, BoxedSlot, KeyIdentity, KeySlot, ReplugTimeouts, ResetPrompt,
};
pub use reset::reset_window;
pub use webauthn::{Assertion, GetAssertionArgs, MakeCredentialArgs, MakeCredentialResult};

/// Host-side cost counters of a session: what was sent and received, how often.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TransferStats {
    /// CTAP requests sent (each one round trip through the transport).
    pub round_trips: u64,
    /// Request bytes handed to the transport (command byte + CBOR).
    pub bytes_sent: u64,
    /// Response bytes received from the transport (status byte + CBOR).
    pub bytes_received: u64,
}

/// A blocking CTAP 2.0/2.1 client over one transport. `Send`, so a session can move to
/// a worker thread; cancel it from elsewhere with [`Authenticator::cancel_token`].
pub struct Authenticator<T: Transport> {
    transport: T,
    info: Option<AuthenticatorInfo>,
    stats: TransferStats,
    /// Where the key sits at the station, for [`Authenticator::reset_at_station`].
    station: Option<replug::Station<T>>,
}

impl<T: Transport> std::fmt::Debug for Authenticator<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("transport", &self.transport.describe())
            .field("info_cached", &self.info.is_some())
            .field("stats", &self.stats)
            .field("can_replug", &self.station.is_some())
            .finish()
    }
}

/// A progress callback that ignores everything (for commands that never wait for the
/// user).
fn no_progress(_: Progress) {}

impl<T: Transport> Authenticator<T> {
    /// A client over `transport`. Nothing is sent until the first operation.
    pub fn new(transport: T) -> Self {
        Authenticator {
            transport,
            info: None,
            stats: TransferStats::default(),
            station: None,
        }
    }

    /// The transport, for transport-specific calls.
    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// The transport, mutably.
    pub fn transport_mut(&mut self) -> &mut T {
        &mut self.transport
    }

    /// Gives the transport back.
    pub fn into_transport(self) -> T {
        self.transport
    }

    /// A token that cancels the transaction in progress (from another thread).
    pub fn cancel_token(&self) -> CancelToken {
        self.transport.cancel_token()
    }

    /// What this session has sent and received so far.
    pub fn stats(&self) -> TransferStats {
        self.stats
    }

    /// Sets the counters of [`Authenticator::stats`] back to zero.
    pub fn reset_stats(&mut self) {
        self.stats = TransferStats::default();
    }

    /// getInfo, read once per session and cached.
    pub fn info(&mut self) -> Result<&AuthenticatorInfo, Error> {
        if self.info.is_none() {
            self.refresh_info()?;
        }
        // The branch above filled the cache or returned the error.
        self.info
            .as_ref()
            .ok_or_else(|| Error::Unsupported("getInfo returned no data".into()))
    }

    /// Reads getInfo again (after anything that changes it) and caches it.
    pub fn refresh_info(&mut self) -> Result<&AuthenticatorInfo, Error> {
        self.info = None;
        let info = self.call(&GetInfo, &mut no_progress)?;
        Ok(self.info.insert(info))
    }

    /// Forgets the cached getInfo (the next operation reads it again).
    pub(crate) fn invalidate_info(&mut self) {
        self.info = None;
    }

    /// A clone of the cached getInfo (read if needed), for gate checks that then send.
    pub(crate) fn info_owned(&mut self) -> Result<AuthenticatorInfo, Error> {
        self.info().cloned()
    }

    /// The one transmit path: encode, check the size against maxMsgSize, send, decode.
    pub(crate) fn call<C: Command>(
        &mut self,
        command: &C,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<C::Response, Error> {
        let request = encode_request(command);
        if let Some(max) = self.info.as_ref().and_then(|i| i.max_msg_size) {
            if request.len() as u64 > max {
                return Err(Error::InvalidArgument(format!(
                    "the {}-byte request (command 0x{:02x}) exceeds the key's maxMsgSize of {max} bytes",
                    request.len(),
                    command.command_byte()
                )));
            }
        }
        // Only the command, sizes and status are logged: requests and answers carry PINs,
        // pinUvAuthParams, tokens and shared-secret material.
        let name = command_name(command.command_byte());
        let transport = self.transport.kind();
        let response = match self.transport.transact(&request, progress) {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(command = name, ?transport, error = %e, "CTAP exchange failed");
                return Err(e);
            }
        };
        self.stats.round_trips += 1;
        self.stats.bytes_sent += request.len() as u64;
        self.stats.bytes_received += response.len() as u64;
        let result = decode_response::<C>(&response).map_err(|e| match core_error(e) {
            // The key's answer to CTAPHID_CANCEL / NFCCTAP cancel.
            Error::Ctap(CtapStatus::KeepaliveCancel) => Error::Cancelled,
            other => other,
        });
        match &result {
            Ok(_) => tracing::debug!(
                command = name,
                ?transport,
                sent = request.len(),
                received = response.len(),
                "CTAP command"
            ),
            Err(Error::Ctap(status)) => tracing::debug!(
                command = name,
                ?transport,
                ctap_status = ?status,
                "CTAP command refused"
            ),
            Err(e) => {
                tracing::debug!(command = name, ?transport, error = %e, "CTAP command failed")
            }
        }
        result
    }

    /// authenticatorSelection: asks the user to touch this key (to pick one of several
    /// keys); `progress` reports the wait.
    pub fn selection(&mut self, progress: &mut dyn FnMut(Progress)) -> Result<(), Error> {
        self.call(&fido_core::commands::Selection, progress)
    }
}

/// A boxed transport is a transport, so `Authenticator<Box<dyn Transport>>` works for
/// callers that pick the transport at run time.
impl Transport for Box<dyn Transport> {
    fn transact(
        &mut self,
        request: &[u8],
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Vec<u8>, Error> {
        (**self).transact(request, progress)
    }
    fn cancel_token(&self) -> CancelToken {
        (**self).cancel_token()
    }
    fn kind(&self) -> crate::TransportKind {
        (**self).kind()
    }
    fn describe(&self) -> String {
        (**self).describe()
    }
    fn power_cycle(&mut self) -> Result<(), Error> {
        (**self).power_cycle()
    }
}

/// A fido-core error as this crate's error: a CTAP status stays [`Error::Ctap`].
pub(crate) fn core_error(e: fido_core::Error) -> Error {
    match e {
        fido_core::Error::Ctap(s) => Error::Ctap(s),
        other => Error::Core(other),
    }
}

/// A protocol violation by the authenticator (a field missing or inconsistent).
pub(crate) fn bad_response(field: &'static str, reason: impl Into<String>) -> Error {
    Error::Core(fido_core::Error::Cbor(
        fido_core::cbor::CborError::InvalidValue {
            field,
            reason: reason.into(),
        },
    ))
}

/// Checks that `token` holds `needed` (and, when both are bound, the same RP id), so
/// a wrong token is refused before anything is sent.
pub(crate) fn check_token(
    token: &PinUvAuthToken,
    needed: Permissions,
    rp_id: Option<&str>,
    operation: &str,
) -> Result<(), Error> {
    if !token.permissions().contains(needed) {
        return Err(Error::InvalidArgument(format!(
            "{operation} needs a PIN/UV auth token with permission(s) 0x{:02x}; this token has 0x{:02x}",
            needed.bits(),
            token.permissions().bits()
        )));
    }
    if let (Some(bound), Some(wanted)) = (token.rp_id(), rp_id) {
        if bound != wanted {
            return Err(Error::InvalidArgument(format!(
                "{operation} is for RP id {wanted:?} but the PIN/UV auth token is bound to {bound:?}"
            )));
        }
    }
    Ok(())
}

/// The random number generator used for key agreement and encryption.
pub(crate) fn rng() -> OsRng {
    OsRng
}

/// True if `e` is the CTAP status `s`.
pub(crate) fn is_status(e: &Error, s: CtapStatus) -> bool {
    matches!(e, Error::Ctap(x) if *x == s)
}

#[cfg(test)]
mod tests;

/// The CTAP command's name for logs.
fn command_name(byte: u8) -> &'static str {
    match byte {
        0x01 => "authenticatorMakeCredential",
        0x02 => "authenticatorGetAssertion",
        0x04 => "authenticatorGetInfo",
        0x06 => "authenticatorClientPIN",
        0x07 => "authenticatorReset",
        0x08 => "authenticatorGetNextAssertion",
        0x09 | 0x40 => "authenticatorBioEnrollment",
        0x0a | 0x41 => "authenticatorCredentialManagement",
        0x0b => "authenticatorSelection",
        0x0c => "authenticatorLargeBlobs",
        0x0d => "authenticatorConfig",
        _ => "vendor",
    }
}
