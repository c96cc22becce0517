//! Issue a security key to a user and let the holder activate it, on the facade
//! (`keysmith-facade`): the Entra emulator in-process, a software key, SQLite.
//!
//! ```sh
//! cargo run -p keysmith-examples --example issue_and_activate
//! ```

use entra_graph::emulator::{Emulator, EmulatorConfig};
use keysmith_facade::{Device, IssueParams, Session};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The identity provider: an Entra emulator on loopback.
    let emulator = Emulator::start(EmulatorConfig::default())?;
    let dir = std::env::temp_dir().join(format!("keysmith-example-rs-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;

    // One session configuration, the same JSON the C ABI and Python take.
    let config = serde_json::json!({
        "repository": { "sqlite": dir.join("keysmith.db") },
        "pin_key": "5a".repeat(32),
        "station": "example",
        // The example runs on a software key: for tests and demos only.
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
        "templates": [keysmith_examples::TEMPLATE],
    });
    let session = Session::open(&config.to_string())?;
    session.set_prompt(Box::new(|p| eprintln!("prompt: {p:?}")));

    // A software key (a state file); a real one is `usb:/dev/hidraw3` or `nfc:READER`.
    let device = Device::open(&format!("softkey:{}", dir.join("key.json").display()))?;

    let issued = session.issue(
        &device,
        &IssueParams {
            template: "example-standard".into(),
            user: "kim@contoso.onmicrosoft.com".into(),
            ..IssueParams::default()
        },
    )?;
    println!("issued: {}", serde_json::to_string(&issued)?);

    // The holder chooses their PIN: the passkey is registered at Entra.
    let active = session.activate(&device, &issued.key_id, "holder-pin-2468")?;
    println!("activated: {}", serde_json::to_string(&active)?);
    for s in session.sign_in(&device, &active.key_id, "holder-pin-2468")? {
        println!(
            "sign-in verified with passkey {} ({})",
            s.passkey_template, s.method_id
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
