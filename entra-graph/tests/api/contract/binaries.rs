//! The `entra-emulator` and `graph-bench` binaries, run as child processes.

use super::*;

fn spawn_binary(args: &[&str]) -> (std::process::Child, serde_json::Value) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_entra-emulator"))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    (child, serde_json::from_str(&line).unwrap())
}

fn client_from_json(v: &serde_json::Value) -> GraphClient {
    let base = v["base_url"].as_str().unwrap().to_owned();
    let mut cfg = entra_graph::GraphConfig::new(v["tenant_id"].as_str().unwrap());
    cfg.login_base = base.clone();
    cfg.graph_base = base;
    assert_eq!(v["token_url"].as_str().unwrap(), cfg.token_url());
    GraphClient::new(
        cfg,
        Credential::ClientSecret {
            client_id: v["client_id"].as_str().unwrap().into(),
            secret: v["client_secret"].as_str().unwrap().into(),
        },
    )
    .unwrap()
}

#[test]
fn emulator_binary_prints_working_connection_json() {
    let (mut child, v) = spawn_binary(&["--listen", "127.0.0.1:0"]);
    let result = client_from_json(&v).check_connection();
    let _ = child.kill();
    let _ = child.wait();
    result.unwrap();
}

#[test]
fn emulator_binary_with_fixture_file_and_fixed_credentials() {
    let path = format!(
        "{}/tests/fixtures/tenant-small.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let (mut child, v) = spawn_binary(&[
        "--listen",
        "127.0.0.1:0",
        "--fixtures",
        &path,
        "--client-id",
        "ci-app",
        "--client-secret",
        "ci-secret",
        "--page-size",
        "1",
    ]);
    let c = client_from_json(&v);
    let users = c.search_users("", 10);
    let members = c.group_members("11bb11bb-0000-4000-8000-000000000001");
    let policy = c.fido2_policy();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(v["tenant_id"], "aaaabbbb-0000-cccc-1111-dddd2222eeee");
    assert_eq!(v["client_id"], "ci-app");
    assert_eq!(v["client_secret"], "ci-secret");
    assert_eq!(users.unwrap().len(), 2);
    assert_eq!(
        members.unwrap()[0].user_principal_name.as_deref(),
        Some("sam@example.onmicrosoft.com")
    );
    let policy = policy.unwrap();
    assert_eq!(
        policy.key_restrictions.unwrap().enforcement_type,
        Some(EnforcementType::Allow)
    );
}

#[test]
fn bench_binary_small_run() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_graph-bench"))
        .args([
            "--n",
            "120",
            "--latency-ms",
            "1",
            "--rate",
            "200",
            "--burst",
            "40",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("deleted 120 of 120"), "{text}");
    assert!(text.contains("ideal bound"), "{text}");
}
