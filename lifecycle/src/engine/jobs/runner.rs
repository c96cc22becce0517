//! The bulk job runner: records a job from its CSV and works through its items,
//! resumably (see the module above for the rules).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha256};

use super::fence::{heartbeat, FencedStore};

use super::csv::{rows_for, Row};
use super::throttle::{RateLimiter, Throttled};
use super::{
    BulkClock, BulkDevice, BulkDeviceRequest, BulkItemResult, BulkKind, BulkOptions, BulkProgress,
    BulkSummary, SerialSource, MAX_WORKERS, MIN_CLAIM_LEASE_MS, PAGE,
};
use crate::engine::reconcile::{DriftKind, ReconcileOptions};
use crate::engine::{
    CrashPoint, Engine, EngineError, IssueRequest, JobError, LookupError, PlanError, UnixMillis,
};
use crate::idp::Idp;
use crate::model::CredentialState;
use crate::store::{
    BulkClaim, BulkItem, BulkItemStatus, BulkJob, KeyQuery, KeyRecord, NewBulkItem, NewBulkJob,
    Store, StoreError,
};
use crate::Error;

/// One run of a job: what every item of it is run with.
#[derive(Clone, Copy)]
struct JobRun<'a> {
    job: &'a BulkJob,
    kind: BulkKind,
    options: &'a BulkOptions,
    clock: &'a BulkClock,
    /// The view's repository, whose writes a held row fences.
    fenced: &'a FencedStore,
    /// This runner's name in row claims.
    owner: &'a str,
    /// How long a claim lasts unless renewed.
    lease_ms: u64,
    /// True once the caller asked the run to stop (checked between rows).
    stop: &'a (dyn Fn() -> bool + Sync),
}

/// The error a stopped run ends with (`left`: rows not done).
fn stopped(job_id: i64, left: u64) -> Error {
    Error::Engine(EngineError::Job(JobError::Stopped { job_id, left }))
}

impl JobRun<'_> {
    /// `Err(Stopped)` once the caller asked the run to stop.
    fn check_stop(&self) -> Result<(), Error> {
        if (self.stop)() {
            Err(stopped(self.job.job_id, 0))
        } else {
            Ok(())
        }
    }
}

/// How one item ended in this run.
struct ItemOutcome {
    /// `done` or `failed`.
    status: BulkItemStatus,
    /// What happened.
    outcome: String,
    /// A crash had left it running and it was found finished (settled, not run).
    settled: bool,
}

/// A runner's name in row claims: the station, the process and a random part, so two
/// runs never share claims (a rerun after a crash waits for the dead run's claims to
/// expire).
/// The IdPs' per-job read caches, on for as long as this lives.
struct BulkReads<'a>(&'a BTreeMap<String, Arc<dyn Idp>>);

impl<'a> BulkReads<'a> {
    fn start(idps: &'a BTreeMap<String, Arc<dyn Idp>>) -> Self {
        for i in idps.values() {
            i.bulk_started();
        }
        BulkReads(idps)
    }
}

impl Drop for BulkReads<'_> {
    fn drop(&mut self) {
        for i in self.0.values() {
            i.bulk_ended();
        }
    }
}

fn runner_name(station: &str) -> String {
    let mut r = [0u8; 6];
    OsRng.fill_bytes(&mut r);
    let hex = base16ct::lower::encode_string(&r);
    format!("{station}#{}-{hex}", std::process::id())
}

/// Whether another runner holds `item` now.
fn held_elsewhere(item: &BulkItem, owner: &str, now: UnixMillis) -> bool {
    item.status == BulkItemStatus::Running
        && item.claimed_until_ms > now
        && item.claimed_by.as_deref() != Some(owner)
}

