//! Agents and enrolment codes.

use super::*;
use crate::store::{AgentClass, AgentRecord, AgentStatus, EnrolmentCode};

/// Most unused, unexpired codes per station (bounds the server's proof checks).
pub(crate) const MAX_OPEN_CODES_PER_STATION: usize = 16;

const AGENT_COLS: &str = "agent_id, class, station, public_key, status, host_name, host_os, \
                          created_ms, updated_ms";
const CODE_COLS: &str =
    "code_id, code_hash, station, class, created_by, created_ms, expires_ms, used_ms, used_by";

fn corrupt(what: String) -> StoreError {
    StoreError::Corrupt { what }
}

fn agent_row(r: &Row) -> Result<AgentRecord> {
    let class = r.text(1, "agents.class")?;
    let status = r.text(4, "agents.status")?;
    Ok(AgentRecord {
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
    })
}

fn opt_uint(r: &Row, i: usize, field: &str) -> Result<Option<u64>> {
    match r.cell(i, field)? {
        Cell::Null => Ok(None),
        _ => r.uint(i, field).map(Some),
    }
}

fn code_row(r: &Row) -> Result<EnrolmentCode> {
    let class = r.text(3, "enrolment_codes.class")?;
    Ok(EnrolmentCode {
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
    })
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
    let open = open_codes(sql, &code.station, code.created_ms)?;
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
            "INSERT INTO enrolment_codes ({CODE_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, NULL)"
        ),
        &[
            Param::text(&code.code_id),
            Param::text(&code.code_hash),
            Param::text(&code.station),
            Param::text(code.class.as_str()),
            Param::text(&code.created_by),
            Param::millis(code.created_ms),
            Param::millis(code.expires_ms),
        ],
    )?;
    append_audit(sql, k, audit)?;
    Ok(())
}

pub(crate) fn open_codes(
    sql: &mut dyn Sql,
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
    .map(code_row)
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
    if get_agent(sql, &agent.agent_id)?.is_some() {
        return Err(StoreError::Invalid {
            field: "agent",
            reason: format!("agent {} is already enrolled", agent.agent_id),
        });
    }
    sql.exec(
        &format!("INSERT INTO agents ({AGENT_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"),
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
        ],
    )?;
    append_audit(sql, k, audit)?;
    Ok(true)
}

pub(crate) fn get_agent(sql: &mut dyn Sql, agent_id: &str) -> Result<Option<AgentRecord>> {
    sql.query(
        &format!("SELECT {AGENT_COLS} FROM agents WHERE agent_id = $1"),
        &[Param::text(agent_id)],
    )?
    .first()
    .map(agent_row)
    .transpose()
}

pub(crate) fn list_agents(sql: &mut dyn Sql) -> Result<Vec<AgentRecord>> {
    sql.query(
        &format!("SELECT {AGENT_COLS} FROM agents ORDER BY created_ms, agent_id"),
        &[],
    )?
    .iter()
    .map(agent_row)
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
    let Some(current) = get_agent(sql, agent_id)? else {
        return Err(StoreError::NotFound {
            what: format!("agent {agent_id}"),
        });
    };
    if !from.contains(&current.status) {
        return Ok(false);
    }
    let n = sql.exec(
        "UPDATE agents SET status = $1, updated_ms = $2 WHERE agent_id = $3 AND status = $4",
        &[
            Param::text(to.as_str()),
            Param::millis(now),
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
