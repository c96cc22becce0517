//! Issue 13 item 8: the emulator as strict and as lenient as Entra. Each test shows a
//! behaviour the old emulator got wrong (it would pass, or fail, the other way).

use entra_graph::webauthn::{build_registration, ClientData};

use super::super::soft_key::make_credential;
use super::*;

/// Lenient like Entra: a challenge is reusable until it expires (DSI-TEST registers two
/// passkeys from one creationOptions answer). The old emulator consumed it on first use
/// and answered 400 "not issued" to the second key.
#[test]
fn two_keys_register_on_one_challenge() {
    let emu = emulator();
    let c = client(&emu, ApiVersion::V1);
    let options = c.creation_options(KIM, None).unwrap();
    let cd = ClientData::for_creation(&options, None).unwrap();
    for name in ["first", "second"] {
        let (result, _) = make_credential(&cd.hash, &MakeArgs::default());
        let body = build_registration(&cd, name, &result).unwrap();
        c.register(KIM, &body).unwrap();
    }
    assert_eq!(emu.methods(KIM).len(), 2);
    assert_eq!(emu.outstanding_challenges(), 1, "kept until it expires");
    // Expired, it is refused.
    emu.advance_clock(Duration::from_secs(6 * 60));
    let (result, _) = make_credential(&cd.hash, &MakeArgs::default());
    let body = build_registration(&cd, "late", &result).unwrap();
    let e = c.register(KIM, &body).unwrap_err();
    assert!(e.to_string().contains("expired"), "{e}");
}

/// Strict like Entra: members other than `id`, `response`, `clientExtensionResults`
/// are refused (DSI-PKC). The client sends only those; a browser-style body with
/// `rawId`/`type` (which the old emulator took) gets 400.
#[test]
fn unknown_members_in_the_registration_body_are_refused() {
    let emu = emulator();
    let c = client(&emu, ApiVersion::V1);
    let token = raw_token(&emu);
    let auth = format!("Bearer {token}");
    let path = format!("/v1.0/users/{KIM_ID}/authentication/fido2Methods");
    for (member, at) in [
        ("rawId", "publicKeyCredential"),
        ("type", "publicKeyCredential"),
        ("authenticatorAttachment", "publicKeyCredential"),
        ("transports", "response"),
        ("isUsableOnce", ""),
    ] {
        let (body, _) = registration(&c, KIM, "k", None, &MakeArgs::default());
        let mut v = serde_json::to_value(&body).unwrap();
        let target = match at {
            "publicKeyCredential" => &mut v["publicKeyCredential"],
            "response" => &mut v["publicKeyCredential"]["response"],
            _ => &mut v,
        };
        target[member] = serde_json::json!("x");
        let (status, text) = raw(
            &emu,
            "POST",
            &path,
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
            ],
            &serde_json::to_vec(&v).unwrap(),
        );
        assert_eq!(status, 400, "{member}: {text}");
        assert!(text.contains(member), "{text}");
    }
    assert_eq!(emu.method_count(), 0);
    // What the client sends is accepted.
    let (body, _) = registration(&c, KIM, "k", None, &MakeArgs::default());
    c.register(KIM, &body).unwrap();
}

/// Strict like Entra: a method id is an exact key. The old emulator also matched the
/// credential id in any other encoding, so a delete by raw credential id passed.
#[test]
fn method_ids_are_exact() {
    let emu = emulator();
    let c = client(&emu, ApiVersion::V1);
    let (body, cred) = registration(&c, KIM, "k", None, &MakeArgs::default());
    let m = c.register(KIM, &body).unwrap().method;
    for other in [
        encode_b64url(&cred),
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &cred),
    ] {
        assert_ne!(other, m.id);
        assert_eq!(c.get_method(KIM, &other).unwrap_err().status(), Some(404));
    }
    assert_eq!(c.get_method(KIM, &m.id).unwrap(), m);
}

/// Lenient like Entra: the token endpoint takes a verified domain in place of the
/// tenant id (YUB uses the tenant name). The old emulator answered AADSTS90002.
#[test]
fn token_endpoint_takes_a_verified_domain() {
    let emu = emulator();
    let mut cfg = fast_config(&emu, ApiVersion::V1);
    cfg.tenant = "contoso.onmicrosoft.com".into();
    let c = GraphClient::new(cfg, secret_credential(&emu)).unwrap();
    c.check_connection().unwrap();
    let mut cfg = fast_config(&emu, ApiVersion::V1);
    cfg.tenant = "fabrikam.onmicrosoft.com".into();
    let c = GraphClient::new(cfg, secret_credential(&emu)).unwrap();
    assert!(c
        .check_connection()
        .unwrap_err()
        .to_string()
        .contains("AADSTS90002"));
}

