//! Test-only helpers shared by the keysmith crates' integration tests (a dev-dependency,
//! never published): the committed standard test template, temporary directories that
//! clean up after themselves, the wall clock and a test clock, the in-process Entra
//! emulator with the Graph and session configuration for it, software keys,
//! [`in_own_process`] for tests that need a process of their own,
//! [`run_until_crash_point`] for tests that kill a child at a step, and a used USB key
//! with the operator who replugs it ([`replug`]).
//!
//! The C test passes [`STANDARD_TEMPLATE`] to its C program; the Python tests read the
//! same file, `tests/testkit/templates/standard.toml`.

pub mod connect_proxy;
pub mod mds;
pub mod replug;

use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use entra_graph::auth::{Credential, Secret};
use entra_graph::emulator::{Emulator, EmulatorConfig};
use entra_graph::{ApiVersion, GraphClient};
use fido_transport::client::Authenticator;
use fido_transport::softkey::{SoftAuthenticator, SoftConfig, SoftTransport};

/// The standard test template (`tests/testkit/templates/standard.toml`): one Entra
/// passkey at connection [`CONNECTION`], reset before issuance, user verification always
/// on, a minimum PIN length of 8, the passkey deleted at the IdP on revoke.
pub const STANDARD_TEMPLATE: &str = include_str!("../templates/standard.toml");
/// The credential name in [`STANDARD_TEMPLATE`].
pub const STANDARD_NAME: &str = "test-standard";
/// The path of the standard test template's file.
pub const STANDARD_TEMPLATE_PATH: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/templates/standard.toml");

/// The IdP connection name the test templates use.
pub const CONNECTION: &str = "contoso-entra";
/// The emulator's first user.
pub const KIM: &str = "kim@contoso.onmicrosoft.com";
/// [`KIM`]'s object id at the emulator.
pub const KIM_ID: &str = "6e8a5a4e-5a0d-4e4c-9c8e-2f7c3d8a1b11";
/// Another of the emulator's users.
pub const ADELE: &str = "adelev@contoso.onmicrosoft.com";
/// Another of the emulator's users.
pub const ALEX: &str = "alexw@contoso.onmicrosoft.com";
/// Another of the emulator's users.
pub const MEGAN: &str = "meganb@contoso.onmicrosoft.com";
/// The key holder's PIN the tests set (long enough for the standard template).
pub const HOLDER_PIN: &str = "holder-pin-2468";

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// A clock for tests that pass `now` (milliseconds since the Unix epoch) explicitly:
/// starts at the wall clock and moves only when told to.
#[derive(Debug)]
pub struct TestClock {
    now: AtomicU64,
}

impl TestClock {
    /// A clock at the current wall-clock time.
    pub fn new() -> Self {
        Self::at(now_ms())
    }

    /// A clock at `now_ms`.
    pub fn at(now_ms: u64) -> Self {
        Self {
            now: AtomicU64::new(now_ms),
        }
    }

    /// The clock's time.
    pub fn now(&self) -> u64 {
        self.now.load(Ordering::SeqCst)
    }

    /// Moves the clock on by `by`; returns the new time.
    pub fn advance(&self, by: Duration) -> u64 {
        let ms = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        self.now.fetch_add(ms, Ordering::SeqCst).saturating_add(ms)
    }
}

impl Default for TestClock {
    fn default() -> Self {
        Self::new()
    }
}

/// A fresh directory under the system temp dir, removed with its contents on drop
/// unless the thread is panicking (a failed test's files stay for inspection).
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates `keysmith-{name}-{pid}-{ms}-{n}` under the system temp dir.
    pub fn new(name: &str) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "keysmith-{name}-{}-{}-{}",
            std::process::id(),
            now_ms(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&path).expect("temp dir");
        Self { path }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Keeps the directory after this value is gone; returns its path.
    pub fn keep(self) -> PathBuf {
        let me = std::mem::ManuallyDrop::new(self);
        me.path.clone()
    }
}

impl Deref for TempDir {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.path
    }
}

impl AsRef<Path> for TempDir {
    fn as_ref(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// The test PostgreSQL server's URL: `KEYSMITH_PG_URL` from the environment, else from the
/// workspace's `target/pg/env` (written by `scripts/pg-start.sh`, which `.ci/run` runs).
pub fn pg_url_from_env() -> Option<String> {
    let from_file = || {
        let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/pg/env");
        let text = std::fs::read_to_string(file).ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix("KEYSMITH_PG_URL="))
            .map(|s| s.trim().to_owned())
    };
    std::env::var("KEYSMITH_PG_URL")
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(from_file)
}

/// [`pg_url_from_env`] for a test that runs on PostgreSQL: `None` (the caller goes on
/// without it, and this prints SKIPPED naming `what`) when no server is named, except with
/// `CI` set, where a PostgreSQL test must not be skipped silently: that panics.
pub fn pg_url(what: &str) -> Option<String> {
    let url = pg_url_from_env();
    if url.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but KEYSMITH_PG_URL is not (and target/pg/env names no server)"
        );
        eprintln!("SKIPPED: {what} (no KEYSMITH_PG_URL)");
    }
    url
}

/// A fresh directory that is never removed (for tests that hand the path on): a kept
/// [`TempDir`].
pub fn temp_dir(name: &str) -> PathBuf {
    TempDir::new(name).keep()
}

