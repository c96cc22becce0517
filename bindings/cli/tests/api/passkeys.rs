//! `keysmith user passkeys`, `list --needs-reissue`, `list --stale DAYS` and `users
//! readiness` in `--json`, through the binary against the emulator (issue 19 items 4–6,
//! issue 13 item 12).

use std::time::{Duration, SystemTime};

use entra_graph::emulator::{Emulator, EmulatorConfig};

use super::cli::{env, json_lines, path_str, USER};

const PIN: &str = "holder-pin-1357\n";
const KIM_ID: &str = "6e8a5a4e-5a0d-4e4c-9c8e-2f7c3d8a1b11";
const ADELE_ID: &str = "87d349ed-44d7-43e1-9a83-5f2406dee5bd";
const ALEX_ID: &str = "5bde3e51-d13b-4db1-9948-fe4b109d11a7";
const MEGAN_ID: &str = "4782e723-f4f4-4af3-a76e-25e3bab0d896";
const LEE_ID: &str = "c8a9a3b2-4f5e-4d6c-8b7a-9e0f1a2b3c4d";
const HOLDERS_GROUP: &str = "02bd9fd6-8f93-4758-87c3-1fb73740a315";
const AUTHENTICATOR: &str = "90a3ccdf-635c-4729-a248-9b709135078f";

