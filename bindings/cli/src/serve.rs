//! `keysmith serve`: the HTTPS server half of a split deployment (crate keysmith-server).
//!
//! - `keysmith serve run --config SERVER.toml` serves until SIGINT/SIGTERM;
//! - `keysmith serve init-key --key FILE` creates the server signing key (P-256, PKCS#8
//!   PEM, mode 0600; refused if FILE exists);
//! - `keysmith serve print-key --key FILE` prints the public key (base64url SEC1) and its
//!   SHA-256 fingerprint, which agents pin.

use std::path::Path;
use std::process::ExitCode;

use keysmith_server::keyfile::grouped;
use keysmith_server::ServerKey;

/// The usage of `keysmith serve`.
pub(crate) const USAGE: &str = "usage:
  keysmith serve run --config SERVER.toml   serve the operator API, agent enrolment and
                                            agent sessions (see docs/server.md)
  keysmith serve init-key --key FILE        create the server signing key (P-256, 0600)
  keysmith serve print-key --key FILE       its public key and the fingerprint agents pin";

fn print_key(key: &ServerKey) {
    use base64::Engine as _;
    let pk = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key.public_key());
    println!("public_key: {pk}");
    println!("fingerprint: sha256:{}", key.fingerprint());
    println!("fingerprint_grouped: {}", grouped(&key.fingerprint()));
}

/// Runs `keysmith serve ARGS` (the words after `serve`).
pub(crate) fn main(args: &[String]) -> ExitCode {
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = match words.as_slice() {
        ["run", "--config", file] => keysmith_server::run(Path::new(file)),
        ["init-key", "--key", file] => ServerKey::init(Path::new(file)).map(|k| {
            eprintln!("created {file}");
            print_key(&k);
        }),
        ["print-key", "--key", file] => ServerKey::load(Path::new(file)).map(|k| print_key(&k)),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("keysmith serve: {e}");
            ExitCode::from(match e {
                keysmith_server::ServerError::Config(_) => 2,
                _ => 5,
            })
        }
    }
}
