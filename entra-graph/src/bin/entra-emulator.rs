//! `entra-emulator --listen 127.0.0.1:PORT [--fixtures FILE] [--rp-id ID]
//!  [--client-id ID --client-secret SECRET] [--latency-ms MS] [--throttle BURST:PER_SEC]
//!  [--page-size N] [--token-lifetime-secs S] [--retry-after seconds|http-date]`
//!
//! Serves a faithful Entra/Graph emulator until killed. The first stdout line is one
//! JSON object with `base_url`, `token_url`, `tenant_id`, `client_id`, `client_secret`
//! that work against it, plus `oidc_issuer` and `jwks_url` of its OpenID Connect side
//! (holder ID tokens: `grant_type=password` at `token_url` with `client_id`, a user's
//! UPN and the demo password `keysmith-demo-password`, `scope=openid profile` (`oid` only
//! with `profile`, as at Entra), plus `nonce=` from the self-service sign-in and
//! optionally `amr=pwd` for a sign-in without MFA (default `pwd mfa`)).

use std::io::Write as _;
use std::process::ExitCode;

use std::time::Duration;

use entra_graph::emulator::{
    AppRegistration, Emulator, EmulatorConfig, TenantFixture, ThrottleConfig,
};

fn usage() -> ExitCode {
    eprintln!(
        "usage: entra-emulator --listen 127.0.0.1:PORT [--fixtures FILE] [--rp-id ID] \
         [--client-id ID --client-secret SECRET] [--latency-ms MS] [--throttle BURST:PER_SEC] \
         [--page-size N] [--token-lifetime-secs S] [--retry-after seconds|http-date]"
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let mut config = EmulatorConfig::default();
    let mut latency = None;
    let mut throttle = None;
    let mut client_id = None;
    let mut client_secret = None;
    let mut retry_after_date = false;
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
            ("--client-id", Some(v)) => client_id = Some(v),
            ("--client-secret", Some(v)) => client_secret = Some(v),
            ("--latency-ms", Some(v)) => match v.parse() {
                Ok(ms) => latency = Some(Duration::from_millis(ms)),
                Err(_) => return usage(),
            },
            ("--page-size", Some(v)) => match v.parse() {
                Ok(n) if n > 0 => config.page_size = n,
                _ => return usage(),
            },
            ("--token-lifetime-secs", Some(v)) => match v.parse() {
                Ok(s) if s > 0 => config.token_lifetime = Duration::from_secs(s),
                _ => return usage(),
            },
            ("--retry-after", Some(v)) => match v.as_str() {
                "seconds" => retry_after_date = false,
                "http-date" => retry_after_date = true,
                _ => return usage(),
            },
            ("--throttle", Some(v)) => {
                let parsed = v
                    .split_once(':')
                    .and_then(|(b, r)| Some((b.parse::<f64>().ok()?, r.parse::<f64>().ok()?)));
                match parsed {
                    Some((capacity, refill_per_sec)) if capacity >= 1.0 && refill_per_sec > 0.0 => {
                        throttle = Some(ThrottleConfig {
                            capacity,
                            refill_per_sec,
                        })
                    }
                    _ => return usage(),
                }
            }
            _ => return usage(),
        }
    }
    match (client_id, client_secret) {
        (Some(id), secret) => config.apps.push(AppRegistration {
            client_id: id,
            client_secret: secret,
            certificates_pem: vec![],
            roles: None,
        }),
        (None, Some(_)) => return usage(),
        (None, None) => {}
    }
    let emulator = match Emulator::start(config) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("entra-emulator: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(l) = latency {
        emulator.set_latency(l);
    }
    emulator.set_throttle(throttle);
    emulator.set_retry_after_http_date(retry_after_date);
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
