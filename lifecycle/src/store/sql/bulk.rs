//! Bulk jobs and their items.

use super::*;
use crate::store::{BulkClaim, BulkFence};

pub(super) const BULK_JOB_COLS: &str =
    "job_id, kind, source_hash, actor, total, created_ms, finished_ms";

pub(super) fn bulk_job_from(row: &Row) -> Result<BulkJob> {
    Ok(BulkJob {
        job_id: row.int(0, "bulk_jobs.job_id")?,
        kind: row.text(1, "bulk_jobs.kind")?,
        source_hash: row.text(2, "bulk_jobs.source_hash")?,
        actor: row.text(3, "bulk_jobs.actor")?,
        total: row.uint(4, "bulk_jobs.total")?,
        created_ms: row.uint(5, "bulk_jobs.created_ms")?,
        finished_ms: opt_uint(row, 6, "bulk_jobs.finished_ms")?,
    })
}

fn opt_uint(row: &Row, i: usize, field: &str) -> Result<Option<u64>> {
    match row.cell(i, field)? {
        Cell::Null => Ok(None),
        _ => row.uint(i, field).map(Some),
    }
}

pub(super) const BULK_ITEM_COLS: &str =
    "job_id, line, input, status, outcome, updated_ms, claimed_by, claim_token, claimed_until_ms";

pub(super) fn bulk_item_from(row: &Row) -> Result<BulkItem> {
    let status = row.text(3, "bulk_items.status")?;
    Ok(BulkItem {
        job_id: row.int(0, "bulk_items.job_id")?,
        line: row.uint(1, "bulk_items.line")?,
        input: row.text(2, "bulk_items.input")?,
        status: BulkItemStatus::parse(&status).ok_or_else(|| StoreError::Corrupt {
            what: format!("bulk_items.status: unknown {status:?}"),
        })?,
        outcome: row.opt_text(4, "bulk_items.outcome")?,
        updated_ms: row.uint(5, "bulk_items.updated_ms")?,
        claimed_by: row.opt_text(6, "bulk_items.claimed_by")?,
        claim_token: row.uint(7, "bulk_items.claim_token")?,
        claimed_until_ms: row.uint(8, "bulk_items.claimed_until_ms")?,
    })
}

pub(crate) fn bulk_create(sql: &mut dyn Sql, job: &NewBulkJob, now: UnixMillis) -> Result<BulkJob> {
    if job.kind.is_empty() || job.source_hash.is_empty() {
        return Err(StoreError::Invalid {
            field: "bulk job",
            reason: "kind and source hash must not be empty".into(),
        });
    }
    let total = i64::try_from(job.items.len()).map_err(|_| StoreError::Invalid {
        field: "items",
        reason: "too many".into(),
    })?;
    let rows = sql.query(
        &format!(
            "INSERT INTO bulk_jobs (kind, source_hash, actor, total, created_ms) \
             VALUES ($1, $2, $3, $4, $5) RETURNING {BULK_JOB_COLS}"
        ),
        &[
            Param::text(&job.kind),
            Param::text(&job.source_hash),
            Param::text(&job.actor),
            Param::int(total),
            Param::millis(now),
        ],
    )?;
    let created = first(rows, bulk_job_from)?.ok_or_else(|| StoreError::Corrupt {
        what: "bulk_jobs: insert returned no row".into(),
    })?;
    for item in &job.items {
        sql.exec(
            "INSERT INTO bulk_items (job_id, line, input, status, outcome, updated_ms) \
             VALUES ($1, $2, $3, $4, NULL, $5)",
            &[
                Param::int(created.job_id),
                Param::int(ver(item.line, "items.line")?),
                Param::text(&item.input),
                Param::text(BulkItemStatus::Pending.as_str()),
                Param::millis(now),
            ],
        )?;
    }
    Ok(created)
}

pub(crate) fn bulk_job(sql: &mut dyn Sql, job_id: i64) -> Result<Option<BulkJob>> {
    let rows = sql.query(
        &format!("SELECT {BULK_JOB_COLS} FROM bulk_jobs WHERE job_id = $1"),
        &[Param::int(job_id)],
    )?;
    first(rows, bulk_job_from)
}

