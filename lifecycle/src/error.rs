//! The crate's one error type, its classification ([`ErrorKind`], [`Error::reason`]) and
//! the typed cause of a security key failure ([`DeviceError`]).

use fido_core::CtapStatus;
use keysmith_device::DeviceFault;

use crate::diagnostics::DiagnosticsError;
use crate::idp::IdpError;
use crate::state::TransitionError;
use crate::store::StoreError;
use crate::template::TemplateError;

/// Everything that can go wrong in the lifecycle engine.
///
/// Programs branch on [`Error::kind`] (the family) and [`Error::reason`] (a stable
/// snake_case word), and read [`Error::ctap_status`] and [`Error::retries_left`] where the
/// security key told them; the message ([`std::fmt::Display`]) is for people.
///
/// # Reasons
///
/// Every variant has one reason; the list is stable (reasons are added, never renamed).
///
/// | kind | reason | when |
/// |---|---|---|
/// | device | `pin_invalid` | wrong PIN (CTAP 0x31); `retries_left` says how many tries are left ([`DeviceError::power_cycle_required`]: reattach before the next) |
/// | device | `pin_blocked` | the PIN is blocked (CTAP 0x32, or found blocked by PIN unblock); `retries_left` 0 |
/// | device | `pin_auth_blocked` | too many wrong PINs in a row (CTAP 0x34): reattach the key before trying again |
/// | device | `pin_not_set` | the key has no PIN (CTAP 0x35) |
/// | device | `pin_policy_violation` | the key refuses the PIN: too short for its minimum, or it must be changed first (CTAP 0x37) |
/// | device | `pin_format_invalid` | the PIN breaks CTAP's rules before it is sent (too short, too long, NUL) |
/// | device | `pin_auth_invalid` | the PIN/UV auth parameter failed verification (CTAP 0x33) |
/// | device | `uv_invalid` | built-in user verification failed (CTAP 0x3E); `retries_left` where known |
/// | device | `uv_blocked` | built-in user verification is blocked (CTAP 0x3B) |
/// | device | `cancelled` | the wait for the user was cancelled (by the caller, or CTAP 0x2D) |
/// | device | `timeout` | the key or the user did not answer in time (CTAP 0x05, 0x2F, 0x3A) |
/// | device | `operation_denied` | the user or the key's policy denied the operation (CTAP 0x27) |
/// | device | `no_credentials` | no matching credential on the key (CTAP 0x2E) |
/// | device | `credential_excluded` | a credential of the exclude list is already on the key (CTAP 0x19) |
/// | device | `key_store_full` | the key's credential storage is full (CTAP 0x28) |
/// | device | `reattach_required` | a reset is accepted only within seconds of power-up (CTAP 0x30) |
/// | device | `reset_blocked` | a reset refused with PIN_AUTH_BLOCKED (CTAP 0x34): too late, replug the key and reset right away |
/// | device | `reset_denied` | a reset declined at the key over USB (CTAP 0x27); nothing erased |
/// | device | `reset_refused` | the key does not allow a reset over this transport (`transportsForReset`, or 0x27 over NFC); nothing erased |
/// | device | `different_key` | after a replug another key was attached than the one removed; nothing erased |
/// | device | `needs_elevation` | the OS lets only elevated processes open the key (Windows): run the keysmith agent service or elevate |
/// | device | `platform_error` | the platform WebAuthn API (Windows webauthn.dll) failed |
/// | device | `not_allowed` | the key does not allow the command now (CTAP 0x30) |
/// | device | `ctap_error` | any other CTAP status; `ctap_status` has the byte |
/// | device | `device_not_found` | no key found, the key or card was removed (unplugged), or no device could be opened |
/// | device | `wrong_key` | the attached key is not the recorded key's model |
/// | device | `device_unsupported` | the key or reader cannot do what is asked |
/// | device | `invalid_argument` | the transport refused an argument |
/// | device | `device_io` | USB HID, PC/SC, socket or state file failure |
/// | device | `protocol_error` | malformed answer (CBOR, COSE, attestation, framing) |
/// | device | `device_error` | a transport failure this version does not classify further |
/// | device | `sign_in_failed` | a sign-in did not verify |
/// | device | `wrong_key_for_row` | a bulk issue row's key cannot be shown to be the row's: several keys attached, or the key reports (or proves) another serial or identity |
/// | device | `not_the_recorded_key` | the attached key proved (CTAP 2.2 device identifier, enterprise attestation certificate) to be another key than the one recorded under this key id; refused before it made a credential |
/// | usage | `connection_not_found` | a template names an IdP connection that is not configured |
/// | usage | `key_not_found` | no key with this id is recorded |
/// | usage | `template_not_found` | the credential template is not loaded |
/// | usage | `key_not_issued` | the key has no user or template recorded |
/// | usage | `transport_pin_missing` | no transport PIN is stored for the key |
/// | usage | `pending_registration_missing` | a pending registration the plan needs is not recorded |
/// | usage | `holder_pin_required` | the template activates at issuance: the holder's PIN is needed |
/// | usage | `holder_auth_failed` | the holder's ID token was refused (self-service) |
/// | usage | `self_service_not_allowed` | the template does not allow this self-service action |
/// | usage | `not_key_owner` | the authenticated holder does not own the key |
/// | usage | `already_issued` | self-issuance of a key already issued |
/// | usage | `pin_not_blocked` | PIN unblock of a key whose PIN is not blocked; `retries_left` |
/// | usage | `not_an_id_token` | the holder's token is an access token (`scp`, `roles`, `idtyp`), not v2.0, or for another client (`azp`) |
/// | usage | `nonce_missing` | the holder's ID token carries no nonce |
/// | usage | `nonce_mismatch` | the ID token's nonce is not the one passed |
/// | usage | `nonce_unknown` | the nonce was not handed out here, expired or was already used |
/// | usage | `token_replayed` | the ID token (its `uti`/`jti`) was already used |
/// | usage | `token_id_missing` | the ID token has no `uti`/`jti` |
/// | usage | `sign_in_too_old` | the holder's `auth_time` is older than the template's `max_age_secs` (or missing) |
/// | usage | `mfa_required` | the sign-in used no multi-factor authentication (`amr`/`acrs`) |
/// | usage | `issuer_not_trusted` | the OIDC issuer is not the directory's tenant and has no issuer-to-directory mapping |
/// | usage | `tenant_mismatch` | the token's `tid` is not the directory's tenant |
/// | usage | `profile_scope_required` | the ID token has no `oid` (sign in with the `profile` scope) |
/// | usage | `account_disabled` | the user's directory account is disabled (`accountEnabled: false`) |
/// | usage | `self_issue_limit_reached` | the user holds as many self-issued keys as the template allows |
/// | usage | `csv_invalid` | a bulk job's CSV is malformed |
/// | usage | `bulk_stopped` | the caller stopped a bulk run between rows; the job resumes when run again |
/// | usage | `job_not_found` | no bulk job with this id is recorded |
/// | usage | `log_config_invalid` | a log setting is invalid |
/// | usage | `log_subscriber_conflict` | another `tracing` subscriber is installed |
/// | usage | `log_file_failed` | the log file could not be opened |
/// | usage | `log_reload_failed` | the log filter could not be switched |
/// | idp | `idp_throttled` | the IdP answered HTTP 429 |
/// | idp | `idp_access_denied` | the IdP answered HTTP 401 or 403 |
/// | idp | `idp_unreachable` | the IdP could not be reached (no HTTP answer) |
/// | idp | `idp_call_failed` | any other failed IdP call |
/// | idp | `request_unsendable` | the IdP request could not even be built (e.g. a user name too long for a URL); it was never sent |
/// | idp | `challenge_expired` | the IdP refused a registration whose challenge expired |
/// | idp | `idp_policy_refused` | the IdP's policy does not admit the key |
/// | idp | `idp_bad_answer` | the IdP answered something unusable |
/// | idp | `idp_deletion_failed` | a forced IdP deletion failed; the operation was cancelled |
/// | idp | `idp_deletion_in_doubt` | a forced IdP deletion's outcome is unknown; journal replay settles it |
/// | idp | `rp_id_mismatch` | the challenge's RP id differs from the template's |
/// | repository | `record_not_found` | a record that must exist does not |
/// | repository | `conflict` | the key changed since it was read (another station won) |
/// | repository | `journal_closed` | a journal entry was already closed |
/// | repository | `journal_busy` | another station holds a journal entry's lease |
/// | repository | `bulk_claim_lost` | another bulk runner took over the row this one held |
/// | repository | `journal_claim_lost` | a station's journal claim was taken over before it closed the entry |
/// | repository | `duplicate` | a record with the same identity exists |
/// | repository | `corrupt_record` | a stored value cannot be read back |
/// | repository | `crypto_failure` | sealing or opening a secret failed |
/// | repository | `integrity_failure` | a row sent to the IdP failed its MAC check (altered outside keysmith, or not yet adopted after an upgrade); nothing was sent |
/// | repository | `audit_failed` | a failure or refusal could not be written to the audit log |
/// | repository | `database_error` | the database failed |
/// | repository | `migration_failed` | a schema migration failed |
/// | repository | `invalid_value` | a value is outside what the repository accepts |
/// | repository | `insecure_connection` | plaintext to a database host that is not loopback was refused |
/// | repository | `tls_failed` | the database's TLS certificate was not trusted or the handshake failed |
/// | repository | `insecure_file` | a secret file may be read by group or others |
/// | repository | `repository_gone` | the database file was deleted or replaced while open |
/// | repository | `repository_damaged` | the database's integrity check failed |
/// | repository | `journal_payload_invalid` | a journal entry's payload cannot be read |
/// | template | `template_unreadable` | the template file cannot be read, is too large or has an unknown extension |
/// | template | `template_malformed` | the document does not parse or names an unknown field |
/// | template | `template_invalid` | the template breaks one or more rules |
/// | template | `display_name_invalid` | the display name could not be rendered |
/// | template | `unsupported` | the template asks for something the engine does not do yet |
/// | transition | `transition_not_allowed` | the state machine has no such transition |
/// | transition | `challenge_expired` | a pending registration expired before activation |
/// | transition | `needs_reissue` | the key is marked as needing reissue |
/// | transition | `device_facts_required` | the operation needs the attached key's facts |
/// | internal | `simulated_crash` | a test's simulated crash stopped the flow |
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A template failed validation; every problem is listed with its field.
    #[error(transparent)]
    Template(#[from] TemplateError),
    /// An action is not allowed in the key's current state.
    #[error(transparent)]
    Transition(#[from] TransitionError),
    /// The repository failed or refused (conflict, not found, corrupt record).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The engine failed (device, configuration, cancelled operation, sign-in).
    #[error(transparent)]
    Engine(#[from] crate::engine::EngineError),
    /// An identity provider refused or failed a call.
    #[error(transparent)]
    Idp(#[from] IdpError),
    /// Logging could not be set up or switched.
    #[error(transparent)]
    Diagnostics(#[from] DiagnosticsError),
}

/// The family of an [`Error`], for programs that branch on it (the bindings map it 1:1
/// to their error kinds and exit codes).
///
/// Deliberately not `#[non_exhaustive]`: a new kind is a breaking change, so that every
/// binding has to classify it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// Bad input: unknown key, template, connection or job, an action the caller may not
    /// take, malformed CSV or log settings.
    Usage,
    /// The security key or its transport failed (see [`DeviceError`]), or a sign-in did
    /// not verify.
    Device,
    /// The identity provider refused or failed.
    Idp,
    /// The repository failed or refused.
    Repository,
    /// A template is invalid or asks for something unsupported.
    Template,
    /// The action is not allowed in the key's state.
    Transition,
    /// A bug or a simulated failure.
    Internal,
}

impl ErrorKind {
    /// The stable lower-case name (`usage`, `device`, ...).
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Usage => "usage",
            ErrorKind::Device => "device",
            ErrorKind::Idp => "idp",
            ErrorKind::Repository => "repository",
            ErrorKind::Template => "template",
            ErrorKind::Transition => "transition",
            ErrorKind::Internal => "internal",
        }
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Error {
    /// The error's family.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Template(_) => ErrorKind::Template,
            Error::Transition(_) => ErrorKind::Transition,
            Error::Store(_) => ErrorKind::Repository,
            Error::Engine(e) => e.kind(),
            Error::Idp(_) => ErrorKind::Idp,
            Error::Diagnostics(_) => ErrorKind::Usage,
        }
    }

    /// Why, as a stable snake_case word (the table in [`Error`]'s documentation).
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Template(e) => template_reason(e),
            Error::Transition(e) => transition_reason(e),
            Error::Store(e) => store_reason(e),
            Error::Engine(e) => e.reason(),
            Error::Idp(e) => idp_reason(e),
            Error::Diagnostics(e) => diagnostics_reason(e),
        }
    }

    /// The CTAP status byte the security key answered, where the failure is the key's.
    pub fn ctap_status(&self) -> Option<u8> {
        match self {
            Error::Engine(e) => e.ctap_status(),
            Error::Template(_)
            | Error::Transition(_)
            | Error::Store(_)
            | Error::Idp(_)
            | Error::Diagnostics(_) => None,
        }
    }

    /// PIN (or built-in UV) attempts left on the key, where known.
    pub fn retries_left(&self) -> Option<u32> {
        match self {
            Error::Engine(e) => e.retries_left(),
            Error::Template(_)
            | Error::Transition(_)
            | Error::Store(_)
            | Error::Idp(_)
            | Error::Diagnostics(_) => None,
        }
    }
}

