//! Resumable bulk jobs against the real Entra emulator, software keys and SQLite.

use crate::support::*;
use entra_graph::emulator::ThrottleConfig;
use fido_transport::client::Authenticator;
use fido_transport::softkey::{SoftAuthenticator, SoftConfig, SoftTransport};
use fido_transport::Transport;
use lifecycle::engine::{
    BulkDevice, BulkDeviceRequest, BulkKind, BulkOptions, BulkProgress, CrashPoint, EngineError,
    JobError, LookupError,
};
use lifecycle::store::{BulkItemStatus, KeyQuery};
use lifecycle::template::KeyTransport;
use lifecycle::{CredentialState, Error};

fn soft_device(_: &BulkDeviceRequest) -> Result<BulkDevice, String> {
    let soft = SoftAuthenticator::new(SoftConfig::default()).map_err(|e| e.to_string())?;
    let t: Box<dyn Transport> = Box::new(SoftTransport::new(soft));
    Ok(BulkDevice {
        authenticator: Authenticator::new(t),
        transport: KeyTransport::Usb,
        can_reset_in_place: true,
        evidence: Default::default(),
    })
}

fn no_device(_: &BulkDeviceRequest) -> Result<BulkDevice, String> {
    Err("no device in this test".into())
}

fn count(engine: &lifecycle::engine::Engine, key_id: &str, action: &str) -> usize {
    actions(engine, key_id)
        .iter()
        .filter(|(a, o)| a == action && o == "success")
        .count()
}

#[test]
fn bulk_issue_runs_each_row_once_and_a_rerun_skips_done_rows() {
    let w = world("bulk-issue");
    let e = &w.engine;
    let csv = format!(
        "user,serial,template\n{KIM},S1,test-standard\n\"{ADELE}\",S2,\n{ALEX},S3,\nnobody@contoso.onmicrosoft.com,S4,\n"
    );
    let job = e
        .bulk_create(BulkKind::Issue, &csv, "operator:bulk", now_ms())
        .unwrap();
    assert_eq!(job.total, 4);
    assert_eq!(job.kind, "issue");
    // The same file again is the same job.
    let again = e
        .bulk_create(BulkKind::Issue, &csv, "operator:other", now_ms())
        .unwrap();
    assert_eq!(again.job_id, job.job_id);

    let options = BulkOptions {
        default_template: Some("test-standard".into()),
        ..BulkOptions::default()
    };
    let mut asked = Vec::new();
    let mut devices = |r: &BulkDeviceRequest| {
        asked.push((r.line, r.user.clone(), r.serial.clone()));
        soft_device(r)
    };
    let mut seen: Vec<BulkProgress> = Vec::new();
    let s = e
        .bulk_run(job.job_id, &options, &now_ms, &mut devices, &mut |p| {
            seen.push(p.clone())
        })
        .unwrap();
    assert_eq!((s.done, s.failed, s.total, s.skipped), (3, 1, 4, 0));
    assert_eq!(asked.len(), 4);
    assert_eq!(asked[1], (3, ADELE.to_owned(), "S2".to_owned()));
    assert_eq!(seen.len(), 4);
    assert_eq!(
        seen.last().map(|p| (p.done, p.failed, p.total)),
        Some((3, 1, 4))
    );
    let failed = s
        .items
        .iter()
        .find(|i| i.status == BulkItemStatus::Failed)
        .unwrap();
    assert_eq!(failed.line, 5);
    assert!(failed.outcome.contains("nobody"), "{}", failed.outcome);
    for serial in ["S1", "S2", "S3"] {
        let keys = e.find_keys(&KeyQuery::BySerial(serial.into())).unwrap();
        assert_eq!(keys.len(), 1, "{serial}");
        assert_eq!(keys[0].state, CredentialState::Issued);
        assert_eq!(e.store().pending_for_key(&keys[0].key_id).unwrap().len(), 1);
        assert_eq!(count(e, &keys[0].key_id, "issue"), 1);
    }
    assert_eq!(
        w.emulator.method_count(),
        0,
        "issuance registers nothing yet"
    );

    // A rerun without retrying failures does nothing.
    let quiet = BulkOptions {
        retry_failed: false,
        ..options.clone()
    };
    let s = e
        .bulk_run(job.job_id, &quiet, &now_ms, &mut no_device, &mut |_| {})
        .unwrap();
    assert_eq!((s.done, s.failed, s.skipped), (3, 1, 3));
    assert!(s.items.is_empty());
    // Retrying runs only the failed row (it fails again).
    let mut calls = 0;
    let s = e
        .bulk_run(
            job.job_id,
            &options,
            &now_ms,
            &mut |r: &BulkDeviceRequest| {
                calls += 1;
                soft_device(r)
            },
            &mut |_| {},
        )
        .unwrap();
    assert_eq!(calls, 1);
    assert_eq!(s.items.len(), 1);
    assert_eq!(s.items[0].line, 5);
}

