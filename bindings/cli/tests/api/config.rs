//! One configuration (the facade's) in TOML and JSON; errors and exit codes as the
//! facade classifies them; the demo only in a build with the `demo` feature.

use entra_graph::emulator::{Emulator, EmulatorConfig};
use keysmith_facade::{ErrorKind, Session};

use super::cli::{env, path_str, USER};
use super::keysmith;

/// The same configuration as [`super::cli::toml_config`], as JSON.
fn json_config(emulator: &Emulator) -> String {
    serde_json::json!({
        "station": "test-station",
        "allow_software_keys": true,
        "pin_key_file": "host.key",
        "template_files": ["template.toml"],
        "repository": { "sqlite": "keysmith.db" },
        "idp": [{
            "name": "contoso-entra",
            "tenant": emulator.tenant_id(),
            "client_id": emulator.client_id(),
            "client_secret_env": "KEYSMITH_TEST_SECRET",
            "login_base": emulator.base_url(),
            "graph_base": emulator.base_url(),
            "graph_api_version": "beta",
        }],
    })
    .to_string()
}

#[test]
fn toml_and_json_configs_give_the_same_results() {
    let emulator = Emulator::start(EmulatorConfig::default()).unwrap();
    let e = env("formats", &emulator);
    let json_path = e.dir.join("keysmith.json");
    std::fs::write(&json_path, json_config(&emulator)).unwrap();
    let issued = e.json(
        &[
            "--json",
            "issue",
            "--template",
            "cli-standard",
            "--user",
            USER,
            "--serial",
            "FMT1",
        ],
        None,
    );
    let key = issued["key_id"].as_str().unwrap().to_owned();
    let with = |config: &std::path::Path, args: &[&str]| {
        keysmith()
            .arg("--config")
            .arg(config)
            .args(args)
            .env("KEYSMITH_TEST_SECRET", &e.secret)
            .output()
            .unwrap()
    };
    for args in [
        vec!["--json", "show", key.as_str()],
        vec!["--json", "list"],
        vec!["--json", "templates"],
        vec!["--json", "list", "--user", USER],
    ] {
        let from_toml = with(&e.config, &args);
        let from_json = with(&json_path, &args);
        assert!(from_toml.status.success(), "{args:?}: {from_toml:?}");
        assert_eq!(from_toml.status.code(), from_json.status.code(), "{args:?}");
        assert_eq!(
            String::from_utf8_lossy(&from_toml.stdout),
            String::from_utf8_lossy(&from_json.stdout),
            "{args:?}"
        );
    }
    // The file's extension decides; a file without one is read by its content.
    let bare = e.dir.join("keysmith-config");
    std::fs::write(&bare, json_config(&emulator)).unwrap();
    let out = with(&bare, &["--json", "templates"]);
    assert!(out.status.success(), "{out:?}");
    // An unknown field is a usage error naming it, in either format.
    std::fs::write(
        &bare,
        "pin_key_file = \"host.key\"\nrepository = { sqlite = \"k.db\" }\nbogus = 1\n",
    )
    .unwrap();
    let out = with(&bare, &["show", "k"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bogus"));
    let _ = std::fs::remove_dir_all(&e.dir);
}

#[test]
fn an_unknown_key_is_the_facades_usage_error_with_exit_2() {
    let emulator = Emulator::start(EmulatorConfig::default()).unwrap();
    let e = env("unknown", &emulator);
    // The facade itself, opened on the same repository.
    let db = e.dir.join("keysmith.db");
    let session = Session::open(
        &serde_json::json!({
            "repository": { "sqlite": path_str(&db) },
            "pin_key": "11".repeat(32),
        })
        .to_string(),
    )
    .unwrap();
    let expected = session.key("no-such-key").unwrap_err();
    assert_eq!(expected.kind, ErrorKind::Usage);

    let out = e.run(&["--json", "show", "no-such-key"], None);
    assert_eq!(out.status.code(), Some(expected.kind.cli_exit_code()));
    assert_eq!(out.status.code(), Some(2));
    let err: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(err["error"]["kind"], "usage");
    assert_eq!(err["error"]["reason"], expected.reason);
    assert_eq!(err["error"]["message"], expected.message.as_str());
    assert_eq!(err["error"]["exit_code"], 2);
    let out = e.run(&["revoke", "no-such-key"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&expected.message));
    let _ = std::fs::remove_dir_all(&e.dir);
}

/// A build without the `demo` feature says so and exits 2 (this test runs in that
/// build: `cargo test -p keysmith-cli`).
#[cfg(not(feature = "demo"))]
#[test]
fn demo_without_the_feature_is_a_usage_error() {
    let out = keysmith().arg("demo").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("this build has no demo; build with --features demo"));
}

/// Without the `demo` feature the dependency graph has no emulator: no
/// `entra-graph/emulator` and no hyper server (hyper stays, as reqwest's HTTP client).
#[test]
fn the_default_build_has_no_emulator() {
    let out = std::process::Command::new(env!("CARGO"))
        .args([
            "tree",
            "--offline",
            "-p",
            "keysmith-cli",
            "--no-default-features",
        ])
        .args(["-e", "normal,features", "--prefix", "none"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8_lossy(&out.stdout);
    assert!(tree.contains("keysmith-facade"), "{tree}");
    assert!(!tree.contains("entra-graph feature \"emulator\""), "{tree}");
    assert!(!tree.contains("hyper feature \"server\""), "{tree}");
}
