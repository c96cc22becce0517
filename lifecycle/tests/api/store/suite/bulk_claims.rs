//! Bulk jobs: a finished job's source makes a new job (only an unfinished one is found
//! by its source), rows are claimed with a lease and a fencing token, and the schema 6
//! migration keeps the jobs of an older database.

use super::*;
use lifecycle::store::BulkItemStatus::{Done, Pending, Running};
use lifecycle::store::{BulkFence, BulkItemStatus, NewBulkJob};

fn job(kind: &str, hash: &str, rows: u64) -> NewBulkJob {
    NewBulkJob {
        kind: kind.into(),
        source_hash: hash.into(),
        actor: "op".into(),
        items: (0..rows)
            .map(|n| NewBulkItem {
                line: n + 2,
                input: format!("row {n}"),
            })
            .collect(),
    }
}

/// Issue 10 item 2: once every row of a job has run, the same source makes a new job;
/// while a row is pending or running, the same source finds the unfinished job.
pub fn bulk_finished_job_source_makes_a_new_job<B: Backend>(b: &B) {
    let s = b.open("bulk_finish");
    let first = s.bulk_create(&job("revoke", "cafe", 2), 10).unwrap();
    assert!(
        !s.bulk_finish_job(first.job_id, 11).unwrap(),
        "rows pending"
    );
    s.bulk_set_item(first.job_id, 2, BulkItemStatus::Done, Some("ok"), 12)
        .unwrap();
    s.bulk_set_item(first.job_id, 3, BulkItemStatus::Running, None, 12)
        .unwrap();
    assert!(
        !s.bulk_finish_job(first.job_id, 13).unwrap(),
        "a row running"
    );
    assert_eq!(
        s.bulk_open_job("revoke", "cafe").unwrap().map(|j| j.job_id),
        Some(first.job_id)
    );
    // A failed row does not keep the job open: it is retried only by the job's id.
    s.bulk_set_item(first.job_id, 3, BulkItemStatus::Failed, Some("no"), 14)
        .unwrap();
    assert!(s.bulk_finish_job(first.job_id, 15).unwrap());
    assert_eq!(
        s.bulk_job(first.job_id).unwrap().unwrap().finished_ms,
        Some(15)
    );
    assert_eq!(s.bulk_open_job("revoke", "cafe").unwrap(), None);
    // Finishing again keeps the first time.
    assert!(s.bulk_finish_job(first.job_id, 99).unwrap());
    assert_eq!(
        s.bulk_job(first.job_id).unwrap().unwrap().finished_ms,
        Some(15)
    );

    let second = s.bulk_create(&job("revoke", "cafe", 2), 20).unwrap();
    assert_ne!(second.job_id, first.job_id);
    assert_eq!(second.finished_ms, None);
    assert_eq!(s.bulk_counts(second.job_id).unwrap().pending, 2);
    assert_eq!(
        s.bulk_open_job("revoke", "cafe").unwrap().map(|j| j.job_id),
        Some(second.job_id)
    );
    // Only one unfinished job per source.
    assert!(matches!(
        s.bulk_create(&job("revoke", "cafe", 2), 21),
        Err(StoreError::Duplicate { .. })
    ));
}

