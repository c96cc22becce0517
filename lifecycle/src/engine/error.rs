//! The engine's error type: [`EngineError`] names the family, each family is a documented
//! sub-enum with its own classification.
//!
//! | variant | sub-enum | what went wrong |
//! |---|---|---|
//! | [`EngineError::Device`] | [`DeviceError`] | the security key refused or failed a command |
//! | [`EngineError::SignIn`] | — | a sign-in did not verify |
//! | [`EngineError::Lookup`] | [`LookupError`] | something the call names is not recorded or configured |
//! | [`EngineError::SelfService`] | [`SelfServiceError`] | a holder's or issuance request is refused |
//! | [`EngineError::Plan`] | [`PlanError`] | the template's plan cannot be carried out |
//! | [`EngineError::IdpEffect`] | [`IdpEffectError`] | an IdP side effect was refused or stopped the flow |
//! | [`EngineError::Job`] | [`JobError`] | a bulk job's input is malformed, or its run was stopped |
//! | [`EngineError::Journal`] | [`JournalError`] | a journal entry cannot be read |
//! | [`EngineError::SimulatedCrash`] | — | a crash-recovery test stopped the flow |
//!
//! Every sub-enum has an exhaustive `kind()` and `reason()`; [`EngineError`] delegates,
//! so [`crate::Error::kind`] and [`crate::Error::reason`] never fall through a wildcard.

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
    /// A sign-in did not verify.
    #[error("sign-in failed: {reason}")]
    SignIn {
        /// Why.
        reason: String,
    },
    /// A key, template, connection, job or record the call needs is not there.
    #[error(transparent)]
    Lookup(#[from] LookupError),
    /// A self-service or issuance request is refused.
    #[error(transparent)]
    SelfService(#[from] SelfServiceError),
    /// The template's plan cannot be carried out.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// An IdP side effect was refused or failed in a way that stops the flow.
    #[error(transparent)]
    IdpEffect(#[from] IdpEffectError),
    /// A bulk job's input is malformed.
    #[error(transparent)]
    Job(#[from] JobError),
    /// A journal entry cannot be read.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// The new credential's attestation is refused: the statement does not verify, the
    /// AAGUID differs from getInfo's, user verification is missing, or the key is not
    /// trusted as the passkey template's `attestation` setting requires. Nothing was
    /// stored or registered.
    #[error("attestation refused for passkey template {passkey_template:?}: {reason}")]
    Attestation {
        /// The passkey template.
        passkey_template: String,
        /// Why.
        reason: String,
    },
    /// The attached key proved to be another key than the one recorded under this key
    /// id: its CTAP 2.2 device identifier (or enterprise attestation certificate serial)
    /// differs from the one recorded at the key's earlier issuance. Refused before the
    /// key made a credential.
    #[error("{message}")]
    NotTheRecordedKey {
        /// The key id.
        key_id: String,
        /// What differs, and where each value comes from.
        message: String,
    },
    /// A simulated crash stopped the flow (see `Engine::crash_at`, `fault-injection`
    /// feature). The variant exists in every build so the error's shape does not change
    /// with features; only the feature's hooks ever return it.
    #[error("simulated crash at {point:?}")]
    SimulatedCrash {
        /// Where.
        point: CrashPoint,
    },
    /// A failure or refusal could not be written to the audit log: the operation fails
    /// with this error rather than go unrecorded (audits are evidence, not best effort).
    #[error("{operation_error} (and its audit record could not be written: {cause})")]
    AuditFailed {
        /// The failure or refusal that was being recorded.
        operation_error: String,
        /// Why the append failed.
        cause: crate::store::StoreError,
    },
}

/// Something the call names, or the plan needs, is not recorded or not configured.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LookupError {
    /// No key with this id is recorded.
    #[error("no key {key_id:?} is recorded")]
    UnknownKey {
        /// The key id.
        key_id: String,
    },
    /// A template names an IdP connection the engine has no connector for.
    #[error("no IdP connection named {connection:?} is configured")]
    UnknownConnection {
        /// The connection name.
        connection: String,
    },
    /// The key's credential template is not loaded in the engine.
    #[error("credential template {template:?} is not loaded")]
    UnknownTemplate {
        /// The template name.
        template: String,
    },
    /// No bulk job with this id is recorded.
    #[error("no bulk job {job_id} is recorded")]
    UnknownBulkJob {
        /// The job id.
        job_id: i64,
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
}

impl LookupError {
    /// The error's family: always [`ErrorKind::Usage`].
    pub fn kind(&self) -> ErrorKind {
        match self {
            LookupError::UnknownKey { .. }
            | LookupError::UnknownConnection { .. }
            | LookupError::UnknownTemplate { .. }
            | LookupError::UnknownBulkJob { .. }
            | LookupError::NotIssued { .. }
            | LookupError::NoTransportPin { .. }
            | LookupError::NoPendingRegistration { .. } => ErrorKind::Usage,
        }
    }

    /// The stable reason (the table in [`crate::Error`]).
    pub fn reason(&self) -> &'static str {
        match self {
            LookupError::UnknownKey { .. } => "key_not_found",
            LookupError::UnknownConnection { .. } => "connection_not_found",
            LookupError::UnknownTemplate { .. } => "template_not_found",
            LookupError::UnknownBulkJob { .. } => "job_not_found",
            LookupError::NotIssued { .. } => "key_not_issued",
            LookupError::NoTransportPin { .. } => "transport_pin_missing",
            LookupError::NoPendingRegistration { .. } => "pending_registration_missing",
        }
    }
}

/// A self-service action (PIN set, self-issuance, PIN unblock) or an issuance is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SelfServiceError {
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
    /// PIN unblock was asked for a key whose PIN is not blocked.
    #[error("the PIN is not blocked ({retries} attempts left); nothing to unblock")]
    PinNotBlocked {
        /// PIN attempts left.
        retries: u32,
    },
    /// The key's PIN is blocked; CTAP can only clear it by a reset, which destroys the
    /// passkeys, so the key was marked as needing reissue.
    #[error("the PIN of key {key_id:?} is blocked: only a reset clears it, which destroys its passkeys; the key must be reissued")]
    PinBlockedNeedsReissue {
        /// The key id.
        key_id: String,
    },
    /// The plan activates right after issuance (the template's
    /// `auto_initiate_after_issuance`), so the holder's PIN is needed; nothing was done.
    #[error("the template activates the key at issuance: the holder's PIN is needed (use issue_and_activate)")]
    HolderPinRequired,
    /// The holder's token is not an ID token: it carries `scp`, `roles` or `idtyp` (an
    /// access token), its `ver` is not 2.0, or its `azp` names another client.
    #[error("not an ID token: {claim}: {reason}")]
    NotAnIdToken {
        /// The claim that gave it away.
        claim: String,
        /// Why.
        reason: String,
    },
    /// The ID token carries no `nonce`: the sign-in was not started with
    /// `Engine::self_service_begin`.
    #[error("the ID token carries no nonce: start the sign-in with self_service_begin and send its nonce in the authorization request")]
    NonceMissing,
    /// The ID token's `nonce` is not the nonce the caller passed.
    #[error("the ID token's nonce is not the nonce of this sign-in")]
    NonceMismatch,
    /// The nonce was not handed out by `Engine::self_service_begin`, expired, or was
    /// already used.
    #[error("the nonce is unknown, expired or already used: start a new sign-in")]
    NonceUnknown,
    /// The ID token (its `uti`/`jti`) was already used: each token is good once.
    #[error("the ID token {token_id:?} was already used")]
    TokenReplayed {
        /// The token's `uti` (or `jti`).
        token_id: String,
    },
    /// The ID token has no `uti` or `jti`, so its single use cannot be enforced.
    #[error("the ID token has no uti or jti claim")]
    TokenIdMissing,
    /// The holder signed in too long ago (`auth_time` older than the template's
    /// `max_age_secs`), or the token has no `auth_time`.
    #[error("the sign-in is too old: {}, at most {max_age_secs} s allowed", match age_secs { Some(a) => format!("{a} s ago"), None => "the token has no auth_time".to_owned() })]
    SignInTooOld {
        /// Seconds since the sign-in; `None` when the token has no `auth_time`.
        age_secs: Option<u64>,
        /// The template's limit.
        max_age_secs: u64,
    },
    /// The template requires multi-factor authentication and the token shows none
    /// (`amr` without `mfa`, no accepted `acrs`).
    #[error("multi-factor authentication is required; the sign-in used {amr:?}")]
    MfaRequired {
        /// The token's `amr`.
        amr: Vec<String>,
    },
    /// The template's issuer is not the directory's Entra tenant issuer and no
    /// issuer-to-directory mapping (`oidc.directory`) is configured.
    #[error("issuer {issuer:?} is not trusted for directory {directory:?}{}", expected.as_ref().map(|e| format!(" (its tenant's issuer is {e:?})")).unwrap_or_default())]
    IssuerNotTrusted {
        /// The template's issuer.
        issuer: String,
        /// The directory connection.
        directory: String,
        /// The issuer the directory's tenant would have, when it is an Entra connection.
        expected: Option<String>,
    },
    /// The token's `tid` is not the directory connection's tenant.
    #[error("the token's tenant {tid:?} is not the directory's tenant {expected:?}")]
    TenantMismatch {
        /// The token's `tid` (`None`: absent).
        tid: Option<String>,
        /// The connection's tenant.
        expected: String,
    },
    /// The token has no `oid`: Entra sends it only when the sign-in asks for the
    /// `profile` scope.
    #[error("the ID token has no oid: sign in with scope \"openid profile\" (Entra sends oid only with the profile scope)")]
    ProfileScopeRequired,
    /// The user's account is disabled in the directory (`accountEnabled: false`).
    #[error("the account of user {user:?} is disabled in the directory")]
    AccountDisabled {
        /// The user.
        user: String,
    },
    /// The user already holds as many self-issued keys as the template allows.
    #[error("user {user:?} already holds {held} self-issued keys; the template allows {limit}")]
    SelfIssueLimit {
        /// The user.
        user: String,
        /// Self-issued keys the user holds.
        held: u32,
        /// The template's `self_issue_limit`.
        limit: u32,
    },
}

impl SelfServiceError {
    /// The error's family: [`ErrorKind::Device`] for a blocked PIN, else
    /// [`ErrorKind::Usage`].
    pub fn kind(&self) -> ErrorKind {
        match self {
            SelfServiceError::PinBlockedNeedsReissue { .. } => ErrorKind::Device,
            SelfServiceError::HolderAuth { .. }
            | SelfServiceError::SelfServiceNotAllowed { .. }
            | SelfServiceError::NotKeyOwner { .. }
            | SelfServiceError::AlreadyIssued { .. }
            | SelfServiceError::PinNotBlocked { .. }
            | SelfServiceError::HolderPinRequired
            | SelfServiceError::NotAnIdToken { .. }
            | SelfServiceError::NonceMissing
            | SelfServiceError::NonceMismatch
            | SelfServiceError::NonceUnknown
            | SelfServiceError::TokenReplayed { .. }
            | SelfServiceError::TokenIdMissing
            | SelfServiceError::SignInTooOld { .. }
            | SelfServiceError::MfaRequired { .. }
            | SelfServiceError::IssuerNotTrusted { .. }
            | SelfServiceError::TenantMismatch { .. }
            | SelfServiceError::ProfileScopeRequired
            | SelfServiceError::AccountDisabled { .. }
            | SelfServiceError::SelfIssueLimit { .. } => ErrorKind::Usage,
        }
    }

    /// The stable reason (the table in [`crate::Error`]).
    pub fn reason(&self) -> &'static str {
        match self {
            SelfServiceError::HolderAuth { .. } => "holder_auth_failed",
            SelfServiceError::SelfServiceNotAllowed { .. } => "self_service_not_allowed",
            SelfServiceError::NotKeyOwner { .. } => "not_key_owner",
            SelfServiceError::AlreadyIssued { .. } => "already_issued",
            SelfServiceError::PinNotBlocked { .. } => "pin_not_blocked",
            SelfServiceError::PinBlockedNeedsReissue { .. } => "pin_blocked",
            SelfServiceError::HolderPinRequired => "holder_pin_required",
            SelfServiceError::NotAnIdToken { .. } => "not_an_id_token",
            SelfServiceError::NonceMissing => "nonce_missing",
            SelfServiceError::NonceMismatch => "nonce_mismatch",
            SelfServiceError::NonceUnknown => "nonce_unknown",
            SelfServiceError::TokenReplayed { .. } => "token_replayed",
            SelfServiceError::TokenIdMissing => "token_id_missing",
            SelfServiceError::SignInTooOld { .. } => "sign_in_too_old",
            SelfServiceError::MfaRequired { .. } => "mfa_required",
            SelfServiceError::IssuerNotTrusted { .. } => "issuer_not_trusted",
            SelfServiceError::TenantMismatch { .. } => "tenant_mismatch",
            SelfServiceError::ProfileScopeRequired => "profile_scope_required",
            SelfServiceError::AccountDisabled { .. } => "account_disabled",
            SelfServiceError::SelfIssueLimit { .. } => "self_issue_limit_reached",
        }
    }

    /// PIN attempts left, where the refusal knows them.
    pub fn retries_left(&self) -> Option<u32> {
        match self {
            SelfServiceError::PinNotBlocked { retries } => Some(*retries),
            SelfServiceError::PinBlockedNeedsReissue { .. } => Some(0),
            SelfServiceError::HolderAuth { .. }
            | SelfServiceError::SelfServiceNotAllowed { .. }
            | SelfServiceError::NotKeyOwner { .. }
            | SelfServiceError::AlreadyIssued { .. }
            | SelfServiceError::HolderPinRequired
            | SelfServiceError::NotAnIdToken { .. }
            | SelfServiceError::NonceMissing
            | SelfServiceError::NonceMismatch
            | SelfServiceError::NonceUnknown
            | SelfServiceError::TokenReplayed { .. }
            | SelfServiceError::TokenIdMissing
            | SelfServiceError::SignInTooOld { .. }
            | SelfServiceError::MfaRequired { .. }
            | SelfServiceError::IssuerNotTrusted { .. }
            | SelfServiceError::TenantMismatch { .. }
            | SelfServiceError::ProfileScopeRequired
            | SelfServiceError::AccountDisabled { .. }
            | SelfServiceError::SelfIssueLimit { .. } => None,
        }
    }
}

