//! Users, keys, passkeys and pending registrations.

use super::*;

pub(crate) fn upsert_user(sql: &mut dyn Sql, u: &UserRecord) -> Result<()> {
    sql.exec(
        "INSERT INTO users (user_id, upn, display_name, idp_user_id) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (user_id) DO UPDATE SET upn = excluded.upn, \
         display_name = excluded.display_name, idp_user_id = excluded.idp_user_id",
        &[
            Param::text(&u.user_id),
            Param::text(&u.upn),
            Param::text(&u.display_name),
            Param::opt_text(&u.idp_user_id),
        ],
    )?;
    Ok(())
}

pub(crate) fn get_user(sql: &mut dyn Sql, user_id: &str) -> Result<Option<UserRecord>> {
    let rows = sql.query(
        "SELECT user_id, upn, display_name, idp_user_id FROM users WHERE user_id = $1",
        &[Param::text(user_id)],
    )?;
    first(rows, |r| {
        Ok(UserRecord {
            user_id: r.text(0, "users.user_id")?,
            upn: r.text(1, "users.upn")?,
            display_name: r.text(2, "users.display_name")?,
            idp_user_id: r.opt_text(3, "users.idp_user_id")?,
        })
    })
}

pub(crate) fn create_key(sql: &mut dyn Sql, k: &NewKey, now: UnixMillis) -> Result<KeyRecord> {
    if k.key_id.is_empty() {
        return Err(StoreError::Invalid {
            field: "key_id",
            reason: "empty".into(),
        });
    }
    let rows = sql.query(
        &format!(
            "INSERT INTO keys (key_id, aaguid, serial, state, user_id, template_id, \
             needs_reissue, version, created_ms, updated_ms) \
             VALUES ($1, $2, $3, $4, NULL, NULL, 0, 1, $5, $5) RETURNING {KEY_COLS}"
        ),
        &[
            Param::text(&k.key_id),
            Param::blob(&k.aaguid),
            Param::text(&k.serial),
            Param::text(CredentialState::Blank.as_str()),
            Param::millis(now),
        ],
    )?;
    first(rows, key_from)?.ok_or_else(|| StoreError::Corrupt {
        what: "keys: insert returned no row".into(),
    })
}

pub(crate) fn get_key(sql: &mut dyn Sql, key_id: &str) -> Result<Option<KeyRecord>> {
    let rows = sql.query(
        &format!("SELECT {KEY_COLS} FROM keys WHERE key_id = $1"),
        &[Param::text(key_id)],
    )?;
    first(rows, key_from)
}

pub(super) fn key_cond(q: &KeyQuery) -> (&'static str, Vec<Param>) {
    match q {
        KeyQuery::ByUser(u) => ("user_id = $1", vec![Param::text(u)]),
        KeyQuery::ByState(s) => ("state = $1", vec![Param::text(s.as_str())]),
        KeyQuery::BySerial(s) => ("serial = $1", vec![Param::text(s)]),
        KeyQuery::ByUpn(u) => (
            "user_id IN (SELECT user_id FROM users WHERE upn = $1)",
            vec![Param::text(u)],
        ),
        KeyQuery::ByIdentity(i) => ("identity = $1", vec![Param::text(i)]),
        KeyQuery::ByAaguidSerial(a, s) => (
            "aaguid = $1 AND serial = $2",
            vec![Param::blob(a), Param::text(s)],
        ),
        KeyQuery::All => ("1 = 1", vec![]),
    }
}

pub(crate) fn find_keys(sql: &mut dyn Sql, q: &KeyQuery) -> Result<Vec<KeyRecord>> {
    let (cond, params) = key_cond(q);
    let rows = sql.query(
        &format!("SELECT {KEY_COLS} FROM keys WHERE {cond} ORDER BY key_id"),
        &params,
    )?;
    rows_to(rows, key_from)
}

/// Largest page the paged queries return.
pub(crate) const MAX_PAGE: u32 = 10_000;

pub(super) fn page_limit(limit: u32) -> Result<i64> {
    if limit == 0 || limit > MAX_PAGE {
        return Err(StoreError::Invalid {
            field: "limit",
            reason: format!("{limit} is not between 1 and {MAX_PAGE}"),
        });
    }
    Ok(i64::from(limit))
}

pub(crate) fn find_keys_page(
    sql: &mut dyn Sql,
    q: &KeyQuery,
    after: Option<&str>,
    limit: u32,
) -> Result<Vec<KeyRecord>> {
    let limit = page_limit(limit)?;
    let (cond, mut params) = key_cond(q);
    let n = params.len();
    let after_cond = match after {
        Some(a) => {
            params.push(Param::text(a));
            format!(" AND key_id > ${}", n + 1)
        }
        None => String::new(),
    };
    params.push(Param::int(limit));
    let rows = sql.query(
        &format!(
            "SELECT {KEY_COLS} FROM keys WHERE {cond}{after_cond} ORDER BY key_id LIMIT ${}",
            params.len()
        ),
        &params,
    )?;
    rows_to(rows, key_from)
}