pub(crate) fn bulk_open_job(sql: &mut dyn Sql, kind: &str, hash: &str) -> Result<Option<BulkJob>> {
    let rows = sql.query(
        &format!(
            "SELECT {BULK_JOB_COLS} FROM bulk_jobs WHERE kind = $1 AND source_hash = $2 \
             AND finished_ms IS NULL ORDER BY job_id DESC LIMIT 1"
        ),
        &[Param::text(kind), Param::text(hash)],
    )?;
    first(rows, bulk_job_from)
}

pub(crate) fn bulk_finish_job(sql: &mut dyn Sql, job_id: i64, now: UnixMillis) -> Result<bool> {
    sql.exec(
        "UPDATE bulk_jobs SET finished_ms = $1 WHERE job_id = $2 AND finished_ms IS NULL \
         AND NOT EXISTS (SELECT 1 FROM bulk_items i WHERE i.job_id = $2 \
         AND i.status IN ('pending', 'running'))",
        &[Param::millis(now), Param::int(job_id)],
    )?;
    Ok(bulk_job(sql, job_id)?.is_some_and(|j| j.finished_ms.is_some()))
}

pub(crate) fn bulk_items(
    sql: &mut dyn Sql,
    job_id: i64,
    after_line: Option<u64>,
    limit: u32,
) -> Result<Vec<BulkItem>> {
    let limit = page_limit(limit)?;
    let after = match after_line {
        Some(l) => ver(l, "after_line")?,
        None => -1,
    };
    let rows = sql.query(
        &format!(
            "SELECT {BULK_ITEM_COLS} FROM bulk_items WHERE job_id = $1 AND line > $2 \
             ORDER BY line LIMIT $3"
        ),
        &[Param::int(job_id), Param::int(after), Param::int(limit)],
    )?;
    rows_to(rows, bulk_item_from)
}

pub(crate) fn bulk_set_item(
    sql: &mut dyn Sql,
    job_id: i64,
    line: u64,
    status: BulkItemStatus,
    outcome: Option<&str>,
    now: UnixMillis,
) -> Result<()> {
    let n = sql.exec(
        "UPDATE bulk_items SET status = $1, outcome = $2, updated_ms = $3, claimed_by = NULL, \
         claimed_until_ms = 0 WHERE job_id = $4 AND line = $5",
        &[
            Param::text(status.as_str()),
            Param::Text(outcome.map(str::to_owned)),
            Param::millis(now),
            Param::int(job_id),
            Param::int(ver(line, "line")?),
        ],
    )?;
    if n == 0 {
        return Err(StoreError::NotFound {
            what: format!("bulk item {job_id}:{line}"),
        });
    }
    Ok(())
}

pub(crate) fn bulk_counts(sql: &mut dyn Sql, job_id: i64) -> Result<BulkCounts> {
    let rows = sql.query(
        "SELECT status, COUNT(*) FROM bulk_items WHERE job_id = $1 GROUP BY status",
        &[Param::int(job_id)],
    )?;
    let mut c = BulkCounts::default();
    for r in &rows {
        let status = r.text(0, "bulk_items.status")?;
        let n = r.uint(1, "count")?;
        match BulkItemStatus::parse(&status) {
            Some(BulkItemStatus::Pending) => c.pending = n,
            Some(BulkItemStatus::Running) => c.running = n,
            Some(BulkItemStatus::Done) => c.done = n,
            Some(BulkItemStatus::Failed) => c.failed = n,
            None => {
                return Err(StoreError::Corrupt {
                    what: format!("bulk_items.status: unknown {status:?}"),
                })
            }
        }
    }
    Ok(c)
}

fn lease_end(now: UnixMillis, lease_ms: u64) -> Param {
    Param::millis(now.saturating_add(lease_ms))
}

fn claim_lost(fence: &BulkFence) -> StoreError {
    StoreError::ClaimLost {
        job_id: fence.job_id,
        line: fence.line,
        owner: fence.owner.clone(),
        token: fence.token,
    }
}

