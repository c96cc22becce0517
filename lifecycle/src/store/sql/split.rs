//! The split deployment's tables: device sessions (compare-and-set on a version, MACed),
//! their message log, and work queued for stations (MACed).

use super::*;
use crate::store::split::{
    SplitDirection, SplitMessage, SplitSession, SplitSessionState, StationWork, StationWorkState,
};

const SESSION_COLS: &str = "session_id, agent_id, created_ms, expires_ms, state, session_pub, \
     server_nonce, recv_seq, recv_digest, sent_seq, reply, context, version, mac";

/// The session row's MAC fields: everything but the MAC itself (reply and context by digest).
fn session_fields(s: &SplitSession) -> [Field<'_>; 13] {
    [
        Field::Text(&s.session_id),
        Field::Text(&s.agent_id),
        Field::Uint(s.created_ms),
        Field::Uint(s.expires_ms),
        Field::Text(s.state.as_str()),
        Field::Bytes(&s.session_pub),
        Field::Bytes(&s.server_nonce),
        Field::Uint(s.recv_seq),
        Field::Bytes(&s.recv_digest),
        Field::Uint(s.sent_seq),
        Field::Digest(&s.reply),
        Field::Digest(s.context.as_bytes()),
        Field::Uint(s.version),
    ]
}

fn session_mac(k: Option<&RowKey>, s: &SplitSession) -> Param {
    Param::Blob(k.map(|k| k.seal_row("split-session", &session_fields(s))))
}

fn session_from(row: &Row, k: Option<&RowKey>) -> Result<SplitSession> {
    let state = row.text(4, "split_sessions.state")?;
    let s = SplitSession {
        session_id: row.text(0, "split_sessions.session_id")?,
        agent_id: row.text(1, "split_sessions.agent_id")?,
        created_ms: row.uint(2, "split_sessions.created_ms")?,
        expires_ms: row.uint(3, "split_sessions.expires_ms")?,
        state: SplitSessionState::parse(&state).ok_or_else(|| StoreError::Corrupt {
            what: format!("split_sessions.state: unknown state {state:?}"),
        })?,
        session_pub: row.bytes(5, "split_sessions.session_pub")?,
        server_nonce: row.bytes(6, "split_sessions.server_nonce")?,
        recv_seq: row.uint(7, "split_sessions.recv_seq")?,
        recv_digest: row.bytes(8, "split_sessions.recv_digest")?,
        sent_seq: row.uint(9, "split_sessions.sent_seq")?,
        reply: row.bytes(10, "split_sessions.reply")?,
        context: row.text(11, "split_sessions.context")?,
        version: row.uint(12, "split_sessions.version")?,
    };
    if let Some(k) = k {
        let mac = opt_bytes(row, 13, "split_sessions.mac")?;
        k.check_row(
            || format!("split session {}", s.session_id),
            mac.as_deref(),
            "split-session",
            &session_fields(&s),
        )?;
    }
    Ok(s)
}

fn session_params(s: &SplitSession, k: Option<&RowKey>) -> Result<Vec<Param>> {
    Ok(vec![
        Param::text(&s.session_id),
        Param::text(&s.agent_id),
        Param::millis(s.created_ms),
        Param::millis(s.expires_ms),
        Param::text(s.state.as_str()),
        Param::blob(&s.session_pub),
        Param::blob(&s.server_nonce),
        Param::int(ver(s.recv_seq, "recv_seq")?),
        Param::blob(&s.recv_digest),
        Param::int(ver(s.sent_seq, "sent_seq")?),
        Param::blob(&s.reply),
        Param::text(&s.context),
        Param::int(ver(s.version, "version")?),
        session_mac(k, s),
    ])
}

pub(crate) fn split_session_create(
    sql: &mut dyn Sql,
    k: Option<&RowKey>,
    s: &SplitSession,
    now: UnixMillis,
) -> Result<()> {
    let mut params = session_params(s, k)?;
    params.push(Param::millis(now));
    sql.exec(
        &format!(
            "INSERT INTO split_sessions ({SESSION_COLS}, updated_ms) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
        ),
        &params,
    )?;
    Ok(())
}

