//! Shared pieces of the emulator tests: clients, a raw HTTP/1.1 client, registration.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use entra_graph::auth::Credential;
use entra_graph::emulator::{Emulator, EmulatorConfig};
use entra_graph::webauthn::{build_registration, ClientData};
use entra_graph::wire::RegistrationBody;
use entra_graph::{ApiVersion, GraphClient, GraphConfig, GraphError, RetryPolicy};

use super::soft_key::{make_credential, MakeArgs};

pub const KIM: &str = "kim@contoso.onmicrosoft.com";
pub const KIM_ID: &str = "6e8a5a4e-5a0d-4e4c-9c8e-2f7c3d8a1b11";
pub const GROUP: &str = "02bd9fd6-8f93-4758-87c3-1fb73740a315";

pub fn emulator() -> Emulator {
    Emulator::start(EmulatorConfig::default()).unwrap()
}

pub fn fast_config(emu: &Emulator, version: ApiVersion) -> GraphConfig {
    let mut cfg = emu.graph_config(version);
    cfg.retry = RetryPolicy {
        max_attempts: 5,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(200),
        max_retry_after: Duration::from_secs(5),
        ..RetryPolicy::default()
    };
    cfg.request_timeout = Duration::from_secs(2);
    cfg
}

pub fn secret_credential(emu: &Emulator) -> Credential {
    Credential::ClientSecret {
        client_id: emu.client_id().into(),
        secret: emu.client_secret().unwrap().into(),
    }
}

pub fn client(emu: &Emulator, version: ApiVersion) -> GraphClient {
    GraphClient::new(fast_config(emu, version), secret_credential(emu)).unwrap()
}

/// Creation options from the service, a fresh credential over them, the body.
pub fn registration(
    client: &GraphClient,
    user: &str,
    name: &str,
    origin: Option<&str>,
    args: &MakeArgs<'_>,
) -> (RegistrationBody, Vec<u8>) {
    let options = client.creation_options(user, None).unwrap();
    let cd = ClientData::for_creation(&options, origin).unwrap();
    let (result, cred_id) = make_credential(&cd.hash, args);
    (build_registration(&cd, name, &result).unwrap(), cred_id)
}

/// A raw HTTP/1.1 exchange (for bodies the client refuses to send).
pub fn raw(
    emu: &Emulator,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String) {
    let mut s = TcpStream::connect(emu.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
        emu.addr(),
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

pub fn raw_token(emu: &Emulator) -> String {
    let form = format!(
        "grant_type=client_credentials&client_id={}&client_secret={}&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default",
        emu.client_id(),
        emu.client_secret().unwrap()
    );
    let (status, body) = raw(
        emu,
        "POST",
        &format!("/{}/oauth2/v2.0/token", emu.tenant_id()),
        &[("Content-Type", "application/x-www-form-urlencoded")],
        form.as_bytes(),
    );
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["access_token"].as_str().unwrap().to_owned()
}

/// FIDO metadata (a verified MDS BLOB made by the test kit) that lists the soft key's
/// attestation certificate (`tests/fixtures/attestation-cert.pem`) as the root for its
/// AAGUID: with it, the emulator counts that key as attested, as Entra counts a key in
/// the FIDO MDS (issue 13 item 1).
pub fn mds_listing_the_soft_key() -> fido_core::trust::TrustStore {
    use keysmith_testkit::mds::{Entry, Mds};
    let pem = std::fs::read(format!(
        "{}/tests/fixtures/attestation-cert.pem",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let cert = fido_core::trust::pem_certificates(&pem).unwrap().remove(0);
    let mds = Mds::new();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let blob = fido_core::trust::MdsBlob::verify(
        &mds.blob(&[Entry::new(super::soft_key::YK5, vec![cert])]),
        &[mds.root.der()],
        now,
    )
    .unwrap();
    fido_core::trust::TrustStore::new(Some(blob), vec![]).unwrap()
}

/// A pre-flight result with a refusal by passkey profiles reduced to its plain reason
/// (the first profile's), for tests that check the reason only.
pub fn plain<T>(r: Result<T, GraphError>) -> Result<T, GraphError> {
    r.map_err(|e| match e {
        GraphError::Preflight(p) => GraphError::Preflight(p.cause().clone()),
        e => e,
    })
}
