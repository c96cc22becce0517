//! A journal replay on *another* node (another station name, the same repository: a
//! server's periodic replay on its second node, or `keysmith journal replay` on another
//! host) while a flow sits between journalling and making its IdP side effect. The
//! same-process guard (`live.rs`) does not see the other process's flows, so the flow's
//! entries must be claimed from the moment they are written: before, the other node
//! claimed the activation's unclaimed state entry and closed it as failed ("activation
//! incomplete"), the flow then registered the passkey at Graph and failed on its own close
//! ("journal entry N is already Failed"): a passkey at the IdP for a key left issued.

use lifecycle::engine::ReplayOutcome;

use super::two_nodes::{activation_with_replay_on_node_b, TwoNodes};
use super::*;

/// Node b replays while node a's activation sits at `point`, within the flow's lease.
fn replay_on_another_node_at(point: CrashPoint, name: &str) {
    let TwoNodes {
        w,
        engine,
        result,
        seen,
        ..
    } = activation_with_replay_on_node_b(point, name, 0);
    let key = result.expect("the flow finishes its own activation");
    assert_eq!(key.state, CredentialState::Active);
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
