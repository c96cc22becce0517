//! The process-wide limiter against the emulator's throttle, and the per-job read cache
//! of the pre-flight (issue 18 items 1 and 2).

use super::*;
use entra_graph::RetryPolicy;

/// A client that waits out throttling (as a bulk job's does).
fn patient(emu: &Emulator) -> GraphClient {
    let mut cfg = fast_config(emu, ApiVersion::V1);
    cfg.retry = RetryPolicy {
        max_attempts: 50,
        max_retry_after: Duration::from_secs(5),
        max_total_wait: Duration::from_secs(120),
        ..RetryPolicy::default()
    };
    GraphClient::new(cfg, secret_credential(emu)).unwrap()
}

#[test]
fn threads_of_one_process_share_a_limiter_and_429s_stay_rare() {
    let emu = emulator();
    emu.set_latency(Duration::from_millis(2));
    // Half a second of refill (graph-bench's default shape, scaled down): without the
    // limiter the in-flight requests meet the empty bucket together, again and again.
    emu.set_throttle(Some(ThrottleConfig {
        capacity: 20.0,
        refill_per_sec: 40.0,
    }));
    const N: usize = 240;
    let next = Arc::new(AtomicU32::new(0));
    let clients: Vec<GraphClient> = (0..4).map(|_| patient(&emu)).collect();
    std::thread::scope(|s| {
        for c in &clients {
            let next = next.clone();
            s.spawn(move || {
                while (next.fetch_add(1, Ordering::Relaxed) as usize) < N {
                    c.creation_options(KIM, None).unwrap();
                }
            });
        }
    });
    let log = emu.request_log();
    let ok = log.iter().filter(|r| r.status == 200).count();
    let refused = log.iter().filter(|r| r.status == 429).count();
    // Token requests are not metered; every creationOptions succeeded once.
    assert!(ok >= N, "{ok}");
    assert!(
        refused * 20 < N,
        "{refused} of {N} requests refused with 429 (limit: under 5 %)"
    );
    // The four clients learned one rate: the limiter is the tenant's, not the client's.
    let (read, _) = clients[0].pace_stats();
    assert_eq!(read, clients[3].pace_stats().0);
    let rate = read.rate.expect("the limiter learned a rate");
    assert!(rate > 10.0 && rate < 80.0, "{rate}");
    let seen: u64 = clients.iter().map(|c| c.stats().throttled).sum();
    assert_eq!(seen, refused as u64);
}

fn policy_reads(emu: &Emulator) -> usize {
    emu.request_log()
        .iter()
        .filter(|r| {
            r.method == "GET" && r.path.contains("authenticationMethodConfigurations/fido2")
        })
        .count()
}

fn user_reads(emu: &Emulator) -> usize {
    emu.request_log()
        .iter()
        .filter(|r| {
            r.method == "GET" && r.path.contains("/users/") && !r.path.contains("/authentication/")
        })
        .count()
}

#[test]
fn a_job_reads_the_policy_once_and_again_after_a_policy_shaped_refusal() {
    let emu = emulator();
    let c = client(&emu, ApiVersion::V1);
    // Outside a job every pre-flight reads afresh (as before).
    c.preflight(KIM, YK5_STR, true).unwrap();
    // One policy read (two GETs on v1.0 when the profiles need `$expand`).
    let one = policy_reads(&emu);
    assert!(one >= 1);
    c.preflight(KIM, YK5_STR, true).unwrap();
    assert_eq!(policy_reads(&emu), 2 * one);
    c.begin_job();
    let users = user_reads(&emu);
    for _ in 0..5 {
        // The engine reads the user for the key's record, then pre-flights.
        c.user(KIM).unwrap();
        c.preflight(KIM, YK5_STR, true).unwrap();
        c.creation_options(KIM, None).unwrap();
    }
    assert_eq!(policy_reads(&emu), 3 * one, "one policy read for the job");
    // Within a job a user read within USER_TTL is reused (a job reads its users in
    // batches: see client/prefetch.rs): the same user five times is one read.
    assert_eq!(
        user_reads(&emu) - users,
        1,
        "one user read for the same user"
    );
    // The tenant turns FIDO2 off mid-job: the cached policy still admits the key, Graph
    // refuses its creationOptions with 400, and the next pre-flight reads the policy.
    let mut p = emu.policy();
    p.state = MethodState::Disabled;
    emu.set_policy(p);
    c.preflight(KIM, YK5_STR, true).unwrap();
    let e = c.creation_options(KIM, None).unwrap_err();
    assert_eq!(e.status(), Some(400), "{e:?}");
    assert_eq!(
        c.preflight(KIM, YK5_STR, true),
        Err(GraphError::Preflight(PreflightError::MethodDisabled))
    );
    assert_eq!(policy_reads(&emu), 4 * one);
    c.end_job();
    c.preflight(KIM, YK5_STR, true).unwrap_err();
    assert_eq!(policy_reads(&emu), 5 * one, "after the job: fresh again");
}

