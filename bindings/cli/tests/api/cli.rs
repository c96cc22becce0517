//! The `keysmith` binary as a user runs it.

use keysmith_testkit::{run_with_stdin, TempDir};

use super::keysmith;

#[cfg(feature = "demo")]
#[test]
fn demo_walks_the_whole_lifecycle_and_exits_zero() {
    let dir = TempDir::new("cli-demo");
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
        "a forged ID token is refused",
        "is active for 87d349ed-44d7-43e1-9a83-5f2406dee5bd; the holder's own PIN is set",
        "passkeys of adelev@contoso.onmicrosoft.com: 1",
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
    // The host key file: written through a temporary, 0600, nothing left beside it.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let key = dir.join("demo.db.pinkey");
        let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", key.display());
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".new"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }
    assert!(stdout.contains("revoke       failure"));
    audit_verify_passes_then_names_a_record_edited_with_sqlite3(&db);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue 10 item 7: `keysmith audit verify` on the demo database exits 0, and exits 5
/// naming the record after one audit row is edited with the `sqlite3` tool (past the
/// append-only trigger, as anyone with write access to the file can).
#[cfg(feature = "demo")]
fn audit_verify_passes_then_names_a_record_edited_with_sqlite3(db: &std::path::Path) {
    let mut config = db.as_os_str().to_owned();
    config.push(".toml");
    let verify = || {
        keysmith()
            .arg("--config")
            .arg(&config)
            .args(["audit", "verify"])
            .output()
            .expect("run keysmith audit verify")
    };
    let out = verify();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "stdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("audit log verified"), "{stdout}");
    // Adopting unauthenticated rows: nothing to adopt in a schema-6 database; once only.
    let adopt = || {
        keysmith()
            .arg("--config")
            .arg(&config)
            .args(["store", "adopt-unauthenticated-rows"])
            .output()
            .expect("run keysmith store adopt-unauthenticated-rows")
    };
    let first = adopt();
    let text = String::from_utf8_lossy(&first.stdout);
    assert!(
        first.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(text.contains("authenticated 0 pending"), "{text}");
    assert_eq!(
        adopt().status.code(),
        Some(5),
        "a second adoption is refused"
    );
    assert!(verify().status.success(), "the adoption record is chained");
    let edit = std::process::Command::new("sqlite3")
        .arg(db)
        .arg(
            "DROP TRIGGER audit_no_update; \
             UPDATE audit SET detail = coalesce(detail, '') || ' (edited)' WHERE id = 3;",
        )
        .output();
    match edit {
        Ok(o) => assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr)),
        Err(e) if std::env::var_os("CI").is_none() => {
            eprintln!("SKIPPED: the sqlite3 tool is not installed ({e})");
            return;
        }
        Err(e) => panic!("CI needs the sqlite3 tool: {e}"),
    }
    let out = verify();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "stderr:\n{stderr}");
    assert!(stderr.contains("record #3"), "{stderr}");
}

#[test]
fn template_check_lists_every_problem_with_its_field() {
    let dir = TempDir::new("cli-tpl");
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
        "/../../lifecycle/templates/entra-standard.toml"
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
    // With --json: the facade's template summary.
    let out = keysmith()
        .args(["--json", "template", "check", good])
        .output()
        .unwrap();
    assert!(out.status.success());
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(summary["passkey_templates"].is_array(), "{summary}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn unknown_command_is_a_usage_error() {
    let out = keysmith().arg("frobnicate").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("usage:"));
}

// ---- operator commands against a software key, SQLite and the in-process emulator ----

use entra_graph::emulator::{Emulator, EmulatorConfig, Fault, FaultRule};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

/// Not the standard test template (`keysmith_testkit::STANDARD_TEMPLATE`), on purpose:
/// no `[credential.fido2]` table, which the operations tests append to the file.
const TEMPLATE: &str = r#"
[passkey.entra]
idp = { connection = "contoso-entra", kind = "entra", graph_api_version = "beta" }
display_name = "{displayName} key {serial}"
truncate_display_name = true
rp_id = "login.microsoft.com"
challenge_timeout_minutes = 60

[credential]
name = "cli-standard"
passkey_templates = ["entra"]
user_assignment = { directory = "contoso-entra" }

[credential.lifecycle]
force_idp_deletion_on_revoke = true
"#;

pub(crate) const USER: &str = "kim@contoso.onmicrosoft.com";

