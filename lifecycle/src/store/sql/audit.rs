//! The audit log: appends chained by hash under a MAC, queries, and the chain check.

use super::*;

/// The fields of an audit record its chain hash covers (all of them but the id, which
/// the store assigns on insert; the order is bound by the previous record's hash).
fn audit_fields(a: &NewAuditRecord) -> [Field<'_>; 9] {
    [
        Field::Text(&a.actor),
        Field::Uint(a.time_ms),
        Field::Text(&a.action),
        Field::OptText(a.key_id.as_deref()),
        Field::OptText(a.user_id.as_deref()),
        Field::OptText(a.template_id.as_deref()),
        Field::Text(&a.outcome),
        Field::OptText(a.idp_request_id.as_deref()),
        Field::OptText(a.detail.as_deref()),
    ]
}

fn hash_of(row: &Row, field: &str) -> Result<Option<[u8; 32]>> {
    match opt_bytes(row, 0, field)? {
        None => Ok(None),
        Some(h) => h
            .as_slice()
            .try_into()
            .map(Some)
            .map_err(|_| StoreError::Corrupt {
                what: format!("{field}: {} bytes, expected 32", h.len()),
            }),
    }
}

/// Appends one record chained to the last one. The audit lock (PostgreSQL) or the
/// immediate write transaction (SQLite) is held until commit, so concurrent appends
/// serialise and never fork the chain. Without a row key the record is chained but
/// carries no MAC (and [`verify_audit`] reports it).
pub(super) fn append_audit(
    sql: &mut dyn Sql,
    k: Option<&RowKey>,
    a: &NewAuditRecord,
) -> Result<i64> {
    sql.lock_audit()?;
    let last = sql.query("SELECT hash FROM audit ORDER BY id DESC LIMIT 1", &[])?;
    let prev = match last.first() {
        Some(r) => hash_of(r, "audit.hash")?.unwrap_or(AUDIT_GENESIS),
        None => AUDIT_GENESIS,
    };
    let hash = audit_hash(&prev, &audit_fields(a));
    let mac = k.map(|k| k.seal_audit(&hash));
    let rows = sql.query(
        "INSERT INTO audit (actor, time_ms, action, key_id, user_id, template_id, outcome, \
         idp_request_id, detail, hash, mac) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
         RETURNING id",
        &[
            Param::text(&a.actor),
            Param::millis(a.time_ms),
            Param::text(&a.action),
            Param::opt_text(&a.key_id),
            Param::opt_text(&a.user_id),
            Param::opt_text(&a.template_id),
            Param::text(&a.outcome),
            Param::opt_text(&a.idp_request_id),
            Param::opt_text(&a.detail),
            Param::blob(&hash),
            Param::Blob(mac),
        ],
    )?;
    first(rows, |r| r.int(0, "audit.id"))?.ok_or_else(|| StoreError::Corrupt {
        what: "audit: insert returned no id".into(),
    })
}

pub(crate) fn query_audit(sql: &mut dyn Sql, q: &AuditQuery) -> Result<Vec<AuditRecord>> {
    let limit = q.limit.map_or(i64::MAX, i64::from);
    let rows = sql.query(
        &format!(
            "SELECT {AUDIT_COLS} FROM audit \
             WHERE (CAST($1 AS TEXT) IS NULL OR key_id = $1) \
             AND (CAST($2 AS TEXT) IS NULL OR user_id = $2) \
             AND (CAST($3 AS BIGINT) IS NULL OR time_ms >= $3) \
             AND (CAST($4 AS BIGINT) IS NULL OR time_ms < $4) \
             ORDER BY id LIMIT $5"
        ),
        &[
            Param::opt_text(&q.key_id),
            Param::opt_text(&q.user_id),
            Param::Int(q.from_ms.map(|t| i64::try_from(t).unwrap_or(i64::MAX))),
            Param::Int(q.until_ms.map(|t| i64::try_from(t).unwrap_or(i64::MAX))),
            Param::int(limit),
        ],
    )?;
    rows_to(rows, audit_from)
}

/// How many records [`verify_audit`] reads per query.
const VERIFY_PAGE: i64 = 5_000;

/// Walks the log in id order: a prefix of unchained records (from before schema 6) is
/// counted; from the first chained record on, every record must carry the hash of its
/// fields chained to the previous record's, and a MAC of that hash under `k`.
pub(crate) fn verify_audit(sql: &mut dyn Sql, k: &RowKey) -> Result<AuditVerification> {
    let mut out = AuditVerification::default();
    let mut prev = AUDIT_GENESIS;
    let mut chained = false;
    let mut after = i64::MIN;
    loop {
        let rows = sql.query(
            &format!("SELECT {AUDIT_COLS} FROM audit WHERE id > $1 ORDER BY id LIMIT $2"),
            &[Param::int(after), Param::int(VERIFY_PAGE)],
        )?;
        if rows.is_empty() {
            return Ok(out);
        }
        for row in &rows {
            let rec = audit_from(row)?;
            after = rec.id;
            out.records += 1;
            let bad = |reason: &str| {
                Some(AuditBreak {
                    id: rec.id,
                    reason: reason.to_owned(),
                })
            };
            let hash = match opt_bytes(row, 10, "audit.hash")? {
                None if !chained => {
                    out.unchained += 1;
                    continue;
                }
                None => {
                    out.first_bad = bad("no chain hash after the chain started");
                    return Ok(out);
                }
                Some(h) => match <[u8; 32]>::try_from(h.as_slice()) {
                    Ok(h) => h,
                    Err(_) => {
                        out.first_bad = bad("malformed chain hash");
                        return Ok(out);
                    }
                },
            };
            chained = true;
            if hash != audit_hash(&prev, &audit_fields(&rec.event)) {
                out.first_bad = bad(
                    "hash mismatch: the record was changed, or a record before it was \
                     removed or inserted",
                );
                return Ok(out);
            }
            let mac = opt_bytes(row, 11, "audit.mac")?;
            if !k.check_audit(&hash, mac.as_deref()) {
                out.first_bad = bad(if mac.is_none() {
                    "no MAC (appended without the host key)"
                } else {
                    "MAC mismatch: the chain was rewritten or another host key wrote it"
                });
                return Ok(out);
            }
            prev = hash;
        }
    }
}
