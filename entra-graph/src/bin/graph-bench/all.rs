//! `graph-bench all`: the bulk jobs' Graph traffic against the emulator's throttle in
//! three bucket shapes, one table.
//!
//! Each job runs on `THREADS` threads, each with its own [`GraphClient`] (as a bulk
//! job's workers and other jobs of one process would): they share the process-wide
//! limiters of the tenant ([`entra_graph::pace`]). The Graph calls per row are the ones
//! the engine makes for that job:
//! - issue: the user (read through the job's batches: `GET /users?$filter=
//!   userPrincipalName in (…)` for 15 rows' users at a time, the next 15 read ahead while
//!   the rows of these run, as in the engine), the pre-flight (the FIDO2
//!   policy once per job, the user from the batch) and `GET …/fido2Methods/creationOptions`,
//!   each row for its own user, on one client shared by the threads (the engine's one
//!   connection); the table after the first prints the requests per issued key by kind;
//! - revoke: `DELETE …/fido2Methods/{id}` (one resource unit and one write);
//! - reconcile: `GET …/fido2Methods` per user, then `DELETE` of the one stale passkey
//!   found for every fourth user.
//!
//! The bound is the throttle's: for each bucket, (units − burst) / refill, the larger of
//! the read (resource unit) and the write bucket.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use entra_graph::auth::Credential;
use entra_graph::emulator::{Emulator, EmulatorConfig, ThrottleConfig};
use entra_graph::{ApiVersion, GraphClient, RetryPolicy};

const USER: &str = "kim@contoso.onmicrosoft.com";
const LISTED: &str = "adelev@contoso.onmicrosoft.com";
/// The key model the issue rows' pre-flight checks (a YubiKey 5's AAGUID).
const AAGUID: &str = "cb69481e-8ff7-4039-93ec-0a2729a154a8";
const THREADS: usize = 8;
/// Seconds of throttle-bound work each run is sized for.
const TARGET_SECS: f64 = 8.0;

/// A bucket shape: the read (resource unit) bucket and an optional write bucket.
struct Shape {
    name: &'static str,
    read: ThrottleConfig,
    write: Option<ThrottleConfig>,
}

#[derive(Clone, Copy, PartialEq)]
enum Job {
    Issue,
    Revoke,
    Reconcile,
}

impl Job {
    fn name(self) -> &'static str {
        match self {
            Job::Issue => "bulk issue",
            Job::Revoke => "bulk revoke",
            Job::Reconcile => "reconcile",
        }
    }
    /// (reads, writes) metered per row.
    fn units(self) -> (f64, f64) {
        match self {
            // creationOptions, and a batch user read for every 15 rows.
            Job::Issue => (1.0 + 1.0 / entra_graph::USERS_PER_BATCH as f64, 0.0),
            Job::Revoke => (1.0, 1.0),
            Job::Reconcile => (1.25, 0.25),
        }
    }
}

fn shapes() -> Vec<Shape> {
    vec![
        Shape {
            name: "Graph-sized (3500/350 s⁻¹ RU, 3000/20 s⁻¹ writes)",
            read: ThrottleConfig::documented_small_tenant(),
            write: Some(ThrottleConfig::documented_writes()),
        },
        Shape {
            name: "graph-bench default (200/400 s⁻¹)",
            read: ThrottleConfig {
                capacity: 200.0,
                refill_per_sec: 400.0,
            },
            write: None,
        },
        Shape {
            name: "5 tokens at 20 s⁻¹",
            read: ThrottleConfig {
                capacity: 5.0,
                refill_per_sec: 20.0,
            },
            write: None,
        },
    ]
}

/// Rows for about [`TARGET_SECS`] of throttle-bound work, and the bound for them.
fn size(shape: &Shape, job: Job) -> (usize, f64) {
    let (r, w) = job.units();
    let rows_for =
        |t: ThrottleConfig, per_row: f64| (t.capacity + t.refill_per_sec * TARGET_SECS) / per_row;
    let mut n = rows_for(shape.read, r);
    if let (Some(wt), true) = (shape.write, w > 0.0) {
        n = n.min(rows_for(wt, w));
    }
    let n = n.ceil() as usize;
    (n, bound(shape, job, n))
}