pub(super) fn apply_transition(
    sql: &mut dyn Sql,
    tr: &Transition,
    now: UnixMillis,
) -> Result<KeyRecord> {
    let current = get_key(sql, &tr.key_id)?.ok_or_else(|| StoreError::NotFound {
        what: format!("key {}", tr.key_id),
    })?;
    let conflict = |found: &KeyRecord| StoreError::Conflict {
        key_id: tr.key_id.clone(),
        expected: tr.expected_state,
        expected_version: tr.expected_version,
        found: found.state,
        found_version: found.version,
    };
    if current.state != tr.expected_state || current.version != tr.expected_version {
        return Err(conflict(&current));
    }
    let next_version = tr
        .expected_version
        .checked_add(1)
        .ok_or_else(|| StoreError::Invalid {
            field: "version",
            reason: "overflow".into(),
        })?;
    let next = KeyRecord {
        state: tr.new_state,
        user_id: tr.user_id.apply(current.user_id.clone()),
        template_id: tr.template_id.apply(current.template_id.clone()),
        needs_reissue: tr.needs_reissue.unwrap_or(current.needs_reissue),
        version: next_version,
        updated_ms: now,
        identity: match &tr.identity {
            Some(i) => i.identity.clone(),
            None => current.identity.clone(),
        },
        serial_source: match &tr.identity {
            Some(i) => i.serial_source.clone(),
            None => current.serial_source.clone(),
        },
        ..current
    };
    // The WHERE clause is the compare-and-set: a concurrent writer that committed first
    // changed the version, so this updates nothing.
    let n = sql.exec(
        "UPDATE keys SET state = $1, user_id = $2, template_id = $3, needs_reissue = $4, \
         version = $5, updated_ms = $6 WHERE key_id = $7 AND state = $8 AND version = $9",
        &[
            Param::text(next.state.as_str()),
            Param::opt_text(&next.user_id),
            Param::opt_text(&next.template_id),
            Param::int(i64::from(next.needs_reissue)),
            Param::int(ver(next.version, "version")?),
            Param::millis(now),
            Param::text(&tr.key_id),
            Param::text(tr.expected_state.as_str()),
            Param::int(ver(tr.expected_version, "expected_version")?),
        ],
    )?;
    if n != 1 {
        let found = get_key(sql, &tr.key_id)?.ok_or_else(|| StoreError::NotFound {
            what: format!("key {}", tr.key_id),
        })?;
        return Err(conflict(&found));
    }
    apply_reissue_reason(sql, tr)?;
    if tr.identity.is_some() {
        sql.exec(
            "UPDATE keys SET identity = $1, serial_source = $2 WHERE key_id = $3",
            &[
                Param::opt_text(&next.identity),
                Param::opt_text(&next.serial_source),
                Param::text(&tr.key_id),
            ],
        )?;
    }
    Ok(next)
}

pub(super) fn add_passkey(sql: &mut dyn Sql, k: Option<&RowKey>, p: &PasskeyRecord) -> Result<()> {
    sql.exec(
        "INSERT INTO passkeys (key_id, passkey_template, credential_id, public_key, idp_method_id, state, \
         created_ms, updated_ms, mac) VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8)",
        &[
            Param::text(&p.key_id),
            Param::text(&p.passkey_template),
            Param::blob(&p.credential_id),
            Param::blob(&p.public_key),
            Param::opt_text(&p.idp_method_id),
            Param::text(p.state.as_str()),
            Param::millis(p.created_ms),
            Param::Blob(k.map(|k| passkey_mac(k, p))),
        ],
    )?;
    Ok(())
}

pub(super) fn update_passkey(
    sql: &mut dyn Sql,
    k: Option<&RowKey>,
    p: &PasskeyRecord,
    now: UnixMillis,
) -> Result<()> {
    let n = sql.exec(
        "UPDATE passkeys SET idp_method_id = $1, state = $2, updated_ms = $3, mac = $4 \
         WHERE key_id = $5 AND passkey_template = $6 AND credential_id = $7",
        &[
            Param::opt_text(&p.idp_method_id),
            Param::text(p.state.as_str()),
            Param::millis(now),
            Param::Blob(k.map(|k| passkey_mac(k, p))),
            Param::text(&p.key_id),
            Param::text(&p.passkey_template),
            Param::blob(&p.credential_id),
        ],
    )?;
    if n == 0 {
        return Err(StoreError::NotFound {
            what: format!("passkey of key {} at {}", p.key_id, p.passkey_template),
        });
    }
    Ok(())
}

pub(crate) fn passkeys_by_credential(
    sql: &mut dyn Sql,
    k: Option<&RowKey>,
    credential_id: &[u8],
) -> Result<Vec<PasskeyRecord>> {
    let rows = sql.query(
        &format!(
            "SELECT {PASSKEY_COLS} FROM passkeys WHERE credential_id = $1 \
             ORDER BY key_id, passkey_template"
        ),
        &[Param::blob(credential_id)],
    )?;
    passkeys_checked(rows, k)
}

