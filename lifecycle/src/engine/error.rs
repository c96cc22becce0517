//! The engine's error type.

use super::CrashPoint;
use crate::model::CredentialState;
use crate::state::Operation;
use crate::{DeviceError, ErrorKind};

/// Engine failures that are not the planner's, the templates' or the store's.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The security key refused or failed a command; `cause` keeps the transport's
    /// error typed (CTAP status, PIN retries, cancelled, key gone).
    #[error("security key: {step} failed: {cause}")]
    Device {
        /// The CTAP operation (`getPinUvAuthToken`, `makeCredential`, ...; `open` when
        /// no device could be opened).
        step: &'static str,
        /// Why.
        cause: DeviceError,
    },
    /// A template names an IdP connection the engine has no connector for.
    #[error("no IdP connection named {connection:?} is configured")]
    UnknownConnection {
        /// The connection name.
        connection: String,
    },
    /// No key with this id is recorded.
    #[error("no key {key_id:?} is recorded")]
    UnknownKey {
        /// The key id.
        key_id: String,
    },
    /// The key's credential template is not loaded in the engine.
    #[error("credential template {template:?} is not loaded")]
    UnknownTemplate {
        /// The template name.
        template: String,
    },
    /// The key has no credential template or user recorded (not issued).
    #[error("key {key_id:?} has no {what} recorded")]
    NotIssued {
        /// The key id.
        key_id: String,
        /// `user` or `template`.
        what: &'static str,
    },
    /// The transport PIN needed for the step is not stored.
    #[error("no transport PIN is stored for key {key_id:?}")]
    NoTransportPin {
        /// The key id.
        key_id: String,
    },
    /// A pending registration the plan needs is not recorded.
    #[error(
        "no pending registration for key {key_id:?} and passkey template {passkey_template:?}"
    )]
    NoPendingRegistration {
        /// The key id.
        key_id: String,
        /// The passkey template.
        passkey_template: String,
    },
    /// The display name could not be rendered.
    #[error("{field}: {message}")]
    DisplayName {
        /// The template field.
        field: String,
        /// Why.
        message: String,
    },
    /// The template asks for something this engine does not do yet.
    #[error("{step} is not supported by this engine yet: {reason}")]
    Unsupported {
        /// The step.
        step: &'static str,
        /// Why.
        reason: String,
    },
    /// A forced IdP deletion failed, so the operation was cancelled and nothing changed.
    #[error("{operation} cancelled: deleting the passkey of template {passkey_template:?} at the IdP failed: {message}")]
    IdpDeletionCancelled {
        /// The operation cancelled.
        operation: Operation,
        /// The passkey template.
        passkey_template: String,
        /// The IdP's error.
        message: String,
        /// The IdP's request id, if any.
        request_id: Option<String>,
    },
    /// The challenge's RP id differs from the one the template pins.
    #[error("passkey template {passkey_template:?} pins RP id {pinned:?} but the IdP issued a challenge for {issued:?}")]
    RpIdMismatch {
        /// The passkey template.
        passkey_template: String,
        /// The pinned RP id.
        pinned: String,
        /// The IdP's RP id.
        issued: String,
    },
    /// A sign-in did not verify.
    #[error("sign-in failed: {reason}")]
    SignIn {
        /// Why.
        reason: String,
    },
    /// A journal entry's payload cannot be read.
    #[error("journal entry {id}: bad payload: {reason}")]
    BadJournalPayload {
        /// The entry.
        id: i64,
        /// Why.
        reason: String,
    },
    /// The plan activates right after issuance (the template's
    /// `auto_initiate_after_issuance`), so the holder's PIN is needed; nothing was done.
    #[error("the template activates the key at issuance: the holder's PIN is needed (use issue_and_activate)")]
    HolderPinRequired,
    /// The holder's ID token was refused or could not be checked (self-service);
    /// `claim` names the claim or part at fault (`exp`, `aud`, `signature`, ...).
    #[error("holder authentication failed: {claim}: {reason}")]
    HolderAuth {
        /// The claim, token part or setting at fault.
        claim: String,
        /// Why.
        reason: String,
    },
    /// The credential template does not allow this self-service action.
    #[error("credential template {template:?} does not allow {what}")]
    SelfServiceNotAllowed {
        /// The credential template.
        template: String,
        /// The action (`PIN set`, `self-issuance`, `PIN unblock`).
        what: &'static str,
    },
    /// The authenticated holder is not the user the key is issued to.
    #[error("the authenticated holder does not own key {key_id:?}")]
    NotKeyOwner {
        /// The key id.
        key_id: String,
    },
    /// Self-issuance of a key that is already issued (to anyone).
    #[error("key {key_id:?} is already issued (state {state:?}); it cannot be self-issued")]
    AlreadyIssued {
        /// The key id.
        key_id: String,
        /// Its state.
        state: CredentialState,
    },
    /// The key's PIN is blocked; CTAP can only clear it by a reset, which destroys the
    /// passkeys, so the key was marked as needing reissue.
    #[error("the PIN of key {key_id:?} is blocked: only a reset clears it, which destroys its passkeys; the key must be reissued")]
    PinBlockedNeedsReissue {
        /// The key id.
        key_id: String,
    },
    /// PIN unblock was asked for a key whose PIN is not blocked.
    #[error("the PIN is not blocked ({retries} attempts left); nothing to unblock")]
    PinNotBlocked {
        /// PIN attempts left.
        retries: u32,
    },
    /// A bulk job's CSV source is malformed (line and column are 1-based; column 0: the
    /// whole line).
    #[error("CSV line {line}, column {column}: {message}")]
    Csv {
        /// The source line.
        line: u64,
        /// The column (0 when the problem is the whole line).
        column: u64,
        /// What is wrong.
        message: String,
    },
    /// No bulk job with this id is recorded.
    #[error("no bulk job {job_id} is recorded")]
    UnknownBulkJob {
        /// The job id.
        job_id: i64,
    },
    /// A simulated crash stopped the flow (see `Engine::crash_at`, `fault-injection` feature).
    #[error("simulated crash at {point:?}")]
    SimulatedCrash {
        /// Where.
        point: CrashPoint,
    },
}