fn bound(shape: &Shape, job: Job, n: usize) -> f64 {
    let (r, w) = job.units();
    let one = |t: ThrottleConfig, units: f64| ((units - t.capacity).max(0.0)) / t.refill_per_sec;
    let mut b = one(shape.read, r * n as f64);
    if let Some(wt) = shape.write {
        b = b.max(one(wt, w * n as f64));
    }
    b
}

struct Row {
    shape: &'static str,
    job: &'static str,
    n: usize,
    wall: f64,
    bound: f64,
    requests: usize,
    throttled: usize,
    failed: usize,
    /// The read limiter's pace at the end.
    pace: Option<f64>,
    /// Graph requests by kind (issue rows only).
    kinds: Vec<(&'static str, usize)>,
}

/// The emulator's tenant with `n` more users (`bench{i}@…`), for rows of their own.
fn with_users(n: usize) -> EmulatorConfig {
    let mut c = EmulatorConfig::default();
    for i in 0..n {
        let u: Result<entra_graph::wire::User, _> = serde_json::from_value(serde_json::json!({
            "id": format!("00000000-0000-4000-8000-{i:012}"),
            "displayName": format!("Bench User {i}"),
            "userPrincipalName": bench_user(i),
            "accountEnabled": true,
        }));
        c.tenant.users.extend(u.ok());
    }
    c
}

fn bench_user(i: usize) -> String {
    format!("bench{i}@contoso.onmicrosoft.com")
}

/// What a Graph request is, for the requests-per-key table.
fn kind(method: &str, path: &str) -> &'static str {
    let p = path.split('?').next().unwrap_or(path);
    if p.contains("/fido2Methods/creationOptions") {
        "creationOptions"
    } else if p.contains("authenticationMethodsPolicy") {
        "FIDO2 policy"
    } else if p.ends_with("/users") {
        "users, batch of 15"
    } else if p.contains("/users/") && !p.contains("/authentication") && method == "GET" {
        "user, single"
    } else if method == "GET" {
        "other read"
    } else {
        "write"
    }
}

fn client(emu: &Emulator) -> Result<GraphClient, String> {
    let mut cfg = emu.graph_config(ApiVersion::V1);
    cfg.retry = RetryPolicy {
        max_attempts: 100,
        base_delay: Duration::from_millis(50),
        max_delay: Duration::from_secs(2),
        max_retry_after: Duration::from_secs(30),
        max_total_wait: Duration::from_secs(600),
        token_max_total_wait: Duration::from_secs(60),
    };
    GraphClient::new(
        cfg,
        Credential::ClientSecret {
            client_id: emu.client_id().into(),
            secret: emu.client_secret().unwrap_or_default().into(),
        },
    )
    .map_err(|e| e.to_string())
}

