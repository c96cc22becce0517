//! The world a run needs: the Entra emulator (in this process, Graph-sized throttling),
//! a test CA and server certificate, the server key, `keysmith serve` nodes as child
//! processes, operator tokens, and what `/proc` says about a process.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use entra_graph::emulator::{
    Emulator, EmulatorConfig, GroupFixture, TenantFixture, ThrottleConfig, DEMO_PASSWORD,
};
use keysmith_testkit::{ADELE, ALEX, STANDARD_TEMPLATE};
use serde_json::{json, Value};

/// The keysmith API's app id URI (the audience of operator tokens).
pub const API: &str = "api://keysmith";
/// The admin (app role through an `approle:admin` group).
pub const ADMIN: &str = ADELE;
/// The operator.
pub const OPERATOR: &str = ALEX;

/// The UPN of synthetic holder `i`.
pub fn holder_upn(i: usize) -> String {
    format!("load-{i:05}@contoso.onmicrosoft.com")
}

/// The tenant: the fresh one, app roles through `approle:` groups, and `holders`
/// synthetic users.
pub fn fixture(holders: usize) -> TenantFixture {
    let mut t = TenantFixture::fresh();
    let id_of = |t: &TenantFixture, upn: &str| {
        t.users
            .iter()
            .find(|u| u.user_principal_name.as_deref() == Some(upn))
            .map(|u| u.id.clone())
            .expect("fixture user")
    };
    let groups = [("admin", ADMIN), ("operator", OPERATOR)]
        .iter()
        .enumerate()
        .map(|(i, (role, upn))| GroupFixture {
            id: format!("00000000-0000-4000-8000-00000000000{i}"),
            display_name: format!("approle:{role}"),
            members: vec![id_of(&t, upn)],
        })
        .collect::<Vec<_>>();
    t.groups.extend(groups);
    let template = t.users[0].clone();
    for i in 0..holders {
        let mut u = template.clone();
        let upn = holder_upn(i);
        u.id = format!("10000000-0000-4000-8000-{i:012}");
        u.display_name = Some(format!("Load Holder {i}"));
        u.user_principal_name = Some(upn.clone());
        u.mail = Some(upn);
        u.given_name = Some("Load".into());
        u.surname = Some(format!("Holder{i}"));
        u.employee_id = Some(format!("L{i:06}"));
        t.users.push(u);
    }
    t
}

/// Starts the emulator with `holders` synthetic users; with `throttle`, Graph's
/// documented small-tenant bucket (3,500 per 10 s) for every request and its write
/// quota (3,000 per 150 s) for writes, and `latency` added to every Graph answer.
pub fn emulator(holders: usize, throttle: bool, latency: Duration) -> Emulator {
    let emu = Emulator::start(EmulatorConfig {
        tenant: fixture(holders),
        ..EmulatorConfig::default()
    })
    .expect("start the emulator");
    if throttle {
        emu.set_throttle(Some(ThrottleConfig::documented_small_tenant()));
        emu.set_write_throttle(Some(ThrottleConfig::documented_writes()));
    }
    emu.set_latency(latency);
    emu
}

/// The session configuration (JSON) of a server node on `repository`, with holder
/// self-service against the emulator's OIDC.
pub fn session_config(emu: &Emulator, repository: Value, station: &str) -> String {
    let template = format!(
        "{STANDARD_TEMPLATE}\n[credential.self_service]\npin_set_allowed = true\n\
         oidc = {{ issuer = {iss:?}, audience = {aud:?}, jwks_url = {jwks:?} }}\n",
        iss = emu.oidc_issuer(),
        aud = emu.client_id(),
        jwks = emu.jwks_url(),
    );
    json!({
        "repository": repository,
        "pin_key": "07".repeat(32),
        "station": station,
        "idp": [keysmith_testkit::idp_config(emu)],
        "templates": [template],
        "allow_software_keys": true,
    })
    .to_string()
}

