//! Bulk jobs over time and side by side: a finished job's CSV submitted again makes a
//! new job that does the work again (issue 10 item 2), an unfinished one is resumed; two
//! runner processes on one job share its rows through row claims (issue 14 item 1), on
//! SQLite and on PostgreSQL.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;

use crate::support::*;
use fido_transport::client::Authenticator;
use fido_transport::softkey::{SoftAuthenticator, SoftConfig, SoftTransport};
use fido_transport::Transport;
use keysmith_testkit::EmulatorWorld;
use lifecycle::engine::{
    BulkDevice, BulkDeviceRequest, BulkKind, BulkOptions, CrashPoint, Engine, EngineError,
};
use lifecycle::idp::EntraIdp;
use lifecycle::store::{BulkItemStatus, KeyQuery, PgStore, PinKey, SqliteStore, Store};
use lifecycle::{CredentialState, Error};

fn no_device(_: &BulkDeviceRequest) -> Result<BulkDevice, String> {
    Err("no device in this test".into())
}

fn revoke_all(e: &Engine, job_id: i64) -> lifecycle::engine::BulkSummary {
    e.bulk_run(
        job_id,
        &BulkOptions::default(),
        &now_ms,
        &mut no_device,
        &mut |_| {},
    )
    .unwrap()
}

/// Issue 10 item 2 (the review's bug B): last month's revoke list, submitted again with
/// the same bytes after the users got new keys, makes a new job and revokes the new keys.
#[test]
fn a_finished_bulk_revoke_submitted_again_revokes_the_new_keys() {
    let w = world("bulk-again");
    let e = &w.engine;
    let now = now_ms();
    let old_kim = active(e, KIM, "OLD-K", now);
    let old_adele = active(e, ADELE, "OLD-A", now);
    let csv = format!("user\n{KIM}\n{ADELE}\n");
    let first = e
        .bulk_create(BulkKind::Revoke, &csv, "operator:bulk", now)
        .unwrap();
    let s = revoke_all(e, first.job_id);
    assert_eq!((s.done, s.failed), (2, 0), "{s:?}");
    assert!(e
        .store()
        .bulk_job(first.job_id)
        .unwrap()
        .unwrap()
        .finished_ms
        .is_some());
    for k in [&old_kim, &old_adele] {
        assert_eq!(e.key(&k.key_id).unwrap().state, CredentialState::Revoked);
    }
    assert_eq!(w.emulator.method_count(), 0);

    // A month later: new keys, the same file.
    let new_kim = active(e, KIM, "NEW-K", now + 1);
    let new_adele = active(e, ADELE, "NEW-A", now + 1);
    assert_eq!(w.emulator.method_count(), 2);
    let second = e
        .bulk_create(BulkKind::Revoke, &csv, "operator:other", now + 2)
        .unwrap();
    assert_ne!(second.job_id, first.job_id, "a finished job is not reused");
    assert_eq!(second.actor, "operator:other");
    let s = revoke_all(e, second.job_id);
    assert_eq!((s.done, s.failed, s.skipped), (2, 0, 0), "{s:?}");
    for k in [&new_kim, &new_adele] {
        assert_eq!(e.key(&k.key_id).unwrap().state, CredentialState::Revoked);
    }
    assert_eq!(w.emulator.method_count(), 0, "the new passkeys are gone");
}

/// An interrupted job is resumed by submitting its CSV again (the same job, only the rows
/// not done run); once finished, it runs again only by its id.
#[test]
fn an_unfinished_bulk_job_is_resumed_by_its_csv_and_a_finished_one_by_its_id() {
    let w = world("bulk-resume-open");
    let e = &w.engine;
    let now = now_ms();
    let a = active(e, KIM, "U1", now);
    let b = active(e, ADELE, "U2", now);
    let csv = format!("key_id\n{}\n{}\nno-such-key\n", a.key_id, b.key_id);
    let job = e
        .bulk_create(BulkKind::Revoke, &csv, "operator:bulk", now)
        .unwrap();
    e.crash_at(Some(CrashPoint::AfterIdpCall));
    let short = BulkOptions {
        claim_lease_ms: 300,
        ..BulkOptions::default()
    };
    let r = e.bulk_run(job.job_id, &short, &now_ms, &mut no_device, &mut |_| {});
    assert!(matches!(
        r,
        Err(Error::Engine(EngineError::SimulatedCrash { .. }))
    ));
    let again = e
        .bulk_create(BulkKind::Revoke, &csv, "operator:bulk", now_ms())
        .unwrap();
    assert_eq!(again.job_id, job.job_id, "the unfinished job is resumed");
    // The dead run's claim expires; its row is settled, the rest run.
    let s = revoke_all(e, job.job_id);
    assert_eq!((s.done, s.failed, s.settled), (2, 1, 1), "{s:?}");
    let finished = e.bulk_job(job.job_id).unwrap();
    assert!(
        finished.finished_ms.is_some(),
        "a failed row does not keep it open"
    );
    // By id: the finished job's failed row is retried (and fails again), nothing else.
    let s = revoke_all(e, job.job_id);
    assert_eq!((s.done, s.failed, s.skipped, s.items.len()), (2, 1, 2, 1));
    // By its CSV: a new job.
    let new = e
        .bulk_create(BulkKind::Revoke, &csv, "operator:bulk", now_ms())
        .unwrap();
    assert_ne!(new.job_id, job.job_id);
}