/// The session configuration in TOML (relative paths: relative to the file).
pub(crate) fn toml_config(emulator: &Emulator) -> String {
    format!(
        "station = \"test-station\"\nallow_software_keys = true\npin_key_file = \"host.key\"\n\
         template_files = [\"template.toml\"]\n\n[repository]\nsqlite = \"keysmith.db\"\n\n\
         [[idp]]\nname = \"contoso-entra\"\ntenant = \"{}\"\nclient_id = \"{}\"\n\
         client_secret_env = \"KEYSMITH_TEST_SECRET\"\nlogin_base = \"{}\"\n\
         graph_base = \"{}\"\ngraph_api_version = \"beta\"\n",
        emulator.tenant_id(),
        emulator.client_id(),
        emulator.base_url(),
        emulator.base_url()
    )
}

pub(crate) struct Env {
    /// Removed on drop unless the test failed.
    pub(crate) dir: TempDir,
    pub(crate) config: PathBuf,
    pub(crate) template: PathBuf,
    pub(crate) softkey: String,
    pub(crate) secret: String,
}

pub(crate) fn env(name: &str, emulator: &Emulator) -> Env {
    let dir = TempDir::new(&format!("cli-{name}"));
    let template = dir.join("template.toml");
    std::fs::write(&template, TEMPLATE).unwrap();
    std::fs::write(dir.join("host.key"), "11".repeat(32)).unwrap();
    // A host key file must be private (0600): keysmith refuses one others may read.
    std::fs::set_permissions(
        dir.join("host.key"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let config = dir.join("keysmith.toml");
    std::fs::write(&config, toml_config(emulator)).unwrap();
    Env {
        softkey: format!("softkey:{}", dir.join("softkey.json").display()),
        secret: emulator.client_secret().unwrap_or_default().to_owned(),
        dir,
        config,
        template,
    }
}

impl Env {
    pub(crate) fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        run_with_stdin(
            keysmith()
                .arg("--config")
                .arg(&self.config)
                .args(["--device", &self.softkey])
                .args(args)
                .env("KEYSMITH_TEST_SECRET", &self.secret),
            stdin,
        )
    }

    pub(crate) fn json(&self, args: &[&str], stdin: Option<&str>) -> serde_json::Value {
        let out = self.run(args, stdin);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{args:?}: exit {:?}\nstdout:\n{stdout}\nstderr:\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_str(stdout.trim())
            .unwrap_or_else(|e| panic!("{args:?}: stdout is not one JSON object ({e}): {stdout}"))
    }
}

pub(crate) fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn issue_activate_show_list_revoke_through_the_binary() {
    let emulator = Emulator::start(EmulatorConfig::default()).unwrap();
    let e = env("flow", &emulator);

    let issued = e.json(
        &[
            "--json",
            "issue",
            "--template",
            path_str(&e.template),
            "--user",
            USER,
            "--serial",
            "CLI0001",
        ],
        None,
    );
    // The facade's Key object itself (no "command" wrapper).
    assert_eq!(issued["state"], "issued");
    assert_eq!(issued["serial"], "CLI0001");
    let key = issued["key_id"].as_str().unwrap().to_owned();

    // The pending registration's challenge expires in 60 minutes.
    let soon = json_lines(&e.run(&["--json", "list", "--expiring-before", "+2h"], None));
    assert_eq!(soon.len(), 2);
    assert_eq!(soon[0]["key_id"], key.as_str());
    assert_eq!(soon[1]["count"], 1);
    let later = json_lines(&e.run(&["--json", "list", "--expiring-before", "+0h"], None));
    assert_eq!(later.len(), 1);
    assert_eq!(later[0]["count"], 0);

    let active = e.json(
        &["--json", "activate", &key, "--pin-stdin"],
        Some("holder-pin-1357\n"),
    );
    assert_eq!(active["state"], "active");

    let shown = e.json(&["--json", "show", &key], None);
    assert_eq!(shown["key"]["key_id"], key.as_str());
    assert_eq!(shown["passkeys"].as_array().unwrap().len(), 1);
    assert!(shown["audit"].as_array().unwrap().len() >= 2);

    let listed = json_lines(&e.run(&["--json", "list", "--state", "active"], None));
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0]["key_id"], key.as_str());
    assert_eq!(listed[1]["count"], 1);
    let none = json_lines(&e.run(&["--json", "list", "--state", "revoked"], None));
    assert_eq!(none[0]["count"], 0);

    // Human output too.
    let out = e.run(&["list", "--user", USER], None);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("state=active"));

    // A forced deletion the IdP refuses: IdP error, exit 4, key still active.
    emulator.inject(FaultRule::new(
        "DELETE",
        "fido2Methods",
        Fault::Status {
            status: 403,
            retry_after: None,
        },
        1,
    ));
    let out = e.run(&["--json", "revoke", &key, "--force"], None);
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let err: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(err["error"]["kind"], "idp");
    assert_eq!(
        e.json(&["--json", "show", &key], None)["key"]["state"],
        "active"
    );

    let revoked = e.json(&["--json", "revoke", &key, "--force"], None);
    assert_eq!(revoked["state"], "revoked");
    // Revoking again is an illegal transition: a user error.
    assert_eq!(e.run(&["revoke", &key], None).status.code(), Some(2));
    let retired = e.json(&["--json", "retire", &key], None);
    assert_eq!(retired["state"], "retired");
    let unregistered = e.json(&["--json", "unregister", &key], None);
    assert_eq!(unregistered["state"], "unregistered");
    let out = e.run(&["show", &key], None);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("state=unregistered"), "{text}");
    assert!(text.contains("audit #"), "{text}");
    let _ = std::fs::remove_dir_all(&e.dir);
}