fn template_reason(e: &TemplateError) -> &'static str {
    match e {
        TemplateError::Io { .. }
        | TemplateError::TooLarge { .. }
        | TemplateError::UnknownFormat { .. } => "template_unreadable",
        TemplateError::UnknownField { .. } | TemplateError::Parse { .. } => "template_malformed",
        TemplateError::Invalid(_) => "template_invalid",
    }
}

fn transition_reason(e: &TransitionError) -> &'static str {
    match e {
        TransitionError::NotAllowed { .. } => "transition_not_allowed",
        TransitionError::ChallengeExpired { .. } => "challenge_expired",
        TransitionError::NeedsReissue => "needs_reissue",
        TransitionError::DeviceFactsRequired { .. } => "device_facts_required",
    }
}

fn store_reason(e: &StoreError) -> &'static str {
    match e {
        StoreError::NotFound { .. } => "record_not_found",
        StoreError::Conflict { .. } => "conflict",
        StoreError::JournalClosed { .. } => "journal_closed",
        StoreError::JournalBusy { .. } => "journal_busy",
        StoreError::ClaimLost { .. } => "bulk_claim_lost",
        StoreError::JournalClaimLost { .. } => "journal_claim_lost",
        StoreError::Duplicate { .. } => "duplicate",
        StoreError::Corrupt { .. } => "corrupt_record",
        StoreError::Crypto { .. } => "crypto_failure",
        StoreError::Integrity { .. } => "integrity_failure",
        StoreError::Backend(_) => "database_error",
        StoreError::Migration { .. } => "migration_failed",
        StoreError::Invalid { .. } => "invalid_value",
        StoreError::InsecureConnection { .. } => "insecure_connection",
        StoreError::Tls { .. } => "tls_failed",
        StoreError::InsecureFile { .. } => "insecure_file",
        StoreError::RepositoryGone { .. } => "repository_gone",
        StoreError::Damaged { .. } => "repository_damaged",
    }
}

