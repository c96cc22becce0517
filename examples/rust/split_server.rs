//! The server half of the split deployment, driving a device half in another process:
//! `examples/c/split_device.c` (the C ABI's `ks_device_half_*`). This program holds the
//! repository (SQLite), the IdP (the Entra emulator, in-process) and the server key; the
//! C program holds the security key (a software key) and the holder's PIN. Between them
//! only the split's signed messages travel, as hex lines over the child's stdin/stdout:
//!
//! | C → here | here → C |
//! |---|---|
//! | `HELLO <station\|holder> <agent public key hex> <AgentHello hex>` | `MSG <ServerHello hex>` |
//! | `MSG <message hex>` | `MSG <reply hex>` or `ERR <refusal code>` |
//! | `SIGNIN <client_id> <nonce>` | `TOKEN <ID token>` |
//! | `DONE <key id>` | – |
//!
//! `SIGNIN` stands for the holder's browser sign-in at the IdP (OIDC with the session's
//! nonce): here the emulator mints the holder's ID token directly.
//!
//! ```sh
//! cargo build -p keysmith-c && gcc -o split_device examples/c/split_device.c \
//!   -I bindings/c/include -L target/debug -lkeysmith -Wl,-rpath,$PWD/target/debug
//! cargo run -p keysmith-examples --example split_server -- ./split_device
//! ```
//!
//! It checks that the station issued the key, the holder activated it, the key signs in
//! with the holder's PIN, and the PIN crossed no message.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use entra_graph::emulator::{Emulator, EmulatorConfig, HolderTokenOptions};
use keysmith_facade::split::ServerHalf;
use keysmith_facade::{Device, Session};

/// The holder's PIN the C program's UI gives (to check it crossed no message).
const HOLDER_PIN: &str = "holder-pin-2468";
const USER: &str = "kim@contoso.onmicrosoft.com";

fn hex(b: &[u8]) -> String {
    base16ct::lower::encode_string(b)
}

fn unhex(s: &str) -> Result<Vec<u8>, String> {
    base16ct::mixed::decode_vec(s).map_err(|e| format!("not hex: {e}"))
}

fn template(emulator: &Emulator) -> String {
    format!(
        r#"
[passkey.entra]
idp = {{ connection = "contoso-entra", kind = "entra", graph_api_version = "beta" }}
display_name = "{{displayName}} {{serial}}"
rp_id = "login.microsoft.com"

[credential]
name = "split-example"
passkey_templates = ["entra"]
user_assignment = {{ directory = "contoso-entra" }}

[credential.self_service]
pin_set_allowed = true
oidc = {{ issuer = "{issuer}", audience = "{audience}", jwks_url = "{jwks}" }}
"#,
        issuer = emulator.oidc_issuer(),
        audience = emulator.client_id(),
        jwks = emulator.jwks_url(),
    )
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let program = std::env::args()
        .nth(1)
        .ok_or("usage: split_server PATH-TO-split_device")?;
    let emulator = Emulator::start(EmulatorConfig::default())?;
    let dir = std::env::temp_dir().join(format!("keysmith-split-c-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let config = serde_json::json!({
        "repository": { "sqlite": dir.join("keysmith.db") },
        "pin_key": "5a".repeat(32),
        "station": "split-server",
        "allow_software_keys": true,
        "idp": [{
            "name": "contoso-entra",
            "tenant": emulator.tenant_id(),
            "client_id": emulator.client_id(),
            "client_secret": emulator.client_secret().unwrap_or_default(),
            "graph_api_version": "beta",
            "login_base": emulator.base_url(),
            "graph_base": emulator.base_url(),
        }],
        "templates": [template(&emulator)],
    });
    let session = Session::open(&config.to_string())?;
    let server = ServerHalf::new(&session, r#"{"allow_software_keys": true}"#)?;
    let key_file = dir.join("key.json");

    let mut child = Command::new(&program)
        .arg(server.public_key_pem()?)
        .arg(format!("softkey:{}", key_file.display()))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let mut to_c = child.stdin.take().ok_or("no stdin")?;
    let mut from_c = BufReader::new(child.stdout.take().ok_or("no stdout")?);
    let mut wire: Vec<Vec<u8>> = Vec::new();
    let mut session_id = String::new();
    let mut work = None;
    let mut done = None;
    let mut line = String::new();
    loop {
        line.clear();
        if from_c.read_line(&mut line)? == 0 {
            break;
        }
        let words: Vec<&str> = line.trim_end().split(' ').collect();
        let answer = match words.as_slice() {
            ["HELLO", class, public_key, hello] => {
                let hello = unhex(hello)?;
                let agent = server.add_agent(public_key, class, true, None)?;
                if *class == "station" {
                    let request = format!(
                        r#"{{"operation":"issue","user":"{USER}","template":"split-example"}}"#
                    );
                    work = Some(server.queue_station_work(&agent, &request, "operator:alice")?);
                }
                let opened = server.open(&hello, now_ms())?;
                session_id = opened.session_id;
                eprintln!("server: {class} agent {agent} opened session {session_id}");
                wire.extend([hello, opened.reply.clone()]);
                format!("MSG {}", hex(&opened.reply))
            }
            ["MSG", message] => {
                let message = unhex(message)?;
                let described = keysmith_facade::split::describe(&message)?;
                eprintln!("server: <- {}", described["kind"]);
                let answer = match server.handle(&session_id, &message, now_ms()) {
                    Ok(reply) => {
                        eprintln!(
                            "server: -> {}",
                            keysmith_facade::split::describe(&reply)?["kind"]
                        );
                        wire.push(reply.clone());
                        format!("MSG {}", hex(&reply))
                    }
                    Err(e) => format!("ERR {}", e.refusal_code.unwrap_or(e.reason)),
                };
                wire.push(message);
                answer
            }
            ["SIGNIN", client_id, nonce] => {
                let token = emulator.holder_token_with(&HolderTokenOptions {
                    lifetime: Duration::from_secs(3600),
                    ..HolderTokenOptions::new(USER, *client_id).nonce((*nonce).to_owned())
                })?;
                format!("TOKEN {token}")
            }
            ["DONE", key_id] => {
                done = Some((*key_id).to_owned());
                break;
            }
            other => return Err(format!("unexpected line from the device half: {other:?}").into()),
        };
        writeln!(to_c, "{answer}")?;
        to_c.flush()?;
    }
    drop(to_c);
    let status = child.wait()?;
    if !status.success() {
        return Err(format!("the C device half failed: {status}").into());
    }
    let key_id = done.ok_or("the device half ended without DONE")?;
    let work = server.station_work(&work.ok_or("no station work queued")?)?;
    assert_eq!(work.state, "done", "{work:?}");
    let key = session.key(&key_id)?;
    assert_eq!(key.key.state.as_str(), "active", "{key:?}");
    // The holder's PIN went from the C program's callback to the key, into no message...
    assert!(
        !wire.iter().any(|m| m
            .windows(HOLDER_PIN.len())
            .any(|w| w == HOLDER_PIN.as_bytes())),
        "the holder's PIN crossed the wire"
    );
    // ... and it is the key's PIN now: a sign-in with it verifies.
    let device = Device::open(&format!("softkey:{}", key_file.display()))?;
    let signed = session.sign_in(&device, &key_id, HOLDER_PIN)?;
    assert_eq!(signed.len(), 1);
    println!(
        "split from C: station issued {key_id}, the holder activated it ({} messages, no PIN in any); sign-in verified",
        wire.len()
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
