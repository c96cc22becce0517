//! The split deployment as real processes on loopback: the Entra emulator, `keysmith
//! serve` (the server half: Graph credential and repository) and two `keysmith agent`
//! processes (device halves). An operator issues a key at a station agent; the holder, at
//! a second agent, signs in with OIDC at the emulator (authorization code + PKCE, the nonce
//! bound to the session) and sets their PIN; the passkey is registered; a sign-in check
//! verifies; revoke needs no agent. The agents hold no Graph secret and no database URL,
//! and the holder's PIN reaches nothing the server stores.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use keysmith_testkit::{TempDir, HOLDER_PIN, KIM, STANDARD_NAME, STANDARD_TEMPLATE};
use serde_json::{json, Value};

use super::harness::{
    keysmith, start_server, start_server_with, EmulatorProc, ServerProc, ADMIN, OPERATOR,
};

/// The standard template with holder self-service against the emulator's OIDC.
fn template(emu: &EmulatorProc) -> String {
    format!(
        "{STANDARD_TEMPLATE}\n[credential.self_service]\npin_set_allowed = true\n\
         oidc = {{ issuer = {iss:?}, audience = {aud:?}, jwks_url = {jwks:?} }}\n",
        iss = emu.s("oidc_issuer"),
        aud = emu.s("client_id"),
        jwks = emu.s("jwks_url"),
    )
}

/// The name of [`desk_template`].
pub(super) const DESK_NAME: &str = "test-desk";

/// The standard template activated at issuance: the holder, at the desk, sets the PIN in
/// the same session and the passkey is registered at once.
fn desk_template() -> String {
    STANDARD_TEMPLATE
        .replace(
            &format!("name = {STANDARD_NAME:?}"),
            &format!("name = {DESK_NAME:?}"),
        )
        .replace(
            "force_idp_deletion_on_revoke = true",
            "force_idp_deletion_on_revoke = true\nauto_initiate_after_issuance = true",
        )
}

