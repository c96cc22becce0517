//! Enrolment against a tiny in-test HTTP stub of `keysmith serve`'s contract.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use keysmith_agent::config::AgentClass;
use keysmith_agent::enroll::{enroll, status, HostInfo};
use keysmith_agent::key::AgentKey;
use keysmith_agent::AgentError;
use serde_json::{json, Value};
use sha2::Sha256;
use zeroize::Zeroizing;

/// (method, path, body) of each request.
type Seen = Arc<Mutex<Vec<(String, String, Value)>>>;

/// Serves `answers` (status, JSON) in order, one per connection; records requests.
fn stub(answers: Vec<(u16, Value)>) -> (String, Seen) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let seen: Seen = Arc::default();
    let s2 = seen.clone();
    std::thread::spawn(move || {
        for (status, body) in answers {
            let (mut c, _) = l.accept().unwrap();
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            let (head_end, len) = loop {
                let n = c.read(&mut chunk).unwrap();
                buf.extend_from_slice(&chunk[..n]);
                if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&buf[..i]).to_ascii_lowercase();
                    let len = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length: "))
                        .map_or(0, |v| v.trim().parse().unwrap());
                    break (i + 4, len);
                }
            };
            while buf.len() < head_end + len {
                let n = c.read(&mut chunk).unwrap();
                buf.extend_from_slice(&chunk[..n]);
            }
            let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
            let mut first = head.lines().next().unwrap().split(' ');
            let (m, p) = (
                first.next().unwrap().to_owned(),
                first.next().unwrap().to_owned(),
            );
            let b = serde_json::from_slice(&buf[head_end..]).unwrap_or(Value::Null);
            s2.lock().unwrap().push((m, p, b));
            let text = body.to_string();
            write!(
                c,
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                text.len()
            )
            .unwrap();
        }
    });
    (url, seen)
}

fn http() -> reqwest::blocking::Client {
    keysmith_agent::http::client(None, std::time::Duration::from_secs(5)).unwrap()
}

fn host() -> HostInfo {
    HostInfo {
        name: "desk-1.example".into(),
        os: "linux".into(),
    }
}

#[test]
fn a_station_proves_its_code_and_prints_its_own_fingerprint() {
    let key = AgentKey::generate();
    let id = key.agent_id();
    let grouped = keysmith_agent::key::fingerprint(&id);
    let (url, seen) = stub(vec![
        (
            202,
            json!({"agent_id": id, "status": "pending", "fingerprint": grouped}),
        ),
        (200, json!({"status": "approved"})),
    ]);
    let code = Zeroizing::new("K7QF-2MXD-93PA".to_owned());
    let e = enroll(
        &http(),
        &url,
        &key,
        AgentClass::Station,
        Some("desk-1"),
        Some(&code),
        &host(),
    )
    .unwrap();
    assert_eq!(
        (e.agent_id.as_str(), e.status.as_str()),
        (id.as_str(), "pending")
    );
    assert_eq!(e.fingerprint, grouped);
    assert_eq!(status(&http(), &url, &id).unwrap(), "approved");
    let seen = seen.lock().unwrap();
    let (m, p, body) = &seen[0];
    assert_eq!((m.as_str(), p.as_str()), ("POST", "/v1/agents/enroll"));
    assert_eq!(body["class"], "station");
    assert_eq!(body["station"], "desk-1");
    assert_eq!(
        body["host"],
        json!({"name": "desk-1.example", "os": "linux"})
    );
    let public = URL_SAFE_NO_PAD
        .decode(body["public_key"].as_str().unwrap())
        .unwrap();
    assert_eq!(public.len(), 65);
    assert_eq!(public[0], 4);
    assert_eq!(&public[..], &key.public_sec1()[..]);
    let mut mac = Hmac::<Sha256>::new_from_slice(b"K7QF-2MXD-93PA").unwrap();
    mac.update(&public);
    let want = mac.finalize().into_bytes();
    assert_eq!(
        URL_SAFE_NO_PAD
            .decode(body["proof"].as_str().unwrap())
            .unwrap(),
        &want[..]
    );
    // The code itself never crosses the wire.
    assert!(!body.to_string().contains("K7QF"));
    assert_eq!(seen[1].1, format!("/v1/agents/{id}"));
}

