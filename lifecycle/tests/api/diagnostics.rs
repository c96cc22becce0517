//! Diagnostics end to end: the global subscriber installed in this test process, a full
//! issue → activate → sign-in → revoke flow against the real Entra emulator, the software
//! authenticator and SQLite, logged to a rolling file at trace level. The log must carry
//! the key serial and the IdP request ids the audit log recorded, and none of the secrets
//! the flow handled. Then logging is switched at run time (file, level, format).
//!
//! Everything runs in one test function: the subscriber is process-global.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use entra_graph::auth::{AccessToken, Credential, Secret};
use entra_graph::emulator::{Emulator, EmulatorConfig};
use entra_graph::{ApiVersion, GraphClient};
use fido_transport::client::Authenticator;
use fido_transport::softkey::{SoftAuthenticator, SoftConfig, SoftTransport};
use lifecycle::diagnostics::{
    Diagnostics, FileDestination, LogConfig, LogDestination, LogFormat, LogLevel, Rotation,
};
use lifecycle::engine::{Engine, IssueRequest};
use lifecycle::idp::EntraIdp;
use lifecycle::store::{PinKey, SqliteStore};
use lifecycle::template::{KeyTransport, TemplateSet};
use lifecycle::{CredentialState, Error};

use crate::common::{now_ms, temp_dir, KIM, KIM_ID};
const HOLDER_PIN: &str = "holder-pin-2468";
const SERIAL: &str = "SN-DIAG-4711";

fn template() -> TemplateSet {
    TemplateSet::from_toml_str(keysmith_testkit::STANDARD_TEMPLATE).expect("test template parses")
}

/// Every file in `dir`, concatenated.
fn read_logs(dir: &Path) -> String {
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("log dir")
        .map(|e| e.expect("dir entry").path())
        .collect();
    names.sort();
    names
        .iter()
        .map(|p| std::fs::read_to_string(p).expect("log file is UTF-8"))
        .collect()
}

fn form_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Fetches an access token from the emulator's token endpoint with a hand-written HTTP
/// request, so the test knows the exact token the client under test sends.
fn fetch_token(emulator: &Emulator, scope: &str) -> String {
    let url = emulator.token_url();
    let rest = url.strip_prefix("http://").expect("emulator is plain http");
    let (authority, path) = rest.split_at(rest.find('/').expect("token path"));
    let body = format!(
        "grant_type=client_credentials&client_id={}&client_secret={}&scope={}",
        form_encode(emulator.client_id()),
        form_encode(emulator.client_secret().expect("emulator client secret")),
        form_encode(scope)
    );
    let mut stream = TcpStream::connect(authority).expect("connect to emulator");
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("send token request");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("token answer");
    let json = &answer[answer.find("\r\n\r\n").expect("http header end") + 4..];
    let v: serde_json::Value = serde_json::from_str(json.trim()).expect("token JSON");
    v["access_token"]
        .as_str()
        .expect("access_token in answer")
        .to_owned()
}

fn file_config(dir: &Path, level: LogLevel, format: LogFormat) -> LogConfig {
    LogConfig {
        level,
        directives: None,
        destination: LogDestination::File(FileDestination {
            directory: dir.to_path_buf(),
            file_name_pattern: "keysmith-{date}.{pid}.log".into(),
            rotation: Rotation::Daily,
            max_files: Some(7),
        }),
        format,
    }
}

#[test]
fn logs_carry_ids_not_secrets_and_switch_at_run_time() {
    crate::common::in_own_process(
        "diagnostics::logs_carry_ids_not_secrets_and_switch_at_run_time_alone",
    );
}

