//! Owned, serde-serializable results (the C ABI hands them out as JSON, the Python
//! module as dicts) and the parameter structs the operations take.

use std::collections::BTreeMap;

use lifecycle::engine::{DevicePrompt, Replayed, SignIn};
use lifecycle::idp::IdpUser;
use lifecycle::store::{AuditRecord, KeyRecord, PasskeyRecord, PendingRegistration};
use lifecycle::template::TemplateSet;
use serde::{Deserialize, Serialize};

pub(crate) fn hex(bytes: &[u8]) -> String {
    base16ct::lower::encode_string(bytes)
}

/// Credential ids, everywhere in the facade: base64url without padding (as WebAuthn and
/// the IdP write them).
pub(crate) fn b64url(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A managed key as the repository records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Key {
    /// The key id (from AAGUID and serial).
    pub key_id: String,
    /// The model's AAGUID (hex).
    pub aaguid: String,
    /// The serial number.
    pub serial: String,
    /// The lifecycle state (`blank`, `issued`, `active`, ...).
    pub state: String,
    /// The user it is issued to (the IdP's object id), if issued.
    pub user_id: Option<String>,
    /// The credential template it was issued with.
    pub template: Option<String>,
    /// The key must be reissued to be used again.
    pub needs_reissue: bool,
    /// The record's version (bumped by every change).
    pub version: u64,
    /// Created, Unix milliseconds.
    pub created_ms: u64,
    /// Last changed, Unix milliseconds.
    pub updated_ms: u64,
    /// What the key proved about itself at its latest issuance (hex): its CTAP 2.2
    /// device identifier or its enterprise attestation certificate's serial (see
    /// `serial_source`); `None` when it proved nothing.
    pub identity: Option<String>,
    /// Where the serial or identity comes from: `enc_identifier`,
    /// `attestation_certificate`, `usb_serial_string` or `claimed` (not verified);
    /// `None` when not recorded.
    pub serial_source: Option<String>,
}

impl From<KeyRecord> for Key {
    fn from(k: KeyRecord) -> Self {
        Key {
            key_id: k.key_id,
            aaguid: hex(&k.aaguid),
            serial: k.serial,
            state: k.state.as_str().to_owned(),
            user_id: k.user_id,
            template: k.template_id,
            needs_reissue: k.needs_reissue,
            version: k.version,
            created_ms: k.created_ms,
            updated_ms: k.updated_ms,
            identity: k.identity,
            serial_source: k.serial_source,
        }
    }
}

/// A passkey recorded on a key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Passkey {
    /// The passkey template (one per IdP).
    pub passkey_template: String,
    /// The credential id (base64url, no padding).
    pub credential_id: String,
    /// The IdP's method id, once registered.
    pub idp_method_id: Option<String>,
    /// Its lifecycle state.
    pub state: String,
    /// Created, Unix milliseconds.
    pub created_ms: u64,
}

impl From<PasskeyRecord> for Passkey {
    fn from(p: PasskeyRecord) -> Self {
        Passkey {
            passkey_template: p.passkey_template,
            credential_id: b64url(&p.credential_id),
            idp_method_id: p.idp_method_id,
            state: p.state.as_str().to_owned(),
            created_ms: p.created_ms,
        }
    }
}

/// A registration made on the key and waiting for activation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Pending {
    /// The passkey template.
    pub passkey_template: String,
    /// The user at that IdP.
    pub user_id: String,
    /// When the IdP's challenge expires, Unix milliseconds.
    pub challenge_expires_ms: u64,
    /// Created, Unix milliseconds.
    pub created_ms: u64,
}

impl From<PendingRegistration> for Pending {
    fn from(p: PendingRegistration) -> Self {
        Pending {
            passkey_template: p.passkey_template,
            user_id: p.user_id,
            challenge_expires_ms: p.challenge_expires_ms,
            created_ms: p.created_ms,
        }
    }
}

