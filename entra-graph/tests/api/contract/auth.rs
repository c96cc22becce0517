//! Credentials and tokens: certificate assertions, wrong secrets, refresh before expiry,
//! token endpoint faults, and an app without permissions.

use super::*;

#[test]
fn certificate_assertion_credentials() {
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
    // PS256 only: keysmith never signs RS256 (RUSTSEC-2023-0071, see docs/SECURITY.md).
    {
        let alg = AssertionAlg::Ps256;
        let cert =
            CertificateCredential::from_pem(&fixture("app-cert.pem"), &fixture("app-key.pem"), alg)
                .unwrap();
        let c = GraphClient::new(
            fast_config(&emu, ApiVersion::V1),
            Credential::Certificate {
                client_id: emu.client_id().into(),
                certificate: Box::new(cert),
            },
        )
        .unwrap();
        c.check_connection().unwrap();
    }
    // A certificate not registered with the app is refused.
    let other = CertificateCredential::from_pem(
        &fixture("other-cert.pem"),
        &fixture("other-key.pem"),
        AssertionAlg::Ps256,
    )
    .unwrap();
    let c = GraphClient::new(
        fast_config(&emu, ApiVersion::V1),
        Credential::Certificate {
            client_id: emu.client_id().into(),
            certificate: Box::new(other),
        },
    )
    .unwrap();
    let e = c.check_connection().unwrap_err();
    assert!(
        matches!(&e, GraphError::Token { status: 401, error, description } if error == "invalid_client" && description.contains("AADSTS700027")),
        "{e:?}"
    );
}

#[test]
fn wrong_secret_and_token_callback() {
    let emu = emulator();
    let bad = GraphClient::new(
        fast_config(&emu, ApiVersion::V1),
        Credential::ClientSecret {
            client_id: emu.client_id().into(),
            secret: "wrong".into(),
        },
    )
    .unwrap();
    let e = bad.list_methods(KIM).unwrap_err();
    assert!(
        matches!(&e, GraphError::Token { status: 401, description, .. } if description.contains("AADSTS7000215")),
        "{e:?}"
    );
    assert!(!format!("{bad:?}").contains(emu.client_secret().unwrap()));
    // A callback owned by the product: called once, token reused.
    let token = raw_token(&emu);
    let calls = Arc::new(AtomicU32::new(0));
    let n = calls.clone();
    let cb = Credential::Callback(Arc::new(move || {
        n.fetch_add(1, Ordering::SeqCst);
        Ok(AccessToken {
            token: Secret::new(token.clone()),
            expires_in: Duration::from_secs(3000),
        })
    }));
    let c = GraphClient::new(fast_config(&emu, ApiVersion::V1), cb).unwrap();
    c.list_methods(KIM).unwrap();
    c.user(KIM).unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let failing = GraphClient::new(
        fast_config(&emu, ApiVersion::V1),
        Credential::Callback(Arc::new(|| Err("vault locked".into()))),
    )
    .unwrap();
    assert_eq!(
        failing.user(KIM),
        Err(GraphError::TokenCallback {
            reason: "vault locked".into()
        })
    );
}

#[test]
fn expired_token_is_refreshed() {
    let emu = emulator();
    let c = client(&emu, ApiVersion::V1);
    c.user(KIM).unwrap();
    emu.advance_clock(Duration::from_secs(2 * 3600));
    c.user(KIM).unwrap();
    assert_eq!(c.stats().tokens, 2, "401 after expiry, new token, retried");
}

#[test]
fn token_refreshed_before_expiry_and_token_endpoint_faults_retried() {
    let emu = Emulator::start(EmulatorConfig {
        token_lifetime: Duration::from_secs(4),
        ..EmulatorConfig::default()
    })
    .unwrap();
    emu.inject(FaultRule::new(
        "POST",
        "oauth2/v2.0/token",
        Fault::Status {
            status: 503,
            retry_after: Some(0),
        },
        1,
    ));
    let c = client(&emu, ApiVersion::V1);
    c.user(KIM).unwrap();
    assert_eq!(c.stats().tokens, 1);
    std::thread::sleep(Duration::from_millis(3200));
    c.user(KIM).unwrap();
    assert_eq!(
        c.stats().tokens,
        2,
        "refreshed a quarter of the lifetime early"
    );
    assert!(
        emu.request_log().iter().all(|r| r.status != 401),
        "never sent an expired token"
    );
}

#[test]
fn app_without_permissions_gets_typed_403() {
    let cfg = EmulatorConfig {
        apps: vec![AppRegistration {
            client_id: "reader-app".into(),
            client_secret: Some("reader-secret".into()),
            certificates_pem: vec![],
            roles: Some(vec![
                "User.Read.All".into(),
                "UserAuthMethod-Passkey.Read.All".into(),
            ]),
        }],
        ..EmulatorConfig::default()
    };
    let emu = Emulator::start(cfg).unwrap();
    emu.seed_methods(KIM, 1);
    let c = client(&emu, ApiVersion::V1);
    c.user(KIM).unwrap();
    assert_eq!(c.list_methods(KIM).unwrap().len(), 1);
    for e in [
        c.creation_options(KIM, None).unwrap_err(),
        c.delete_method(KIM, &emu.methods(KIM)[0].id).unwrap_err(),
        c.fido2_policy().unwrap_err(),
        c.group_members(GROUP).unwrap_err(),
    ] {
        assert!(
            matches!(&e, GraphError::Api { status: 403, code, request_id: Some(_), .. } if code == "Authorization_RequestDenied"),
            "{e:?}"
        );
    }
    assert_eq!(emu.method_count(), 1);
}
