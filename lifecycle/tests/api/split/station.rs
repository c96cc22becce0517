//! Operator work at stations across the split: a node's limit of running flows, and
//! reissue with the right key attached.

use super::*;

/// A node runs at most `max_flows` flows: with one running (a station's issuance waiting
/// for its job's result), a second station's poll is told to wait and its work stays
/// queued; once the first flow ends, the second station's work starts.
#[test]
fn a_node_runs_at_most_max_flows_at_once() {
    let (r, mut key) = rig(
        "split-max-flows",
        CoordinatorConfig {
            max_flows: 1,
            ..CoordinatorConfig::default()
        },
    );
    let (c, engine) = (&r.c, r.engine.clone());
    let issue = StationRequest::Issue {
        user: ADELE.into(),
        template: "split".into(),
    };
    let queue = |agent_id: &str, work_id: &str| queue_work(&engine, agent_id, work_id, &issue);
    let state = |work_id: &str| {
        engine
            .store()
            .station_work_get(work_id)
            .unwrap()
            .unwrap()
            .state
    };
    let mut no_ui = Ui(None);
    let mut other_key = soft_key();

    // Station A takes its work; the flow sends its first job and waits for the result.
    let mut a = r.agent(AgentClass::Station, false);
    let a_id = r.last_agent_id();
    queue(&a_id, "w-a");
    let report = a
        .session
        .report(&mut key, "software", Some("SN-A".into()), None)
        .unwrap();
    a.exchange(c, report, &mut key, &mut no_ui);
    let ready = a.session.ready().unwrap();
    let reply = c.handle(&a.session_id, &ready, now_ms()).unwrap();
    a.clock += 1;
    let Event::Job(_) = a.session.receive(&reply, a.clock).unwrap() else {
        panic!("station A got no job")
    };
    assert_eq!(state("w-a"), StationWorkState::Taken);

    // Station B polls: told to wait, its work stays queued.
    let mut b = r.agent(AgentClass::Station, false);
    let b_id = r.last_agent_id();
    queue(&b_id, "w-b");
    let report = b
        .session
        .report(&mut other_key, "software", Some("SN-B".into()), None)
        .unwrap();
    b.exchange(c, report, &mut other_key, &mut no_ui);
    let ready = b.session.ready().unwrap();
    assert!(matches!(
        b.exchange(c, ready, &mut other_key, &mut no_ui),
        Event::Wait { .. }
    ));
    assert_eq!(state("w-b"), StationWorkState::Queued);

    // A finishes; B's next poll starts its work.
    let result = a.session.run_job(a.clock, &mut key, &mut no_ui).unwrap();
    let Event::JobAck(ack) = a.exchange(c, result, &mut key, &mut no_ui) else {
        panic!("station A's issuance did not finish")
    };
    assert_eq!(ack.state, "issued");
    let start = std::time::Instant::now();
    let ended = loop {
        let ready = b.session.ready().unwrap();
        match b.exchange(c, ready, &mut other_key, &mut no_ui) {
            Event::Wait { .. } if start.elapsed() < std::time::Duration::from_secs(10) => {
                // A's flow thread ends just after its last reply.
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => break other,
        }
    };
    assert!(matches!(ended, Event::JobAck(_)), "{ended:?}");
    assert_eq!(state("w-b"), StationWorkState::Done);
}

/// Reissue at a station: the key attached must be the key named (its AAGUID and the
/// serial the station reads from it), else the work fails before anything is done; with
/// the right key the key is revoked, wiped and issued again to its holder.
#[test]
fn a_station_reissues_the_key_named_and_no_other() {
    let (r, mut key) = rig("split-reissue", CoordinatorConfig::default());
    let engine = r.engine.clone();
    // A template that resets the key before issuing it (reissue wipes the key).
    let mut t = template(&r.w.emulator, "split-reset", ALL);
    t.credential.fido2.reset_before_issuance = true;
    engine.add_template(t).unwrap();
    let open_station = || {
        let caps = Capabilities {
            ctap_raw: true,
            can_reset_in_place: true,
            max_job_steps: 64,
            ..Default::default()
        };
        r.agent_with(AgentClass::Station, caps)
    };
    let station = open_station();
    let issue = StationRequest::Issue {
        user: ADELE.into(),
        template: "split-reset".into(),
    };
    let (_, ended) = station_runs_work(&r, station, &mut key, &issue, "SN-SPLIT-1");
    let Event::JobAck(ack) = ended else {
        panic!("issuance at the station did not finish: {ended:?}")
    };
    let key_id = ack.key_id;
    let reissue = StationRequest::Reissue {
        key_id: key_id.clone(),
    };

    // Another key at the desk: refused, the issued key untouched.
    let mut other = soft_key();
    let station = open_station();
    let (_, ended) = station_runs_work(&r, station, &mut other, &reissue, "SN-OTHER");
    let Event::Refused(refusal) = ended else {
        panic!("reissue with another key attached was not refused: {ended:?}")
    };
    assert!(
        refusal.reason.contains("is not the key to reissue"),
        "{refusal:?}"
    );
    let before = engine.key(&key_id).unwrap();
    assert_eq!(before.state, CredentialState::Issued);

    // The right key: reissued to the same holder.
    let station = open_station();
    let (_, ended) = station_runs_work(&r, station, &mut key, &reissue, "SN-SPLIT-1");
    let Event::JobAck(ack) = ended else {
        panic!("reissue at the station did not finish: {ended:?}")
    };
    assert_eq!(
        (ack.key_id.as_str(), ack.state.as_str()),
        (key_id.as_str(), "issued")
    );
    let after = engine.key(&key_id).unwrap();
    assert_eq!(after.user_id, before.user_id);
    assert!(after.version > before.version);
}

/// A key that can prove which key it is (CTAP 2.2 `encIdentifier`) is identified across
/// the split too: right after the transport PIN is set, a one-step job reads the
/// identifier with the PIN the device session holds, and the issued key records it with
/// the source `enc_identifier`. The PIN is not sent again for it.
#[test]
fn a_station_issuance_records_the_identifier_the_key_proves() {
    let (r, _) = rig("split-identify", CoordinatorConfig::default());
    let id = [0x5au8; 16];
    let mut key = Authenticator::new(SoftTransport::new(
        SoftAuthenticator::new(SoftConfig {
            device_identifier: Some(id),
            ..SoftConfig::default()
        })
        .unwrap(),
    ));
    let station = r.agent(AgentClass::Station, false);
    let issue = StationRequest::Issue {
        user: ADELE.into(),
        template: "split".into(),
    };
    let (station, ended) = station_runs_work(&r, station, &mut key, &issue, "SN-ID-1");
    let Event::JobAck(ack) = ended else {
        panic!("the issuance did not finish: {ended:?}")
    };
    let rec = r.engine.key(&ack.key_id).unwrap();
    let hex = base16ct::lower::encode_string(&id);
    assert_eq!(
        (rec.serial_source.as_deref(), rec.identity.as_deref()),
        (Some("enc_identifier"), Some(hex.as_str())),
        "{rec:?}"
    );
    // One identify job went out, and it carried no sealed PIN.
    let jobs: Vec<_> = r
        .engine
        .store()
        .split_messages(&station.session_id)
        .unwrap()
        .into_iter()
        .filter_map(|m| keysmith_wire::open_server(&m.bytes, &[r.server_key.public_key()]).ok())
        .filter_map(|o| match o.envelope.msg {
            keysmith_wire::ServerMessage::Job(j) if j.operation == "identify" => Some(j),
            _ => None,
        })
        .collect();
    assert_eq!(jobs.len(), 1, "one identify job");
    assert!(jobs[0].secrets.is_empty(), "the PIN was not sent again");
}