/// A run that keeps no per-row results (the CLI's: it prints each row as it runs, so
/// its memory does not grow with the rows run) still reports every row through progress
/// and records them; only the summary's `items` stays empty.
#[test]
fn a_run_can_keep_no_items() {
    let w = world("bulk-no-items");
    let e = &w.engine;
    let csv = format!("user,serial\n{KIM},S1\n{ALEX},S2\nnobody@contoso.onmicrosoft.com,S3\n");
    let job = e
        .bulk_create(BulkKind::Issue, &csv, "operator:bulk", now_ms())
        .unwrap();
    let options = BulkOptions {
        default_template: Some("test-standard".into()),
        keep_items: false,
        ..BulkOptions::default()
    };
    let mut seen = Vec::new();
    let s = e
        .bulk_run(job.job_id, &options, &now_ms, &mut soft_device, &mut |p| {
            seen.push((p.line, p.status))
        })
        .unwrap();
    assert_eq!((s.done, s.failed, s.total), (2, 1, 3));
    assert!(s.items.is_empty(), "{:?}", s.items);
    assert_eq!(seen.len(), 3);
    assert_eq!(seen[2], (4, BulkItemStatus::Failed));
    assert_eq!(e.store().bulk_counts(job.job_id).unwrap().done, 2);
}

#[test]
fn bad_csv_is_refused_naming_line_and_column() {
    let w = world("bulk-csv");
    match w.engine.bulk_create(
        BulkKind::Revoke,
        "key_id,force\nk1,true\nk2,sometimes\n",
        "op",
        1,
    ) {
        Err(Error::Engine(EngineError::Job(JobError::Csv {
            line,
            column,
            message,
        }))) => {
            assert_eq!((line, column), (3, 2));
            assert!(message.contains("sometimes"));
        }
        other => panic!("expected a CSV error, got {other:?}"),
    }
    match w
        .engine
        .bulk_create(BulkKind::Issue, "user\nkim\n", "op", 1)
    {
        Err(Error::Engine(EngineError::Job(JobError::Csv {
            line: 1, message, ..
        }))) => {
            assert!(message.contains("serial"), "{message}")
        }
        other => panic!("expected a CSV error, got {other:?}"),
    }
    assert!(matches!(
        w.engine.bulk_run(
            77,
            &BulkOptions::default(),
            &now_ms,
            &mut no_device,
            &mut |_| {}
        ),
        Err(Error::Engine(EngineError::Lookup(
            LookupError::UnknownBulkJob { job_id: 77 }
        )))
    ));
}

