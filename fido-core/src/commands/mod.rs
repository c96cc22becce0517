//! Every CTAP 2.1 command as a type tied to its response type.
//!
//! Each request type implements [`Command`], which names its command byte, its
//! CBOR parameters and its response type (a [`ResponseData`]). Two directions are
//! covered, both sans-IO:
//!
//! - the client (platform) side: [`encode_request`] builds `command byte || CBOR`
//!   and [`decode_response`] reads `status byte || CBOR` into the typed response,
//!   turning a non-zero status into [`Error::Ctap`] losslessly;
//! - the authenticator side: [`Request::decode`] reads any request into a typed
//!   [`Request`], and [`encode_response`] / [`encode_status`] build the reply.
//!
//! Decoding is strict but tolerant of extensions to the protocol: a field with the
//! wrong CBOR type is a [`CborError::WrongType`] naming the field (for example
//! `getInfo.versions`), a missing required field is a [`CborError::MissingField`],
//! and unknown map keys are ignored.
//!
//! ```
//! use fido_core::commands::{decode_response, encode_request, GetInfo};
//!
//! assert_eq!(encode_request(&GetInfo), vec![0x04]);
//! // A key that answers with status 0x01 (invalid command):
//! let err = decode_response::<GetInfo>(&[0x01]).unwrap_err();
//! assert_eq!(err, fido_core::Error::Ctap(fido_core::CtapStatus::InvalidCommand));
//! ```
//!
//! Both sides of one exchange (what a software authenticator does in the middle):
//!
//! ```
//! use fido_core::commands::*;
//!
//! let request = encode_request(&ClientPin::GetPinRetries { pin_uv_auth_protocol: Some(2) });
//! let reply = match Request::decode(&request) {
//!     Ok(Request::ClientPin(ClientPin::GetPinRetries { .. })) => {
//!         encode_response(&ClientPinResponse { pin_retries: Some(8), ..Default::default() })
//!     }
//!     Ok(_) => encode_status(fido_core::CtapStatus::InvalidCommand),
//!     Err(e) => encode_status(status_for_request_error(&e)),
//! };
//! let answer = decode_response::<ClientPin>(&reply).unwrap();
//! assert_eq!(answer.pin_retries, Some(8));
//! ```

use crate::cbor::{self, CborError, Limits, MapRef, Value};
use crate::{CtapStatus, Error};

mod bio;
mod client_pin;
mod config;
mod cred_mgmt;
mod entities;
mod get_assertion;
mod get_info;
mod large_blobs;
mod make_credential;
mod simple;

pub use bio::{
    BioEnrollment, BioEnrollmentResponse, BioSubCommand, TemplateInfo, MODALITY_FINGERPRINT,
};
pub use client_pin::{ClientPin, ClientPinResponse};
pub use config::{AuthenticatorConfig, ConfigSubCommand};
pub use cred_mgmt::{CredMgmtSubCommand, CredentialManagement, CredentialManagementResponse};
pub use entities::{
    CredentialDescriptor, PublicKeyCredentialParameters, RpEntity, SecretBytes, UserEntity,
};
pub use get_assertion::{
    GetAssertion, GetAssertionExtensions, GetAssertionOptions, GetAssertionResponse,
    GetNextAssertion, HmacSecretInput,
};
pub use get_info::{encrypt_info_field, AuthenticatorInfo, GetInfo};
pub use large_blobs::{LargeBlobs, LargeBlobsResponse};
pub use make_credential::{
    MakeCredential, MakeCredentialExtensions, MakeCredentialOptions, MakeCredentialResponse,
};
pub use simple::{Reset, Selection};