impl Engine {
    /// Records a bulk job from CSV text (validated whole first: errors name the line and
    /// column). While a job of the same kind from the same file (by SHA-256) is
    /// unfinished (a row not run yet, or left running) that job is returned instead, so
    /// an interrupted job is resumed by creating it again; once every row of it has run,
    /// the same file makes a new job (last month's revoke list submitted again revokes
    /// again). A finished job is run again only by its id ([`Engine::bulk_run`]).
    pub fn bulk_create(
        &self,
        kind: BulkKind,
        csv_text: &str,
        actor: &str,
        now: UnixMillis,
    ) -> Result<BulkJob, Error> {
        let hash = base16ct::lower::encode_string(&Sha256::digest(csv_text.as_bytes()));
        if let Some(job) = self.store.bulk_open_job(kind.as_str(), &hash)? {
            return Ok(job);
        }
        let rows = rows_for(kind, csv_text)?;
        let items = rows
            .into_iter()
            .map(|(line, row)| NewBulkItem {
                line,
                input: serde_json::to_string(&row).unwrap_or_default(),
            })
            .collect();
        let job = NewBulkJob {
            kind: kind.as_str().to_owned(),
            source_hash: hash.clone(),
            actor: actor.to_owned(),
            items,
        };
        match self.store.bulk_create(&job, now) {
            Ok(j) => Ok(j),
            // Another station created it at the same moment.
            Err(crate::store::StoreError::Duplicate { .. }) => self
                .store
                .bulk_open_job(kind.as_str(), &hash)?
                .ok_or_else(|| LookupError::UnknownBulkJob { job_id: 0 }.into()),
            Err(e) => Err(e.into()),
        }
    }

    /// The bulk job recorded as `job_id`, finished or not (to resume it by id).
    pub fn bulk_job(&self, job_id: i64) -> Result<BulkJob, Error> {
        Ok(self
            .store
            .bulk_job(job_id)?
            .ok_or(LookupError::UnknownBulkJob { job_id })?)
    }

    /// Runs (or resumes) a bulk job: every item not done yet is run, after the journal is
    /// replayed. Each row is claimed first (a lease renewed while it runs, with a fencing
    /// token every write for the row checks), so several runners, on this station or
    /// others, share one job: each row is run by one of them, a row another runner holds
    /// is waited for, and a row whose runner died (its claim expired) is settled by
    /// looking at the repository, then run. Returns when every row has run; the job is
    /// then recorded as finished. `clock` gives the time for each item (the runner never
    /// reads the system clock itself). `devices` supplies the key for each issue row (an
    /// `Err` fails that row); `progress` is called on this thread after each item.
    pub fn bulk_run(
        &self,
        job_id: i64,
        options: &BulkOptions,
        clock: &BulkClock,
        devices: &mut dyn FnMut(&BulkDeviceRequest) -> Result<BulkDevice, String>,
        progress: &mut dyn FnMut(&BulkProgress),
    ) -> Result<BulkSummary, Error> {
        self.bulk_run_stoppable(job_id, options, clock, devices, progress, &|| false)
    }

    /// [`Engine::bulk_run`] that `stop` can end early: it is asked before each row (and
    /// by each worker before it takes a row) and, once it returns true, no further row
    /// starts; the rows in progress finish and are recorded, and the run fails with
    /// [`JobError::Stopped`]. The rows not run stay to do and the job unfinished, so a
    /// later run resumes it. `stop` is called from the runner's threads.
    pub fn bulk_run_stoppable(
        &self,
        job_id: i64,
        options: &BulkOptions,
        clock: &BulkClock,
        devices: &mut dyn FnMut(&BulkDeviceRequest) -> Result<BulkDevice, String>,
        progress: &mut dyn FnMut(&BulkProgress),
        stop: &(dyn Fn() -> bool + Sync),
    ) -> Result<BulkSummary, Error> {
        match self.bulk_run_inner(job_id, options, clock, devices, progress, stop) {
            Err(Error::Engine(EngineError::Job(JobError::Stopped { job_id, .. }))) => {
                let c = self.store.bulk_counts(job_id)?;
                let left = c.pending + c.running + c.failed;
                tracing::info!(job = job_id, left, "bulk run stopped by the caller");
                Err(stopped(job_id, left))
            }
            other => other,
        }
    }

