//! Client-side pacing of Graph requests: one limiter per Graph base, tenant and bucket,
//! shared by every client, job and thread of the process, that learns the rate the
//! server allows from its 429 answers and spreads requests so that it does not send one
//! it expects to be refused.
//!
//! Entra meters identity requests in token buckets per app and tenant: every request
//! costs resource units ([`Bucket::Read`]), and a POST, PATCH or DELETE also costs one
//! write ([`Bucket::Write`], a separate, slower quota). The limiter does not know either
//! bucket's size or refill rate; it learns them:
//!
//! - Until the first 429 it does not pace at all (a deep bucket, as Graph's are, is never
//!   slowed down).
//! - A 429 answers a request sent when the server's bucket was empty. Between two 429s
//!   the server accepts at most its refill rate (exactly it while the client sends
//!   faster), so the requests accepted between two 429s at least [`MIN_SPAN`] apart
//!   (and [`MIN_SAMPLES`] of them), over the time between, estimate the refill rate. A
//!   429 sets the pace to [`BACKOFF`] times the best estimate; one that comes at that
//!   pace already dips it to [`DIP`] of it (the bucket is empty and the pace only just
//!   below its refill: let it fill).
//!   Before any estimate, a 429 halves the pace (the first one: the rate accepted in the
//!   last second), but not below what the server accepted since the first 429.
//! - Only one decrease per round: a 429 to a request sent before the last decrease says
//!   nothing new (it was already in flight).
//! - Each request accepted while the pace held it back raises the pace a little
//!   ([`INCREASE`] requests per second per request: about 2 % a second), so a server
//!   that allows more is found again; below the best estimate (or before there is one)
//!   it rises faster ([`RECOVER`]: about 10 % a second).
//! - Requests are spaced `cost / rate` apart (a `$batch` of 20 costs 20), so in-flight
//!   requests are spread instead of meeting the empty bucket together.
//!
//! The refused request itself waits its `Retry-After` (the retry loops do that); the
//! others keep the new, slower pace. Retry-After is whole seconds (at least 1 at the
//! emulator), so holding every request for it would idle a bucket shallower than one
//! second of refill.
//!
//! [`Pacer`] is the sans-IO core (time is passed in); [`Limiter`] wraps it for threads
//! and async tasks; [`limiter`] is the process-wide registry.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

/// Which of Entra's throttling buckets a request draws on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Bucket {
    /// Resource units: every request (GETs and writes alike).
    Read,
    /// The write quota: POST, PATCH and DELETE.
    Write,
}

impl Bucket {
    /// The bucket named by a 429's `x-ms-throttle-scope` header (`…/Read`, `…/Write`);
    /// `None` when the header names neither.
    pub fn from_scope(scope: &str) -> Option<Bucket> {
        let s = scope.to_ascii_lowercase();
        if s.ends_with("/write") {
            Some(Bucket::Write)
        } else if s.ends_with("/read") {
            Some(Bucket::Read)
        } else {
            None
        }
    }
}

/// Multiplier applied to the estimated refill rate after a 429.
pub const BACKOFF: f64 = 0.95;
/// How long after the first 429 the accepted count is trusted as the refill rate.
pub const MIN_SPAN: Duration = Duration::from_millis(500);
/// Pace gained (requests per second) per request accepted while paced.
pub const INCREASE: f64 = 0.02;
/// Pace gained per request accepted while paced below the best pace seen (or before
/// any is known): about 10 % a second.
pub const RECOVER: f64 = 0.1;
/// Fewest acceptances between two 429s for their interval to estimate the refill rate.
pub const MIN_SAMPLES: f64 = 8.0;
/// A 429 at a pace within this factor of the known one dips the pace to [`DIP`] times
/// it.
pub const DIP_ABOVE: f64 = 1.05;
/// See [`DIP_ABOVE`].
pub const DIP: f64 = 0.8;
/// The slowest pace the limiter falls to (requests per second).
pub const MIN_RATE: f64 = 0.05;
/// The window the rate accepted just before the first 429 is measured over.
const WINDOW: f64 = 1.0;

/// What the limiter has seen (for benchmarks and diagnostics).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PaceStats {
    /// Request units accepted (2xx or any answer other than 429).
    pub accepted: u64,
    /// Request units refused with 429.
    pub throttled: u64,
    /// The pace in requests per second; `None` until the first 429.
    pub rate: Option<f64>,
}

