//! The IdP side-effect journal, transport PINs and the unit of work.

use super::*;

pub(crate) fn journal_append(
    sql: &mut dyn Sql,
    k: Option<&RowKey>,
    e: &NewJournalEntry,
    now: UnixMillis,
) -> Result<JournalEntry> {
    let rows = sql.query(
        &format!(
            "INSERT INTO journal (key_id, idp, operation, payload, status, attempts, result, \
             created_ms, updated_ms) VALUES ($1, $2, $3, $4, $5, 0, NULL, $6, $6) \
             RETURNING {JOURNAL_COLS}"
        ),
        &[
            Param::text(&e.key_id),
            Param::text(&e.idp),
            Param::text(e.operation.as_str()),
            Param::blob(&e.payload),
            Param::text(JournalStatus::Pending.as_str()),
            Param::millis(now),
        ],
    )?;
    let entry = first(rows, journal_from)?.ok_or_else(|| StoreError::Corrupt {
        what: "journal: insert returned no row".into(),
    })?;
    if let Some(k) = k {
        // The MAC binds the id, which the insert assigned.
        let mac = journal_mac(k, &entry);
        sql.exec(
            "UPDATE journal SET mac = $1 WHERE id = $2",
            &[Param::Blob(Some(mac)), Param::int(entry.id)],
        )?;
    }
    Ok(entry)
}

pub(crate) fn journal_get(sql: &mut dyn Sql, id: i64) -> Result<Option<JournalEntry>> {
    let rows = sql.query(
        &format!("SELECT {JOURNAL_COLS} FROM journal WHERE id = $1"),
        &[Param::int(id)],
    )?;
    first(rows, journal_from)
}

pub(super) fn not_pending(sql: &mut dyn Sql, id: i64) -> StoreError {
    match journal_get(sql, id) {
        Ok(Some(e)) if e.status != JournalStatus::Pending => StoreError::JournalClosed {
            id,
            status: e.status,
        },
        Ok(Some(e)) => StoreError::JournalBusy {
            id,
            claimed_by: e.claimed_by.unwrap_or_default(),
            until_ms: e.claimed_until_ms,
        },
        Ok(None) => StoreError::NotFound {
            what: format!("journal entry {id}"),
        },
        Err(e) => e,
    }
}

pub(super) fn journal_close(sql: &mut dyn Sql, c: &JournalClose, now: UnixMillis) -> Result<()> {
    let JournalClose {
        id,
        status,
        result,
        fence,
    } = c;
    let (id, status) = (*id, *status);
    if status == JournalStatus::Pending {
        return Err(StoreError::Invalid {
            field: "close_journal.status",
            reason: "an entry is closed as done or failed".into(),
        });
    }
    // Fenced: only while the closer's claim (station and attempt count) still holds.
    let n = sql.exec(
        "UPDATE journal SET status = $1, result = $2, updated_ms = $3 \
         WHERE id = $4 AND status = $5 \
         AND (CAST($6 AS TEXT) IS NULL OR (claimed_by = $6 AND attempts = $7))",
        &[
            Param::text(status.as_str()),
            Param::opt_text(result),
            Param::millis(now),
            Param::int(id),
            Param::text(JournalStatus::Pending.as_str()),
            Param::opt_text(&fence.as_ref().map(|f| f.station.clone())),
            Param::int(fence.as_ref().map_or(0, |f| i64::from(f.token))),
        ],
    )?;
    if n == 0 {
        let Some(e) = journal_get(sql, id)? else {
            return Err(StoreError::NotFound {
                what: format!("journal entry {id}"),
            });
        };
        if let Some(f) = fence {
            let holds =
                e.claimed_by.as_deref() == Some(f.station.as_str()) && e.attempts == f.token;
            if !holds {
                return Err(StoreError::JournalClaimLost {
                    id,
                    station: f.station.clone(),
                    claimed_by: e.claimed_by.unwrap_or_default(),
                });
            }
        }
        return match e.status {
            // Closing again with the same status is idempotent.
            found if found == status => Ok(()),
            JournalStatus::Pending => Err(not_pending(sql, id)),
            found => Err(StoreError::JournalClosed { id, status: found }),
        };
    }
    Ok(())
}

pub(crate) fn journal_renew(
    sql: &mut dyn Sql,
    id: i64,
    fence: &JournalFence,
    now: UnixMillis,
    lease_ms: i64,
) -> Result<JournalEntry> {
    let until = u64::try_from(lease_ms)
        .ok()
        .and_then(|lease| now.checked_add(lease))
        .ok_or_else(|| StoreError::Invalid {
            field: "lease_ms",
            reason: format!("{lease_ms} is negative or overflows"),
        })?;
    let rows = sql.query(
        &format!(
            "UPDATE journal SET claimed_until_ms = $1, updated_ms = $2 \
             WHERE id = $3 AND status = $4 AND claimed_by = $5 AND attempts = $6 \
             RETURNING {JOURNAL_COLS}"
        ),
        &[
            Param::millis(until),
            Param::millis(now),
            Param::int(id),
            Param::text(JournalStatus::Pending.as_str()),
            Param::text(&fence.station),
            Param::int(i64::from(fence.token)),
        ],
    )?;
    if let Some(e) = first(rows, journal_from)? {
        return Ok(e);
    }
    // Fenced first, as a close is: an entry another claim took over (and perhaps closed
    // already) is a lost claim for this one.
    match journal_get(sql, id)? {
        None => Err(StoreError::NotFound {
            what: format!("journal entry {id}"),
        }),
        Some(e)
            if e.claimed_by.as_deref() != Some(fence.station.as_str())
                || e.attempts != fence.token =>
        {
            Err(StoreError::JournalClaimLost {
                id,
                station: fence.station.clone(),
                claimed_by: e.claimed_by.unwrap_or_default(),
            })
        }
        Some(e) => Err(StoreError::JournalClosed {
            id,
            status: e.status,
        }),
    }
}

