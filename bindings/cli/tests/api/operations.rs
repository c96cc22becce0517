//! The operations the facade has that the old CLI lacked: sign-in, reissue, issue with
//! the holder present, self-service issuance and PIN set, journal replay.

use std::time::Duration;

use entra_graph::emulator::{Emulator, EmulatorConfig, HolderTokenOptions};

use super::cli::{env, path_str, USER};

const PIN: &str = "holder-pin-1357\n";

#[test]
fn sign_in_reissue_and_journal_replay_through_the_binary() {
    let emulator = Emulator::start(EmulatorConfig::default()).unwrap();
    let e = env("ops", &emulator);
    // The config's template, resetting the key before (re)issuance.
    let text = std::fs::read_to_string(&e.template).unwrap();
    std::fs::write(
        &e.template,
        format!("{text}\n[credential.fido2]\nreset_before_issuance = true\n"),
    )
    .unwrap();
    let tpl = path_str(&e.template).to_owned();
    // Issue with the holder at the desk (`--activate`): their PIN is set at once. This
    // template registers the passkeys at activation, so the key is issued and then
    // activated in the same command: it ends active (it once stayed `issued`, which the
    // help's "set the holder's PIN at once" did not say).
    let k = e.json(
        &[
            "--json",
            "issue",
            "--template",
            &tpl,
            "--user",
            USER,
            "--serial",
            "OPS1",
            "--activate",
            "--pin-stdin",
        ],
        Some(PIN),
    );
    assert_eq!(k["state"], "active", "{k}");
    let key = k["key_id"].as_str().unwrap().to_owned();
    let listed = e.run(&["--json", "list"], None);
    assert!(String::from_utf8_lossy(&listed.stdout).contains(&key));
    // `list` into a reader that stops after the first line: no panic, a quiet exit.
    let listed = e.run(&["--json", "list"], None);
    assert!(String::from_utf8_lossy(&listed.stdout).contains(&key));
    let mut list = super::keysmith()
        .arg("--config")
        .arg(&e.config)
        .args(["--json", "list"])
        .env("KEYSMITH_TEST_SECRET", &e.secret)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(list.stdout.take());
    let out = list.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert!(out.status.success(), "{err}");

    let signed = e.json(&["--json", "sign-in", &key, "--pin-stdin"], Some(PIN));
    let signed = signed.as_array().unwrap();
    assert_eq!(signed.len(), 1);
    assert_eq!(signed[0]["passkey_template"], "entra");
    // Credential ids are base64url (no padding) in every result, as in C and Python.
    let cred = signed[0]["credential_id"].as_str().unwrap();
    assert!(cred.len() >= 16, "{cred}");
    assert!(
        cred.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "{cred}"
    );
    let shown = e.json(&["--json", "show", &key], None);
    assert_eq!(shown["passkeys"][0]["credential_id"], cred);
    let out = e.run(&["sign-in", &key, "--pin-stdin"], Some(PIN));
    assert!(String::from_utf8_lossy(&out.stdout).contains("verified: passkey entra"));

    // A wrong PIN is the key's refusal: a device error (3).
    let out = e.run(
        &["--json", "sign-in", &key, "--pin-stdin"],
        Some("wrong-pin-0000\n"),
    );
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let err: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(err["error"]["kind"], "device");

    assert!(e
        .json(&["--json", "journal", "replay"], None)
        .as_array()
        .unwrap()
        .is_empty());

    let inactive = e.json(&["--json", "inactivate", &key], None);
    assert_eq!(inactive["state"], "inactive");
    let reissued = e.json(&["--json", "reissue", &key, "--user", USER], None);
    assert_eq!(reissued["state"], "issued", "{reissued}");
    let audit = e.json(&["--json", "audit", &key], None);
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["detail"] == "reissue"),
        "{audit}"
    );
    let _ = std::fs::remove_dir_all(&e.dir);
}

const PORTAL: &str = "keysmith-self-service-portal";