#[test]
fn bulk_revoke_on_workers_keeps_going_through_idp_throttling() {
    let w = world("bulk-throttle");
    let e = &w.engine;
    let now = now_ms();
    let a = active(e, KIM, "T1", now);
    let _b = active(e, ADELE, "T2", now);
    let c = active(e, ALEX, "T3", now);
    let _d = active(e, MEGAN, "T4", now);
    assert_eq!(w.emulator.method_count(), 4);
    let csv = format!(
        "key_id,user,force\n{},,\n,{ADELE},true\n{},,no\n,{MEGAN},\n",
        a.key_id, c.key_id
    );
    let job = e
        .bulk_create(BulkKind::Revoke, &csv, "operator:bulk", now)
        .unwrap();
    // A tiny bucket: the deletions get 429 with Retry-After and are retried. A revoke
    // makes three Graph calls since issue 13 (the user's methods, the deletion, the
    // sign-out), so the bucket holds and refills three times as much to keep the same
    // pressure per revocation.
    w.emulator.set_throttle(Some(ThrottleConfig {
        capacity: 3.0,
        refill_per_sec: 3.0,
    }));
    let options = BulkOptions {
        workers: 3,
        max_idp_calls_per_sec: Some(50.0),
        ..BulkOptions::default()
    };
    let mut progress = Vec::new();
    let s = e
        .bulk_run(job.job_id, &options, &now_ms, &mut no_device, &mut |p| {
            progress.push(p.done)
        })
        .unwrap();
    assert_eq!((s.done, s.failed), (4, 0), "{:#?}", s.items);
    progress.sort_unstable();
    assert_eq!(progress, [1, 2, 3, 4]);
    assert!(
        w.emulator.request_log().iter().any(|r| r.status == 429),
        "the emulator throttled some calls"
    );
    w.emulator.set_throttle(None);
    assert_eq!(w.emulator.method_count(), 0);
    for k in e.find_keys(&KeyQuery::All).unwrap() {
        assert_eq!(k.state, CredentialState::Revoked, "{}", k.key_id);
        assert_eq!(count(e, &k.key_id, "revoke"), 1);
    }
}

#[test]
fn bulk_revoke_resumes_after_a_crash_without_doing_anything_twice() {
    let w = world("bulk-resume");
    let e = &w.engine;
    let now = now_ms();
    let keys: Vec<_> = [(KIM, "R1"), (ADELE, "R2"), (ALEX, "R3")]
        .into_iter()
        .map(|(u, s)| active(e, u, s, now))
        .collect();
    let csv = format!(
        "key_id\n{}\n{}\n{}\n",
        keys[0].key_id, keys[1].key_id, keys[2].key_id
    );
    let job = e
        .bulk_create(BulkKind::Revoke, &csv, "operator:bulk", now)
        .unwrap();
    // Crash after the first deletion reached the IdP, before anything was recorded.
    e.crash_at(Some(CrashPoint::AfterIdpCall));
    let r = e.bulk_run(
        job.job_id,
        &BulkOptions {
            // The crashed run's row claim expires quickly, so the resume takes it.
            claim_lease_ms: 300,
            ..BulkOptions::default()
        },
        &now_ms,
        &mut no_device,
        &mut |_| {},
    );
    assert!(matches!(
        r,
        Err(Error::Engine(EngineError::SimulatedCrash { .. }))
    ));
    let counts = e.store().bulk_counts(job.job_id).unwrap();
    assert_eq!((counts.running, counts.pending), (1, 2));
    assert_eq!(
        e.key(&keys[0].key_id).unwrap().state,
        CredentialState::Active
    );
    assert_eq!(
        w.emulator.method_count(),
        2,
        "the first passkey is gone at the IdP"
    );

    // Resume: the journal replay finishes the first revocation, the running item is
    // settled as done, the rest run.
    let s = e
        .bulk_run(
            job.job_id,
            &BulkOptions::default(),
            &now_ms,
            &mut no_device,
            &mut |_| {},
        )
        .unwrap();
    assert_eq!((s.done, s.failed, s.settled), (3, 0, 1), "{:#?}", s.items);
    assert_eq!(w.emulator.method_count(), 0);
    for k in &keys {
        assert_eq!(e.key(&k.key_id).unwrap().state, CredentialState::Revoked);
        assert_eq!(
            count(e, &k.key_id, "revoke"),
            1,
            "{:?}",
            actions(e, &k.key_id)
        );
    }
    // A third run skips everything.
    let s = e
        .bulk_run(
            job.job_id,
            &BulkOptions::default(),
            &now_ms,
            &mut no_device,
            &mut |_| {},
        )
        .unwrap();
    assert_eq!((s.skipped, s.items.len()), (3, 0));
}