/// An operator token for `user` (roles from its `approle:` groups).
pub fn token(emu: &Emulator, user: &str) -> String {
    let r: Value = reqwest::blocking::Client::new()
        .post(emu.token_url())
        .form(&[
            ("grant_type", "password"),
            ("client_id", emu.client_id()),
            ("username", user),
            ("password", DEMO_PASSWORD),
            ("scope", &format!("{API}/.default")),
        ])
        .send()
        .expect("token request")
        .json()
        .expect("token json");
    r["access_token"].as_str().expect("access_token").to_owned()
}

/// The `keysmith` binary: `KEYSMITH_BIN`, else beside this program (`target/release`).
pub fn keysmith_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("KEYSMITH_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current exe");
    let p = exe.with_file_name("keysmith");
    if !p.exists() {
        eprintln!(
            "server-load: {} not found: build it first with \
             `cargo build --release -p keysmith-cli --bin keysmith` (or set KEYSMITH_BIN)",
            p.display()
        );
        std::process::exit(2);
    }
    p
}

/// A test CA and a server certificate for 127.0.0.1, as PEM files in `dir`:
/// (ca.pem, chain.pem, key.pem).
pub fn tls_files(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let ca_key = rcgen::KeyPair::generate().expect("CA key");
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "keysmith load CA");
    let ca = ca_params.self_signed(&ca_key).expect("CA cert");
    let key = rcgen::KeyPair::generate().expect("leaf key");
    let params =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .expect("leaf");
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let leaf = params.signed_by(&key, &issuer).expect("leaf cert");
    let (ca_pem, chain, key_pem) = (
        dir.join("ca.pem"),
        dir.join("chain.pem"),
        dir.join("key.pem"),
    );
    std::fs::write(&ca_pem, ca.pem()).expect("write");
    std::fs::write(&chain, format!("{}{}", leaf.pem(), ca.pem())).expect("write");
    std::fs::write(&key_pem, key.serialize_pem()).expect("write");
    (ca_pem, chain, key_pem)
}

/// Makes the server key in `dir` (`keysmith serve init-key`) and returns its path, the
/// public key and its fingerprint (hex).
pub fn server_key(dir: &Path) -> (PathBuf, keysmith_wire::PublicKey, String) {
    let key = dir.join("server-key.pem");
    let out = Command::new(keysmith_bin())
        .args(["serve", "init-key", "--key"])
        .arg(&key)
        .output()
        .expect("keysmith serve init-key");
    assert!(out.status.success(), "init-key: {out:?}");
    let pem = std::fs::read_to_string(&key).expect("read the server key");
    let public = keysmith_wire::SigningKey::from_pkcs8_pem(&pem)
        .expect("server key")
        .public_key();
    let fp = hex_digest(&public.to_sec1());
    (key, public, fp)
}

fn hex_digest(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    base16ct::lower::encode_string(&sha2::Sha256::digest(bytes))
}

/// An HTTPS client trusting the run's CA.
pub fn client(ca: &Path) -> reqwest::blocking::Client {
    let ca_cert = reqwest::Certificate::from_pem(&std::fs::read(ca).expect("read ca")).expect("ca");
    reqwest::blocking::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca_cert)
        .timeout(Duration::from_secs(60))
        .build()
        .expect("http client")
}

/// A running `keysmith serve run` node.
pub struct Node {
    child: Child,
    /// `https://127.0.0.1:PORT`.
    pub base: String,
}

