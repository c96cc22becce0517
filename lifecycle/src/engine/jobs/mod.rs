//! Resumable bulk jobs: issue, revoke or reconcile many keys from a CSV file.
//!
//! [`Engine::bulk_create`] parses and validates the whole CSV (header row, RFC 4180
//! quoting, bounded line length and row count, see `csv`) and records the job with one
//! item per row in the store. [`Engine::bulk_run`] (see `runner`) works through the items
//! that are not done yet, so a job is resumed by running it again:
//! - the engine journal is replayed first;
//! - each item is claimed before it runs (a lease with the runner's name and a fencing
//!   token, renewed while the row runs; every write for the row checks the claim), so
//!   several runners of one job never run the same row: a row another runner holds is
//!   waited for;
//! - an item a crash left `running` (its claim expired) is settled by looking at the repository (revoke: the
//!   key is already revoked; issue: the user already holds an issued key with that
//!   serial) before it is run again; an issuance only makes pending registrations, so a
//!   rerun never makes a second passkey at the IdP;
//! - revoke and reconcile items run on up to [`BulkOptions::workers`] threads, and every
//!   IdP call waits for a slot under [`BulkOptions::max_idp_calls_per_sec`].
//!
//! Progress is reported through a callback on the calling thread; for issuance a device
//! callback supplies the security key for each row. Both take and give owned data.
//!
//! [`Engine::bulk_create`]: super::Engine::bulk_create
//! [`Engine::bulk_run`]: super::Engine::bulk_run

mod csv;
mod fence;
mod runner;
mod throttle;

use fido_transport::client::Authenticator;
use fido_transport::Transport;
use serde::{Deserialize, Serialize};

use super::UnixMillis;
use crate::store::BulkItemStatus;
use crate::template::KeyTransport;

/// Most worker threads.
pub const MAX_WORKERS: usize = 32;
/// Items read from the store at a time.
const PAGE: u32 = 500;
/// How long a runner's claim on a row lasts unless renewed (it is renewed every third of
/// it while the row runs), by default.
pub const DEFAULT_CLAIM_LEASE_MS: u64 = 30_000;
/// The shortest claim lease a run takes.
pub const MIN_CLAIM_LEASE_MS: u64 = 300;

/// The clock the bulk runner reads for each item's timestamps and flows (the engine
/// never reads the system clock itself: a host passes the real time, a test its own).
pub type BulkClock = dyn Fn() -> UnixMillis + Sync;

/// What a bulk job does with each row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BulkKind {
    /// Columns `user,serial[,template]`: central issuance, one key per row.
    Issue,
    /// Columns `key_id` or `user`, optional `force`: revoke the key (or the user's keys).
    Revoke,
    /// Column `user`: reconcile the user (with the job's fix options).
    Reconcile,
}

impl BulkKind {
    /// The stable name.
    pub const fn as_str(self) -> &'static str {
        match self {
            BulkKind::Issue => "issue",
            BulkKind::Revoke => "revoke",
            BulkKind::Reconcile => "reconcile",
        }
    }

    /// Parses a stable name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "issue" => Some(BulkKind::Issue),
            "revoke" => Some(BulkKind::Revoke),
            "reconcile" => Some(BulkKind::Reconcile),
            _ => None,
        }
    }

    fn columns(self) -> (&'static [&'static str], &'static [&'static str]) {
        // (required, optional); revoke needs one of key_id / user (checked per row).
        match self {
            // Issue needs one of user / employee_id (checked per row).
            BulkKind::Issue => (&["serial"], &["user", "employee_id", "template"]),
            BulkKind::Revoke => (&[], &["key_id", "user", "force", "include_foreign"]),
            BulkKind::Reconcile => (&["user"], &[]),
        }
    }
}

/// How to run a bulk job.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BulkOptions {
    /// Worker threads for revoke and reconcile items (1 to 32); issuance
    /// always runs one row at a time.
    pub workers: usize,
    /// Ceiling on IdP calls per second across all workers (`None`: no ceiling). The
    /// IdP's own throttling (429 with Retry-After) is honoured by the connector anyway.
    pub max_idp_calls_per_sec: Option<f64>,
    /// The credential template (by name, loaded in the engine) for issue rows without a
    /// `template` column.
    pub default_template: Option<String>,
    /// Run failed items again (done items are always skipped).
    pub retry_failed: bool,
    /// Reconcile rows: repair what is found.
    pub fix: bool,
    /// Reconcile rows: with `fix`, also delete passkeys nobody issued.
    pub delete_unknown: bool,
    /// How long this runner's claim on a row lasts unless renewed (at least
    /// [`MIN_CLAIM_LEASE_MS`]); the claim is renewed every third of it while the row
    /// runs. After a runner dies, its rows are taken over once their claims expire.
    pub claim_lease_ms: u64,
    /// Keep each row's result in the summary's [`BulkSummary::items`] (default true).
    /// A caller that takes the rows from the progress callback as they run (the CLI, a
    /// server's background job) sets it false, so that the run's memory does not grow
    /// with the rows it has run; `items` is then empty.
    #[serde(default = "keep_items_default")]
    pub keep_items: bool,
}

fn keep_items_default() -> bool {
    true
}

impl Default for BulkOptions {
    fn default() -> Self {
        BulkOptions {
            workers: 1,
            max_idp_calls_per_sec: None,
            default_template: None,
            retry_failed: true,
            fix: false,
            delete_unknown: false,
            claim_lease_ms: DEFAULT_CLAIM_LEASE_MS,
            keep_items: true,
        }
    }
}