fn idp_reason(e: &IdpError) -> &'static str {
    match e {
        IdpError::Call { status, .. } => match status {
            Some(429) => "idp_throttled",
            Some(401 | 403) => "idp_access_denied",
            Some(_) => "idp_call_failed",
            None => "idp_unreachable",
        },
        IdpError::ChallengeExpired { .. } => "challenge_expired",
        IdpError::Unsendable { .. } => "request_unsendable",
        IdpError::Policy { .. } => "idp_policy_refused",
        IdpError::BadAnswer { .. } => "idp_bad_answer",
    }
}

fn diagnostics_reason(e: &DiagnosticsError) -> &'static str {
    match e {
        DiagnosticsError::InvalidConfig { .. } => "log_config_invalid",
        DiagnosticsError::ForeignSubscriber => "log_subscriber_conflict",
        DiagnosticsError::File { .. } => "log_file_failed",
        DiagnosticsError::Reload { .. } => "log_reload_failed",
    }
}

/// Why a security key command failed: the device half's [`DeviceFault`], kept typed (CTAP
/// status, PIN retries, cancellation, a key gone) with lifecycle's reason for it. The
/// message is the fault's, which is the transport's.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DeviceError {
    /// The fault as the device half classified it (in process, or reported across the
    /// split); every kind of fault is one of its variants.
    #[error(transparent)]
    Fault(DeviceFault),
}