pub(crate) fn split_session_get(
    sql: &mut dyn Sql,
    k: Option<&RowKey>,
    session_id: &str,
) -> Result<Option<SplitSession>> {
    let rows = sql.query(
        &format!("SELECT {SESSION_COLS} FROM split_sessions WHERE session_id = $1"),
        &[Param::text(session_id)],
    )?;
    rows.first().map(|r| session_from(r, k)).transpose()
}

pub(crate) fn split_session_update(
    sql: &mut dyn Sql,
    k: Option<&RowKey>,
    s: &SplitSession,
    expected_version: u64,
    now: UnixMillis,
) -> Result<bool> {
    if s.version != expected_version.saturating_add(1) {
        return Err(StoreError::Invalid {
            field: "version",
            reason: "the new row must carry the expected version plus one".into(),
        });
    }
    // Session id and agent id never change: they are in the WHERE clause.
    let mut p = session_params(s, k)?;
    p.push(Param::millis(now));
    p.push(Param::int(ver(expected_version, "expected version")?));
    let n = sql.exec(
        "UPDATE split_sessions SET created_ms = $3, expires_ms = $4, state = $5, \
         session_pub = $6, server_nonce = $7, recv_seq = $8, recv_digest = $9, sent_seq = $10, \
         reply = $11, context = $12, version = $13, mac = $14, updated_ms = $15 \
         WHERE session_id = $1 AND agent_id = $2 AND version = $16",
        &p,
    )?;
    if n == 1 {
        sql.notify_session(&s.session_id)?;
    }
    Ok(n == 1)
}

pub(crate) fn split_log(sql: &mut dyn Sql, m: &SplitMessage) -> Result<()> {
    sql.exec(
        "INSERT INTO split_messages (session_id, direction, seq, bytes, at_ms) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (session_id, direction, seq) DO NOTHING",
        &[
            Param::text(&m.session_id),
            Param::text(m.direction.as_str()),
            Param::int(ver(m.seq, "seq")?),
            Param::blob(&m.bytes),
            Param::millis(m.at_ms),
        ],
    )?;
    Ok(())
}

pub(crate) fn split_messages(sql: &mut dyn Sql, session_id: &str) -> Result<Vec<SplitMessage>> {
    let rows = sql.query(
        "SELECT session_id, direction, seq, bytes, at_ms FROM split_messages \
         WHERE session_id = $1 ORDER BY at_ms, seq, direction",
        &[Param::text(session_id)],
    )?;
    rows.iter()
        .map(|r| {
            let d = r.text(1, "split_messages.direction")?;
            Ok(SplitMessage {
                session_id: r.text(0, "split_messages.session_id")?,
                direction: match d.as_str() {
                    "in" => SplitDirection::In,
                    "out" => SplitDirection::Out,
                    _ => {
                        return Err(StoreError::Corrupt {
                            what: format!("split_messages.direction: unknown {d:?}"),
                        })
                    }
                },
                seq: r.uint(2, "split_messages.seq")?,
                bytes: r.bytes(3, "split_messages.bytes")?,
                at_ms: r.uint(4, "split_messages.at_ms")?,
            })
        })
        .collect()
}

const WORK_COLS: &str =
    "work_id, agent_id, request, actor, created_ms, state, session_id, outcome, mac";

/// What a queued operation's MAC binds: who queued what for which station, when. State
/// and outcome move afterwards and are not sent anywhere.
fn work_fields(w: &StationWork) -> [Field<'_>; 5] {
    [
        Field::Text(&w.work_id),
        Field::Text(&w.agent_id),
        Field::Digest(w.request.as_bytes()),
        Field::Text(&w.actor),
        Field::Uint(w.created_ms),
    ]
}