/// The template's plan cannot be carried out by this engine.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
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
}

impl PlanError {
    /// The error's family: always [`ErrorKind::Template`].
    pub fn kind(&self) -> ErrorKind {
        match self {
            PlanError::DisplayName { .. } | PlanError::Unsupported { .. } => ErrorKind::Template,
        }
    }

    /// The stable reason (the table in [`crate::Error`]).
    pub fn reason(&self) -> &'static str {
        match self {
            PlanError::DisplayName { .. } => "display_name_invalid",
            PlanError::Unsupported { .. } => "unsupported",
        }
    }
}

/// An IdP side effect the flow depends on was refused or failed, so the flow stopped
/// (the IdP's own call errors are [`crate::idp::IdpError`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdpEffectError {
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
    /// A forced IdP deletion's outcome is unknown (the IdP failed or the answer was lost
    /// after the request was sent) and listing the user's passkeys could not settle it:
    /// the operation is neither cancelled nor committed. The deletion stays in the
    /// journal; [`crate::engine::Engine::replay_journal`] finishes it and the state change.
    #[error("{operation} in doubt: deleting the passkey of template {passkey_template:?} at the IdP may or may not have happened ({message}); journal replay settles it")]
    IdpDeletionInDoubt {
        /// The operation.
        operation: Operation,
        /// The passkey template.
        passkey_template: String,
        /// The IdP's errors (the deletion's, then the listing's).
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
}

