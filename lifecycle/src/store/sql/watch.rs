//! SQL of [`crate::store::watch::WatchStore`]: the `passkey_watch` table and the keys'
//! `reissue_reason` column (schema 11, [`super::V_PASSKEY_WATCH`]).

use super::*;
use crate::store::watch::{KeyUse, PasskeyWatch, ReissueReason};

/// Notes the user name a passkey just added carries: the UPN of its key's user as this
/// unit of work left it (issuance upserts the user before adding the passkey). A key
/// without a user record gets no name (reconciliation records a baseline later).
pub(super) fn note_passkey_added(sql: &mut dyn Sql, p: &PasskeyRecord) -> Result<()> {
    sql.exec(
        "INSERT INTO passkey_watch (key_id, passkey_template, credential_id, user_name) \
         SELECT k.key_id, $1, $2, u.upn FROM keys k LEFT JOIN users u ON u.user_id = k.user_id \
         WHERE k.key_id = $3 AND NOT EXISTS (SELECT 1 FROM passkey_watch w \
         WHERE w.key_id = $3 AND w.passkey_template = $1 AND w.credential_id = $2)",
        &[
            Param::text(&p.passkey_template),
            Param::blob(&p.credential_id),
            Param::text(&p.key_id),
        ],
    )?;
    Ok(())
}

/// Sets (`Some(true)`: the transition's reason) or clears (`Some(false)`) the reason with
/// the needs-reissue flag.
pub(super) fn apply_reissue_reason(sql: &mut dyn Sql, tr: &Transition) -> Result<()> {
    let reason = match tr.needs_reissue {
        None => return Ok(()),
        Some(false) => None,
        Some(true) => tr.reissue_reason.map(|r| r.as_str().to_owned()),
    };
    sql.exec(
        "UPDATE keys SET reissue_reason = $1 WHERE key_id = $2",
        &[Param::Text(reason), Param::text(&tr.key_id)],
    )?;
    Ok(())
}

pub(crate) fn reissue_reason(sql: &mut dyn Sql, key_id: &str) -> Result<Option<ReissueReason>> {
    let rows = sql.query(
        "SELECT reissue_reason FROM keys WHERE key_id = $1 AND needs_reissue <> 0",
        &[Param::text(key_id)],
    )?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    match row.opt_text(0, "keys.reissue_reason")? {
        None => Ok(None),
        Some(s) => ReissueReason::parse(&s)
            .map(Some)
            .ok_or_else(|| StoreError::Corrupt {
                what: format!("keys.reissue_reason: unknown {s:?}"),
            }),
    }
}

fn opt_millis(row: &Row, i: usize, field: &str) -> Result<Option<UnixMillis>> {
    match row.cell(i, field)? {
        Cell::Null => Ok(None),
        _ => row.uint(i, field).map(Some),
    }
}

pub(crate) fn passkey_watch(sql: &mut dyn Sql, key_id: &str) -> Result<Vec<PasskeyWatch>> {
    sql.query(
        "SELECT key_id, passkey_template, credential_id, user_name, last_used_ms \
         FROM passkey_watch WHERE key_id = $1 ORDER BY passkey_template, credential_id",
        &[Param::text(key_id)],
    )?
    .iter()
    .map(|row| {
        Ok(PasskeyWatch {
            key_id: row.text(0, "passkey_watch.key_id")?,
            passkey_template: row.text(1, "passkey_watch.passkey_template")?,
            credential_id: row.bytes(2, "passkey_watch.credential_id")?,
            user_name: row.opt_text(3, "passkey_watch.user_name")?,
            last_used_ms: opt_millis(row, 4, "passkey_watch.last_used_ms")?,
        })
    })
    .collect()
}

/// Makes sure the passkey has a row (for passkeys added before schema 11).
fn ensure_row(
    sql: &mut dyn Sql,
    key_id: &str,
    passkey_template: &str,
    credential_id: &[u8],
) -> Result<()> {
    sql.exec(
        "INSERT INTO passkey_watch (key_id, passkey_template, credential_id) \
         SELECT k.key_id, $1, $2 FROM keys k WHERE k.key_id = $3 AND NOT EXISTS \
         (SELECT 1 FROM passkey_watch w WHERE w.key_id = $3 AND w.passkey_template = $1 \
         AND w.credential_id = $2)",
        &[
            Param::text(passkey_template),
            Param::blob(credential_id),
            Param::text(key_id),
        ],
    )?;
    Ok(())
}

