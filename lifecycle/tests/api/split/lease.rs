//! A split activation (the holder at their own agent) that outlives its journal lease:
//! the other node's replay, run past the lease, takes the activation's state intent over
//! and closes it. The flow (running on this node, its device jobs over the session)
//! renews its claims before each device job and IdP call, so it stops with the typed
//! claim-lost refusal before any Graph call. Before, it registered the passkey at Graph
//! for a key the other node had left issued.

use std::sync::OnceLock;

use lifecycle::engine::{CrashPoint, ReplayOutcome};

use super::*;

/// Past the 15-minute journal lease.
const PAST_LEASE_MS: u64 = 16 * 60_000;

#[test]
fn a_split_activation_whose_intent_was_taken_over_registers_nothing() {
    let emulator = Emulator::start(EmulatorConfig::default()).expect("emulator");
    let dir = temp_dir("split-lease-outlived");
    let db = dir.join("keysmith.db");
    let node_b: Arc<OnceLock<Arc<Engine>>> = Arc::default();
    let seen: Arc<Mutex<Option<Vec<ReplayOutcome>>>> = Arc::default();
    let (cell, out) = (node_b.clone(), seen.clone());
    let engine = crate::common::sqlite_engine_builder(&emulator, &db, "server-1", 9)
        .probe(Arc::new(move |here| {
            if here != CrashPoint::AfterStateJournal || out.lock().unwrap().is_some() {
                return;
            }
            let Some(b) = cell.get().cloned() else {
                return;
            };
            let replayed = std::thread::spawn(move || b.replay_journal(now_ms() + PAST_LEASE_MS))
                .join()
                .unwrap()
                .expect("replay on node b");
            *out.lock().unwrap() = Some(replayed.into_iter().map(|r| r.outcome).collect());
        }))
        .build()
        .expect("engine");
    engine
        .add_template(template(&emulator, "split", ALL))
        .unwrap();
    let b = sqlite_engine(&emulator, &db, "server-2", 9);
    b.add_template(template(&emulator, "split", ALL)).unwrap();
    let w = World {
        emulator,
        dir,
        engine: Arc::new(engine),
    };
    let (r, mut key) = rig_on(w, CoordinatorConfig::default());
    let (_station, key_id) = issue_at_station(&r, &mut key);
    node_b.set(Arc::new(b)).ok().unwrap();

    let mut ui = Ui(Some(NEW_PIN));
    let (mut holder, need) = r.holder_asks(&mut key, &mut ui, activate(), None);
    let ended = r.sign_in(&mut holder, &need, ADELE, &mut key, &mut ui);
    let Event::Refused(refusal) = ended else {
        panic!("the activation whose claim was lost did not end refused: {ended:?}")
    };
    assert!(
        refusal.reason.contains("lost its claim") && refusal.reason.contains("server-2"),
        "the typed claim-lost error: {refusal:?}"
    );
    let seen = seen
        .lock()
        .unwrap()
        .clone()
        .expect("node b replayed mid-flow");
    assert!(
        seen.iter().any(
            |o| matches!(o, ReplayOutcome::StateSettled(s) if s.contains("activation incomplete"))
        ),
        "node b settled the intent: {seen:?}"
    );
    assert!(
        r.w.emulator.methods(ADELE).is_empty(),
        "no passkey at Graph"
    );
    assert!(
        !r.w.emulator
            .request_log()
            .iter()
            .any(|q| q.method == "POST" && q.path.ends_with("/fido2Methods")),
        "no registration posted"
    );
    assert_eq!(
        r.engine.key(&key_id).unwrap().state,
        CredentialState::Issued
    );
    assert!(r.engine.store().journal_unfinished().unwrap().is_empty());
}