pub(super) fn agent_config(
    dir: &Path,
    name: &str,
    s: &ServerProc,
    fp: &str,
    emu: &EmulatorProc,
) -> PathBuf {
    let home = dir.join(name);
    std::fs::create_dir_all(&home).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    let (class, station) = if name == "station" {
        ("station", "station = \"desk-1\"\n")
    } else {
        ("holder", "")
    };
    let text = format!(
        "server_url = {url:?}\nserver_key = {fp:?}\nserver_ca_file = {ca:?}\nclass = {class:?}\n\
         {station}key_file = {key:?}\n[oidc]\nissuer = {iss:?}\nclient_id = {cid:?}\n",
        url = s.base,
        ca = dir.join("ca.pem"),
        key = home.join("agent.pem"),
        iss = emu.s("oidc_issuer"),
        cid = emu.s("client_id"),
    );
    let path = home.join("agent.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// `keysmith agent --config CONFIG ARGS` with an environment that holds nothing but the
/// path (no Graph secret, no database URL can come from it).
pub(super) fn agent(config: &Path) -> Command {
    let mut c = keysmith();
    c.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .arg("agent")
        .arg("--config")
        .arg(config);
    c
}

pub(super) fn run_ok(mut c: Command) -> String {
    let out = c.output().expect("run agent");
    assert!(
        out.status.success(),
        "agent failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub(super) fn last_json(stdout: &str) -> Value {
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .expect("a JSON line");
    serde_json::from_str(line).expect("json")
}

/// A holder's command (`activate`, `verify`): the test is the holder's browser — it opens
/// the sign-in URL the agent shows (signing in as `user`), follows the redirect to the
/// agent's loopback listener — and types the PIN on the agent's stdin. Returns the final
/// JSON and what the agent's environment held while it ran.
/// Reads the agent's stderr up to the sign-in URL and plays the holder's browser: signs
/// in as `user` at the emulator and follows the redirect to the agent's loopback listener.
pub(super) fn browse_sign_in(err: &mut BufReader<std::process::ChildStderr>, user: &str) {
    let mut shown = Vec::new();
    let url = loop {
        let mut line = String::new();
        if err.read_line(&mut line).unwrap() == 0 {
            panic!("the agent ended before showing a sign-in URL: {shown:?}");
        }
        if let Some(u) = line.trim().strip_prefix("sign in at: ") {
            break u.to_owned();
        }
        shown.push(line);
    };
    let browser = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = browser
        .get(format!("{url}&login_hint={user}"))
        .send()
        .expect("authorize");
    assert_eq!(r.status().as_u16(), 302, "{}", r.text().unwrap_or_default());
    let back = r.headers()["location"].to_str().unwrap().to_owned();
    let r = browser.get(&back).send().expect("redirect to the agent");
    assert!(r.status().is_success(), "{}", r.status());
}

/// An activation whose agent is killed with SIGKILL while its job waits for the PIN.
fn killed_mid_job(config: &Path, device: &str, user: &str) {
    let mut child = agent(config)
        .args([
            "activate",
            "--device",
            device,
            "--pin-stdin",
            "--no-browser",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the holder's agent");
    let _stdin = child.stdin.take().unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    browse_sign_in(&mut err, user);
    // The probe ran; the PIN change job now waits for the PIN on stdin: kill it there.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    child.kill().unwrap();
    let _ = child.wait();
}

pub(super) fn holder_run(config: &Path, args: &[&str], user: &str, forbidden: &[&str]) -> Value {
    let mut child = agent(config)
        .args(args)
        .args(["--pin-stdin", "--no-browser"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the holder's agent");
    #[cfg(target_os = "linux")]
    {
        let env = std::fs::read(format!("/proc/{}/environ", child.id())).unwrap_or_default();
        let env = String::from_utf8_lossy(&env);
        for f in forbidden {
            assert!(!env.contains(f), "the agent's environment holds {f:?}");
        }
    }
    let mut stdin = child.stdin.take().unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    browse_sign_in(&mut err, user);
    writeln!(stdin, "{HOLDER_PIN}").unwrap();
    drop(stdin);
    let rest: Vec<String> = err.lines().map_while(Result::ok).collect();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "holder agent failed: {stdout}\n{rest:?}"
    );
    last_json(&stdout)
}

/// A split deployment with one key issued at a station agent: the server, the agents'
/// configurations (station approved, holder registered) and what they must never hold.
pub(super) struct Issued {
    /// The server (one node, SQLite).
    pub s: ServerProc,
    /// The server key's fingerprint (pinned by the agents).
    pub fp: String,
    /// The holder agent's configuration.
    pub holder_cfg: PathBuf,
    /// The station agent's configuration.
    pub station_cfg: PathBuf,
    /// The software key (`softkey:PATH`).
    pub device: String,
    /// The issued key.
    pub key_id: String,
    /// The station agent's id.
    pub station_id: String,
    /// Text no agent's configuration or environment may hold.
    pub forbidden: Vec<String>,
    /// The session configuration the server runs on.
    pub session_json: String,
    /// The server's key file.
    pub key_file: PathBuf,
}

/// Starts the server (with `env`), enrols a station and a holder agent, and issues a key
/// for Kim at the station: nothing is registered yet.
pub(super) fn issued_at_station(dir: &Path, emu: &EmulatorProc, env: &[(&str, &Path)]) -> Issued {
    let db = dir.join("keysmith.db");
    let mut session: Value =
        serde_json::from_str(&emu.session_config(json!({ "sqlite": db }))).unwrap();
    session["templates"] = json!([template(emu), desk_template()]);
    let session_json = session.to_string();
    let key_file = crate::init_key(dir);
    let s = start_server_with(dir, "node", emu, &session_json, &key_file, env);
    let fp = crate::server_fingerprint(&key_file);
    let station_cfg = agent_config(dir, "station", &s, &fp, emu);
    let holder_cfg = agent_config(dir, "holder", &s, &fp, emu);

    // What an agent must never hold.
    let forbidden: Vec<String> = vec![
        emu.s("client_secret"),
        "sqlite".into(),
        "postgres".into(),
        "pin_key".into(),
        db.to_str().unwrap().to_owned(),
    ];
    for cfg in [&station_cfg, &holder_cfg] {
        let text = std::fs::read_to_string(cfg).unwrap();
        for f in &forbidden {
            assert!(!text.contains(f.as_str()), "{} holds {f:?}", cfg.display());
        }
    }

    // Enrolment: the admin issues a code for the station and approves its fingerprint;
    // the holder's agent registers itself.
    let admin = emu.token(ADMIN);
    let a = s.call(
        "POST",
        "/v1/agents/enrolments",
        Some(&admin),
        Some(&json!({"station": "desk-1", "class": "station"})),
    );
    assert_eq!(a.status, 201, "{}", a.json);
    let code = a.json["code"].as_str().unwrap().to_owned();
    let mut enrol = agent(&station_cfg);
    enrol.args(["enroll", "--code", &code]);
    run_ok(enrol);
    let mut fpc = agent(&station_cfg);
    fpc.arg("fingerprint");
    let station_id = run_ok(fpc)
        .lines()
        .find_map(|l| l.strip_prefix("agent id").map(|r| r.trim().to_owned()))
        .expect("agent id");
    let a = s.call(
        "POST",
        &format!("/v1/agents/{station_id}/approve"),
        Some(&admin),
        None,
    );
    assert_eq!(a.status, 200, "{}", a.json);
    let mut enrol = agent(&holder_cfg);
    enrol.arg("enroll");
    run_ok(enrol);

    // The operator queues the issuance; the station agent takes it with the key attached.
    let device = format!("softkey:{}", dir.join("key.json").display());
    let operator = emu.token(OPERATOR);
    let a = s.call(
        "POST",
        &format!("/v1/agents/{station_id}/work"),
        Some(&operator),
        Some(&json!({"operation": "issue", "user": KIM, "template": STANDARD_NAME})),
    );
    assert_eq!(a.status, 201, "{}", a.json);
    let work_id = a.json["work_id"].as_str().unwrap().to_owned();
    let mut station = agent(&station_cfg);
    station.args(["run", "--device", &device, "--once", "--max-wait", "60"]);
    let issued = last_json(&run_ok(station));
    assert_eq!(issued["state"], "issued", "{issued}");
    let key_id = issued["key_id"].as_str().unwrap().to_owned();
    let a = s.call("GET", &format!("/v1/work/{work_id}"), Some(&operator), None);
    assert_eq!(a.json["state"], "done", "{}", a.json);
    assert_eq!(
        emu.passkeys_of(KIM),
        0,
        "nothing registered before activation"
    );

    Issued {
        s,
        fp,
        holder_cfg,
        station_cfg,
        device,
        key_id,
        station_id,
        forbidden,
        session_json,
        key_file,
    }
}

#[test]
fn operator_issues_at_a_station_agent_the_holder_activates_at_another_and_revoke_needs_none() {
    let dir = TempDir::new("split3");
    let emu = EmulatorProc::start();
    let Issued {
        s,
        holder_cfg,
        device,
        key_id,
        station_id,
        forbidden,
        ..
    } = issued_at_station(&dir, &emu, &[]);
    let forbidden: Vec<&str> = forbidden.iter().map(String::as_str).collect();
    let operator = emu.token(OPERATOR);

    // What the station can only claim (getInfo, the reset, the PIN policy, alwaysUv) is in
    // the key's audit as claimed by that agent, not as verified.
    let a = s.call("GET", &format!("/v1/keys/{key_id}"), Some(&operator), None);
    let claims: Vec<String> = a.json["audit"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["action"] == "device_claim")
        .map(|r| {
            assert_eq!(r["outcome"], "claimed", "{r}");
            assert_eq!(r["actor"], format!("agent:{station_id}"), "{r}");
            r["detail"].as_str().unwrap().to_owned()
        })
        .collect();
    for claim in [
        "getInfo: aaguid",
        "the key was reset",
        "minimum PIN length set to 8",
        "alwaysUv turned on",
    ] {
        assert!(
            claims.iter().any(|c| c.starts_with(claim)),
            "no {claim:?} claim in {claims:?}"
        );
    }

    // The holder's first attempt dies (kill -9) in the middle of its job, waiting for the
    // PIN: nothing is registered, the key stays issued, and the holder can start over.
    killed_mid_job(&holder_cfg, &device, KIM);
    assert_eq!(emu.passkeys_of(KIM), 0);
    let a = s.call("GET", &format!("/v1/keys/{key_id}"), Some(&operator), None);
    assert_eq!(a.json["key"]["state"], "issued", "{}", a.json);

    // The holder, at their own agent: sign-in, PIN, registration.
    let active = holder_run(
        &holder_cfg,
        &["activate", "--device", &device],
        KIM,
        &forbidden,
    );
    assert_eq!(
        (active["state"].as_str(), active["registered"].as_u64()),
        (Some("active"), Some(1)),
        "{active}"
    );
    assert_eq!(emu.passkeys_of(KIM), 1);
    // The killed attempt had its PIN-change job in flight (the transport PIN was released
    // to its session), the second one finished: two releases, one passkey.
    let a = s.call("GET", &format!("/v1/keys/{key_id}"), Some(&operator), None);
    let releases = a.json["audit"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            r["action"] == "transport_pin_release"
                && r["detail"]
                    .as_str()
                    .unwrap_or("")
                    .starts_with("activate job")
        })
        .count();
    assert_eq!(releases, 2, "{}", a.json);

    // A sign-in check verifies.
    let checked = holder_run(
        &holder_cfg,
        &["verify", "--key-id", &key_id, "--device", &device],
        KIM,
        &forbidden,
    );
    assert_eq!(checked["outcome"], "job_ack", "{checked}");

    // Revoke needs no agent.
    let a = s.call(
        "POST",
        &format!("/v1/keys/{key_id}/revoke"),
        Some(&operator),
        None,
    );
    assert_eq!(
        (a.status, a.json["state"].as_str()),
        (200, Some("revoked")),
        "{}",
        a.json
    );
    assert_eq!(emu.passkeys_of(KIM), 0);

    // The holder's PIN is nowhere in what the server stored (every session message is
    // kept there as evidence).
    for f in ["keysmith.db", "keysmith.db-wal"] {
        let bytes = std::fs::read(dir.join(f)).unwrap_or_default();
        assert!(
            !bytes
                .windows(HOLDER_PIN.len())
                .any(|w| w == HOLDER_PIN.as_bytes()),
            "the holder's PIN is in {f}"
        );
    }
}

/// Two `keysmith serve` nodes on one PostgreSQL serve one session alternately: every
/// message of a station's issuance goes to the other node than the one before. The flow
/// runs on the node that started it; the node receiving a job's result relays it through
/// the session row.
#[test]
fn two_nodes_on_postgres_serve_one_session_alternately() {
    use fido_transport::client::Authenticator;
    use fido_transport::softkey::{SoftAuthenticator, SoftConfig, SoftTransport};
    use keysmith_device::{DeviceConfig, DeviceSession, Event, HolderUi, HolderUiError, Prompt};
    use keysmith_wire::{Capabilities, HostClaim, OsEntropy, SigningKey};

    struct NoUi;
    impl HolderUi for NoUi {
        fn new_pin(
            &mut self,
            _: u32,
            _: bool,
        ) -> Result<zeroize::Zeroizing<String>, HolderUiError> {
            Err(HolderUiError::Unavailable)
        }
        fn holder_pin(&mut self) -> Result<zeroize::Zeroizing<String>, HolderUiError> {
            Err(HolderUiError::Unavailable)
        }
        fn prompt(&self, _: &Prompt) {}
    }

    let Some(url) = keysmith_testkit::pg_url("two keysmith serve nodes, one session") else {
        return;
    };
    let dir = TempDir::new("split-pg");
    let emu = EmulatorProc::start();
    let schema = format!(
        "split_{}_{}",
        std::process::id(),
        keysmith_testkit::now_ms()
    );
    let session_json = emu.session_config(json!({"postgres": url, "schema": schema}));
    let key_file = crate::init_key(&dir);
    let nodes = [
        start_server(&dir, "node-a", &emu, &session_json, &key_file),
        start_server(&dir, "node-b", &emu, &session_json, &key_file),
    ];
    let server_key = {
        let pem = std::fs::read_to_string(&key_file).unwrap();
        SigningKey::from_pkcs8_pem(&pem).unwrap().public_key()
    };

    // A station enrolled at node A, approved at node B.
    let admin = emu.token(ADMIN);
    let agent_key = SigningKey::generate();
    let code = crate::new_code(&nodes[0], &admin, "desk-7", 600);
    let pk = agent_key.public_key().to_sec1().to_vec();
    let b64 = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, &pk);
    let (st, j) = crate::station_enrol(&nodes[0], "desk-7", &code, &(pk, b64));
    assert_eq!(st, 202, "{j}");
    let agent_id = j["agent_id"].as_str().unwrap().to_owned();
    let a = nodes[1].call(
        "POST",
        &format!("/v1/agents/{agent_id}/approve"),
        Some(&admin),
        None,
    );
    assert_eq!(a.status, 200, "{}", a.json);
    let operator = emu.token(OPERATOR);
    let a = nodes[1].call(
        "POST",
        &format!("/v1/agents/{agent_id}/work"),
        Some(&operator),
        Some(&json!({"operation": "issue", "user": KIM, "template": STANDARD_NAME})),
    );
    assert_eq!(a.status, 201, "{}", a.json);

    // The device half, by hand: each message to the other node.
    let mut key = Authenticator::new(SoftTransport::new(
        SoftAuthenticator::new(SoftConfig::default()).unwrap(),
    ));
    let (mut session, hello) = DeviceSession::new(
        DeviceConfig {
            agent_key,
            server_keys: vec![server_key],
            caps: Capabilities {
                ctap_raw: true,
                can_reset_in_place: true,
                max_job_steps: 64,
                ..Default::default()
            },
            host: HostClaim {
                name: "desk-7".into(),
                os: "linux".into(),
                ..Default::default()
            },
            agent_version: "test".into(),
        },
        &mut OsEntropy,
    );
    let post = |node: &ServerProc, path: &str, body: Vec<u8>| {
        let r = node
            .http
            .post(format!("{}{path}", node.base))
            .header("content-type", "application/cose")
            .body(body)
            .send()
            .expect("session message");
        let status = r.status().as_u16();
        let loc = r
            .headers()
            .get("location")
            .map(|l| l.to_str().unwrap().to_owned());
        let bytes = r.bytes().unwrap().to_vec();
        assert!(
            status == 200 || status == 201,
            "{status}: {}",
            String::from_utf8_lossy(&bytes)
        );
        (loc, bytes)
    };
    let (loc, reply) = post(&nodes[0], "/v1/sessions", hello);
    let path = loc.expect("Location");
    assert_eq!(session.receive(&reply, 0).unwrap(), Event::Established);
    let mut msg = session
        .report(&mut key, "software", Some("SN-PG-1".into()), None)
        .unwrap();
    let mut turn = 1usize;
    let mut clock = 0u64;
    let mut asked = false;
    let mut jobs = 0;
    let ack = loop {
        let (_, reply) = post(&nodes[turn % 2], &path, msg.clone());
        turn += 1;
        clock += 1;
        match session.receive(&reply, clock).unwrap() {
            Event::Wait { .. } if !asked => {
                asked = true;
                msg = session.ready().unwrap();
            }
            Event::Job(_) => {
                jobs += 1;
                msg = session.run_job(clock, &mut key, &mut NoUi).unwrap();
            }
            Event::JobAck(ack) => break ack,
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(ack.state, "issued", "{ack:?}");
    assert!(
        jobs >= 2,
        "configure and make jobs, answered across both nodes"
    );
    let a = nodes[0].call(
        "GET",
        &format!("/v1/keys/{}", ack.key_id),
        Some(&operator),
        None,
    );
    assert_eq!(a.json["key"]["state"], "issued", "{}", a.json);
}