fn run(shape: &Shape, job: Job, latency: Duration) -> Result<Row, String> {
    let (n, bound) = size(shape, job);
    let config = if job == Job::Issue {
        with_users(n)
    } else {
        EmulatorConfig::default()
    };
    let emu = Emulator::start(config).map_err(|e| e.to_string())?;
    let ids = Arc::new(match job {
        Job::Issue => Vec::new(),
        Job::Revoke => emu.seed_methods(USER, n),
        // One stale passkey for every fourth user (rows share one user here).
        Job::Reconcile => emu.seed_methods(USER, n.div_ceil(4)),
    });
    if job == Job::Reconcile {
        emu.seed_methods(LISTED, 1);
    }
    // Warm the token before the clock starts (the token endpoint is not metered).
    let clients = (0..THREADS)
        .map(|_| {
            let c = client(&emu)?;
            c.check_connection().map_err(|e| e.to_string())?;
            Ok(c)
        })
        .collect::<Result<Vec<_>, String>>()?;
    // Issue: one connection for the job, its users announced in row order.
    let shared = &clients[0];
    if job == Job::Issue {
        shared.begin_job();
        shared.expect_users(&(0..n).map(bench_user).collect::<Vec<_>>());
    }
    emu.set_latency(latency);
    emu.set_throttle(Some(shape.read));
    emu.set_write_throttle(shape.write);
    let before = emu.request_log().len();
    let next = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    std::thread::scope(|s| {
        for c in &clients {
            let (next, failed, ids) = (next.clone(), failed.clone(), ids.clone());
            s.spawn(move || loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let ok = match job {
                    Job::Issue => {
                        let user = bench_user(i);
                        shared.user(&user).is_ok()
                            && shared.preflight(&user, AAGUID, false).is_ok()
                            && shared.creation_options(&user, None).is_ok()
                    }
                    Job::Revoke => c.delete_method(USER, &ids[i]).is_ok(),
                    Job::Reconcile => {
                        c.list_methods(LISTED).is_ok()
                            && (i % 4 != 0 || c.delete_method(USER, &ids[i / 4]).is_ok())
                    }
                };
                if !ok {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    let wall = start.elapsed().as_secs_f64();
    if job == Job::Issue {
        shared.end_job();
    }
    let log = emu.request_log();
    let log = &log[before.min(log.len())..];
    let mut kinds: Vec<(&'static str, usize)> = Vec::new();
    if job == Job::Issue {
        for r in log.iter().filter(|r| r.status != 429) {
            let k = kind(&r.method, &r.path);
            match kinds.iter_mut().find(|(x, _)| *x == k) {
                Some((_, c)) => *c += 1,
                None => kinds.push((k, 1)),
            }
        }
    }
    Ok(Row {
        shape: shape.name,
        job: job.name(),
        n,
        wall,
        bound,
        requests: log.len(),
        throttled: log.iter().filter(|r| r.status == 429).count(),
        failed: failed.load(Ordering::Relaxed),
        pace: clients[0].pace_stats().0.rate,
        kinds,
    })
}

/// Runs every job in every shape and prints the table; false when a target is missed
/// or a row failed.
pub fn all(latency: Duration) -> bool {
    println!(
        "graph-bench all: {THREADS} threads, one client each (shared limiters), {} ms latency, runs sized for ≈{TARGET_SECS} s at the bound",
        latency.as_millis()
    );
    println!("| shape | job | rows | wall s | bound s | ratio | requests | 429s | 429 % | failed | learned pace s⁻¹ |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    let mut ok = true;
    let mut per_key = Vec::new();
    // `GRAPH_BENCH_SHAPE=5` runs only the shapes whose name contains "5" (for tuning).
    let only = std::env::var("GRAPH_BENCH_SHAPE").unwrap_or_default();
    for shape in shapes()
        .into_iter()
        .filter(|s| s.name.contains(only.as_str()))
    {
        for job in [Job::Issue, Job::Revoke, Job::Reconcile] {
            match run(&shape, job, latency) {
                Ok(r) => {
                    let ratio = r.wall / r.bound;
                    let pct = 100.0 * r.throttled as f64 / r.requests.max(1) as f64;
                    ok &= ratio <= 1.2 && pct < 5.0 && r.failed == 0;
                    if !r.kinds.is_empty() {
                        per_key.push((r.shape, r.n, r.kinds.clone()));
                    }
                    println!(
                        "| {} | {} | {} | {:.2} | {:.2} | {:.3} | {} | {} | {:.2} | {} | {} |",
                        r.shape,
                        r.job,
                        r.n,
                        r.wall,
                        r.bound,
                        ratio,
                        r.requests,
                        r.throttled,
                        pct,
                        r.failed,
                        r.pace.map_or("-".into(), |p| format!("{p:.1}"))
                    );
                }
                Err(e) => {
                    ok = false;
                    println!("| {} | {} | error: {e} |", shape.name, job.name());
                }
            }
        }
    }
    println!(
        "targets: ratio ≤ 1.2, 429s < 5 % of requests: {}",
        if ok { "met" } else { "NOT met" }
    );
    println!();
    println!("Graph requests per issued key by kind (bulk issue rows; answered requests, 429s left out):");
    println!("| shape | keys | kind | requests | per key |");
    println!("|---|---|---|---|---|");
    for (shape, n, kinds) in per_key {
        let (mut reads, mut writes) = (0, 0);
        for (k, c) in &kinds {
            println!(
                "| {shape} | {n} | {k} | {c} | {:.4} |",
                *c as f64 / n as f64
            );
            if *k == "write" {
                writes += c;
            } else {
                reads += c;
            }
        }
        println!(
            "| {shape} | {n} | **all reads / writes** | {reads} / {writes} | **{:.4} / {:.4}** |",
            reads as f64 / n as f64,
            writes as f64 / n as f64
        );
    }
    ok
}
