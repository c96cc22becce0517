//! `keysmith serve` killed (SIGKILL) between a job's result and the IdP call it leads
//! to, and between the IdP call and its journal entry's close: the restarted node's
//! journal replay finishes the registration exactly once, and the holder's key works.

use std::io::{BufReader, Write};
use std::process::Stdio;
use std::time::{Duration, Instant};

use keysmith_testkit::{TempDir, HOLDER_PIN, KIM};

use super::harness::{start_server, EmulatorProc, OPERATOR};
use super::split::{agent, agent_config, browse_sign_in, holder_run, issued_at_station, Issued};

fn killed_at(step: &str) {
    let dir = TempDir::new(&format!("serve-crash-{step}"));
    let emu = EmulatorProc::start();
    let hang = dir.join("hung");
    let Issued {
        mut s,
        fp,
        holder_cfg,
        device,
        key_id,
        forbidden,
        session_json,
        key_file,
        ..
    } = issued_at_station(
        &dir,
        &emu,
        &[
            ("KEYSMITH_TEST_HANG_AT", std::path::Path::new(step)),
            ("KEYSMITH_TEST_HANG_FILE", &hang),
        ],
    );

    // The holder activates; the server stops at `step` of the registration that follows
    // the job's result (the PIN is set and the credential made on the key by then).
    let mut holder = agent(&holder_cfg)
        .args([
            "activate",
            "--device",
            &device,
            "--pin-stdin",
            "--no-browser",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the holder's agent");
    let mut stdin = holder.stdin.take().unwrap();
    let mut err = BufReader::new(holder.stderr.take().unwrap());
    browse_sign_in(&mut err, KIM);
    writeln!(stdin, "{HOLDER_PIN}").unwrap();
    drop(stdin);
    let start = Instant::now();
    while !hang.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the server never reached {step}"
        );
        if let Ok(Some(status)) = holder.try_wait() {
            panic!("the holder's agent ended ({status}) before the server reached {step}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    s.kill();
    let out = holder.wait_with_output().unwrap();
    assert!(
        !out.status.success(),
        "the holder's agent cannot finish without its server"
    );
    let expected_before = usize::from(step == "after-idp-call");
    assert_eq!(emu.passkeys_of(KIM), expected_before, "at the crash");

    // The node comes back (same station): its journal replay at start finishes the
    // registration, once.
    let s = start_server(&dir, "node", &emu, &session_json, &key_file);
    let operator = emu.token(OPERATOR);
    let start = Instant::now();
    let key = loop {
        let a = s.call("GET", &format!("/v1/keys/{key_id}"), Some(&operator), None);
        if a.json["key"]["state"] == "active" {
            break a.json;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "not active after the restart: {}",
            a.json
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(emu.passkeys_of(KIM), 1, "exactly one passkey");
    let registered = key["audit"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["action"] == "register" && r["outcome"] == "success")
        .count();
    assert!(registered <= 1, "{key}");

    // The passkey on the key is the one registered: the holder's sign-in check verifies.
    let holder_cfg = agent_config(&dir, "holder", &s, &fp, &emu);
    let forbidden: Vec<&str> = forbidden.iter().map(String::as_str).collect();
    let checked = holder_run(
        &holder_cfg,
        &["verify", "--key-id", &key_id, "--device", &device],
        KIM,
        &forbidden,
    );
    assert_eq!(checked["outcome"], "job_ack", "{checked}");
}

#[test]
fn serve_killed_between_a_job_result_and_its_idp_call_registers_once_after_restart() {
    killed_at("after-journal");
}

#[test]
fn serve_killed_after_the_idp_call_finds_the_passkey_after_restart() {
    killed_at("after-idp-call");
}