/// authenticatorMakeCredential.
pub const CMD_MAKE_CREDENTIAL: u8 = 0x01;
/// authenticatorGetAssertion.
pub const CMD_GET_ASSERTION: u8 = 0x02;
/// authenticatorGetInfo.
pub const CMD_GET_INFO: u8 = 0x04;
/// authenticatorClientPIN.
pub const CMD_CLIENT_PIN: u8 = 0x06;
/// authenticatorReset.
pub const CMD_RESET: u8 = 0x07;
/// authenticatorGetNextAssertion.
pub const CMD_GET_NEXT_ASSERTION: u8 = 0x08;
/// authenticatorBioEnrollment.
pub const CMD_BIO_ENROLLMENT: u8 = 0x09;
/// authenticatorCredentialManagement.
pub const CMD_CREDENTIAL_MANAGEMENT: u8 = 0x0A;
/// authenticatorSelection.
pub const CMD_SELECTION: u8 = 0x0B;
/// authenticatorLargeBlobs.
pub const CMD_LARGE_BLOBS: u8 = 0x0C;
/// authenticatorConfig.
pub const CMD_CONFIG: u8 = 0x0D;
/// Prototype bioEnrollment of CTAP 2.1-PRE keys (getInfo option `userVerificationMgmtPreview`).
pub const CMD_BIO_ENROLLMENT_PROTOTYPE: u8 = 0x40;
/// Prototype credentialManagement of CTAP 2.1-PRE keys (getInfo option `credentialMgmtPreview`).
pub const CMD_CREDENTIAL_MANAGEMENT_PROTOTYPE: u8 = 0x41;

/// A response body: the CBOR after the status byte, typed.
pub trait ResponseData: Sized {
    /// Reads the response from its CBOR item (`None` when the payload was empty).
    fn from_cbor(value: Option<&Value>) -> Result<Self, Error>;
    /// The CBOR item to send (`None` for an empty payload).
    fn to_cbor(&self) -> Option<Value>;
}

/// A CTAP command tied to its response type.
pub trait Command: Sized {
    /// The standard command byte.
    const CMD: u8;
    /// What the authenticator answers.
    type Response: ResponseData;

    /// The command byte on the wire (differs from [`Command::CMD`] for prototype
    /// variants).
    fn command_byte(&self) -> u8 {
        Self::CMD
    }
    /// The CBOR parameters (`None` for commands without any).
    fn params(&self) -> Option<Value>;
    /// Reads the request from its CBOR parameters (authenticator side).
    fn decode_params(params: Option<&Value>) -> Result<Self, Error>;
}

/// The unit response of commands that answer with an empty payload (reset, selection,
/// config, setPIN, ...). Any payload an authenticator adds is ignored.
impl ResponseData for () {
    fn from_cbor(_value: Option<&Value>) -> Result<Self, Error> {
        Ok(())
    }
    fn to_cbor(&self) -> Option<Value> {
        None
    }
}

/// The request bytes: command byte followed by the canonical CBOR parameters.
pub fn encode_request<C: Command>(command: &C) -> Vec<u8> {
    let mut out = vec![command.command_byte()];
    if let Some(params) = command.params() {
        cbor::encode_into(&params, &mut out);
    }
    out
}

/// Reads a response: status byte first (non-zero gives [`Error::Ctap`] with the byte
/// kept), then the CBOR payload (which may be empty) read with [`Limits::RESPONSE`].
pub fn decode_response<C: Command>(bytes: &[u8]) -> Result<C::Response, Error> {
    let (&status, payload) = bytes
        .split_first()
        .ok_or(CborError::MissingField { field: "status" })?;
    if status != 0 {
        return Err(Error::Ctap(CtapStatus::from_u8(status)));
    }
    if payload.is_empty() {
        return C::Response::from_cbor(None);
    }
    let value = cbor::decode_with(payload, Limits::RESPONSE)?;
    C::Response::from_cbor(Some(&value))
}

/// A success response: status 0x00 followed by the canonical CBOR of `response`.
pub fn encode_response<R: ResponseData>(response: &R) -> Vec<u8> {
    let mut out = vec![0x00];
    if let Some(v) = response.to_cbor() {
        cbor::encode_into(&v, &mut out);
    }
    out
}

/// An error response: the status byte alone.
pub fn encode_status(status: CtapStatus) -> Vec<u8> {
    vec![status.to_u8()]
}

