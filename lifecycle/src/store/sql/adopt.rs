//! Adopting the rows written before rows were authenticated (schema < 6): an explicit,
//! once-per-database operator step that MACs them as they are, recorded in the audit
//! chain.

use super::*;

/// The audit action recording an adoption (also how a second one is refused).
pub(crate) const ADOPT_ACTION: &str = "adopt-unauthenticated-rows";

/// MACs every pending registration and passkey without a MAC, and every *pending*
/// journal entry without one (closed entries are never replayed; one reopened by hand
/// stays refused), then appends the audit record of the adoption. Refused once an
/// adoption is recorded: from then on a row without a MAC can only come from outside
/// keysmith.
pub(crate) fn adopt_unauthenticated_rows(
    sql: &mut dyn Sql,
    k: &RowKey,
    actor: &str,
    now: UnixMillis,
) -> Result<AdoptedRows> {
    let done = sql.query(
        "SELECT id FROM audit WHERE action = $1 ORDER BY id LIMIT 1",
        &[Param::text(ADOPT_ACTION)],
    )?;
    if let Some(r) = done.first() {
        return Err(StoreError::Duplicate {
            what: format!(
                "adoption of unauthenticated rows (done before, audit record #{}): it runs once",
                r.int(0, "audit.id")?
            ),
        });
    }
    let mut out = AdoptedRows::default();
    let rows = sql.query(
        &format!("SELECT {PENDING_COLS} FROM pending_registrations WHERE mac IS NULL"),
        &[],
    )?;
    for r in &rows {
        let p = pending_from(r)?;
        let key_version = get_key(sql, &p.key_id)?.map_or(0, |key| key.version);
        sql.exec(
            "UPDATE pending_registrations SET mac = $1, key_version = $2 \
             WHERE key_id = $3 AND passkey_template = $4",
            &[
                Param::Blob(Some(pending_mac(k, &p, key_version))),
                Param::int(ver(key_version, "key_version")?),
                Param::text(&p.key_id),
                Param::text(&p.passkey_template),
            ],
        )?;
        out.pending += 1;
    }
    let rows = sql.query(
        &format!("SELECT {PASSKEY_COLS} FROM passkeys WHERE mac IS NULL"),
        &[],
    )?;
    for r in &rows {
        let p = passkey_from(r)?;
        sql.exec(
            "UPDATE passkeys SET mac = $1 \
             WHERE key_id = $2 AND passkey_template = $3 AND credential_id = $4",
            &[
                Param::Blob(Some(passkey_mac(k, &p))),
                Param::text(&p.key_id),
                Param::text(&p.passkey_template),
                Param::blob(&p.credential_id),
            ],
        )?;
        out.passkeys += 1;
    }
    let rows = sql.query(
        &format!("SELECT {JOURNAL_COLS} FROM journal WHERE mac IS NULL AND status = $1"),
        &[Param::text(JournalStatus::Pending.as_str())],
    )?;
    for r in &rows {
        let e = journal_from(r)?;
        sql.exec(
            "UPDATE journal SET mac = $1 WHERE id = $2",
            &[Param::Blob(Some(journal_mac(k, &e))), Param::int(e.id)],
        )?;
        out.journal += 1;
    }
    out.agents = adopt_agents(sql, k)?;
    out.enrolment_codes = adopt_codes(sql, k)?;
    out.audit_id = append_audit(
        sql,
        Some(k),
        &NewAuditRecord {
            actor: actor.to_owned(),
            time_ms: now,
            action: ADOPT_ACTION.into(),
            key_id: None,
            user_id: None,
            template_id: None,
            outcome: "success".into(),
            idp_request_id: None,
            detail: Some(format!(
                "authenticated as they were: {} pending registration(s), {} passkey(s), \
                 {} pending journal entr(y/ies), {} agent(s), {} enrolment code(s)",
                out.pending, out.passkeys, out.journal, out.agents, out.enrolment_codes
            )),
        },
    )?;
    Ok(out)
}