#[test]
fn bulk_reconcile_fixes_each_user() {
    let w = world("bulk-reconcile");
    let e = &w.engine;
    let now = now_ms();
    let a = active(e, KIM, "C1", now);
    active(e, ADELE, "C2", now);
    let method = e.passkeys(&a.key_id).unwrap()[0]
        .idp_method_id
        .clone()
        .unwrap();
    e.idp(CONNECTION).unwrap().delete(KIM_ID, &method).unwrap();
    let job = e
        .bulk_create(
            BulkKind::Reconcile,
            &format!("user\n{KIM}\n{ADELE}\n"),
            "operator:bulk",
            now,
        )
        .unwrap();
    let options = BulkOptions {
        workers: 2,
        fix: true,
        ..BulkOptions::default()
    };
    let s = e
        .bulk_run(job.job_id, &options, &now_ms, &mut no_device, &mut |_| {})
        .unwrap();
    assert_eq!((s.done, s.failed), (2, 0));
    let mut outcomes: Vec<_> = s
        .items
        .iter()
        .map(|i| (i.line, i.outcome.clone()))
        .collect();
    outcomes.sort();
    assert_eq!(
        outcomes,
        [
            (2, "1 finding(s), 1 fixed".to_owned()),
            (3, "0 finding(s), 0 fixed".to_owned())
        ]
    );
    assert!(e.key(&a.key_id).unwrap().needs_reissue);
}

// ---- a real process killed with SIGKILL in the middle of a bulk job ----

use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// Runs a child on the world's database until it blocks in item `item` at `point`,
/// then kills it with SIGKILL; returns the job id it printed.
fn kill_child(w: &World, csv: &Path, kind: &str, item: usize, point: &str) -> i64 {
    let template = w.dir.join("template.toml");
    std::fs::write(&template, TEMPLATE).expect("template file");
    let mut command = Command::new(crate::common::fixture_program("bulk_child"));
    command
        .env("BULK_TEMPLATE", &template)
        .env("BULK_DB", &w.db)
        .env("BULK_CSV", csv)
        .env("BULK_KIND", kind)
        .env("BULK_SOFTKEY_DIR", w.dir.join("softkeys"))
        .env("BULK_TEMPLATE_NAME", "test-standard")
        .env("BULK_BASE_URL", w.emulator.base_url())
        .env("BULK_TENANT", w.emulator.tenant_id())
        .env("BULK_CLIENT_ID", w.emulator.client_id())
        .env(
            "BULK_CLIENT_SECRET",
            w.emulator.client_secret().unwrap_or_default(),
        )
        .env("BULK_KILL_ITEM", item.to_string())
        // The killed run's row claim expires a second later, and the resume takes it.
        .env("BULK_LEASE_MS", "1000")
        .env("BULK_KILL_POINT", point);
    let seen = crate::common::run_until_crash_point(
        command,
        Duration::from_secs(120),
        &format!("{point} in item {item}"),
    );
    let job: Option<i64> = seen
        .iter()
        .find_map(|l| l.strip_prefix("JOB ").and_then(|id| id.parse().ok()));
    job.expect("the child printed the job id")
}

