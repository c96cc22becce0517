//! Every fault kind the emulator injects (latency, 429, throttle, 5xx, dropped and lost
//! responses, timeouts), alone, in `$batch` and in turn.

use super::*;

#[test]
fn fault_latency() {
    let emu = emulator();
    let c = client(&emu, ApiVersion::V1);
    c.user(KIM).unwrap();
    emu.set_latency(Duration::from_millis(150));
    let t = Instant::now();
    c.user(KIM).unwrap();
    assert!(t.elapsed() >= Duration::from_millis(150));
}

#[test]
fn fault_429_with_retry_after_is_honoured() {
    let emu = emulator();
    let c = client(&emu, ApiVersion::V1);
    c.user(KIM).unwrap();
    emu.inject(FaultRule::new(
        "GET",
        "fido2Methods",
        Fault::Status {
            status: 429,
            retry_after: Some(1),
        },
        2,
    ));
    let t = Instant::now();
    assert!(c.list_methods(KIM).unwrap().is_empty());
    assert!(
        t.elapsed() >= Duration::from_secs(2),
        "two Retry-After: 1 honoured"
    );
    assert_eq!(c.stats().retries, 2);
    // Beyond the retry budget the typed 429 surfaces.
    emu.inject(FaultRule::new(
        "GET",
        "fido2Methods",
        Fault::Status {
            status: 429,
            retry_after: Some(0),
        },
        10,
    ));
    let e = c.list_methods(KIM).unwrap_err();
    assert!(
        matches!(&e, GraphError::Api { status: 429, code, .. } if code == "TooManyRequests"),
        "{e:?}"
    );
}

#[test]
fn fault_token_bucket_throttle() {
    let emu = emulator();
    let c = client(&emu, ApiVersion::V1);
    emu.set_throttle(Some(ThrottleConfig {
        capacity: 3.0,
        refill_per_sec: 4.0,
    }));
    for _ in 0..8 {
        c.user(KIM).unwrap();
    }
    let throttled = emu.request_log().iter().filter(|r| r.status == 429).count();
    assert!(throttled >= 1, "bucket of 3 ran dry");
}

#[test]
fn fault_5xx_on_get_is_retried_and_on_register_reconciled() {
    let emu = emulator();
    let c = client(&emu, ApiVersion::V1);
    emu.inject(FaultRule::new(
        "GET",
        "/users/",
        Fault::Status {
            status: 500,
            retry_after: None,
        },
        1,
    ));
    c.user(KIM).unwrap();
    let (body, _) = registration(&c, KIM, "key", None, &MakeArgs::default());
    emu.inject(FaultRule::new(
        "POST",
        "fido2Methods",
        Fault::Status {
            status: 503,
            retry_after: Some(0),
        },
        1,
    ));
    let m = c.register(KIM, &body).unwrap().method;
    assert_eq!(emu.methods(KIM), vec![m]);
    assert_eq!(c.stats().reconciliations, 1);
    let posts = emu
        .request_log()
        .iter()
        .filter(|r| r.method == "POST" && r.path.contains("fido2Methods"))
        .count();
    assert_eq!(posts, 2, "not committed, so sent again after the listing");
}

#[test]
fn fault_dropped_connection_before_commit() {
    let emu = emulator();
    let c = client(&emu, ApiVersion::V1);
    let (body, cred) = registration(&c, KIM, "key", None, &MakeArgs::default());
    emu.inject(FaultRule::new("POST", "fido2Methods", Fault::Drop, 1));
    let m = c.register(KIM, &body).unwrap().method;
    assert_eq!(decode_lenient(&m.id, "id").unwrap(), cred);
    assert_eq!(emu.methods(KIM).len(), 1);
    assert_eq!(c.stats().reconciliations, 1);
}

/// Issue 13 item 3: a 48-byte credential id whose base64url ends in "AAA1" was read
/// as 47 bytes by the padding-digit-first decoder, so reconciliation missed the
/// committed registration and posted it again (400 "already registered").
#[test]
fn fault_committed_registration_of_a_48_byte_id_ending_in_1_is_found() {
    let emu = emulator();
    let c = client(&emu, ApiVersion::V1);
    let cred = entra_graph::ids::decode_b64url_strict(&format!("{}AAA1", "QUJD".repeat(15)), "id")
        .unwrap();
    let args = MakeArgs {
        cred_id: Some(cred.clone()),
        ..MakeArgs::default()
    };
    let (body, made) = registration(&c, KIM, "key", None, &args);
    assert_eq!(made, cred);
    assert!(body.public_key_credential.id.ends_with("AAA1"));
    emu.inject(FaultRule::new(
        "POST",
        "fido2Methods",
        Fault::CommitThenDrop,
        1,
    ));
    let reg = c.register(KIM, &body).unwrap();
    assert!(reg.reconciled, "found by listing");
    assert!(entra_graph::ids::matches_credential(&reg.method.id, &cred));
    assert_eq!(emu.methods(KIM).len(), 1);
}

