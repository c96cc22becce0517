//! Agent and enrolment-code rows of a split deployment are authenticated like the rows a
//! flow trusts: a database writer who approves a pending agent, swaps an agent's public
//! key, or inserts their own enrolment code for a station gets a refusal, not an agent.

use lifecycle::store::{
    AgentClass, AgentRecord, AgentStatus, EnrolmentCode, NewAuditRecord, StoreError,
};

use super::db::Db;
use super::engine;
use keysmith_testkit::EmulatorWorld;

fn event(action: &str, t: u64) -> NewAuditRecord {
    NewAuditRecord {
        actor: "admin".into(),
        time_ms: t,
        action: action.into(),
        key_id: None,
        user_id: None,
        template_id: None,
        outcome: "success".into(),
        idp_request_id: None,
        detail: None,
    }
}

fn integrity<T: std::fmt::Debug>(r: Result<T, StoreError>) {
    assert!(
        matches!(r, Err(StoreError::Integrity { .. })),
        "not refused: {r:?}"
    );
}

pub(super) fn agent_rows_edited(db: &Db) {
    let world = EmulatorWorld::start(&format!("rowmac-agents-{}", db.name()));
    let e = engine(&world, db);
    let s = e.store();
    let code = EnrolmentCode {
        code_id: "c1".into(),
        code_hash: "hash-c1".into(),
        station: "desk-1".into(),
        class: AgentClass::Station,
        created_by: "admin".into(),
        created_ms: 1_000,
        expires_ms: u64::MAX / 2,
        used_ms: None,
        used_by: None,
    };
    s.put_enrolment_code(&code, &event("code", 1_000)).unwrap();
    let agent = AgentRecord {
        agent_id: "agent-1".into(),
        class: AgentClass::Station,
        station: Some("desk-1".into()),
        public_key: vec![4; 65],
        status: AgentStatus::Pending,
        host_name: None,
        host_os: None,
        created_ms: 1_500,
        updated_ms: 1_500,
    };
    assert!(s
        .enrol_agent(&agent, Some("c1"), &event("enrol", 1_500), 1_500)
        .unwrap());
    assert_eq!(
        s.get_agent("agent-1").unwrap().unwrap().status,
        AgentStatus::Pending
    );

    // Approved behind the admin's back: refused.
    db.raw("UPDATE agents SET status = 'approved' WHERE agent_id = 'agent-1'");
    integrity(s.get_agent("agent-1"));
    integrity(s.list_agents());
    db.raw("UPDATE agents SET status = 'pending' WHERE agent_id = 'agent-1'");

    // Approved by the admin: the row is sealed again and reads.
    assert!(s
        .set_agent_status(
            "agent-1",
            &[AgentStatus::Pending],
            AgentStatus::Approved,
            &event("approve", 2_000),
            2_000,
        )
        .unwrap());
    assert_eq!(
        s.get_agent("agent-1").unwrap().unwrap().status,
        AgentStatus::Approved
    );

    // Another public key in place of the enrolled one: refused.
    let hex = if db.name().starts_with("pg") {
        "'\\x0505'::bytea"
    } else {
        "X'0505'"
    };
    db.raw(&format!(
        "UPDATE agents SET public_key = {hex} WHERE agent_id = 'agent-1'"
    ));
    integrity(s.get_agent("agent-1"));

    // An enrolment code inserted by hand for a station: refused.
    db.raw(
        "INSERT INTO enrolment_codes (code_id, code_hash, station, class, created_by, \
         created_ms, expires_ms) VALUES ('c9', 'hash-c9', 'desk-9', 'station', 'mallory', \
         1000, 9000000000000)",
    );
    integrity(s.open_enrolment_codes("desk-9", 2_000));
}