/// Lenient like Entra: a certificate assertion identified by `x5t` (SHA-1, the older
/// guidance, CERT) is accepted as well as `x5t#S256`. The old emulator required
/// `x5t#S256`.
#[test]
fn certificate_assertion_with_sha1_x5t() {
    use rsa::pkcs8::DecodePrivateKey;
    use rsa::signature::{RandomizedSigner, SignatureEncoding};
    let cfg = EmulatorConfig {
        apps: vec![AppRegistration {
            client_id: "11112222-3333-4444-5555-666677778888".into(),
            client_secret: None,
            certificates_pem: vec![fixture("app-cert.pem")],
            roles: None,
        }],
        ..EmulatorConfig::default()
    };
    let emu = Emulator::start(cfg).unwrap();
    let der = entra_graph::auth::pem_block(&fixture("app-cert.pem"), "CERTIFICATE").unwrap();
    let key = rsa::RsaPrivateKey::from_pkcs8_pem(&fixture("app-key.pem")).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let assertion = |x5t_header: &str, x5t: String| {
        let header = serde_json::json!({"alg": "PS256", "typ": "JWT", x5t_header: x5t});
        let claims = serde_json::json!({
            "aud": emu.token_url(), "iss": emu.client_id(), "sub": emu.client_id(),
            "jti": encode_b64url(x5t_header.as_bytes()), "nbf": now, "iat": now, "exp": now + 600,
        });
        let input = format!(
            "{}.{}",
            encode_b64url(header.to_string().as_bytes()),
            encode_b64url(claims.to_string().as_bytes())
        );
        let k = rsa::pss::BlindedSigningKey::<sha2::Sha256>::new(key.clone());
        let sig = k
            .sign_with_rng(&mut rand_core::OsRng, input.as_bytes())
            .to_vec();
        format!("{input}.{}", encode_b64url(&sig))
    };
    let post = |jwt: String| {
        let form = format!(
            "grant_type=client_credentials&client_id={}&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion={jwt}",
            emu.client_id()
        );
        raw(
            &emu,
            "POST",
            &format!("/{}/oauth2/v2.0/token", emu.tenant_id()),
            &[("Content-Type", "application/x-www-form-urlencoded")],
            form.as_bytes(),
        )
    };
    let (status, text) = post(assertion("x5t", encode_b64url(&openssl::sha::sha1(&der))));
    assert_eq!(status, 200, "{text}");
    // A SHA-1 thumbprint of another certificate is not registered.
    let (status, text) = post(assertion("x5t", encode_b64url(&[0u8; 20])));
    assert_eq!(status, 401, "{text}");
    assert!(text.contains("AADSTS700027"), "{text}");
}

/// `attestationCertificates` are 40-hex SHA-1 thumbprints (V1-LIST, B-POST); the old
/// emulator wrote the first 20 bytes of a SHA-256.
#[test]
fn attestation_certificates_are_sha1_thumbprints() {
    let emu = emulator();
    let c = client(&emu, ApiVersion::V1);
    let (body, _) = registration(&c, KIM, "k", None, &MakeArgs::default());
    let m = c.register(KIM, &body).unwrap().method;
    let der =
        entra_graph::auth::pem_block(&fixture("attestation-cert.pem"), "CERTIFICATE").unwrap();
    assert_eq!(
        m.attestation_certificates,
        vec![hex::encode(openssl::sha::sha1(&der))]
    );
}

/// Error bodies as Entra writes them (DSI-13): `innerError.message`, and the caller's
/// `client-request-id` echoed in the body (the old emulator put its own request id
/// there).
#[test]
fn error_bodies_echo_the_client_request_id() {
    let emu = emulator();
    let token = raw_token(&emu);
    let auth = format!("Bearer {token}");
    let (status, text) = raw(
        &emu,
        "GET",
        "/v1.0/users/nobody@contoso.onmicrosoft.com",
        &[
            ("Authorization", &auth),
            ("client-request-id", "caller-crid-42"),
        ],
        b"",
    );
    assert_eq!(status, 404);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let inner = &v["error"]["innerError"];
    assert_eq!(inner["client-request-id"], "caller-crid-42", "{text}");
    assert_eq!(inner["message"], v["error"]["message"]);
    assert_ne!(inner["request-id"], "caller-crid-42");
    // The client reads the request id from such a body.
    let c = client(&emu, ApiVersion::V1);
    let e = c.user("nobody@contoso.onmicrosoft.com").unwrap_err();
    assert!(e.request_id().is_some());
}

/// The whole response head and body of a raw request (for `x-ms-*` headers).
fn raw_full(emu: &Emulator, method: &str, path: &str, auth: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(emu.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: 0\r\nAuthorization: {auth}\r\n\r\n",
        emu.addr()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).to_ascii_lowercase()
}