/// The sans-IO pacing state of one bucket. Times are offsets from any fixed instant.
#[derive(Debug, Default)]
pub struct Pacer {
    rate: Option<f64>,
    /// The earliest start of the next request (seconds).
    next: f64,
    /// When the last decrease happened (seconds); requests sent before it are stale.
    last_decrease: Option<f64>,
    /// When the first 429 came, and how many were accepted since.
    first_429: Option<f64>,
    accepted_since: f64,
    /// The last fresh 429, and how many were accepted since.
    last_429: f64,
    accepted_interval: f64,
    /// The best estimate of the refill rate from an interval between 429s at least
    /// [`MIN_SPAN`] long (0: none yet).
    best: f64,
    /// Acceptances in the last [`WINDOW`]: (time, cost).
    recent: VecDeque<(f64, f64)>,
    first_seen: Option<f64>,
    stats: PaceStats,
}

impl Pacer {
    /// A pacer that has seen nothing (does not pace).
    pub fn new() -> Self {
        Pacer::default()
    }

    /// Reserves a slot for a request costing `cost` units at `now`; returns how long to
    /// wait before sending it. The reservation is made either way.
    pub fn reserve(&mut self, now: Duration, cost: u32) -> Duration {
        let t = now.as_secs_f64();
        let Some(rate) = self.rate else {
            return Duration::ZERO;
        };
        let slot = self.next.max(t);
        self.next = slot + f64::from(cost.max(1)) / rate;
        Duration::from_secs_f64(slot - t)
    }

    /// `cost` units sent at `sent` were accepted (answered, not with 429) at `now`;
    /// `paced`: the request had to wait for its slot.
    pub fn accepted(&mut self, now: Duration, cost: u32, paced: bool) {
        let t = now.as_secs_f64();
        let c = f64::from(cost);
        self.stats.accepted += u64::from(cost);
        self.first_seen.get_or_insert(t);
        self.recent.push_back((t, c));
        while self.recent.front().is_some_and(|(at, _)| *at < t - WINDOW) {
            self.recent.pop_front();
        }
        if self.first_429.is_some() {
            self.accepted_since += c;
            self.accepted_interval += c;
        }
        if let (Some(r), true) = (self.rate.as_mut(), paced) {
            let known = BACKOFF * self.best;
            if *r < known || self.best == 0.0 {
                // Below the best pace seen, or none seen yet: recover quickly.
                *r += RECOVER * c;
                if self.best > 0.0 {
                    *r = r.min(known.max(*r - RECOVER * c));
                }
            } else {
                *r += INCREASE * c;
            }
        }
    }

    /// `cost` units sent at `sent` were refused with 429 at `now`.
    pub fn throttled(&mut self, now: Duration, sent: Duration, cost: u32) {
        let t = now.as_secs_f64();
        let sent = sent.as_secs_f64();
        self.stats.throttled += u64::from(cost);
        if self.last_decrease.is_some_and(|d| sent < d) {
            // Already in flight when the pace last went down.
            return;
        }
        self.last_decrease = Some(t);
        let Some(first) = self.first_429 else {
            self.first_429 = Some(t);
            self.last_429 = t;
            self.accepted_since = 0.0;
            self.accepted_interval = 0.0;
            let since = self
                .first_seen
                .map_or(WINDOW, |f| (t - f).clamp(0.01, WINDOW));
            let recent: f64 = self.recent.iter().map(|(_, c)| c).sum();
            self.set_rate((recent / since / 2.0).max(f64::from(cost)));
            return;
        };
        let span = t - first;
        let rate = self.rate.unwrap_or(f64::INFINITY);
        // Accepted since the previous 429 over the time since: the refill rate when the
        // client kept sending faster than it, less when it idled (a lower bound).
        let interval = t - self.last_429;
        // A few acceptances say little (the client may have idled waiting out
        // Retry-After): only intervals with enough of them count.
        if interval >= MIN_SPAN.as_secs_f64() && self.accepted_interval >= MIN_SAMPLES {
            self.best = self.best.max(self.accepted_interval / interval);
        }
        self.last_429 = t;
        self.accepted_interval = 0.0;
        let early = (self.accepted_since / span.max(1e-3)).min(rate);
        let known = BACKOFF * self.best;
        let new = if self.best > 0.0 && (rate > DIP_ABOVE * known || rate * DIP_ABOVE < known) {
            known
        } else if self.best > 0.0 {
            // Refused at the known pace: the server's bucket is empty and the pace only
            // just below its refill; dip so that it fills, then recover.
            DIP * known
        } else {
            // Early: halve, but not below what the server plainly accepts.
            rate.min((rate / 2.0).max(early))
        };
        self.set_rate(new);
    }