/// One audit log entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    /// The entry's id (increasing).
    pub id: i64,
    /// Who acted.
    pub actor: String,
    /// When, Unix milliseconds.
    pub time_ms: u64,
    /// What (`issue`, `activate`, ...).
    pub action: String,
    /// The key.
    pub key_id: Option<String>,
    /// The user.
    pub user_id: Option<String>,
    /// The credential template.
    pub template: Option<String>,
    /// `ok`, `failed`, `refused`, ...
    pub outcome: String,
    /// The IdP's request id, if a call was made.
    pub idp_request_id: Option<String>,
    /// Details (error message).
    pub detail: Option<String>,
}

impl From<AuditRecord> for AuditEntry {
    fn from(a: AuditRecord) -> Self {
        let e = a.event;
        AuditEntry {
            id: a.id,
            actor: e.actor,
            time_ms: e.time_ms,
            action: e.action,
            key_id: e.key_id,
            user_id: e.user_id,
            template: e.template_id,
            outcome: e.outcome,
            idp_request_id: e.idp_request_id,
            detail: e.detail,
        }
    }
}

/// What the audit chain check found (see [`crate::Session::audit_verify`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AuditCheck {
    /// Whether every chained record verified.
    pub ok: bool,
    /// Records checked.
    pub records: u64,
    /// Records from before the chain existed (schema < 6), counted, not verified.
    pub unchained: u64,
    /// The id of the first record that fails, if any.
    pub first_bad_id: Option<i64>,
    /// Why it fails.
    pub reason: Option<String>,
}

impl From<lifecycle::store::AuditVerification> for AuditCheck {
    fn from(v: lifecycle::store::AuditVerification) -> Self {
        AuditCheck {
            ok: v.is_ok(),
            records: v.records,
            unchained: v.unchained,
            first_bad_id: v.first_bad.as_ref().map(|b| b.id),
            reason: v.first_bad.map(|b| b.reason),
        }
    }
}

/// What [`crate::Session::adopt_unauthenticated_rows`] authenticated.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AdoptedRows {
    /// Pending registrations.
    pub pending: u64,
    /// Passkeys.
    pub passkeys: u64,
    /// Pending journal entries.
    pub journal: u64,
    /// Agents (split deployment).
    pub agents: u64,
    /// Enrolment codes (split deployment).
    pub enrolment_codes: u64,
    /// The audit record of the adoption.
    pub audit_id: i64,
}

impl From<lifecycle::store::AdoptedRows> for AdoptedRows {
    fn from(a: lifecycle::store::AdoptedRows) -> Self {
        AdoptedRows {
            pending: a.pending,
            passkeys: a.passkeys,
            journal: a.journal,
            agents: a.agents,
            enrolment_codes: a.enrolment_codes,
            audit_id: a.audit_id,
        }
    }
}

/// Everything recorded about one key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KeyDetails {
    /// The key.
    pub key: Key,
    /// Its passkeys.
    pub passkeys: Vec<Passkey>,
    /// Registrations waiting for activation.
    pub pending: Vec<Pending>,
    /// Its audit log, oldest first.
    pub audit: Vec<AuditEntry>,
}

/// One verified sign-in with a passkey of the key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SignInResult {
    /// The passkey template of the passkey used.
    pub passkey_template: String,
    /// The IdP's method id.
    pub method_id: String,
    /// The credential id (base64url, no padding).
    pub credential_id: String,
    /// The signature counter the key reported.
    pub sign_count: u32,
}

impl From<SignIn> for SignInResult {
    fn from(s: SignIn) -> Self {
        SignInResult {
            passkey_template: s.passkey_template,
            method_id: s.method_id,
            credential_id: b64url(&s.credential_id),
            sign_count: s.sign_count,
        }
    }
}

/// A started self-service sign-in ([`crate::Session::self_service_begin`]): the nonce to
/// put in the OpenID Connect authorization request and to pass, with the ID token, to
/// `self_issue` / `self_set_pin`. Good once, until `expires_at_ms`.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct SelfServiceStart {
    /// The nonce (base64url).
    pub nonce: String,
    /// When it stops being accepted (Unix milliseconds).
    pub expires_at_ms: u64,
}

impl std::fmt::Debug for SelfServiceStart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SelfServiceStart")
            .field("nonce", &"<redacted>")
            .field("expires_at_ms", &self.expires_at_ms)
            .finish()
    }
}