/// Writes are metered in their own bucket (3 000 per 150 s at Graph, FACTS) with
/// `x-ms-*` headers; the old emulator had one bucket for everything, so a burst of
/// deletions never ran out while reads were plentiful.
#[test]
fn writes_have_their_own_throttle_bucket() {
    let emu = emulator();
    let ids = emu.seed_methods(KIM, 3);
    emu.set_throttle(Some(ThrottleConfig::documented_small_tenant()));
    emu.set_write_throttle(Some(ThrottleConfig {
        capacity: 2.0,
        refill_per_sec: 0.01,
    }));
    let auth = format!("Bearer {}", raw_token(&emu));
    for (i, id) in ids.iter().enumerate() {
        let path = format!(
            "/v1.0/users/{KIM_ID}/authentication/fido2Methods/{}",
            entra_graph::encode_segment(id)
        );
        let text = raw_full(&emu, "DELETE", &path, &auth);
        if i < 2 {
            assert!(text.starts_with("http/1.1 204"), "{text}");
            assert!(text.contains("x-ms-resource-unit: 1"), "{text}");
        } else {
            assert!(text.starts_with("http/1.1 429"), "{text}");
            assert!(text.contains("retry-after:"), "{text}");
            assert!(
                text.contains("x-ms-throttle-scope: tenant_application/write"),
                "{text}"
            );
        }
    }
    // Reads still pass: their bucket is not empty.
    let text = raw_full(
        &emu,
        "GET",
        &format!("/v1.0/users/{KIM_ID}/authentication/fido2Methods"),
        &auth,
    );
    assert!(text.starts_with("http/1.1 200"), "{text}");
    // The client gives up on a write whose Retry-After exceeds its limit.
    let c = client(&emu, ApiVersion::V1);
    assert_eq!(
        c.delete_method(KIM, &ids[2]).unwrap_err().status(),
        Some(429)
    );
    assert_eq!(c.list_methods(KIM).unwrap().len(), 1);
}

/// Item 8: replication lag. A registration committed but whose answer was lost is not
/// listed at once; the re-POST is refused as "already registered", and the client keeps
/// looking (with backoff) until the listing shows it, instead of failing. The old
/// emulator was strongly consistent, so this path was never exercised.
#[test]
fn reconciliation_survives_replication_lag() {
    let emu = emulator();
    let c = client(&emu, ApiVersion::V1);
    emu.set_replication_lag(Duration::from_millis(250));
    let (body, cred) = registration(&c, KIM, "key", None, &MakeArgs::default());
    emu.inject(FaultRule::new(
        "POST",
        "fido2Methods",
        Fault::CommitThenDrop,
        1,
    ));
    let reg = c.register(KIM, &body).unwrap();
    assert!(reg.reconciled);
    assert!(entra_graph::ids::matches_credential(&reg.method.id, &cred));
    assert_eq!(
        emu.method_count(),
        1,
        "never two passkeys for one credential"
    );
    // A fresh registration is not listed during the lag, and is after it.
    let (body, _) = registration(&c, KIM, "second", None, &MakeArgs::default());
    c.register(KIM, &body).unwrap();
    assert_eq!(c.list_methods(KIM).unwrap().len(), 1);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(c.list_methods(KIM).unwrap().len(), 2);
}

/// `$batch` carries inner bodies and honours `dependsOn` (the old emulator dropped
/// bodies and ignored dependencies and duplicate ids).
#[test]
fn batch_carries_bodies_and_depends_on() {
    let emu = emulator();
    let auth = format!("Bearer {}", raw_token(&emu));
    let post = |body: serde_json::Value| {
        let (status, text) = raw(
            &emu,
            "POST",
            "/v1.0/$batch",
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
            ],
            &serde_json::to_vec(&body).unwrap(),
        );
        (
            status,
            serde_json::from_str::<serde_json::Value>(&text).unwrap_or_default(),
        )
    };
    let (status, v) = post(serde_json::json!({"requests": [
        {"id": "1", "method": "GET", "url": "/users/nobody@contoso.onmicrosoft.com"},
        {"id": "2", "method": "POST", "url": format!("/users/{KIM_ID}/checkMemberGroups"),
         "headers": {"Content-Type": "application/json"}, "body": {"groupIds": [GROUP]}},
        {"id": "3", "method": "GET", "url": format!("/users/{KIM_ID}"), "dependsOn": ["1"]},
        {"id": "4", "method": "POST", "url": format!("/users/{KIM_ID}/checkMemberGroups"),
         "body": {"groupIds": [GROUP]}},
    ]}));
    assert_eq!(status, 200);
    let by_id = |id: &str| {
        v["responses"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id)
            .cloned()
            .unwrap()
    };
    assert_eq!(by_id("1")["status"], 404);
    assert_eq!(by_id("2")["status"], 200, "{v}");
    assert_eq!(by_id("2")["body"]["value"][0], GROUP);
    assert_eq!(by_id("3")["status"], 424, "its dependency failed");
    assert_eq!(
        by_id("4")["status"],
        400,
        "a body needs a Content-Type header"
    );
    let (status, _) = post(serde_json::json!({"requests": [
        {"id": "1", "method": "GET", "url": "/users"},
        {"id": "1", "method": "GET", "url": "/users"},
    ]}));
    assert_eq!(status, 400, "duplicate ids");
    let (status, _) = post(serde_json::json!({"requests": [
        {"id": "1", "method": "GET", "url": "/users", "dependsOn": ["2"]},
        {"id": "2", "method": "GET", "url": "/users", "dependsOn": ["1"]},
    ]}));
    assert_eq!(status, 400, "a dependency cycle");
}
