//! `entra-emulator --listen 127.0.0.1:PORT [--fixtures FILE] [--rp-id ID]`
//!
//! Serves a faithful Entra/Graph emulator until killed. The first stdout line is one
//! JSON object with `base_url`, `token_url`, `tenant_id`, `client_id`, `client_secret`
//! that work against it.

use std::io::Write as _;
use std::process::ExitCode;

use entra_graph::emulator::{Emulator, EmulatorConfig, TenantFixture};

fn usage() -> ExitCode {
    eprintln!("usage: entra-emulator --listen 127.0.0.1:PORT [--fixtures FILE] [--rp-id ID]");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let mut config = EmulatorConfig::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--listen", Some(v)) => match v.parse() {
                Ok(a) => config.listen = a,
                Err(e) => {
                    eprintln!("--listen {v}: {e}");
                    return usage();
                }
            },
            ("--fixtures", Some(path)) => {
                let text = match std::fs::read(&path) {
                    Ok(t) => t,
                    Err(e) => {
                        eprintln!("--fixtures {path}: {e}");
                        return ExitCode::FAILURE;
                    }
                };
                match serde_json::from_slice::<TenantFixture>(&text) {
                    Ok(t) => config.tenant = t,
                    Err(e) => {
                        eprintln!("--fixtures {path}: {e}");
                        return ExitCode::FAILURE;
                    }
                }
            }
            ("--rp-id", Some(v)) => config.rp_id = v,
            _ => return usage(),
        }
    }
    let emulator = match Emulator::start(config) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("entra-emulator: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{}", emulator.connection_json())
        .and_then(|()| out.flush())
        .is_err()
    {
        return ExitCode::FAILURE;
    }
    drop(out);
    loop {
        std::thread::park();
    }
}