// ---- two runner processes on one job ----

/// Where the parent and both children keep the repository.
enum Repo {
    Sqlite(std::path::PathBuf),
    Postgres { url: String, schema: String },
}

impl Repo {
    fn store(&self) -> Arc<dyn Store> {
        match self {
            Repo::Sqlite(db) => Arc::new(SqliteStore::open(db).unwrap()),
            Repo::Postgres { url, schema } => {
                Arc::new(PgStore::connect_in_schema(url, schema).unwrap())
            }
        }
    }

    fn env(&self, c: &mut Command) {
        match self {
            Repo::Sqlite(db) => c.env("BULK_DB", db),
            Repo::Postgres { url, schema } => {
                c.env("BULK_PG_URL", url).env("BULK_PG_SCHEMA", schema)
            }
        };
    }
}

fn pg_url() -> Option<String> {
    keysmith_testkit::pg_url("PostgreSQL bulk runner test")
}

/// The persistent software key of CSV line `line` (both children open the same files).
fn line_key(dir: &Path, line: u64) -> Authenticator<Box<dyn Transport>> {
    let soft = SoftAuthenticator::open_persistent(
        dir.join(format!("line{line}.json")),
        SoftConfig::default(),
    )
    .unwrap();
    let t: Box<dyn Transport> = Box::new(SoftTransport::new(soft));
    Authenticator::new(t)
}

const ROWS: u64 = 12;

/// Issue 14 item 1: two runner processes (stations a and b, sharing the keys) work one
/// bulk issue job at once. Each row is run by exactly one of them, the job finishes, and
/// every key is issued once, holds its transport PIN, activates and signs in.
fn two_runners_share_one_job(name: &str, repo: impl FnOnce(&Path) -> Repo) {
    let EmulatorWorld { emulator, dir } = EmulatorWorld::start(name);
    let repo = repo(&dir);
    let keys = dir.join("softkeys");
    std::fs::create_dir_all(&keys).unwrap();
    let template = dir.join("template.toml");
    std::fs::write(&template, TEMPLATE).unwrap();
    let engine = Engine::builder(repo.store(), PinKey::from_bytes([7; 32]), "parent")
        .idp(Arc::new(EntraIdp::new(
            CONNECTION,
            crate::common::graph_client(&emulator),
        )))
        .template(crate::support::template())
        .build()
        .unwrap();
    let users = [KIM, ADELE, ALEX, MEGAN];
    let mut csv = String::from("user,serial\n");
    for n in 0..ROWS {
        csv.push_str(&format!("{},TWO-{n}\n", users[n as usize % users.len()]));
    }
    let job = engine
        .bulk_create(BulkKind::Issue, &csv, "operator:bulk", now_ms())
        .unwrap();

    let children: Vec<_> = ["station-a", "station-b"]
        .into_iter()
        .map(|station| {
            let mut c = Command::new(crate::common::fixture_program("bulk_child"));
            repo.env(&mut c);
            c.env("BULK_JOB", job.job_id.to_string())
                .env("BULK_KIND", "issue")
                .env("BULK_TEMPLATE", &template)
                .env("BULK_TEMPLATE_NAME", "test-standard")
                .env("BULK_SOFTKEY_DIR", &keys)
                .env("BULK_BASE_URL", emulator.base_url())
                .env("BULK_TENANT", emulator.tenant_id())
                .env("BULK_CLIENT_ID", emulator.client_id())
                .env(
                    "BULK_CLIENT_SECRET",
                    emulator.client_secret().unwrap_or_default(),
                )
                .env("BULK_KILL_ITEM", "0")
                .env("BULK_KILL_POINT", "item-started")
                .env("BULK_ITEM_DELAY_MS", "100")
                .env("BULK_STATION", station)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            c.spawn().unwrap()
        })
        .collect();
    // Both are waited for at once, with a deadline (a hung runner fails the test).
    let pids: Vec<u32> = children.iter().map(std::process::Child::id).collect();
    let (tx, rx) = std::sync::mpsc::channel();
    for child in children {
        let tx = tx.clone();
        std::thread::spawn(move || tx.send(child.wait_with_output()));
    }
    drop(tx);
    let mut outputs = Vec::new();
    for _ in &pids {
        match rx.recv_timeout(std::time::Duration::from_secs(300)) {
            Ok(out) => outputs.push(out.unwrap()),
            Err(_) => {
                for pid in &pids {
                    let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
                }
                panic!("a bulk runner did not finish within 300 s");
            }
        }
    }
    let mut ran: Vec<u64> = Vec::new();
    for out in outputs {
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "runner failed: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let summary = stdout
            .lines()
            .find_map(|l| l.strip_prefix("SUMMARY "))
            .unwrap_or_else(|| panic!("no summary: {stdout}"));
        eprintln!("[{name}] {summary}");
        assert!(
            summary.starts_with(&format!("done={ROWS} failed=0 ")),
            "{summary}"
        );
        let items = summary.split("items=").nth(1).unwrap_or("");
        for item in items.split(',').filter(|i| !i.is_empty()) {
            let (line, status) = item.split_once(':').unwrap();
            assert_eq!(status, "done", "{summary}");
            ran.push(line.parse().unwrap());
        }
    }
    ran.sort_unstable();
    assert_eq!(
        ran,
        (2..ROWS + 2).collect::<Vec<_>>(),
        "each row run by exactly one runner"
    );
    let counts = engine.store().bulk_counts(job.job_id).unwrap();
    assert_eq!(
        (counts.done, counts.failed, counts.pending, counts.running),
        (ROWS, 0, 0, 0)
    );
    assert!(engine.bulk_job(job.job_id).unwrap().finished_ms.is_some());
    let items = engine.store().bulk_items(job.job_id, None, 100).unwrap();
    assert!(items.iter().all(|i| i.status == BulkItemStatus::Done));

    for n in 0..ROWS {
        let line = n + 2;
        let found = engine
            .find_keys(&KeyQuery::BySerial(format!("TWO-{n}")))
            .unwrap();
        assert_eq!(found.len(), 1, "TWO-{n}");
        let key = &found[0];
        assert_eq!(key.state, CredentialState::Issued, "TWO-{n}");
        let issued = engine
            .audit_for(&key.key_id)
            .unwrap()
            .into_iter()
            .filter(|a| a.event.action == "issue" && a.event.outcome == "success")
            .count();
        assert_eq!(issued, 1, "TWO-{n} issued once");
        let mut device = line_key(&keys, line);
        let active = engine
            .activate(
                "self:holder",
                &key.key_id,
                HOLDER_PIN,
                &mut device,
                now_ms(),
            )
            .unwrap_or_else(|e| panic!("TWO-{n} does not activate: {e}"));
        assert_eq!(active.state, CredentialState::Active);
        let signed = engine
            .sign_in(&key.key_id, HOLDER_PIN, &mut device)
            .unwrap_or_else(|e| panic!("TWO-{n} does not sign in: {e}"));
        assert!(!signed.is_empty(), "TWO-{n}");
    }
    assert_eq!(emulator.method_count(), ROWS as usize);
}