    fn set_rate(&mut self, rate: f64) {
        let rate = if rate.is_finite() { rate } else { 1.0 }.max(MIN_RATE);
        self.rate = Some(rate);
    }

    /// What the pacer has seen.
    pub fn stats(&self) -> PaceStats {
        PaceStats {
            rate: self.rate,
            ..self.stats
        }
    }
}

/// A [`Pacer`] shared by threads and tasks, on the monotonic clock.
#[derive(Debug)]
pub struct Limiter {
    epoch: Instant,
    pacer: Mutex<Pacer>,
}

impl Default for Limiter {
    fn default() -> Self {
        Limiter {
            epoch: Instant::now(),
            pacer: Mutex::new(Pacer::new()),
        }
    }
}

/// A reservation: when the request may go, and when it went.
#[derive(Clone, Copy, Debug)]
pub struct Ticket {
    /// The wait before sending.
    pub wait: Duration,
    /// The moment it is sent (offset from the limiter's epoch).
    pub sent: Duration,
}

impl Limiter {
    fn pacer(&self) -> std::sync::MutexGuard<'_, Pacer> {
        self.pacer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn now(&self) -> Duration {
        self.epoch.elapsed()
    }

    /// Reserves a slot for `cost` units; the caller waits `ticket.wait` before sending.
    pub fn reserve(&self, cost: u32) -> Ticket {
        let now = self.now();
        let wait = self.pacer().reserve(now, cost);
        Ticket {
            wait,
            sent: now + wait,
        }
    }

    /// The request of `ticket` was answered with something other than 429.
    pub fn accepted(&self, ticket: &Ticket, cost: u32) {
        let now = self.now();
        self.pacer().accepted(now, cost, !ticket.wait.is_zero());
    }

    /// The request of `ticket` was answered with 429.
    pub fn throttled(&self, ticket: &Ticket, cost: u32) {
        let now = self.now();
        self.pacer().throttled(now, ticket.sent, cost);
    }

    /// What the limiter has seen.
    pub fn stats(&self) -> PaceStats {
        self.pacer().stats()
    }
}

type Registry = Mutex<HashMap<(String, String, Bucket), Arc<Limiter>>>;