pub(crate) fn note_user_name(
    sql: &mut dyn Sql,
    key_id: &str,
    passkey_template: &str,
    credential_id: &[u8],
    user_name: &str,
) -> Result<()> {
    ensure_row(sql, key_id, passkey_template, credential_id)?;
    sql.exec(
        "UPDATE passkey_watch SET user_name = $1 WHERE key_id = $2 AND passkey_template = $3 \
         AND credential_id = $4 AND user_name IS NULL",
        &[
            Param::text(user_name),
            Param::text(key_id),
            Param::text(passkey_template),
            Param::blob(credential_id),
        ],
    )?;
    Ok(())
}

pub(crate) fn record_last_used(
    sql: &mut dyn Sql,
    key_id: &str,
    passkey_template: &str,
    credential_id: &[u8],
    last_used_ms: UnixMillis,
) -> Result<()> {
    ensure_row(sql, key_id, passkey_template, credential_id)?;
    sql.exec(
        "UPDATE passkey_watch SET last_used_ms = $1 WHERE key_id = $2 AND passkey_template = $3 \
         AND credential_id = $4 AND (last_used_ms IS NULL OR last_used_ms < $1)",
        &[
            Param::millis(last_used_ms),
            Param::text(key_id),
            Param::text(passkey_template),
            Param::blob(credential_id),
        ],
    )?;
    Ok(())
}

pub(crate) fn unused_keys(sql: &mut dyn Sql, before_ms: UnixMillis) -> Result<Vec<KeyUse>> {
    sql.query(
        "SELECT p.key_id, MAX(w.last_used_ms), MIN(p.created_ms) FROM passkeys p \
         JOIN keys k ON k.key_id = p.key_id \
         LEFT JOIN passkey_watch w ON w.key_id = p.key_id \
         AND w.passkey_template = p.passkey_template AND w.credential_id = p.credential_id \
         WHERE k.state = 'active' AND p.state = 'active' AND p.idp_method_id IS NOT NULL \
         GROUP BY p.key_id \
         HAVING COALESCE(MAX(w.last_used_ms), MIN(p.created_ms)) < $1 \
         ORDER BY p.key_id",
        &[Param::millis(before_ms)],
    )?
    .iter()
    .map(|row| {
        Ok(KeyUse {
            key_id: row.text(0, "passkeys.key_id")?,
            last_used_ms: opt_millis(row, 1, "passkey_watch.last_used_ms")?,
            made_ms: row.uint(2, "passkeys.created_ms")?,
        })
    })
    .collect()
}

/// Implements [`crate::store::watch::WatchStore`] for a backend type shaped as for
/// `impl_store!`.
macro_rules! impl_watch_store {
    ($ty:ty) => {
        impl $crate::store::watch::WatchStore for $ty {
            fn reissue_reason(
                &self,
                key_id: &str,
            ) -> $crate::store::Result<Option<$crate::store::watch::ReissueReason>> {
                self.read(|s| $crate::store::sql::reissue_reason(s, key_id))
            }
            fn passkey_watch(
                &self,
                key_id: &str,
            ) -> $crate::store::Result<Vec<$crate::store::watch::PasskeyWatch>> {
                self.read(|s| $crate::store::sql::passkey_watch(s, key_id))
            }
            fn note_user_name(
                &self,
                key_id: &str,
                passkey_template: &str,
                credential_id: &[u8],
                user_name: &str,
            ) -> $crate::store::Result<()> {
                self.tx(|s| {
                    $crate::store::sql::note_user_name(
                        s,
                        key_id,
                        passkey_template,
                        credential_id,
                        user_name,
                    )
                })
            }
            fn record_last_used(
                &self,
                key_id: &str,
                passkey_template: &str,
                credential_id: &[u8],
                last_used_ms: $crate::store::UnixMillis,
            ) -> $crate::store::Result<()> {
                self.tx(|s| {
                    $crate::store::sql::record_last_used(
                        s,
                        key_id,
                        passkey_template,
                        credential_id,
                        last_used_ms,
                    )
                })
            }
            fn unused_keys(
                &self,
                before_ms: $crate::store::UnixMillis,
            ) -> $crate::store::Result<Vec<$crate::store::watch::KeyUse>> {
                self.read(|s| $crate::store::sql::unused_keys(s, before_ms))
            }
        }
    };
}
pub(crate) use impl_watch_store;
