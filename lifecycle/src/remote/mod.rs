//! The split between the server half and the device half (`docs/split-protocol.md`),
//! as the engine uses it today: every device step of a flow runs as a signed job through
//! [`keysmith_device::DeviceSession`], carried as bytes in memory by a `LocalLink`.
//!
//! The engine's in-process API (`Engine::issue(.., device, ..)` and the others) keeps its
//! signatures; inside, each call opens a link: a fresh session (AgentHello, ServerHello,
//! DeviceReport), then one job per run of consecutive device steps. What stays on the
//! server side: the transport PIN is generated, sealed under the PIN key and stored before
//! the job carrying it (sealed to the session key) is signed; client data JSON is built
//! here; attestation is verified here on the returned attestation object. The holder's PIN
//! goes from the in-process caller to the device half's UI callback and never into a
//! message.

mod channel;
mod link;
pub(crate) use link::parse_info;

use std::time::Duration;

use keysmith_device::{DeviceFault, OpError, SessionError};
use keysmith_wire::WireError;

use crate::engine::EngineError;
use crate::Error;

pub(crate) use channel::{JobSpec, ServerChannel};
pub(crate) use link::LocalLink;

use fido_core::commands::AuthenticatorInfo;
use keysmith_wire::Outcome;

/// The engine's end of a session with a device half: the key's getInfo from the device
/// report, whether the holder's UI can answer PIN questions, and jobs run to checked
/// outcomes. [`LocalLink`] connects the halves in memory; the coordinator's link carries
/// the same jobs to a remote device half.
pub(crate) trait DeviceLink {
    /// getInfo as the device report gave it.
    fn info(&self) -> &AuthenticatorInfo;
    /// The device half's UI can answer "the holder's (new) PIN".
    fn has_holder_pin(&self) -> bool;
    /// The device half reported raw CTAP access (not only a platform WebAuthn API): PIN,
    /// policy, reset and fingerprint steps can run there.
    fn raw_ctap(&self) -> bool;
    /// The device session holds the key's current PIN (`PinSource::Current` works).
    fn current_known(&self) -> bool;
    /// Records whether the device session holds the key's current PIN.
    fn set_current_known(&mut self, known: bool);
    /// Signs and sends `spec`, lets the device half run it, and returns its checked
    /// outcomes (one per step).
    fn run(&mut self, spec: JobSpec) -> Result<Vec<Outcome>, Error>;
    /// The flow registers with the holder's own delegated token, which the device half
    /// holds (delegated registration): creation options and the registration go through
    /// [`DeviceLink::holder_call`]. Default: no.
    fn delegated(&self) -> bool {
        false
    }
    /// One of the holder's own IdP calls, made by the device half with the holder's
    /// token: what the IdP answered, as the device half relays it (a claim).
    fn holder_call(
        &mut self,
        op: keysmith_wire::HolderGraphOp,
        body: Option<String>,
    ) -> Result<crate::idp::RelayedAnswer, Error> {
        let _ = (op, body);
        Err(LinkError::Unexpected("this link carries no holder IdP calls").into())
    }
    /// The key's CTAP 2.2 device identifier read with `pin` (see
    /// `keysmith_device::DeviceOps::device_identifier`); `None` when the key offers none
    /// or the device half cannot be asked (the default: a remote device half has no job
    /// step for it yet).
    fn device_identifier(&mut self, pin: &str) -> Result<Option<Vec<u8>>, Error> {
        let _ = pin;
        Ok(None)
    }
}
#[cfg(feature = "fault-injection")]
pub use link::{with_relay, Relay};

/// How long a job may wait at the device half before it runs (its `ttl_ms` and
/// `deadline_ms`).
pub(crate) const JOB_TTL_MS: u64 = 10 * 60 * 1000;

/// Why a message exchange over the link failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LinkError {
    /// The codec refused the bytes (signature, key, structure, session, order).
    #[error("{0}")]
    Wire(#[from] WireError),
    /// The device half refused a message.
    #[error("{0}")]
    Session(#[from] SessionError),
    /// A message that does not fit the exchange.
    #[error("unexpected message: {0}")]
    Unexpected(&'static str),
    /// Nothing acceptable came back.
    #[error("the device half did not answer the job")]
    NoAnswer,
    /// The device half aborted the job before running it.
    #[error("the device half aborted the job ({reason}){}", .detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    Aborted {
        /// `cancelled`, `key_removed`, `wrong_key`, `ttl_expired`, `unsupported`.
        reason: String,
        /// The device half's detail.
        detail: Option<String>,
    },
}

impl From<OpError> for Error {
    fn from(e: OpError) -> Self {
        EngineError::Device {
            step: e.op,
            cause: e.fault.into(),
        }
        .into()
    }
}

impl From<LinkError> for Error {
    fn from(e: LinkError) -> Self {
        let (step, cause) = match e {
            LinkError::Session(SessionError::Device(op)) => return op.into(),
            LinkError::Aborted { reason, detail } => {
                let message = detail.unwrap_or_else(|| reason.clone());
                let fault = match reason.as_str() {
                    "wrong_key" => DeviceFault::WrongKey,
                    "cancelled" => DeviceFault::Cancelled,
                    "ttl_expired" => DeviceFault::Timeout(Duration::from_millis(JOB_TTL_MS)),
                    "key_removed" => DeviceFault::NotFound { message },
                    "unsupported" => DeviceFault::Unsupported { message },
                    _ => DeviceFault::Other { message },
                };
                ("job", fault)
            }
            other => (
                "link",
                DeviceFault::Io {
                    message: format!("split link: {other}"),
                },
            ),
        };
        EngineError::Device {
            step,
            cause: cause.into(),
        }
        .into()
    }
}