impl From<lifecycle::engine::SelfServiceStart> for SelfServiceStart {
    fn from(s: lifecycle::engine::SelfServiceStart) -> Self {
        SelfServiceStart {
            nonce: s.nonce,
            expires_at_ms: s.expires_at_ms,
        }
    }
}

/// What a journal replay did with one entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReplayedEntry {
    /// The journal entry id.
    pub id: i64,
    /// The key.
    pub key_id: String,
    /// The operation (`register`, `delete`, `state`).
    pub operation: String,
    /// `done`, `found at IdP`, `failed: ...` or `busy`.
    pub outcome: String,
}

impl From<Replayed> for ReplayedEntry {
    fn from(r: Replayed) -> Self {
        ReplayedEntry {
            id: r.id,
            key_id: r.key_id,
            operation: r.operation.as_str().to_owned(),
            outcome: r.outcome.to_string(),
        }
    }
}

/// A directory user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct User {
    /// The IdP's object id.
    pub id: String,
    /// User principal name.
    pub user_principal_name: Option<String>,
    /// Display name.
    pub display_name: Option<String>,
    /// Mail address.
    pub mail: Option<String>,
}

impl From<IdpUser> for User {
    fn from(u: IdpUser) -> Self {
        User {
            id: u.id,
            user_principal_name: u.user_principal_name,
            display_name: u.display_name,
            mail: u.mail,
        }
    }
}

/// What a credential template set contains (from [`crate::template_check`] and
/// [`crate::Session::add_template`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TemplateSummary {
    /// The credential template's name (what [`IssueParams::template`] names).
    pub name: String,
    /// Its passkey templates, in order.
    pub passkey_templates: Vec<String>,
    /// The IdP connections they use.
    pub connections: Vec<String>,
}

impl From<&TemplateSet> for TemplateSummary {
    fn from(t: &TemplateSet) -> Self {
        let mut connections: Vec<String> = t
            .passkey_templates()
            .iter()
            .map(|p| p.idp.connection.clone())
            .collect();
        connections.dedup();
        TemplateSummary {
            name: t.credential.name.clone(),
            passkey_templates: t.credential.passkey_templates.clone(),
            connections,
        }
    }
}

/// A security key or reader found by [`crate::list_devices`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DeviceEntry {
    /// What [`crate::Device::open`] takes: `usb:PATH` or `nfc:READER`.
    pub device: String,
    /// `usb` or `nfc`.
    pub transport: String,
    /// USB vendor id.
    pub vendor_id: Option<u16>,
    /// USB product id.
    pub product_id: Option<u16>,
    /// Manufacturer string.
    pub manufacturer: Option<String>,
    /// Product string.
    pub product: Option<String>,
    /// Serial number, if the key reports one.
    pub serial: Option<String>,
    /// NFC: a card is on the reader.
    pub card_present: Option<bool>,
    /// NFC: the card has a FIDO applet.
    pub fido_applet: Option<bool>,
}

/// The result of [`crate::list_devices`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DeviceList {
    /// Keys and readers found.
    pub devices: Vec<DeviceEntry>,
    /// Subsystems that could not be listed (`USB HID: ...`, `PC/SC: ...`).
    pub unavailable: Vec<String>,
}

/// What a key says about itself (authenticatorGetInfo).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DeviceInfo {
    /// The spec it was opened with.
    pub device: String,
    /// The transport's description.
    pub description: String,
    /// Its serial number, if known.
    pub serial: Option<String>,
    /// AAGUID (hex).
    pub aaguid: String,
    /// CTAP versions.
    pub versions: Vec<String>,
    /// Extensions.
    pub extensions: Vec<String>,
    /// Options (`clientPin`, `uv`, ...).
    pub options: BTreeMap<String, bool>,
    /// Minimum PIN length.
    pub min_pin_length: Option<u64>,
    /// Firmware version.
    pub firmware_version: Option<u64>,
    /// Discoverable credential slots left.
    pub remaining_discoverable_credentials: Option<u64>,
}

