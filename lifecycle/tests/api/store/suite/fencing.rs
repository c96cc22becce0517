//! The store suite, continued: journal claims fence closes and commits (two stations,
//! one entry).

use super::*;
use lifecycle::store::{JournalClose, JournalFence};

fn close(id: i64, status: JournalStatus, fence: &JournalFence) -> UnitOfWork {
    UnitOfWork {
        close_journal: vec![JournalClose {
            id,
            status,
            result: Some("m".into()),
            fence: Some(fence.clone()),
        }],
        ..UnitOfWork::default()
    }
}

pub fn journal_closes_are_fenced<B: Backend>(b: &B) {
    let s = b.open("fencing");
    s.create_key(&new_key("k1", "S1"), 1).unwrap();
    let e = s
        .journal_append(
            &NewJournalEntry {
                key_id: "k1".into(),
                idp: "entra".into(),
                operation: JournalOp::Register,
                payload: b"{}".to_vec(),
            },
            10,
        )
        .unwrap();
    // Station A claims; its lease renews without counting an attempt.
    let a = JournalFence::of(&s.journal_claim(e.id, "station-a", 20, 1_000).unwrap());
    let renewed = s.journal_renew(e.id, &a, 900, 1_000).unwrap();
    assert_eq!(
        (renewed.attempts, renewed.claimed_until_ms),
        (a.token, 1_900)
    );
    assert!(matches!(
        s.journal_claim(e.id, "station-b", 1_500, 1_000),
        Err(StoreError::JournalBusy { .. })
    ));
    // A stalls past its lease; B takes the entry over.
    let b_fence = JournalFence::of(&s.journal_claim(e.id, "station-b", 2_000, 1_000).unwrap());
    // A's renewal, close and the commit carrying it are refused with a typed error,
    // and nothing of that commit is applied.
    let lost = StoreError::JournalClaimLost {
        id: e.id,
        station: "station-a".into(),
        claimed_by: "station-b".into(),
    };
    assert_eq!(s.journal_renew(e.id, &a, 2_100, 1_000).unwrap_err(), lost);
    let mut work = close(e.id, JournalStatus::Done, &a);
    work.audit.push(audit("register", Some("k1"), None, 2_100));
    assert_eq!(s.commit(work, 2_100).unwrap_err(), lost);
    assert!(s.query_audit(&AuditQuery::default()).unwrap().is_empty());
    assert_eq!(
        s.journal_get(e.id).unwrap().unwrap().status,
        JournalStatus::Pending
    );
    // A station that claims again gets a new token: the old one is fenced off too.
    let b_again = JournalFence::of(&s.journal_claim(e.id, "station-b", 2_200, 1_000).unwrap());
    assert!(matches!(
        s.commit(close(e.id, JournalStatus::Done, &b_fence), 2_300),
        Err(StoreError::JournalClaimLost { .. })
    ));
    // The holder closes; closing again is idempotent for it, refused for A.
    s.commit(close(e.id, JournalStatus::Done, &b_again), 2_400)
        .unwrap();
    s.commit(close(e.id, JournalStatus::Done, &b_again), 2_500)
        .unwrap();
    assert_eq!(
        s.commit(close(e.id, JournalStatus::Done, &a), 2_600)
            .unwrap_err(),
        lost
    );
    assert!(matches!(
        s.journal_renew(e.id, &b_again, 2_700, 1_000),
        Err(StoreError::JournalClosed { .. })
    ));
    // A's renewal after B closed the entry: still a lost claim (fenced first, as the
    // close is), so a flow that outlived its lease stops with the typed error.
    assert_eq!(s.journal_renew(e.id, &a, 2_800, 1_000).unwrap_err(), lost);
}