#[test]
fn fault_committed_but_response_lost() {
    let emu = emulator();
    let c = client(&emu, ApiVersion::V1);
    let (body, cred) = registration(&c, KIM, "key", None, &MakeArgs::default());
    emu.inject(FaultRule::new(
        "POST",
        "fido2Methods",
        Fault::CommitThenDrop,
        1,
    ));
    let reg = c.register(KIM, &body).unwrap();
    assert!(reg.reconciled, "found by listing");
    let m = reg.method;
    assert_eq!(decode_lenient(&m.id, "id").unwrap(), cred);
    assert_eq!(
        emu.methods(KIM).len(),
        1,
        "never two passkeys for one credential"
    );
    let posts = emu
        .request_log()
        .iter()
        .filter(|r| r.method == "POST" && r.path.contains("fido2Methods"))
        .count();
    assert_eq!(posts, 1, "found by the listing, not sent again");
    // Same for a delete whose answer was lost: the retry's 404 means done.
    emu.inject(FaultRule::new(
        "DELETE",
        "fido2Methods",
        Fault::CommitThenDrop,
        1,
    ));
    assert!(c.delete_method(KIM, &m.id).unwrap().already_gone);
    assert_eq!(emu.method_count(), 0);
}

#[test]
fn fault_timeout_then_late_commit_never_duplicates() {
    let emu = emulator();
    let mut cfg = fast_config(&emu, ApiVersion::V1);
    cfg.request_timeout = Duration::from_millis(500);
    let c = GraphClient::new(cfg, secret_credential(&emu)).unwrap();
    let (body, cred) = registration(&c, KIM, "key", None, &MakeArgs::default());
    emu.inject(FaultRule::new(
        "POST",
        "fido2Methods",
        Fault::Delay(Duration::from_millis(1500)),
        1,
    ));
    let m = c.register(KIM, &body).unwrap().method;
    assert_eq!(decode_lenient(&m.id, "id").unwrap(), cred);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        emu.methods(KIM).len(),
        1,
        "the late first POST is refused as excluded"
    );
}

#[test]
fn registration_unknown_outcome_surfaces_after_budget() {
    let emu = emulator();
    let c = client(&emu, ApiVersion::V1);
    let (body, _) = registration(&c, KIM, "key", None, &MakeArgs::default());
    emu.inject(FaultRule::new("POST", "fido2Methods", Fault::Drop, 100));
    let e = c.register(KIM, &body).unwrap_err();
    assert!(
        matches!(e, GraphError::RegistrationOutcomeUnknown { .. }),
        "{e:?}"
    );
    assert_eq!(emu.method_count(), 0);
}

