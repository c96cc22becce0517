//! Child process for the crash tests (`tests/api/crash.rs`; built as the example
//! `fixture_crash_child`): runs one lifecycle flow against the Entra
//! emulator (real HTTP), a persistent software authenticator and a SQLite file, and
//! stops at the chosen journalled step: it prints `CRASH-POINT <step>` and blocks there
//! until the parent kills it with SIGKILL.
//!
//! Configuration comes from the environment (all required):
//! `CRASH_DB` (SQLite file), `CRASH_SOFTKEY` (softkey state file), `CRASH_TEMPLATE`
//! (template TOML file), `CRASH_BASE_URL`, `CRASH_TENANT`, `CRASH_CLIENT_ID`,
//! `CRASH_CLIENT_SECRET` (emulator), `CRASH_FLOW` (`activate` or `revoke`) and
//! `CRASH_POINT` (`after-journal`, `after-idp-call` or `before-state-change`).
//! Prints `KEY <key id>` once the key is issued. Exits 2 on a setup error and 3 when
//! the flow finished without reaching the step.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use entra_graph::auth::{Credential, Secret};
use entra_graph::{ApiVersion, GraphClient, GraphConfig};
use fido_transport::client::Authenticator;
use fido_transport::softkey::{SoftAuthenticator, SoftConfig, SoftTransport};
use lifecycle::engine::{CrashPoint, Engine, IssueRequest};
use lifecycle::idp::EntraIdp;
use lifecycle::store::{PinKey, SqliteStore};
use lifecycle::template::{KeyTransport, TemplateSet};

const HOLDER_PIN: &str = "holder-pin-2468";

fn env(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("{name} is not set"))
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn run() -> Result<(), String> {
    let target = match env("CRASH_POINT")?.as_str() {
        "after-journal" => CrashPoint::AfterJournal,
        "after-idp-call" => CrashPoint::AfterIdpCall,
        "before-state-change" => CrashPoint::BeforeStateChange,
        "after-state-journal" => CrashPoint::AfterStateJournal,
        other => return Err(format!("CRASH_POINT: unknown step {other:?}")),
    };
    let flow = env("CRASH_FLOW")?;
    let template_text = std::fs::read_to_string(env("CRASH_TEMPLATE")?)
        .map_err(|e| format!("CRASH_TEMPLATE: {e}"))?;
    let template = TemplateSet::from_toml_str(&template_text).map_err(|e| e.to_string())?;

    let mut config = GraphConfig::new(env("CRASH_TENANT")?);
    config.login_base = env("CRASH_BASE_URL")?;
    config.graph_base = config.login_base.clone();
    config.version = ApiVersion::Beta;
    let client = GraphClient::new(
        config,
        Credential::ClientSecret {
            client_id: env("CRASH_CLIENT_ID")?,
            secret: Secret::new(env("CRASH_CLIENT_SECRET")?),
        },
    )
    .map_err(|e| e.to_string())?;
    let store = SqliteStore::open(env("CRASH_DB")?).map_err(|e| e.to_string())?;

    // Armed only for the flow under test, so issuance passes its own state change.
    let armed = Arc::new(AtomicBool::new(false));
    let probe_armed = armed.clone();
    let engine = Engine::builder(Arc::new(store), PinKey::from_bytes([7; 32]), "station-a")
        .idp(Arc::new(EntraIdp::new("contoso-entra", client)))
        .probe(Arc::new(move |point| {
            if point == target && probe_armed.load(Ordering::SeqCst) {
                let mut out = std::io::stdout().lock();
                // Nothing to do if the parent is gone: it kills us anyway.
                let _ = writeln!(out, "CRASH-POINT {point:?}");
                let _ = out.flush();
                loop {
                    std::thread::sleep(Duration::from_secs(60));
                }
            }
        }))
        .build()
        .expect("engine");
    engine
        .add_template(template.clone())
        .map_err(|e| e.to_string())?;

    let soft = SoftAuthenticator::open_persistent(env("CRASH_SOFTKEY")?, SoftConfig::default())
        .map_err(|e| e.to_string())?;
    let mut key = Authenticator::new(SoftTransport::new(soft));
    let request = IssueRequest {
        actor: "operator:alice".into(),
        user: "kim@contoso.onmicrosoft.com".into(),
        serial: "SN0001".into(),
        transport: KeyTransport::Usb,
        can_reset_in_place: true,
    };
    engine
        .add_template(template.clone())
        .expect("the template loads");
    let issued = engine
        .issue(&request, &template.credential.name, &mut key, now_ms())
        .map_err(|e| format!("issue: {e}"))?;
    println!("KEY {}", issued.key_id);
    let result = match flow.as_str() {
        "activate" => {
            armed.store(true, Ordering::SeqCst);
            engine.activate("self:kim", &issued.key_id, HOLDER_PIN, &mut key, now_ms())
        }
        "revoke" => {
            engine
                .activate("self:kim", &issued.key_id, HOLDER_PIN, &mut key, now_ms())
                .map_err(|e| format!("activate: {e}"))?;
            armed.store(true, Ordering::SeqCst);
            engine.revoke("operator:alice", &issued.key_id, None, now_ms())
        }
        other => return Err(format!("CRASH_FLOW: unknown flow {other:?}")),
    };
    println!("NO-CRASH {result:?}");
    std::process::exit(3);
}

fn main() {
    if let Err(e) = run() {
        eprintln!("crash_child: {e}");
        std::process::exit(2);
    }
}