fn work_from(row: &Row, k: Option<&RowKey>) -> Result<StationWork> {
    let state = row.text(5, "station_work.state")?;
    let w = StationWork {
        work_id: row.text(0, "station_work.work_id")?,
        agent_id: row.text(1, "station_work.agent_id")?,
        request: row.text(2, "station_work.request")?,
        actor: row.text(3, "station_work.actor")?,
        created_ms: row.uint(4, "station_work.created_ms")?,
        state: StationWorkState::parse(&state).ok_or_else(|| StoreError::Corrupt {
            what: format!("station_work.state: unknown state {state:?}"),
        })?,
        session_id: row.opt_text(6, "station_work.session_id")?,
        outcome: row.opt_text(7, "station_work.outcome")?,
    };
    if let Some(k) = k {
        let mac = opt_bytes(row, 8, "station_work.mac")?;
        k.check_row(
            || format!("station work {}", w.work_id),
            mac.as_deref(),
            "station-work",
            &work_fields(&w),
        )?;
    }
    Ok(w)
}

pub(crate) fn station_work_put(
    sql: &mut dyn Sql,
    k: Option<&RowKey>,
    w: &StationWork,
) -> Result<()> {
    let mac = k.map(|k| k.seal_row("station-work", &work_fields(w)));
    sql.exec(
        &format!("INSERT INTO station_work ({WORK_COLS}, updated_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"),
        &[
            Param::text(&w.work_id),
            Param::text(&w.agent_id),
            Param::text(&w.request),
            Param::text(&w.actor),
            Param::millis(w.created_ms),
            Param::text(w.state.as_str()),
            Param::opt_text(&w.session_id),
            Param::opt_text(&w.outcome),
            Param::Blob(mac),
            Param::millis(w.created_ms),
        ],
    )?;
    Ok(())
}

pub(crate) fn station_work_get(
    sql: &mut dyn Sql,
    k: Option<&RowKey>,
    work_id: &str,
) -> Result<Option<StationWork>> {
    let rows = sql.query(
        &format!("SELECT {WORK_COLS} FROM station_work WHERE work_id = $1"),
        &[Param::text(work_id)],
    )?;
    rows.first().map(|r| work_from(r, k)).transpose()
}

pub(crate) fn station_work_take(
    sql: &mut dyn Sql,
    k: Option<&RowKey>,
    agent_id: &str,
    session_id: &str,
    now: UnixMillis,
) -> Result<Option<StationWork>> {
    let rows = sql.query(
        &format!(
            "SELECT {WORK_COLS} FROM station_work WHERE agent_id = $1 AND state = 'queued' \
             ORDER BY created_ms, work_id LIMIT 1"
        ),
        &[Param::text(agent_id)],
    )?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    // Checked before it is taken: altered work is refused, never run.
    let mut w = work_from(row, k)?;
    let n = sql.exec(
        "UPDATE station_work SET state = 'taken', session_id = $1, updated_ms = $2 \
         WHERE work_id = $3 AND state = 'queued'",
        &[
            Param::text(session_id),
            Param::millis(now),
            Param::text(&w.work_id),
        ],
    )?;
    if n != 1 {
        // Another session took it between the read and the update.
        return Ok(None);
    }
    w.state = StationWorkState::Taken;
    w.session_id = Some(session_id.to_owned());
    Ok(Some(w))
}

pub(crate) fn station_work_finish(
    sql: &mut dyn Sql,
    work_id: &str,
    state: StationWorkState,
    outcome: &str,
    now: UnixMillis,
) -> Result<bool> {
    let n = sql.exec(
        "UPDATE station_work SET state = $1, outcome = $2, updated_ms = $3 \
         WHERE work_id = $4 AND state = 'taken'",
        &[
            Param::text(state.as_str()),
            Param::text(outcome),
            Param::millis(now),
            Param::text(work_id),
        ],
    )?;
    Ok(n == 1)
}