fn killed_bulk_revoke_resumes(point: &str, settled: u64) {
    let w = world(&format!("bulk-kill-{point}"));
    let e = &w.engine;
    let now = now_ms();
    let keys: Vec<_> = [(KIM, "K1"), (ADELE, "K2"), (ALEX, "K3"), (MEGAN, "K4")]
        .into_iter()
        .map(|(u, s)| active(e, u, s, now))
        .collect();
    // Megan's key is not in the file and keeps its passkey.
    let csv = w.dir.join("revoke.csv");
    std::fs::write(
        &csv,
        format!(
            "key_id\n{}\n{}\n{}\n",
            keys[0].key_id, keys[1].key_id, keys[2].key_id
        ),
    )
    .unwrap();

    let job = kill_child(&w, &csv, "revoke", 2, point);
    let counts = e.store().bulk_counts(job).unwrap();
    assert_eq!(
        (counts.done, counts.running, counts.pending),
        (1, 1, 1),
        "killed inside the second item"
    );
    assert_eq!(
        e.key(&keys[1].key_id).unwrap().state,
        CredentialState::Active
    );

    // Resumed in-process: the same file is the same job.
    let text = std::fs::read_to_string(&csv).unwrap();
    let again = e
        .bulk_create(BulkKind::Revoke, &text, "operator:bulk", now_ms())
        .unwrap();
    assert_eq!(again.job_id, job);
    let s = e
        .bulk_run(
            job,
            &BulkOptions::default(),
            &now_ms,
            &mut no_device,
            &mut |_| {},
        )
        .unwrap();
    assert_eq!(
        (s.done, s.failed, s.skipped, s.settled),
        (3, 0, 1, settled),
        "{s:#?}"
    );
    // Every row done exactly once; the IdP holds exactly Megan's passkey.
    let items = e.store().bulk_items(job, None, 10).unwrap();
    assert_eq!(items.len(), 3);
    assert!(items.iter().all(|i| i.status == BulkItemStatus::Done));
    assert_eq!(w.emulator.method_count(), 1);
    assert_eq!(w.emulator.methods(MEGAN).len(), 1);
    for k in &keys[..3] {
        assert_eq!(e.key(&k.key_id).unwrap().state, CredentialState::Revoked);
        assert_eq!(
            count(e, &k.key_id, "revoke"),
            1,
            "{:?}",
            actions(e, &k.key_id)
        );
        // One deletion each: by the flow, or (killed after the IdP call) by the replay.
        assert_eq!(
            count(e, &k.key_id, "idp-delete"),
            1,
            "{:?}",
            actions(e, &k.key_id)
        );
    }
    assert_eq!(
        e.key(&keys[3].key_id).unwrap().state,
        CredentialState::Active
    );
    assert!(e.store().journal_unfinished().unwrap().is_empty());
}

#[test]
fn bulk_revoke_killed_after_an_item_started_resumes() {
    killed_bulk_revoke_resumes("item-started", 0);
}

#[test]
fn bulk_revoke_killed_after_the_idp_call_resumes_without_repeating_it() {
    killed_bulk_revoke_resumes("after-idp-call", 1);
}

#[test]
fn an_issue_row_left_running_after_the_key_was_issued_is_settled_not_redone() {
    let w = world("bulk-issue-settle");
    let e = &w.engine;
    let csv = format!("user,serial,template\n{KIM},S1,test-standard\n{ADELE},S2,test-standard\n");
    let job = e
        .bulk_create(BulkKind::Issue, &csv, "operator:bulk", now_ms())
        .unwrap();
    let mut calls = 0;
    let s = e
        .bulk_run(
            job.job_id,
            &BulkOptions::default(),
            &now_ms,
            &mut |r: &BulkDeviceRequest| {
                calls += 1;
                soft_device(r)
            },
            &mut |_| {},
        )
        .unwrap();
    assert_eq!(s.done, 2);
    // As if the process died after the first key was issued, before its row was closed.
    e.store()
        .bulk_set_item(job.job_id, 2, BulkItemStatus::Running, None, 1)
        .unwrap();
    let s = e
        .bulk_run(
            job.job_id,
            &BulkOptions::default(),
            &now_ms,
            &mut |r: &BulkDeviceRequest| {
                calls += 1;
                soft_device(r)
            },
            &mut |_| {},
        )
        .unwrap();
    assert_eq!((s.done, s.settled, s.skipped), (2, 1, 1));
    assert!(
        s.items[0].outcome.contains("already issued"),
        "{:?}",
        s.items
    );
    assert_eq!(calls, 2, "no key was asked for again");
    let k = e
        .find_keys(&KeyQuery::BySerial("S1".into()))
        .unwrap()
        .remove(0);
    assert_eq!(count(e, &k.key_id, "issue"), 1);
    assert_eq!(
        e.passkeys(&k.key_id).unwrap().len(),
        1,
        "never a second passkey"
    );
}

