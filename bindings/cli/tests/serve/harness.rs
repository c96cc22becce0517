//! Processes for the `keysmith serve` tests: the Entra emulator in a child process (this
//! test binary re-run as its ignored `emulator_child` test), `keysmith serve run` with TLS
//! from a CA generated here, operator tokens from the emulator's token endpoint.

use std::io::{BufRead, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use entra_graph::emulator::{GroupFixture, TenantFixture, DEMO_PASSWORD};
use keysmith_testkit::{ADELE, ALEX, KIM, STANDARD_TEMPLATE};
use serde_json::{json, Value};

/// The keysmith API's app id URI (the audience of operator tokens).
pub const API: &str = "api://keysmith";
/// Admin.
pub const ADMIN: &str = ADELE;
/// Operator.
pub const OPERATOR: &str = ALEX;
/// Helpdesk.
pub const HELPDESK: &str = "meganb@contoso.onmicrosoft.com";
/// Auditor.
pub const AUDITOR: &str = "leeg@contoso.onmicrosoft.com";
/// A user with no role (the key holder).
pub const NOBODY: &str = KIM;

/// The tenant: the fresh one, with app roles assigned through `approle:` groups.
pub fn fixture() -> TenantFixture {
    let mut t = TenantFixture::fresh();
    let id_of = |upn: &str| {
        t.users
            .iter()
            .find(|u| u.user_principal_name.as_deref() == Some(upn))
            .map(|u| u.id.clone())
            .expect("fixture user")
    };
    let groups: Vec<GroupFixture> = [
        ("admin", ADMIN),
        ("operator", OPERATOR),
        ("helpdesk", HELPDESK),
        ("auditor", AUDITOR),
    ]
    .iter()
    .enumerate()
    .map(|(i, (role, upn))| GroupFixture {
        id: format!("00000000-0000-4000-8000-00000000000{i}"),
        display_name: format!("approle:{role}"),
        members: vec![id_of(upn)],
    })
    .collect();
    t.groups.extend(groups);
    t
}

/// A child process killed on drop.
pub struct Proc {
    /// The child.
    pub child: Child,
    stdin: Option<ChildStdin>,
}

impl Drop for Proc {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The emulator child and what it printed.
pub struct EmulatorProc {
    _proc: Proc,
    /// `connection_json` of the emulator.
    pub info: Value,
}

impl EmulatorProc {
    /// Starts the emulator in a child process.
    pub fn start() -> EmulatorProc {
        EmulatorProc::start_with_env(&[])
    }

    /// [`EmulatorProc::start`] with `env` in the child's environment
    /// (`KEYSMITH_TEST_APP_ROLES`: the server application's only permissions).
    pub fn start_with_env(env: &[(&str, &str)]) -> EmulatorProc {
        let exe = std::env::current_exe().expect("test binary");
        let mut child = Command::new(exe)
            .envs(env.iter().copied())
            .args([
                "--ignored",
                "--exact",
                "emulator_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(
                "KEYSMITH_TEST_FIXTURE",
                serde_json::to_string(&fixture()).unwrap(),
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn the emulator child");
        let out = child.stdout.take().expect("stdout");
        let stdin = child.stdin.take();
        let mut lines = BufReader::new(out).lines();
        let info = loop {
            let line = lines.next().expect("emulator child ended").expect("read");
            // libtest prints `test emulator_child ... ` before it on the same line.
            if let Some(i) = line.find("EMULATOR ") {
                break serde_json::from_str::<Value>(&line[i + 9..]).expect("emulator json");
            }
        };
        EmulatorProc {
            _proc: Proc { child, stdin },
            info,
        }
    }

    pub fn s(&self, k: &str) -> String {
        self.info[k].as_str().expect(k).to_owned()
    }

    /// An access token for the keysmith API for `user` (roles from its groups), or for
    /// another API's audience.
    pub fn token_for(&self, user: &str, audience: &str) -> String {
        let r: Value = reqwest::blocking::Client::new()
            .post(self.s("token_url"))
            .form(&[
                ("grant_type", "password"),
                ("client_id", &self.s("client_id")),
                ("username", user),
                ("password", DEMO_PASSWORD),
                ("scope", &format!("{audience}/.default")),
            ])
            .send()
            .expect("token request")
            .json()
            .expect("token json");
        r["access_token"].as_str().expect("access_token").to_owned()
    }

    /// An operator token for `user`.
    pub fn token(&self, user: &str) -> String {
        self.token_for(user, API)
    }

    /// The passkeys the emulated Graph holds for `user`.
    pub fn passkeys_of(&self, user: &str) -> usize {
        let mut c = entra_graph::GraphConfig::new(self.s("tenant_id"));
        c.login_base = self.s("base_url");
        c.graph_base = self.s("base_url");
        c.version = entra_graph::ApiVersion::Beta;
        let client = entra_graph::GraphClient::new(
            c,
            entra_graph::auth::Credential::ClientSecret {
                client_id: self.s("client_id"),
                secret: entra_graph::auth::Secret::new(self.s("client_secret")),
            },
        )
        .expect("graph client");
        client.list_methods(user).expect("list methods").len()
    }

    /// The session configuration (JSON) on `repository`.
    pub fn session_config(&self, repository: Value) -> String {
        json!({
            "repository": repository,
            "pin_key": "07".repeat(32),
            "station": "server-test",
            "idp": [{
                "name": keysmith_testkit::CONNECTION,
                "tenant": self.s("tenant_id"),
                "client_id": self.s("client_id"),
                "client_secret": self.s("client_secret"),
                "graph_api_version": "beta",
                "login_base": self.s("base_url"),
                "graph_base": self.s("base_url"),
            }],
            "templates": [STANDARD_TEMPLATE],
            "allow_software_keys": true,
        })
        .to_string()
    }
}

/// The `keysmith` binary.
pub fn keysmith() -> Command {
    Command::new(env!("CARGO_BIN_EXE_keysmith"))
}

/// A test CA and a server certificate for 127.0.0.1 and localhost, as PEM files in
/// `dir`: (ca.pem, chain.pem, key.pem).
pub fn tls_files(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "keysmith test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let params =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let leaf = params.signed_by(&key, &issuer).unwrap();
    let (ca_pem, chain, key_pem) = (
        dir.join("ca.pem"),
        dir.join("chain.pem"),
        dir.join("key.pem"),
    );
    std::fs::write(&ca_pem, ca.pem()).unwrap();
    std::fs::write(&chain, format!("{}{}", leaf.pem(), ca.pem())).unwrap();
    std::fs::write(&key_pem, key.serialize_pem()).unwrap();
    (ca_pem, chain, key_pem)
}

/// A running `keysmith serve run` and an HTTPS client trusting the test CA.
pub struct ServerProc {
    _proc: Proc,
    /// `https://127.0.0.1:PORT`.
    pub base: String,
    /// The client.
    pub http: reqwest::blocking::Client,
    /// A client that keeps no idle connection, for requests after which the server closes.
    pub unpooled: reqwest::blocking::Client,
}

/// Writes a server config in `dir` (`name`.toml) and starts `keysmith serve run`.
pub fn start_server(
    dir: &Path,
    name: &str,
    emu: &EmulatorProc,
    session_json: &str,
    key: &Path,
) -> ServerProc {
    start_server_with(dir, name, emu, session_json, key, &[])
}

/// [`start_server`] with `env` added to the server's environment. Each node is its own
/// station (`serve-NAME`): a node restarted under the same name takes over its journal.
pub fn start_server_with(
    dir: &Path,
    name: &str,
    emu: &EmulatorProc,
    session_json: &str,
    key: &Path,
    env: &[(&str, &Path)],
) -> ServerProc {
    let (ca, chain, tls_key) = tls_files(dir);
    let session = dir.join(format!("{name}-session.json"));
    let mut session_value: Value = serde_json::from_str(session_json).unwrap();
    session_value["station"] = json!(format!("serve-{name}"));
    std::fs::write(&session, session_value.to_string()).unwrap();
    let config = dir.join(format!("{name}.toml"));
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\nsession_config = {session:?}\nserver_key = {key:?}\n\
             [tls]\ncert_chain = {chain:?}\nprivate_key = {tls_key:?}\n\
             [oidc]\nissuer = {iss:?}\naudience = {API:?}\njwks_url = {jwks:?}\n\
             [limits]\nrequest_timeout_s = 20\n",
            iss = emu.s("oidc_issuer"),
            jwks = emu.s("jwks_url"),
        ),
    )
    .unwrap();
    let mut child = keysmith()
        .args(["serve", "run", "--config"])
        .arg(&config)
        .envs(env.iter().map(|(k, v)| (*k, *v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn keysmith serve");
    let out = child.stdout.take().expect("stdout");
    let stdin = child.stdin.take();
    let mut line = String::new();
    BufReader::new(out).read_line(&mut line).expect("read");
    let addr = line
        .trim()
        .strip_prefix("listening on https://")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    let port = addr.rsplit(':').next().unwrap().to_owned();
    let ca_cert = reqwest::Certificate::from_pem(&std::fs::read(&ca).unwrap()).unwrap();
    let builder = || {
        reqwest::blocking::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(ca_cert.clone())
            .timeout(Duration::from_secs(30))
    };
    let http = builder().build().unwrap();
    let unpooled = builder().pool_max_idle_per_host(0).build().unwrap();
    ServerProc {
        _proc: Proc { child, stdin },
        base: format!("https://127.0.0.1:{port}"),
        http,
        unpooled,
    }
}

/// One response: status and JSON body (Null when not JSON).
pub struct Answer {
    /// Status.
    pub status: u16,
    /// Body.
    pub json: Value,
}

impl ServerProc {
    /// Kills the server with SIGKILL (as a crash would) and reaps it.
    pub fn kill(&mut self) {
        let _ = self._proc.child.kill();
        let _ = self._proc.child.wait();
    }

    /// `method path` with an optional bearer token and JSON body.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Answer {
        let url = format!("{}{path}", self.base);
        let mut rb = match method {
            "GET" => self.http.get(&url),
            _ => self.http.post(&url),
        };
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        if let Some(b) = body {
            rb = rb.json(b);
        }
        let r = rb.send().expect("request");
        let status = r.status().as_u16();
        let bytes = r.bytes().unwrap_or_default();
        Answer {
            status,
            json: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        }
    }
}

/// Writes `line` to stdout for the parent and waits until the parent closes stdin.
pub fn serve_child_until_stdin_closes(line: &str) {
    let mut out = std::io::stdout();
    writeln!(out, "{line}").unwrap();
    out.flush().unwrap();
    let mut sink = String::new();
    while std::io::stdin()
        .read_line(&mut sink)
        .map(|n| n > 0)
        .unwrap_or(false)
    {}
}