pub(crate) fn list_passkeys(
    sql: &mut dyn Sql,
    k: Option<&RowKey>,
    key_id: &str,
) -> Result<Vec<PasskeyRecord>> {
    let rows = sql.query(
        &format!(
            "SELECT {PASSKEY_COLS} FROM passkeys WHERE key_id = $1 \
             ORDER BY created_ms, passkey_template, credential_id"
        ),
        &[Param::text(key_id)],
    )?;
    passkeys_checked(rows, k)
}

pub(super) fn put_pending(
    sql: &mut dyn Sql,
    k: Option<&RowKey>,
    p: &PendingRegistration,
) -> Result<()> {
    // The key's version as this unit of work leaves it (after its transition): bound into
    // the MAC, so a row cannot be carried over from another issuance unnoticed.
    let key_version = get_key(sql, &p.key_id)?.map_or(0, |key| key.version);
    sql.exec(
        "INSERT INTO pending_registrations (key_id, passkey_template, user_id, attestation_object, \
         client_data_json, challenge_expires_ms, created_ms, mac, key_version, display_name) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
         ON CONFLICT (key_id, passkey_template) DO UPDATE SET user_id = excluded.user_id, \
         attestation_object = excluded.attestation_object, \
         client_data_json = excluded.client_data_json, \
         challenge_expires_ms = excluded.challenge_expires_ms, created_ms = excluded.created_ms, \
         mac = excluded.mac, key_version = excluded.key_version, \
         display_name = excluded.display_name",
        &[
            Param::text(&p.key_id),
            Param::text(&p.passkey_template),
            Param::text(&p.user_id),
            Param::blob(&p.attestation_object),
            Param::blob(&p.client_data_json),
            Param::millis(p.challenge_expires_ms),
            Param::millis(p.created_ms),
            Param::Blob(k.map(|k| pending_mac(k, p, key_version))),
            Param::int(ver(key_version, "key_version")?),
            Param::opt_text(&p.display_name),
        ],
    )?;
    Ok(())
}

pub(crate) fn take_pending(
    sql: &mut dyn Sql,
    k: Option<&RowKey>,
    key_id: &str,
    passkey_template: &str,
) -> Result<Option<PendingRegistration>> {
    let rows = sql.query(
        &format!(
            "DELETE FROM pending_registrations WHERE key_id = $1 AND passkey_template = $2 \
             RETURNING {PENDING_COLS}"
        ),
        &[Param::text(key_id), Param::text(passkey_template)],
    )?;
    Ok(pending_checked(rows, k)?.into_iter().next())
}

pub(crate) fn pending_for_key(
    sql: &mut dyn Sql,
    k: Option<&RowKey>,
    key_id: &str,
) -> Result<Vec<PendingRegistration>> {
    let rows = sql.query(
        &format!("SELECT {PENDING_COLS} FROM pending_registrations WHERE key_id = $1 ORDER BY passkey_template"),
        &[Param::text(key_id)],
    )?;
    pending_checked(rows, k)
}

pub(crate) fn pending_expiring_before(
    sql: &mut dyn Sql,
    k: Option<&RowKey>,
    before: UnixMillis,
) -> Result<Vec<PendingRegistration>> {
    let rows = sql.query(
        &format!(
            "SELECT {PENDING_COLS} FROM pending_registrations WHERE challenge_expires_ms < $1 \
             ORDER BY challenge_expires_ms, key_id, passkey_template"
        ),
        &[Param::millis(before)],
    )?;
    pending_checked(rows, k)
}

pub(crate) fn pending_expiring_page(
    sql: &mut dyn Sql,
    k: Option<&RowKey>,
    before: UnixMillis,
    after: Option<PendingPosition<'_>>,
    limit: u32,
) -> Result<Vec<PendingRegistration>> {
    let limit = page_limit(limit)?;
    let rows = match after {
        None => sql.query(
            &format!(
                "SELECT {PENDING_COLS} FROM pending_registrations WHERE challenge_expires_ms < $1 \
                 ORDER BY challenge_expires_ms, key_id, passkey_template LIMIT $2"
            ),
            &[Param::millis(before), Param::int(limit)],
        )?,
        Some(p) => sql.query(
            &format!(
                "SELECT {PENDING_COLS} FROM pending_registrations WHERE challenge_expires_ms < $1 \
                 AND (challenge_expires_ms > $2 OR (challenge_expires_ms = $2 AND \
                 (key_id > $3 OR (key_id = $3 AND passkey_template > $4)))) \
                 ORDER BY challenge_expires_ms, key_id, passkey_template LIMIT $5"
            ),
            &[
                Param::millis(before),
                Param::millis(p.challenge_expires_ms),
                Param::text(p.key_id),
                Param::text(p.passkey_template),
                Param::int(limit),
            ],
        )?,
    };
    pending_checked(rows, k)
}