/// A prompt for the person at the key while an operation waits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Prompt {
    /// "Touch your key".
    TouchKey {
        /// The CTAP operation waiting (`makeCredential`, `getAssertion`, `reset`, ...).
        step: String,
    },
    /// A fingerprint sample was taken during enrolment.
    FingerprintSample {
        /// The key's lastEnrollSampleStatus (0 = good sample).
        last_status: u8,
        /// Samples still needed.
        remaining: u32,
    },
    /// A fingerprint is about to be enrolled: "place your finger".
    EnrollFingerprint {
        /// Which one (1-based).
        number: u32,
        /// How many.
        of: u32,
    },
    /// A prompt this version does not know how to name.
    Other {
        /// Its description.
        description: String,
    },
}

impl From<&DevicePrompt> for Prompt {
    fn from(p: &DevicePrompt) -> Self {
        match p {
            DevicePrompt::TouchKey { step } => Prompt::TouchKey {
                step: (*step).to_owned(),
            },
            DevicePrompt::FingerprintSample {
                last_status,
                remaining,
            } => Prompt::FingerprintSample {
                last_status: *last_status,
                remaining: *remaining,
            },
            DevicePrompt::EnrollFingerprint { number, of } => Prompt::EnrollFingerprint {
                number: *number,
                of: *of,
            },
            // The replug of a reset at the station and the long touch: the operator
            // reads what to do.
            DevicePrompt::Replug(r) => Prompt::Other {
                description: r.message().to_owned(),
            },
            DevicePrompt::HoldKey { .. } => Prompt::Other {
                description: "Press and hold the security key until it stops blinking.".to_owned(),
            },
            other => Prompt::Other {
                description: format!("{other:?}"),
            },
        }
    }
}

/// Whom to issue a key to, with which template.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssueParams {
    /// The credential template's name (loaded from the config or
    /// [`crate::Session::add_template`]).
    pub template: String,
    /// The user, by IdP object id or UPN.
    pub user: String,
    /// The key's serial number; default: what the device reports.
    #[serde(default)]
    pub serial: Option<String>,
    /// The actor recorded; default: the session's.
    #[serde(default)]
    pub actor: Option<String>,
}

/// Whom to reissue a key to.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReissueParams {
    /// The user, by IdP object id or UPN.
    pub user: String,
    /// The key's serial number; default: the recorded one.
    #[serde(default)]
    pub serial: Option<String>,
    /// The actor recorded; default: the session's.
    #[serde(default)]
    pub actor: Option<String>,
}

/// Which keys to list. Every given criterion must match; none lists every key.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyFilter {
    /// Issued to this user (object id, or a UPN resolved at every connection).
    #[serde(default)]
    pub user: Option<String>,
    /// In this state (`blank`, `issued`, `active`, ...).
    #[serde(default)]
    pub state: Option<String>,
    /// With this serial number.
    #[serde(default)]
    pub serial: Option<String>,
}

/// One finding of a reconciliation (see [`ReconcileReport`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DriftFinding {
    /// The user as asked for.
    pub user: String,
    /// The user's IdP object id, when resolved.
    pub user_id: Option<String>,
    /// The key concerned, if the repository knows one.
    pub key_id: Option<String>,
    /// The passkey template, if known.
    pub passkey_template: Option<String>,
    /// The IdP connection.
    pub idp_connection: String,
    /// The IdP's method id, if any.
    pub method_id: Option<String>,
    /// The credential id (base64url), if known.
    pub credential_id: Option<String>,
    /// What is wrong: `missing_at_idp`, `still_at_idp`, `unknown`, `expired_pending`,
    /// `check_failed`, `would_fail_at_sign_in`, `user_renamed` or `not_listed_yet`.
    pub kind: String,
    /// The drift was repaired.
    pub fixed: bool,
    /// Why the repair (or the check) failed, if it did.
    pub error: Option<String>,
    /// For `would_fail_at_sign_in`: the passkey profile(s) that block the passkey and
    /// why (`"<profiles>: <reason>"`); `None` otherwise.
    pub blocked_by: Option<String>,
}