/// Implements [`crate::store::split::SplitStore`] for a backend type shaped as for
/// `impl_store!`.
macro_rules! impl_split_store {
    ($ty:ty) => {
        impl $crate::store::split::SplitStore for $ty {
            fn split_session_create(
                &self,
                session: &$crate::store::split::SplitSession,
                now: $crate::store::UnixMillis,
            ) -> $crate::store::Result<()> {
                let k = self.row_key.get();
                self.tx(|s| $crate::store::sql::split_session_create(s, k.as_deref(), session, now))
            }
            fn split_session_create_logged(
                &self,
                session: &$crate::store::split::SplitSession,
                now: $crate::store::UnixMillis,
                log: &[$crate::store::split::SplitMessage],
            ) -> $crate::store::Result<()> {
                let k = self.row_key.get();
                self.tx(|s| {
                    $crate::store::sql::split_session_create(s, k.as_deref(), session, now)?;
                    for m in log {
                        $crate::store::sql::split_log(s, m)?;
                    }
                    Ok(())
                })
            }
            fn split_session_get(
                &self,
                session_id: &str,
            ) -> $crate::store::Result<Option<$crate::store::split::SplitSession>> {
                let k = self.row_key.get();
                self.read(|s| $crate::store::sql::split_session_get(s, k.as_deref(), session_id))
            }
            fn split_session_update(
                &self,
                session: &$crate::store::split::SplitSession,
                expected_version: u64,
                now: $crate::store::UnixMillis,
            ) -> $crate::store::Result<bool> {
                let k = self.row_key.get();
                self.tx(|s| {
                    $crate::store::sql::split_session_update(
                        s,
                        k.as_deref(),
                        session,
                        expected_version,
                        now,
                    )
                })
            }
            fn split_session_update_logged(
                &self,
                session: &$crate::store::split::SplitSession,
                expected_version: u64,
                now: $crate::store::UnixMillis,
                log: &[$crate::store::split::SplitMessage],
            ) -> $crate::store::Result<bool> {
                let k = self.row_key.get();
                self.tx(|s| {
                    let moved = $crate::store::sql::split_session_update(
                        s,
                        k.as_deref(),
                        session,
                        expected_version,
                        now,
                    )?;
                    if moved {
                        for m in log {
                            $crate::store::sql::split_log(s, m)?;
                        }
                    }
                    Ok(moved)
                })
            }
            fn watch_sessions(
                &self,
                changed: $crate::store::split::SessionChanged,
            ) -> $crate::store::Result<bool> {
                self.watch_split_sessions(changed)
            }
            fn split_log(
                &self,
                message: &$crate::store::split::SplitMessage,
            ) -> $crate::store::Result<()> {
                self.tx(|s| $crate::store::sql::split_log(s, message))
            }
            fn split_messages(
                &self,
                session_id: &str,
            ) -> $crate::store::Result<Vec<$crate::store::split::SplitMessage>> {
                self.read(|s| $crate::store::sql::split_messages(s, session_id))
            }
            fn station_work_put(
                &self,
                work: &$crate::store::split::StationWork,
            ) -> $crate::store::Result<()> {
                let k = self.row_key.get();
                self.tx(|s| $crate::store::sql::station_work_put(s, k.as_deref(), work))
            }
            fn station_work_take(
                &self,
                agent_id: &str,
                session_id: &str,
                now: $crate::store::UnixMillis,
            ) -> $crate::store::Result<Option<$crate::store::split::StationWork>> {
                let k = self.row_key.get();
                self.tx(|s| {
                    $crate::store::sql::station_work_take(
                        s,
                        k.as_deref(),
                        agent_id,
                        session_id,
                        now,
                    )
                })
            }
            fn station_work_finish(
                &self,
                work_id: &str,
                state: $crate::store::split::StationWorkState,
                outcome: &str,
                now: $crate::store::UnixMillis,
            ) -> $crate::store::Result<bool> {
                self.tx(|s| {
                    $crate::store::sql::station_work_finish(s, work_id, state, outcome, now)
                })
            }
            fn station_work_get(
                &self,
                work_id: &str,
            ) -> $crate::store::Result<Option<$crate::store::split::StationWork>> {
                let k = self.row_key.get();
                self.read(|s| $crate::store::sql::station_work_get(s, k.as_deref(), work_id))
            }
        }
    };
}
pub(crate) use impl_split_store;