impl IdpEffectError {
    /// The error's family: always [`ErrorKind::Idp`].
    pub fn kind(&self) -> ErrorKind {
        match self {
            IdpEffectError::IdpDeletionCancelled { .. }
            | IdpEffectError::IdpDeletionInDoubt { .. }
            | IdpEffectError::RpIdMismatch { .. } => ErrorKind::Idp,
        }
    }

    /// The stable reason (the table in [`crate::Error`]).
    pub fn reason(&self) -> &'static str {
        match self {
            IdpEffectError::IdpDeletionCancelled { .. } => "idp_deletion_failed",
            IdpEffectError::IdpDeletionInDoubt { .. } => "idp_deletion_in_doubt",
            IdpEffectError::RpIdMismatch { .. } => "rp_id_mismatch",
        }
    }
}

/// A bulk job's input is malformed, or its run was stopped.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JobError {
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
    /// The caller stopped the run between rows (`Engine::bulk_run_stoppable`, Ctrl-C in
    /// a binding): the rows not run yet stay to do and the job stays unfinished, so
    /// running it again (by id, or creating it from the same CSV) resumes it.
    #[error("bulk job {job_id}: stopped before every row ran ({left} left to do); run it again to resume")]
    Stopped {
        /// The job.
        job_id: i64,
        /// Rows of the job not done (pending, failed, or held by another runner).
        left: u64,
    },
    /// The key the station opened for an issue row cannot be shown to be the row's:
    /// several keys are attached, or the key's own serial is another. Nothing was done
    /// to the key.
    #[error("{message}")]
    WrongKeyForRow {
        /// Why, with the serials and where they come from.
        message: String,
    },
}

