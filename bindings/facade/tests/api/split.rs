//! The split's halves at the facade boundary (issue 11 item 7): configuration mistakes are
//! usage errors naming the field; messages a half does not accept are `split_refused` with
//! the protocol's stable code and change nothing; `describe` leaves secrets out. The whole
//! flow runs from Python (`bindings/python/tests/test_split.py`) and from C
//! (`examples/c/split_device.c` driven by `examples/rust/split_server.rs`).

use keysmith_facade::split::{describe, DeviceEvent, DeviceHalf, ServerHalf};
use keysmith_facade::{Device, ErrorKind, FacadeError, Session};
use keysmith_testkit::{now_ms, softkey_spec, EmulatorWorld};

fn refusal(e: &FacadeError) -> (ErrorKind, &'static str, Option<&'static str>) {
    (e.kind, e.reason, e.refusal_code)
}

#[test]
fn the_halves_refuse_with_stable_codes_and_describe_leaves_secrets_out() {
    let world = EmulatorWorld::start("facade-split");
    let session = Session::open(&world.session_config("facade-split")).expect("session");
    let server = ServerHalf::new(&session, r#"{"allow_software_keys": true}"#).expect("server");
    assert!(server.take_generated_key_pem().is_some());
    assert!(server.take_generated_key_pem().is_none());
    let pinned = server.public_key_pem().expect("public key");

    // Configuration mistakes.
    for (config, names) in [
        (r#"{"server_keys": []}"#.to_owned(), "server_keys"),
        (r#"{"server_keys": ["04zz"]}"#.to_owned(), "server_keys"),
        (
            serde_json::json!({"server_keys": [pinned], "colour": 1}).to_string(),
            "colour",
        ),
        (
            serde_json::json!({"server_keys": [pinned], "agent_key_pem": "nope"}).to_string(),
            "agent_key_pem",
        ),
    ] {
        let e = DeviceHalf::new(&config).expect_err(&config);
        assert_eq!(e.kind, ErrorKind::Usage, "{e:?}");
        assert!(e.message.contains(names), "{e:?}");
    }
    assert!(ServerHalf::new(&session, r#"{"server_key_pem": "nope"}"#).is_err());

    let half = DeviceHalf::new(&serde_json::json!({"server_keys": [pinned]}).to_string())
        .expect("device half");
    // An agent the server does not know.
    let e = server
        .open(&half.hello(), now_ms())
        .expect_err("unknown agent");
    assert_eq!(
        refusal(&e),
        (ErrorKind::Usage, "split_refused", Some("UnknownKey"))
    );
    assert!(server
        .add_agent(&half.agent_public_key(), "janitor", true, None)
        .is_err());
    let agent = server
        .add_agent(&half.agent_public_key(), "holder", true, None)
        .expect("enrol");
    assert_eq!(agent, half.agent_id());
    let opened = server.open(&half.hello(), now_ms()).expect("open");
    assert_eq!(
        half.receive(&opened.reply, 1).expect("hello"),
        DeviceEvent::Established
    );

    // A flipped byte is refused by the server half; the genuine message still goes in.
    let device = Device::open(&softkey_spec(&world.dir, "split.json")).expect("softkey");
    let report = half.report(&device, None).expect("report");
    let mut flipped = report.clone();
    if let Some(b) = flipped.last_mut() {
        *b ^= 1;
    }
    let e = server
        .handle(&opened.session_id, &flipped, now_ms())
        .expect_err("flipped");
    assert_eq!(refusal(&e).2, Some("BadSignature"), "{e:?}");
    let reply = server
        .handle(&opened.session_id, &report, now_ms())
        .expect("the genuine report");
    // ... and by the device half, which then takes the genuine reply.
    let mut flipped = reply.clone();
    if let Some(b) = flipped.last_mut() {
        *b ^= 0x80;
    }
    let e = half.receive(&flipped, 2).expect_err("flipped reply");
    assert_eq!(refusal(&e).2, Some("BadSignature"), "{e:?}");
    assert!(matches!(
        half.receive(&reply, 3).expect("the genuine reply"),
        DeviceEvent::Wait { .. }
    ));

    // A holder Graph answer the server did not ask for, or for an unknown call.
    let e = half
        .holder_graph_result(r#"{"op": "creation_options", "status": 200, "body": "{}"}"#)
        .expect_err("not asked");
    assert_eq!((e.kind, e.reason), (ErrorKind::Usage, "not_asked"), "{e:?}");
    let e = half
        .holder_graph_result(r#"{"op": "delete_everything", "status": 200}"#)
        .expect_err("unknown op");
    assert_eq!(e.kind, ErrorKind::Usage, "{e:?}");

    // describe: a view for logs, the ID token left out.
    let view = describe(&half.hello()).expect("describe");
    assert_eq!(
        (view["kind"].as_str(), view["direction"].as_str()),
        (Some("AgentHello"), Some("device_to_server"))
    );
    assert_eq!(describe(&reply).expect("describe")["kind"], "Wait");
    let auth = half
        .holder_auth("eyJhbGciOiJSUzI1NiJ9.c2VjcmV0LXRva2Vu.c2ln")
        .expect("holder auth");
    let view = describe(&auth).expect("describe").to_string();
    assert!(
        view.contains("HolderAuth") && !view.contains("c2VjcmV0LXRva2Vu"),
        "{view}"
    );
    assert_eq!(
        describe(b"not cbor").expect_err("garbage").kind,
        ErrorKind::Usage
    );

    // A revoked agent is refused at its next message.
    server.revoke_agent(&agent).expect("revoke");
    let e = server
        .handle(&opened.session_id, &auth, now_ms())
        .expect_err("revoked");
    assert_eq!(refusal(&e).2, Some("AgentRevoked"), "{e:?}");
    assert_eq!(
        server.approve_agent("00").expect_err("unknown").reason,
        "agent_not_found"
    );
}

/// The server half keeps its agents in the session's repository: a server half started
/// again over it (a restart, or another node) knows them, and a revoked agent stays
/// revoked.
#[test]
fn the_server_half_keeps_its_agents_in_the_repository() {
    let world = EmulatorWorld::start("facade-split-agents");
    let session = Session::open(&world.session_config("facade-split-agents")).expect("session");
    let first = ServerHalf::new(&session, r#"{"allow_software_keys": true}"#).expect("server");
    let pem = first.take_generated_key_pem().expect("generated key");
    let pinned = first.public_key_pem().expect("public key");
    let half = DeviceHalf::new(&serde_json::json!({"server_keys": [pinned]}).to_string())
        .expect("device half");
    let agent = first
        .add_agent(&half.agent_public_key(), "holder", false, None)
        .expect("enrol");
    // Pending: refused until approved.
    assert!(first.open(&half.hello(), now_ms()).is_err());
    first.approve_agent(&agent).expect("approve");
    drop(first);

    // Started again over the same repository, with the same key.
    let config = serde_json::json!({"server_key_pem": pem.as_str(), "allow_software_keys": true});
    let again = ServerHalf::new(&session, &config.to_string()).expect("server again");
    let opened = again
        .open(&half.hello(), now_ms())
        .expect("known after a restart");
    assert_eq!(
        half.receive(&opened.reply, 1).expect("hello"),
        DeviceEvent::Established
    );
    // Enrolling the same key again keeps its record.
    assert_eq!(
        again
            .add_agent(&half.agent_public_key(), "holder", false, None)
            .expect("again"),
        agent
    );
    assert!(again
        .add_agent(&half.agent_public_key(), "station", true, None)
        .is_err());
    again.revoke_agent(&agent).expect("revoke");
    assert_eq!(
        again.approve_agent(&agent).expect_err("revoked").reason,
        "agent_revoked"
    );
    // Enrolment, approval and revocation were each audited: the chain verifies.
    let check = session.audit_verify().expect("verify");
    assert!(check.ok && check.records >= 3, "{check:?}");
}
