//! The facade end to end: the real Entra emulator on loopback, a persistent software key
//! and SQLite in a temporary directory, driven only through the JSON configuration.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use entra_graph::emulator::{Emulator, HolderTokenOptions};
use keysmith_facade::{Device, ErrorKind, IssueParams, KeyFilter, Prompt, Session};
use keysmith_testkit::{session_config, softkey_spec, EmulatorWorld, STANDARD_NAME};

fn config(emulator: &Emulator, dir: &std::path::Path) -> String {
    session_config(emulator, dir, "facade-test")
}

#[test]
fn issue_activate_sign_in_revoke_through_the_facade() {
    let EmulatorWorld { emulator, dir } = EmulatorWorld::start("facade-flow");
    let session = Session::open(&config(&emulator, &dir)).expect("session");
    assert_eq!(session.templates(), [STANDARD_NAME]);
    let touches = Arc::new(AtomicUsize::new(0));
    let seen = touches.clone();
    session.set_prompt(Box::new(move |p: &Prompt| {
        if matches!(p, Prompt::TouchKey { .. }) {
            seen.fetch_add(1, Ordering::SeqCst);
        }
    }));
    let spec = softkey_spec(&dir, "softkey.json");
    let device = Device::open(&spec).expect("device");
    let info = device.info().expect("info");
    assert!(info.versions.iter().any(|v| v.starts_with("FIDO_2")));

    let key = session
        .issue(
            &device,
            &IssueParams {
                template: STANDARD_NAME.into(),
                user: "kim@contoso.onmicrosoft.com".into(),
                ..IssueParams::default()
            },
        )
        .expect("issue");
    assert_eq!(key.state, "issued");
    assert_eq!(Some(key.serial.clone()), device.serial());
    let after_issue = touches.load(Ordering::SeqCst);
    assert!(after_issue > 0, "issuance asks for a touch");

    let key = session
        .activate(&device, &key.key_id, "holder-pin-2468")
        .expect("activate");
    assert_eq!(key.state, "active");
    let signed = session
        .sign_in(&device, &key.key_id, "holder-pin-2468")
        .expect("sign in");
    assert_eq!(signed.len(), 1);
    assert!(touches.load(Ordering::SeqCst) > after_issue);

    let listed = session
        .list_keys(&KeyFilter {
            user: Some("kim@contoso.onmicrosoft.com".into()),
            ..KeyFilter::default()
        })
        .expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].key_id, key.key_id);

    let key = session.revoke(&key.key_id, None).expect("revoke");
    assert_eq!(key.state, "revoked");
    let details = session.key(&key.key_id).expect("show");
    let actions: Vec<&str> = details.audit.iter().map(|a| a.action.as_str()).collect();
    assert!(
        actions.contains(&"issue") && actions.contains(&"revoke"),
        "{actions:?}"
    );
    let json = serde_json::to_value(&details).expect("serializable");
    assert_eq!(json["key"]["state"], "revoked");

    // A second device handle on the same state file sees the same key; reopening the
    // session sees the recorded state.
    drop(session);
    let again = Session::open(&config(&emulator, &dir)).expect("reopen");
    assert_eq!(again.key(&key.key_id).expect("show").key.state, "revoked");

    let e = again.revoke("no-such-key", None).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Usage);
    assert_eq!(e.code(), 2);
    assert!(e.message.contains("no-such-key"));
    let e = again
        .activate(&device, &key.key_id, "holder-pin-2468")
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Transition, "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A wrong PIN at sign-in (the software key counts it) is a device error a program can
/// branch on: reason `pin_invalid`, CTAP status 0x31 and the attempts left, also in the
/// JSON the C and Python bindings get; the right PIN still works afterwards.
#[test]
fn a_wrong_pin_is_a_typed_device_error_with_retries_left() {
    let EmulatorWorld { emulator, dir } = EmulatorWorld::start("facade-wrong-pin");
    let session = Session::open(&config(&emulator, &dir)).expect("session");
    let device = Device::open(&softkey_spec(&dir, "softkey.json")).expect("device");
    let key = session
        .issue(
            &device,
            &IssueParams {
                template: STANDARD_NAME.into(),
                user: "kim@contoso.onmicrosoft.com".into(),
                ..IssueParams::default()
            },
        )
        .expect("issue");
    let key = session
        .activate(&device, &key.key_id, "holder-pin-2468")
        .expect("activate");

    let e = session
        .sign_in(&device, &key.key_id, "not-the-pin-1357")
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Device, "{e:?}");
    assert_eq!(e.reason, "pin_invalid", "{e:?}");
    assert_eq!(e.ctap_status, Some(0x31), "{e:?}");
    assert_eq!(e.retries_left, Some(7), "{e:?}");
    assert!(e.message.contains("wrong PIN"), "{e:?}");
    let json = serde_json::to_value(&e).expect("serializable");
    assert_eq!(json["reason"], "pin_invalid");
    assert_eq!(json["retries_left"], 7);

    let signed = session
        .sign_in(&device, &key.key_id, "holder-pin-2468")
        .expect("the right PIN still signs in");
    assert_eq!(signed.len(), 1);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_configs_and_devices_are_refused_with_named_fields() {
    let e = Session::open("{").unwrap_err();
    assert_eq!(e.kind, ErrorKind::Usage);
    let e =
        Session::open(r#"{"repository": {"sqlite": "/nonexistent-dir/x/y.db"}, "pin_key": "zz"}"#)
            .unwrap_err();
    assert!(e.message.contains("pin_key"), "{e}");
    let e = Device::open("bluetooth:x").unwrap_err();
    assert_eq!(e.kind, ErrorKind::Usage);
    let e = Device::open("softkey:").unwrap_err();
    assert_eq!(e.kind, ErrorKind::Usage);
}

fn self_service_template(emulator: &Emulator) -> String {
    format!(
        r#"
[passkey.entra]
idp = {{ connection = "contoso-entra", kind = "entra", graph_api_version = "beta" }}
display_name = "{{displayName}} {{serial}}"
rp_id = "login.microsoft.com"
challenge_timeout_minutes = 60

[credential]
name = "facade-self"
passkey_templates = ["entra"]
user_assignment = {{ directory = "contoso-entra" }}

[credential.self_service]
pin_set_allowed = true
self_issuance_allowed = true
oidc = {{ issuer = "{issuer}", audience = "keysmith-self-service", jwks_url = "{jwks}" }}
"#,
        issuer = emulator.oidc_issuer(),
        jwks = emulator.jwks_url(),
    )
}

#[test]
fn every_operation_through_the_facade() {
    const KIM: &str = "kim@contoso.onmicrosoft.com";
    const PIN: &str = "holder-pin-1357";
    let EmulatorWorld { emulator, dir } = EmulatorWorld::start("facade-all");
    let session = Session::open(&config(&emulator, &dir)).expect("session");
    let summary = session
        .add_template(&self_service_template(&emulator))
        .expect("self-service template");
    assert_eq!(summary.name, "facade-self");
    assert_eq!(session.templates(), ["facade-self", STANDARD_NAME]);

    // Directory and connection.
    session
        .check_connection("contoso-entra")
        .expect("connection");
    let e = session.check_connection("nope").unwrap_err();
    assert_eq!(e.kind, ErrorKind::Usage);
    let users = session
        .search_users("contoso-entra", "kim", 5)
        .expect("search");
    assert!(users
        .iter()
        .any(|u| u.user_principal_name.as_deref() == Some(KIM)));

    // Central lifecycle, through reissue to unregister.
    let a_spec = softkey_spec(&dir, "a.json");
    let a = Device::open(&a_spec).expect("device a");
    let params = IssueParams {
        template: STANDARD_NAME.into(),
        user: KIM.into(),
        ..IssueParams::default()
    };
    let key = session.issue(&a, &params).expect("issue");
    let id = key.key_id.clone();
    assert_eq!(
        session.activate(&a, &id, PIN).expect("activate").state,
        "active"
    );
    assert_eq!(
        session.inactivate(&id).expect("inactivate").state,
        "inactive"
    );
    drop(a);
    // Re-plugged (a fresh power-up allows the reset the template asks for).
    let a = Device::open(&a_spec).expect("device a again");
    let key = session
        .reissue(
            &a,
            &id,
            &keysmith_facade::ReissueParams {
                user: KIM.into(),
                ..Default::default()
            },
        )
        .expect("reissue");
    assert_eq!(
        (key.key_id.as_str(), key.state.as_str()),
        (id.as_str(), "issued")
    );
    assert_eq!(
        session.activate(&a, &id, PIN).expect("activate").state,
        "active"
    );
    assert_eq!(
        session.revoke(&id, Some(false)).expect("revoke").state,
        "revoked"
    );
    assert_eq!(session.retire(&id).expect("retire").state, "retired");
    assert_eq!(
        session.unregister(&id).expect("unregister").state,
        "unregistered"
    );
    let by_state = session
        .list_keys(&KeyFilter {
            state: Some("unregistered".into()),
            ..KeyFilter::default()
        })
        .expect("list by state");
    assert!(by_state.iter().any(|k| k.key_id == id));
    let by_serial = session
        .list_keys(&KeyFilter {
            serial: Some(key.serial.clone()),
            ..KeyFilter::default()
        })
        .expect("list by serial");
    assert_eq!(by_serial.len(), 1);
    let e = session
        .list_keys(&KeyFilter {
            state: Some("lost".into()),
            ..KeyFilter::default()
        })
        .unwrap_err();
    assert!(e.message.contains("state"), "{e}");
    let replayed = session.replay_journal().expect("replay");
    assert!(
        replayed.iter().all(|r| !r.outcome.starts_with("failed")),
        "{replayed:?}"
    );

    // Self-service issuance: a forged token is refused without echoing it.
    let b = Device::open(&softkey_spec(&dir, "b.json")).expect("b");
    let forged = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJraW0ifQ.forged-signature";
    let start = session.self_service_begin().expect("begin");
    assert!(
        !format!("{start:?}").contains(&start.nonce),
        "nonce redacted"
    );
    let e = session
        .self_issue(&b, forged, &start.nonce, "facade-self", None, PIN)
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Usage, "{e}");
    assert!(!e.message.contains("forged-signature"), "{e}");
    let sign_in = |nonce: Option<&str>, edit: Option<fn(&mut serde_json::Value)>| {
        let mut opts = HolderTokenOptions::new(KIM, "keysmith-self-service");
        opts.nonce = nonce.map(str::to_owned);
        match edit {
            None => emulator.holder_token_with(&opts).expect("holder token"),
            Some(edit) => {
                let mut claims: serde_json::Value =
                    serde_json::from_str(&emulator.holder_claims_json_with(&opts).unwrap())
                        .unwrap();
                edit(&mut claims);
                emulator.sign_claims(&claims.to_string()).unwrap()
            }
        }
    };
    // Each refusal reaches the caller as data: its own reason.
    let start = session.self_service_begin().expect("begin");
    let e = session
        .self_issue(
            &b,
            &sign_in(None, None),
            &start.nonce,
            "facade-self",
            None,
            PIN,
        )
        .unwrap_err();
    assert_eq!(e.reason, "nonce_missing", "{e}");
    let access = sign_in(
        Some(&start.nonce),
        Some(|c| c["scp"] = serde_json::json!("User.Read")),
    );
    let e = session
        .self_issue(&b, &access, &start.nonce, "facade-self", None, PIN)
        .unwrap_err();
    assert_eq!(e.reason, "not_an_id_token", "{e}");
    let token = sign_in(Some(&start.nonce), None);
    let key = session
        .self_issue(&b, &token, &start.nonce, "facade-self", None, PIN)
        .expect("self issue");
    assert_eq!(key.state, "active");
    assert_eq!(
        session
            .sign_in(&b, &key.key_id, PIN)
            .expect("sign in")
            .len(),
        1
    );
    let details = session.key(&key.key_id).expect("details");
    let refusals: Vec<_> = details
        .audit
        .iter()
        .filter(|a| a.outcome == "refused")
        .map(|a| a.detail.clone().unwrap_or_default())
        .collect();
    assert_eq!(refusals.len(), 3, "{refusals:?}");
    assert!(refusals[1].contains("no nonce"), "{refusals:?}");
    assert!(refusals[2].contains("not an ID token"), "{refusals:?}");

    // Self-service PIN set on a centrally issued key; the used token is a replay.
    let c = Device::open(&softkey_spec(&dir, "c.json")).expect("c");
    let key = session
        .issue(
            &c,
            &IssueParams {
                template: "facade-self".into(),
                user: KIM.into(),
                ..IssueParams::default()
            },
        )
        .expect("issue c");
    let e = session
        .self_set_pin(&c, &key.key_id, &token, &start.nonce, PIN)
        .unwrap_err();
    assert_eq!(e.reason, "token_replayed", "{e}");
    let start = session.self_service_begin().expect("begin");
    let token = sign_in(Some(&start.nonce), None);
    let key = session
        .self_set_pin(&c, &key.key_id, &token, &start.nonce, PIN)
        .expect("self set pin");
    assert_eq!(key.state, "active");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `KEYSMITH_PG_URL` from the environment, else from the workspace's `target/pg/env`.
fn pg_url() -> Option<String> {
    keysmith_testkit::pg_url_from_env()
}

#[test]
fn postgres_repository_shared_by_two_sessions() {
    let Some(url) = pg_url() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but KEYSMITH_PG_URL is not: run scripts/pg-start.sh first"
        );
        eprintln!("SKIPPED: PostgreSQL facade test (no KEYSMITH_PG_URL)");
        return;
    };
    let EmulatorWorld { emulator, dir } = EmulatorWorld::start("facade-pg");
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let schema = format!("ks_facade_{}_{nanos}", std::process::id());
    let mut cfg: serde_json::Value =
        serde_json::from_str(&config(&emulator, &dir)).expect("config json");
    cfg["repository"] = serde_json::json!({ "postgres": url, "schema": schema });
    let station_a = Session::open(&cfg.to_string()).expect("session a");
    cfg["station"] = "facade-test-b".into();
    let station_b = Session::open(&cfg.to_string()).expect("session b");

    let device = Device::open(&softkey_spec(&dir, "pg.json")).expect("device");
    let key = station_a
        .issue(
            &device,
            &IssueParams {
                template: STANDARD_NAME.into(),
                user: "kim@contoso.onmicrosoft.com".into(),
                ..IssueParams::default()
            },
        )
        .expect("issue on station a");
    let seen = station_b.key(&key.key_id).expect("station b sees the key");
    assert_eq!(seen.key.state, "issued");
    let key = station_b
        .activate(&device, &key.key_id, "holder-pin-2468")
        .expect("activate on station b");
    assert_eq!(key.state, "active");
    assert_eq!(
        station_a.key(&key.key_id).expect("show").key.state,
        "active"
    );

    // A bad URL is a repository error that does not echo the URL.
    let mut bad = cfg.clone();
    bad["repository"] = serde_json::json!({ "postgres": "postgresql://u:s3cret@127.0.0.1:1/x" });
    let e = Session::open(&bad.to_string()).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Repository);
    assert!(!e.message.contains("s3cret"), "{e}");

    drop((station_a, station_b));
    if let Ok(mut client) = postgres::Client::connect(&url, postgres::NoTls) {
        let _ = client.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn one_session_shared_by_threads_each_with_its_key() {
    let EmulatorWorld { emulator, dir } = EmulatorWorld::start("facade-threads");
    let session = Session::open(&config(&emulator, &dir)).expect("session");
    let touches = Arc::new(AtomicUsize::new(0));
    let seen = touches.clone();
    session.set_prompt(Box::new(move |_: &Prompt| {
        seen.fetch_add(1, Ordering::SeqCst);
    }));
    let workers: Vec<_> = (0..3)
        .map(|i| {
            let session = session.clone();
            let spec = softkey_spec(&dir, &format!("t{i}.json"));
            std::thread::spawn(move || {
                let device = keysmith_facade::open_device(&spec).expect("device");
                let key = session
                    .issue(
                        &device,
                        &IssueParams {
                            template: STANDARD_NAME.into(),
                            user: "kim@contoso.onmicrosoft.com".into(),
                            ..IssueParams::default()
                        },
                    )
                    .expect("issue");
                session
                    .activate(&device, &key.key_id, "holder-pin-2468")
                    .expect("activate")
            })
        })
        .collect();
    let mut ids: Vec<String> = workers
        .into_iter()
        .map(|w| w.join().expect("worker").key_id)
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3, "three distinct keys");
    let active = session
        .list_keys(&KeyFilter {
            state: Some("active".into()),
            ..KeyFilter::default()
        })
        .expect("list");
    assert_eq!(active.len(), 3);
    assert!(touches.load(Ordering::SeqCst) >= 3);
    let _ = std::fs::remove_dir_all(&dir);
}