/// Issue 14 item 1 (store part): a row is claimed by one runner at a time; a second
/// claim waits for the lease to end; a taken-over claim can neither be renewed nor
/// finish the row nor commit a unit of work or a transport PIN for it.
pub fn bulk_item_claims_are_leased_and_fenced<B: Backend>(b: &B) {
    let s = b.open("bulk_claims");
    let j = s.bulk_create(&job("issue", "beef", 2), 1).unwrap();
    let item = s.bulk_items(j.job_id, None, 1).unwrap().remove(0);
    assert_eq!((item.claim_token, item.claimed_by.clone()), (0, None));

    let a = s
        .bulk_claim_item(j.job_id, 2, 0, Pending, "runner-a", 100, 1_000)
        .unwrap()
        .expect("a claims the pending row");
    assert_eq!(a.previous, BulkItemStatus::Pending);
    assert_eq!(a.fence.token, 1);
    // b read the row before a claimed it: its claim is refused.
    assert_eq!(
        s.bulk_claim_item(j.job_id, 2, 0, Pending, "runner-b", 101, 1_000)
            .unwrap(),
        None
    );
    // b reads again: the claim is live, so still refused.
    assert_eq!(
        s.bulk_claim_item(j.job_id, 2, 1, Running, "runner-b", 500, 1_000)
            .unwrap(),
        None
    );
    s.bulk_renew_claim(&a.fence, 900, 1_000).unwrap();
    assert_eq!(
        s.bulk_claim_item(j.job_id, 2, 1, Running, "runner-b", 1_500, 1_000)
            .unwrap(),
        None,
        "renewed until 1900"
    );
    // a stalls past its lease; b takes the row over, as one left running.
    let b_claim = s
        .bulk_claim_item(j.job_id, 2, 1, Running, "runner-b", 1_900, 1_000)
        .unwrap()
        .expect("expired claim taken over");
    assert_eq!(b_claim.previous, BulkItemStatus::Running);
    assert_eq!(b_claim.fence.token, 2);

    // Every write under a's claim is refused now.
    let lost = |r: lifecycle::store::Result<()>| {
        assert!(
            matches!(r, Err(StoreError::ClaimLost { ref owner, token: 1, .. }) if owner == "runner-a"),
            "{r:?}"
        )
    };
    lost(s.bulk_renew_claim(&a.fence, 1_950, 1_000));
    lost(s.bulk_finish_item(&a.fence, BulkItemStatus::Failed, Some("lost"), 1_950));
    s.create_key(&new_key("kc", "SC"), 1).unwrap();
    let pin = TransportPin::new("12345678").unwrap();
    let host = PinKey::from_bytes([5; 32]);
    lost(s.bulk_fenced_put_transport_pin(&a.fence, "kc", &pin, &host, 1_950));
    assert!(s.get_transport_pin("kc", &host).unwrap().is_none());
    let key = s.get_key("kc").unwrap().unwrap();
    let work = |fence: &BulkFence| UnitOfWork {
        transition: Some(Transition::new(&key, St::Issued)),
        bulk_fence: Some(fence.clone()),
        ..UnitOfWork::default()
    };
    lost(s.commit(work(&a.fence), 1_950).map(|_| ()));
    assert_eq!(s.get_key("kc").unwrap().unwrap().state, St::Blank);

    // b's claim commits.
    s.bulk_fenced_put_transport_pin(&b_claim.fence, "kc", &pin, &host, 1_960)
        .unwrap();
    s.commit(work(&b_claim.fence), 1_960).unwrap();
    assert_eq!(s.get_key("kc").unwrap().unwrap().state, St::Issued);
    assert!(s
        .bulk_fenced_delete_transport_pin(&b_claim.fence, "kc")
        .unwrap());
    s.bulk_finish_item(&b_claim.fence, BulkItemStatus::Done, Some("issued"), 1_970)
        .unwrap();
    let done = s.bulk_items(j.job_id, None, 1).unwrap().remove(0);
    assert_eq!(done.status, BulkItemStatus::Done);
    assert_eq!(done.outcome.as_deref(), Some("issued"));
    assert_eq!(done.claimed_by.as_deref(), Some("runner-b"));
    // A done row is never claimed again, nor one finished since it was read.
    assert_eq!(
        s.bulk_claim_item(j.job_id, 2, 2, Running, "runner-c", 9_999, 1_000)
            .unwrap(),
        None
    );
    assert_eq!(
        s.bulk_claim_item(j.job_id, 2, 2, Done, "runner-c", 9_999, 1_000)
            .unwrap(),
        None
    );
    assert!(matches!(
        s.bulk_claim_item(j.job_id, 3, 0, Pending, "", 1, 1),
        Err(StoreError::Invalid { .. })
    ));
}

/// A database at schema 5 (bulk jobs unique by source) with a finished and an
/// unfinished job migrates to schema 6: both jobs and their rows are kept, the finished
/// one is marked finished (its source makes a new job), the unfinished one is found by
/// its source, and the rows' foreign key still holds.
pub fn bulk_jobs_migrated_from_schema_5<B: Backend>(b: &B) {
    let old = b.try_open_at("bulk_v5", 5).unwrap();
    assert_eq!(old.schema_version().unwrap(), 5);
    drop(old);
    b.raw_exec(
        "bulk_v5",
        "INSERT INTO bulk_jobs (kind, source_hash, actor, total, created_ms) VALUES \
         ('revoke', 'h1', 'op', 1, 7); \
         INSERT INTO bulk_jobs (kind, source_hash, actor, total, created_ms) VALUES \
         ('issue', 'h2', 'op', 2, 8); \
         INSERT INTO bulk_items (job_id, line, input, status, outcome, updated_ms) VALUES \
         (1, 2, 'r', 'done', 'revoked', 9), (2, 2, 'a', 'done', 'ok', 9), \
         (2, 3, 'b', 'running', NULL, 9);",
    )
    .unwrap();
    let s = b.open("bulk_v5");
    assert_eq!(s.schema_version().unwrap(), SCHEMA_VERSION);
    let finished = s.bulk_job(1).unwrap().unwrap();
    assert_eq!(
        (finished.kind.as_str(), finished.finished_ms),
        ("revoke", Some(7))
    );
    assert_eq!(s.bulk_open_job("revoke", "h1").unwrap(), None);
    let open = s.bulk_open_job("issue", "h2").unwrap().unwrap();
    assert_eq!((open.job_id, open.total, open.finished_ms), (2, 2, None));
    let items = s.bulk_items(2, None, 10).unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[1].status, BulkItemStatus::Running);
    assert_eq!((items[1].claim_token, items[1].claimed_until_ms), (0, 0));
    // The old UNIQUE constraint is gone: the finished job's source makes a new job, with
    // a fresh id.
    let again = s.bulk_create(&job("revoke", "h1", 1), 20).unwrap();
    assert!(again.job_id > 2, "{again:?}");
    // The rows still reference their job.
    assert!(b
        .raw_exec(
            "bulk_v5",
            "INSERT INTO bulk_items (job_id, line, input, status, outcome, updated_ms) \
             VALUES (4242, 2, 'x', 'pending', NULL, 1)"
        )
        .is_err());
}
