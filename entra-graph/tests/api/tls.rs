//! Enterprise networks (issue 17 item 1): the emulator over HTTPS with a certificate from
//! a CA this test makes. Without the CA the client refuses with a typed "not trusted"
//! error; with the CA file configured it works, directly and through a CONNECT proxy (a
//! thread here that records what it was asked to connect to); `no_proxy` bypasses the
//! proxy, and the environment's `HTTPS_PROXY`/`NO_PROXY` work too (in a child process,
//! since environment variables are process-wide).

use std::path::{Path, PathBuf};
use std::time::Duration;

use entra_graph::emulator::{Emulator, EmulatorConfig, EmulatorTls};
use entra_graph::net::NetworkOptions;
use entra_graph::oidc::{OidcSettings, OidcVerifier};
use entra_graph::{ApiVersion, GraphClient, GraphError};
use keysmith_testkit::connect_proxy::ConnectProxy;
use keysmith_testkit::TempDir;

use super::harness::{fast_config, secret_credential, KIM};

/// A private CA and an HTTPS emulator whose certificate it issued.
struct World {
    emu: Emulator,
    ca_file: PathBuf,
    _dir: TempDir,
}

fn world(name: &str) -> World {
    let dir = TempDir::new(name);
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Contoso TLS inspection root");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &rcgen::Issuer::new(ca_params, ca_key))
        .unwrap();
    // A bundle of several certificates: an unrelated root first, then ours.
    let other_key = rcgen::KeyPair::generate().unwrap();
    let mut other = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    other.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let other = other.self_signed(&other_key).unwrap();
    let ca_file = dir.path().join("corporate-roots.pem");
    std::fs::write(&ca_file, format!("{}{}", other.pem(), ca.pem())).unwrap();
    let emu = Emulator::start(EmulatorConfig {
        tls: Some(EmulatorTls {
            chain_pem: format!("{}{}", leaf.pem(), ca.pem()),
            key_pem: key.serialize_pem(),
        }),
        ..EmulatorConfig::default()
    })
    .unwrap();
    assert!(emu.base_url().starts_with("https://127.0.0.1:"));
    World {
        emu,
        ca_file,
        _dir: dir,
    }
}

fn graph(w: &World, network: NetworkOptions) -> Result<usize, GraphError> {
    let mut cfg = fast_config(&w.emu, ApiVersion::V1);
    cfg.network = network;
    let client = GraphClient::new(cfg, secret_credential(&w.emu))?;
    client.list_methods(KIM).map(|m| m.len())
}

fn oidc(w: &World, network: NetworkOptions) -> Result<(), GraphError> {
    let audience = "4f3c2b1a-0000-4000-8000-00000000c11e";
    let token = w
        .emu
        .holder_token(KIM, audience, Duration::from_secs(600))
        .unwrap();
    let mut s = OidcSettings::new(w.emu.oidc_issuer(), audience);
    s.network = network;
    // Discovery, then the keys: both over HTTPS.
    OidcVerifier::new(s)?
        .verify(&token, std::time::SystemTime::now())
        .map(|_| ())
}

fn with_ca(w: &World) -> NetworkOptions {
    NetworkOptions {
        ca_file: Some(w.ca_file.clone()),
        ..NetworkOptions::default()
    }
}

fn assert_untrusted(r: Result<impl std::fmt::Debug, GraphError>) {
    match r {
        Err(e @ GraphError::UntrustedCertificate { .. }) => {
            let GraphError::UntrustedCertificate { host, reason } = &e else {
                unreachable!()
            };
            assert!(host.starts_with("127.0.0.1:"), "{host}");
            assert!(reason.contains("UnknownIssuer"), "{reason}");
            assert!(e.to_string().contains("not trusted"), "{e}");
        }
        other => panic!("expected UntrustedCertificate, got {other:?}"),
    }
}

#[test]
fn private_root_is_refused_without_the_ca_file_and_accepted_with_it() {
    let w = world("tls-ca");
    // (a) The OS store does not know the test CA: refused, typed, at once (no retries).
    let before = w.emu.request_log().len();
    assert_untrusted(graph(&w, NetworkOptions::default()));
    assert_untrusted(oidc(&w, NetworkOptions::default()));
    assert_eq!(w.emu.request_log().len(), before, "nothing got through");
    // (b) The CA file (a bundle of two roots) configured: Graph and OIDC both work.
    assert_eq!(graph(&w, with_ca(&w)).unwrap(), 0);
    oidc(&w, with_ca(&w)).unwrap();
    // A CA file that is not there, or holds no certificate, is a configuration error.
    let missing = NetworkOptions {
        ca_file: Some(w.ca_file.with_extension("missing")),
        ..NetworkOptions::default()
    };
    assert!(matches!(
        graph(&w, missing),
        Err(GraphError::Config {
            setting: "ca_file",
            ..
        })
    ));
    let empty = w.ca_file.with_extension("empty");
    std::fs::write(&empty, "no certificates here\n").unwrap();
    let empty = NetworkOptions {
        ca_file: Some(empty),
        ..NetworkOptions::default()
    };
    assert!(matches!(
        graph(&w, empty),
        Err(GraphError::Config {
            setting: "ca_file",
            ..
        })
    ));
}