impl DeviceError {
    /// The fault.
    pub fn fault(&self) -> &DeviceFault {
        match self {
            DeviceError::Fault(f) => f,
        }
    }

    /// The stable reason (see the table in [`Error`]).
    ///
    /// No wildcard: [`DeviceFault`] is exhaustive, so a fault added to the device half
    /// must be given its reason here.
    pub fn reason(&self) -> &'static str {
        match self.fault() {
            DeviceFault::PinInvalid { .. } => "pin_invalid",
            DeviceFault::UvInvalid { .. } => "uv_invalid",
            DeviceFault::Ctap(s) => ctap_reason(*s),
            DeviceFault::ReattachRequired => "reattach_required",
            DeviceFault::ResetBlocked => "reset_blocked",
            DeviceFault::ResetDenied => "reset_denied",
            DeviceFault::ResetRefused { .. } => "reset_refused",
            DeviceFault::DifferentKey { .. } => "different_key",
            DeviceFault::NeedsElevation { .. } => "needs_elevation",
            DeviceFault::Platform { .. } => "platform_error",
            DeviceFault::Cancelled => "cancelled",
            DeviceFault::Timeout(_) => "timeout",
            DeviceFault::NotFound { .. } => "device_not_found",
            DeviceFault::WrongKey => "wrong_key",
            DeviceFault::PinFormat { .. } => "pin_format_invalid",
            DeviceFault::Unsupported { .. } => "device_unsupported",
            DeviceFault::InvalidArgument { .. } => "invalid_argument",
            DeviceFault::Io { .. } => "device_io",
            DeviceFault::Protocol { .. } => "protocol_error",
            DeviceFault::Other { .. } => "device_error",
        }
    }

    /// The CTAP status byte the key answered, if it answered one.
    pub fn ctap_status(&self) -> Option<u8> {
        self.fault().ctap_status()
    }

    /// PIN (or built-in UV) attempts left, where the key told them (0 for a blocked PIN).
    pub fn retries_left(&self) -> Option<u32> {
        match self.fault() {
            DeviceFault::Ctap(CtapStatus::PinBlocked) => Some(0),
            f => f.retries_left(),
        }
    }

    /// The key needs to be removed and reattached before the next PIN try.
    pub fn power_cycle_required(&self) -> bool {
        matches!(
            self.fault(),
            DeviceFault::PinInvalid {
                power_cycle_required: true,
                ..
            } | DeviceFault::Ctap(CtapStatus::PinAuthBlocked)
                | DeviceFault::ReattachRequired
                | DeviceFault::ResetBlocked
        )
    }
}