#[test]
fn user_passkeys_needs_reissue_and_stale_in_json() {
    let emulator = Emulator::start(EmulatorConfig::default()).unwrap();
    let e = env("passkeys", &emulator);
    let tpl = path_str(&e.template).to_owned();
    let k = e.json(
        &[
            "--json",
            "issue",
            "--template",
            &tpl,
            "--user",
            USER,
            "--serial",
            "PK1",
            "--activate",
            "--pin-stdin",
        ],
        Some(PIN),
    );
    // `--activate`: issued and activated in the one command.
    assert_eq!(k["state"], "active", "{k}");
    let key = k["key_id"].as_str().unwrap().to_owned();
    emulator
        .seed_passkey(USER, AUTHENTICATOR, Some("deviceBound"), "Phone")
        .unwrap();

    // Every passkey the user holds, beside the key keysmith issued.
    let up = e.json(&["--json", "user", "passkeys", USER], None);
    assert_eq!(up["user_id"], KIM_ID, "{up}");
    let passkeys = up["passkeys"].as_array().unwrap();
    assert_eq!(passkeys.len(), 2, "{up}");
    let ours = passkeys
        .iter()
        .find(|p| p["key_id"] == key.as_str())
        .unwrap();
    assert_eq!(ours["kind"], "security_key");
    let phone = passkeys.iter().find(|p| p["key_id"].is_null()).unwrap();
    assert_eq!(phone["kind"], "microsoft_authenticator");
    assert_eq!(phone["passkey_type"], "deviceBound");
    assert_eq!(up["keys"][0]["key_id"], key.as_str());

    // Last used ten days ago; then the holder is renamed.
    let method = ours["method_id"].as_str().unwrap().to_owned();
    let ten_days_ago = SystemTime::now() - Duration::from_secs(10 * 86_400);
    assert!(emulator.record_use(USER, &method, ten_days_ago));
    assert!(emulator.rename_user(USER, "kim.akers@contoso.onmicrosoft.com"));
    let out = e.run(&["--json", "reconcile", "--user", KIM_ID, "--fix"], None);
    let lines = json_lines(&out);
    assert!(
        lines
            .iter()
            .any(|l| l["kind"] == "user_renamed" && l["fixed"] == true),
        "{lines:?}"
    );

    let listed = json_lines(&e.run(&["--json", "list", "--needs-reissue"], None));
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert_eq!(listed[0]["key_id"], key.as_str());
    assert_eq!(listed[0]["needs_reissue"], true);
    assert_eq!(listed[0]["reason"], "user_renamed");
    assert_eq!(listed[1]["count"], 1);

    let stale = json_lines(&e.run(&["--json", "list", "--stale", "7"], None));
    assert_eq!(stale.len(), 2, "{stale:?}");
    assert_eq!(stale[0]["key_id"], key.as_str());
    let used = stale[0]["last_used_ms"].as_u64().unwrap();
    let want = ten_days_ago
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        * 1000;
    assert_eq!(used, want);
    let fresh = json_lines(&e.run(&["--json", "list", "--stale", "30"], None));
    assert_eq!(fresh, vec![serde_json::json!({"count": 0})]);
    // A bad number of days is a usage error.
    let out = e.run(&["--json", "list", "--stale", "soon"], None);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

#[test]
fn readiness_report_in_json_feeds_a_bulk_issue_job() {
    // Two members per page: the group's members come in pages.
    let emulator = Emulator::start(EmulatorConfig {
        page_size: 2,
        ..EmulatorConfig::default()
    })
    .unwrap();
    let e = env("readiness", &emulator);
    // Kim holds a passkey, Adele has Windows Hello for Business; Alex and Megan have
    // only a phone. A guest in the group is refused up front.
    emulator
        .seed_passkey(USER, AUTHENTICATOR, Some("deviceBound"), "Phone")
        .unwrap();
    emulator
        .add_authentication_method(
            ADELE_ID,
            "#microsoft.graph.windowsHelloForBusinessAuthenticationMethod",
        )
        .unwrap();
    for u in [ALEX_ID, MEGAN_ID] {
        emulator
            .add_authentication_method(u, "#microsoft.graph.phoneAuthenticationMethod")
            .unwrap();
    }
    let guest = emulator.add_guest("partner@fabrikam.example");
    assert!(emulator.add_group_member(HOLDERS_GROUP, &guest));
    let csv = e.dir.join("not-ready.csv");
    let r = e.json(
        &[
            "--json",
            "users",
            "readiness",
            "--group",
            HOLDERS_GROUP,
            "--csv",
            path_str(&csv),
        ],
        None,
    );
    assert_eq!(r["checked"], 4, "{r}");
    let ids: Vec<&str> = r["not_ready"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [ALEX_ID, MEGAN_ID], "{r}");
    assert_eq!(
        r["not_ready"][0]["methods"],
        serde_json::json!(["password", "phone"])
    );
    assert_eq!(r["guests"][0]["id"], guest.as_str());
    assert!(r["guest_reason"].as_str().unwrap().contains("guest"), "{r}");
    // The whole directory: Lee (in no group) too; the guest is refused there as well.
    let all = e.json(&["--json", "users", "readiness"], None);
    assert_eq!(all["checked"], 5, "{all}");
    assert!(all["not_ready"]
        .as_array()
        .unwrap()
        .iter()
        .any(|u| u["id"] == LEE_ID));
    assert_eq!(all["guests"].as_array().unwrap().len(), 1);

    // The CSV is a bulk issue job's input once the operator fills in the serials.
    let text = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(text, r["issue_csv"].as_str().unwrap());
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("user,serial"));
    let filled: String = std::iter::once("user,serial\n".to_owned())
        .chain(lines.enumerate().map(|(i, l)| {
            let user = l.strip_suffix(',').unwrap();
            format!("{user},RD{i}\n")
        }))
        .collect();
    assert!(
        filled.contains("alexw@contoso.onmicrosoft.com,RD0"),
        "{filled}"
    );
    std::fs::write(&csv, filled).unwrap();
    let tpl = path_str(&e.template).to_owned();
    let device = format!("softkey:{}", e.dir.join("row-key").display());
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_keysmith"))
        .arg("--config")
        .arg(&e.config)
        .args(["--device", &device, "--json", "bulk", "issue"])
        .arg(&csv)
        .args(["--template", &tpl])
        .env("KEYSMITH_TEST_SECRET", &e.secret)
        .output()
        .unwrap();
    let rows = json_lines(&out);
    assert_eq!(rows.last().unwrap()["summary"]["done"], 2, "{rows:?}");
}
