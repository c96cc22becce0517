//! Slow failures (issue 14 item 5): a request that cannot even be built fails at once,
//! and the waits of one call (throttled token endpoint, throttled Graph) are bounded by a
//! total budget. Attempts are counted, not timed (the CI machine is loaded).

use super::*;
use entra_graph::{GraphConfig, RetryPolicy};

/// Token requests the emulator saw.
fn token_requests(emu: &Emulator) -> usize {
    emu.request_log()
        .iter()
        .filter(|r| r.path.contains("/oauth2/v2.0/token"))
        .count()
}

/// Graph requests (anything but the token endpoint) the emulator saw.
fn graph_requests(emu: &Emulator) -> usize {
    emu.request_log().len() - token_requests(emu)
}

#[test]
fn an_unbuildable_request_fails_at_once_with_a_typed_error() {
    let emu = emulator();
    let c = client(&emu, ApiVersion::V1);
    // A user name that makes the URL longer than any HTTP URI may be (64 KiB): the
    // request can never be built, let alone sent.
    let huge = "a".repeat(70_000);
    let seen_before = graph_requests(&emu);
    let e = c.user(&huge).unwrap_err();
    assert!(
        matches!(&e, GraphError::Unsendable { endpoint, .. } if endpoint.starts_with("/v1.0/users")),
        "{e:?}"
    );
    assert!(!e.to_string().contains(&huge[..100]), "no user name in {e}");
    assert!(e.to_string().contains("at most 65534"), "{e}");
    let s = c.stats();
    assert_eq!(s.requests, 1, "one attempt");
    assert_eq!(s.retries, 0, "never retried");
    assert_eq!(
        graph_requests(&emu),
        seen_before,
        "nothing reached the server"
    );

    // The same through the other paths that loop on their own: search, delete, register.
    let e = c.search_users(&huge, 5).unwrap_err();
    assert!(matches!(e, GraphError::Unsendable { .. }), "{e:?}");
    let e = c.delete_method(&huge, "m").unwrap_err();
    assert!(matches!(e, GraphError::Unsendable { .. }), "{e:?}");
    assert_eq!(c.stats().retries, 0, "never retried");
    assert_eq!(c.stats().requests, 3, "one attempt each");
}

#[test]
fn a_token_that_cannot_be_sent_as_a_header_fails_at_once() {
    let emu = emulator();
    let calls = Arc::new(AtomicU32::new(0));
    let counted = calls.clone();
    let cred = Credential::Callback(Arc::new(move || {
        counted.fetch_add(1, Ordering::SeqCst);
        Ok(AccessToken {
            token: Secret::new("line\nbreak"),
            expires_in: Duration::from_secs(3600),
        })
    }));
    let c = GraphClient::new(fast_config(&emu, ApiVersion::V1), cred).unwrap();
    let e = c.user(KIM).unwrap_err();
    assert!(matches!(e, GraphError::Unsendable { .. }), "{e:?}");
    assert!(!e.to_string().contains("line\nbreak"), "no token in {e}");
    assert_eq!(c.stats().retries, 0, "never retried");
    assert_eq!(calls.load(Ordering::SeqCst), 1, "one attempt");
    assert_eq!(graph_requests(&emu), 0);
}

#[test]
fn connection_refused_is_still_transient_and_retried() {
    let emu = emulator();
    let mut cfg = fast_config(&emu, ApiVersion::V1);
    // A closed port for Graph; the token endpoint works.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    cfg.graph_base = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let attempts = cfg.retry.max_attempts;
    let c = GraphClient::new(cfg, secret_credential(&emu)).unwrap();
    let e = c.user(KIM).unwrap_err();
    assert!(matches!(e, GraphError::Transport { .. }), "{e:?}");
    assert_eq!(
        c.stats().requests,
        u64::from(attempts),
        "every attempt made"
    );
    assert_eq!(c.stats().retries, u64::from(attempts - 1));
}