/// The reason of a CTAP status (statuses are a byte, so unnamed ones are `ctap_error`).
fn ctap_reason(s: CtapStatus) -> &'static str {
    match s {
        CtapStatus::PinInvalid => "pin_invalid",
        CtapStatus::PinBlocked => "pin_blocked",
        CtapStatus::PinAuthBlocked => "pin_auth_blocked",
        CtapStatus::PinNotSet => "pin_not_set",
        CtapStatus::PinPolicyViolation => "pin_policy_violation",
        CtapStatus::PinAuthInvalid => "pin_auth_invalid",
        CtapStatus::UvInvalid => "uv_invalid",
        CtapStatus::UvBlocked => "uv_blocked",
        CtapStatus::KeepaliveCancel => "cancelled",
        CtapStatus::Timeout | CtapStatus::UserActionTimeout | CtapStatus::ActionTimeout => {
            "timeout"
        }
        CtapStatus::OperationDenied => "operation_denied",
        CtapStatus::NoCredentials => "no_credentials",
        CtapStatus::CredentialExcluded => "credential_excluded",
        CtapStatus::KeyStoreFull => "key_store_full",
        CtapStatus::NotAllowed => "not_allowed",
        _ => "ctap_error",
    }
}

impl From<DeviceFault> for DeviceError {
    fn from(fault: DeviceFault) -> Self {
        DeviceError::Fault(fault)
    }
}

