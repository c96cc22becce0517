//! Diagnostics through the facade (in a process of its own: the subscriber is global): the
//! session's `log` configuration writes the engine's records to a file, then
//! `configure_logging` switches them; neither the PIN, the PIN key nor the client secret
//! ever appear.

use entra_graph::emulator::{AppRegistration, Emulator, EmulatorConfig};
use keysmith_facade::{configure_logging, Device, ErrorKind, IssueParams, Session};
use keysmith_testkit::{idp_config, in_own_process, softkey_spec, TempDir};

/// Not the standard test template: the smallest one, no FIDO2 options.
const TEMPLATE: &str = r#"
[passkey.entra]
idp = { connection = "contoso-entra", kind = "entra", graph_api_version = "beta" }
display_name = "{displayName} {serial}"
rp_id = "login.microsoft.com"

[credential]
name = "log-standard"
passkey_templates = ["entra"]
user_assignment = { directory = "contoso-entra" }
"#;

const PIN: &str = "pin-7f3a9c1e55";
const SECRET: &str = "client-secret-9b2e6d4410";
const PIN_KEY: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90";

fn read_logs(dir: &std::path::Path) -> String {
    let mut all = String::new();
    for entry in std::fs::read_dir(dir).expect("log dir").flatten() {
        all.push_str(&std::fs::read_to_string(entry.path()).unwrap_or_default());
    }
    all
}

#[test]
fn session_logging_goes_to_the_configured_file_without_secrets() {
    in_own_process("logging::session_logging_goes_to_the_configured_file_without_secrets_alone");
}

/// The test itself, run by the one above in a process of its own: the `tracing`
/// subscriber is process-global.
#[test]
#[ignore = "run in its own process by session_logging_goes_to_the_configured_file_without_secrets"]
fn session_logging_goes_to_the_configured_file_without_secrets_alone() {
    let mut config = EmulatorConfig::default();
    config.apps.insert(
        0,
        AppRegistration {
            client_id: "log-test-app".into(),
            client_secret: Some(SECRET.into()),
            certificates_pem: vec![],
            roles: None,
        },
    );
    let emulator = Emulator::start(config).expect("emulator");
    assert_eq!(emulator.client_secret(), Some(SECRET));
    let dir = TempDir::new("facade-log");
    let logs = dir.join("logs");
    let cfg = serde_json::json!({
        "repository": { "sqlite": dir.join("keysmith.db").to_str().expect("utf-8") },
        "pin_key": PIN_KEY,
        "allow_software_keys": true,
        "idp": [idp_config(&emulator)],
        "templates": [TEMPLATE],
        "log": {
            "level": "trace",
            "format": "json",
            "destination": { "kind": "file", "directory": logs.to_str().expect("utf-8"),
                             "file-name-pattern": "first.log", "rotation": "never" },
        },
    });
    let session = Session::open(&cfg.to_string()).expect("session");
    let device = Device::open(&softkey_spec(&dir, "key.json")).expect("device");
    let key = session
        .issue(
            &device,
            &IssueParams {
                template: "log-standard".into(),
                user: "kim@contoso.onmicrosoft.com".into(),
                ..IssueParams::default()
            },
        )
        .expect("issue");
    session
        .activate(&device, &key.key_id, PIN)
        .expect("activate");
    session.sign_in(&device, &key.key_id, PIN).expect("sign in");

    let first = read_logs(&logs);
    assert!(first.contains(&key.key_id), "the flows are logged: {first}");
    for secret in [PIN, SECRET, PIN_KEY] {
        assert!(!first.contains(secret), "secret {secret:?} in the log");
    }

    // Switched at run time to another file; a bad configuration keeps the current one.
    let e = configure_logging(r#"{"level": "nope"}"#).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Usage);
    let second_dir = dir.join("logs2");
    configure_logging(
        &serde_json::json!({
            "level": "info",
            "destination": { "kind": "file", "directory": second_dir.to_str().expect("utf-8"),
                             "file-name-pattern": "second.log", "rotation": "never" },
        })
        .to_string(),
    )
    .expect("reconfigure");
    session.revoke(&key.key_id, None).expect("revoke");
    let second = read_logs(&second_dir);
    assert!(second.contains(&key.key_id), "{second}");
    assert!(!second.contains(PIN));
    let _ = std::fs::remove_dir_all(&dir);
}
