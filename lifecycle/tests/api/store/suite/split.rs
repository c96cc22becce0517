//! The split deployment's tables: sessions move by compare-and-set and are MACed, the
//! message log ignores repeats, station work is taken by one session only.

use super::super::backends::Backend;
use lifecycle::store::split::{
    SplitDirection, SplitMessage, SplitSession, SplitSessionState, StationWork, StationWorkState,
};
use lifecycle::store::{PinKey, SplitStore, Store, StoreError};
use std::sync::{Arc, Barrier, Mutex};
use std::time::Duration;

fn session(id: &str) -> SplitSession {
    SplitSession {
        session_id: id.into(),
        agent_id: "aa".repeat(32),
        created_ms: 1_000,
        expires_ms: 901_000,
        state: SplitSessionState::Open,
        session_pub: vec![4; 65],
        server_nonce: vec![7; 16],
        recv_seq: 0,
        recv_digest: vec![1; 32],
        sent_seq: 0,
        reply: b"server hello".to_vec(),
        context: r#"{"phase":"hello"}"#.into(),
        version: 1,
    }
}

/// Two nodes advancing the same session from the same version: exactly one wins, and the
/// loser sees the winner's row. A stale expected version changes nothing.
pub fn split_sessions_compare_and_set<B: Backend>(b: &B) {
    let s: Arc<dyn Store> = Arc::new(b.open("split_cas"));
    s.split_session_create(&session("s1"), 1_000).unwrap();
    assert!(matches!(
        s.split_session_create(&session("s1"), 1_000),
        Err(StoreError::Duplicate { .. })
    ));
    assert_eq!(s.split_session_get("s1").unwrap().unwrap(), session("s1"));
    assert!(s.split_session_get("nope").unwrap().is_none());

    let barrier = Arc::new(Barrier::new(2));
    let wins: Vec<bool> = (0..2u64)
        .map(|n| {
            let (s, barrier) = (s.clone(), barrier.clone());
            std::thread::spawn(move || {
                let mut next = session("s1");
                next.recv_seq = 1;
                next.reply = format!("reply of node {n}").into_bytes();
                next.version = 2;
                barrier.wait();
                s.split_session_update(&next, 1, 2_000).unwrap()
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    assert_eq!(wins.iter().filter(|w| **w).count(), 1, "{wins:?}");
    let now = s.split_session_get("s1").unwrap().unwrap();
    assert_eq!((now.recv_seq, now.version), (1, 2));

    // A stale version (1 again) is refused; a row not carrying version + 1 is invalid.
    let mut stale = now.clone();
    stale.version = 2;
    stale.state = SplitSessionState::Broken;
    assert!(!s.split_session_update(&stale, 1, 3_000).unwrap());
    assert!(matches!(
        s.split_session_update(&now, 2, 3_000),
        Err(StoreError::Invalid { .. })
    ));
    assert_eq!(s.split_session_get("s1").unwrap().unwrap(), now);
}

/// With the row key installed, a session or station work altered in the database is
/// refused on read (the context names the holder and the operation the IdP calls follow).
pub fn split_rows_are_authenticated<B: Backend>(b: &B) {
    let s = b.open("split_mac");
    s.set_row_key(&PinKey::from_bytes([9; 32]));
    s.split_session_create(&session("s2"), 1_000).unwrap();
    let work = StationWork {
        work_id: "w1".into(),
        agent_id: "bb".repeat(32),
        request: r#"{"kind":"issue","user":"alice"}"#.into(),
        actor: "op-1".into(),
        created_ms: 1_000,
        state: StationWorkState::Queued,
        session_id: None,
        outcome: None,
    };
    s.station_work_put(&work).unwrap();
    assert!(s.split_session_get("s2").is_ok());
    assert_eq!(s.station_work_get("w1").unwrap().unwrap(), work);

    b.raw_exec(
        "split_mac",
        "UPDATE split_sessions SET context = '{\"phase\":\"holder\",\"oid\":\"mallory\"}'",
    )
    .unwrap();
    b.raw_exec(
        "split_mac",
        "UPDATE station_work SET request = '{\"kind\":\"issue\",\"user\":\"mallory\"}'",
    )
    .unwrap();
    assert!(matches!(
        s.split_session_get("s2"),
        Err(StoreError::Integrity { .. })
    ));
    assert!(matches!(
        s.station_work_get("w1"),
        Err(StoreError::Integrity { .. })
    ));
    // Altered work is never handed to a station.
    assert!(matches!(
        s.station_work_take(&"bb".repeat(32), "s9", 2_000),
        Err(StoreError::Integrity { .. })
    ));
}

/// The log keeps each message once, in order; station work goes to one session, oldest
/// first, and is finished once.
pub fn split_log_and_station_work<B: Backend>(b: &B) {
    let s: Arc<dyn Store> = Arc::new(b.open("split_work"));
    for (d, seq, t) in [
        (SplitDirection::In, 0, 10),
        (SplitDirection::Out, 0, 11),
        (SplitDirection::In, 1, 12),
    ] {
        let m = SplitMessage {
            session_id: "s3".into(),
            direction: d,
            seq,
            bytes: vec![seq as u8; 4],
            at_ms: t,
        };
        s.split_log(&m).unwrap();
        s.split_log(&m).unwrap(); // a retransmission is logged once
    }
    let log = s.split_messages("s3").unwrap();
    assert_eq!(log.len(), 3);
    assert_eq!(log[1].direction, SplitDirection::Out);

    let agent = "cc".repeat(32);
    for (id, t) in [("w-late", 2_000), ("w-early", 1_000)] {
        s.station_work_put(&StationWork {
            work_id: id.into(),
            agent_id: agent.clone(),
            request: "{}".into(),
            actor: "op".into(),
            created_ms: t,
            state: StationWorkState::Queued,
            session_id: None,
            outcome: None,
        })
        .unwrap();
    }
    assert!(s.station_work_take("other", "s0", 3_000).unwrap().is_none());
    let barrier = Arc::new(Barrier::new(2));
    let taken: Vec<Option<StationWork>> = ["sa", "sb"]
        .map(|sid| {
            let (s, barrier, agent) = (s.clone(), barrier.clone(), agent.clone());
            std::thread::spawn(move || {
                barrier.wait();
                s.station_work_take(&agent, sid, 3_000).unwrap()
            })
        })
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    let mut ids: Vec<String> = taken.iter().flatten().map(|w| w.work_id.clone()).collect();
    ids.sort();
    // Each session got at most one piece, never the same one; the oldest went first.
    assert!(
        ids.len() <= 2 && ids.windows(2).all(|w| w[0] != w[1]),
        "{ids:?}"
    );
    assert!(ids.contains(&"w-early".to_string()), "{ids:?}");
    let early = s.station_work_get("w-early").unwrap().unwrap();
    assert_eq!(early.state, StationWorkState::Taken);
    assert!(early.session_id.is_some());
    assert!(s
        .station_work_finish("w-early", StationWorkState::Done, r#"{"ok":true}"#, 4_000)
        .unwrap());
    assert!(!s
        .station_work_finish("w-early", StationWorkState::Failed, "{}", 5_000)
        .unwrap());
    let done = s.station_work_get("w-early").unwrap().unwrap();
    assert_eq!(
        (done.state, done.outcome.as_deref()),
        (StationWorkState::Done, Some(r#"{"ok":true}"#))
    );
}

/// Another connection's update of a session reaches a watching store's watcher
/// (PostgreSQL: `LISTEN`/`NOTIFY`, what wakes a server node's waiters when the other node
/// moved the session); the watching store's own updates and a refused compare-and-set do
/// not. SQLite has no such feed (one process serves it) and says so.
pub fn split_sessions_watched_across_connections<B: Backend>(b: &B) {
    let here = b.open("split_watch");
    let there = b.open("split_watch");
    // Other tests' sessions notify the same database-wide channel: only this one counts.
    let id = format!("watched-{}", std::process::id());
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let (tx, wanted) = (Mutex::new(tx), id.clone());
    let watching = here
        .watch_sessions(Arc::new(move |sid: &str| {
            if sid == wanted {
                let _ = tx.lock().unwrap().send(sid.to_owned());
            }
        }))
        .unwrap();
    assert_eq!(watching, b.target("split_watch").starts_with("pg:"));
    if !watching {
        return;
    }
    here.split_session_create(&session(&id), 1_000).unwrap();
    let mut mine = session(&id);
    (mine.version, mine.recv_seq) = (2, 1);
    assert!(here.split_session_update(&mine, 1, 2_000).unwrap());
    let mut theirs = mine.clone();
    (theirs.version, theirs.recv_seq) = (3, 2);
    assert!(there.split_session_update(&theirs, 2, 3_000).unwrap());
    assert!(!there.split_session_update(&theirs, 2, 3_000).unwrap());
    // (A bound for a hang, not a speed target: delivery is at the other's commit.)
    assert_eq!(rx.recv_timeout(Duration::from_secs(30)).unwrap(), id);
    assert!(
        rx.recv_timeout(Duration::from_secs(2)).is_err(),
        "only the other connection's one update is notified"
    );
}