#[test]
fn retry_after_as_http_date_is_honoured_top_level_and_in_batch() {
    let emu = emulator();
    emu.set_retry_after_http_date(true);
    let c = client(&emu, ApiVersion::V1);
    c.user(KIM).unwrap();
    // The emulator really sends the date form.
    let raw = reqwest_free_get_retry_after(&emu);
    assert!(raw.ends_with(" GMT"), "{raw}");
    emu.inject(FaultRule::new(
        "GET",
        "fido2Methods",
        Fault::Status {
            status: 429,
            retry_after: Some(3),
        },
        1,
    ));
    let t = Instant::now();
    assert!(c.list_methods(KIM).unwrap().is_empty());
    // An HTTP-date has whole seconds: "now + 3 s" is about 2 s away at least. The
    // backoff used when Retry-After is not understood is at most 200 ms here.
    assert!(
        t.elapsed() >= Duration::from_millis(1500),
        "{:?}",
        t.elapsed()
    );
    // Inside $batch: the inner 429's Retry-After date is honoured too.
    let ids = emu.seed_methods(KIM, 3);
    emu.inject(FaultRule::new(
        "DELETE",
        "fido2Methods",
        Fault::Status {
            status: 429,
            retry_after: Some(3),
        },
        1,
    ));
    let t = Instant::now();
    let results = c.batch_delete(KIM, &ids);
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert!(
        t.elapsed() >= Duration::from_millis(1500),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(emu.method_count(), 0);
}

/// One raw HTTP/1.1 exchange with the emulator under an injected 429, returning the
/// `Retry-After` header as sent.
fn reqwest_free_get_retry_after(emu: &Emulator) -> String {
    use std::io::{Read, Write};
    emu.inject(FaultRule::new(
        "GET",
        "/users/raw-probe",
        Fault::Status {
            status: 429,
            retry_after: Some(3),
        },
        1,
    ));
    let host = emu.addr().to_string();
    let mut s = std::net::TcpStream::connect(&host).unwrap();
    write!(
        s,
        "GET /v1.0/users/raw-probe HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out.lines()
        .find_map(|l| {
            l.split_once(':')
                .filter(|(k, _)| k.eq_ignore_ascii_case("retry-after"))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| panic!("no Retry-After in {out}"))
}

#[test]
fn batch_delete_and_list_under_throttle() {
    let emu = emulator();
    let ids = emu.seed_methods(KIM, 45);
    emu.seed_methods("adelev@contoso.onmicrosoft.com", 2);
    let c = client(&emu, ApiVersion::V1);
    let lists = c.batch_list(&[
        KIM.into(),
        "adelev@contoso.onmicrosoft.com".into(),
        "nobody@x".into(),
    ]);
    assert_eq!(lists[0].as_ref().unwrap().len(), 45);
    assert_eq!(lists[1].as_ref().unwrap().len(), 2);
    assert_eq!(lists[2].as_ref().unwrap_err().status(), Some(404));
    emu.set_throttle(Some(ThrottleConfig {
        capacity: 10.0,
        refill_per_sec: 20.0,
    }));
    let mut with_missing = ids.clone();
    with_missing.push(encode_b64url(b"not-there"));
    let results = c.batch_delete(KIM, &with_missing);
    assert_eq!(results.len(), 46);
    assert!(
        results[..45].iter().all(|r| r
            .as_ref()
            .is_ok_and(|d| d.request_id.is_some() && !d.already_gone)),
        "{results:?}"
    );
    assert_eq!(results[45].as_ref().unwrap_err().status(), Some(404));
    assert!(emu.methods(KIM).is_empty());
    assert!(
        emu.request_log().iter().any(|r| r.status == 429),
        "inner 429s happened and were retried"
    );
}

#[test]
fn every_fault_kind_in_turn_leaves_one_passkey_per_credential() {
    let emu = emulator();
    let mut cfg = fast_config(&emu, ApiVersion::V1);
    cfg.request_timeout = Duration::from_millis(400);
    let c = GraphClient::new(cfg, secret_credential(&emu)).unwrap();
    let faults = [
        None,
        Some(Fault::Drop),
        Some(Fault::CommitThenDrop),
        Some(Fault::Status {
            status: 503,
            retry_after: Some(0),
        }),
        Some(Fault::Status {
            status: 504,
            retry_after: Some(0),
        }),
        Some(Fault::Status {
            status: 500,
            retry_after: None,
        }),
        Some(Fault::Status {
            status: 429,
            retry_after: Some(0),
        }),
        Some(Fault::Delay(Duration::from_millis(800))),
    ];
    let mut creds = Vec::new();
    for (i, fault) in faults.iter().enumerate() {
        let (body, cred) = registration(&c, KIM, &format!("key {i}"), None, &MakeArgs::default());
        if let Some(f) = fault {
            emu.inject(FaultRule::new("POST", "fido2Methods", f.clone(), 1));
        }
        let reg = c.register(KIM, &body).unwrap();
        assert_eq!(
            decode_lenient(&reg.method.id, "id").unwrap(),
            cred,
            "fault {fault:?}"
        );
        creds.push(cred);
    }
    std::thread::sleep(Duration::from_millis(900)); // let the delayed POST land
    let stored = emu.methods(KIM);
    assert_eq!(stored.len(), faults.len(), "{stored:?}");
    for cred in &creds {
        let n = stored
            .iter()
            .filter(|m| decode_lenient(&m.id, "id").unwrap() == *cred)
            .count();
        assert_eq!(n, 1);
    }
    assert_eq!(emu.pending_faults(), 0);
}
