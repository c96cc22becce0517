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
use lifecycle::engine::{Engine, EngineBuilder};
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

/// Spawns `command` with piped stdout, waits (up to `timeout` per line) until it prints a
/// line starting with `CRASH-POINT `, then kills it with SIGKILL and reaps it. Returns
/// every line it printed. Panics if the point was never reached or the child was not
/// killed by SIGKILL.
#[cfg(unix)]
pub fn run_until_crash_point(
    mut command: std::process::Command,
    timeout: std::time::Duration,
    what: &str,
) -> Vec<String> {
    use std::io::{BufRead, BufReader};
    use std::os::unix::process::ExitStatusExt;
    let mut child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .expect("spawn the child");
    let stdout = child.stdout.take().expect("child stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let reached = loop {
        match rx.recv_timeout(timeout) {
            Ok(line) => {
                let done = line.starts_with("CRASH-POINT ");
                seen.push(line);
                if done {
                    break true;
                }
            }
            Err(_) => break false,
        }
    };
    // SIGKILL: the child gets no chance to clean up.
    child.kill().expect("kill the child");
    let status = child.wait().expect("reap the child");
    assert!(reached, "the child never reached {what}: {seen:?}");
    assert_eq!(status.signal(), Some(9), "killed by SIGKILL: {status:?}");
    seen
}

/// Runs the ignored test `name` (its path in this binary) alone in a new process of
/// this test binary and fails when it fails: for tests that need a process to
/// themselves (the `tracing` subscriber is process-global).
#[allow(dead_code)]
pub fn in_own_process(name: &str) {
    let exe = std::env::current_exe().expect("test binary path");
    let out = std::process::Command::new(exe)
        .args([
            "--ignored",
            "--exact",
            name,
            "--nocapture",
            "--test-threads=1",
        ])
        .output()
        .expect("run the test binary");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{name} in its own process failed:\n{stdout}\n{stderr}"
    );
}
