//! The `keysmith` binary as a user runs it.

use std::process::Command;

fn keysmith() -> Command {
    Command::new(env!("CARGO_BIN_EXE_keysmith"))
}

#[test]
fn demo_walks_the_whole_lifecycle_and_exits_zero() {
    let dir = std::env::temp_dir().join(format!("keysmith-cli-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("demo.db");
    let out = keysmith()
        .args(["demo", "--db"])
        .arg(&db)
        .output()
        .expect("run keysmith demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    for expected in [
        "central issuance",
        "verified: passkey entra",
        "cancelled as expected",
        "key is still active",
        "key is revoked; passkeys at the IdP: 0",
        "== repository ==",
        "== IdP (Entra emulator) ==",
        "demo finished",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
    // The repository file is real and holds the audit log.
    assert!(db.exists());
    assert!(stdout.contains("revoke       failure"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn template_check_lists_every_problem_with_its_field() {
    let dir = std::env::temp_dir().join(format!("keysmith-cli-tpl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.toml");
    std::fs::write(
        &bad,
        "[passkey.e]\nidp = { connection = \"c\" }\ndisplay_name = \"{bogus}\"\nchallenge_timeout_minutes = 99999\n\n[credential]\nname = \"x\"\npasskey_templates = [\"e\", \"missing\"]\nuser_assignment = { directory = \"c\" }\n",
    )
    .unwrap();
    let out = keysmith()
        .args(["template", "check"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for field in [
        "credential.passkey_templates:",
        "passkey.e.challenge_timeout_minutes:",
        "passkey.e.display_name:",
    ] {
        assert!(stderr.contains(field), "missing {field} in:\n{stderr}");
    }

    let good = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../lifecycle/templates/entra-standard.toml"
    );
    let out = keysmith()
        .args(["template", "check", good])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn unknown_command_is_a_usage_error() {
    let out = keysmith().arg("frobnicate").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("usage:"));
}