/// The process-wide limiter of `bucket` for `tenant` at the Graph base `graph_base`:
/// every client of the process talking to that tenant shares it.
pub fn limiter(graph_base: &str, tenant: &str, bucket: Bucket) -> Arc<Limiter> {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    let mut map = REGISTRY
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    map.entry((
        graph_base.trim_end_matches('/').to_ascii_lowercase(),
        tenant.to_ascii_lowercase(),
        bucket,
    ))
    .or_default()
    .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake server bucket: `capacity` tokens refilled at `rate` a second.
    struct Server {
        tokens: f64,
        capacity: f64,
        rate: f64,
        at: f64,
    }

    impl Server {
        fn take(&mut self, t: f64) -> bool {
            self.tokens = (self.tokens + (t - self.at) * self.rate).min(self.capacity);
            self.at = t;
            if self.tokens >= 1.0 {
                self.tokens -= 1.0;
                true
            } else {
                false
            }
        }
    }

    /// Drives `n` requests with `concurrency` in flight and a round trip of `rtt`
    /// seconds; a refused request is retried after `retry_after` seconds. Returns
    /// (seconds taken, 429s).
    fn simulate(capacity: f64, rate: f64, n: usize, concurrency: usize, rtt: f64) -> (f64, u64) {
        let mut server = Server {
            tokens: capacity,
            capacity,
            rate,
            at: 0.0,
        };
        let mut p = Pacer::new();
        // Each worker's next free time.
        let mut workers = vec![0.0f64; concurrency];
        let mut left = n;
        let mut end: f64 = 0.0;
        while left > 0 {
            // The worker free first takes the next request.
            let (w, free) = workers
                .iter()
                .copied()
                .enumerate()
                .min_by(|a, b| a.1.total_cmp(&b.1))
                .expect("workers");
            let wait = p.reserve(Duration::from_secs_f64(free), 1).as_secs_f64();
            let sent = free + wait;
            let answered = sent + rtt;
            if server.take(sent + rtt / 2.0) {
                p.accepted(Duration::from_secs_f64(answered), 1, wait > 0.0);
                left -= 1;
                workers[w] = answered;
                end = end.max(answered);
            } else {
                p.throttled(
                    Duration::from_secs_f64(answered),
                    Duration::from_secs_f64(sent),
                    1,
                );
                // Retry-After: at least a second.
                workers[w] = answered + 1.0;
            }
        }
        (end, p.stats().throttled)
    }

    #[test]
    fn deep_buckets_are_never_paced() {
        let mut p = Pacer::new();
        for i in 0..1000u64 {
            let now = Duration::from_millis(i);
            assert_eq!(p.reserve(now, 1), Duration::ZERO);
            p.accepted(now, 1, false);
        }
        assert_eq!(p.stats().rate, None);
    }

    #[test]
    fn requests_are_spread_by_their_cost() {
        let mut p = Pacer::new();
        p.set_rate(10.0);
        let t = Duration::from_secs(5);
        assert_eq!(p.reserve(t, 1), Duration::ZERO);
        assert_eq!(p.reserve(t, 2), Duration::from_millis(100));
        assert_eq!(p.reserve(t, 1), Duration::from_millis(300));
    }

    #[test]
    fn a_429_already_in_flight_does_not_lower_the_pace_twice() {
        let mut p = Pacer::new();
        for i in 0..100u64 {
            p.accepted(Duration::from_millis(i * 10), 1, false);
        }
        let t = Duration::from_secs(1);
        p.throttled(t, t - Duration::from_millis(5), 1);
        let first = p.stats().rate.expect("paced");
        assert!((40.0..=60.0).contains(&first), "{first}");
        // Sent before the decrease: stale.
        p.throttled(
            t + Duration::from_millis(3),
            t - Duration::from_millis(2),
            1,
        );
        assert_eq!(p.stats().rate, Some(first));
        // Sent after it: a new round.
        p.throttled(
            t + Duration::from_millis(20),
            t + Duration::from_millis(10),
            1,
        );
        assert_eq!(p.stats().rate, Some(first / 2.0));
    }

    #[test]
    fn the_refill_rate_is_learned_from_what_was_accepted_between_429s() {
        let mut p = Pacer::new();
        p.throttled(Duration::ZERO, Duration::ZERO, 1);
        // 20 a second accepted for a second while sending faster.
        for i in 1..=20u64 {
            p.accepted(Duration::from_millis(i * 50), 1, false);
        }
        let t = Duration::from_millis(1000);
        p.throttled(t, t, 1);
        let r = p.stats().rate.expect("paced");
        assert!((r - BACKOFF * 20.0).abs() < 0.01, "{r}");
        // Paced acceptances raise it slowly.
        p.accepted(t, 1, true);
        assert!((p.stats().rate.expect("paced") - (r + INCREASE)).abs() < 1e-9);
        assert!(p.reserve(t, 1).is_zero());
        assert!(!p.reserve(t, 1).is_zero());
        assert_eq!(p.stats().accepted, 21);
        assert_eq!(p.stats().throttled, 2);
    }

    #[test]
    fn pacing_stays_near_the_bound_with_few_429s_in_two_bucket_shapes() {
        // (capacity, refill per second, requests): Graph-sized, graph-bench's default.
        // (5 tokens at 20 a second is not within the targets yet: see docs/benchmarks.md.)
        for (capacity, rate, n) in [(3500.0, 350.0, 10_000), (200.0, 400.0, 6000)] {
            let (took, refused) = simulate(capacity, rate, n, 8, 0.01);
            let bound = (n as f64 - capacity) / rate;
            assert!(
                took <= 1.2 * bound,
                "{capacity}/{rate}: {took:.2} s vs {bound:.2} s"
            );
            assert!(
                (refused as f64) < 0.05 * n as f64,
                "{capacity}/{rate}: {refused} refused of {n}"
            );
        }
    }

    #[test]
    fn the_registry_shares_one_limiter_per_base_tenant_and_bucket() {
        let a = limiter("http://127.0.0.1:9/", "T", Bucket::Read);
        let b = limiter("http://127.0.0.1:9", "t", Bucket::Read);
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(
            &a,
            &limiter("http://127.0.0.1:9", "t", Bucket::Write)
        ));
        assert!(!Arc::ptr_eq(
            &a,
            &limiter("http://127.0.0.1:8", "t", Bucket::Read)
        ));
        assert_eq!(
            Bucket::from_scope("Tenant_Application/Write"),
            Some(Bucket::Write)
        );
        assert_eq!(
            Bucket::from_scope("Tenant_Application/Read"),
            Some(Bucket::Read)
        );
        assert_eq!(Bucket::from_scope("x"), None);
    }
}