impl JobError {
    /// The error's family: [`ErrorKind::Usage`] for a malformed CSV,
    /// [`ErrorKind::Device`] for the wrong key.
    pub fn kind(&self) -> ErrorKind {
        match self {
            JobError::Csv { .. } | JobError::Stopped { .. } => ErrorKind::Usage,
            JobError::WrongKeyForRow { .. } => ErrorKind::Device,
        }
    }

    /// The stable reason (the table in [`crate::Error`]).
    pub fn reason(&self) -> &'static str {
        match self {
            JobError::Csv { .. } => "csv_invalid",
            JobError::Stopped { .. } => "bulk_stopped",
            JobError::WrongKeyForRow { .. } => "wrong_key_for_row",
        }
    }
}

/// A journal entry cannot be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JournalError {
    /// A journal entry's payload cannot be read.
    #[error("journal entry {id}: bad payload: {reason}")]
    BadJournalPayload {
        /// The entry.
        id: i64,
        /// Why.
        reason: String,
    },
}

impl JournalError {
    /// The error's family: always [`ErrorKind::Repository`].
    pub fn kind(&self) -> ErrorKind {
        match self {
            JournalError::BadJournalPayload { .. } => ErrorKind::Repository,
        }
    }

    /// The stable reason (the table in [`crate::Error`]).
    pub fn reason(&self) -> &'static str {
        match self {
            JournalError::BadJournalPayload { .. } => "journal_payload_invalid",
        }
    }
}