/// The persistent software key of an issue row, as the bulk child opens it.
fn row_softkey(w: &World, line: u64) -> Result<BulkDevice, String> {
    let dir = w.dir.join("softkeys");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let soft = SoftAuthenticator::open_persistent(
        dir.join(format!("line{line}.json")),
        SoftConfig::default(),
    )
    .map_err(|e| e.to_string())?;
    let t: Box<dyn Transport> = Box::new(SoftTransport::new(soft));
    Ok(BulkDevice {
        authenticator: Authenticator::new(t),
        transport: KeyTransport::Usb,
        can_reset_in_place: true,
        evidence: Default::default(),
    })
}

/// Discoverable credentials on the persistent software key of CSV line `line`, counted
/// with credential management under the key's stored transport PIN.
fn discoverable_credentials(w: &World, key_id: &str, line: u64) -> u32 {
    let pin = w
        .engine
        .store()
        .get_transport_pin(key_id, &lifecycle::store::PinKey::from_bytes([7; 32]))
        .unwrap()
        .expect("transport PIN");
    let mut device = row_softkey(w, line).unwrap().authenticator;
    let token = device
        .pin_token(
            pin.expose(),
            fido_core::pin::Permissions::CREDENTIAL_MANAGEMENT,
            None,
        )
        .unwrap();
    device.credentials_metadata(&token).unwrap().existing
}

/// A bulk issue killed (SIGKILL) inside item 2 after its passkey was made on the key but
/// before anything was committed: resumed in-process, every row ends issued exactly once,
/// the interrupted key is reset in place (its orphaned credential is gone) and carries one
/// passkey, and nothing reached the IdP.
#[test]
fn bulk_issue_killed_before_an_items_state_change_resumes_without_duplicates() {
    let w = world("bulk-issue-kill");
    let e = &w.engine;
    std::fs::create_dir_all(w.dir.join("softkeys")).unwrap();
    let csv = w.dir.join("issue.csv");
    let text = format!("user,serial\n{KIM},K1\n{ADELE},K2\n{ALEX},K3\n");
    std::fs::write(&csv, &text).unwrap();
    let job = kill_child(&w, &csv, "issue", 2, "before-state-change");

    let counts = e.store().bulk_counts(job).unwrap();
    assert_eq!((counts.done, counts.running, counts.pending), (1, 1, 1));
    assert!(e
        .find_keys(&KeyQuery::BySerial("K2".into()))
        .unwrap()
        .iter()
        .all(|k| k.state != CredentialState::Issued));

    // The killed item's key holds a credential the repository does not know.
    let k2 = e.find_keys(&KeyQuery::BySerial("K2".into())).unwrap();
    assert_eq!(k2.len(), 1);
    assert_eq!(discoverable_credentials(&w, &k2[0].key_id, 3), 1);

    // Restart: the same file is the same job; the rest of it runs.
    let again = e
        .bulk_create(BulkKind::Issue, &text, "operator:bulk", now_ms())
        .unwrap();
    assert_eq!(again.job_id, job);
    let options = BulkOptions {
        default_template: Some("test-standard".into()),
        ..BulkOptions::default()
    };
    let s = e
        .bulk_run(
            job,
            &options,
            &now_ms,
            &mut |r: &BulkDeviceRequest| row_softkey(&w, r.line),
            &mut |_| {},
        )
        .unwrap();
    assert_eq!((s.done, s.failed), (3, 0), "{s:?}");
    for (serial, line) in [("K1", 2), ("K2", 3), ("K3", 4)] {
        let keys = e.find_keys(&KeyQuery::BySerial(serial.into())).unwrap();
        assert_eq!(keys.len(), 1, "{serial}");
        let key = &keys[0];
        assert_eq!(key.state, CredentialState::Issued, "{serial}");
        assert_eq!(e.store().pending_for_key(&key.key_id).unwrap().len(), 1);
        assert_eq!(e.passkeys(&key.key_id).unwrap().len(), 1, "{serial}");
        assert_eq!(count(e, &key.key_id, "issue"), 1, "{serial}");
        // On the key itself exactly one discoverable credential: the interrupted key
        // was reset in place before it was issued again.
        assert_eq!(
            discoverable_credentials(&w, &key.key_id, line),
            1,
            "{serial}"
        );
    }
    assert_eq!(w.emulator.method_count(), 0);
}