/// The in-process Entra emulator on loopback and a temporary directory for the
/// repository and key files of one test.
#[derive(Debug)]
pub struct EmulatorWorld {
    /// The emulator (its default tenant, users and app unless configured otherwise).
    pub emulator: Emulator,
    /// The test's directory.
    pub dir: TempDir,
}

impl EmulatorWorld {
    /// The emulator with its default configuration and a directory named after `name`.
    pub fn start(name: &str) -> Self {
        Self::with_config(name, EmulatorConfig::default())
    }

    /// The emulator with `config` and a directory named after `name`.
    pub fn with_config(name: &str, config: EmulatorConfig) -> Self {
        Self {
            emulator: start_emulator(config),
            dir: TempDir::new(name),
        }
    }

    /// A Graph client for the emulator's app: see [`graph_client`].
    pub fn graph_client(&self) -> GraphClient {
        graph_client(&self.emulator)
    }

    /// The facade session's JSON configuration: see [`session_config`].
    pub fn session_config(&self, station: &str) -> String {
        session_config(&self.emulator, &self.dir, station)
    }

    /// The `softkey:` device spec of a persistent software key `name` in the directory.
    pub fn softkey_spec(&self, name: &str) -> String {
        softkey_spec(&self.dir, name)
    }
}

/// Starts the in-process emulator on loopback with `config`.
pub fn start_emulator(config: EmulatorConfig) -> Emulator {
    Emulator::start(config).expect("emulator")
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

/// The session configuration's entry for the emulator as IdP connection [`CONNECTION`]
/// (client secret, Graph beta).
pub fn idp_config(emulator: &Emulator) -> serde_json::Value {
    serde_json::json!({
        "name": CONNECTION,
        "tenant": emulator.tenant_id(),
        "client_id": emulator.client_id(),
        "client_secret": emulator.client_secret().unwrap_or_default(),
        "graph_api_version": "beta",
        "login_base": emulator.base_url(),
        "graph_base": emulator.base_url(),
    })
}

/// The facade session's JSON configuration: SQLite `keysmith.db` in `dir`, a PIN key of
/// `0x07` bytes, `station`, the emulator as [`idp_config`], [`STANDARD_TEMPLATE`] loaded,
/// software keys allowed (`allow_software_keys`).
pub fn session_config(emulator: &Emulator, dir: &Path, station: &str) -> String {
    serde_json::json!({
        "repository": { "sqlite": dir.join("keysmith.db").to_str().expect("utf-8 path") },
        "pin_key": "07".repeat(32),
        "station": station,
        "idp": [idp_config(emulator)],
        "templates": [STANDARD_TEMPLATE],
        "allow_software_keys": true,
    })
    .to_string()
}

/// A fresh in-memory software authenticator behind the CTAP client.
pub fn softkey() -> Authenticator<SoftTransport> {
    let soft = SoftAuthenticator::new(SoftConfig::default()).expect("softkey");
    Authenticator::new(SoftTransport::new(soft))
}

/// The `softkey:` device spec of a persistent software key in file `name` under `dir`.
pub fn softkey_spec(dir: &Path, name: &str) -> String {
    format!("softkey:{}", dir.join(name).display())
}

/// Runs the ignored test `name` (its path in the current test binary) alone in a new
/// process of this test binary and fails when it fails: for tests that need a process
/// to themselves (the `tracing` subscriber is process-global). The test itself is
/// `#[ignore]`d and a plain `#[test]` calls this with its name.
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

/// Runs `command` with piped stdin, stdout and stderr, writes `stdin` (when given) and
/// closes it, and waits for the output.
pub fn run_with_stdin(
    command: &mut std::process::Command,
    stdin: Option<&str>,
) -> std::process::Output {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the program");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("child stdin")
            .write_all(input.as_bytes())
            .expect("write the child's stdin");
    }
    drop(child.stdin.take());
    child.wait_with_output().expect("wait for the program")
}

/// Spawns `command` with piped stdout, waits (up to `timeout` per line) until it prints a
/// line starting with `CRASH-POINT `, then kills it with SIGKILL and reaps it. Returns
/// every line it printed. Panics if the point was never reached or the child was not
/// killed by SIGKILL.
#[cfg(unix)]
pub fn run_until_crash_point(
    mut command: std::process::Command,
    timeout: Duration,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_file_and_its_name_agree() {
        assert!(STANDARD_TEMPLATE.contains(&format!("name = \"{STANDARD_NAME}\"")));
        assert_eq!(
            std::fs::read_to_string(STANDARD_TEMPLATE_PATH).expect("template file"),
            STANDARD_TEMPLATE
        );
    }

    #[test]
    fn a_temp_dir_goes_on_drop_unless_kept() {
        let dir = TempDir::new("testkit");
        let path = dir.to_path_buf();
        std::fs::write(dir.join("f"), "x").expect("write");
        drop(dir);
        assert!(!path.exists());
        let kept = TempDir::new("testkit").keep();
        assert!(kept.exists());
        std::fs::remove_dir_all(kept).expect("clean up");
    }

    #[test]
    fn the_test_clock_moves_only_when_told() {
        let clock = TestClock::at(1_000);
        assert_eq!(clock.now(), 1_000);
        assert_eq!(clock.advance(Duration::from_secs(2)), 3_000);
        assert_eq!(clock.now(), 3_000);
    }
}
