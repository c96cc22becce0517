//! Reconcile, bulk jobs and paged listing through the facade: the real Entra emulator
//! on loopback, persistent software keys and SQLite in a temporary directory.

use std::path::Path;

use entra_graph::emulator::Emulator;
use keysmith_facade::{BulkRunOptions, Device, ErrorKind, IssueParams, Session};
use keysmith_testkit::{session_config, softkey_spec, EmulatorWorld, STANDARD_NAME};
use keysmith_testkit::{ADELE, ALEX, HOLDER_PIN as PIN, KIM};

fn open(emulator: &Emulator, dir: &Path) -> Session {
    Session::open(&session_config(emulator, dir, "facade-jobs")).expect("session")
}

fn softkey(dir: &Path, name: &str) -> Device {
    Device::open(&softkey_spec(dir, name)).expect("softkey")
}

fn issue(session: &Session, device: &Device, user: &str) -> String {
    session
        .issue(
            device,
            &IssueParams {
                template: STANDARD_NAME.into(),
                user: user.into(),
                ..IssueParams::default()
            },
        )
        .expect("issue")
        .key_id
}

fn no_device(_: &keysmith_facade::BulkRow) -> Result<String, String> {
    Err("no device expected".into())
}

#[test]
fn reconcile_finds_and_fixes_drift_made_at_the_emulator() {
    let EmulatorWorld { emulator, dir } = EmulatorWorld::start("facade-reconcile");
    let session = open(&emulator, &dir);
    let device = softkey(&dir, "kim.json");
    let key_id = issue(&session, &device, KIM);
    session.activate(&device, &key_id, PIN).expect("activate");
    assert_eq!(emulator.methods(KIM).len(), 1);

    let clean = session
        .reconcile(&[KIM.to_owned()], false, false)
        .expect("reconcile");
    assert!(clean.clean, "{clean:?}");
    assert_eq!(clean.users_checked, 1);

    // Drift: a passkey nobody issued appears at the IdP.
    let foreign = emulator.seed_methods(KIM, 1);
    assert_eq!(emulator.methods(KIM).len(), 2);
    let report = session
        .reconcile(&[KIM.to_owned()], false, false)
        .expect("reconcile");
    assert!(!report.clean);
    assert_eq!(report.findings.len(), 1, "{report:?}");
    let f = &report.findings[0];
    assert_eq!(f.kind, "unknown");
    assert_eq!(f.method_id.as_deref(), foreign.first().map(String::as_str));
    assert!(!f.fixed);
    assert_eq!(emulator.methods(KIM).len(), 2, "a report changes nothing");

    let e = session
        .reconcile(&[KIM.to_owned()], false, true)
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Usage);
    assert!(e.message.contains("delete_unknown"), "{e}");

    // No users: every user holding a key (kim) is checked; fixed and deleted.
    let fixed = session.reconcile(&[], true, true).expect("fix");
    assert_eq!(fixed.users_checked, 1);
    assert_eq!(fixed.fixed, 1, "{fixed:?}");
    assert_eq!(fixed.errors, 0);
    let left: Vec<String> = emulator.methods(KIM).into_iter().map(|m| m.id).collect();
    assert_eq!(left.len(), 1);
    assert!(!foreign.contains(&left[0]), "the foreign passkey is gone");
    assert!(
        session
            .reconcile(&[KIM.to_owned()], false, false)
            .expect("again")
            .clean
    );
    let json = serde_json::to_value(&fixed).expect("serializable");
    assert_eq!(json["findings"][0]["kind"], "unknown");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bulk_revoke_over_three_keys_and_paged_listing() {
    let EmulatorWorld { emulator, dir } = EmulatorWorld::start("facade-revoke");
    let session = open(&emulator, &dir);
    let mut ids: Vec<String> = [KIM, ADELE, ALEX]
        .iter()
        .enumerate()
        .map(|(i, u)| issue(&session, &softkey(&dir, &format!("k{i}.json")), u))
        .collect();
    ids.sort();

    // Paged listing: 2 + 1.
    let first = session.list_keys_page(None, 2).expect("page 1");
    assert_eq!(first.keys.len(), 2);
    let after = first.next_after.clone().expect("more pages");
    let second = session.list_keys_page(Some(&after), 2).expect("page 2");
    assert_eq!(second.keys.len(), 1);
    assert_eq!(second.next_after, None);
    let listed: Vec<String> = first
        .keys
        .iter()
        .chain(&second.keys)
        .map(|k| k.key_id.clone())
        .collect();
    assert_eq!(listed, ids);
    let e = session.list_keys_page(None, 0).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Usage);
    assert!(e.message.contains("limit"), "{e}");

    let csv = format!("key_id\n{}\n{}\n{}\n", ids[0], ids[1], ids[2]);
    let job = session.bulk_create("revoke", &csv).expect("job");
    assert_eq!(job.kind, "revoke");
    assert_eq!(job.total, 3);
    assert_eq!(
        session.bulk_create("revoke", &csv).expect("same").job_id,
        job.job_id,
        "the same text is the same job"
    );
    let mut progress = Vec::new();
    let summary = session
        .bulk_run(
            job.job_id,
            &BulkRunOptions {
                workers: 2,
                ..BulkRunOptions::default()
            },
            &mut no_device,
            &mut |p| progress.push(p.clone()),
        )
        .expect("run");
    assert_eq!((summary.done, summary.failed, summary.total), (3, 0, 3));
    assert_eq!(summary.kind, "revoke");
    assert_eq!(progress.len(), 3);
    assert!(progress.iter().all(|p| p.status == "done"), "{progress:?}");
    for id in &ids {
        assert_eq!(session.key(id).expect("key").key.state, "revoked");
    }
    // Resumed: nothing left to do.
    let again = session
        .bulk_run(
            job.job_id,
            &BulkRunOptions::default(),
            &mut no_device,
            &mut |_| {},
        )
        .expect("rerun");
    assert_eq!((again.done, again.skipped), (3, 3));
    assert!(again.items.is_empty());

    let e = session.bulk_create("destroy", &csv).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Usage);
    let e = session.bulk_create("issue", "user\nkim\n").unwrap_err();
    assert_eq!(e.kind, ErrorKind::Usage, "{e}");
    assert!(e.message.contains("serial"), "{e}");
    let e = session
        .bulk_run(999, &BulkRunOptions::default(), &mut no_device, &mut |_| {})
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Usage);
    let e = session
        .bulk_run(
            job.job_id,
            &BulkRunOptions {
                workers: 0,
                ..BulkRunOptions::default()
            },
            &mut no_device,
            &mut |_| {},
        )
        .unwrap_err();
    assert!(e.message.contains("workers"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bulk_issue_with_a_softkey_per_row() {
    let EmulatorWorld { emulator, dir } = EmulatorWorld::start("facade-issue");
    let session = open(&emulator, &dir);
    let csv = format!("user,serial\n{KIM},BULK-1\n{ADELE},BULK-2\n{ALEX},BULK-3\n");
    let job = session.bulk_create("issue", &csv).expect("job");
    assert_eq!(job.total, 3);
    let mut asked = Vec::new();
    let mut lines = Vec::new();
    let summary = session
        .bulk_run(
            job.job_id,
            &BulkRunOptions {
                template: Some(STANDARD_NAME.into()),
                ..BulkRunOptions::default()
            },
            &mut |row| {
                asked.push((row.line, row.user.clone(), row.serial.clone()));
                if row.user == ALEX {
                    // A spec the facade cannot open fails that row only.
                    return Ok("bluetooth:nope".into());
                }
                Ok(softkey_spec(&dir, &format!("row{}.json", row.line)))
            },
            &mut |p| lines.push((p.line, p.status.clone())),
        )
        .expect("run");
    assert_eq!((summary.done, summary.failed), (2, 1), "{summary:?}");
    assert_eq!(asked.len(), 3);
    assert_eq!(asked[0], (2, KIM.to_owned(), "BULK-1".to_owned()));
    assert_eq!(lines.len(), 3);
    let failed = summary
        .items
        .iter()
        .find(|i| i.status == "failed")
        .expect("a failed row");
    assert!(failed.outcome.contains("bluetooth"), "{failed:?}");
    let keys = session.list_keys_page(None, 100).expect("list").keys;
    let mut serials: Vec<&str> = keys.iter().map(|k| k.serial.as_str()).collect();
    serials.sort_unstable();
    assert_eq!(serials, ["BULK-1", "BULK-2"]);
    assert!(keys.iter().all(|k| k.state == "issued"), "{keys:?}");
    // Issue 12 item 5: the software key proves nothing and reports no serial, so the
    // rows' serials are recorded as claimed by the CSV (the key record's `serial_source`).
    assert!(
        keys.iter()
            .all(|k| k.serial_source.as_deref() == Some("claimed") && k.identity.is_none()),
        "{keys:?}"
    );
    let json = serde_json::to_value(&keys[0]).unwrap();
    assert_eq!(json["serial_source"], "claimed");
    assert!(dir.join("row2.json").exists() && dir.join("row3.json").exists());

    // The two issued keys wait for activation: their registrations expire within 2 h
    // (the template's 60 minutes), listed one per page.
    let mut after = None;
    let mut expiring = Vec::new();
    loop {
        let page = session
            .list_expiring_page(2 * 3_600_000, after.as_ref(), 1)
            .expect("expiring page");
        expiring.extend(page.pending);
        match page.next_after {
            Some(c) => after = Some(c),
            None => break,
        }
    }
    let ids: Vec<&str> = keys.iter().map(|k| k.key_id.as_str()).collect();
    assert_eq!(expiring.len(), 2, "{expiring:?}");
    assert!(expiring.iter().all(|p| ids.contains(&p.key_id.as_str())));
    assert!(expiring[0].challenge_expires_ms <= expiring[1].challenge_expires_ms);
    let soon = session
        .list_expiring_page(60_000, None, 10)
        .expect("within a minute");
    assert!(soon.pending.is_empty() && soon.next_after.is_none());
    let _ = std::fs::remove_dir_all(&dir);
}
