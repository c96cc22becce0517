//! Set-up shared by the lifecycle integration tests: the clock, temporary directories,
//! and an engine over SQLite talking to the real Entra emulator on loopback.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use entra_graph::auth::{Credential, Secret};
use entra_graph::emulator::Emulator;
use entra_graph::{ApiVersion, GraphClient};
use lifecycle::engine::Engine;
use lifecycle::idp::EntraIdp;
use lifecycle::store::{PinKey, SqliteStore};

/// The emulator's first user and their object id.
pub const KIM: &str = "kim@contoso.onmicrosoft.com";
pub const KIM_ID: &str = "6e8a5a4e-5a0d-4e4c-9c8e-2f7c3d8a1b11";
/// The IdP connection name the test templates use.
pub const CONNECTION: &str = "contoso-entra";

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// A fresh directory under the system temp dir, unique per process and call time.
pub fn temp_dir(name: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "keysmith-{name}-{}-{}-{}",
        std::process::id(),
        now_ms(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// A Graph client for the emulator's app (client secret, beta endpoint).
pub fn graph_client(emulator: &Emulator) -> GraphClient {
    GraphClient::new(
        emulator.graph_config(ApiVersion::Beta),
        Credential::ClientSecret {
            client_id: emulator.client_id().to_owned(),
            secret: Secret::new(emulator.client_secret().unwrap_or_default()),
        },
    )
    .expect("graph client")
}

/// An engine over the SQLite file `db`, with `emulator` as connection [`CONNECTION`] and
/// transport PINs sealed under a key of `pin_key_byte`s.
pub fn sqlite_engine(emulator: &Emulator, db: &Path, station: &str, pin_key_byte: u8) -> Engine {
    let store = SqliteStore::open(db).expect("sqlite store");
    Engine::new(
        Arc::new(store),
        PinKey::from_bytes([pin_key_byte; 32]),
        station,
    )
    .with_idp(Arc::new(EntraIdp::new(CONNECTION, graph_client(emulator))))
}