    fn bulk_run_inner(
        &self,
        job_id: i64,
        options: &BulkOptions,
        clock: &BulkClock,
        devices: &mut dyn FnMut(&BulkDeviceRequest) -> Result<BulkDevice, String>,
        progress: &mut dyn FnMut(&BulkProgress),
        stop: &(dyn Fn() -> bool + Sync),
    ) -> Result<BulkSummary, Error> {
        let job = self.bulk_job(job_id)?;
        let kind = BulkKind::parse(&job.kind).ok_or_else(|| crate::store::StoreError::Corrupt {
            what: format!("bulk_jobs.kind: unknown {:?}", job.kind),
        })?;
        let limiter = options
            .max_idp_calls_per_sec
            .and_then(RateLimiter::new)
            .map(Arc::new);
        let fenced = Arc::new(FencedStore::new(self.store.clone()));
        let view = self.view(limiter, fenced.clone());
        // Directory reads the rows repeat (the IdP's policy) are kept for the job.
        let _reads = BulkReads::start(&self.idps);
        view.replay_journal(clock())?;
        let counts = self.store.bulk_counts(job_id)?;
        let mut summary = BulkSummary {
            job_id,
            kind,
            total: job.total,
            done: counts.done,
            failed: 0,
            skipped: counts.done,
            settled: 0,
            run_elsewhere: 0,
            items: Vec::new(),
        };
        if !options.retry_failed {
            summary.failed = counts.failed;
        }
        let owner = runner_name(&self.station);
        let lease_ms = options.claim_lease_ms.max(MIN_CLAIM_LEASE_MS);
        let run = JobRun {
            job: &job,
            kind,
            options,
            clock,
            fenced: &fenced,
            owner: &owner,
            lease_ms,
            stop,
        };
        // Rows another runner holds (or claimed first): waited for below.
        let mut waiting = BTreeSet::new();
        let mut after = None;
        loop {
            let page = self.store.bulk_items(job_id, after, PAGE)?;
            let Some(last) = page.last() else { break };
            after = Some(last.line);
            let now = clock();
            let mut todo = Vec::new();
            for i in page {
                match i.status {
                    BulkItemStatus::Done => {}
                    BulkItemStatus::Failed if !options.retry_failed => {}
                    _ if held_elsewhere(&i, &owner, now) => {
                        waiting.insert(i.line);
                    }
                    _ => todo.push(i),
                }
            }
            view.run_items(run, todo, devices, &mut summary, progress, &mut waiting)?;
        }
        let poll = Duration::from_millis((lease_ms / 10).clamp(20, 1_000));
        if !waiting.is_empty() {
            tracing::info!(
                job = job_id,
                rows = waiting.len(),
                "waiting for rows another runner holds (taken over when its claim expires)"
            );
        }
        while !waiting.is_empty() {
            run.check_stop()?;
            std::thread::sleep(poll);
            let now = clock();
            let mut todo = Vec::new();
            for line in waiting.clone() {
                let item = self
                    .store
                    .bulk_items(job_id, line.checked_sub(1), 1)?
                    .into_iter()
                    .find(|i| i.line == line);
                match item {
                    Some(i) if held_elsewhere(&i, &owner, now) => {}
                    Some(i)
                        if !matches!(i.status, BulkItemStatus::Done | BulkItemStatus::Failed) =>
                    {
                        todo.push(i)
                    }
                    // Finished by the runner that held it (or gone).
                    _ => {
                        waiting.remove(&line);
                        summary.run_elsewhere += 1;
                    }
                }
            }
            for i in &todo {
                waiting.remove(&i.line);
            }
            view.run_items(run, todo, devices, &mut summary, progress, &mut waiting)?;
        }
        self.store.bulk_finish_job(job_id, clock())?;
        let counts = self.store.bulk_counts(job_id)?;
        summary.done = counts.done;
        summary.failed = counts.failed;
        Ok(summary)
    }

    /// Runs `todo` (on the option's workers for revoke and reconcile rows); a row another
    /// runner claimed first goes to `waiting`.
    fn run_items(
        &self,
        run: JobRun<'_>,
        todo: Vec<BulkItem>,
        devices: &mut dyn FnMut(&BulkDeviceRequest) -> Result<BulkDevice, String>,
        summary: &mut BulkSummary,
        progress: &mut dyn FnMut(&BulkProgress),
        waiting: &mut BTreeSet<u64>,
    ) -> Result<(), Error> {
        self.announce_users(run.kind, &todo);
        if run.kind == BulkKind::Issue || run.options.workers <= 1 {
            for item in todo {
                run.check_stop()?;
                match self.bulk_item(run, &item, &mut *devices)? {
                    Some(r) => {
                        self.record(run.job, run.options.keep_items, &item, r, summary, progress)
                    }
                    None => {
                        waiting.insert(item.line);
                    }
                }
            }
            Ok(())
        } else {
            self.run_parallel(run, todo, summary, progress, waiting)
        }
    }