/// The status an authenticator should answer when [`Request::decode`] fails with `err`:
/// a wrong CBOR type is `CborUnexpectedType` (0x11), a missing field
/// `MissingParameter` (0x14), a disallowed value or unusable key `InvalidParameter`
/// (0x02), any other CBOR failure `InvalidCbor` (0x12); a CTAP status (unknown
/// command or subcommand) is passed through.
pub fn status_for_request_error(err: &Error) -> CtapStatus {
    match err {
        Error::Ctap(s) => *s,
        Error::Cbor(CborError::WrongType { .. }) => CtapStatus::CborUnexpectedType,
        Error::Cbor(CborError::MissingField { .. }) => CtapStatus::MissingParameter,
        Error::Cbor(CborError::InvalidValue { .. }) => CtapStatus::InvalidParameter,
        Error::Cbor(_) => CtapStatus::InvalidCbor,
        _ => CtapStatus::InvalidParameter,
    }
}

/// Any CTAP 2.1 request, as an authenticator receives it.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Request {
    /// authenticatorMakeCredential (0x01).
    MakeCredential(MakeCredential),
    /// authenticatorGetAssertion (0x02).
    GetAssertion(GetAssertion),
    /// authenticatorGetInfo (0x04).
    GetInfo(GetInfo),
    /// authenticatorClientPIN (0x06).
    ClientPin(ClientPin),
    /// authenticatorReset (0x07).
    Reset(Reset),
    /// authenticatorGetNextAssertion (0x08).
    GetNextAssertion(GetNextAssertion),
    /// authenticatorBioEnrollment (0x09, or prototype 0x40).
    BioEnrollment(BioEnrollment),
    /// authenticatorCredentialManagement (0x0A, or prototype 0x41).
    CredentialManagement(CredentialManagement),
    /// authenticatorSelection (0x0B).
    Selection(Selection),
    /// authenticatorLargeBlobs (0x0C).
    LargeBlobs(LargeBlobs),
    /// authenticatorConfig (0x0D).
    Config(AuthenticatorConfig),
}

impl Request {
    /// Reads a request: command byte, then CBOR parameters (canonical form required, as
    /// CTAP2 demands of platforms). An unknown command byte gives
    /// `Error::Ctap(CtapStatus::InvalidCommand)`, which is also the right answer to send.
    pub fn decode(bytes: &[u8]) -> Result<Request, Error> {
        let (&cmd, payload) = bytes
            .split_first()
            .ok_or(CborError::MissingField { field: "command" })?;
        let value = if payload.is_empty() {
            None
        } else {
            Some(cbor::decode_with(payload, Limits::CANONICAL)?)
        };
        let p = value.as_ref();
        Ok(match cmd {
            CMD_MAKE_CREDENTIAL => Request::MakeCredential(MakeCredential::decode_params(p)?),
            CMD_GET_ASSERTION => Request::GetAssertion(GetAssertion::decode_params(p)?),
            CMD_GET_INFO => Request::GetInfo(GetInfo::decode_params(p)?),
            CMD_CLIENT_PIN => Request::ClientPin(ClientPin::decode_params(p)?),
            CMD_RESET => Request::Reset(Reset::decode_params(p)?),
            CMD_GET_NEXT_ASSERTION => {
                Request::GetNextAssertion(GetNextAssertion::decode_params(p)?)
            }
            CMD_BIO_ENROLLMENT | CMD_BIO_ENROLLMENT_PROTOTYPE => {
                let mut b = BioEnrollment::decode_params(p)?;
                b.prototype = cmd == CMD_BIO_ENROLLMENT_PROTOTYPE;
                Request::BioEnrollment(b)
            }
            CMD_CREDENTIAL_MANAGEMENT | CMD_CREDENTIAL_MANAGEMENT_PROTOTYPE => {
                let mut c = CredentialManagement::decode_params(p)?;
                c.prototype = cmd == CMD_CREDENTIAL_MANAGEMENT_PROTOTYPE;
                Request::CredentialManagement(c)
            }
            CMD_SELECTION => Request::Selection(Selection::decode_params(p)?),
            CMD_LARGE_BLOBS => Request::LargeBlobs(LargeBlobs::decode_params(p)?),
            CMD_CONFIG => Request::Config(AuthenticatorConfig::decode_params(p)?),
            _ => return Err(Error::Ctap(CtapStatus::InvalidCommand)),
        })
    }

