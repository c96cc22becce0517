//! `keysmith demo --split` (cargo feature `demo`): the demo's flows through the split
//! deployment, as processes. The Entra emulator runs here (real HTTP on loopback); `keysmith
//! serve` (the server half: Graph credential, repository) and two `keysmith agent`
//! processes (device halves: an operator's station, the holder's computer) are started from
//! this binary. An operator queues an issuance for the station, the holder signs in with
//! OIDC at their agent and sets their PIN, the passkey is registered, a sign-in check
//! verifies and revoke needs no agent. The demo plays the operator (HTTPS calls with an
//! access token) and the holder's browser (it follows the sign-in URL the agent prints).
//! The credential template is the demo's, with holder self-service added.

use std::io::{BufRead, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::Duration;

use entra_graph::emulator::{Emulator, EmulatorConfig, GroupFixture, TenantFixture, DEMO_PASSWORD};
use rand_core::{OsRng, RngCore};
use serde_json::{json, Value};

const HOLDER: &str = "kim@contoso.onmicrosoft.com";
const ADMIN: &str = "adelev@contoso.onmicrosoft.com";
const OPERATOR: &str = "alexw@contoso.onmicrosoft.com";
/// The keysmith API's app id URI (the audience of operators' tokens).
const API: &str = "api://keysmith";
/// The holder's PIN (a demo value, shown on purpose).
const HOLDER_PIN: &str = "demo-pin-2468";

/// Runs the split demo; exit 0 when every step behaved as expected.
pub(crate) fn demo_split() -> ExitCode {
    match run() {
        Ok(()) => {
            println!("\nsplit demo finished: every step behaved as expected");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("\nsplit demo FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}

fn step(n: u32, text: &str) {
    println!("\n[{n}] {text}");
}

/// A child process, killed when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The tenant: the emulator's, with the keysmith API's app roles assigned through
/// `approle:` groups (admin: Adele, operator: Alex).
fn tenant() -> Result<TenantFixture, String> {
    let mut t = TenantFixture::fresh();
    let mut groups = Vec::new();
    for (i, (role, upn)) in [("admin", ADMIN), ("operator", OPERATOR)]
        .iter()
        .enumerate()
    {
        let id = t
            .users
            .iter()
            .find(|u| u.user_principal_name.as_deref() == Some(*upn))
            .map(|u| u.id.clone())
            .ok_or_else(|| format!("the emulator's tenant has no {upn}"))?;
        groups.push(GroupFixture {
            id: format!("00000000-0000-4000-8000-0000000000a{i}"),
            display_name: format!("approle:{role}"),
            members: vec![id],
        });
    }
    t.groups.extend(groups);
    Ok(t)
}

/// A CA and a certificate for 127.0.0.1 signed by it: (ca.pem, chain.pem, key.pem).
fn tls_files(dir: &Path) -> Result<(PathBuf, PathBuf, PathBuf), String> {
    let e = |e: rcgen::Error| format!("making the demo's TLS certificate: {e}");
    let ca_key = rcgen::KeyPair::generate().map_err(e)?;
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(e)?;
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "keysmith demo CA");
    let ca = ca_params.self_signed(&ca_key).map_err(e)?;
    let key = rcgen::KeyPair::generate().map_err(e)?;
    let params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).map_err(e)?;
    let leaf = params
        .signed_by(&key, &rcgen::Issuer::new(ca_params, ca_key))
        .map_err(e)?;
    let paths = (
        dir.join("ca.pem"),
        dir.join("chain.pem"),
        dir.join("tls-key.pem"),
    );
    write(&paths.0, &ca.pem())?;
    write(&paths.1, &format!("{}{}", leaf.pem(), ca.pem()))?;
    write(&paths.2, &key.serialize_pem())?;
    Ok(paths)
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("writing {}: {e}", path.display()))
}

fn keysmith() -> Result<Command, String> {
    let exe = std::env::current_exe().map_err(|e| format!("this program's path: {e}"))?;
    Ok(Command::new(exe))
}

/// Runs `cmd` to the end; its stdout, or an error with what it printed.
fn output(mut cmd: Command, what: &str) -> Result<String, String> {
    let out = cmd.output().map_err(|e| format!("{what}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{what} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The last JSON object a command printed.
fn last_json(stdout: &str, what: &str) -> Result<Value, String> {
    stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .and_then(|l| serde_json::from_str(l).ok())
        .ok_or_else(|| format!("{what} printed no JSON result: {stdout}"))
}

/// The operator's side: HTTPS calls to the server with an access token from the IdP.
struct Api {
    http: reqwest::blocking::Client,
    base: String,
    token_url: String,
    client_id: String,
}

impl Api {
    fn token(&self, user: &str) -> Result<String, String> {
        let r: Value = self
            .http
            .post(&self.token_url)
            .form(&[
                ("grant_type", "password"),
                ("client_id", self.client_id.as_str()),
                ("username", user),
                ("password", DEMO_PASSWORD),
                ("scope", &format!("{API}/.default")),
            ])
            .send()
            .and_then(reqwest::blocking::Response::json)
            .map_err(|e| format!("token for {user}: {e}"))?;
        r["access_token"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("no access token for {user}: {r}"))
    }

    fn call(&self, token: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        let url = format!("{}{path}", self.base);
        let rb = match body {
            Some(b) => self.http.post(&url).json(&b),
            None if path.ends_with("/revoke") || path.ends_with("/approve") => self.http.post(&url),
            None => self.http.get(&url),
        };
        let r = rb
            .bearer_auth(token)
            .send()
            .map_err(|e| format!("{path}: {e}"))?;
        let status = r.status();
        let v: Value = r.json().unwrap_or(Value::Null);
        if !status.is_success() {
            return Err(format!("{path}: {status}: {v}"));
        }
        Ok(v)
    }
}

fn agent_config(
    dir: &Path,
    name: &str,
    server: &str,
    fingerprint: &str,
    emulator: &Emulator,
) -> Result<PathBuf, String> {
    let home = dir.join(name);
    lifecycle::files::create_private_dir_all(&home)
        .map_err(|e| format!("creating {}: {e}", home.display()))?;
    let class = if name == "station" {
        "class = \"station\"\nstation = \"desk-1\"\n"
    } else {
        "class = \"holder\"\n"
    };
    let path = home.join("agent.toml");
    write(
        &path,
        &format!(
            "server_url = {server:?}\nserver_key = {fingerprint:?}\nserver_ca_file = {ca:?}\n\
             {class}key_file = {key:?}\n[oidc]\nissuer = {iss:?}\nclient_id = {cid:?}\n",
            ca = dir.join("ca.pem"),
            key = home.join("agent.pem"),
            iss = emulator.oidc_issuer(),
            cid = emulator.client_id(),
        ),
    )?;
    Ok(path)
}

/// `keysmith agent --config CONFIG`, with an environment that holds nothing but PATH.
fn agent(config: &Path) -> Result<Command, String> {
    let mut c = keysmith()?;
    c.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .arg("agent")
        .arg("--config")
        .arg(config);
    Ok(c)
}

/// A holder's command at their agent: the demo is the holder's browser (it opens the
/// sign-in URL the agent prints, signing in as the holder) and types the PIN.
fn as_holder(config: &Path, args: &[&str]) -> Result<Value, String> {
    let mut child = agent(config)?
        .args(args)
        .args(["--pin-stdin", "--no-browser"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("starting the holder's agent: {e}"))?;
    let mut stdin = child.stdin.take().ok_or("no stdin")?;
    let mut err = BufReader::new(child.stderr.take().ok_or("no stderr")?);
    let url = loop {
        let mut line = String::new();
        if err.read_line(&mut line).map_err(|e| e.to_string())? == 0 {
            let _ = child.wait();
            return Err("the holder's agent ended before showing a sign-in URL".into());
        }
        if let Some(u) = line.trim().strip_prefix("sign in at: ") {
            break u.to_owned();
        }
    };
    println!("    the agent asks the holder to sign in; the demo's browser signs in as {HOLDER}");
    let browser = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| e.to_string())?;
    let r = browser
        .get(format!("{url}&login_hint={HOLDER}"))
        .send()
        .map_err(|e| format!("sign-in: {e}"))?;
    let back = r
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .ok_or_else(|| format!("sign-in answered {} without a redirect", r.status()))?
        .to_owned();
    browser
        .get(&back)
        .send()
        .map_err(|e| format!("redirect to the agent: {e}"))?;
    writeln!(stdin, "{HOLDER_PIN}").map_err(|e| e.to_string())?;
    drop(stdin);
    let rest: Vec<String> = err.lines().map_while(Result::ok).collect();
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(format!(
            "the holder's agent failed: {stdout}{}",
            rest.join("\n")
        ));
    }
    last_json(&stdout, "the holder's agent")
}

fn run() -> Result<(), String> {
    step(
        0,
        "setting up: Entra emulator here, `keysmith serve` and two `keysmith agent` processes",
    );
    let emulator = Emulator::start(EmulatorConfig {
        tenant: tenant()?,
        ..EmulatorConfig::default()
    })
    .map_err(|e| format!("starting the Entra emulator: {e}"))?;
    println!("    Entra emulator on {}", emulator.base_url());
    let dir = crate::demo::private_temp_dir("keysmith-split-demo-")?;
    let (ca, chain, tls_key) = tls_files(&dir)?;
    let server_key = dir.join("server-key.pem");
    let mut init = keysmith()?;
    init.args(["serve", "init-key", "--key"]).arg(&server_key);
    output(init, "keysmith serve init-key")?;
    let mut print = keysmith()?;
    print.args(["serve", "print-key", "--key"]).arg(&server_key);
    let fingerprint = output(print, "keysmith serve print-key")?
        .lines()
        .find_map(|l| l.split("fingerprint: sha256:").nth(1).map(str::trim))
        .map(str::to_owned)
        .ok_or("print-key showed no fingerprint")?;
    let mut pin_key = [0u8; 32];
    OsRng.fill_bytes(&mut pin_key);
    let db = dir.join("keysmith.db");
    let session = json!({
        "repository": { "sqlite": db },
        "pin_key": base16ct::lower::encode_string(&pin_key),
        "station": "demo-server",
        "idp": [{
            "name": "contoso-entra",
            "tenant": emulator.tenant_id(),
            "client_id": emulator.client_id(),
            "client_secret": emulator.client_secret().unwrap_or_default(),
            "graph_api_version": "beta",
            "login_base": emulator.base_url(),
            "graph_base": emulator.base_url(),
        }],
        "templates": [format!(
            "{}\n[credential.self_service]\npin_set_allowed = true\n\
             oidc = {{ issuer = {iss:?}, audience = {aud:?}, jwks_url = {jwks:?} }}\n",
            crate::demo::DEMO_TEMPLATE,
            iss = emulator.oidc_issuer(),
            aud = emulator.client_id(),
            jwks = emulator.jwks_url(),
        )],
        "allow_software_keys": true,
    });
    let session_file = dir.join("session.json");
    write(&session_file, &session.to_string())?;
    let config = dir.join("server.toml");
    write(
        &config,
        &format!(
            "listen = \"127.0.0.1:0\"\nsession_config = {session_file:?}\n\
             server_key = {server_key:?}\n[tls]\ncert_chain = {chain:?}\nprivate_key = {tls_key:?}\n\
             [oidc]\nissuer = {iss:?}\naudience = {API:?}\njwks_url = {jwks:?}\n",
            iss = emulator.oidc_issuer(),
            jwks = emulator.jwks_url(),
        ),
    )?;
    let log = dir.join("serve.log");
    let log_file =
        std::fs::File::create(&log).map_err(|e| format!("creating {}: {e}", log.display()))?;
    let mut serve = keysmith()?;
    serve
        .args(["serve", "run", "--config"])
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log_file);
    let mut server = Proc(
        serve
            .spawn()
            .map_err(|e| format!("starting keysmith serve: {e}"))?,
    );
    let mut first = String::new();
    BufReader::new(server.0.stdout.take().ok_or("no stdout")?)
        .read_line(&mut first)
        .map_err(|e| e.to_string())?;
    let base = first
        .trim()
        .strip_prefix("listening on ")
        .ok_or_else(|| format!("keysmith serve did not start (see {})", log.display()))?
        .to_owned();
    println!("    keysmith serve on {base} (log: {})", log.display());
    println!(
        "    repository: SQLite file {} (the server's alone)",
        db.display()
    );
    let ca_cert = std::fs::read(&ca)
        .ok()
        .and_then(|pem| reqwest::Certificate::from_pem(&pem).ok())
        .ok_or("reading the demo CA")?;
    let api = Api {
        http: reqwest::blocking::Client::builder()
            .add_root_certificate(ca_cert)
            .timeout(Duration::from_secs(90))
            .build()
            .map_err(|e| e.to_string())?,
        base: base.clone(),
        token_url: emulator.token_url(),
        client_id: emulator.client_id().to_owned(),
    };

    step(
        1,
        "an admin enrols the operator's station; the holder's agent registers itself",
    );
    let admin = api.token(ADMIN)?;
    let code = api.call(
        &admin,
        "/v1/agents/enrolments",
        Some(json!({"station": "desk-1", "class": "station"})),
    )?;
    let code = code["code"].as_str().ok_or("no enrolment code")?.to_owned();
    let station_cfg = agent_config(&dir, "station", &base, &fingerprint, &emulator)?;
    let holder_cfg = agent_config(&dir, "holder", &base, &fingerprint, &emulator)?;
    let mut enrol = agent(&station_cfg)?;
    enrol.args(["enroll", "--code", &code]);
    output(enrol, "station enrolment")?;
    let mut fp = agent(&station_cfg)?;
    fp.arg("fingerprint");
    let station_id = output(fp, "station fingerprint")?
        .lines()
        .find_map(|l| l.strip_prefix("agent id").map(|r| r.trim().to_owned()))
        .ok_or("the station showed no agent id")?;
    api.call(&admin, &format!("/v1/agents/{station_id}/approve"), None)?;
    println!("    station desk-1 enrolled with a one-time code and approved ({station_id:.16}…)");
    let mut enrol = agent(&holder_cfg)?;
    enrol.arg("enroll");
    output(enrol, "holder agent registration")?;
    println!("    the holder's agent registered itself (holder agents need no approval)");
    for cfg in [&station_cfg, &holder_cfg] {
        let text = std::fs::read_to_string(cfg).map_err(|e| e.to_string())?;
        let secret = emulator.client_secret().unwrap_or_default();
        if text.contains(secret) || text.contains("sqlite") {
            return Err(format!("{} holds a server secret", cfg.display()));
        }
    }
    println!("    the agents' configurations hold no Graph secret and no database");

    step(
        2,
        "an operator queues an issuance for Kim; the station agent carries it out",
    );
    let device = format!("softkey:{}", dir.join("key.json").display());
    let operator = api.token(OPERATOR)?;
    let work = api.call(
        &operator,
        &format!("/v1/agents/{station_id}/work"),
        Some(json!({"operation": "issue", "user": HOLDER, "template": "demo-standard"})),
    )?;
    let mut station = agent(&station_cfg)?;
    station.args(["run", "--device", &device, "--once", "--max-wait", "60"]);
    let issued = last_json(&output(station, "the station agent")?, "the station agent")?;
    let key_id = issued["key_id"]
        .as_str()
        .ok_or_else(|| format!("no key id: {issued}"))?
        .to_owned();
    if issued["state"] != "issued" {
        return Err(format!("the station's issuance ended as {issued}"));
    }
    println!(
        "    work {} done: key {key_id} issued (reset, PIN policy, credential; nothing at Entra yet)",
        work["work_id"].as_str().unwrap_or("?")
    );

    step(
        3,
        "the holder activates at their own agent: OIDC sign-in, their PIN, registration",
    );
    let active = as_holder(&holder_cfg, &["activate", "--device", &device])?;
    if active["state"] != "active" || active["registered"] != 1 {
        return Err(format!("activation ended as {active}"));
    }
    println!(
        "    key {key_id} active, 1 passkey registered at Entra; the PIN never left the agent"
    );

    step(4, "a sign-in check at the holder's agent");
    let checked = as_holder(
        &holder_cfg,
        &["verify", "--key-id", &key_id, "--device", &device],
    )?;
    if checked["outcome"] != "job_ack" {
        return Err(format!("the sign-in check ended as {checked}"));
    }
    println!("    the assertion verified against the attested credential");

    step(5, "the operator revokes the key: no agent needed");
    let revoked = api.call(&operator, &format!("/v1/keys/{key_id}/revoke"), None)?;
    if revoked["state"] != "revoked" {
        return Err(format!("revoke ended as {revoked}"));
    }
    if emulator.method_count() != 0 {
        return Err("a passkey is left at Entra after revoke".into());
    }
    let details = api.call(&operator, &format!("/v1/keys/{key_id}"), None)?;
    let audit = details["audit"].as_array().map_or(0, Vec::len);
    println!("    key {key_id} revoked; its passkey deleted at Entra; {audit} audit records");
    for f in ["keysmith.db", "keysmith.db-wal"] {
        let bytes = std::fs::read(dir.join(f)).unwrap_or_default();
        if bytes
            .windows(HOLDER_PIN.len())
            .any(|w| w == HOLDER_PIN.as_bytes())
        {
            return Err(format!("the holder's PIN is in the server's {f}"));
        }
    }
    println!("    the holder's PIN is nowhere in the server's repository");
    drop(server);
    Ok(())
}
