//! Agents and enrolment codes.

use super::*;
use crate::store::{AgentClass, AgentRecord, AgentStatus, EnrolmentCode};

/// Most unused, unexpired codes per station (bounds the server's proof checks).
pub(crate) const MAX_OPEN_CODES_PER_STATION: usize = 16;

const AGENT_COLS: &str = "agent_id, class, station, public_key, status, host_name, host_os, \
                          created_ms, updated_ms, mac";
const CODE_COLS: &str =
    "code_id, code_hash, station, class, created_by, created_ms, expires_ms, used_ms, used_by, mac";

/// What an agent row's MAC binds: who the agent is (id, key), what it may do (class,
/// station) and whether it is approved. A database writer who flips a pending agent to
/// approved, or swaps its public key, makes the row fail its check. Host fields and
/// times are descriptive and not bound.
fn agent_fields(a: &AgentRecord) -> [Field<'_>; 5] {
    [
        Field::Text(&a.agent_id),
        Field::Text(a.class.as_str()),
        Field::OptText(a.station.as_deref()),
        Field::Bytes(&a.public_key),
        Field::Text(a.status.as_str()),
    ]
}

/// What an enrolment code row's MAC binds: the code's hash and what it enrols for, by
/// whom, until when. A row inserted or changed by a database writer (their own code for a
/// station) fails its check. Whether it was used moves afterwards and is not bound.
fn code_fields(c: &EnrolmentCode) -> [Field<'_>; 7] {
    [
        Field::Text(&c.code_id),
        Field::Text(&c.code_hash),
        Field::Text(&c.station),
        Field::Text(c.class.as_str()),
        Field::Text(&c.created_by),
        Field::Uint(c.created_ms),
        Field::Uint(c.expires_ms),
    ]
}

fn corrupt(what: String) -> StoreError {
    StoreError::Corrupt { what }
}

fn agent_row(r: &Row, k: Option<&RowKey>) -> Result<AgentRecord> {
    let class = r.text(1, "agents.class")?;
    let status = r.text(4, "agents.status")?;
    let a = AgentRecord {
        agent_id: r.text(0, "agents.agent_id")?,
        class: AgentClass::parse(&class)
            .ok_or_else(|| corrupt(format!("agents.class: unknown {class:?}")))?,
        station: r.opt_text(2, "agents.station")?,
        public_key: r.bytes(3, "agents.public_key")?,
        status: AgentStatus::parse(&status)
            .ok_or_else(|| corrupt(format!("agents.status: unknown {status:?}")))?,
        host_name: r.opt_text(5, "agents.host_name")?,
        host_os: r.opt_text(6, "agents.host_os")?,
        created_ms: r.uint(7, "agents.created_ms")?,
        updated_ms: r.uint(8, "agents.updated_ms")?,
    };
    if let Some(k) = k {
        let mac = opt_bytes(r, 9, "agents.mac")?;
        k.check_row(
            || format!("agent {}", a.agent_id),
            mac.as_deref(),
            "agent",
            &agent_fields(&a),
        )?;
    }
    Ok(a)
}

fn opt_uint(r: &Row, i: usize, field: &str) -> Result<Option<u64>> {
    match r.cell(i, field)? {
        Cell::Null => Ok(None),
        _ => r.uint(i, field).map(Some),
    }
}

fn code_row(r: &Row, k: Option<&RowKey>) -> Result<EnrolmentCode> {
    let class = r.text(3, "enrolment_codes.class")?;
    let c = EnrolmentCode {
        code_id: r.text(0, "enrolment_codes.code_id")?,
        code_hash: r.text(1, "enrolment_codes.code_hash")?,
        station: r.text(2, "enrolment_codes.station")?,
        class: AgentClass::parse(&class)
            .ok_or_else(|| corrupt(format!("enrolment_codes.class: unknown {class:?}")))?,
        created_by: r.text(4, "enrolment_codes.created_by")?,
        created_ms: r.uint(5, "enrolment_codes.created_ms")?,
        expires_ms: r.uint(6, "enrolment_codes.expires_ms")?,
        used_ms: opt_uint(r, 7, "enrolment_codes.used_ms")?,
        used_by: r.opt_text(8, "enrolment_codes.used_by")?,
    };
    if let Some(k) = k {
        let mac = opt_bytes(r, 9, "enrolment_codes.mac")?;
        k.check_row(
            || format!("enrolment code {}", c.code_id),
            mac.as_deref(),
            "enrolment-code",
            &code_fields(&c),
        )?;
    }
    Ok(c)
}