    /// The request bytes (same as [`encode_request`] on the inner command).
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Request::MakeCredential(c) => encode_request(c),
            Request::GetAssertion(c) => encode_request(c),
            Request::GetInfo(c) => encode_request(c),
            Request::ClientPin(c) => encode_request(c),
            Request::Reset(c) => encode_request(c),
            Request::GetNextAssertion(c) => encode_request(c),
            Request::BioEnrollment(c) => encode_request(c),
            Request::CredentialManagement(c) => encode_request(c),
            Request::Selection(c) => encode_request(c),
            Request::LargeBlobs(c) => encode_request(c),
            Request::Config(c) => encode_request(c),
        }
    }

    /// The command byte.
    pub fn command_byte(&self) -> u8 {
        match self {
            Request::MakeCredential(c) => c.command_byte(),
            Request::GetAssertion(c) => c.command_byte(),
            Request::GetInfo(c) => c.command_byte(),
            Request::ClientPin(c) => c.command_byte(),
            Request::Reset(c) => c.command_byte(),
            Request::GetNextAssertion(c) => c.command_byte(),
            Request::BioEnrollment(c) => c.command_byte(),
            Request::CredentialManagement(c) => c.command_byte(),
            Request::Selection(c) => c.command_byte(),
            Request::LargeBlobs(c) => c.command_byte(),
            Request::Config(c) => c.command_byte(),
        }
    }
}

// ---------------------------------------------------------------------------------
// Small helpers shared by the submodules.

/// The map of a request or response, treating an absent payload as an empty map.
pub(crate) fn map_or_empty<'a>(
    value: Option<&'a Value>,
    field: &'static str,
) -> Result<MapRef<'a>, CborError> {
    const EMPTY: &Value = &Value::Map(Vec::new());
    value.unwrap_or(EMPTY).as_map(field)
}

/// An optional field read with `read`.
pub(crate) fn opt<'a, T, E>(
    m: &MapRef<'a>,
    key: i64,
    read: impl FnOnce(&'a Value) -> Result<T, E>,
) -> Result<Option<T>, E> {
    m.get_int(key).map(read).transpose()
}

/// A required field read with `read`.
pub(crate) fn req<'a, T, E: From<CborError>>(
    m: &MapRef<'a>,
    key: i64,
    field: &'static str,
    read: impl FnOnce(&'a Value) -> Result<T, E>,
) -> Result<T, E> {
    read(m.require_int(key, field)?)
}

/// Builds an integer-keyed map, skipping absent fields.
#[derive(Default)]
pub(crate) struct MapBuilder(Vec<(Value, Value)>);

impl MapBuilder {
    pub(crate) fn new() -> Self {
        Self::default()
    }
    pub(crate) fn put(mut self, key: i64, v: impl Into<Value>) -> Self {
        self.0.push((Value::from(key), v.into()));
        self
    }
    pub(crate) fn put_opt<V: Into<Value>>(self, key: i64, v: Option<V>) -> Self {
        match v {
            Some(v) => self.put(key, v),
            None => self,
        }
    }
    pub(crate) fn put_text(mut self, key: &str, v: impl Into<Value>) -> Self {
        self.0.push((Value::from(key), v.into()));
        self
    }
    pub(crate) fn put_text_opt<V: Into<Value>>(self, key: &str, v: Option<V>) -> Self {
        match v {
            Some(v) => self.put_text(key, v),
            None => self,
        }
    }
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub(crate) fn build(self) -> Value {
        Value::Map(self.0)
    }
}

/// Canonical CBOR bytes of an optional subCommandParams map (empty when absent), as
/// PIN/UV auth messages need them.
pub(crate) fn params_bytes(params: Option<&Value>) -> Vec<u8> {
    params.map(cbor::encode).unwrap_or_default()
}

/// Reads an array of items with `read`.
pub(crate) fn array_of<'a, T>(
    v: &'a Value,
    field: &'static str,
    read: impl Fn(&'a Value) -> Result<T, CborError>,
) -> Result<Vec<T>, CborError> {
    v.as_array(field)?.iter().map(read).collect()
}

/// Reads a map of text keys to booleans (an options map).
pub(crate) fn bool_map(v: &Value, field: &'static str) -> Result<Vec<(String, bool)>, CborError> {
    v.as_map(field)?
        .entries()
        .iter()
        .map(|(k, v)| Ok((k.as_text(field)?.to_owned(), v.as_bool(field)?)))
        .collect()
}

#[cfg(test)]
mod tests;
