//! keysmith's device half (`docs/split-protocol.md`): what runs where the security key is
//! attached.
//!
//! * [`DeviceOps`]: the CTAP operations the flows make, implemented for
//!   [`fido_transport::client::Authenticator`], with a typed [`OpError`];
//! * [`run_steps`]: the job runner. It runs a job's steps in order, resolves each
//!   [`keysmith_wire::PinSource`] (a sealed transport PIN, the holder's UI, the session's
//!   current PIN), derives every pinUvAuthToken itself and stops at the first failure;
//! * [`DeviceSession`]: the sans-IO session. Bytes in, bytes out: it opens and checks the
//!   server's signed messages (session, order, time to live, expectations, capabilities),
//!   runs jobs and signs their results. It reads no clock (the caller passes a monotonic
//!   "now") and persists nothing.
//!
//! The crate depends on keysmith-wire, fido-core and fido-transport only: no repository,
//! no IdP client, no HTTP stack (`scripts/check-device-tree.sh` keeps it so).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod fault;
mod ops;
mod runner;
mod session;

pub use fault::{DeviceFault, OpError, KNOWN_OPS};
pub use ops::{DeviceOps, Made, Prompt};
pub use runner::{run_steps, HolderUi, HolderUiError, PinMemory, Secrets};
pub use session::{DeviceConfig, DeviceSession, Event, PendingJob, SessionError};
