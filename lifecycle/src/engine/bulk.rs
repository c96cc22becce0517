//! Resumable bulk jobs: issue, revoke or reconcile many keys from a CSV file.
//!
//! [`Engine::bulk_create`] parses and validates the whole CSV (header row, RFC 4180
//! quoting, bounded line length and row count) and records the job with one item per
//! row in the store. [`Engine::bulk_run`] works through the items that are not done yet,
//! so a job is resumed by running it again:
//! - the engine journal is replayed first;
//! - an item a crash left `running` is settled by looking at the repository (revoke: the
//!   key is already revoked; issue: the user already holds an issued key with that
//!   serial) before it is run again; an issuance only makes pending registrations, so a
//!   rerun never makes a second passkey at the IdP;
//! - revoke and reconcile items run on up to [`BulkOptions::workers`] threads, and every
//!   IdP call waits for a slot under [`BulkOptions::max_idp_calls_per_sec`].
//!
//! Progress is reported through a callback on the calling thread; for issuance a device
//! callback supplies the security key for each row. Both take and give owned data.

use std::collections::{BTreeMap, VecDeque};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fido_transport::client::Authenticator;
use fido_transport::Transport;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::reconcile::{DriftKind, ReconcileOptions};
use super::{CrashPoint, Engine, EngineError, IssueRequest, UnixMillis};
use crate::idp::{
    CreationChallenge, Idp, IdpDeletion, IdpError, IdpOutcome, IdpPasskey, IdpUser,
    RegistrationRequest,
};
use crate::model::CredentialState;
use crate::store::{BulkItem, BulkItemStatus, BulkJob, KeyQuery, KeyRecord, NewBulkJob};
use crate::template::Transport as KeyTransport;
use crate::Error;

/// Longest CSV record accepted (bytes).
pub const MAX_CSV_LINE: usize = 4096;
/// Most data rows a bulk job may have.
pub const MAX_CSV_ROWS: usize = 100_000;
/// Most worker threads.
pub const MAX_WORKERS: usize = 32;
/// Items read from the store at a time.
const PAGE: u32 = 500;

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
            BulkKind::Issue => (&["user", "serial"], &["template"]),
            BulkKind::Revoke => (&[], &["key_id", "user", "force"]),
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
}

impl std::fmt::Debug for BulkDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BulkDevice")
            .field("transport", &self.transport)
            .field("can_reset_in_place", &self.can_reset_in_place)
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

/// One item run by this call of [`Engine::bulk_run`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BulkItemResult {
    /// The source line.
    pub line: u64,
    /// `done` or `failed`.
    pub status: BulkItemStatus,
    /// What happened.
    pub outcome: String,
}

/// What [`Engine::bulk_run`] did.
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
    /// The items run (or settled) by this call, by line.
    pub items: Vec<BulkItemResult>,
}

/// A row as stored in a bulk item (normalized JSON).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Row {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    serial: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    template: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    force: Option<bool>,
}

fn csv_err(line: u64, column: u64, message: impl Into<String>) -> Error {
    EngineError::Csv {
        line,
        column,
        message: message.into(),
    }
    .into()
}