impl EngineError {
    /// The error's family (see [`crate::Error::kind`]).
    pub fn kind(&self) -> ErrorKind {
        match self {
            EngineError::Device { .. }
            | EngineError::SignIn { .. }
            | EngineError::Attestation { .. }
            | EngineError::NotTheRecordedKey { .. } => ErrorKind::Device,
            EngineError::Lookup(e) => e.kind(),
            EngineError::SelfService(e) => e.kind(),
            EngineError::Plan(e) => e.kind(),
            EngineError::IdpEffect(e) => e.kind(),
            EngineError::Job(e) => e.kind(),
            EngineError::Journal(e) => e.kind(),
            EngineError::SimulatedCrash { .. } => ErrorKind::Internal,
            EngineError::AuditFailed { .. } => ErrorKind::Repository,
        }
    }

    /// The stable reason (the table in [`crate::Error`]).
    pub fn reason(&self) -> &'static str {
        match self {
            EngineError::Device { cause, .. } => cause.reason(),
            EngineError::SignIn { .. } => "sign_in_failed",
            EngineError::Attestation { .. } => "attestation_refused",
            EngineError::NotTheRecordedKey { .. } => "not_the_recorded_key",
            EngineError::Lookup(e) => e.reason(),
            EngineError::SelfService(e) => e.reason(),
            EngineError::Plan(e) => e.reason(),
            EngineError::IdpEffect(e) => e.reason(),
            EngineError::Job(e) => e.reason(),
            EngineError::Journal(e) => e.reason(),
            EngineError::SimulatedCrash { .. } => "simulated_crash",
            EngineError::AuditFailed { .. } => "audit_failed",
        }
    }

    /// The CTAP status byte the security key answered, for a device failure.
    pub fn ctap_status(&self) -> Option<u8> {
        match self {
            EngineError::Device { cause, .. } => cause.ctap_status(),
            EngineError::SignIn { .. }
            | EngineError::Attestation { .. }
            | EngineError::NotTheRecordedKey { .. }
            | EngineError::Lookup(_)
            | EngineError::SelfService(_)
            | EngineError::Plan(_)
            | EngineError::IdpEffect(_)
            | EngineError::Job(_)
            | EngineError::Journal(_)
            | EngineError::SimulatedCrash { .. }
            | EngineError::AuditFailed { .. } => None,
        }
    }

    /// PIN (or built-in UV) attempts left on the key, where known.
    pub fn retries_left(&self) -> Option<u32> {
        match self {
            EngineError::Device { cause, .. } => cause.retries_left(),
            EngineError::SelfService(e) => e.retries_left(),
            EngineError::SignIn { .. }
            | EngineError::Attestation { .. }
            | EngineError::NotTheRecordedKey { .. }
            | EngineError::Lookup(_)
            | EngineError::Plan(_)
            | EngineError::IdpEffect(_)
            | EngineError::Job(_)
            | EngineError::Journal(_)
            | EngineError::SimulatedCrash { .. }
            | EngineError::AuditFailed { .. } => None,
        }
    }
}

/// `From<SubEnum> for crate::Error`, so a flow writes `LookupError::UnknownKey { .. }.into()`
/// or `?` on it.
macro_rules! into_crate_error {
    ($($sub:ident),*) => {$(
        impl From<$sub> for crate::Error {
            fn from(e: $sub) -> Self {
                crate::Error::Engine(e.into())
            }
        }
    )*};
}

into_crate_error!(
    LookupError,
    SelfServiceError,
    PlanError,
    IdpEffectError,
    JobError,
    JournalError
);
