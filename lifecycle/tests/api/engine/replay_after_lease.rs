//! A flow that outlives its journal lease (a holder slow at PIN or touch, over a split
//! session): another node's replay, run past the lease, takes the flow's entries over.
//! The flow renews its claims before each device job and IdP call and stops, before any
//! Graph call, with the typed claim-lost error once a claim is gone. Before, it registered
//! the passkey anyway and failed only on its own close ("claim lost"): a passkey at Graph
//! for a key the other node had left issued.

use std::sync::{Mutex, OnceLock};

use lifecycle::engine::ReplayOutcome;
use lifecycle::store::StoreError;

use super::*;

/// Past the 15-minute journal lease.
const PAST_LEASE_MS: u64 = 16 * 60_000;

/// What node b's replay reported, once it ran.
type Seen = Arc<Mutex<Option<Vec<(JournalOp, ReplayOutcome)>>>>;

/// An activation on node a that node b's replay overtook.
struct Outlived {
    w: World,
    /// Node a.
    engine: Engine,
    key_id: String,
    /// What node a's activation returned.
    result: Result<KeyRecord, Error>,
    /// What node b's replay reported.
    seen: Vec<(JournalOp, ReplayOutcome)>,
    /// The issuance's `now`.
    now: u64,
}

/// Issues a key on node a, then activates it there; at `point` node b replays the
/// journal as if the lease had run out.
fn activation_outlived_at(point: CrashPoint, name: &str) -> Outlived {
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
    other.set((node_b, now + PAST_LEASE_MS)).ok().unwrap();
    let result = engine.activate("self:kim", &key.key_id, HOLDER_PIN, &mut w.key, now + 1);
    let seen = seen
        .lock()
        .unwrap()
        .clone()
        .expect("node b replayed mid-flow");
    Outlived {
        w,
        engine,
        key_id: key.key_id,
        result,
        seen,
        now,
    }
}

/// The registrations posted to Graph so far (whatever their answer).
fn registrations_posted(w: &World) -> usize {
    w.emulator
        .request_log()
        .iter()
        .filter(|q| q.method == "POST" && q.path.ends_with("/fido2Methods"))
        .count()
}

fn claim_lost(result: &Result<KeyRecord, Error>) -> bool {
    matches!(
        result,
        Err(Error::Store(StoreError::JournalClaimLost { claimed_by, .. })) if claimed_by == "node-b"
    )
}

#[test]
fn a_flow_whose_intent_was_taken_over_registers_nothing() {
    let Outlived {
        mut w,
        engine,
        key_id,
        result,
        seen,
        now,
    } = activation_outlived_at(CrashPoint::AfterStateJournal, "lease-outlived-intent");
    // Node b closed the intent (the registration not yet journalled).
    assert!(
        seen.iter().any(|(op, outcome)| *op == JournalOp::State
            && matches!(outcome, ReplayOutcome::StateSettled(s) if s.contains("activation incomplete"))),
        "node b settled the intent: {seen:?}"
    );
    assert!(claim_lost(&result), "typed claim-lost error: {result:?}");
    assert!(
        w.emulator.methods(&w.kim_id).is_empty(),
        "no Graph registration after the claim was lost"
    );
    assert_eq!(registrations_posted(&w), 0, "no registration posted");
    // Consistent: the key is issued with its registration pending, nothing is left
    // open in the journal, and the holder's next activation finishes it.
    let key = engine.key(&key_id).unwrap();
    assert_eq!(key.state, CredentialState::Issued);
    assert!(!key.needs_reissue);
    assert!(engine.store().journal_unfinished().unwrap().is_empty());
    let key = engine
        .activate(
            "self:kim",
            &key_id,
            HOLDER_PIN,
            &mut w.key,
            now + PAST_LEASE_MS + 60_000,
        )
        .expect("activation again");
    assert_eq!(key.state, CredentialState::Active);
    assert_eq!(w.emulator.methods(&w.kim_id).len(), 1, "one passkey");
    assert!(engine.store().journal_unfinished().unwrap().is_empty());
}

#[test]
fn a_flow_whose_registration_was_taken_over_does_not_register_it_again() {
    let Outlived {
        w,
        engine,
        key_id,
        result,
        seen,
        ..
    } = activation_outlived_at(CrashPoint::AfterJournal, "lease-outlived-register");
    // Node b registered the journalled passkey itself and finished the activation.
    assert!(
        seen.iter().any(
            |(op, outcome)| *op == JournalOp::Register && *outcome == ReplayOutcome::Registered
        ),
        "node b registered: {seen:?}"
    );
    assert!(claim_lost(&result), "typed claim-lost error: {result:?}");
    assert_eq!(
        w.emulator.methods(&w.kim_id).len(),
        1,
        "registered once, by node b"
    );
    // Node a never posted its own: the one registration posted is node b's.
    assert_eq!(registrations_posted(&w), 1, "one registration posted");
    assert_eq!(engine.key(&key_id).unwrap().state, CredentialState::Active);
    assert!(engine.store().journal_unfinished().unwrap().is_empty());
}