/// Issue 13 item 14: HR-driven issuance from a CSV of employee ids, looked up in the
/// directory (`employeeId eq`); an id nobody has fails its row.
#[test]
fn bulk_issue_by_employee_id() {
    let w = world("bulk-employee-id");
    let e = &w.engine;
    let employee = format!("E{}", &KIM_ID[..6]);
    let csv = format!("employee_id,serial\n{employee},HR1\nE-nobody,HR2\n");
    let job = e
        .bulk_create(BulkKind::Issue, &csv, "operator:hr", now_ms())
        .unwrap();
    let options = BulkOptions {
        default_template: Some("test-standard".into()),
        ..BulkOptions::default()
    };
    let s = e
        .bulk_run(job.job_id, &options, &now_ms, &mut soft_device, &mut |_| {})
        .unwrap();
    assert_eq!((s.done, s.failed), (1, 1), "{:#?}", s.items);
    let keys = e.find_keys(&KeyQuery::ByUser(KIM_ID.into())).unwrap();
    assert_eq!(keys.len(), 1);
    assert!(s.items[1].outcome.contains("employee id"), "{:#?}", s.items);
    // A CSV without user and employee_id columns is refused up front.
    assert!(e
        .bulk_create(BulkKind::Issue, "serial\nS1\n", "operator:hr", now_ms())
        .is_err());
}

#[test]
fn a_stopped_bulk_run_leaves_the_rest_to_do_and_resumes() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let w = world("bulk-stop");
    let e = &w.engine;
    let csv: String = std::iter::once("user,serial\n".to_owned())
        .chain((0..6).map(|i| format!("{KIM},STOP{i}\n")))
        .collect();
    let job = e
        .bulk_create(BulkKind::Issue, &csv, "operator:bulk", now_ms())
        .unwrap();
    let options = BulkOptions {
        default_template: Some("test-standard".into()),
        ..BulkOptions::default()
    };
    // Stop asked once two rows have run.
    let ran = AtomicUsize::new(0);
    let mut devices = soft_device;
    let r = e.bulk_run_stoppable(
        job.job_id,
        &options,
        &now_ms,
        &mut devices,
        &mut |_| {
            ran.fetch_add(1, Ordering::SeqCst);
        },
        &|| ran.load(Ordering::SeqCst) >= 2,
    );
    let err = r.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Engine(EngineError::Job(JobError::Stopped { job_id, left: 4 })) if job_id == job.job_id
        ),
        "{err:?}"
    );
    assert_eq!(
        (err.kind().as_str(), err.reason()),
        ("usage", "bulk_stopped")
    );
    let counts = e.store().bulk_counts(job.job_id).unwrap();
    assert_eq!((counts.done, counts.pending, counts.failed), (2, 4, 0));
    // Unfinished: the same CSV is the same job, and a run does the four rows left.
    let again = e
        .bulk_create(BulkKind::Issue, &csv, "operator:bulk", now_ms())
        .unwrap();
    assert_eq!(again.job_id, job.job_id);
    let s = e
        .bulk_run(job.job_id, &options, &now_ms, &mut devices, &mut |_| {})
        .unwrap();
    assert_eq!((s.done, s.failed, s.skipped, s.items.len()), (6, 0, 2, 4));

    // Parallel revoke workers stop taking rows too.
    let keys: Vec<String> = e
        .find_keys(&KeyQuery::All)
        .unwrap()
        .into_iter()
        .map(|k| k.key_id)
        .collect();
    let csv = format!("key_id\n{}\n", keys.join("\n"));
    let job = e
        .bulk_create(BulkKind::Revoke, &csv, "operator:bulk", now_ms())
        .unwrap();
    let options = BulkOptions {
        workers: 2,
        ..BulkOptions::default()
    };
    let r = e.bulk_run_stoppable(
        job.job_id,
        &options,
        &now_ms,
        &mut no_device,
        &mut |_| {},
        &|| true,
    );
    assert_eq!(r.unwrap_err().reason(), "bulk_stopped");
    let counts = e.store().bulk_counts(job.job_id).unwrap();
    assert_eq!((counts.done, counts.pending), (0, 6));
}