#[test]
fn device_list_and_info_on_a_software_key() {
    let emulator = Emulator::start(EmulatorConfig::default()).unwrap();
    let e = env("device", &emulator);
    let info = e.json(&["--json", "device", "info"], None);
    assert!(info["device"].as_str().unwrap().starts_with("softkey:"));
    assert!(info["versions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|v| v == "FIDO_2_1"));
    assert_eq!(info["options"]["clientPin"], false);
    let list = e.json(&["--json", "device", "list"], None);
    assert!(list["devices"].is_array() && list["unavailable"].is_array());

    // set-pin through stdin, then info reports a PIN.
    let set = e.json(
        &["--json", "device", "set-pin", "--pin-stdin"],
        Some("12345678\n"),
    );
    assert_eq!(set["set"], true);
    let info = e.json(&["--json", "device", "info"], None);
    assert_eq!(info["options"]["clientPin"], true);

    // A freshly loaded software key is within its power-up window: reset works and asks
    // for a touch.
    let out = e.run(&["--json", "device", "reset"], None);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("touch your key"));
    let info = e.json(&["--json", "device", "info"], None);
    assert_eq!(info["options"]["clientPin"], false);
    let _ = std::fs::remove_dir_all(&e.dir);
}

#[test]
fn exit_codes_distinguish_usage_and_missing_keys() {
    let emulator = Emulator::start(EmulatorConfig::default()).unwrap();
    let e = env("codes", &emulator);
    let out = e.run(&["list", "--frobnicate"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown flag --frobnicate"));

    // A key that is not in the repository is a user error (2).
    let out = e.run(&["--json", "show", "no-such-key"], None);
    assert_eq!(out.status.code(), Some(2));
    let err: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(err["error"]["kind"], "usage");
    assert!(err["error"]["message"]
        .as_str()
        .unwrap()
        .contains("no-such-key"));

    // The IdP refuses the app's secret: an IdP error (4).
    let mut wrong = e.run(&["--json", "list", "--user", USER], None);
    assert!(wrong.status.success());
    let tpl = e.template.to_str().unwrap().to_owned();
    let mut cmd = keysmith();
    cmd.arg("--config")
        .arg(&e.config)
        .args([
            "--device",
            &e.softkey,
            "--json",
            "issue",
            "--template",
            &tpl,
        ])
        .args(["--user", USER, "--serial", "CLI0002"])
        .env("KEYSMITH_TEST_SECRET", "not-the-secret");
    wrong = cmd.output().unwrap();
    assert_eq!(
        wrong.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&wrong.stdout)
    );
    let err: serde_json::Value = serde_json::from_slice(&wrong.stdout).unwrap();
    assert_eq!(err["error"]["kind"], "idp");
    assert!(!String::from_utf8_lossy(&wrong.stdout).contains("not-the-secret"));
    assert!(!String::from_utf8_lossy(&wrong.stderr).contains("not-the-secret"));

    // A bad device spec is a usage error; a missing config too.
    let out = keysmith()
        .args(["--device", "bluetooth:x", "device", "info"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = keysmith().args(["show", "k"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--config"));
    let _ = std::fs::remove_dir_all(&e.dir);
}

/// stdout as JSON lines (every line one object).
pub(crate) fn json_lines(out: &Output) -> Vec<serde_json::Value> {
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "exit {:?}\nstdout:\n{stdout}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

#[test]
fn bulk_reconcile_and_paged_list_through_the_binary() {
    const ADELE: &str = "adelev@contoso.onmicrosoft.com";
    let emulator = Emulator::start(EmulatorConfig::default()).unwrap();
    let e = env("bulk", &emulator);
    let tpl = path_str(&e.template).to_owned();
    let base = e.dir.join("row-key");
    let device = format!("softkey:{}", base.display());

    // Bulk issue: one fresh software key per row.
    let csv = e.dir.join("issue.csv");
    std::fs::write(&csv, format!("user,serial\n{USER},B1\n\"{ADELE}\",B2\n")).unwrap();
    let run_bulk = |args: &[&str]| {
        keysmith()
            .arg("--config")
            .arg(&e.config)
            .args(["--device", &device])
            .args(args)
            .env("KEYSMITH_TEST_SECRET", &e.secret)
            .output()
            .unwrap()
    };
    let lines = json_lines(&run_bulk(&[
        "--json",
        "bulk",
        "issue",
        path_str(&csv),
        "--template",
        &tpl,
    ]));
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(lines[0]["line"], 2);
    assert_eq!(lines[0]["status"], "done");
    assert_eq!(lines[2]["summary"]["done"], 2);
    assert_eq!(lines[2]["summary"]["failed"], 0);
    let job = lines[2]["summary"]["job_id"].as_i64().unwrap();

    // The finished job again by its id: nothing left to do.
    let job_arg = job.to_string();
    let again = json_lines(&run_bulk(&[
        "--json",
        "bulk",
        "issue",
        "--resume",
        &job_arg,
        "--template",
        &tpl,
    ]));
    assert_eq!(again.len(), 1);
    assert_eq!(again[0]["summary"]["job_id"], job);
    assert_eq!(again[0]["summary"]["skipped"], 2);

    // Paged listing of every key, and the pending registrations expiring soon.
    let listed = json_lines(&e.run(&["--json", "list"], None));
    assert_eq!(listed.len(), 3);
    assert_eq!(listed[2]["count"], 2);
    let keys: Vec<String> = listed[..2]
        .iter()
        .map(|l| l["key_id"].as_str().unwrap().to_owned())
        .collect();
    let expiring = json_lines(&e.run(&["--json", "list", "--expiring", "2h"], None));
    assert_eq!(expiring.last().unwrap()["count"], 2);
    let none = json_lines(&e.run(&["--json", "list", "--expiring", "10m"], None));
    assert_eq!(none.last().unwrap()["count"], 0);

    // The first row's key (its software key state file is BASE.line2) is activated.
    let kim_key = keys.iter().find(|k| k.ends_with("-B1")).unwrap().to_owned();
    let out = keysmith()
        .arg("--config")
        .arg(&e.config)
        .args(["--device", &format!("{device}.line2")])
        .args(["--json", "activate", &kim_key, "--pin-stdin"])
        .env("KEYSMITH_TEST_SECRET", &e.secret)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().unwrap().write_all(b"holder-pin-1357\n")?;
            c.wait_with_output()
        })
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(emulator.methods(USER).len(), 1);

    // A passkey nobody issued: reported, then deleted with --fix --delete-unknown.
    let foreign = emulator.seed_methods(USER, 1);
    let report = json_lines(&e.run(&["--json", "reconcile", "--user", USER], None));
    assert_eq!(report.len(), 2, "{report:?}");
    assert_eq!(report[0]["kind"], "unknown");
    assert_eq!(report[0]["method_id"], foreign[0].as_str());
    assert_eq!(report[0]["fixed"], false);
    assert_eq!(report[1]["summary"]["findings"], 1);
    assert_eq!(
        e.run(&["reconcile", "--all", "--delete-unknown"], None)
            .status
            .code(),
        Some(2),
        "--delete-unknown without --fix"
    );
    let fixed = json_lines(&e.run(
        &["--json", "reconcile", "--all", "--fix", "--delete-unknown"],
        None,
    ));
    assert_eq!(fixed.last().unwrap()["summary"]["fixed"], 1, "{fixed:?}");
    assert_eq!(
        emulator.methods(USER).len(),
        1,
        "only the issued passkey is left"
    );
    let clean = json_lines(&e.run(&["--json", "reconcile", "--all"], None));
    assert_eq!(clean.len(), 1);
    assert_eq!(clean[0]["summary"]["findings"], 0);
    assert_eq!(clean[0]["summary"]["users"], 2);

    // Bulk revoke on two workers under a call ceiling; resumable by job id.
    let rcsv = e.dir.join("revoke.csv");
    std::fs::write(
        &rcsv,
        format!("key_id,force\n{},true\n{},\n", keys[0], keys[1]),
    )
    .unwrap();
    let lines = json_lines(&e.run(
        &[
            "--json",
            "bulk",
            "revoke",
            path_str(&rcsv),
            "--workers",
            "2",
            "--rate",
            "20",
        ],
        None,
    ));
    let summary = &lines.last().unwrap()["summary"];
    assert_eq!(summary["done"], 2, "{lines:?}");
    let rjob = summary["job_id"].as_i64().unwrap().to_string();
    assert!(emulator.methods(USER).is_empty());
    for k in &keys {
        assert_eq!(
            e.json(&["--json", "show", k], None)["key"]["state"],
            "revoked"
        );
    }
    let resumed = json_lines(&e.run(&["--json", "bulk", "revoke", "--resume", &rjob], None));
    assert_eq!(resumed[0]["summary"]["skipped"], 2);
    // The same file again after the job finished is a new job that runs every row.
    let anew = json_lines(&e.run(&["--json", "bulk", "revoke", path_str(&rcsv)], None));
    let summary = &anew.last().unwrap()["summary"];
    assert_ne!(summary["job_id"].as_i64().unwrap().to_string(), rjob);
    assert_eq!(
        (&summary["done"], &summary["skipped"]),
        (&2.into(), &0.into()),
        "{anew:?}"
    );

    // A row that fails: every line and the summary, then exit 5.
    let fcsv = e.dir.join("fail.csv");
    std::fs::write(&fcsv, "key_id\nno-such-key\n").unwrap();
    let out = e.run(&["--json", "bulk", "revoke", path_str(&fcsv)], None);
    assert_eq!(out.status.code(), Some(5));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert_eq!(lines[0]["status"], "failed");
    assert!(lines[0]["outcome"]
        .as_str()
        .unwrap()
        .contains("no-such-key"));
    assert_eq!(lines[1]["summary"]["failed"], 1);
    assert_eq!(lines[2]["error"]["exit_code"], 5);

    // Bad input: usage errors naming what is wrong.
    let bad = e.dir.join("bad.csv");
    std::fs::write(&bad, "key_id,force\nk1,perhaps\n").unwrap();
    let out = e.run(&["bulk", "revoke", path_str(&bad)], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("CSV line 2, column 2"));
    let out = e.run(&["bulk", "revoke", path_str(&rcsv), "--workers", "0"], None);
    assert_eq!(out.status.code(), Some(2));
    let out = e.run(&["bulk", "issue", "--resume", &rjob], None);
    assert_eq!(
        out.status.code(),
        Some(2),
        "a revoke job is not an issue job"
    );
    let _ = std::fs::remove_dir_all(&e.dir);
}

#[test]
fn idp_check_and_users_search_through_the_binary() {
    let emulator = Emulator::start(EmulatorConfig::default()).unwrap();
    let e = env("directory", &emulator);
    let checked = e.json(&["--json", "idp", "check"], None);
    assert_eq!(checked["connections"][0]["connection"], "contoso-entra");
    assert_eq!(checked["connections"][0]["ok"], true);

    let found = e.json(&["--json", "users", "search", "adele"], None);
    let users = found["users"].as_array().unwrap();
    assert_eq!(users.len(), 1, "{found}");
    assert_eq!(
        users[0]["user_principal_name"],
        "adelev@contoso.onmicrosoft.com"
    );
    let none = e.json(&["--json", "users", "search", "zz-nobody"], None);
    assert!(none["users"].as_array().unwrap().is_empty());

    // A wrong client secret: the check fails as an IdP error (exit 4).
    assert!(e.run(&["idp", "check"], None).status.success());
    let out = keysmith()
        .arg("--config")
        .arg(&e.config)
        .args(["idp", "check"])
        .env("KEYSMITH_TEST_SECRET", "not-the-secret")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    let _ = std::fs::remove_dir_all(&e.dir);
}
