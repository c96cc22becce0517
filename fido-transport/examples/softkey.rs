//! Runs the software authenticator as a virtual FIDO card on vsmartcard's `vpcd`, until
//! killed.
//!
//! ```text
//! cargo run -p fido-transport --example softkey -- --vpcd 127.0.0.1:35963 \
//!     [--pin 1234] [--state FILE] [--reader-mode extended|short|quirky]
//! ```
//!
//! `--state FILE` keeps credentials, PIN and counters in FILE (JSON, private keys in
//! clear: a test authenticator). `--reader-mode` picks the card personality: extended
//! APDUs, short APDUs only, or a quirky card (`61xx` GET RESPONSE chains, `9100`
//! status updates).

use std::process::ExitCode;
use std::time::Duration;

use fido_core::apdu::CardConfig;
use fido_transport::nfc::{VpcdCardHandle, VpcdCardOptions};
use fido_transport::softkey::{SoftAuthenticator, SoftConfig, SoftTransport};

const USAGE: &str = "usage: softkey --vpcd HOST:PORT [--pin PIN] [--state FILE] \
                     [--reader-mode extended|short|quirky]";

struct Args {
    vpcd: Option<String>,
    pin: Option<String>,
    state: Option<String>,
    mode: CardConfig,
    mode_name: String,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        vpcd: None,
        pin: None,
        state: None,
        mode: CardConfig::extended(),
        mode_name: "extended".into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--vpcd" => args.vpcd = Some(value()?),
            "--pin" => args.pin = Some(value()?),
            "--state" => args.state = Some(value()?),
            "--reader-mode" => {
                let m = value()?;
                args.mode = match m.as_str() {
                    "extended" => CardConfig::extended(),
                    "short" => CardConfig::short_only(),
                    "quirky" => CardConfig::quirky(),
                    other => return Err(format!("unknown reader mode {other:?}")),
                };
                args.mode_name = m;
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(msg) => {
            if !msg.is_empty() {
                eprintln!("softkey: {msg}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let Some(vpcd) = args.vpcd.clone() else {
        eprintln!("softkey: --vpcd is required (the authenticator runs as a card on vpcd)");
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let config = SoftConfig::default();
    let auth = match &args.state {
        Some(path) => SoftAuthenticator::open_persistent(path, config),
        None => SoftAuthenticator::new(config),
    };
    let mut auth = match auth {
        Ok(a) => a,
        Err(e) => {
            eprintln!("softkey: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(pin) = &args.pin {
        if auth.state().pin.is_none() {
            if let Err(e) = auth.preset_pin(pin) {
                eprintln!("softkey: {e}");
                return ExitCode::FAILURE;
            }
        } else {
            eprintln!("softkey: a PIN is already set in the state file; --pin ignored");
        }
    }
    let shared = SoftTransport::new(auth);
    let options = VpcdCardOptions::new(args.mode).with_addr(vpcd.clone());
    let handle = match VpcdCardHandle::spawn(options, shared.clone()) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("softkey: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "softkey: virtual FIDO card ({} APDUs) for vpcd at {}; state: {}; Ctrl-C to stop",
        args.mode_name,
        handle.addr(),
        args.state.as_deref().unwrap_or("in memory")
    );
    let mut connected = false;
    loop {
        std::thread::sleep(Duration::from_millis(500));
        let now = handle.is_connected();
        if now != connected {
            connected = now;
            if connected {
                println!("softkey: connected to vpcd");
            } else {
                println!(
                    "softkey: not connected to vpcd{}",
                    handle
                        .last_error()
                        .map(|e| format!(" ({e})"))
                        .unwrap_or_default()
                );
            }
        }
    }
}
