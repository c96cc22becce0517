//! The `keysmith` binary's diagnostics options: `--log-level`, `--log-file` and the
//! config file's `[log]` section.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use entra_graph::emulator::{Emulator, EmulatorConfig};
use keysmith_testkit::{run_with_stdin, TempDir};

use super::keysmith;

fn run(cmd: &mut Command, stdin: Option<&str>) -> Output {
    run_with_stdin(cmd, stdin)
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

#[cfg(feature = "demo")]
#[test]
fn log_flags_write_the_demo_to_a_file_without_secrets() {
    let dir = TempDir::new("cli-log-demo");
    let log = dir.join("logs").join("keysmith.log");
    let out = run(
        keysmith()
            .args(["--log-level", "debug", "--log-file"])
            .arg(&log)
            .args(["demo", "--db"])
            .arg(dir.join("demo.db")),
        None,
    );
    assert!(
        out.status.success(),
        "demo failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&log).expect("the log file was written");
    for expected in [
        "graph request",
        "flow{action=issue",
        "CTAP command",
        "request_id=",
    ] {
        assert!(text.contains(expected), "{expected:?} missing from the log");
    }
    // The demo holder PIN is printed on stdout on purpose, never logged.
    for secret in ["demo-pin-2468", "Bearer ", "eyJ"] {
        assert!(!text.contains(secret), "the log contains {secret:?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn config_log_section_applies_and_flags_override_it() {
    let emulator = Emulator::start(EmulatorConfig::default()).unwrap();
    let dir = TempDir::new("cli-log-config");
    std::fs::write(dir.join("host.key"), "11".repeat(32)).unwrap();
    // A host key file must be private (0600): keysmith refuses one others may read.
    std::fs::set_permissions(
        dir.join("host.key"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let logs = dir.join("logs");
    let config = dir.join("keysmith.toml");
    let write_config = |log_section: &str| {
        std::fs::write(
            &config,
            format!(
                "allow_software_keys = true\npin_key_file = \"host.key\"\nrepository = {{ sqlite = \"keysmith.db\" }}\n\n\
                 [[idp]]\nname = \"contoso-entra\"\ntenant = \"{}\"\nclient_id = \"{}\"\n\
                 client_secret_env = \"KEYSMITH_TEST_SECRET\"\nlogin_base = \"{}\"\ngraph_base = \"{}\"\n\n\
                 {log_section}",
                emulator.tenant_id(),
                emulator.client_id(),
                emulator.base_url(),
                emulator.base_url()
            ),
        )
        .unwrap();
    };
    // A relative directory is relative to the config file.
    write_config(
        "[log]\nlevel = \"debug\"\nformat = \"json\"\n\
         destination = { kind = \"file\", directory = \"logs\", file-name-pattern = \"ks-{date}.{pid}.log\", max-files = 3 }\n",
    );
    let softkey = format!("softkey:{}", dir.join("softkey.json").display());
    let cmd = |args: &[&str]| {
        let mut c = keysmith();
        c.arg("--config")
            .arg(&config)
            .args(["--device", &softkey])
            .args(args)
            .env(
                "KEYSMITH_TEST_SECRET",
                emulator.client_secret().unwrap_or_default(),
            );
        c
    };

    let out = run(
        &mut cmd(&["--json", "device", "set-pin", "--pin-stdin"]),
        Some("set-pin-7319\n"),
    );
    assert!(
        out.status.success(),
        "set-pin failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let files = files_in(&logs);
    assert_eq!(files.len(), 1, "{files:?}");
    let name = files[0].file_name().unwrap().to_str().unwrap().to_owned();
    assert!(
        name.starts_with("ks-20") && name.ends_with(".log"),
        "{name}"
    );
    let text = std::fs::read_to_string(&files[0]).unwrap();
    let records: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON lines"))
        .collect();
    assert!(records
        .iter()
        .any(|r| r["message"] == "clientPIN setPIN" && r["level"] == "DEBUG"));
    assert!(!text.contains("set-pin-7319"), "the PIN is in the log");

    // --log-level off overrides the section: the next run adds nothing.
    let out = run(
        &mut cmd(&["--log-level", "off", "--json", "device", "info"]),
        None,
    );
    assert!(out.status.success());
    let total: usize = files_in(&logs)
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap().lines().count())
        .sum();
    assert_eq!(total, records.len());

    // An invalid [log] section is a usage error naming the setting; with --json it is
    // the JSON error object on stdout, as every other error (it used to be text on
    // stderr: the fault campaign's cfg-log-level-bad).
    write_config("[log]\nlevel = \"info\"\ndirectives = \"lifecycle=loud\"\n");
    let out = run(&mut cmd(&["--json", "device", "info"]), None);
    assert_eq!(out.status.code(), Some(2));
    let err: serde_json::Value = serde_json::from_slice(&out.stdout).expect("a JSON error");
    assert_eq!(err["error"]["kind"], "usage", "{err}");
    let message = err["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("log.directives"), "{err}");
    let out = run(&mut cmd(&["device", "info"]), None);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("log.directives"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_log_flags_are_usage_errors() {
    let out = run(keysmith().args(["--log-level", "loud", "demo"]), None);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("log.level"));
    let out = run(keysmith().args(["demo", "--log-file"]), None);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--log-file needs a value"));
}