#[test]
fn two_runner_processes_share_one_bulk_job_on_sqlite() {
    two_runners_share_one_job("bulk-two-sqlite", |dir| {
        Repo::Sqlite(dir.join("keysmith.db"))
    });
}

#[test]
fn two_runner_processes_share_one_bulk_job_on_postgres() {
    let Some(url) = pg_url() else { return };
    let schema = format!(
        "ks_bulk_two_{}_{}",
        std::process::id(),
        now_ms() % 1_000_000_000
    );
    two_runners_share_one_job("bulk-two-pg", |_| Repo::Postgres { url, schema });
}

/// Issue 13 item 13: the directory's change feed drives a bulk revoke of the keys of
/// users who left (here: disabled); the round resumes from the stored link and a quiet
/// round records nothing.
#[test]
fn leavers_from_users_delta_are_revoked_in_bulk() {
    let w = world("leavers");
    let e = &w.engine;
    let now = now_ms();
    let kim = active(e, KIM, "LEAVER-K", now);
    let adele = active(e, ADELE, "STAYER-A", now);
    let first = e
        .leavers_round(CONNECTION, None, "operator:hr", now)
        .unwrap();
    assert!(first.leavers.is_empty() && first.job.is_none());
    assert!(!first.resume.is_empty());
    assert!(w.emulator.set_account_enabled(KIM, false));
    let round = e
        .leavers_round(CONNECTION, Some(&first.resume), "operator:hr", now + 1)
        .unwrap();
    assert_eq!(round.leavers, vec![KIM_ID.to_owned()]);
    let job = round.job.expect("a revoke job for kim");
    // Submitting the same round again before it runs gives the same job (resumable).
    let again = e
        .leavers_round(CONNECTION, Some(&first.resume), "operator:hr", now + 2)
        .unwrap();
    assert_eq!(again.job.unwrap().job_id, job.job_id);
    let s = revoke_all(e, job.job_id);
    assert_eq!((s.done, s.failed), (1, 0), "{s:?}");
    assert_eq!(e.key(&kim.key_id).unwrap().state, CredentialState::Revoked);
    assert_eq!(e.key(&adele.key_id).unwrap().state, CredentialState::Active);
    assert!(w.emulator.methods(KIM_ID).is_empty());
    let quiet = e
        .leavers_round(CONNECTION, Some(&round.resume), "operator:hr", now + 3)
        .unwrap();
    assert!(quiet.leavers.is_empty() && quiet.job.is_none());
}