/// Claims an entry; with a row key installed, the claimed row's MAC is checked (a claim
/// precedes every IdP call, first attempt and replay alike).
pub(crate) fn journal_claim(
    sql: &mut dyn Sql,
    k: Option<&RowKey>,
    id: i64,
    station: &str,
    now: UnixMillis,
    lease_ms: i64,
) -> Result<JournalEntry> {
    if station.is_empty() {
        return Err(StoreError::Invalid {
            field: "station",
            reason: "empty".into(),
        });
    }
    let until = u64::try_from(lease_ms)
        .ok()
        .and_then(|lease| now.checked_add(lease))
        .ok_or_else(|| StoreError::Invalid {
            field: "lease_ms",
            reason: format!("{lease_ms} is negative or overflows"),
        })?;
    // Claimable when pending and the lease expired or is already ours.
    let rows = sql.query(
        &format!(
            "UPDATE journal SET attempts = attempts + 1, claimed_by = $1, claimed_until_ms = $2, \
             updated_ms = $3 WHERE id = $4 AND status = $5 \
             AND (claimed_until_ms <= $3 OR claimed_by = $1) RETURNING {JOURNAL_COLS}"
        ),
        &[
            Param::text(station),
            Param::millis(until),
            Param::millis(now),
            Param::int(id),
            Param::text(JournalStatus::Pending.as_str()),
        ],
    )?;
    match rows.first().map(|r| journal_checked(r, k)).transpose()? {
        Some(e) => Ok(e),
        None => Err(not_pending(sql, id)),
    }
}

pub(crate) fn journal_unfinished(sql: &mut dyn Sql) -> Result<Vec<JournalEntry>> {
    let rows = sql.query(
        &format!("SELECT {JOURNAL_COLS} FROM journal WHERE status = $1 ORDER BY id"),
        &[Param::text(JournalStatus::Pending.as_str())],
    )?;
    rows_to(rows, journal_from)
}

pub(crate) fn put_transport_pin(
    sql: &mut dyn Sql,
    key_id: &str,
    pin: &TransportPin,
    host: &PinKey,
    now: UnixMillis,
) -> Result<()> {
    let sealed = crypto::seal(host, key_id, pin)?;
    sql.exec(
        "INSERT INTO transport_pins (key_id, sealed, updated_ms) VALUES ($1, $2, $3) \
         ON CONFLICT (key_id) DO UPDATE SET sealed = excluded.sealed, \
         updated_ms = excluded.updated_ms",
        &[
            Param::text(key_id),
            Param::Blob(Some(sealed)),
            Param::millis(now),
        ],
    )?;
    Ok(())
}

pub(crate) fn get_transport_pin(
    sql: &mut dyn Sql,
    key_id: &str,
    host: &PinKey,
) -> Result<Option<TransportPin>> {
    let rows = sql.query(
        "SELECT sealed FROM transport_pins WHERE key_id = $1",
        &[Param::text(key_id)],
    )?;
    match rows.first() {
        None => Ok(None),
        Some(r) => crypto::open(host, key_id, &r.bytes(0, "transport_pins.sealed")?).map(Some),
    }
}

pub(crate) fn delete_transport_pin(sql: &mut dyn Sql, key_id: &str) -> Result<bool> {
    Ok(sql.exec(
        "DELETE FROM transport_pins WHERE key_id = $1",
        &[Param::text(key_id)],
    )? > 0)
}

/// Applies a unit of work inside the caller's transaction.
pub(crate) fn commit(
    sql: &mut dyn Sql,
    k: Option<&RowKey>,
    w: &UnitOfWork,
    now: UnixMillis,
) -> Result<Committed> {
    let mut out = Committed::default();
    if let Some(fence) = &w.bulk_fence {
        bulk_check_fence(sql, fence)?;
    }
    for u in &w.users {
        upsert_user(sql, u)?;
    }
    for k in &w.create_keys {
        out.created_keys.push(create_key(sql, k, now)?);
    }
    if let Some(tr) = &w.transition {
        out.key = Some(apply_transition(sql, tr, now)?);
    }
    for p in &w.add_passkeys {
        add_passkey(sql, k, p)?;
        note_passkey_added(sql, p)?;
    }
    for p in &w.update_passkeys {
        update_passkey(sql, k, p, now)?;
    }
    for p in &w.put_pending {
        put_pending(sql, k, p)?;
    }
    for p in &w.remove_pending {
        // Removal needs no check: dropping an altered row sends nothing anywhere.
        take_pending(sql, None, &p.key_id, &p.passkey_template)?;
    }
    for e in &w.journal {
        out.journal.push(journal_append(sql, k, e, now)?);
    }
    for c in &w.close_journal {
        journal_close(sql, c, now)?;
    }
    for a in &w.audit {
        out.audit_ids.push(append_audit(sql, k, a)?);
    }
    Ok(out)
}