/// "Touch your key" with a Cancel button: the prompt callback cancels the wait, the
/// operation fails as a device error naming the cancellation, and nothing is recorded
/// half-done (the key is not issued, nothing reached the IdP).
#[test]
fn cancel_from_the_prompt_stops_the_touch_wait() {
    use fido_transport::softkey::{SoftAuthenticator, SoftConfig, SoftTransport, UserPresence};
    let EmulatorWorld { emulator, dir } = EmulatorWorld::start("facade-cancel");
    let session = Session::open(&config(&emulator, &dir)).expect("session");
    // The simulated holder would take two minutes to touch the key.
    let soft = SoftAuthenticator::new(SoftConfig {
        presence: UserPresence::Delay(std::time::Duration::from_secs(120)),
        ..SoftConfig::default()
    })
    .expect("softkey");
    let device = Device::from_transport(Box::new(SoftTransport::new(soft)), "host-key", true, true);
    let canceller = device.clone();
    let touches = Arc::new(AtomicUsize::new(0));
    let seen = touches.clone();
    session.set_prompt(Box::new(move |p: &Prompt| {
        if matches!(p, Prompt::TouchKey { .. }) && seen.fetch_add(1, Ordering::SeqCst) == 0 {
            canceller.cancel();
        }
    }));
    let e = session
        .issue(
            &device,
            &IssueParams {
                template: STANDARD_NAME.into(),
                user: "kim@contoso.onmicrosoft.com".into(),
                serial: Some("CANCEL-1".into()),
                ..IssueParams::default()
            },
        )
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Device, "{e:?}");
    assert!(e.message.to_lowercase().contains("cancel"), "{e:?}");
    assert_eq!(e.reason, "cancelled", "{e:?}");
    assert!(touches.load(Ordering::SeqCst) >= 1);
    let issued = session
        .list_keys(&KeyFilter {
            user: Some("kim@contoso.onmicrosoft.com".into()),
            ..KeyFilter::default()
        })
        .expect("list");
    assert!(issued.is_empty(), "{issued:?}");
    assert_eq!(emulator.method_count(), 0);
    let _ = std::fs::remove_dir_all(&dir);
}