fn throttle_token_endpoint(emu: &Emulator, retry_after: u64) {
    emu.inject(FaultRule::new(
        "POST",
        "/oauth2/v2.0/token",
        Fault::Status {
            status: 429,
            retry_after: Some(retry_after),
        },
        1_000,
    ));
}

#[test]
fn a_throttled_token_endpoint_is_given_up_after_the_total_wait_budget() {
    let emu = emulator();
    let mut cfg = fast_config(&emu, ApiVersion::V1);
    cfg.retry.max_attempts = 20;
    cfg.retry.token_max_total_wait = Duration::from_millis(1_500);
    let c = GraphClient::new(cfg, secret_credential(&emu)).unwrap();
    throttle_token_endpoint(&emu, 1);
    let e = c.user(KIM).unwrap_err();
    // Retry-After 1 s: one wait fits the 1.5 s budget, the second would not.
    match &e {
        GraphError::RetryBudgetExhausted {
            endpoint,
            attempts,
            waited,
            budget,
            last,
            ..
        } => {
            assert_eq!(endpoint, "token endpoint");
            assert_eq!(*attempts, 2);
            assert_eq!(*waited, Duration::from_secs(1));
            assert_eq!(*budget, Duration::from_millis(1_500));
            assert!(
                matches!(**last, GraphError::Token { status: 429, .. }),
                "{last:?}"
            );
        }
        other => panic!("expected RetryBudgetExhausted, got {other:?}"),
    }
    assert_eq!(e.status(), Some(429), "the last status shows through");
    let text = e.to_string();
    assert!(
        text.contains("token endpoint") && text.contains("1.0 s"),
        "{text}"
    );
    assert_eq!(token_requests(&emu), 2, "two attempts, then given up");
    assert_eq!(graph_requests(&emu), 0, "no Graph call without a token");
}

#[test]
fn a_token_retry_after_beyond_the_longest_honoured_fails_at_once() {
    let emu = emulator();
    let c = client(&emu, ApiVersion::V1);
    // 9999 s: far beyond max_retry_after (5 s here); waiting it out helps nobody.
    throttle_token_endpoint(&emu, 9_999);
    let e = c.user(KIM).unwrap_err();
    assert!(
        matches!(
            &e,
            GraphError::RetryBudgetExhausted { attempts: 1, waited, .. } if waited.is_zero()
        ),
        "{e:?}"
    );
    assert_eq!(token_requests(&emu), 1, "one attempt");
}

#[test]
fn throttled_graph_calls_are_bounded_by_the_total_wait_budget() {
    let emu = emulator();
    let mut cfg = fast_config(&emu, ApiVersion::V1);
    cfg.retry.max_attempts = 20;
    cfg.retry.max_total_wait = Duration::from_millis(1_500);
    let c = GraphClient::new(cfg, secret_credential(&emu)).unwrap();
    c.user(KIM).unwrap();
    emu.inject(FaultRule::new(
        "GET",
        "fido2Methods",
        Fault::Status {
            status: 429,
            retry_after: Some(1),
        },
        1_000,
    ));
    let before = graph_requests(&emu);
    let e = c.list_methods(KIM).unwrap_err();
    assert!(
        matches!(
            &e,
            GraphError::RetryBudgetExhausted { attempts: 2, endpoint, .. }
                if endpoint == "/v1.0/users/{id}/authentication/fido2Methods"
        ),
        "{e:?}"
    );
    assert_eq!(e.status(), Some(429));
    assert_eq!(
        graph_requests(&emu) - before,
        2,
        "two attempts, then given up"
    );
}

#[test]
fn default_budgets_are_documented_values_and_bound_a_call() {
    let p = RetryPolicy::default();
    assert_eq!(p.max_total_wait, Duration::from_secs(120));
    assert_eq!(p.token_max_total_wait, Duration::from_secs(60));
    assert!(p.max_retry_after <= p.max_total_wait);
    let cfg = GraphConfig::new("t");
    // 6 attempts of 30 s + 120 s of waits, plus a token: 6 × 30 s + 60 s.
    assert_eq!(
        cfg.worst_case_call(),
        Duration::from_secs(180 + 120 + 180 + 60)
    );
}
