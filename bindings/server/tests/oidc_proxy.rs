//! The server's `[oidc]` network settings (issue 17): `ca_file`, `proxy` and `no_proxy`
//! go through entra-graph's own network options, as an IdP connection's do. The issuer
//! is the emulator over HTTPS with a certificate from a CA this test makes; operators'
//! tokens are checked through the test CONNECT proxy (keysmith_testkit::connect_proxy),
//! which records the tunnel; `no_proxy` naming the issuer goes around it, and a dead proxy
//! fails the token check instead of going direct.

use std::path::Path;

use entra_graph::emulator::{
    Emulator, EmulatorConfig, EmulatorTls, GroupFixture, TenantFixture, DEMO_PASSWORD,
};
use keysmith_server::{Server, ServerConfig};
use keysmith_testkit::connect_proxy::ConnectProxy;
use keysmith_testkit::{TempDir, ADELE};

const API: &str = "api://keysmith";

/// The emulator over HTTPS (leaf from a private CA written to `dir/ca.pem`), with ADELE
/// holding the `auditor` app role.
fn https_emulator(dir: &Path) -> Emulator {
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
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    let mut tenant = TenantFixture::fresh();
    let adele = tenant
        .users
        .iter()
        .find(|u| u.user_principal_name.as_deref() == Some(ADELE))
        .map(|u| u.id.clone())
        .unwrap();
    tenant.groups.push(GroupFixture {
        id: "00000000-0000-4000-8000-0000000000a0".into(),
        display_name: "approle:auditor".into(),
        members: vec![adele],
    });
    Emulator::start(EmulatorConfig {
        tenant,
        tls: Some(EmulatorTls {
            chain_pem: format!("{}{}", leaf.pem(), ca.pem()),
            key_pem: key.serialize_pem(),
        }),
        ..EmulatorConfig::default()
    })
    .unwrap()
}

/// An auditor's access token for ADELE from the emulator's token endpoint.
fn auditor_token(emu: &Emulator, dir: &Path) -> String {
    let ca = reqwest::Certificate::from_pem(&std::fs::read(dir.join("ca.pem")).unwrap()).unwrap();
    let http = reqwest::blocking::Client::builder()
        .add_root_certificate(ca)
        .no_proxy()
        .build()
        .unwrap();
    let r: serde_json::Value = http
        .post(emu.token_url())
        .form(&[
            ("grant_type", "password"),
            ("client_id", emu.client_id()),
            ("username", ADELE),
            ("password", DEMO_PASSWORD),
            ("scope", &format!("{API}/.default")),
        ])
        .send()
        .unwrap()
        .json()
        .unwrap();
    r["access_token"].as_str().expect("access_token").to_owned()
}

/// The server configuration with `oidc_extra` lines in `[oidc]`.
fn config(dir: &Path, emu: &Emulator, oidc_extra: &str) -> String {
    let session = dir.join("session.json");
    std::fs::write(
        &session,
        serde_json::json!({
            "repository": {"sqlite": dir.join("k.db")},
            "pin_key": "07".repeat(32),
        })
        .to_string(),
    )
    .unwrap();
    format!(
        "listen = \"127.0.0.1:0\"\ninsecure_loopback_http = true\nsession_config = {session:?}\n\
         server_key = {key:?}\n[oidc]\nissuer = {iss:?}\naudience = {API:?}\n\
         ca_file = {ca:?}\n{oidc_extra}",
        key = dir.join("server-key.pem"),
        iss = emu.oidc_issuer(),
        ca = dir.join("ca.pem"),
    )
}

/// Serves `config` on a thread and returns the status of `GET /v1/keys` with `token`.
fn keys_status(config: &str, token: &str) -> u16 {
    let server = Server::new(ServerConfig::from_toml(config).unwrap()).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(server.serve(move |a| tx.send(a).unwrap(), async move {
            let _ = stop_rx.await;
        }))
        .unwrap();
    });
    let addr = rx.recv().unwrap();
    let status = reqwest::blocking::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("http://{addr}/v1/keys"))
        .bearer_auth(token)
        .send()
        .unwrap()
        .status()
        .as_u16();
    let _ = stop_tx.send(());
    thread.join().unwrap();
    status
}

#[test]
fn oidc_discovery_and_keys_go_through_the_configured_proxy() {
    let dir = TempDir::new("serve-oidc-proxy");
    keysmith_server::ServerKey::init(&dir.join("server-key.pem")).unwrap();
    let emu = https_emulator(&dir);
    let token = auditor_token(&emu, &dir);
    let target = emu.base_url().trim_start_matches("https://").to_owned();
    let proxy = ConnectProxy::start();

    // Through the proxy: discovery and JWKS were tunnelled to the issuer, TLS end to end
    // with the CA file.
    let via = format!("proxy = {:?}\n", proxy.url);
    assert_eq!(keys_status(&config(&dir, &emu, &via), &token), 200);
    let seen = proxy.targets();
    assert!(
        !seen.is_empty() && seen.iter().all(|t| *t == target),
        "{seen:?}"
    );

    // no_proxy naming the issuer's host: straight there, the proxy sees nothing new.
    let n = proxy.targets().len();
    let around = format!(
        "proxy = {:?}\nno_proxy = \"example.com,127.0.0.1\"\n",
        proxy.url
    );
    assert_eq!(keys_status(&config(&dir, &emu, &around), &token), 200);
    assert_eq!(proxy.targets().len(), n);

    // A proxy that is not listening: the keys cannot be fetched, so the token is not
    // accepted (no silent direct connection).
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    let status = keys_status(
        &config(&dir, &emu, &format!("proxy = {dead_url:?}\n")),
        &token,
    );
    assert_ne!(status, 200);
}

#[test]
fn oidc_network_settings_are_checked_at_load() {
    let dir = TempDir::new("serve-oidc-net-config");
    keysmith_server::ServerKey::init(&dir.join("server-key.pem")).unwrap();
    let emu = Emulator::start(EmulatorConfig::default()).unwrap();
    std::fs::write(dir.join("ca.pem"), "").unwrap();
    // no_proxy without proxy, and a proxy that is not http(s): refused with the setting.
    let e = ServerConfig::from_toml(&config(&dir, &emu, "no_proxy = \"127.0.0.1\"\n")).unwrap_err();
    assert!(e.to_string().contains("no_proxy"), "{e}");
    let e = ServerConfig::from_toml(&config(&dir, &emu, "proxy = \"socks9://h:1\"\n")).unwrap_err();
    assert!(e.to_string().contains("proxy"), "{e}");
    // "direct" is accepted; an empty CA file is refused when the server starts.
    let cfg = ServerConfig::from_toml(&config(&dir, &emu, "proxy = \"direct\"\n")).unwrap();
    let e = Server::new(cfg).unwrap_err();
    assert!(e.to_string().contains("ca_file"), "{e}");
}