/// What the device callback is asked for: the key for one issue row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BulkDeviceRequest {
    /// The job.
    pub job_id: i64,
    /// The source line.
    pub line: u64,
    /// The user the key is for.
    pub user: String,
    /// The serial the row names.
    pub serial: String,
}

/// The security key the device callback supplies for an issue row.
pub struct BulkDevice {
    /// The key's client.
    pub authenticator: Authenticator<Box<dyn Transport>>,
    /// How the key is attached.
    pub transport: KeyTransport,
    /// The key can be reset right now (just plugged in).
    pub can_reset_in_place: bool,
    /// What the station knows of which key this is: the row is refused when several
    /// keys are attached or the key's own serial is not the row's.
    pub evidence: KeyEvidence,
}

/// What a station knows of the key it opened for a bulk row.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyEvidence {
    /// Security keys attached at the station when this one was opened (USB: FIDO HID
    /// devices listed; NFC: readers holding a card); `None` when not known.
    pub keys_attached: Option<usize>,
    /// The serial the key itself reports, and how; `None` when it reports none (the
    /// HID serial string is empty on YubiKeys by default, NFC has none): the row's
    /// serial is then taken as given and recorded as such.
    pub serial: Option<KeySerial>,
}

/// A serial the key reported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeySerial {
    /// The serial.
    pub value: String,
    /// Where it comes from.
    pub source: SerialSource,
}

/// Where a key's serial (or identity) comes from: recorded with the key
/// (`KeyRecord::serial_source`), in the issuance's audit and in the bulk row's result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SerialSource {
    /// The USB HID serial string (iSerialNumber): what the platform lists. The key
    /// reports it; it proves nothing (empty on YubiKeys by default).
    UsbSerialString,
    /// The key's CTAP 2.2 device identifier (`encIdentifier`, decrypted with a
    /// persistent token from the key's PIN): unique to the key, so it identifies it.
    /// A blank key has no PIN, so it is read right after the transport PIN is set.
    EncIdentifier,
    /// The serial of the key's attestation certificate, recorded as the key's identity
    /// only from an enterprise attestation (`epAtt`), whose certificate is the key's
    /// own. A batch attestation certificate is shared by many keys of the model (FIDO
    /// batches of at least 100,000): its serial names the batch, not the key, and is
    /// kept as evidence in the audit only.
    AttestationCertificate,
    /// The CSV row or the caller named the serial; the key reported none (not verified).
    Claimed,
}

impl SerialSource {
    /// How the source is named in results.
    pub fn describe(self) -> &'static str {
        match self {
            SerialSource::UsbSerialString => "the key's USB serial string",
            SerialSource::EncIdentifier => "the key's CTAP 2.2 device identifier",
            SerialSource::AttestationCertificate => "the key's enterprise attestation certificate",
            SerialSource::Claimed => "the CSV row (the key reports none; not verified)",
        }
    }

    /// The stable name recorded with the key (`KeyRecord::serial_source`).
    pub fn as_str(self) -> &'static str {
        match self {
            SerialSource::UsbSerialString => "usb_serial_string",
            SerialSource::EncIdentifier => "enc_identifier",
            SerialSource::AttestationCertificate => "attestation_certificate",
            SerialSource::Claimed => "claimed",
        }
    }

    /// Parses a stable name.
    pub fn parse(s: &str) -> Option<Self> {
        [
            SerialSource::UsbSerialString,
            SerialSource::EncIdentifier,
            SerialSource::AttestationCertificate,
            SerialSource::Claimed,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }
}

impl std::fmt::Debug for BulkDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BulkDevice")
            .field("transport", &self.transport)
            .field("can_reset_in_place", &self.can_reset_in_place)
            .field("evidence", &self.evidence)
            .finish_non_exhaustive()
    }
}

/// Progress after each item.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BulkProgress {
    /// The job.
    pub job_id: i64,
    /// Items done so far (including those done before this run).
    pub done: u64,
    /// Items failed so far.
    pub failed: u64,
    /// All items.
    pub total: u64,
    /// The item just finished.
    pub line: u64,
    /// Its status (`done` or `failed`).
    pub status: BulkItemStatus,
    /// Its outcome.
    pub outcome: String,
}

/// One item run by this call of [`Engine::bulk_run`](super::Engine::bulk_run).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BulkItemResult {
    /// The source line.
    pub line: u64,
    /// `done` or `failed`.
    pub status: BulkItemStatus,
    /// What happened.
    pub outcome: String,
}

/// What [`Engine::bulk_run`](super::Engine::bulk_run) did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BulkSummary {
    /// The job.
    pub job_id: i64,
    /// The job kind.
    pub kind: BulkKind,
    /// All items.
    pub total: u64,
    /// Items done (in this or an earlier run).
    pub done: u64,
    /// Items failed.
    pub failed: u64,
    /// Items skipped because an earlier run finished them.
    pub skipped: u64,
    /// Items a crash had left running that were found finished and settled as done.
    pub settled: u64,
    /// Items another runner of the same job held and finished while this call waited.
    pub run_elsewhere: u64,
    /// The items run (or settled) by this call, by line (empty when
    /// [`BulkOptions::keep_items`] is false).
    pub items: Vec<BulkItemResult>,
}
