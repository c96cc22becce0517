//! Error detail survives the engine: a wrong PIN on the software key reaches the caller
//! as a typed device error with the CTAP status and the attempts left, not as text; an
//! IdP request that cannot even be built is told apart from an unreachable IdP, and its
//! journal entry is closed as failed rather than left for replay.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use entra_graph::auth::{AccessToken, Credential, Secret};
use entra_graph::emulator::Emulator;
use entra_graph::{ApiVersion, GraphClient};
use keysmith_testkit::{softkey, EmulatorWorld, HOLDER_PIN, KIM, STANDARD_TEMPLATE};
use lifecycle::engine::{Engine, IssueRequest};
use lifecycle::idp::EntraIdp;
use lifecycle::store::{JournalOp, JournalStatus, PinKey, SqliteStore};
use lifecycle::template::{KeyTransport, TemplateSet};
use lifecycle::{CredentialState, ErrorKind};

use crate::common::{now_ms, sqlite_engine, CONNECTION};

fn issue_request(user: &str, serial: &str) -> IssueRequest {
    IssueRequest {
        actor: "operator:alice".into(),
        user: user.into(),
        serial: serial.into(),
        transport: KeyTransport::Usb,
        can_reset_in_place: true,
    }
}

#[test]
fn a_wrong_pin_is_a_device_error_with_the_retries_left() {
    let world = EmulatorWorld::start("errors-wrong-pin");
    let engine = sqlite_engine(
        &world.emulator,
        &world.dir.path().join("keysmith.db"),
        "station-a",
        7,
    );
    let templates = TemplateSet::from_toml_str(STANDARD_TEMPLATE).expect("standard template");
    let name = templates.credential.name.clone();
    engine.add_template(templates).expect("template loads");
    let mut key = softkey();
    let now = now_ms();
    let request = IssueRequest {
        actor: "operator:alice".into(),
        user: KIM.into(),
        serial: "SN-ERR-1".into(),
        transport: KeyTransport::Usb,
        can_reset_in_place: true,
    };
    let issued = engine.issue(&request, &name, &mut key, now).expect("issue");
    let active = engine
        .activate(
            "self:kim",
            &issued.key_id,
            HOLDER_PIN,
            &mut key,
            now + 1_000,
        )
        .expect("activate");
    assert_eq!(active.state, CredentialState::Active);

    let e = engine
        .sign_in(&active.key_id, "not-the-pin-1", &mut key)
        .expect_err("a wrong PIN is refused");
    assert_eq!(e.kind(), ErrorKind::Device, "{e}");
    assert_eq!(e.reason(), "pin_invalid", "{e}");
    assert_eq!(e.ctap_status(), Some(0x31), "{e}");
    let left = e
        .retries_left()
        .expect("the key reported the attempts left");
    assert!(
        left < 8,
        "a fresh key allows 8 attempts, one is used: {left}"
    );

    // A second wrong PIN counts down by one; the right PIN still works.
    let again = engine
        .sign_in(&active.key_id, "not-the-pin-2", &mut key)
        .expect_err("refused again");
    assert_eq!(again.retries_left(), Some(left - 1), "{again}");
    engine
        .sign_in(&active.key_id, HOLDER_PIN, &mut key)
        .expect("the holder's PIN signs in");
}

/// A user name too long for any URL: the request is never sent, and the error says so
/// (`request_unsendable`), not that the IdP could not be reached.
#[test]
fn an_over_long_user_is_unsendable_not_unreachable() {
    let world = EmulatorWorld::start("errors-long-user");
    let engine = sqlite_engine(
        &world.emulator,
        &world.dir.path().join("keysmith.db"),
        "station-a",
        7,
    );
    let templates = TemplateSet::from_toml_str(STANDARD_TEMPLATE).expect("standard template");
    let name = templates.credential.name.clone();
    engine.add_template(templates).expect("template loads");
    let user = "u".repeat(70_000);
    let e = engine
        .issue(
            &issue_request(&user, "SN-ERR-2"),
            &name,
            &mut softkey(),
            now_ms(),
        )
        .expect_err("a 70,000-character user cannot be sent");
    assert_eq!(
        (e.kind(), e.reason()),
        (ErrorKind::Idp, "request_unsendable"),
        "{e}"
    );
    let text = e.to_string();
    assert!(text.contains("not sent"), "{text}");
    assert!(
        !text.contains(&user[..100]),
        "the user name is not echoed: {text}"
    );
}