impl From<lifecycle::engine::DriftFinding> for DriftFinding {
    fn from(f: lifecycle::engine::DriftFinding) -> Self {
        DriftFinding {
            user: f.user,
            user_id: f.user_id,
            key_id: f.key_id,
            passkey_template: f.passkey_template,
            idp_connection: f.idp_connection,
            method_id: f.method_id,
            credential_id: f.credential_id,
            kind: f.kind.as_str().to_owned(),
            fixed: f.fixed,
            error: f.error,
            blocked_by: f
                .blocked_by
                .map(|b| format!("{}: {}", b.blocked_by(), b.reason)),
        }
    }
}

/// What a reconciliation found (and fixed).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReconcileReport {
    /// How many users were checked.
    pub users_checked: u64,
    /// Nothing was found.
    pub clean: bool,
    /// Findings that were fixed.
    pub fixed: u64,
    /// Findings whose check or fix failed (`error` set).
    pub errors: u64,
    /// One entry per finding, in user order.
    pub findings: Vec<DriftFinding>,
}

impl From<lifecycle::engine::ReconcileReport> for ReconcileReport {
    fn from(r: lifecycle::engine::ReconcileReport) -> Self {
        let findings: Vec<DriftFinding> = r.findings.into_iter().map(Into::into).collect();
        ReconcileReport {
            users_checked: r.users_checked,
            clean: findings.is_empty(),
            fixed: findings.iter().filter(|f| f.fixed).count() as u64,
            errors: findings.iter().filter(|f| f.error.is_some()).count() as u64,
            findings,
        }
    }
}

/// A recorded bulk job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BulkJob {
    /// The job id (give it to [`crate::Session::bulk_run`]).
    pub job_id: i64,
    /// `issue`, `revoke` or `reconcile`.
    pub kind: String,
    /// Hex SHA-256 of the CSV text (the same text for the same kind is the same job
    /// while that job is unfinished).
    pub source_hash: String,
    /// Who created the job.
    pub actor: String,
    /// Number of rows.
    pub total: u64,
    /// When the job was recorded, Unix milliseconds.
    pub created_ms: u64,
    /// When every row of it had run, Unix milliseconds (`None`: unfinished).
    pub finished_ms: Option<u64>,
}

impl From<lifecycle::store::BulkJob> for BulkJob {
    fn from(j: lifecycle::store::BulkJob) -> Self {
        BulkJob {
            job_id: j.job_id,
            kind: j.kind,
            source_hash: j.source_hash,
            actor: j.actor,
            total: j.total,
            created_ms: j.created_ms,
            finished_ms: j.finished_ms,
        }
    }
}

fn default_workers() -> usize {
    1
}

fn default_true() -> bool {
    true
}

/// How to run a bulk job (JSON at the C ABI; every field optional).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BulkRunOptions {
    /// Worker threads for revoke and reconcile rows (1 to 32; issue rows run one at a
    /// time). Default 1.
    #[serde(default = "default_workers")]
    pub workers: usize,
    /// Ceiling on IdP calls per second across all workers (default none).
    #[serde(default)]
    pub rate: Option<f64>,
    /// The loaded credential template for issue rows without a `template` column.
    #[serde(default)]
    pub template: Option<String>,
    /// Run failed rows again (default true; done rows are always skipped).
    #[serde(default = "default_true")]
    pub retry_failed: bool,
    /// Reconcile rows: repair what is found.
    #[serde(default)]
    pub fix: bool,
    /// Reconcile rows: with `fix`, also delete passkeys nobody issued.
    #[serde(default)]
    pub delete_unknown: bool,
    /// Keep each row's result in the summary's `items` (default true). A caller that
    /// takes the rows from the progress callback sets it false, so that the run's memory
    /// does not grow with the rows it has run; `items` is then empty.
    #[serde(default = "default_true")]
    pub keep_items: bool,
}

impl Default for BulkRunOptions {
    fn default() -> Self {
        BulkRunOptions {
            workers: 1,
            rate: None,
            template: None,
            retry_failed: true,
            fix: false,
            delete_unknown: false,
            keep_items: true,
        }
    }
}

/// The row an issue job needs a security key for (given to the device provider).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BulkRow {
    /// The job.
    pub job_id: i64,
    /// The CSV line.
    pub line: u64,
    /// The user the key is for.
    pub user: String,
    /// The serial the row names.
    pub serial: String,
}

