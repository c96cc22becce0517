//! `graph-bench [--n 2000] [--latency-ms 5] [--rate 400] [--burst 200] [--concurrency 8]`
//!
//! Deletes N passkeys through the emulator (JSON `$batch`, bounded concurrency, batches
//! sized to the bucket by the client) with injected latency and a token-bucket throttle,
//! then prints the wall time beside the ideal bound of the throttle: (N - burst) / rate
//! seconds, the inner requests a batch, and the inner 429s.
//!
//! `graph-bench all [--latency-ms 5]` prints the table of the bulk jobs (issue, revoke,
//! reconcile) against the throttle in three bucket shapes, and the `$batch` delete above
//! in the same shapes (see `all.rs`).

mod all;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use entra_graph::auth::Credential;
use entra_graph::emulator::{Emulator, EmulatorConfig, ThrottleConfig};
use entra_graph::{ApiVersion, GraphClient, RetryPolicy};

const USER: &str = "kim@contoso.onmicrosoft.com";

fn main() -> ExitCode {
    let mut n = 2000usize;
    let mut latency_ms = 5u64;
    let mut rate = 400.0f64;
    let mut burst = 200.0f64;
    let mut concurrency = 8usize;
    let mut args = std::env::args().skip(1).peekable();
    let everything = args.peek().is_some_and(|a| a == "all");
    if everything {
        args.next();
    }
    while let Some(a) = args.next() {
        let v = args.next().unwrap_or_default();
        let ok = match a.as_str() {
            "--n" => v.parse().map(|x| n = x).is_ok(),
            "--latency-ms" => v.parse().map(|x| latency_ms = x).is_ok(),
            "--rate" => v.parse().map(|x| rate = x).is_ok(),
            "--burst" => v.parse().map(|x| burst = x).is_ok(),
            "--concurrency" => v.parse().map(|x| concurrency = x).is_ok(),
            _ => false,
        };
        if !ok || rate <= 0.0 || burst < 1.0 || concurrency == 0 {
            eprintln!("usage: graph-bench [all] [--n N] [--latency-ms MS] [--rate PER_SEC] [--burst B] [--concurrency C]");
            return ExitCode::from(2);
        }
    }
    if everything {
        let ok = all::all(Duration::from_millis(latency_ms));
        println!();
        println!("$batch delete (the original graph-bench), sized for ≈8 s at the bound:");
        let mut ok_batch = true;
        for (burst, rate) in [(3500.0, 350.0), (200.0, 400.0), (5.0, 20.0)] {
            let n = (burst + rate * 8.0) as usize;
            ok_batch &= batch_delete(n, latency_ms, rate, burst, concurrency)
                .is_some_and(|(ratio, pct)| ratio <= 1.2 && pct < 5.0);
        }
        println!(
            "$batch targets: ratio ≤ 1.2, inner 429s < 5 % of inner requests: {}",
            if ok_batch { "met" } else { "NOT met" }
        );
        return if ok && ok_batch {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        };
    }
    match batch_delete(n, latency_ms, rate, burst, concurrency) {
        Some(_) => ExitCode::SUCCESS,
        None => ExitCode::FAILURE,
    }
}

/// Deletes `n` passkeys through `$batch` and prints the figures; `None` when one failed
/// or was left, else (ratio to the bound, inner 429s in % of the inner requests sent).
fn batch_delete(
    n: usize,
    latency_ms: u64,
    rate: f64,
    burst: f64,
    concurrency: usize,
) -> Option<(f64, f64)> {
    let emu = match Emulator::start(EmulatorConfig::default()) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("graph-bench: {e}");
            return None;
        }
    };
    let ids = emu.seed_methods(USER, n);
    emu.set_latency(Duration::from_millis(latency_ms));
    emu.set_throttle(Some(ThrottleConfig {
        capacity: burst,
        refill_per_sec: rate,
    }));
    let mut cfg = emu.graph_config(ApiVersion::V1);
    cfg.max_concurrency = concurrency;
    cfg.retry = RetryPolicy {
        max_attempts: 100,
        base_delay: Duration::from_millis(50),
        max_delay: Duration::from_secs(2),
        max_retry_after: Duration::from_secs(30),
        // A benchmark of throttling: wait it out.
        max_total_wait: Duration::from_secs(600),
        token_max_total_wait: Duration::from_secs(60),
    };
    let client = match GraphClient::new(
        cfg,
        Credential::ClientSecret {
            client_id: emu.client_id().into(),
            secret: emu.client_secret().unwrap_or_default().into(),
        },
    ) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("graph-bench: {e}");
            return None;
        }
    };
    let before = emu.request_log().len();
    let start = Instant::now();
    let results = client.batch_delete(USER, &ids);
    let wall = start.elapsed();
    let failed = results.iter().filter(|r| r.is_err()).count();
    let log = emu.request_log();
    let log = &log[before.min(log.len())..];
    let inner = log.iter().filter(|r| r.method == "DELETE").count();
    let throttled = log.iter().filter(|r| r.status == 429).count();
    let batches = log.iter().filter(|r| r.path.ends_with("/$batch")).count();
    let ideal = ((n as f64 - burst).max(0.0)) / rate;
    let ratio = if ideal > 0.0 {
        wall.as_secs_f64() / ideal
    } else {
        f64::NAN
    };
    let pct = 100.0 * throttled as f64 / inner.max(1) as f64;
    println!(
        "deleted {} of {n} passkeys in {:.2} s; ideal bound of the throttle ({burst} burst, {rate}/s): {ideal:.2} s; ratio {ratio:.3}; inner requests {inner} in {batches} batches ({:.1} a batch); inner 429s: {throttled} ({pct:.2} % of inner requests); left in emulator: {}; client stats: {:?}",
        n - failed,
        wall.as_secs_f64(),
        inner as f64 / batches.max(1) as f64,
        emu.method_count(),
        client.stats(),
    );
    if failed > 0 || emu.method_count() != 0 {
        return None;
    }
    Some((ratio, pct))
}