/// The test itself, run by the one above in a process of its own: the `tracing`
/// subscriber is process-global.
#[test]
#[ignore = "run in its own process by logs_carry_ids_not_secrets_and_switch_at_run_time"]
fn logs_carry_ids_not_secrets_and_switch_at_run_time_alone() {
    let first_dir = temp_dir("first");
    let second_dir = temp_dir("second");
    let third_dir = temp_dir("third");
    let diag = Diagnostics::install(file_config(&first_dir, LogLevel::Trace, LogFormat::Text))
        .expect("install diagnostics");
    // A second install applies its config to the same subscriber and returns the handle.
    let again = Diagnostics::install(file_config(&first_dir, LogLevel::Trace, LogFormat::Text))
        .expect("second install");
    assert_eq!(again.config(), diag.config());
    assert!(Diagnostics::current().is_some());
    let first_file = diag.current_file().expect("a file destination has a file");
    assert_eq!(first_file.parent(), Some(first_dir.as_path()));
    let name = first_file
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("");
    assert!(
        name.starts_with("keysmith-20") && name.ends_with(&format!(".{}.log", std::process::id())),
        "{name}"
    );

    // The world: emulator, SQLite, softkey; the engine signs in with the client secret.
    let emulator = Emulator::start(EmulatorConfig::default()).expect("emulator");
    let client_secret = emulator
        .client_secret()
        .expect("emulator has a client secret")
        .to_owned();
    let graph = GraphClient::new(
        emulator.graph_config(ApiVersion::Beta),
        Credential::ClientSecret {
            client_id: emulator.client_id().to_owned(),
            secret: Secret::new(client_secret.as_str()),
        },
    )
    .expect("graph client");
    let db_dir = temp_dir("db");
    let store = SqliteStore::open(db_dir.join("keysmith.db")).expect("sqlite store");
    let pin_key = PinKey::from_bytes([7; 32]);
    let engine = Engine::builder(Arc::new(store), PinKey::from_bytes([7; 32]), "station-a")
        .idp(Arc::new(EntraIdp::new("contoso-entra", graph)))
        .build()
        .expect("engine");
    let transport =
        SoftTransport::new(SoftAuthenticator::new(SoftConfig::default()).expect("softkey"));
    let mut key = Authenticator::new(transport.clone());
    let now = now_ms();
    let request = IssueRequest {
        actor: "operator:alice".into(),
        user: KIM.into(),
        serial: SERIAL.into(),
        transport: KeyTransport::Usb,
        can_reset_in_place: true,
    };

    // Issue; read the transport PIN the engine stored before activation replaces it.
    engine.add_template(template()).expect("the template loads");
    let issued = engine
        .issue(&request, &template().credential.name, &mut key, now)
        .expect("issue");
    assert_eq!(issued.state, CredentialState::Issued);
    let transport_pin = engine
        .store()
        .get_transport_pin(&issued.key_id, &pin_key)
        .expect("read transport PIN")
        .expect("a transport PIN is stored")
        .expose()
        .to_owned();
    assert!(transport_pin.len() >= 8);

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
    engine
        .sign_in(&active.key_id, HOLDER_PIN, &mut key)
        .expect("sign in");
    let revoked = engine
        .revoke("operator:alice", &active.key_id, Some(true), now + 2_000)
        .expect("revoke");
    assert_eq!(revoked.state, CredentialState::Revoked);

    // A client whose token the test knows (the host-callback credential).
    let token = fetch_token(&emulator, &emulator.graph_config(ApiVersion::Beta).scope);
    let known = token.clone();
    let callback_client = GraphClient::new(
        emulator.graph_config(ApiVersion::Beta),
        Credential::Callback(Arc::new(move || {
            Ok(AccessToken {
                token: Secret::new(known.as_str()),
                expires_in: Duration::from_secs(3600),
            })
        })),
    )
    .expect("callback client");
    assert!(callback_client
        .list_methods(KIM_ID)
        .expect("list with the known token")
        .is_empty());

    diag.flush();
    let log = read_logs(&first_dir);

    // What the log must carry: the serial, the key id, the IdP request ids the audit
    // log recorded, the Graph calls and the authenticator commands.
    assert!(log.contains(SERIAL), "serial missing from log");
    assert!(log.contains(&issued.key_id), "key id missing from log");
    let audit = engine.audit_for(&issued.key_id).expect("audit");
    let request_ids: Vec<String> = audit
        .iter()
        .filter_map(|a| a.event.idp_request_id.clone())
        .collect();
    assert!(
        request_ids.len() >= 2,
        "register and delete should both record request ids: {audit:?}"
    );
    for id in &request_ids {
        assert!(
            log.contains(id.as_str()),
            "IdP request id {id} missing from log"
        );
    }
    for expected in [
        "graph request",
        "client_request_id=",
        "access token acquired",
        "CTAP command",
        "authenticatorClientPIN",
        "journal entry appended",
        "journal entry closed",
        "IdP registration done",
        "IdP deletion done",
        "action=activate",
        "action=revoke",
        "state committed",
    ] {
        assert!(log.contains(expected), "{expected:?} missing from log");
    }

    // What it must never carry.
    let forbidden: [(&str, &str); 6] = [
        ("holder PIN", HOLDER_PIN),
        ("transport PIN", &transport_pin),
        ("client secret", &client_secret),
        ("access token", &token),
        ("JWT", "eyJ"),
        ("bearer credential", "Bearer "),
    ];
    for (what, secret) in forbidden {
        assert!(!log.contains(secret), "the log contains the {what}");
    }
    // No field that names a PIN/UV auth token or parameter carries a value.
    for line in log.lines() {
        let lower = line.to_ascii_lowercase();
        for field in ["pin_uv_auth_token=", "pin_uv_auth_param=", "pinuvauth"] {
            if let Some(at) = lower.find(field) {
                assert!(
                    lower[at..].contains("[redacted]"),
                    "a PIN/UV auth value is logged: {line}"
                );
            }
        }
    }

    // Switch at run time: a second directory, level warn.
    let first_len = std::fs::metadata(&first_file).expect("first file").len();
    diag.reconfigure(file_config(&second_dir, LogLevel::Warn, LogFormat::Text))
        .expect("reconfigure");
    assert_eq!(diag.config().level, LogLevel::Warn);
    let second_file = diag.current_file().expect("second file");
    assert_eq!(second_file.parent(), Some(second_dir.as_path()));
    callback_client
        .list_methods(KIM_ID)
        .expect("list after switching");
    key.info().expect("getInfo after switching");
    tracing::debug!("debug marker after switch");
    tracing::warn!(serial = SERIAL, "warn marker after switch");
    diag.flush();
    let second = read_logs(&second_dir);
    assert!(second.contains("warn marker after switch"), "{second}");
    assert!(!second.contains("debug marker"), "{second}");
    assert!(!second.contains("graph request"), "{second}");
    assert!(!second.contains("CTAP command"), "{second}");
    assert_eq!(
        std::fs::metadata(&first_file).expect("first file").len(),
        first_len,
        "the first file still grows after the switch"
    );

    // An invalid configuration is refused and the one in force stays.
    let mut bad = file_config(&third_dir, LogLevel::Debug, LogFormat::Text);
    bad.directives = Some("lifecycle=loud".into());
    match diag.reconfigure(bad) {
        Err(Error::Diagnostics(e)) => assert!(e.to_string().contains("log.directives"), "{e}"),
        other => panic!("bad directives accepted: {other:?}"),
    }
    assert_eq!(diag.current_file().as_deref(), Some(second_file.as_path()));

    // Per-target directives and JSON lines.
    let json_config = LogConfig {
        level: LogLevel::Error,
        directives: Some("entra_graph=debug".into()),
        ..file_config(&third_dir, LogLevel::Error, LogFormat::Json)
    };
    diag.reconfigure(json_config).expect("reconfigure to JSON");
    callback_client
        .list_methods(KIM_ID)
        .expect("list with JSON logging");
    key.info().expect("getInfo with JSON logging");
    diag.flush();
    let third = read_logs(&third_dir);
    let records: Vec<serde_json::Value> = third
        .lines()
        .map(|l| serde_json::from_str(l).expect("every line is JSON"))
        .collect();
    let graph_record = records
        .iter()
        .find(|r| r["message"] == "graph request")
        .expect("a graph request record");
    assert_eq!(graph_record["level"], "DEBUG");
    assert_eq!(graph_record["fields"]["status"], 200);
    assert!(graph_record["fields"]["request_id"]
        .as_str()
        .is_some_and(|s| !s.is_empty()));
    assert!(
        !records.iter().any(|r| r["target"]
            .as_str()
            .is_some_and(|t| t.starts_with("fido_transport"))),
        "fido_transport debug records pass an error-level default"
    );
    assert!(!third.contains(&token));

    // Quiet the subscriber before the temporary files go.
    diag.reconfigure(LogConfig {
        level: LogLevel::Off,
        destination: LogDestination::None,
        ..LogConfig::default()
    })
    .expect("switch off");
    for d in [first_dir, second_dir, third_dir, db_dir] {
        let _ = std::fs::remove_dir_all(d);
    }
}
