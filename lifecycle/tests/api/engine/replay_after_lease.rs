//! A flow that outlives its journal lease (a holder slow at PIN or touch, over a split
//! session): another node's replay, run past the lease, takes the flow's entries over.
//! The flow renews its claims before each device job and IdP call and stops, before any
//! Graph call, with the typed claim-lost error once a claim is gone. Before, it registered
//! the passkey anyway and failed only on its own close ("claim lost"): a passkey at Graph
//! for a key the other node had left issued.

use lifecycle::engine::ReplayOutcome;
use lifecycle::store::StoreError;

use super::two_nodes::{activation_with_replay_on_node_b, TwoNodes};
use super::*;

/// Past the 15-minute journal lease.
const PAST_LEASE_MS: u64 = 16 * 60_000;

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
    let TwoNodes {
        mut w,
        engine,
        key_id,
        result,
        seen,
        now,
    } = activation_with_replay_on_node_b(
        CrashPoint::AfterStateJournal,
        "lease-outlived-intent",
        PAST_LEASE_MS,
    );
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
    let TwoNodes {
        w,
        engine,
        key_id,
        result,
        seen,
        ..
    } = activation_with_replay_on_node_b(
        CrashPoint::AfterJournal,
        "lease-outlived-register",
        PAST_LEASE_MS,
    );
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