fn self_service_template(emulator: &Emulator) -> String {
    format!(
        r#"
[passkey.entra]
idp = {{ connection = "contoso-entra", kind = "entra", graph_api_version = "beta" }}
display_name = "{{displayName}} key {{serial}}"
truncate_display_name = true
rp_id = "login.microsoft.com"
challenge_timeout_minutes = 60

[credential]
name = "cli-self-service"
passkey_templates = ["entra"]
user_assignment = {{ directory = "contoso-entra" }}

[credential.self_service]
pin_set_allowed = true
self_issuance_allowed = true
issue_by_user = true

[credential.self_service.oidc]
issuer = "{issuer}"
audience = "{PORTAL}"
jwks_url = "{jwks}"
"#,
        issuer = emulator.oidc_issuer(),
        jwks = emulator.jwks_url(),
    )
}

#[test]
fn self_issue_through_the_binary() {
    let emulator = Emulator::start(EmulatorConfig::default()).unwrap();
    let e = env("self", &emulator);
    let tpl = e.dir.join("self.toml");
    std::fs::write(&tpl, self_service_template(&emulator)).unwrap();
    // The holder's sign-in starts with a nonce the ID token must carry.
    let start = e.json(&["--json", "self", "begin"], None);
    let nonce = start["nonce"].as_str().expect("nonce").to_owned();
    assert!(start["expires_at_ms"].as_u64().is_some(), "{start}");
    let token = emulator
        .holder_token_with(&HolderTokenOptions {
            lifetime: Duration::from_secs(600),
            ..HolderTokenOptions::new(USER, PORTAL).nonce(nonce.clone())
        })
        .unwrap();
    let token_file = e.dir.join("id-token");
    std::fs::write(&token_file, &token).unwrap();
    let issue = |serial: &str, nonce: &str| {
        e.run(
            &[
                "--json",
                "self",
                "issue",
                "--template",
                path_str(&tpl),
                "--nonce",
                nonce,
                "--id-token-file",
                path_str(&token_file),
                "--serial",
                serial,
                "--pin-stdin",
            ],
            Some("self-pin-24680\n"),
        )
    };
    let out = issue("SELF1", &nonce);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let k: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // The same token again: refused as a replay, exit code 2, the reason as data.
    let out = issue("SELF2", &nonce);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("\"token_replayed\""), "{text}");
    assert_eq!(k["state"], "active", "{k}");
    // Without a nonce, or without a token: a usage error naming what is missing.
    let out = e.run(&["self", "set-pin", k["key_id"].as_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--nonce"));
    let out = e.run(
        &[
            "self",
            "set-pin",
            k["key_id"].as_str().unwrap(),
            "--nonce",
            "n",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--id-token-file"));
    let _ = std::fs::remove_dir_all(&e.dir);
}

#[test]
fn repository_check_passes_then_reports_damage() {
    let emulator = Emulator::start(EmulatorConfig::default()).unwrap();
    let e = env("repo-check", &emulator);
    let out = e.run(&["repository", "check"], None);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(stdout.contains("repository ok"), "{stdout}");
    let ok = e.json(&["--json", "repository", "check"], None);
    assert_eq!(ok["ok"], true, "{ok}");
    // The repository is private: 0600 in its folder.
    let db = e.dir.join("keysmith.db");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&db).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);

    // Noise over a page of the closed database (its WAL was checkpointed on close).
    let mut bytes = std::fs::read(&db).unwrap();
    assert!(bytes.len() >= 4 * 4096, "{}", bytes.len());
    for (i, b) in bytes[2 * 4096..3 * 4096].iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(151).wrapping_add(7);
    }
    std::fs::write(&db, &bytes).unwrap();
    let out = e.run(&["repository", "check"], None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{out:?}");
    assert!(stderr.contains("damaged"), "{stderr}");
    let out = e.run(&["--json", "list"], None);
    assert_eq!(out.status.code(), Some(5), "any command refuses: {out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("repository_damaged")
            || String::from_utf8_lossy(&out.stderr).contains("repository_damaged"),
        "{out:?}"
    );
}