pub(crate) fn put_enrolment_code(
    sql: &mut dyn Sql,
    k: Option<&RowKey>,
    code: &EnrolmentCode,
    audit: &NewAuditRecord,
) -> Result<()> {
    if code.station.is_empty() || code.code_id.is_empty() || code.code_hash.is_empty() {
        return Err(StoreError::Invalid {
            field: "enrolment code",
            reason: "station, id and hash must not be empty".into(),
        });
    }
    let open = open_codes(sql, k, &code.station, code.created_ms)?;
    if open.len() >= MAX_OPEN_CODES_PER_STATION {
        return Err(StoreError::Invalid {
            field: "enrolment code",
            reason: format!(
                "station {:?} already has {MAX_OPEN_CODES_PER_STATION} unused codes",
                code.station
            ),
        });
    }
    sql.exec(
        &format!(
            "INSERT INTO enrolment_codes ({CODE_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, NULL, $8)"
        ),
        &[
            Param::text(&code.code_id),
            Param::text(&code.code_hash),
            Param::text(&code.station),
            Param::text(code.class.as_str()),
            Param::text(&code.created_by),
            Param::millis(code.created_ms),
            Param::millis(code.expires_ms),
            Param::Blob(k.map(|k| k.seal_row("enrolment-code", &code_fields(code)))),
        ],
    )?;
    append_audit(sql, k, audit)?;
    Ok(())
}

pub(crate) fn open_codes(
    sql: &mut dyn Sql,
    k: Option<&RowKey>,
    station: &str,
    now: UnixMillis,
) -> Result<Vec<EnrolmentCode>> {
    sql.query(
        &format!(
            "SELECT {CODE_COLS} FROM enrolment_codes WHERE station = $1 AND used_ms IS NULL \
             AND expires_ms >= $2 ORDER BY created_ms, code_id"
        ),
        &[Param::text(station), Param::millis(now)],
    )?
    .iter()
    .map(|r| code_row(r, k))
    .collect()
}

