//! Self-service sign-ins: outstanding nonces and the ids of ID tokens already used.

use super::*;

/// Drops what expired before `now` (both tables), so they stay small.
fn purge(sql: &mut dyn Sql, now: UnixMillis) -> Result<()> {
    sql.exec(
        "DELETE FROM self_service_nonces WHERE expires_ms < $1",
        &[Param::millis(now)],
    )?;
    sql.exec(
        "DELETE FROM used_tokens WHERE expires_ms < $1",
        &[Param::millis(now)],
    )?;
    Ok(())
}

pub(crate) fn put_nonce(
    sql: &mut dyn Sql,
    nonce_hash: &str,
    expires_ms: UnixMillis,
    now: UnixMillis,
) -> Result<()> {
    if nonce_hash.is_empty() {
        return Err(StoreError::Invalid {
            field: "nonce",
            reason: "must not be empty".into(),
        });
    }
    purge(sql, now)?;
    sql.exec(
        "INSERT INTO self_service_nonces (nonce_hash, created_ms, expires_ms) VALUES ($1, $2, $3)",
        &[
            Param::text(nonce_hash),
            Param::millis(now),
            Param::millis(expires_ms),
        ],
    )?;
    Ok(())
}

pub(crate) fn take_nonce(sql: &mut dyn Sql, nonce_hash: &str, now: UnixMillis) -> Result<bool> {
    let n = sql.exec(
        "DELETE FROM self_service_nonces WHERE nonce_hash = $1 AND expires_ms >= $2",
        &[Param::text(nonce_hash), Param::millis(now)],
    )?;
    Ok(n == 1)
}

pub(crate) fn use_token_id(
    sql: &mut dyn Sql,
    issuer: &str,
    token_id: &str,
    expires_ms: UnixMillis,
    now: UnixMillis,
) -> Result<bool> {
    if token_id.is_empty() {
        return Err(StoreError::Invalid {
            field: "token id",
            reason: "must not be empty".into(),
        });
    }
    purge(sql, now)?;
    let n = sql.exec(
        "INSERT INTO used_tokens (issuer, token_id, expires_ms, used_ms) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (issuer, token_id) DO NOTHING",
        &[
            Param::text(issuer),
            Param::text(token_id),
            Param::millis(expires_ms),
            Param::millis(now),
        ],
    )?;
    Ok(n == 1)
}
