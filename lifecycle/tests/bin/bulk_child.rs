//! Child process for the bulk crash tests (`tests/api/bulk.rs`; built as the example
//! `fixture_bulk_child`): runs a bulk job from
//! a CSV file against the Entra emulator (real HTTP) and a SQLite file, and stops inside
//! item number `BULK_KILL_ITEM` (1-based, in run order): it prints `CRASH-POINT <what>`
//! and blocks there until the parent kills it with SIGKILL.
//!
//! Environment (all required): `BULK_DB` (SQLite file), `BULK_CSV` (the job's CSV file),
//! `BULK_TEMPLATE` (the credential template TOML file the keys were issued under),
//! `BULK_KIND` (`issue`, `revoke` or `reconcile`), `BULK_BASE_URL`, `BULK_TENANT`,
//! `BULK_CLIENT_ID`, `BULK_CLIENT_SECRET` (emulator), `BULK_KILL_ITEM` and
//! `BULK_KILL_POINT`: `item-started` (right after the item is marked running) or
//! `after-idp-call` (after the item's IdP call answered, before anything is recorded) or
//! `before-state-change` (an issue row: the passkey is made on the key, nothing is
//! committed yet). Issue rows use persistent software keys `BULK_SOFTKEY_DIR/line<N>.json`
//! and the template named by `BULK_TEMPLATE_NAME`.
//! Prints `JOB <id>` once the job is recorded. Exits 2 on a setup error and 3 when the
//! job finished without reaching the point.
//!
//! Optional: `BULK_JOB` runs that recorded job (no CSV is read); `BULK_KILL_ITEM=0`
//! never blocks: the child runs the job to the end, prints `SUMMARY <json>` and exits 0;
//! `BULK_LEASE_MS` sets the row claim lease; `BULK_ITEM_DELAY_MS` sleeps that long as
//! each item starts (so two runners overlap); `BULK_STATION` names the station;
//! `BULK_PG_URL` with `BULK_PG_SCHEMA` uses PostgreSQL instead of `BULK_DB`.

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use entra_graph::auth::{Credential, Secret};
use entra_graph::{ApiVersion, GraphClient, GraphConfig};
use fido_transport::client::Authenticator;
use fido_transport::softkey::{SoftAuthenticator, SoftConfig, SoftTransport};
use fido_transport::Transport;
use lifecycle::engine::{BulkDevice, BulkDeviceRequest, BulkKind, BulkOptions, CrashPoint, Engine};
use lifecycle::idp::EntraIdp;
use lifecycle::store::{PgStore, PinKey, SqliteStore, Store};
use lifecycle::template::KeyTransport;
use lifecycle::template::TemplateSet;

fn env(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("{name} is not set"))
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn block_here(what: &str) -> ! {
    let mut out = std::io::stdout().lock();
    // Nothing to do if the parent is gone: it kills us anyway.
    let _ = writeln!(out, "CRASH-POINT {what}");
    let _ = out.flush();
    loop {
        std::thread::sleep(Duration::from_secs(60));
    }
}

