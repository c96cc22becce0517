//! The holder's side as it is installed: `keysmith agent holder` runs as the service
//! where the key is attached, and the holder's unprivileged UI process (`keysmith agent
//! ui activate`) connects to it over the local socket. The sign-in address and the
//! session code reach the UI through the socket, the PIN goes from the UI to the agent
//! and on to the key: never to the server, and never into the agent's command line or
//! environment.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::Stdio;

use keysmith_testkit::{TempDir, HOLDER_PIN, KIM};
use serde_json::json;

use super::harness::{EmulatorProc, OPERATOR};
use super::split::{agent, browse_sign_in, issued_at_station, last_json, Issued, DESK_NAME};

/// Adds a `[ui]` section: the socket in the agent's own directory, this test's user on
/// both ends.
fn with_ui(config: &Path) -> std::path::PathBuf {
    use std::os::unix::fs::MetadataExt as _;
    let home = config.parent().unwrap();
    let uid = std::fs::metadata(home).unwrap().uid();
    let socket = home.join("ui.sock");
    let mut text = std::fs::read_to_string(config).unwrap();
    text.push_str(&format!(
        "[ui]\nsocket = {socket:?}\nallowed_uids = [{uid}]\nagent_uids = [{uid}]\n"
    ));
    std::fs::write(config, text).unwrap();
    socket
}

/// Waits until `path` exists (the service bound its socket).
fn wait_for(path: &Path) {
    let start = std::time::Instant::now();
    while !path.exists() {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(30),
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn a_holder_activates_through_the_holder_service_and_its_ui() {
    let dir = TempDir::new("split-holder-ui");
    let emu = EmulatorProc::start();
    let Issued {
        s,
        holder_cfg,
        device,
        key_id,
        forbidden,
        ..
    } = issued_at_station(&dir, &emu, &[]);
    let socket = with_ui(&holder_cfg);

    // The service: the key attached, waiting for the holder's UI.
    let service = agent(&holder_cfg)
        .args(["holder", "--device", &device, "--once"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the holder service");
    wait_for(&socket);

    // The holder's UI asks for the activation and answers the agent: it shows the sign-in
    // address (the test is the browser) and the session code, then gives the PIN.
    let mut ui = agent(&holder_cfg)
        .args(["ui", "--pin-stdin", "--no-browser", "activate"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the holder's UI");
    let mut stdin = ui.stdin.take().unwrap();
    let mut err = BufReader::new(ui.stderr.take().unwrap());
    browse_sign_in(&mut err, KIM);
    writeln!(stdin, "{HOLDER_PIN}").unwrap();
    drop(stdin);
    let shown: Vec<String> = err.lines().map_while(Result::ok).collect();
    let out = ui.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "the UI failed: {stdout}\n{shown:?}");
    let done = last_json(&stdout);
    assert_eq!(
        (done["state"].as_str(), done["registered"].as_u64()),
        (Some("active"), Some(1)),
        "{done}"
    );
    assert_eq!(emu.passkeys_of(KIM), 1);

    // The service ends after its one request, well.
    let service_out = service.wait_with_output().unwrap();
    assert!(
        service_out.status.success(),
        "{}",
        String::from_utf8_lossy(&service_out.stderr)
    );
    let service_err = String::from_utf8_lossy(&service_out.stderr);
    assert!(
        !service_err.contains(HOLDER_PIN),
        "the agent printed the PIN"
    );
    for f in &forbidden {
        let text = std::fs::read_to_string(&holder_cfg).unwrap();
        assert!(!text.contains(f.as_str()), "the agent's config holds {f:?}");
    }

    // The key is active at the server, and the PIN is in no message the server stored.
    let operator = emu.token(OPERATOR);
    let a = s.call("GET", &format!("/v1/keys/{key_id}"), Some(&operator), None);
    assert_eq!(a.json["key"]["state"], "active", "{}", a.json);
    let stored = std::fs::read(dir.join("keysmith.db")).unwrap();
    assert!(
        !stored
            .windows(HOLDER_PIN.len())
            .any(|w| w == HOLDER_PIN.as_bytes()),
        "the holder's PIN is in the server's database"
    );
}

/// Issuance with the holder at the desk: the operator queues an issuance whose template
/// activates at issuance; the station runs with `--holder-ui`, and the holder types the
/// PIN in the UI at the desk. The passkey is registered in the same session; the
/// transport PIN goes to the station's own job only.
#[test]
fn a_station_issues_and_activates_with_the_holder_at_the_desk() {
    let dir = TempDir::new("split-desk");
    let emu = EmulatorProc::start();
    let Issued {
        s,
        station_cfg,
        station_id,
        ..
    } = issued_at_station(&dir, &emu, &[]);
    let socket = with_ui(&station_cfg);
    let before = emu.passkeys_of(KIM);
    let device = format!("softkey:{}", dir.join("desk-key.json").display());
    let operator = emu.token(OPERATOR);
    let a = s.call(
        "POST",
        &format!("/v1/agents/{station_id}/work"),
        Some(&operator),
        Some(&json!({"operation": "issue", "user": KIM, "template": DESK_NAME})),
    );
    assert_eq!(a.status, 201, "{}", a.json);

    let station = agent(&station_cfg)
        .args(["run", "--device", &device, "--once", "--max-wait", "60"])
        .arg("--holder-ui")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the station");
    wait_for(&socket);
    let mut ui = agent(&station_cfg)
        .args(["ui", "--pin-stdin", "--no-browser"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the UI at the desk");
    writeln!(ui.stdin.take().unwrap(), "{HOLDER_PIN}").unwrap();
    let ui_out = ui.wait_with_output().unwrap();
    let out = station.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "the station failed: {stdout}\n{}\nUI: {}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&ui_out.stderr)
    );
    assert!(
        ui_out.status.success(),
        "{}",
        String::from_utf8_lossy(&ui_out.stderr)
    );
    let done = last_json(&stdout);
    assert_eq!(
        (done["state"].as_str(), done["registered"].as_u64()),
        (Some("active"), Some(1)),
        "{done}"
    );
    assert_eq!(emu.passkeys_of(KIM), before + 1);
    let key_id = done["key_id"].as_str().unwrap();
    let a = s.call("GET", &format!("/v1/keys/{key_id}"), Some(&operator), None);
    assert_eq!(a.json["key"]["state"], "active", "{}", a.json);
    // The station's own issue job carried the transport PIN (set, then changed to the
    // holder's in the same job); no other session got it.
    let releases: Vec<&str> = a.json["audit"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["action"] == "transport_pin_release")
        .map(|r| r["detail"].as_str().unwrap_or(""))
        .collect();
    assert!(
        releases.iter().all(|d| d.starts_with("issue job")),
        "{releases:?}"
    );
}

/// A UI that asks the service for something it cannot do (verify without a key) is
/// refused before anything reaches the server, and is told why.
#[test]
fn a_ui_request_without_what_it_needs_is_refused_at_the_ui() {
    let dir = TempDir::new("split-holder-ui-usage");
    let out = super::harness::keysmith()
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .args(["agent", "--config"])
        .arg(dir.join("none.toml"))
        .args(["ui", "--socket"])
        .arg(dir.join("ui.sock"))
        .args(["--agent-uid", "0", "verify"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("a key id"), "{err}");
}