/// Splits CSV text into records of fields (RFC 4180: `,` separators, CRLF or LF record
/// ends, `"` quoting with `""` escapes, quoted fields may span lines). Returns each
/// record with the line it starts on; blank lines are skipped.
pub(crate) fn parse_csv(text: &str) -> Result<Vec<(u64, Vec<String>)>, Error> {
    let mut records = Vec::new();
    let mut chars = text.chars().peekable();
    let mut line: u64 = 1;
    while chars.peek().is_some() {
        let start = line;
        let mut fields: Vec<String> = Vec::new();
        let mut field = String::new();
        let mut len = 0usize;
        let mut quoted = false;
        let mut was_quoted = false;
        while let Some(c) = chars.next() {
            len += c.len_utf8();
            if len > MAX_CSV_LINE {
                return Err(csv_err(
                    start,
                    0,
                    format!("record longer than {MAX_CSV_LINE} bytes"),
                ));
            }
            if quoted {
                match c {
                    '"' if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    '"' => quoted = false,
                    '\n' => {
                        line += 1;
                        field.push(c);
                    }
                    _ => field.push(c),
                }
                continue;
            }
            match c {
                '"' if field.is_empty() && !was_quoted => {
                    quoted = true;
                    was_quoted = true;
                }
                '"' => return Err(csv_err(
                    start,
                    fields.len() as u64 + 1,
                    "a quote inside an unquoted field (quote the whole field and double the quote)",
                )),
                ',' => {
                    fields.push(std::mem::take(&mut field));
                    was_quoted = false;
                }
                '\r' if chars.peek() == Some(&'\n') => {}
                '\n' => {
                    line += 1;
                    break;
                }
                _ if was_quoted => {
                    return Err(csv_err(
                        start,
                        fields.len() as u64 + 1,
                        "text after a closing quote",
                    ))
                }
                _ => field.push(c),
            }
        }
        if quoted {
            return Err(csv_err(
                start,
                fields.len() as u64 + 1,
                "quoted field is not closed",
            ));
        }
        fields.push(field);
        if fields.len() == 1 && fields.first().is_some_and(|f| f.trim().is_empty()) && !was_quoted {
            continue;
        }
        records.push((start, fields));
        if records.len() > MAX_CSV_ROWS + 1 {
            return Err(csv_err(start, 0, format!("more than {MAX_CSV_ROWS} rows")));
        }
    }
    Ok(records)
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" | "y" => Some(true),
        "false" | "no" | "0" | "n" => Some(false),
        _ => None,
    }
}