#[test]
fn a_holder_sends_no_proof_and_foreign_answers_are_refused() {
    let key = AgentKey::generate();
    let (url, seen) = stub(vec![
        (
            202,
            json!({"agent_id": key.agent_id(), "status": "approved"}),
        ),
        (
            202,
            json!({"agent_id": "00".repeat(32), "status": "pending"}),
        ),
        (
            202,
            json!({"agent_id": key.agent_id(), "status": "pending", "fingerprint": "dead beef"}),
        ),
        (
            403,
            json!({"error": "forbidden", "error_description": "code expired"}),
        ),
    ]);
    let e = enroll(&http(), &url, &key, AgentClass::Holder, None, None, &host()).unwrap();
    assert_eq!(e.status, "approved");
    let body = seen.lock().unwrap()[0].2.clone();
    assert_eq!(body["class"], "holder");
    assert!(body.get("proof").is_none() && body.get("station").is_none());
    for _ in 0..2 {
        assert!(matches!(
            enroll(&http(), &url, &key, AgentClass::Holder, None, None, &host()),
            Err(AgentError::EnrollMismatch(_))
        ));
    }
    let code = Zeroizing::new("c".to_owned());
    match enroll(
        &http(),
        &url,
        &key,
        AgentClass::Station,
        Some("d"),
        Some(&code),
        &host(),
    ) {
        Err(AgentError::Refused {
            status: 403,
            reason,
            ..
        }) => assert!(reason.contains("code expired")),
        other => panic!("{other:?}"),
    }
    // Plain http to a remote host, a station without a code, a holder with one: refused
    // before any request.
    assert!(matches!(
        enroll(
            &http(),
            "http://ks.example.org",
            &key,
            AgentClass::Holder,
            None,
            None,
            &host()
        ),
        Err(AgentError::Config {
            setting: "server_url",
            ..
        })
    ));
    assert!(matches!(
        enroll(
            &http(),
            &url,
            &key,
            AgentClass::Station,
            Some("d"),
            None,
            &host()
        ),
        Err(AgentError::Config { .. })
    ));
    assert!(matches!(
        enroll(
            &http(),
            &url,
            &key,
            AgentClass::Holder,
            None,
            Some(&code),
            &host()
        ),
        Err(AgentError::Config { .. })
    ));
}

#[test]
fn the_binary_enrols_a_station_and_prints_the_local_fingerprint() {
    let d = std::env::temp_dir().join(format!("ks-agent-bin-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    let key_file = d.join("state").join("agent-key.pem");
    let config = |server: &str| {
        format!(
            "server_url = \"{server}\"\nserver_key = \"{}\"\nclass = \"station\"\nstation = \"desk-9\"\nkey_file = \"{}\"\n",
            "ab".repeat(32),
            key_file.display()
        )
    };
    let cfg = d.join("agent.toml");
    std::fs::write(&cfg, config("http://127.0.0.1:9")).unwrap();
    let bin = env!("CARGO_BIN_EXE_keysmith-agent");
    let out = std::process::Command::new(bin)
        .arg("--config")
        .arg(&cfg)
        .arg("fingerprint")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let key = AgentKey::load(&key_file).unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains(&key.fingerprint()), "{text}");
    let (url, seen) = stub(vec![(
        202,
        json!({"agent_id": key.agent_id(), "status": "pending"}),
    )]);
    std::fs::write(&cfg, config(&url)).unwrap();
    let out = std::process::Command::new(bin)
        .arg("--config")
        .arg(&cfg)
        .args(["enroll", "--code", "ONE-TIME-42"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains(&key.fingerprint()) && text.contains("pending"),
        "{text}"
    );
    let body = seen.lock().unwrap()[0].2.clone();
    assert_eq!(body["station"], "desk-9");
    assert!(!body.to_string().contains("ONE-TIME-42"));
    // A configuration error exits 2.
    std::fs::write(&cfg, "server_url = 1").unwrap();
    let out = std::process::Command::new(bin)
        .arg("--config")
        .arg(&cfg)
        .arg("status")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    std::fs::remove_dir_all(&d).unwrap();
}