/// Issue 12 item 5: the right key for the right row. A key whose own serial is not the
/// row's, or a station with several keys attached, fails the row before the key is
/// touched; a matching serial and an unverifiable one are recorded with their source.
#[test]
fn bulk_issue_refuses_the_wrong_key_and_records_where_the_serial_comes_from() {
    use lifecycle::engine::{KeyEvidence, KeySerial, SerialSource};
    let w = world("bulk-right-key");
    let e = &w.engine;
    let csv = format!(
        "user,serial,template\n{KIM},S1,test-standard\n\"{ADELE}\",S2,test-standard\n{ALEX},S3,test-standard\n{KIM},S4,test-standard\n"
    );
    let job = e
        .bulk_create(BulkKind::Issue, &csv, "operator:bulk", now_ms())
        .unwrap();
    let reports = |value: &str| KeyEvidence {
        keys_attached: Some(1),
        serial: Some(KeySerial {
            value: value.into(),
            source: SerialSource::UsbSerialString,
        }),
    };
    let mut devices = |r: &BulkDeviceRequest| {
        let mut d = soft_device(r)?;
        d.evidence = match r.serial.as_str() {
            "S1" => reports("S1"),
            "S2" => reports("S9"),
            "S3" => KeyEvidence {
                keys_attached: Some(2),
                serial: None,
            },
            _ => KeyEvidence::default(),
        };
        Ok(d)
    };
    let s = e
        .bulk_run(
            job.job_id,
            &BulkOptions::default(),
            &now_ms,
            &mut devices,
            &mut |_| {},
        )
        .unwrap();
    assert_eq!((s.done, s.failed), (2, 2), "{:#?}", s.items);
    let outcome = |line: u64| {
        s.items
            .iter()
            .find(|i| i.line == line)
            .map(|i| (i.status, i.outcome.clone()))
            .unwrap()
    };
    let (st, o) = outcome(2);
    assert_eq!(st, BulkItemStatus::Done);
    assert!(o.contains("serial from the key's USB serial string"), "{o}");
    let (st, o) = outcome(3);
    assert_eq!(st, BulkItemStatus::Failed);
    assert!(
        o.contains("reports serial S9") && o.contains("names S2"),
        "{o}"
    );
    let (st, o) = outcome(4);
    assert_eq!(st, BulkItemStatus::Failed);
    assert!(o.contains("2 security keys are attached"), "{o}");
    let (st, o) = outcome(5);
    assert_eq!(st, BulkItemStatus::Done);
    assert!(o.contains("serial from the CSV row"), "{o}");
    // The refused rows touched no key and recorded none.
    for serial in ["S2", "S3"] {
        assert!(e
            .find_keys(&KeyQuery::BySerial(serial.into()))
            .unwrap()
            .is_empty());
    }
}
