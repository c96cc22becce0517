//! A journal replay on *another* node (another station name, the same repository: a
//! server's periodic replay on its second node, or `keysmith journal replay` on another
//! host) while a flow sits between journalling and making its IdP side effect. The
//! same-process guard (`live.rs`) does not see the other process's flows, so the flow's
//! entries must be claimed from the moment they are written: before, the other node
//! claimed the activation's unclaimed state entry and closed it as failed ("activation
//! incomplete"), the flow then registered the passkey at Graph and failed on its own close
//! ("journal entry N is already Failed"): a passkey at the IdP for a key left issued.

use std::sync::{Mutex, OnceLock};

use lifecycle::engine::ReplayOutcome;

use super::*;

/// What node b's replay reported, once it ran.
type Seen = Arc<Mutex<Option<Vec<(JournalOp, ReplayOutcome)>>>>;

fn replay_on_another_node_at(point: CrashPoint, name: &str) {
    let mut w = world(name);
    let other: Arc<OnceLock<Arc<Engine>>> = Arc::new(OnceLock::new());
    let seen: Seen = Arc::default();
    let (cell, out) = (other.clone(), seen.clone());
    let engine = sqlite_engine_builder(&w.emulator, &w.db, "node-a", 7)
        .probe(Arc::new(move |here| {
            if here != point || out.lock().unwrap().is_some() {
                return;
            }
            let Some(b) = cell.get().cloned() else { return };
            let replayed = std::thread::spawn(move || b.replay_journal(now_ms()))
                .join()
                .unwrap()
                .expect("replay on node b");
            *out.lock().unwrap() = Some(
                replayed
                    .into_iter()
                    .map(|r| (r.operation, r.outcome))
                    .collect(),
            );
        }))
        .build()
        .expect("engine a");
    let node_b = Arc::new(
        sqlite_engine_builder(&w.emulator, &w.db, "node-b", 7)
            .build()
            .expect("engine b"),
    );
    let t = template(60, true);
    engine.add_template(t.clone()).unwrap();
    node_b.add_template(t.clone()).unwrap();
    let now = now_ms();
    let key = engine
        .issue(&request(true), &t.credential.name, &mut w.key, now)
        .expect("issue");
    other.set(node_b).ok().unwrap();
    let key = engine
        .activate("self:kim", &key.key_id, HOLDER_PIN, &mut w.key, now + 1)
        .expect("the flow finishes its own activation");
    assert_eq!(key.state, CredentialState::Active);
    let seen = seen
        .lock()
        .unwrap()
        .clone()
        .expect("node b replayed mid-flow");
    assert!(!seen.is_empty(), "node b saw the flow's entries: {seen:?}");
    assert!(
        seen.iter()
            .all(|(_, outcome)| *outcome == ReplayOutcome::Busy),
        "node b took over a live flow's entry: {seen:?}"
    );
    assert_eq!(w.emulator.methods(&w.kim_id).len(), 1, "one passkey");
    assert!(engine.store().journal_unfinished().unwrap().is_empty());
}

#[test]
fn a_replay_on_another_node_leaves_a_live_activations_state_entry_alone() {
    replay_on_another_node_at(CrashPoint::AfterStateJournal, "replay-other-node-state");
}

#[test]
fn a_replay_on_another_node_leaves_a_live_registrations_entry_alone() {
    replay_on_another_node_at(CrashPoint::AfterJournal, "replay-other-node-register");
}