#[test]
fn a_batch_into_a_shallow_bucket_is_sized_to_it() {
    let emu = emulator();
    let ids = emu.seed_methods(KIM, 40);
    // 5 tokens: a `$batch` of 20 would have 15 of its inner requests refused at once.
    emu.set_throttle(Some(ThrottleConfig {
        capacity: 5.0,
        refill_per_sec: 20.0,
    }));
    let c = patient(&emu);
    let results = c.batch_delete(KIM, &ids);
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert!(emu.methods(KIM).is_empty());
    let log = emu.request_log();
    let refused = log.iter().filter(|r| r.status == 429).count();
    assert!(
        refused <= 10,
        "{refused} inner requests of 40 refused (a first batch of 20 alone: 15)"
    );
    let batches = log.iter().filter(|r| r.path.ends_with("/$batch")).count();
    assert!(
        batches > 8,
        "{batches} batches: at most 5 inner requests a batch"
    );
}

#[test]
fn the_next_user_batch_is_read_before_the_rows_of_this_one_end() {
    let mut cfg = EmulatorConfig::default();
    let names: Vec<String> = (0..30)
        .map(|i| format!("row{i}@contoso.onmicrosoft.com"))
        .collect();
    for (i, n) in names.iter().enumerate() {
        let u: entra_graph::wire::User = serde_json::from_value(serde_json::json!({
            "id": format!("00000000-0000-4000-8000-{i:012}"),
            "displayName": format!("Row {i}"),
            "userPrincipalName": n,
            "accountEnabled": true,
        }))
        .unwrap();
        cfg.tenant.users.push(u);
    }
    let emu = Emulator::start(cfg).unwrap();
    emu.set_latency(Duration::from_millis(2));
    let c = client(&emu, ApiVersion::V1);
    c.begin_job();
    c.expect_users(&names);
    // The rows of a bulk issue, one at a time (as the engine runs them).
    for n in &names {
        c.user(n).unwrap();
        c.creation_options(n, None).unwrap();
    }
    c.end_job();
    let log = emu.request_log();
    let batch_reads: Vec<usize> = log
        .iter()
        .enumerate()
        .filter(|(_, r)| {
            r.method == "GET" && (r.path.ends_with("/users") || r.path.contains("/users?"))
        })
        .map(|(i, _)| i)
        .collect();
    let options: Vec<usize> = log
        .iter()
        .enumerate()
        .filter(|(_, r)| r.path.contains("creationOptions"))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(batch_reads.len(), 2, "{log:?}");
    assert_eq!(options.len(), 30);
    // Rows 16–30 were read ahead while rows 1–15 ran (it is sent with row 1's
    // creationOptions), not when row 16 needed them.
    assert!(
        batch_reads[1] < options[14],
        "the second batch read at {}, row 15's creationOptions at {}",
        batch_reads[1],
        options[14]
    );
    assert_eq!(
        log.iter()
            .filter(|r| r.method == "GET" && r.path.contains("/users/row"))
            .filter(|r| !r.path.contains("/authentication"))
            .count(),
        0,
        "no single user reads"
    );
}