    fn record(
        &self,
        job: &BulkJob,
        keep_items: bool,
        item: &BulkItem,
        ItemOutcome {
            status,
            outcome,
            settled,
        }: ItemOutcome,
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
        let mut p = BulkProgress {
            job_id: job.job_id,
            done: summary.done,
            failed: summary.failed,
            total: summary.total,
            line: item.line,
            status,
            outcome,
        };
        progress(&p);
        if keep_items {
            summary.items.push(BulkItemResult {
                line: item.line,
                status,
                outcome: std::mem::take(&mut p.outcome),
            });
        }
    }

    fn run_parallel(
        &self,
        run: JobRun<'_>,
        todo: Vec<BulkItem>,
        summary: &mut BulkSummary,
        progress: &mut dyn FnMut(&BulkProgress),
        waiting: &mut BTreeSet<u64>,
    ) -> Result<(), Error> {
        let JobRun { job, options, .. } = run;
        let workers = options.workers.clamp(1, MAX_WORKERS).min(todo.len().max(1));
        let queue = Mutex::new(todo.into_iter().collect::<VecDeque<_>>());
        type Sent = (BulkItem, Result<Option<ItemOutcome>, Error>);
        let (tx, rx) = mpsc::channel::<Sent>();
        let mut first_error = None;
        std::thread::scope(|scope| {
            for _ in 0..workers {
                let tx = tx.clone();
                let queue = &queue;
                scope.spawn(move || loop {
                    if (run.stop)() {
                        break;
                    }
                    let next = queue
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .pop_front();
                    let Some(item) = next else { break };
                    let mut no_device = |_: &BulkDeviceRequest| -> Result<BulkDevice, String> {
                        Err("no device for this job kind".into())
                    };
                    let r = self.bulk_item(run, &item, &mut no_device);
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
                    Ok(Some(r)) => {
                        self.record(job, options.keep_items, &item, r, summary, progress)
                    }
                    Ok(None) => {
                        waiting.insert(item.line);
                    }
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
            // Rows left in the queue when the workers stopped.
            None if !queue
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .is_empty() =>
            {
                Err(stopped(job.job_id, 0))
            }
            None => Ok(()),
        }
    }

    /// Runs one item: claims it (`None`: another runner has it), settles or runs it with
    /// its claim renewed meanwhile and every write fenced by it, records the outcome. An
    /// `Err` is a failure of the repository (the item stays running, its claim expires).
    fn bulk_item(
        &self,
        run: JobRun<'_>,
        item: &BulkItem,
        devices: &mut dyn FnMut(&BulkDeviceRequest) -> Result<BulkDevice, String>,
    ) -> Result<Option<ItemOutcome>, Error> {
        let JobRun {
            job,
            clock,
            fenced,
            owner,
            lease_ms,
            ..
        } = run;
        let row: Row =
            serde_json::from_str(&item.input).map_err(|e| crate::store::StoreError::Corrupt {
                what: format!("bulk item {}:{}: {e}", job.job_id, item.line),
            })?;
        let Some(claim) = fenced.bulk_claim_item(
            job.job_id,
            item.line,
            item.claim_token,
            item.status,
            owner,
            clock(),
            lease_ms,
        )?
        else {
            return Ok(None);
        };
        let fence = claim.fence.clone();
        let (stop, stopped) = mpsc::channel::<()>();
        let raw = fenced.inner();
        let r = std::thread::scope(|scope| {
            let beat = &fence;
            scope.spawn(move || heartbeat(raw, beat, clock, lease_ms, &stopped));
            let r = {
                let _held = fenced.hold(fence.clone());
                self.claimed_item(run, item, &row, &claim, devices)
            };
            drop(stop);
            r
        });
        match r {
            Err(Error::Store(StoreError::ClaimLost { .. })) => Ok(None),
            other => other.map(Some),
        }
    }

    /// Runs an item this runner has claimed (writes fenced by the claim).
    fn claimed_item(
        &self,
        run: JobRun<'_>,
        item: &BulkItem,
        row: &Row,
        claim: &BulkClaim,
        devices: &mut dyn FnMut(&BulkDeviceRequest) -> Result<BulkDevice, String>,
    ) -> Result<ItemOutcome, Error> {
        let JobRun {
            job,
            kind,
            options,
            clock,
            fenced,
            ..
        } = run;
        self.maybe_crash(CrashPoint::BulkItemStarted)?;
        let settled = if claim.previous == BulkItemStatus::Running {
            self.settle_item(kind, row)?
        } else {
            None
        };
        let now = clock();
        let (status, outcome, was_settled) = match settled {
            Some(o) => (BulkItemStatus::Done, o, true),
            None => {
                let r = match kind {
                    BulkKind::Issue => self.bulk_issue(job, item, row, options, devices, now),
                    BulkKind::Revoke => self.bulk_revoke(job, row, now),
                    BulkKind::Reconcile => self.bulk_reconcile(job, row, options, now),
                };
                match r {
                    Ok(o) => (BulkItemStatus::Done, o, false),
                    Err(e @ Error::Engine(EngineError::SimulatedCrash { .. })) => return Err(e),
                    // Another runner took the row over: it records the row, not this one.
                    Err(e @ Error::Store(StoreError::ClaimLost { .. })) => return Err(e),
                    Err(e) => (BulkItemStatus::Failed, e.to_string(), false),
                }
            }
        };
        fenced.bulk_finish_item(&claim.fence, status, Some(&outcome), clock())?;
        Ok(ItemOutcome {
            status,
            outcome,
            settled: was_settled,
        })
    }

    /// Tells the IdPs which users the issue and revoke rows of `todo` look up, in order,
    /// so that they can read them in batches (Entra: 15 a request).
    fn announce_users(&self, kind: BulkKind, todo: &[BulkItem]) {
        if !matches!(kind, BulkKind::Issue | BulkKind::Revoke) {
            return;
        }
        let users: Vec<String> = todo
            .iter()
            .filter_map(|i| serde_json::from_str::<Row>(&i.input).ok())
            .filter(|r| kind == BulkKind::Issue || r.key_id.is_none())
            .filter_map(|r| r.user)
            .collect();
        if !users.is_empty() {
            for idp in self.idps.values() {
                idp.bulk_users(&users);
            }
        }
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
                // A row that also deletes foreign passkeys is run again (it is idempotent:
                // what is gone is no longer listed).
                let all_revoked = row.include_foreign != Some(true)
                    && !keys.is_empty()
                    && keys.iter().all(|k| k.state == CredentialState::Revoked);
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
        now: UnixMillis,
    ) -> Result<String, Error> {
        let missing = |what: &'static str| JobError::Csv {
            line: item.line,
            column: 0,
            message: format!("{what} is missing"),
        };
        let serial = row.serial.clone().ok_or_else(|| missing("serial"))?;
        let name = row
            .template
            .clone()
            .or_else(|| options.default_template.clone())
            .ok_or_else(|| missing("template (no template column and no default template)"))?;
        // Unknown templates fail the row before a key is asked for.
        let templates = self.loaded_template(&name)?;
        let user = match (&row.user, &row.employee_id) {
            (Some(u), _) => u.clone(),
            // HR-driven issuance: the directory says who has this employee id.
            (None, Some(e)) => {
                let connection = templates
                    .passkey_templates()
                    .first()
                    .map(|t| t.idp.connection.clone())
                    .unwrap_or_default();
                self.idp(&connection)?
                    .find_user_by("employeeId", e)?
                    .map(|u| u.id)
                    .ok_or_else(|| JobError::Csv {
                        line: item.line,
                        column: 0,
                        message: format!("no directory user has employee id {e:?}"),
                    })?
            }
            (None, None) => return Err(missing("user (or employee_id)").into()),
        };
        let mut device = devices(&BulkDeviceRequest {
            job_id: job.job_id,
            line: item.line,
            user: user.clone(),
            serial: serial.clone(),
        })
        .map_err(|message| EngineError::Device {
            step: "open",
            cause: crate::DeviceFault::NotFound { message }.into(),
        })?;
        let claimed = right_key_for_the_row(&device.evidence, &serial)?;
        let request = IssueRequest {
            actor: job.actor.clone(),
            user,
            serial,
            transport: device.transport,
            can_reset_in_place: device.can_reset_in_place,
        };
        let k = self
            .issue_claimed(&request, &name, claimed, &mut device.authenticator, now)
            .map_err(wrong_key_for_the_row)?;
        // What the key proved after its PIN was set wins over what it reported.
        let source = k
            .serial_source
            .as_deref()
            .and_then(SerialSource::parse)
            .unwrap_or(claimed);
        Ok(format!(
            "key {} issued ({}); serial from {}",
            k.key_id,
            k.state,
            source.describe()
        ))
    }

    fn bulk_revoke(&self, job: &BulkJob, row: &Row, now: UnixMillis) -> Result<String, Error> {
        let keys = match (&row.key_id, &row.user) {
            (Some(k), _) => vec![self.key(k)?],
            (None, Some(u)) => self.keys_of(u)?,
            (None, None) => Vec::new(),
        };
        let foreign = row.include_foreign == Some(true) && row.key_id.is_none();
        if keys.is_empty() && !foreign {
            return Err(LookupError::NotIssued {
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
                    self.revoke(&job.actor, &k.key_id, row.force, now)?;
                    revoked.push(k.key_id);
                }
                // A user's retired or unregistered keys are not revoked; a named key is.
                _ if row.key_id.is_none() => {}
                _ => {
                    self.revoke(&job.actor, &k.key_id, row.force, now)?;
                }
            }
        }
        let mut outcome = if revoked.is_empty() {
            "already revoked".to_owned()
        } else {
            format!("revoked {}", revoked.join(", "))
        };
        if let (true, Some(user)) = (foreign, &row.user) {
            outcome.push_str(&self.revoke_foreign_row(&job.actor, user, now)?);
        }
        Ok(outcome)
    }

    fn bulk_reconcile(
        &self,
        job: &BulkJob,
        row: &Row,
        options: &BulkOptions,
        now: UnixMillis,
    ) -> Result<String, Error> {
        let user = row.user.clone().unwrap_or_default();
        let report = self.reconcile(
            &job.actor,
            std::slice::from_ref(&user),
            &ReconcileOptions {
                fix: options.fix,
                delete_unknown: options.delete_unknown,
            },
            now,
        )?;
        if let Some(f) = report
            .findings
            .iter()
            .find(|f| f.kind == DriftKind::CheckFailed)
        {
            return Err(PlanError::Unsupported {
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

    /// A view of this engine over `store` whose IdP calls go through `limiter`; it takes
    /// over a pending simulated crash.
    fn view(&self, limiter: Option<Arc<RateLimiter>>, store: Arc<FencedStore>) -> Engine {
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
        Engine {
            store,
            idps,
            pin_key: self.pin_key.clone(),
            station: self.station.clone(),
            templates: RwLock::new(
                self.templates
                    .read()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone(),
            ),
            faults: self.faults.take_over(),
            prompt: self.prompt.clone(),
            verifiers: Mutex::new(
                self.verifiers
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone(),
            ),
            trust: self.trust.clone(),
            live: self.live.clone(),
        }
    }
}

/// The right key for the right row: refuses the row when several keys are attached (the
/// station cannot tell which is the row's) or the key's own serial is not the row's.
/// Returns where the serial recorded for the key comes from.
fn right_key_for_the_row(
    evidence: &super::KeyEvidence,
    row_serial: &str,
) -> Result<SerialSource, Error> {
    let refuse = |message: String| -> Error { JobError::WrongKeyForRow { message }.into() };
    if let Some(n) = evidence.keys_attached.filter(|n| *n > 1) {
        return Err(refuse(format!(
            "{n} security keys are attached: leave only the key for serial {row_serial} attached (the station cannot tell which one is the row's)"
        )));
    }
    match &evidence.serial {
        Some(s) if s.value != row_serial => Err(refuse(format!(
            "the attached key reports serial {} ({}) but the row names {row_serial}: attach the row's key",
            s.value,
            s.source.describe()
        ))),
        Some(s) => Ok(s.source),
        None => Ok(SerialSource::Claimed),
    }
}

/// A key that proved to be another than the one recorded for the row's serial is the
/// wrong key for the row.
fn wrong_key_for_the_row(e: Error) -> Error {
    match e {
        Error::Engine(EngineError::NotTheRecordedKey { message, .. }) => {
            JobError::WrongKeyForRow { message }.into()
        }
        other => other,
    }
}