/// Parses and validates a job's CSV into (line, normalized row) items.
fn rows_for(kind: BulkKind, text: &str) -> Result<Vec<(u64, Row)>, Error> {
    let records = parse_csv(text)?;
    let mut it = records.into_iter();
    let (hline, header) = it
        .next()
        .ok_or_else(|| csv_err(1, 0, "empty file: a header row is needed"))?;
    let (required, optional) = kind.columns();
    let mut cols: Vec<String> = Vec::new();
    for (i, h) in header.iter().enumerate() {
        let name = h.trim().to_ascii_lowercase();
        if !required.contains(&name.as_str()) && !optional.contains(&name.as_str()) {
            return Err(csv_err(
                hline,
                i as u64 + 1,
                format!(
                    "unknown column {name:?} for a {} job (columns: {})",
                    kind.as_str(),
                    required
                        .iter()
                        .chain(optional.iter())
                        .copied()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        if cols.contains(&name) {
            return Err(csv_err(
                hline,
                i as u64 + 1,
                format!("column {name:?} twice"),
            ));
        }
        cols.push(name);
    }
    for r in required {
        if !cols.iter().any(|c| c == r) {
            return Err(csv_err(hline, 0, format!("missing column {r:?}")));
        }
    }
    if kind == BulkKind::Revoke && !cols.iter().any(|c| c == "key_id" || c == "user") {
        return Err(csv_err(
            hline,
            0,
            "a revoke job needs a key_id or a user column",
        ));
    }
    let mut rows = Vec::new();
    for (line, fields) in it {
        if fields.len() != cols.len() {
            return Err(csv_err(
                line,
                0,
                format!("{} fields, the header has {}", fields.len(), cols.len()),
            ));
        }
        let mut row = Row::default();
        for (i, (name, value)) in cols.iter().zip(fields).enumerate() {
            let col = i as u64 + 1;
            let value = value.trim().to_owned();
            if value.is_empty() {
                if required.contains(&name.as_str()) {
                    return Err(csv_err(line, col, format!("{name} is empty")));
                }
                continue;
            }
            match name.as_str() {
                "user" => row.user = Some(value),
                "serial" => row.serial = Some(value),
                "template" => row.template = Some(value),
                "key_id" => row.key_id = Some(value),
                "force" => {
                    row.force = Some(parse_bool(&value).ok_or_else(|| {
                        csv_err(line, col, format!("force {value:?} is not true or false"))
                    })?)
                }
                _ => {}
            }
        }
        if kind == BulkKind::Revoke && row.key_id.is_none() && row.user.is_none() {
            return Err(csv_err(line, 0, "neither key_id nor user is given"));
        }
        rows.push((line, row));
    }
    if rows.is_empty() {
        return Err(csv_err(hline, 0, "no data rows"));
    }
    Ok(rows)
}

fn now_ms() -> UnixMillis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .ok()
        .and_then(|d| u64::try_from(d.as_millis()).ok())
        .unwrap_or(0)
}

/// Spaces IdP calls to at most `per_sec` a second across threads.
struct RateLimiter {
    interval: Duration,
    next: Mutex<Instant>,
}

impl RateLimiter {
    fn new(per_sec: f64) -> Option<Self> {
        if !(per_sec.is_finite() && per_sec > 0.0) {
            return None;
        }
        Some(RateLimiter {
            interval: Duration::from_secs_f64((1.0 / per_sec).min(3600.0)),
            next: Mutex::new(Instant::now()),
        })
    }

    fn acquire(&self) {
        let wait = {
            let mut next = self.next.lock().unwrap_or_else(PoisonError::into_inner);
            let now = Instant::now();
            let slot = (*next).max(now);
            *next = slot + self.interval;
            slot.saturating_duration_since(now)
        };
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
    }
}

/// An IdP whose every call waits for a rate-limiter slot.
struct Throttled {
    inner: Arc<dyn Idp>,
    limiter: Arc<RateLimiter>,
}

impl Idp for Throttled {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn default_rp_id(&self) -> String {
        self.inner.default_rp_id()
    }
    fn user(&self, user: &str) -> Result<IdpUser, IdpError> {
        self.limiter.acquire();
        self.inner.user(user)
    }
    fn preflight(&self, user: &str, aaguid: &[u8; 16], attested: bool) -> Result<(), IdpError> {
        self.limiter.acquire();
        self.inner.preflight(user, aaguid, attested)
    }
    fn creation_challenge(
        &self,
        user: &str,
        timeout_minutes: Option<u32>,
        origin: Option<&str>,
    ) -> Result<CreationChallenge, IdpError> {
        self.limiter.acquire();
        self.inner.creation_challenge(user, timeout_minutes, origin)
    }
    fn register(&self, user: &str, request: &RegistrationRequest) -> Result<IdpOutcome, IdpError> {
        self.limiter.acquire();
        self.inner.register(user, request)
    }
    fn delete(&self, user: &str, method_id: &str) -> Result<IdpDeletion, IdpError> {
        self.limiter.acquire();
        self.inner.delete(user, method_id)
    }
    fn list(&self, user: &str) -> Result<Vec<IdpPasskey>, IdpError> {
        self.limiter.acquire();
        self.inner.list(user)
    }
    fn check_connection(&self) -> Result<u64, IdpError> {
        self.limiter.acquire();
        self.inner.check_connection()
    }
    fn search_users(&self, prefix: &str, top: u32) -> Result<Vec<IdpUser>, IdpError> {
        self.limiter.acquire();
        self.inner.search_users(prefix, top)
    }
}

impl Engine {
    /// Records a bulk job from CSV text (validated whole first: errors name the line and
    /// column). The same file (by SHA-256) for the same kind returns the job already
    /// recorded instead of a second one, so a job is resumed by creating it again.
    pub fn bulk_create(
        &self,
        kind: BulkKind,
        csv_text: &str,
        actor: &str,
        now: UnixMillis,
    ) -> Result<BulkJob, Error> {
        let hash: String = Sha256::digest(csv_text.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        if let Some(job) = self.store.bulk_job_by_source(kind.as_str(), &hash)? {
            return Ok(job);
        }
        let rows = rows_for(kind, csv_text)?;
        let items = rows
            .into_iter()
            .map(|(line, row)| (line, serde_json::to_string(&row).unwrap_or_default()))
            .collect();
        let job = NewBulkJob {
            kind: kind.as_str().to_owned(),
            source_hash: hash.clone(),
            actor: actor.to_owned(),
            items,
        };
        match self.store.bulk_create(&job, super::ms(now)) {
            Ok(j) => Ok(j),
            // Another station created it at the same moment.
            Err(crate::store::StoreError::Duplicate { .. }) => self
                .store
                .bulk_job_by_source(kind.as_str(), &hash)?
                .ok_or_else(|| EngineError::UnknownBulkJob { job_id: 0 }.into()),
            Err(e) => Err(e.into()),
        }
    }

    /// Runs (or resumes) a bulk job: every item not done yet is run, after the journal is
    /// replayed and items left running by a crash are settled. `devices` supplies the key
    /// for each issue row (an `Err` fails that row); `progress` is called on this thread
    /// after each item.
    pub fn bulk_run(
        &self,
        job_id: i64,
        options: &BulkOptions,
        devices: &mut dyn FnMut(&BulkDeviceRequest) -> Result<BulkDevice, String>,
        progress: &mut dyn FnMut(&BulkProgress),
    ) -> Result<BulkSummary, Error> {
        let job = self
            .store
            .bulk_job(job_id)?
            .ok_or(EngineError::UnknownBulkJob { job_id })?;
        let kind = BulkKind::parse(&job.kind).ok_or_else(|| crate::store::StoreError::Corrupt {
            what: format!("bulk_jobs.kind: unknown {:?}", job.kind),
        })?;
        let limiter = options
            .max_idp_calls_per_sec
            .and_then(RateLimiter::new)
            .map(Arc::new);
        let view = self.view(limiter);
        view.replay_journal(now_ms())?;
        let counts = self.store.bulk_counts(job_id)?;
        let mut summary = BulkSummary {
            job_id,
            kind,
            total: job.total,
            done: counts.done,
            failed: 0,
            skipped: counts.done,
            settled: 0,
            items: Vec::new(),
        };
        if !options.retry_failed {
            summary.failed = counts.failed;
        }
        let mut after = None;
        loop {
            let page = self.store.bulk_items(job_id, after, PAGE)?;
            let Some(last) = page.last() else { break };
            after = Some(last.line);
            let todo: Vec<BulkItem> = page
                .into_iter()
                .filter(|i| match i.status {
                    BulkItemStatus::Done => false,
                    BulkItemStatus::Failed => options.retry_failed,
                    _ => true,
                })
                .collect();
            if kind == BulkKind::Issue || options.workers <= 1 {
                for item in todo {
                    let r = view.bulk_item(&job, kind, &item, options, &mut *devices)?;
                    self.record(&job, &item, r, &mut summary, progress);
                }
            } else {
                view.run_parallel(&job, kind, todo, options, &mut summary, progress)?;
            }
        }
        Ok(summary)
    }

    fn record(
        &self,
        job: &BulkJob,
        item: &BulkItem,
        (status, outcome, settled): (BulkItemStatus, String, bool),
        summary: &mut BulkSummary,
        progress: &mut dyn FnMut(&BulkProgress),
    ) {
        match status {
            BulkItemStatus::Done => summary.done += 1,
            _ => summary.failed += 1,
        }
        if settled {
            summary.settled += 1;
        }
        progress(&BulkProgress {
            job_id: job.job_id,
            done: summary.done,
            failed: summary.failed,
            total: summary.total,
            line: item.line,
            status,
            outcome: outcome.clone(),
        });
        summary.items.push(BulkItemResult {
            line: item.line,
            status,
            outcome,
        });
    }

    fn run_parallel(
        &self,
        job: &BulkJob,
        kind: BulkKind,
        todo: Vec<BulkItem>,
        options: &BulkOptions,
        summary: &mut BulkSummary,
        progress: &mut dyn FnMut(&BulkProgress),
    ) -> Result<(), Error> {
        let workers = options.workers.clamp(1, MAX_WORKERS).min(todo.len().max(1));
        let queue = Mutex::new(todo.into_iter().collect::<VecDeque<_>>());
        let (tx, rx) = mpsc::channel::<(BulkItem, Result<(BulkItemStatus, String, bool), Error>)>();
        let mut first_error = None;
        std::thread::scope(|scope| {
            for _ in 0..workers {
                let tx = tx.clone();
                let queue = &queue;
                scope.spawn(move || loop {
                    let next = queue
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .pop_front();
                    let Some(item) = next else { break };
                    let mut no_device = |_: &BulkDeviceRequest| -> Result<BulkDevice, String> {
                        Err("no device for this job kind".into())
                    };
                    let r = self.bulk_item(job, kind, &item, options, &mut no_device);
                    let stop = r.is_err();
                    if tx.send((item, r)).is_err() || stop {
                        // A repository failure (or simulated crash) stops this worker;
                        // the others finish what they hold.
                        queue.lock().unwrap_or_else(PoisonError::into_inner).clear();
                        break;
                    }
                });
            }
            drop(tx);
            for (item, r) in rx {
                match r {
                    Ok(r) => self.record(job, &item, r, summary, progress),
                    Err(e) => {
                        if first_error.is_none() {
                            first_error = Some(e);
                        }
                    }
                }
            }
        });
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Runs one item: marks it running, settles or runs it, records the outcome. An
    /// `Err` is a failure of the repository (the item stays running for the next run).
    fn bulk_item(
        &self,
        job: &BulkJob,
        kind: BulkKind,
        item: &BulkItem,
        options: &BulkOptions,
        devices: &mut dyn FnMut(&BulkDeviceRequest) -> Result<BulkDevice, String>,
    ) -> Result<(BulkItemStatus, String, bool), Error> {
        let was_running = item.status == BulkItemStatus::Running;
        let row: Row =
            serde_json::from_str(&item.input).map_err(|e| crate::store::StoreError::Corrupt {
                what: format!("bulk item {}:{}: {e}", job.job_id, item.line),
            })?;
        self.store.bulk_set_item(
            job.job_id,
            item.line,
            BulkItemStatus::Running,
            None,
            super::ms(now_ms()),
        )?;
        self.maybe_crash(CrashPoint::BulkItemStarted)?;
        let settled = if was_running {
            self.settle_item(kind, &row)?
        } else {
            None
        };
        let (status, outcome, was_settled) = match settled {
            Some(o) => (BulkItemStatus::Done, o, true),
            None => {
                let r = match kind {
                    BulkKind::Issue => self.bulk_issue(job, item, &row, options, devices),
                    BulkKind::Revoke => self.bulk_revoke(job, &row),
                    BulkKind::Reconcile => self.bulk_reconcile(job, &row, options),
                };
                match r {
                    Ok(o) => (BulkItemStatus::Done, o, false),
                    Err(e @ Error::Engine(EngineError::SimulatedCrash { .. })) => return Err(e),
                    Err(e) => (BulkItemStatus::Failed, e.to_string(), false),
                }
            }
        };
        self.store.bulk_set_item(
            job.job_id,
            item.line,
            status,
            Some(&outcome),
            super::ms(now_ms()),
        )?;
        Ok((status, outcome, was_settled))
    }

    /// The IdP object ids a user name may stand for (as given, and as each connection
    /// resolves it).
    fn user_ids(&self, user: &str) -> Vec<String> {
        let mut ids = vec![user.to_owned()];
        for idp in self.idps.values() {
            if let Ok(u) = idp.user(user) {
                if !ids.contains(&u.id) {
                    ids.push(u.id);
                }
            }
        }
        ids
    }

    fn keys_of(&self, user: &str) -> Result<Vec<KeyRecord>, Error> {
        let mut keys: Vec<KeyRecord> = Vec::new();
        for id in self.user_ids(user) {
            for k in self.store.find_keys(&KeyQuery::ByUser(id))? {
                if !keys.iter().any(|x| x.key_id == k.key_id) {
                    keys.push(k);
                }
            }
        }
        Ok(keys)
    }

    /// For an item a crash left running: `Some(outcome)` if its effect is already in
    /// the repository.
    fn settle_item(&self, kind: BulkKind, row: &Row) -> Result<Option<String>, Error> {
        match kind {
            BulkKind::Revoke => {
                let keys = match (&row.key_id, &row.user) {
                    (Some(k), _) => self.store.get_key(k)?.into_iter().collect(),
                    (None, Some(u)) => self.keys_of(u)?,
                    (None, None) => Vec::new(),
                };
                let all_revoked =
                    !keys.is_empty() && keys.iter().all(|k| k.state == CredentialState::Revoked);
                Ok(all_revoked.then(|| "already revoked (settled after a restart)".to_owned()))
            }
            BulkKind::Issue => {
                let (Some(user), Some(serial)) = (&row.user, &row.serial) else {
                    return Ok(None);
                };
                let ids = self.user_ids(user);
                let held = self
                    .store
                    .find_keys(&KeyQuery::BySerial(serial.clone()))?
                    .into_iter()
                    .find(|k| {
                        matches!(k.state, CredentialState::Issued | CredentialState::Active)
                            && k.user_id.as_ref().is_some_and(|u| ids.contains(u))
                    });
                Ok(held
                    .map(|k| format!("key {} already issued (settled after a restart)", k.key_id)))
            }
            BulkKind::Reconcile => Ok(None),
        }
    }

    fn bulk_issue(
        &self,
        job: &BulkJob,
        item: &BulkItem,
        row: &Row,
        options: &BulkOptions,
        devices: &mut dyn FnMut(&BulkDeviceRequest) -> Result<BulkDevice, String>,
    ) -> Result<String, Error> {
        let missing = |what: &'static str| EngineError::Csv {
            line: item.line,
            column: 0,
            message: format!("{what} is missing"),
        };
        let user = row.user.clone().ok_or_else(|| missing("user"))?;
        let serial = row.serial.clone().ok_or_else(|| missing("serial"))?;
        let name = row
            .template
            .clone()
            .or_else(|| options.default_template.clone())
            .ok_or_else(|| missing("template (no template column and no default template)"))?;
        let templates = self
            .templates
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&name)
            .cloned()
            .ok_or(EngineError::UnknownTemplate { template: name })?;
        let mut device = devices(&BulkDeviceRequest {
            job_id: job.job_id,
            line: item.line,
            user: user.clone(),
            serial: serial.clone(),
        })
        .map_err(|message| EngineError::Device {
            step: "open",
            cause: crate::DeviceError::NotFound { message },
        })?;
        let request = IssueRequest {
            actor: job.actor.clone(),
            user,
            serial,
            transport: device.transport,
            can_reset_in_place: device.can_reset_in_place,
        };
        let k = self.issue(&request, &templates, &mut device.authenticator, now_ms())?;
        Ok(format!("key {} issued ({})", k.key_id, k.state))
    }

    fn bulk_revoke(&self, job: &BulkJob, row: &Row) -> Result<String, Error> {
        let keys = match (&row.key_id, &row.user) {
            (Some(k), _) => vec![self.key(k)?],
            (None, Some(u)) => self.keys_of(u)?,
            (None, None) => Vec::new(),
        };
        if keys.is_empty() {
            return Err(EngineError::NotIssued {
                key_id: row.user.clone().unwrap_or_default(),
                what: "key (the user holds none)",
            }
            .into());
        }
        let mut revoked = Vec::new();
        for k in keys {
            match k.state {
                CredentialState::Revoked => {}
                CredentialState::Issued | CredentialState::Active | CredentialState::Inactive => {
                    self.revoke(&job.actor, &k.key_id, row.force, now_ms())?;
                    revoked.push(k.key_id);
                }
                // A user's retired or unregistered keys are not revoked; a named key is.
                _ if row.key_id.is_none() => {}
                _ => {
                    self.revoke(&job.actor, &k.key_id, row.force, now_ms())?;
                }
            }
        }
        Ok(if revoked.is_empty() {
            "already revoked".to_owned()
        } else {
            format!("revoked {}", revoked.join(", "))
        })
    }

    fn bulk_reconcile(
        &self,
        job: &BulkJob,
        row: &Row,
        options: &BulkOptions,
    ) -> Result<String, Error> {
        let user = row.user.clone().unwrap_or_default();
        let report = self.reconcile(
            &job.actor,
            std::slice::from_ref(&user),
            &ReconcileOptions {
                fix: options.fix,
                delete_unknown: options.delete_unknown,
            },
            now_ms(),
        )?;
        if let Some(f) = report
            .findings
            .iter()
            .find(|f| f.kind == DriftKind::CheckFailed)
        {
            return Err(EngineError::Unsupported {
                step: "reconcile",
                reason: format!(
                    "{} could not be checked at {}: {}",
                    user,
                    f.idp_connection,
                    f.error.as_deref().unwrap_or("")
                ),
            }
            .into());
        }
        let fixed = report.findings.iter().filter(|f| f.fixed).count();
        Ok(format!(
            "{} finding(s), {fixed} fixed",
            report.findings.len()
        ))
    }

    /// A view of this engine whose IdP calls go through `limiter`; it takes over a
    /// pending simulated crash.
    fn view(&self, limiter: Option<Arc<RateLimiter>>) -> Engine {
        let idps: BTreeMap<String, Arc<dyn Idp>> = self
            .idps
            .iter()
            .map(|(n, i)| {
                let idp: Arc<dyn Idp> = match &limiter {
                    Some(l) => Arc::new(Throttled {
                        inner: i.clone(),
                        limiter: l.clone(),
                    }),
                    None => i.clone(),
                };
                (n.clone(), idp)
            })
            .collect();
        let crash = self
            .crash
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        Engine {
            store: self.store.clone(),
            idps,
            pin_key: self.pin_key.clone(),
            station: self.station.clone(),
            templates: RwLock::new(
                self.templates
                    .read()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone(),
            ),
            crash: Mutex::new(crash),
            probe: self.probe.clone(),
            prompt: self.prompt.clone(),
            verifiers: Mutex::new(
                self.verifiers
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quoting_and_line_numbers() {
        let r = parse_csv("user,serial\r\n\"a,b\",\"x\"\"y\"\n\n\"multi\nline\",s2\n").unwrap();
        assert_eq!(r.len(), 3);
        assert_eq!(r[1], (2, vec!["a,b".to_owned(), "x\"y".to_owned()]));
        assert_eq!(r[2], (4, vec!["multi\nline".to_owned(), "s2".to_owned()]));
    }

    #[test]
    fn csv_errors_name_line_and_column() {
        let e = parse_csv("a,b\nx,y\"z\n").unwrap_err().to_string();
        assert_eq!(
            e,
            "CSV line 2, column 2: a quote inside an unquoted field (quote the whole field and double the quote)"
        );
        let e = parse_csv("a\n\"open\n").unwrap_err().to_string();
        assert!(
            e.starts_with("CSV line 2, column 1: quoted field is not closed"),
            "{e}"
        );
        let long = format!("a\n{}\n", "x".repeat(MAX_CSV_LINE + 1));
        assert!(parse_csv(&long)
            .unwrap_err()
            .to_string()
            .starts_with("CSV line 2, column 0"));
        let e = rows_for(BulkKind::Issue, "user,serial\nkim,\n")
            .unwrap_err()
            .to_string();
        assert_eq!(e, "CSV line 2, column 2: serial is empty");
        let e = rows_for(BulkKind::Issue, "user,colour\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("CSV line 1, column 2: unknown column \"colour\""),
            "{e}"
        );
        let e = rows_for(BulkKind::Revoke, "key_id,force\nk1,maybe\n")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "CSV line 2, column 2: force \"maybe\" is not true or false"
        );
        let e = rows_for(BulkKind::Reconcile, "user\nkim,extra\n")
            .unwrap_err()
            .to_string();
        assert_eq!(e, "CSV line 2, column 0: 2 fields, the header has 1");
        assert!(rows_for(BulkKind::Reconcile, "").is_err());
        assert!(rows_for(BulkKind::Reconcile, "user\n").is_err());
    }

    #[test]
    fn rows_are_normalized() {
        let rows = rows_for(BulkKind::Revoke, "User,Force\n kim ,yes\nlee,\n").unwrap();
        assert_eq!(rows[0].1.user.as_deref(), Some("kim"));
        assert_eq!(rows[0].1.force, Some(true));
        assert_eq!(rows[1].1.force, None);
    }
}