impl Node {
    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes a server config in `dir` and starts a node; limits are raised so that only the
/// load decides (per-agent and per-source limits would refuse a load generator on one
/// address).
pub fn start_node(
    dir: &Path,
    name: &str,
    emu: &Emulator,
    repository: &Value,
    key: &Path,
    tls: &(PathBuf, PathBuf, PathBuf),
) -> Node {
    let session = dir.join(format!("{name}-session.json"));
    std::fs::write(
        &session,
        session_config(emu, repository.clone(), &format!("serve-{name}")),
    )
    .expect("write");
    let config = dir.join(format!("{name}.toml"));
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\nsession_config = {session:?}\nserver_key = {key:?}\n\
             [tls]\ncert_chain = {chain:?}\nprivate_key = {tls_key:?}\n\
             [oidc]\nissuer = {iss:?}\naudience = {API:?}\njwks_url = {jwks:?}\n\
             [limits]\nrequest_timeout_s = 60\nenrolments_per_minute_per_source = 100000\n\
             sessions_per_minute_per_agent = 1000000\n\
             session_messages_per_minute_per_source = 100000000\nmax_flows = 20000\n",
            chain = tls.1,
            tls_key = tls.2,
            iss = emu.oidc_issuer(),
            jwks = emu.jwks_url(),
        ),
    )
    .expect("write");
    let log = std::fs::File::create(dir.join(format!("{name}.log"))).expect("log file");
    let mut child = Command::new(keysmith_bin())
        .args(["serve", "run", "--config"])
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .spawn()
        .expect("spawn keysmith serve");
    let out = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(out).read_line(&mut line).expect("read");
    let addr = line
        .trim()
        .strip_prefix("listening on https://")
        .unwrap_or_else(|| {
            panic!(
                "keysmith serve: unexpected first line {line:?} (log: {})",
                dir.join(format!("{name}.log")).display()
            )
        })
        .to_owned();
    let port = addr.rsplit(':').next().expect("port").to_owned();
    Node {
        child,
        base: format!("https://127.0.0.1:{port}"),
    }
}

/// CPU time (user + system) of process `pid` so far, including its ended threads
/// (`/proc/PID/stat`, clock ticks).
pub fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
    // utime is field 14, stime 15 (1-based); `rest` starts at field 3.
    let total = ticks(11) + ticks(12);
    #[cfg(unix)]
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    // The bench reads /proc, so it measures on Linux only; elsewhere it still builds.
    #[cfg(not(unix))]
    let hz = 100u64;
    Duration::from_nanos(total.saturating_mul(1_000_000_000) / hz)
}

/// CPU time of the live threads of `pid`, nanosecond resolution
/// (`/proc/PID/task/*/schedstat`): for per-message deltas.
pub fn thread_cpu_ns(pid: u32) -> u64 {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| std::fs::read_to_string(e.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// `VmRSS` and `VmHWM` (peak) of `pid`, in kB.
pub fn rss_kb(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|r| r.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Online CPUs.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The machine, for the table's heading.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|r| r.trim_start_matches([' ', '\t', ':']).to_owned())
            })
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("MemTotal:")?
                    .split_whitespace()
                    .next()?
                    .parse::<u64>()
                    .ok()
            })
        })
        .unwrap_or(0);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    format!(
        "{} x {cpu}, {:.0} GiB, load average at start {}",
        cores(),
        mem as f64 / 1024.0 / 1024.0,
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    )
}

/// A fresh directory under `target/server-load/NAME-PID`.
pub fn run_dir(name: &str) -> PathBuf {
    let base = std::env::var_os("SERVER_LOAD_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target/server-load"));
    let d = base.join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("create the run directory");
    let d = d.canonicalize().expect("run directory");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let _ = std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700));
    }
    d
}

/// What PostgreSQL at `url` runs with: `fsync` and `synchronous_commit`.
pub fn pg_durability(url: &str) -> String {
    match postgres::Client::connect(url, postgres::NoTls) {
        Ok(mut c) => {
            let show = |c: &mut postgres::Client, what: &str| {
                c.query_one(&format!("SHOW {what}"), &[])
                    .map(|r| r.get::<_, String>(0))
                    .unwrap_or_else(|_| "?".into())
            };
            let f = show(&mut c, "fsync");
            let s = show(&mut c, "synchronous_commit");
            format!("fsync={f}, synchronous_commit={s}")
        }
        Err(e) => format!("unknown ({e})"),
    }
}