impl From<fido_transport::Error> for DeviceError {
    /// Classified once, by the device half ([`DeviceFault`]).
    fn from(e: fido_transport::Error) -> Self {
        DeviceFault::from(e).into()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::engine::{EngineError, LookupError, SelfServiceError};

    #[test]
    fn a_wrong_pin_stays_typed_through_the_engine_error() {
        let transport = fido_transport::Error::PinInvalid {
            retries_left: 5,
            power_cycle_required: false,
        };
        let text = transport.to_string();
        let e = Error::from(EngineError::Device {
            step: "getPinUvAuthToken",
            cause: transport.into(),
        });
        assert_eq!(e.kind(), ErrorKind::Device);
        assert_eq!(e.reason(), "pin_invalid");
        assert_eq!(e.retries_left(), Some(5));
        assert_eq!(e.ctap_status(), Some(0x31));
        assert_eq!(
            e.to_string(),
            format!("security key: getPinUvAuthToken failed: {text}")
        );
    }

    #[test]
    fn transport_errors_keep_their_status_and_message() {
        use fido_transport::Error as T;
        let cases: Vec<(T, &str, Option<u8>, Option<u32>)> = vec![
            (
                T::Ctap(CtapStatus::PinBlocked),
                "pin_blocked",
                Some(0x32),
                Some(0),
            ),
            (
                T::Ctap(CtapStatus::PinAuthBlocked),
                "pin_auth_blocked",
                Some(0x34),
                None,
            ),
            (
                T::Ctap(CtapStatus::KeepaliveCancel),
                "cancelled",
                Some(0x2D),
                None,
            ),
            (T::Cancelled, "cancelled", None, None),
            (T::Timeout(Duration::from_secs(3)), "timeout", None, None),
            (
                T::DeviceNotFound("/dev/hidraw9".into()),
                "device_not_found",
                None,
                None,
            ),
            (T::ReattachRequired, "reattach_required", Some(0x30), None),
            (
                T::UvInvalid {
                    retries_left: Some(2),
                },
                "uv_invalid",
                Some(0x3E),
                Some(2),
            ),
            (
                T::Ctap(CtapStatus::Other(0xF2)),
                "ctap_error",
                Some(0xF2),
                None,
            ),
            (
                T::Core(fido_core::pin::PinError::TooShort { min: 4, actual: 2 }.into()),
                "pin_format_invalid",
                None,
                None,
            ),
            (
                T::Hid {
                    device: "/dev/hidraw0".into(),
                    message: "broken pipe".into(),
                },
                "device_io",
                None,
                None,
            ),
        ];
        for (t, reason, status, retries) in cases {
            let text = t.to_string();
            let d = DeviceError::from(t);
            assert_eq!(d.to_string(), text);
            assert_eq!(d.reason(), reason, "{text}");
            assert_eq!(d.ctap_status(), status, "{text}");
            assert_eq!(d.retries_left(), retries, "{text}");
        }
        assert!(DeviceError::from(T::PinInvalid {
            retries_left: 4,
            power_cycle_required: true
        })
        .power_cycle_required());
    }

    #[test]
    fn every_family_is_classified() {
        let cases: Vec<(Error, ErrorKind, &str)> = vec![
            (
                EngineError::Lookup(LookupError::UnknownKey { key_id: "k".into() }).into(),
                ErrorKind::Usage,
                "key_not_found",
            ),
            (
                EngineError::SelfService(SelfServiceError::NotKeyOwner { key_id: "k".into() })
                    .into(),
                ErrorKind::Usage,
                "not_key_owner",
            ),
            (
                EngineError::SelfService(SelfServiceError::PinBlockedNeedsReissue {
                    key_id: "k".into(),
                })
                .into(),
                ErrorKind::Device,
                "pin_blocked",
            ),
            (
                TransitionError::ChallengeExpired {
                    passkey_template: "entra".into(),
                    expired_at_ms: 1,
                    now_ms: 2,
                }
                .into(),
                ErrorKind::Transition,
                "challenge_expired",
            ),
            (
                TransitionError::NeedsReissue.into(),
                ErrorKind::Transition,
                "needs_reissue",
            ),
            (
                TemplateError::Invalid(Vec::new()).into(),
                ErrorKind::Template,
                "template_invalid",
            ),
            (
                IdpError::Call {
                    idp: "entra".into(),
                    operation: "register",
                    status: Some(429),
                    request_id: None,
                    message: "slow down".into(),
                }
                .into(),
                ErrorKind::Idp,
                "idp_throttled",
            ),
            (
                IdpError::Unsendable {
                    idp: "entra".into(),
                    operation: "register",
                    message: "the URL is too long".into(),
                }
                .into(),
                ErrorKind::Idp,
                "request_unsendable",
            ),
            (
                StoreError::Backend("gone".into()).into(),
                ErrorKind::Repository,
                "database_error",
            ),
            (
                DiagnosticsError::ForeignSubscriber.into(),
                ErrorKind::Usage,
                "log_subscriber_conflict",
            ),
        ];
        for (e, kind, reason) in cases {
            assert_eq!((e.kind(), e.reason()), (kind, reason), "{e}");
            let r = e.reason();
            assert!(
                r.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{r}"
            );
        }
    }
}
