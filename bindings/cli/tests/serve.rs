//! `keysmith serve` as real processes: the server over TLS from a generated CA, the
//! Entra emulator in another process minting operator access tokens with app roles.
//! Role enforcement, revoke reaching the IdP, agent enrolment, audit records, the body
//! limit, the committed OpenAPI document, and two server nodes on one PostgreSQL.
#![cfg(feature = "serve")]

mod serve {
    mod crash;
    mod delegated;
    pub mod harness;
    #[cfg(unix)]
    mod holder_ui;
    mod split;
}

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use keysmith_testkit::{TempDir, KIM, STANDARD_NAME};
use lifecycle::store::AuditQuery;
use serde_json::{json, Value};
use serve::harness::{
    keysmith, start_server, EmulatorProc, ServerProc, ADMIN, AUDITOR, HELPDESK, NOBODY, OPERATOR,
};

/// The emulator's process (run by the harness, never on its own).
#[test]
#[ignore = "the emulator child process of the serve tests"]
fn emulator_child() {
    let fixture = std::env::var("KEYSMITH_TEST_FIXTURE").expect("fixture");
    // A server application with only these permissions (comma-separated), when given.
    let apps = std::env::var("KEYSMITH_TEST_APP_ROLES")
        .map(|roles| {
            vec![entra_graph::emulator::AppRegistration {
                client_id: "3b0f7c2e-5d1a-4c8e-9f2b-6a4d8e1c0d42".into(),
                client_secret: Some("emulated-limited-app-secret".into()),
                certificates_pem: Vec::new(),
                roles: Some(roles.split(',').map(str::to_owned).collect()),
            }]
        })
        .unwrap_or_default();
    let config = entra_graph::emulator::EmulatorConfig {
        tenant: serde_json::from_str(&fixture).expect("fixture json"),
        apps,
        ..Default::default()
    };
    let emulator = entra_graph::emulator::Emulator::start(config).expect("emulator");
    serve::harness::serve_child_until_stdin_closes(&format!(
        "EMULATOR {}",
        emulator.connection_json()
    ));
}

/// A generated agent key: (public key bytes, base64url).
fn agent_key() -> (Vec<u8>, String) {
    let k = p256::ecdsa::SigningKey::random(&mut rand_core::OsRng);
    let pk = k
        .verifying_key()
        .to_encoded_point(false)
        .as_bytes()
        .to_vec();
    let b = URL_SAFE_NO_PAD.encode(&pk);
    (pk, b)
}

fn proof(code: &str, pk: &[u8]) -> String {
    let mut m = <Hmac<sha2::Sha256> as Mac>::new_from_slice(code.as_bytes()).unwrap();
    m.update(pk);
    URL_SAFE_NO_PAD.encode(m.finalize().into_bytes())
}

pub(crate) fn station_enrol(
    s: &ServerProc,
    station: &str,
    code: &str,
    pk: &(Vec<u8>, String),
) -> (u16, Value) {
    let a = s.call(
        "POST",
        "/v1/agents/enroll",
        None,
        Some(
            &json!({"class": "station", "station": station, "public_key": pk.1,
            "proof": proof(code, &pk.0), "host": {"name": "desk", "os": "linux"}}),
        ),
    );
    (a.status, a.json)
}

pub(crate) fn new_code(s: &ServerProc, admin: &str, station: &str, ttl: u64) -> String {
    let a = s.call(
        "POST",
        "/v1/agents/enrolments",
        Some(admin),
        Some(&json!({"station": station, "class": "station", "ttl_s": ttl})),
    );
    assert_eq!(a.status, 201, "{}", a.json);
    assert!(a.json["expires_at"].as_str().unwrap().ends_with('Z'));
    a.json["code"].as_str().unwrap().to_owned()
}