impl EngineError {
    /// The error's family (see [`crate::Error::kind`]).
    pub fn kind(&self) -> ErrorKind {
        match self {
            EngineError::Device { .. }
            | EngineError::SignIn { .. }
            | EngineError::PinBlockedNeedsReissue { .. } => ErrorKind::Device,
            EngineError::IdpDeletionCancelled { .. } | EngineError::RpIdMismatch { .. } => {
                ErrorKind::Idp
            }
            EngineError::UnknownKey { .. }
            | EngineError::UnknownConnection { .. }
            | EngineError::UnknownTemplate { .. }
            | EngineError::NotIssued { .. }
            | EngineError::NoTransportPin { .. }
            | EngineError::NoPendingRegistration { .. }
            | EngineError::HolderPinRequired
            | EngineError::HolderAuth { .. }
            | EngineError::SelfServiceNotAllowed { .. }
            | EngineError::NotKeyOwner { .. }
            | EngineError::AlreadyIssued { .. }
            | EngineError::PinNotBlocked { .. }
            | EngineError::Csv { .. }
            | EngineError::UnknownBulkJob { .. } => ErrorKind::Usage,
            EngineError::DisplayName { .. } | EngineError::Unsupported { .. } => {
                ErrorKind::Template
            }
            EngineError::BadJournalPayload { .. } => ErrorKind::Repository,
            EngineError::SimulatedCrash { .. } => ErrorKind::Internal,
        }
    }

    /// The stable reason (the table in [`crate::Error`]).
    pub fn reason(&self) -> &'static str {
        match self {
            EngineError::Device { cause, .. } => cause.reason(),
            EngineError::UnknownConnection { .. } => "connection_not_found",
            EngineError::UnknownKey { .. } => "key_not_found",
            EngineError::UnknownTemplate { .. } => "template_not_found",
            EngineError::NotIssued { .. } => "key_not_issued",
            EngineError::NoTransportPin { .. } => "transport_pin_missing",
            EngineError::NoPendingRegistration { .. } => "pending_registration_missing",
            EngineError::DisplayName { .. } => "display_name_invalid",
            EngineError::Unsupported { .. } => "unsupported",
            EngineError::IdpDeletionCancelled { .. } => "idp_deletion_failed",
            EngineError::RpIdMismatch { .. } => "rp_id_mismatch",
            EngineError::SignIn { .. } => "sign_in_failed",
            EngineError::BadJournalPayload { .. } => "journal_payload_invalid",
            EngineError::HolderPinRequired => "holder_pin_required",
            EngineError::HolderAuth { .. } => "holder_auth_failed",
            EngineError::SelfServiceNotAllowed { .. } => "self_service_not_allowed",
            EngineError::NotKeyOwner { .. } => "not_key_owner",
            EngineError::AlreadyIssued { .. } => "already_issued",
            EngineError::PinBlockedNeedsReissue { .. } => "pin_blocked",
            EngineError::PinNotBlocked { .. } => "pin_not_blocked",
            EngineError::Csv { .. } => "csv_invalid",
            EngineError::UnknownBulkJob { .. } => "job_not_found",
            EngineError::SimulatedCrash { .. } => "simulated_crash",
        }
    }

    /// The CTAP status byte the security key answered, for a device failure.
    pub fn ctap_status(&self) -> Option<u8> {
        match self {
            EngineError::Device { cause, .. } => cause.ctap_status(),
            _ => None,
        }
    }

    /// PIN (or built-in UV) attempts left on the key, where known.
    pub fn retries_left(&self) -> Option<u32> {
        match self {
            EngineError::Device { cause, .. } => cause.retries_left(),
            EngineError::PinNotBlocked { retries } => Some(*retries),
            EngineError::PinBlockedNeedsReissue { .. } => Some(0),
            _ => None,
        }
    }
}