/// An access token from the emulator's token endpoint (client credentials over plain
/// HTTP/1.0 on loopback).
fn emulator_token(emulator: &Emulator) -> String {
    let url = emulator.token_url();
    let rest = url
        .strip_prefix("http://")
        .expect("the emulator speaks http");
    let (host, path) = rest.split_at(rest.find('/').expect("a path"));
    let enc = |s: &str| -> String {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    };
    let form = format!(
        "grant_type=client_credentials&client_id={}&client_secret={}&scope={}",
        enc(emulator.client_id()),
        enc(emulator.client_secret().unwrap_or_default()),
        enc("https://graph.microsoft.com/.default"),
    );
    let mut stream = TcpStream::connect(host).expect("connect to the emulator");
    write!(
        stream,
        "POST {path} HTTP/1.0\r\nHost: {host}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
        form.len()
    )
    .expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");
    let body = &answer[answer.find("\r\n\r\n").expect("headers end") + 4..];
    let json: serde_json::Value = serde_json::from_str(body).expect("token JSON");
    json["access_token"]
        .as_str()
        .expect("an access token")
        .to_owned()
}

/// A registration whose request cannot be built (here: the host's token callback hands
/// out a token with a line break, which no HTTP header may carry) was never sent and never
/// will be: its journal entry is closed as failed at once, not left pending for every
/// later replay.
#[test]
fn an_unsendable_registration_closes_its_journal_entry() {
    let world = EmulatorWorld::start("errors-unsendable-register");
    let token = emulator_token(&world.emulator);
    // Good tokens while this is above zero; counted down once armed.
    let good_left = Arc::new(AtomicUsize::new(usize::MAX));
    let left = good_left.clone();
    let callback = Arc::new(move || {
        let broken = left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_err();
        let t = if broken {
            format!("{token}\nX-Injected: 1")
        } else {
            token.clone()
        };
        Ok(AccessToken {
            token: Secret::new(t),
            expires_in: Duration::ZERO,
        })
    });
    let client = GraphClient::new(
        world.emulator.graph_config(ApiVersion::Beta),
        Credential::Callback(callback),
    )
    .expect("graph client");
    let store = SqliteStore::open(world.dir.path().join("keysmith.db")).expect("sqlite store");
    let engine = Engine::builder(Arc::new(store), PinKey::from_bytes([7; 32]), "station-a")
        .idp(Arc::new(EntraIdp::new(CONNECTION, client)))
        .build()
        .expect("engine");
    let templates = TemplateSet::from_toml_str(STANDARD_TEMPLATE).expect("standard template");
    let name = templates.credential.name.clone();
    engine.add_template(templates).expect("template loads");
    let mut key = softkey();
    let now = now_ms();
    let issued = engine
        .issue(&issue_request(KIM, "SN-ERR-3"), &name, &mut key, now)
        .expect("issue");

    // Activation registers (the display name was kept at issuance: no user read first):
    // that request cannot be built.
    good_left.store(0, Ordering::SeqCst);
    let e = engine
        .activate(
            "self:kim",
            &issued.key_id,
            HOLDER_PIN,
            &mut key,
            now + 1_000,
        )
        .expect_err("the registration cannot be sent");
    assert_eq!(
        (e.kind(), e.reason()),
        (ErrorKind::Idp, "request_unsendable"),
        "{e}"
    );
    assert!(world.emulator.methods(KIM).is_empty(), "nothing registered");

    let store = engine.store();
    let unfinished = store.journal_unfinished().expect("journal");
    assert!(
        unfinished
            .iter()
            .all(|j| j.operation != JournalOp::Register),
        "the registration is not left pending: {:?}",
        unfinished
            .iter()
            .map(|j| (j.id, j.operation, j.status))
            .collect::<Vec<_>>()
    );
    let register = (1..=16)
        .filter_map(|id| store.journal_get(id).expect("journal entry"))
        .find(|j| j.operation == JournalOp::Register)
        .expect("the registration was journalled");
    assert_eq!(
        register.status,
        JournalStatus::Failed,
        "entry {}",
        register.id
    );
    let why = register.result.unwrap_or_default();
    assert!(why.contains("not sent"), "{why}");

    // Replay does not send it again, now or later.
    let replayed = engine.replay_journal(now + 2_000).expect("replay");
    assert!(
        replayed.iter().all(|r| r.operation != JournalOp::Register),
        "{replayed:?}"
    );
}