/// Records `agent`; with `code_id`, uses that code in the same transaction (false, and
/// nothing recorded, when it was used or expired meanwhile). An agent id already
/// recorded is refused with `Invalid`.
pub(crate) fn enrol_agent(
    sql: &mut dyn Sql,
    k: Option<&RowKey>,
    agent: &AgentRecord,
    code_id: Option<&str>,
    audit: &NewAuditRecord,
    now: UnixMillis,
) -> Result<bool> {
    if let Some(id) = code_id {
        let n = sql.exec(
            "UPDATE enrolment_codes SET used_ms = $1, used_by = $2 WHERE code_id = $3 \
             AND used_ms IS NULL AND expires_ms >= $1",
            &[
                Param::millis(now),
                Param::text(&agent.agent_id),
                Param::text(id),
            ],
        )?;
        if n != 1 {
            return Ok(false);
        }
    }
    if get_agent(sql, None, &agent.agent_id)?.is_some() {
        return Err(StoreError::Invalid {
            field: "agent",
            reason: format!("agent {} is already enrolled", agent.agent_id),
        });
    }
    sql.exec(
        &format!(
            "INSERT INTO agents ({AGENT_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        ),
        &[
            Param::text(&agent.agent_id),
            Param::text(agent.class.as_str()),
            Param::opt_text(&agent.station),
            Param::blob(&agent.public_key),
            Param::text(agent.status.as_str()),
            Param::opt_text(&agent.host_name),
            Param::opt_text(&agent.host_os),
            Param::millis(agent.created_ms),
            Param::millis(agent.updated_ms),
            Param::Blob(k.map(|k| k.seal_row("agent", &agent_fields(agent)))),
        ],
    )?;
    append_audit(sql, k, audit)?;
    Ok(true)
}

pub(crate) fn get_agent(
    sql: &mut dyn Sql,
    k: Option<&RowKey>,
    agent_id: &str,
) -> Result<Option<AgentRecord>> {
    sql.query(
        &format!("SELECT {AGENT_COLS} FROM agents WHERE agent_id = $1"),
        &[Param::text(agent_id)],
    )?
    .first()
    .map(|r| agent_row(r, k))
    .transpose()
}

pub(crate) fn list_agents(sql: &mut dyn Sql, k: Option<&RowKey>) -> Result<Vec<AgentRecord>> {
    sql.query(
        &format!("SELECT {AGENT_COLS} FROM agents ORDER BY created_ms, agent_id"),
        &[],
    )?
    .iter()
    .map(|r| agent_row(r, k))
    .collect()
}

/// Moves an agent from one of `from` to `to`; false when it is not in one of them.
pub(crate) fn set_agent_status(
    sql: &mut dyn Sql,
    k: Option<&RowKey>,
    agent_id: &str,
    from: &[AgentStatus],
    to: AgentStatus,
    audit: &NewAuditRecord,
    now: UnixMillis,
) -> Result<bool> {
    let Some(current) = get_agent(sql, k, agent_id)? else {
        return Err(StoreError::NotFound {
            what: format!("agent {agent_id}"),
        });
    };
    if !from.contains(&current.status) {
        return Ok(false);
    }
    let next = AgentRecord {
        status: to,
        ..current.clone()
    };
    let n = sql.exec(
        "UPDATE agents SET status = $1, updated_ms = $2, mac = $3 \
         WHERE agent_id = $4 AND status = $5",
        &[
            Param::text(to.as_str()),
            Param::millis(now),
            Param::Blob(k.map(|k| k.seal_row("agent", &agent_fields(&next)))),
            Param::text(agent_id),
            Param::text(current.status.as_str()),
        ],
    )?;
    if n != 1 {
        return Ok(false);
    }
    append_audit(sql, k, audit)?;
    Ok(true)
}

/// MACs the agent rows written before schema 11 as they are (part of the one adoption).
pub(crate) fn adopt_agents(sql: &mut dyn Sql, k: &RowKey) -> Result<u64> {
    let rows = sql.query(
        &format!("SELECT {AGENT_COLS} FROM agents WHERE mac IS NULL"),
        &[],
    )?;
    let mut n = 0;
    for r in &rows {
        let a = agent_row(r, None)?;
        sql.exec(
            "UPDATE agents SET mac = $1 WHERE agent_id = $2",
            &[
                Param::Blob(Some(k.seal_row("agent", &agent_fields(&a)))),
                Param::text(&a.agent_id),
            ],
        )?;
        n += 1;
    }
    Ok(n)
}

/// MACs the enrolment code rows written before schema 11 as they are.
pub(crate) fn adopt_codes(sql: &mut dyn Sql, k: &RowKey) -> Result<u64> {
    let rows = sql.query(
        &format!("SELECT {CODE_COLS} FROM enrolment_codes WHERE mac IS NULL"),
        &[],
    )?;
    let mut n = 0;
    for r in &rows {
        let c = code_row(r, None)?;
        sql.exec(
            "UPDATE enrolment_codes SET mac = $1 WHERE code_id = $2",
            &[
                Param::Blob(Some(k.seal_row("enrolment-code", &code_fields(&c)))),
                Param::text(&c.code_id),
            ],
        )?;
        n += 1;
    }
    Ok(n)
}
