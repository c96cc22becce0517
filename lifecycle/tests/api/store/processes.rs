//! Several processes on one database: child processes (this test binary re-run with an
//! ignored worker test) race to issue the same keys; exactly one wins each.

use lifecycle::store::{
    AuditQuery, FieldChange, NewAuditRecord, NewKey, Store, StoreError, Transition,
};
use lifecycle::CredentialState as St;
use std::process::{Command, Stdio};

const KEYS: usize = 150;
const WORKERS: usize = 3;

/// Env var telling the worker which backend and database to open.
pub const ENV_TARGET: &str = "KEYSMITH_STORE_RACE_TARGET";
/// Env var naming the worker.
pub const ENV_WHO: &str = "KEYSMITH_STORE_RACE_WHO";

/// The worker body: try to issue every key once; print the number of wins.
pub fn worker(store: &dyn Store, who: &str) {
    let mut wins = 0;
    for i in 0..KEYS {
        let id = format!("k{i}");
        let key = store.get_key(&id).unwrap().unwrap();
        if key.state != St::Blank {
            continue;
        }
        let change = Transition {
            user_id: FieldChange::Set(who.into()),
            ..Transition::new(&key, St::Issued)
        };
        let audit = NewAuditRecord {
            actor: who.into(),
            time_ms: 1,
            action: "issue".into(),
            key_id: Some(id.clone()),
            user_id: Some(who.into()),
            template_id: None,
            outcome: "success".into(),
            idp_request_id: None,
            detail: None,
        };
        match store.transition(&change, &audit, 1) {
            Ok(_) => wins += 1,
            Err(StoreError::Conflict {
                found: St::Issued, ..
            }) => {}
            Err(e) => panic!("{who}: unexpected error on {id}: {e}"),
        }
    }
    println!("WINS={wins}");
}

/// The parent: seed keys, run the workers as processes, check the outcome.
pub fn race(setup: &dyn Store, target: &str) {
    for i in 0..KEYS {
        setup
            .create_key(
                &NewKey {
                    key_id: format!("k{i}"),
                    aaguid: [3; 16],
                    serial: format!("P{i}"),
                },
                1,
            )
            .unwrap();
    }
    let exe = std::env::current_exe().unwrap();
    // Start every worker before waiting for any, so they overlap.
    let children: Vec<_> = (0..WORKERS)
        .map(|w| {
            Command::new(&exe)
                .args([
                    "--ignored",
                    "--exact",
                    "store::race_worker",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(ENV_TARGET, target)
                .env(ENV_WHO, format!("station{w}"))
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut total = 0;
    for child in children {
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "worker failed: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let wins: usize = stdout
            .lines()
            .find_map(|l| l.split_once("WINS=").map(|(_, n)| n))
            .and_then(|n| n.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("worker printed no WINS line: {stdout}"));
        total += wins;
    }
    assert_eq!(
        total, KEYS,
        "every key issued exactly once across processes"
    );
    for i in 0..KEYS {
        let id = format!("k{i}");
        let k = setup.get_key(&id).unwrap().unwrap();
        assert_eq!((k.state, k.version), (St::Issued, 2), "{id}");
        let log = setup
            .query_audit(&AuditQuery {
                key_id: Some(id.clone()),
                ..AuditQuery::default()
            })
            .unwrap();
        assert_eq!(log.len(), 1, "{id}: one issue recorded");
        assert_eq!(log[0].event.actor, k.user_id.unwrap());
    }
}
