//! Agents and enrolment codes in the store (keysmith serve).

use super::super::backends::Backend;
use lifecycle::store::{
    AgentClass, AgentRecord, AgentStatus, AuditQuery, EnrolmentCode, NewAuditRecord, Store,
    StoreError,
};

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

fn code(id: &str, station: &str, expires_ms: u64) -> EnrolmentCode {
    EnrolmentCode {
        code_id: id.into(),
        code_hash: format!("hash-{id}"),
        station: station.into(),
        class: AgentClass::Station,
        created_by: "admin".into(),
        created_ms: 1_000,
        expires_ms,
        used_ms: None,
        used_by: None,
    }
}

fn agent(id: &str, class: AgentClass, status: AgentStatus) -> AgentRecord {
    AgentRecord {
        agent_id: id.into(),
        class,
        station: (class == AgentClass::Station).then(|| "desk-1".into()),
        public_key: vec![4; 65],
        status,
        host_name: Some("host".into()),
        host_os: None,
        created_ms: 1_500,
        updated_ms: 1_500,
    }
}

/// Codes are used once and only before they expire; agents move pending → approved →
/// revoked by compare-and-set; each step is audited in the same transaction.
pub fn agents_and_enrolment_codes<B: Backend>(b: &B) {
    let s = b.open("agents");
    s.put_enrolment_code(&code("c1", "desk-1", 5_000), &event("code", 1_000))
        .unwrap();
    s.put_enrolment_code(&code("c2", "desk-1", 2_000), &event("code", 1_000))
        .unwrap();
    s.put_enrolment_code(&code("c3", "desk-2", 5_000), &event("code", 1_000))
        .unwrap();
    let open: Vec<String> = s
        .open_enrolment_codes("desk-1", 1_500)
        .unwrap()
        .into_iter()
        .map(|c| c.code_id)
        .collect();
    assert_eq!(open, ["c1", "c2"]);
    assert_eq!(s.open_enrolment_codes("desk-1", 3_000).unwrap().len(), 1);

    let a = agent("a1", AgentClass::Station, AgentStatus::Pending);
    assert!(s
        .enrol_agent(&a, Some("c1"), &event("enrol", 1_500), 1_500)
        .unwrap());
    assert_eq!(s.get_agent("a1").unwrap(), Some(a.clone()));
    // Used, expired and unknown codes record nothing.
    let b2 = agent("a2", AgentClass::Station, AgentStatus::Pending);
    assert!(!s
        .enrol_agent(&b2, Some("c1"), &event("enrol", 1_600), 1_600)
        .unwrap());
    assert!(!s
        .enrol_agent(&b2, Some("c2"), &event("enrol", 2_500), 2_500)
        .unwrap());
    assert!(!s
        .enrol_agent(&b2, Some("nope"), &event("enrol", 1_600), 1_600)
        .unwrap());
    assert_eq!(s.get_agent("a2").unwrap(), None);
    // A known agent id is refused (and the code stays unused).
    assert!(matches!(
        s.enrol_agent(&a, Some("c3"), &event("enrol", 1_700), 1_700),
        Err(StoreError::Invalid { field: "agent", .. })
    ));
    assert_eq!(s.open_enrolment_codes("desk-2", 1_700).unwrap().len(), 1);
    // A holder agent needs no code.
    let h = agent("h1", AgentClass::Holder, AgentStatus::Approved);
    assert!(s
        .enrol_agent(&h, None, &event("enrol", 1_800), 1_800)
        .unwrap());

    use AgentStatus::*;
    assert!(s
        .set_agent_status("a1", &[Pending], Approved, &event("approve", 2_000), 2_000)
        .unwrap());
    assert!(!s
        .set_agent_status("a1", &[Pending], Approved, &event("approve", 2_001), 2_001)
        .unwrap());
    assert!(s
        .set_agent_status(
            "a1",
            &[Pending, Approved],
            Revoked,
            &event("revoke", 2_100),
            2_100
        )
        .unwrap());
    let a1 = s.get_agent("a1").unwrap().unwrap();
    assert_eq!((a1.status, a1.updated_ms), (Revoked, 2_100));
    assert!(matches!(
        s.set_agent_status("zz", &[Pending], Approved, &event("approve", 1), 1),
        Err(StoreError::NotFound { .. })
    ));
    let all: Vec<String> = s
        .list_agents()
        .unwrap()
        .into_iter()
        .map(|a| a.agent_id)
        .collect();
    assert_eq!(all, ["a1", "h1"]);
    let actions: Vec<String> = s
        .query_audit(&AuditQuery::default())
        .unwrap()
        .into_iter()
        .map(|r| r.event.action)
        .collect();
    assert_eq!(
        actions,
        ["code", "code", "code", "enrol", "enrol", "approve", "revoke"]
    );
    // At most 16 open codes per station.
    for i in 0..15 {
        s.put_enrolment_code(
            &code(&format!("m{i}"), "desk-9", 9_000),
            &event("code", 1_000),
        )
        .unwrap();
    }
    s.put_enrolment_code(&code("m15", "desk-9", 9_000), &event("code", 1_000))
        .unwrap();
    assert!(s
        .put_enrolment_code(&code("m16", "desk-9", 9_000), &event("code", 1_000))
        .is_err());
}
