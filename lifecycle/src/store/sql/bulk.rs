//! Bulk jobs and their items.

use super::*;

pub(super) const BULK_JOB_COLS: &str = "job_id, kind, source_hash, actor, total, created_ms";

pub(super) fn bulk_job_from(row: &Row) -> Result<BulkJob> {
    Ok(BulkJob {
        job_id: row.int(0, "bulk_jobs.job_id")?,
        kind: row.text(1, "bulk_jobs.kind")?,
        source_hash: row.text(2, "bulk_jobs.source_hash")?,
        actor: row.text(3, "bulk_jobs.actor")?,
        total: row.uint(4, "bulk_jobs.total")?,
        created_ms: row.uint(5, "bulk_jobs.created_ms")?,
    })
}

pub(super) const BULK_ITEM_COLS: &str = "job_id, line, input, status, outcome, updated_ms";

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

pub(crate) fn bulk_job_by_source(
    sql: &mut dyn Sql,
    kind: &str,
    hash: &str,
) -> Result<Option<BulkJob>> {
    let rows = sql.query(
        &format!("SELECT {BULK_JOB_COLS} FROM bulk_jobs WHERE kind = $1 AND source_hash = $2"),
        &[Param::text(kind), Param::text(hash)],
    )?;
    first(rows, bulk_job_from)
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
        "UPDATE bulk_items SET status = $1, outcome = $2, updated_ms = $3 \
         WHERE job_id = $4 AND line = $5",
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
