//! Set-up shared by the lifecycle integration tests: an engine over SQLite talking to
//! the real Entra emulator on loopback and the crate's child programs; the clock,
//! temporary directories, Graph client, SIGKILL harness and own-process runner come from
//! `keysmith-testkit`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use entra_graph::emulator::Emulator;
use lifecycle::engine::{Engine, EngineBuilder};
use lifecycle::idp::EntraIdp;
use lifecycle::store::{PinKey, SqliteStore};

#[cfg(unix)]
pub use keysmith_testkit::run_until_crash_point;
pub use keysmith_testkit::{
    graph_client, in_own_process, now_ms, temp_dir, CONNECTION, KIM, KIM_ID,
};

/// An engine over the SQLite file `db`, with `emulator` as connection [`CONNECTION`] and
/// transport PINs sealed under a key of `pin_key_byte`s.
pub fn sqlite_engine(emulator: &Emulator, db: &Path, station: &str, pin_key_byte: u8) -> Engine {
    sqlite_engine_builder(emulator, db, station, pin_key_byte)
        .build()
        .expect("engine")
}

/// The builder of [`sqlite_engine`], for tests that add to it.
#[allow(dead_code)]
pub fn sqlite_engine_builder(
    emulator: &Emulator,
    db: &Path,
    station: &str,
    pin_key_byte: u8,
) -> EngineBuilder {
    let store = SqliteStore::open(db).expect("sqlite store");
    Engine::builder(
        Arc::new(store),
        PinKey::from_bytes([pin_key_byte; 32]),
        station,
    )
    .idp(Arc::new(EntraIdp::new(CONNECTION, graph_client(emulator))))
}

/// The path of the test child program `tests/bin/{name}.rs` (cargo's example
/// `fixture_{name}`), built with the examples by `cargo test` and rebuilt here when
/// missing or older than the crate's sources or the program's (a filtered run such as
/// `--test api crash` does not build the examples).
pub fn fixture_program(name: &str) -> PathBuf {
    let example = format!("fixture_{name}");
    let exe = std::env::current_exe().expect("test binary path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target profile directory");
    let program = profile_dir
        .join("examples")
        .join(format!("{example}{}", std::env::consts::EXE_SUFFIX));
    let built = program.metadata().and_then(|m| m.modified()).ok();
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let newest_source = newest_mtime(&manifest.join("src"))
        .into_iter()
        .chain(newest_mtime(&manifest.join("tests").join("bin")))
        .max();
    let stale = match (built, newest_source) {
        (Some(b), Some(s)) => b < s,
        _ => true,
    };
    if stale {
        let status = std::process::Command::new(env!("CARGO"))
            .args(["build", "-p", "lifecycle", "--example", &example])
            .status()
            .expect("cargo build of a child program");
        assert!(status.success(), "building tests/bin/{name}.rs failed");
    }
    program
}

/// The newest modification time of the files under `dir`.
fn newest_mtime(dir: &Path) -> Option<SystemTime> {
    let mut newest = None;
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        let t = if path.is_dir() {
            newest_mtime(&path)
        } else {
            entry.metadata().and_then(|m| m.modified()).ok()
        };
        newest = newest.max(t);
    }
    newest
}