/// The fingerprint `keysmith serve print-key` prints for the server key in `key_file` (what
/// the agents pin).
pub(crate) fn server_fingerprint(key_file: &std::path::Path) -> String {
    let printed = keysmith()
        .args(["serve", "print-key", "--key"])
        .arg(key_file)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&printed.stdout);
    text.lines()
        .find_map(|l| l.split("fingerprint: sha256:").nth(1))
        .map(|f| f.trim().to_owned())
        .unwrap_or_else(|| panic!("no fingerprint in {text}"))
}

pub(crate) fn init_key(dir: &std::path::Path) -> std::path::PathBuf {
    let key = dir.join("server-key.pem");
    let out = keysmith()
        .args(["serve", "init-key", "--key"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    server_fingerprint(&key);
    // A second init must not overwrite the key.
    let again = keysmith()
        .args(["serve", "init-key", "--key"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(!again.status.success());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    key
}

/// Every operator endpoint refuses each role it does not name (403) and answers those it
/// names; no or a bad token is 401.
fn roles_are_enforced(s: &ServerProc, emu: &EmulatorProc) {
    let tokens: Vec<(&str, String)> = [
        ("admin", ADMIN),
        ("operator", OPERATOR),
        ("helpdesk", HELPDESK),
        ("auditor", AUDITOR),
        ("none", NOBODY),
    ]
    .iter()
    .map(|(r, u)| (*r, emu.token(u)))
    .collect();
    let body = json!({});
    // (method, path, body, roles allowed)
    let table: &[(&str, &str, Option<&Value>, &[&str])] = &[
        (
            "GET",
            "/v1/keys",
            None,
            &["operator", "helpdesk", "auditor"],
        ),
        (
            "GET",
            "/v1/keys/nope",
            None,
            &["operator", "helpdesk", "auditor"],
        ),
        ("GET", "/v1/keys/nope/audit", None, &["operator", "auditor"]),
        (
            "POST",
            "/v1/keys/nope/revoke",
            Some(&body),
            &["operator", "helpdesk"],
        ),
        (
            "POST",
            "/v1/keys/nope/inactivate",
            None,
            &["operator", "helpdesk"],
        ),
        ("POST", "/v1/keys/nope/retire", None, &["operator"]),
        ("POST", "/v1/keys/nope/unregister", None, &["operator"]),
        ("POST", "/v1/reconcile", Some(&body), &["operator"]),
        ("GET", "/v1/bulk/999", None, &["operator", "auditor"]),
        ("POST", "/v1/bulk/999/resume", None, &["operator"]),
        ("GET", "/v1/audit/verify", None, &["auditor", "operator"]),
        ("GET", "/v1/agents", None, &["admin"]),
        ("POST", "/v1/agents/enrolments", Some(&body), &["admin"]),
        (
            "POST",
            "/v1/agents/0000000000000000000000000000000000000000000000000000000000000000/approve",
            None,
            &["admin"],
        ),
    ];
    for (method, path, b, allowed) in table {
        let a = s.call(method, path, None, *b);
        assert_eq!(a.status, 401, "{method} {path} without a token: {}", a.json);
        let a = s.call(method, path, Some("not.a.token"), *b);
        assert_eq!(
            a.status, 401,
            "{method} {path} with a bad token: {}",
            a.json
        );
        for (role, token) in &tokens {
            let a = s.call(method, path, Some(token), *b);
            if allowed.contains(role) {
                assert_ne!(a.status, 403, "{method} {path} as {role}: {}", a.json);
                assert_ne!(a.status, 401, "{method} {path} as {role}: {}", a.json);
            } else {
                assert_eq!(a.status, 403, "{method} {path} as {role}: {}", a.json);
            }
        }
    }
    // A token for another API, and one signed with a key the issuer never published.
    let other = emu.token_for(OPERATOR, "api://another-app");
    assert_eq!(s.call("GET", "/v1/keys", Some(&other), None).status, 401);
    let a = s.call("GET", "/v1/keys", Some(&tokens[1].1), None);
    assert_eq!(a.status, 200, "{}", a.json);
    let mut forged = tokens[1].1.clone();
    forged.push('A'); // signature no longer verifies
    assert_eq!(s.call("GET", "/v1/keys", Some(&forged), None).status, 401);
}

fn enrolment_works(s: &ServerProc, emu: &EmulatorProc) -> String {
    let admin = emu.token(ADMIN);
    // Good code: pending until approved.
    let code = new_code(s, &admin, "desk-1", 600);
    let k1 = agent_key();
    let (st, j) = station_enrol(s, "desk-1", &code, &k1);
    assert_eq!(st, 202, "{j}");
    assert_eq!(j["status"], "pending");
    let id = j["agent_id"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 64);
    assert_eq!(j["fingerprint"].as_str().unwrap().replace(' ', ""), id);
    // Reused code, with another key.
    let (st, j) = station_enrol(s, "desk-1", &code, &agent_key());
    assert_eq!(st, 403, "reused code: {j}");
    // Wrong code.
    let (st, _) = station_enrol(s, "desk-1", "AAAA-BBBB-CCCC-DDDD-EEEE-FFFF", &agent_key());
    assert_eq!(st, 403);
    // Wrong station.
    let code2 = new_code(s, &admin, "desk-2", 600);
    let (st, _) = station_enrol(s, "desk-3", &code2, &agent_key());
    assert_eq!(st, 403);
    // Expired code.
    let code3 = new_code(s, &admin, "desk-4", 1);
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let (st, _) = station_enrol(s, "desk-4", &code3, &agent_key());
    assert_eq!(st, 403, "expired code");
    // The same key again.
    let code4 = new_code(s, &admin, "desk-1", 600);
    let (st, _) = station_enrol(s, "desk-1", &code4, &k1);
    assert_eq!(st, 409);
    // Holder class: approved at once, no code.
    let h = agent_key();
    let a = s.call(
        "POST",
        "/v1/agents/enroll",
        None,
        Some(&json!({"class": "holder", "public_key": h.1, "host": {"name": "pc"}})),
    );
    assert_eq!(a.status, 202, "{}", a.json);
    assert_eq!(a.json["status"], "approved");
    let holder_id = a.json["agent_id"].as_str().unwrap().to_owned();
    // Status without a token; approval and revocation by the admin.
    let a = s.call("GET", &format!("/v1/agents/{id}"), None, None);
    assert_eq!(
        (a.status, a.json["status"].as_str()),
        (200, Some("pending"))
    );
    let a = s.call(
        "POST",
        &format!("/v1/agents/{id}/approve"),
        Some(&admin),
        None,
    );
    assert_eq!(
        (a.status, a.json["status"].as_str()),
        (200, Some("approved")),
        "{}",
        a.json
    );
    assert_eq!(a.json["class"], "station");
    assert_eq!(a.json["station"], "desk-1");
    let a = s.call(
        "POST",
        &format!("/v1/agents/{id}/approve"),
        Some(&admin),
        None,
    );
    assert_eq!(a.status, 409);
    let a = s.call(
        "POST",
        &format!("/v1/agents/{holder_id}/revoke"),
        Some(&admin),
        None,
    );
    assert_eq!(
        (a.status, a.json["status"].as_str()),
        (200, Some("revoked"))
    );
    let a = s.call("GET", "/v1/agents", Some(&admin), None);
    let list = a.json.as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert!(list
        .iter()
        .any(|x| x["class"] == "holder" && x["status"] == "revoked"));
    id
}

/// Audit actions recorded for agents, as (action, outcome, actor) in order.
fn agent_audit(session_json: &str) -> Vec<(String, String, String)> {
    let session = keysmith_facade::Session::open(session_json).unwrap();
    session
        .store()
        .query_audit(&AuditQuery::default())
        .unwrap()
        .into_iter()
        .filter(|r| r.event.action.starts_with("agent_"))
        .map(|r| (r.event.action, r.event.outcome, r.event.actor))
        .collect()
}

/// Runs the keysmith CLI with `args` and `stdin`, expecting success; its JSON output.
fn cli(cfg: &std::path::Path, device: &str, args: &[&str], stdin: &str) -> Value {
    use std::io::Write as _;
    let mut child = keysmith()
        .arg("--config")
        .arg(cfg)
        .args(["--device", device, "--json"])
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{args:?}: {out:?}");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A key issued to Kim at a desk with the CLI and activated: one passkey at the IdP.
fn issue_key(dir: &std::path::Path, session_json: &str) -> String {
    const PIN: &str = "holder-pin-1357\n";
    let cfg = dir.join("issue-session.json");
    std::fs::write(&cfg, session_json).unwrap();
    let device = format!("softkey:{}", dir.join("key1").display());
    let k = cli(
        &cfg,
        &device,
        &[
            "issue",
            "--template",
            STANDARD_NAME,
            "--user",
            KIM,
            "--serial",
            "SRV1",
            "--activate",
            "--pin-stdin",
        ],
        PIN,
    );
    // `--activate`: issued and activated in the one command.
    assert_eq!(k["state"], "active", "{k}");
    k["key_id"].as_str().unwrap().to_owned()
}

#[test]
fn serve_enforces_roles_enrols_agents_and_revokes_through_the_idp() {
    let dir = TempDir::new("serve");
    let emu = EmulatorProc::start();
    let session_json = emu.session_config(json!({"sqlite": dir.join("keysmith.db")}));
    let key_file = init_key(&dir);
    let s = start_server(&dir, "node", &emu, &session_json, &key_file);

    roles_are_enforced(&s, &emu);

    // A key issued (by the CLI at a desk) to Kim, revoked by the helpdesk through the API.
    let key_id = issue_key(&dir, &session_json);
    assert_eq!(emu.passkeys_of(KIM), 1);
    let helpdesk = emu.token(HELPDESK);
    let a = s.call(
        "GET",
        &format!("/v1/keys?user={KIM}"),
        Some(&helpdesk),
        None,
    );
    assert_eq!(a.status, 200, "{}", a.json);
    assert_eq!(a.json.as_array().unwrap().len(), 1);
    let a = s.call(
        "POST",
        &format!("/v1/keys/{key_id}/revoke"),
        Some(&helpdesk),
        None,
    );
    assert_eq!(
        (a.status, a.json["state"].as_str()),
        (200, Some("revoked")),
        "{}",
        a.json
    );
    assert_eq!(emu.passkeys_of(KIM), 0, "the revocation reached the IdP");
    let a = s.call(
        "GET",
        &format!("/v1/keys/{key_id}"),
        Some(&emu.token(AUDITOR)),
        None,
    );
    assert_eq!(a.status, 200);
    let trail = a.json["audit"].as_array().unwrap();
    let last = trail.last().unwrap();
    assert_eq!(last["action"], "revoke");
    assert_eq!(
        last["actor"],
        format!("oidc:{HELPDESK}"),
        "the operator is the actor"
    );
    let a = s.call("GET", "/v1/audit/verify", Some(&emu.token(AUDITOR)), None);
    assert_eq!(a.status, 200, "{}", a.json);

    // Enrolment, and its audit records.
    let station_id = enrolment_works(&s, &emu);
    let audit = agent_audit(&session_json);
    let count = |action: &str, outcome: &str| {
        audit
            .iter()
            .filter(|(a, o, _)| a == action && o == outcome)
            .count()
    };
    assert_eq!(count("agent_enrolment_code", "success"), 4, "{audit:?}");
    assert_eq!(count("agent_enrolled", "success"), 2, "{audit:?}");
    assert_eq!(count("agent_enrolled", "refused"), 4, "{audit:?}");
    assert_eq!(count("agent_approved", "success"), 1, "{audit:?}");
    assert_eq!(count("agent_revoked", "success"), 1, "{audit:?}");
    assert!(audit
        .iter()
        .any(|(a, _, actor)| a == "agent_enrolled" && *actor == format!("agent:{station_id}")));
    assert!(audit
        .iter()
        .any(|(a, _, actor)| a == "agent_approved" && *actor == format!("oidc:{ADMIN}")));

    // Body limit: 1 MiB.
    let big = vec![0u8; 1024 * 1024 + 1];
    // A connection of its own: the server closes it after the 413, and a pooled client
    // could hand that closed connection to the next request (seen in CI as
    // `IncompleteMessage` on the request after this one).
    let r = s
        .unpooled
        .post(format!("{}/v1/sessions", s.base))
        .header("content-type", "application/cose")
        .body(big)
        .send();
    // The server answers 413 from the Content-Length and closes the connection: a client
    // still writing the body may see the connection closed instead of the answer.
    match r {
        Ok(r) => assert_eq!(r.status().as_u16(), 413),
        Err(e) => assert!(e.is_request() || e.is_body(), "{e:?}"),
    }
    let r = s
        .http
        .post(format!("{}/v1/sessions", s.base))
        .header("content-type", "application/cose")
        .body(vec![0u8; 16])
        .send()
        .unwrap();
    assert_eq!(
        r.status().as_u16(),
        400,
        "the coordinator refuses bytes that are no message"
    );
    let r = s
        .http
        .post(format!("{}/v1/sessions", s.base))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 415);

    // The served OpenAPI document is the committed one.
    let served: Value = s
        .http
        .get(format!("{}/v1/openapi.json", s.base))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let committed: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../docs/openapi.json"
        ))
        .unwrap(),
    )
    .unwrap();
    assert_eq!(
        served, committed,
        "docs/openapi.json drifted from the server"
    );
}

/// Two server processes on one PostgreSQL: an agent enrolled at one node is approved at
/// the other, and each node reports the other's changes.
#[test]
fn two_nodes_share_agents_through_postgres() {
    let Some(url) = keysmith_testkit::pg_url("two keysmith serve nodes") else {
        return;
    };
    let dir = TempDir::new("serve-pg");
    let emu = EmulatorProc::start();
    let schema = format!(
        "serve_{}_{}",
        std::process::id(),
        keysmith_testkit::now_ms()
    );
    let session_json = emu.session_config(json!({"postgres": url, "schema": schema}));
    let key_file = init_key(&dir);
    let a = start_server(&dir, "node-a", &emu, &session_json, &key_file);
    let b = start_server(&dir, "node-b", &emu, &session_json, &key_file);
    let admin = emu.token(ADMIN);
    // Code from node A, enrolment at node B (the code is derived from the shared key).
    let code = new_code(&a, &admin, "desk-9", 600);
    let k = agent_key();
    let (st, j) = station_enrol(&b, "desk-9", &code, &k);
    assert_eq!(st, 202, "{j}");
    let id = j["agent_id"].as_str().unwrap().to_owned();
    let r = a.call(
        "POST",
        &format!("/v1/agents/{id}/approve"),
        Some(&admin),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.json);
    let r = b.call("GET", &format!("/v1/agents/{id}"), None, None);
    assert_eq!(r.json["status"], "approved");
    let (st, _) = station_enrol(&a, "desk-9", &code, &agent_key());
    assert_eq!(st, 403, "the code was used at the other node");
    let r = b.call("GET", "/v1/audit/verify", Some(&emu.token(AUDITOR)), None);
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.json["ok"], true, "{}", r.json);
}

/// `keysmith demo --split`: the demo's flows through `keysmith serve` and two agent
/// processes, exit 0, each step reported.
#[cfg(feature = "demo")]
#[test]
fn demo_split_runs_the_flows_through_server_and_agent_processes() {
    let out = keysmith().args(["demo", "--split"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in [
        "station desk-1 enrolled with a one-time code and approved",
        "issued (reset, PIN policy, credential; nothing at Entra yet)",
        "active, 1 passkey registered at Entra",
        "the assertion verified against the attested credential",
        "revoked; its passkey deleted at Entra",
        "the holder's PIN is nowhere in the server's repository",
        "split demo finished",
    ] {
        assert!(stdout.contains(line), "missing {line:?} in:\n{stdout}");
    }
}
