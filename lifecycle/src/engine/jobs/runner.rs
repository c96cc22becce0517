//! The bulk job runner: records a job from its CSV and works through its items,
//! resumably (see the module above for the rules).

use std::collections::{BTreeMap, VecDeque};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use sha2::{Digest, Sha256};

use super::csv::{rows_for, Row};
use super::throttle::{RateLimiter, Throttled};
use super::{
    BulkClock, BulkDevice, BulkDeviceRequest, BulkItemResult, BulkKind, BulkOptions, BulkProgress,
    BulkSummary, MAX_WORKERS, PAGE,
};
use crate::engine::reconcile::{DriftKind, ReconcileOptions};
use crate::engine::{
    CrashPoint, Engine, EngineError, IssueRequest, JobError, LookupError, PlanError, UnixMillis,
};
use crate::idp::Idp;
use crate::model::CredentialState;
use crate::store::{
    BulkItem, BulkItemStatus, BulkJob, KeyQuery, KeyRecord, NewBulkItem, NewBulkJob,
};
use crate::Error;

/// One run of a job: what every item of it is run with.
#[derive(Clone, Copy)]
struct JobRun<'a> {
    job: &'a BulkJob,
    kind: BulkKind,
    options: &'a BulkOptions,
    clock: &'a BulkClock,
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
                .bulk_job_by_source(kind.as_str(), &hash)?
                .ok_or_else(|| LookupError::UnknownBulkJob { job_id: 0 }.into()),
            Err(e) => Err(e.into()),
        }
    }

    /// Runs (or resumes) a bulk job: every item not done yet is run, after the journal is
    /// replayed and items left running by a crash are settled. `clock` gives the time for
    /// each item (the runner never reads the system clock itself). `devices` supplies the key
    /// for each issue row (an `Err` fails that row); `progress` is called on this thread
    /// after each item.
    pub fn bulk_run(
        &self,
        job_id: i64,
        options: &BulkOptions,
        clock: &BulkClock,
        devices: &mut dyn FnMut(&BulkDeviceRequest) -> Result<BulkDevice, String>,
        progress: &mut dyn FnMut(&BulkProgress),
    ) -> Result<BulkSummary, Error> {
        let job = self
            .store
            .bulk_job(job_id)?
            .ok_or(LookupError::UnknownBulkJob { job_id })?;
        let kind = BulkKind::parse(&job.kind).ok_or_else(|| crate::store::StoreError::Corrupt {
            what: format!("bulk_jobs.kind: unknown {:?}", job.kind),
        })?;
        let limiter = options
            .max_idp_calls_per_sec
            .and_then(RateLimiter::new)
            .map(Arc::new);
        let view = self.view(limiter);
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
            items: Vec::new(),
        };
        if !options.retry_failed {
            summary.failed = counts.failed;
        }
        let run = JobRun {
            job: &job,
            kind,
            options,
            clock,
        };
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
                    let r = view.bulk_item(run, &item, &mut *devices)?;
                    self.record(&job, &item, r, &mut summary, progress);
                }
            } else {
                view.run_parallel(run, todo, &mut summary, progress)?;
            }
        }
        Ok(summary)
    }

    fn record(
        &self,
        job: &BulkJob,
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
        run: JobRun<'_>,
        todo: Vec<BulkItem>,
        summary: &mut BulkSummary,
        progress: &mut dyn FnMut(&BulkProgress),
    ) -> Result<(), Error> {
        let JobRun { job, options, .. } = run;
        let workers = options.workers.clamp(1, MAX_WORKERS).min(todo.len().max(1));
        let queue = Mutex::new(todo.into_iter().collect::<VecDeque<_>>());
        let (tx, rx) = mpsc::channel::<(BulkItem, Result<ItemOutcome, Error>)>();
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
        run: JobRun<'_>,
        item: &BulkItem,
        devices: &mut dyn FnMut(&BulkDeviceRequest) -> Result<BulkDevice, String>,
    ) -> Result<ItemOutcome, Error> {
        let JobRun {
            job,
            kind,
            options,
            clock,
        } = run;
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
            clock(),
        )?;
        self.maybe_crash(CrashPoint::BulkItemStarted)?;
        let settled = if was_running {
            self.settle_item(kind, &row)?
        } else {
            None
        };
        let now = clock();
        let (status, outcome, was_settled) = match settled {
            Some(o) => (BulkItemStatus::Done, o, true),
            None => {
                let r = match kind {
                    BulkKind::Issue => self.bulk_issue(job, item, &row, options, devices, now),
                    BulkKind::Revoke => self.bulk_revoke(job, &row, now),
                    BulkKind::Reconcile => self.bulk_reconcile(job, &row, options, now),
                };
                match r {
                    Ok(o) => (BulkItemStatus::Done, o, false),
                    Err(e @ Error::Engine(EngineError::SimulatedCrash { .. })) => return Err(e),
                    Err(e) => (BulkItemStatus::Failed, e.to_string(), false),
                }
            }
        };
        self.store
            .bulk_set_item(job.job_id, item.line, status, Some(&outcome), clock())?;
        Ok(ItemOutcome {
            status,
            outcome,
            settled: was_settled,
        })
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
        now: UnixMillis,
    ) -> Result<String, Error> {
        let missing = |what: &'static str| JobError::Csv {
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
        // Unknown templates fail the row before a key is asked for.
        self.loaded_template(&name)?;
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
        let k = self.issue(&request, &name, &mut device.authenticator, now)?;
        Ok(format!("key {} issued ({})", k.key_id, k.state))
    }

    fn bulk_revoke(&self, job: &BulkJob, row: &Row, now: UnixMillis) -> Result<String, Error> {
        let keys = match (&row.key_id, &row.user) {
            (Some(k), _) => vec![self.key(k)?],
            (None, Some(u)) => self.keys_of(u)?,
            (None, None) => Vec::new(),
        };
        if keys.is_empty() {
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
            faults: self.faults.take_over(),
            prompt: self.prompt.clone(),
            verifiers: Mutex::new(
                self.verifiers
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone(),
            ),
            trust: self.trust.clone(),
        }
    }
}
