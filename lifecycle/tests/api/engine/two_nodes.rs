//! Two nodes on one repository: an activation on node a, during which node b (another
//! station name: a server's second node, or `keysmith journal replay` on another host)
//! replays the journal. Shared by `replay_across_nodes` and `replay_after_lease`.

use std::sync::{Mutex, OnceLock};

use lifecycle::engine::ReplayOutcome;

use super::*;

/// What node b's replay reported, once it ran.
type Seen = Arc<Mutex<Option<Vec<(JournalOp, ReplayOutcome)>>>>;

/// An activation on node a during which node b replayed the journal.
pub(super) struct TwoNodes {
    pub(super) w: World,
    /// Node a.
    pub(super) engine: Engine,
    pub(super) key_id: String,
    /// What node a's activation returned.
    pub(super) result: Result<KeyRecord, Error>,
    /// What node b's replay reported.
    pub(super) seen: Vec<(JournalOp, ReplayOutcome)>,
    /// The issuance's `now`.
    pub(super) now: u64,
}

/// Issues a key on node a, then activates it there; when the flow reaches `point`, node b
/// replays the journal at the issuance's time plus `replay_after_ms` (past the 15-minute
/// lease: as if the flow had outlived it).
pub(super) fn activation_with_replay_on_node_b(
    point: CrashPoint,
    name: &str,
    replay_after_ms: u64,
) -> TwoNodes {
    let mut w = world(name);
    let other: Arc<OnceLock<(Arc<Engine>, u64)>> = Arc::new(OnceLock::new());
    let seen: Seen = Arc::default();
    let (cell, out) = (other.clone(), seen.clone());
    let engine = sqlite_engine_builder(&w.emulator, &w.db, "node-a", 7)
        .probe(Arc::new(move |here| {
            if here != point || out.lock().unwrap().is_some() {
                return;
            }
            let Some((b, at)) = cell.get().cloned() else {
                return;
            };
            let replayed = std::thread::spawn(move || b.replay_journal(at))
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
    other.set((node_b, now + replay_after_ms)).ok().unwrap();
    let result = engine.activate("self:kim", &key.key_id, HOLDER_PIN, &mut w.key, now + 1);
    let seen = seen
        .lock()
        .unwrap()
        .clone()
        .expect("node b replayed mid-flow");
    TwoNodes {
        w,
        engine,
        key_id: key.key_id,
        result,
        seen,
        now,
    }
}