fn run() -> Result<(), String> {
    let kill_item: usize = env("BULK_KILL_ITEM")?
        .parse()
        .map_err(|_| "BULK_KILL_ITEM: not a number".to_owned())?;
    let point = match env("BULK_KILL_POINT")?.as_str() {
        "item-started" => CrashPoint::BulkItemStarted,
        "after-idp-call" => CrashPoint::AfterIdpCall,
        "before-state-change" => CrashPoint::BeforeStateChange,
        other => return Err(format!("BULK_KILL_POINT: unknown point {other:?}")),
    };
    let kind = BulkKind::parse(&env("BULK_KIND")?).ok_or("BULK_KIND: unknown kind")?;
    let delay = std::env::var("BULK_ITEM_DELAY_MS")
        .ok()
        .and_then(|d| d.parse().ok())
        .map(Duration::from_millis);

    let mut config = GraphConfig::new(env("BULK_TENANT")?);
    config.login_base = env("BULK_BASE_URL")?;
    config.graph_base = config.login_base.clone();
    config.version = ApiVersion::Beta;
    let client = GraphClient::new(
        config,
        Credential::ClientSecret {
            client_id: env("BULK_CLIENT_ID")?,
            secret: Secret::new(env("BULK_CLIENT_SECRET")?),
        },
    )
    .map_err(|e| e.to_string())?;
    let store: Arc<dyn Store> = match std::env::var("BULK_PG_URL") {
        Ok(url) => Arc::new(
            PgStore::connect_in_schema(&url, &env("BULK_PG_SCHEMA")?).map_err(|e| e.to_string())?,
        ),
        Err(_) => Arc::new(SqliteStore::open(env("BULK_DB")?).map_err(|e| e.to_string())?),
    };
    let station = std::env::var("BULK_STATION").unwrap_or_else(|_| "station-a".into());

    // Counts the items started; inside the chosen one, blocks at the chosen point.
    let started = Arc::new(AtomicUsize::new(0));
    let seen = started.clone();
    let engine = Engine::builder(store, PinKey::from_bytes([7; 32]), station)
        .idp(Arc::new(EntraIdp::new("contoso-entra", client)))
        .probe(Arc::new(move |p| {
            if p == CrashPoint::BulkItemStarted {
                if let Some(d) = delay {
                    std::thread::sleep(d);
                }
                let n = seen.fetch_add(1, Ordering::SeqCst) + 1;
                if n == kill_item && point == CrashPoint::BulkItemStarted {
                    block_here(&format!("item {n} started"));
                }
            } else if p == point && seen.load(Ordering::SeqCst) == kill_item {
                block_here(&format!("item {kill_item} {p:?}"));
            }
        }))
        .build()
        .expect("engine");
    let template_text = std::fs::read_to_string(env("BULK_TEMPLATE")?)
        .map_err(|e| format!("BULK_TEMPLATE: {e}"))?;
    engine
        .add_template(TemplateSet::from_toml_str(&template_text).map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    let job = match std::env::var("BULK_JOB") {
        Ok(id) => {
            let id = id
                .parse()
                .map_err(|_| "BULK_JOB: not a number".to_owned())?;
            engine.bulk_job(id).map_err(|e| format!("bulk_job: {e}"))?
        }
        Err(_) => {
            let csv =
                std::fs::read_to_string(env("BULK_CSV")?).map_err(|e| format!("BULK_CSV: {e}"))?;
            engine
                .bulk_create(kind, &csv, "operator:bulk", now_ms())
                .map_err(|e| format!("bulk_create: {e}"))?
        }
    };
    println!("JOB {}", job.job_id);
    let mut options = BulkOptions {
        default_template: std::env::var("BULK_TEMPLATE_NAME").ok(),
        ..BulkOptions::default()
    };
    if let Ok(ms) = std::env::var("BULK_LEASE_MS") {
        options.claim_lease_ms = ms.parse().map_err(|_| "BULK_LEASE_MS: not a number")?;
    }
    let softkeys = std::env::var("BULK_SOFTKEY_DIR").ok();
    let result = engine.bulk_run(
        job.job_id,
        &options,
        &now_ms,
        &mut |r: &BulkDeviceRequest| match &softkeys {
            Some(dir) => softkey_device(dir, r.line),
            None => Err("no device".into()),
        },
        &mut |_| {},
    );
    if kill_item == 0 {
        let summary = result.map_err(|e| format!("bulk_run: {e}"))?;
        let items: Vec<String> = summary
            .items
            .iter()
            .map(|i| format!("{}:{}", i.line, i.status.as_str()))
            .collect();
        println!(
            "SUMMARY done={} failed={} run_elsewhere={} items={}",
            summary.done,
            summary.failed,
            summary.run_elsewhere,
            items.join(",")
        );
        return Ok(());
    }
    println!("NO-CRASH {result:?}");
    std::process::exit(3);
}

/// The persistent software key of an issue row (the parent reopens the same file).
pub fn softkey_device(dir: &str, line: u64) -> Result<BulkDevice, String> {
    let path = std::path::Path::new(dir).join(format!("line{line}.json"));
    let soft = SoftAuthenticator::open_persistent(path, SoftConfig::default())
        .map_err(|e| e.to_string())?;
    let t: Box<dyn Transport> = Box::new(SoftTransport::new(soft));
    Ok(BulkDevice {
        authenticator: Authenticator::new(t),
        transport: KeyTransport::Usb,
        can_reset_in_place: true,
        evidence: Default::default(),
    })
}

fn main() {
    if let Err(e) = run() {
        eprintln!("bulk_child: {e}");
        std::process::exit(2);
    }
}