#[allow(clippy::too_many_arguments)] // the row, what the caller read, who and how long
pub(crate) fn bulk_claim_item(
    sql: &mut dyn Sql,
    job_id: i64,
    line: u64,
    seen_token: u64,
    seen_status: BulkItemStatus,
    owner: &str,
    now: UnixMillis,
    lease_ms: u64,
) -> Result<Option<BulkClaim>> {
    if owner.is_empty() {
        return Err(StoreError::Invalid {
            field: "owner",
            reason: "a claim needs a runner name".into(),
        });
    }
    if seen_status == BulkItemStatus::Done {
        return Ok(None);
    }
    // Token and status as read: nobody claimed or finished the row since (a claim
    // raises the token, a finish changes the status), so the status replaced is the one
    // seen. The UPDATE locks the row on PostgreSQL; SQLite's write transaction is
    // exclusive.
    let n = sql.exec(
        "UPDATE bulk_items SET status = $1, claimed_by = $2, claim_token = claim_token + 1, \
         claimed_until_ms = $3, updated_ms = $4 WHERE job_id = $5 AND line = $6 \
         AND claim_token = $7 AND status = $8 AND claimed_until_ms <= $4",
        &[
            Param::text(BulkItemStatus::Running.as_str()),
            Param::text(owner),
            lease_end(now, lease_ms),
            Param::millis(now),
            Param::int(job_id),
            Param::int(ver(line, "line")?),
            Param::int(ver(seen_token, "seen_token")?),
            Param::text(seen_status.as_str()),
        ],
    )?;
    if n == 0 {
        return Ok(None);
    }
    Ok(Some(BulkClaim {
        fence: BulkFence {
            job_id,
            line,
            owner: owner.to_owned(),
            token: seen_token + 1,
        },
        previous: seen_status,
    }))
}

/// Checks that `fence` is still held, locking the row (so a competing claim waits for
/// this transaction) in the caller's transaction.
pub(crate) fn bulk_check_fence(sql: &mut dyn Sql, fence: &BulkFence) -> Result<()> {
    let n = sql.exec(
        "UPDATE bulk_items SET claim_token = claim_token WHERE job_id = $1 AND line = $2 \
         AND claimed_by = $3 AND claim_token = $4",
        &[
            Param::int(fence.job_id),
            Param::int(ver(fence.line, "line")?),
            Param::text(&fence.owner),
            Param::int(ver(fence.token, "token")?),
        ],
    )?;
    if n == 0 {
        return Err(claim_lost(fence));
    }
    Ok(())
}

pub(crate) fn bulk_renew_claim(
    sql: &mut dyn Sql,
    fence: &BulkFence,
    now: UnixMillis,
    lease_ms: u64,
) -> Result<()> {
    let n = sql.exec(
        "UPDATE bulk_items SET claimed_until_ms = $1 WHERE job_id = $2 AND line = $3 \
         AND claimed_by = $4 AND claim_token = $5 AND status = $6",
        &[
            lease_end(now, lease_ms),
            Param::int(fence.job_id),
            Param::int(ver(fence.line, "line")?),
            Param::text(&fence.owner),
            Param::int(ver(fence.token, "token")?),
            Param::text(BulkItemStatus::Running.as_str()),
        ],
    )?;
    if n == 0 {
        return Err(claim_lost(fence));
    }
    Ok(())
}

pub(crate) fn bulk_finish_item(
    sql: &mut dyn Sql,
    fence: &BulkFence,
    status: BulkItemStatus,
    outcome: Option<&str>,
    now: UnixMillis,
) -> Result<()> {
    let n = sql.exec(
        "UPDATE bulk_items SET status = $1, outcome = $2, updated_ms = $3, claimed_until_ms = 0 \
         WHERE job_id = $4 AND line = $5 AND claimed_by = $6 AND claim_token = $7",
        &[
            Param::text(status.as_str()),
            Param::Text(outcome.map(str::to_owned)),
            Param::millis(now),
            Param::int(fence.job_id),
            Param::int(ver(fence.line, "line")?),
            Param::text(&fence.owner),
            Param::int(ver(fence.token, "token")?),
        ],
    )?;
    if n == 0 {
        return Err(claim_lost(fence));
    }
    Ok(())
}