/// The shared test CONNECT proxy (keysmith_testkit::connect_proxy).
fn proxy() -> ConnectProxy {
    ConnectProxy::start()
}

#[test]
fn through_a_connect_proxy_and_around_it() {
    let w = world("tls-proxy");
    let p = proxy();
    let target = w.emu.base_url().trim_start_matches("https://").to_owned();
    let via = NetworkOptions {
        proxy: Some(p.url.clone()),
        ..with_ca(&w)
    };
    // (c) Through the proxy: the CONNECT reached it and TLS went end to end inside.
    assert_eq!(graph(&w, via.clone()).unwrap(), 0);
    oidc(&w, via.clone()).unwrap();
    let seen = p.seen.lock().unwrap().clone();
    assert!(
        !seen.is_empty() && seen.iter().all(|t| *t == target),
        "{seen:?}"
    );
    // Still the CA file that makes it work: through the proxy without it is refused.
    assert_untrusted(graph(
        &w,
        NetworkOptions {
            proxy: Some(p.url.clone()),
            ..NetworkOptions::default()
        },
    ));
    // no_proxy names the host: straight there, the proxy sees nothing new.
    let n = p.seen.lock().unwrap().len();
    let bypass = NetworkOptions {
        no_proxy: Some("example.com,127.0.0.1".into()),
        ..via.clone()
    };
    assert_eq!(graph(&w, bypass.clone()).unwrap(), 0);
    oidc(&w, bypass).unwrap();
    assert_eq!(p.seen.lock().unwrap().len(), n);
    // A proxy that is not listening: the request fails (it does go to the proxy).
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    let r = graph(
        &w,
        NetworkOptions {
            proxy: Some(dead_url),
            ..with_ca(&w)
        },
    );
    assert!(matches!(r, Err(GraphError::Transport { .. })), "{r:?}");
}

const CHILD: &str = "KEYSMITH_TLS_TEST_CHILD";

/// Runs this test binary's `env_proxy_child` with `env`.
fn child(w: &World, env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", "api::tls::env_proxy_child", "--nocapture"])
        .env(CHILD, "1")
        .env("TLS_CHILD_BASE", w.emu.base_url())
        .env("TLS_CHILD_TENANT", w.emu.tenant_id())
        .env("TLS_CHILD_CLIENT", w.emu.client_id())
        .env("TLS_CHILD_SECRET", w.emu.client_secret().unwrap())
        .env("TLS_CHILD_CA", &w.ca_file);
    for k in [
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "ALL_PROXY",
        "all_proxy",
        "NO_PROXY",
        "no_proxy",
    ] {
        cmd.env_remove(k);
    }
    cmd.envs(env.iter().copied());
    cmd.output().unwrap()
}

#[test]
fn environment_https_proxy_and_no_proxy_are_honoured() {
    let w = world("tls-env");
    let p = proxy();
    let out = child(&w, &[("HTTPS_PROXY", &p.url)]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("child ok"));
    let n = p.seen.lock().unwrap().len();
    assert!(n > 0, "HTTPS_PROXY was not used");
    // Lower case, with no_proxy naming the host: bypassed.
    let out = child(&w, &[("https_proxy", &p.url), ("no_proxy", "127.0.0.1")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(p.seen.lock().unwrap().len(), n, "no_proxy was not honoured");
}

/// The child half of the test above; does nothing unless run by it.
#[test]
fn env_proxy_child() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    let var = |k: &str| std::env::var(k).unwrap();
    let mut cfg = entra_graph::GraphConfig::new(var("TLS_CHILD_TENANT"));
    cfg.login_base = var("TLS_CHILD_BASE");
    cfg.graph_base = var("TLS_CHILD_BASE");
    cfg.network.ca_file = Some(Path::new(&var("TLS_CHILD_CA")).to_owned());
    cfg.request_timeout = Duration::from_secs(5);
    let client = GraphClient::new(
        cfg,
        entra_graph::auth::Credential::ClientSecret {
            client_id: var("TLS_CHILD_CLIENT"),
            secret: var("TLS_CHILD_SECRET").as_str().into(),
        },
    )
    .unwrap();
    assert_eq!(client.list_methods(KIM).unwrap().len(), 0);
    println!("child ok");
}
