//! Delegated registration as real processes (issue 19 item 3): `keysmith serve` whose
//! Graph application may only read, a holder's `keysmith agent self-issue` that signs the
//! holder in with a Graph scope and registers the passkey through `/me` with the holder's
//! own token. The server never holds a token that could write the passkey, and the agent
//! sends the holder's Graph token nowhere but Graph.

use keysmith_testkit::{TempDir, KIM, STANDARD_NAME, STANDARD_TEMPLATE};
use serde_json::{json, Value};

use super::harness::{start_server, EmulatorProc};
use super::split::{agent, agent_config, holder_run, run_ok};

/// The server application's only permissions: reads.
const READ_ONLY: &str = "User.Read.All,GroupMember.Read.All,Policy.Read.AuthenticationMethod,\
UserAuthMethod-Passkey.Read.All,UserAuthenticationMethod.Read.All";

#[test]
fn a_holder_self_issues_through_me_while_the_server_may_only_read() {
    let dir = TempDir::new("split-delegated");
    let emu = EmulatorProc::start_with_env(&[("KEYSMITH_TEST_APP_ROLES", READ_ONLY)]);
    // A blank software key, self-issued at the holder's desk: no reset first.
    let standard = STANDARD_TEMPLATE.replace(
        "reset_before_issuance = true",
        "reset_before_issuance = false",
    );
    let template = format!(
        "{standard}\n[credential.self_service]\nself_issuance_allowed = true\n\
         registration = \"delegated\"\n\
         oidc = {{ issuer = {iss:?}, audience = {aud:?}, jwks_url = {jwks:?} }}\n",
        iss = emu.s("oidc_issuer"),
        aud = emu.s("client_id"),
        jwks = emu.s("jwks_url"),
    );
    let db = dir.join("keysmith.db");
    let mut session: Value =
        serde_json::from_str(&emu.session_config(json!({ "sqlite": db }))).unwrap();
    session["templates"] = json!([template]);
    let key_file = crate::init_key(&dir);
    let s = start_server(&dir, "node", &emu, &session.to_string(), &key_file);
    let fp = crate::server_fingerprint(&key_file);
    let cfg = agent_config(&dir, "holder", &s, &fp, &emu);
    // The holder's agent sends the delegated token to the emulated Graph only.
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str(&format!("graph_url = {:?}\n", emu.s("base_url")));
    std::fs::write(&cfg, text).unwrap();
    let mut enrol = agent(&cfg);
    enrol.arg("enroll");
    run_ok(enrol);

    let device = format!("softkey:{}", dir.join("key.json").display());
    let forbidden = [emu.s("client_secret"), "sqlite".to_owned()];
    let out = holder_run(
        &cfg,
        &[
            "self-issue",
            "--device",
            &device,
            "--template",
            STANDARD_NAME,
        ],
        KIM,
        &forbidden.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    assert_eq!(out["outcome"], "job_ack", "{out}");
    assert_eq!(out["state"], "active", "{out}");
    assert_eq!(out["registered"], 1, "{out}");
    assert_eq!(emu.passkeys_of(KIM), 1, "the passkey is at Graph");
}