/// Progress after each bulk row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BulkProgress {
    /// The job.
    pub job_id: i64,
    /// Rows done so far (including those done before this run).
    pub done: u64,
    /// Rows failed so far.
    pub failed: u64,
    /// All rows.
    pub total: u64,
    /// The CSV line just finished.
    pub line: u64,
    /// Its status: `done` or `failed`.
    pub status: String,
    /// What happened to it.
    pub outcome: String,
}

impl From<&lifecycle::engine::BulkProgress> for BulkProgress {
    fn from(p: &lifecycle::engine::BulkProgress) -> Self {
        BulkProgress {
            job_id: p.job_id,
            done: p.done,
            failed: p.failed,
            total: p.total,
            line: p.line,
            status: p.status.as_str().to_owned(),
            outcome: p.outcome.clone(),
        }
    }
}

/// One row run (or settled) by a [`crate::Session::bulk_run`] call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BulkItemResult {
    /// The CSV line.
    pub line: u64,
    /// `done` or `failed`.
    pub status: String,
    /// What happened.
    pub outcome: String,
}

/// What a [`crate::Session::bulk_run`] call did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BulkSummary {
    /// The job.
    pub job_id: i64,
    /// `issue`, `revoke` or `reconcile`.
    pub kind: String,
    /// All rows.
    pub total: u64,
    /// Rows done (in this or an earlier run).
    pub done: u64,
    /// Rows failed.
    pub failed: u64,
    /// Rows skipped because an earlier run finished them.
    pub skipped: u64,
    /// Rows a crash had left running that were found finished.
    pub settled: u64,
    /// Rows another runner of the same job held and finished while this call waited.
    pub run_elsewhere: u64,
    /// The rows run (or settled) by this call, by line (empty when
    /// [`BulkRunOptions::keep_items`] is false).
    pub items: Vec<BulkItemResult>,
}

impl From<lifecycle::engine::BulkSummary> for BulkSummary {
    fn from(s: lifecycle::engine::BulkSummary) -> Self {
        BulkSummary {
            job_id: s.job_id,
            kind: s.kind.as_str().to_owned(),
            total: s.total,
            done: s.done,
            failed: s.failed,
            skipped: s.skipped,
            settled: s.settled,
            run_elsewhere: s.run_elsewhere,
            items: s
                .items
                .into_iter()
                .map(|i| BulkItemResult {
                    line: i.line,
                    status: i.status.as_str().to_owned(),
                    outcome: i.outcome,
                })
                .collect(),
        }
    }
}

/// One page of keys (see [`crate::Session::list_keys_page`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KeyPage {
    /// The keys, sorted by id.
    pub keys: Vec<Key>,
    /// The `after` for the next page; `None` when this page is the last.
    pub next_after: Option<String>,
}

/// A reconciliation request (the C ABI's `ks_drift_reconcile` JSON; see
/// [`crate::Session::reconcile`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReconcileRequest {
    /// The users (IdP object ids or UPNs); empty: every user holding a key.
    #[serde(default)]
    pub users: Vec<String>,
    /// Repair what is found.
    #[serde(default)]
    pub fix: bool,
    /// With `fix`: also delete passkeys nobody issued.
    #[serde(default)]
    pub delete_unknown: bool,
}

/// A pending registration in the expiring listing (see
/// [`crate::Session::list_expiring_page`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ExpiringPending {
    /// The key it was made on.
    pub key_id: String,
    /// The passkey template.
    pub passkey_template: String,
    /// The user at that IdP.
    pub user_id: String,
    /// When the IdP's challenge expires, Unix milliseconds.
    pub challenge_expires_ms: u64,
}

/// Where a page of the expiring listing ends (give it back as `after`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpiringCursor {
    /// The last entry's expiry.
    pub challenge_expires_ms: u64,
    /// The last entry's key.
    pub key_id: String,
    /// The last entry's passkey template.
    pub passkey_template: String,
}

/// One page of pending registrations expiring soon, soonest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ExpiringPage {
    /// The registrations.
    pub pending: Vec<ExpiringPending>,
    /// The `after` for the next page; `None` when this page is the last.
    pub next_after: Option<ExpiringCursor>,
}
