//! Client-side pacing of Graph requests: one limiter per Graph base, tenant and bucket,
//! shared by every client, job and thread of the process, that learns the rate the
//! server allows from its 429 answers and spreads requests so that it does not send one
//! it expects to be refused.
//!
//! Entra meters identity requests in token buckets per app and tenant: every request
//! costs resource units ([`Bucket::Read`]), and a POST, PATCH or DELETE also costs one
//! write ([`Bucket::Write`], a separate, slower quota). The limiter does not know either
//! bucket's size or refill rate; it learns the rate (docs/ENTRA.md, "Pacing a bucket
//! shallower than a second of refill"):
//!
//! - Until the first 429 it does not pace (a deep bucket, as Graph's are, is never slowed
//!   down), but requests in flight at once start at [`START_WINDOW`] and grow by one with
//!   every [`WINDOW_GROWTH`] acceptances, so a bucket a few tokens deep meets a few
//!   requests too many, not every worker's.
//! - A 429 answers a request sent when the server's bucket was empty. Between two such
//!   moments the server accepted its refill over the time between, give or take one
//!   token, unless its bucket filled up meanwhile (the client being the slower one).
//! - So at the first 429 it searches: the pace starts at [`RAMP_START`] and doubles every
//!   [`RAMP_DOUBLING`] (a bucket a quarter of a second deep does not fill up meanwhile;
//!   the search pauses while nothing is sent, and one that idled starts again at its
//!   429) until the next 429. It then settles: from [`SETTLE_ABOVE`] times the rate
//!   accepted between the two, doubling every [`SETTLE_DOUBLING`], until the next 429,
//!   which measures the rate over the whole search (or the settling alone, the larger).
//!   From then on it paces at [`BACKOFF`] times that, rising by [`INCREASE`] per paced
//!   acceptance (about 2 % a second) and dipping to [`DIP`] of the pace at each new 429.
//! - Only one decrease per round: a 429 to a request sent before the last decrease says
//!   nothing new (it was already in flight). A slot handed out before a decrease is
//!   reserved again ([`Limiter::still_paced`]), so requests queued at the old pace do
//!   not all meet the empty bucket.
//! - Requests are spaced `cost / rate` apart (a `$batch` of 20 costs 20), and the start
//!   window counts units (a `$batch` of 20 is 20 in flight).
//! - A `$batch` is sized to what the bucket allows ([`Pacer::batch_size`]): before the
//!   first 429, to the room left in the start window; after it, to half the most units
//!   one request has had accepted (the bucket's depth as seen, halved so that a batch
//!   paced slightly early still finds its tokens), or the caller's most when a full
//!   batch of that many was accepted at once; and no more than [`BATCH_SPAN`] of the
//!   pace's refill.
//!
//! The refused request itself waits its `Retry-After` (the retry loops do that); the
//! others keep the pace. Retry-After is whole seconds (at least 1 at the emulator), so
//! holding every request for it would idle a bucket shallower than one second of refill.
//!
//! [`Pacer`] is the sans-IO core (time is passed in); [`Limiter`] wraps it for threads
//! and async tasks; [`limiter`] is the process-wide registry.

use std::collections::HashMap;
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

/// How fast the pace doubles while the limiter looks for the refill rate (after the
/// first 429, and after a 429 that says the last estimate was wrong): short enough that
/// a bucket a quarter of a second deep does not fill up (and waste refill) meanwhile.
pub const RAMP_DOUBLING: Duration = Duration::from_millis(80);
/// The pace a search starts from (requests per second).
pub const RAMP_START: f64 = 1.0;
/// The fraction of the measured refill rate the limiter paces at.
pub const BACKOFF: f64 = 0.96;
/// The fewest acceptances between two 429s for their interval to measure the refill
/// rate; with fewer the search starts again, from half the rate seen.
pub const MIN_SAMPLES: f64 = 4.0;
/// Pace gained (requests per second) per request accepted while paced: about 2 % a
/// second, so a server that allows more is found again.
pub const INCREASE: f64 = 0.02;
/// After the search, the pace starts this much above the rate measured (which is off
/// by up to one token over the search's short interval, and low when the client was the
/// slower one for a while) and doubles every [`SETTLE_DOUBLING`] (about 26 % a second),
/// so the next 429 comes within a second or so and the rate is measured again.
pub const SETTLE_ABOVE: f64 = 1.05;
/// See [`SETTLE_ABOVE`].
pub const SETTLE_DOUBLING: Duration = Duration::from_secs(3);
/// A 429 while pacing at the measured rate: the pace falls to this fraction of the
/// pace it came at.
pub const DIP: f64 = 0.94;
/// The slowest pace the limiter falls to (requests per second).
pub const MIN_RATE: f64 = 0.05;
/// Before the first 429, requests in flight at once start at this many and grow by one
/// with every [`WINDOW_GROWTH`] acceptances: a bucket only a few tokens deep then meets a
/// few requests too many, not every worker's, and the workers not refused keep the
/// search going while the refused ones wait out their Retry-After.
pub const START_WINDOW: u32 = 2;
/// See [`START_WINDOW`].
pub const WINDOW_GROWTH: u64 = 4;
/// While paced, a `$batch` carries at most the pace's refill over this span (and at
/// least one request): right after a 429 the server's bucket is empty, and a batch
/// much larger than a few milliseconds of refill would meet it empty again.
pub const BATCH_SPAN: Duration = Duration::from_millis(25);
/// How long a request the start window holds back waits before it asks again.
pub const WINDOW_POLL: Duration = Duration::from_millis(2);

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

/// Where the pacer is.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
enum Mode {
    /// No 429 yet: no pacing.
    #[default]
    Free,
    /// Looking for the refill rate: the pace doubles every [`RAMP_DOUBLING`] from
    /// `from` (requests per second) at `since` until a 429.
    Ramp { since: f64, from: f64 },
    /// Measuring more closely: pacing from `from` at `since`, doubling every
    /// [`SETTLE_DOUBLING`], until the next 429.
    Settle { since: f64, from: f64 },
    /// Pacing at `rate`, rising by [`INCREASE`] per paced acceptance.
    Steady { rate: f64 },
}

/// The sans-IO pacing state of one bucket. Times are offsets from any fixed instant.
///
/// A 429 says the server's bucket was empty when the request reached it. Between two
/// such moments the server accepted exactly its refill over the time between (give or
/// take the one token it may have held at either end), unless its bucket filled up
/// meanwhile. So after the first 429 the pacer starts slow (no refill is wasted in a
/// bucket that cannot fill up in the time taken) and doubles its pace every
/// [`RAMP_DOUBLING`] until the next 429, then paces at [`BACKOFF`] times the rate the
/// server accepted between the two. After that it creeps up ([`INCREASE`]) and dips
/// ([`DIP`]) at each new 429 (additive increase, multiplicative decrease).
#[derive(Debug, Default)]
pub struct Pacer {
    mode: Mode,
    /// The earliest start of the next request (seconds).
    next: f64,
    /// When the last decrease happened (seconds); requests sent before it are stale.
    last_decrease: Option<f64>,
    /// The last fresh 429 (the server's bucket empty), and what was accepted since.
    anchor: f64,
    accepted_since: f64,
    /// The 429 the search began at, and what was accepted since (the search and the
    /// settling measure together).
    search: f64,
    accepted_search: f64,
    /// Bumped by every decrease: a slot reserved before it is reserved again.
    epoch: u64,
    /// Units reserved and not answered yet.
    in_flight: u32,
    /// The most units one request has had accepted (the server's bucket held at least
    /// that many at once).
    deepest: u32,
    /// The search paused (nothing sent) long enough for the server's bucket to fill:
    /// its interval does not measure the refill rate.
    idled: bool,
    stats: PaceStats,
}

impl Pacer {
    /// A pacer that has seen nothing (does not pace).
    pub fn new() -> Self {
        Pacer::default()
    }

    /// The pace at `t` (seconds); `None`: not pacing.
    fn rate_at(&self, t: f64) -> Option<f64> {
        match self.mode {
            Mode::Free => None,
            Mode::Ramp { since, from } => {
                let doublings = ((t - since).max(0.0) / RAMP_DOUBLING.as_secs_f64()).min(60.0);
                Some(from * doublings.exp2())
            }
            Mode::Settle { since, from } => {
                let doublings = ((t - since).max(0.0) / SETTLE_DOUBLING.as_secs_f64()).min(60.0);
                Some(from * doublings.exp2())
            }
            Mode::Steady { rate } => Some(rate),
        }
    }

    /// The number of decreases so far (see [`Pacer::reserve`]).
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The time after `slot` by which the pace has paid for `cost` units.
    fn after(&self, slot: f64, cost: f64) -> f64 {
        match self.mode {
            Mode::Free => slot,
            Mode::Ramp { .. } => {
                // ∫ r·2^(u/τ) du = cost from the slot's rate r.
                let r = self.rate_at(slot).unwrap_or(RAMP_START).max(MIN_RATE);
                let tau = RAMP_DOUBLING.as_secs_f64();
                slot + tau * (1.0 + cost * std::f64::consts::LN_2 / (r * tau)).log2()
            }
            Mode::Settle { .. } => {
                let r = self.rate_at(slot).unwrap_or(RAMP_START).max(MIN_RATE);
                slot + cost / r
            }
            Mode::Steady { rate } => slot + cost / rate.max(MIN_RATE),
        }
    }

    /// The start window: units in flight at once before the first 429.
    fn window(&self) -> u32 {
        let grown = u32::try_from(self.stats.accepted / WINDOW_GROWTH).unwrap_or(u32::MAX);
        START_WINDOW.saturating_add(grown)
    }

    /// Before the first 429: whether `units` more in flight would exceed the start
    /// window (the caller waits [`WINDOW_POLL`] and asks again; nothing is reserved).
    /// The window counts units (a `$batch` of 20 is 20), growing with the units
    /// accepted; with nothing in flight any request goes.
    pub fn window_full(&self, units: u32) -> bool {
        self.mode == Mode::Free
            && self.in_flight > 0
            && self.in_flight.saturating_add(units) > self.window()
    }

    /// How many inner requests the next `$batch` should carry, at most `most` (Graph's
    /// 20): before the first 429, the room left in the start window; after it, half the
    /// most units one request has had accepted (rounded up), or `most` when `most` were
    /// accepted at once, and no more than the pace refills in [`BATCH_SPAN`]. At least 1.
    pub fn batch_size(&self, most: u32) -> u32 {
        let size = if self.mode == Mode::Free {
            self.window().saturating_sub(self.in_flight)
        } else {
            let depth = if self.deepest >= most {
                most
            } else {
                self.deepest.div_ceil(2)
            };
            let rate = self.stats().rate.unwrap_or(MIN_RATE);
            // Saturating float-to-int conversion.
            depth.min((rate * BATCH_SPAN.as_secs_f64()) as u32)
        };
        size.clamp(1, most.max(1))
    }

    /// A reserved request of `cost` units was answered, or will not be (it could not be
    /// sent, or its answer was lost): it is no longer in flight.
    pub fn released(&mut self, cost: u32) {
        self.in_flight = self.in_flight.saturating_sub(cost.max(1));
    }

    /// Reserves a slot for a request costing `cost` units at `now`; returns how long to
    /// wait before sending it. The reservation is made either way.
    pub fn reserve(&mut self, now: Duration, cost: u32) -> Duration {
        let t = now.as_secs_f64();
        self.in_flight = self.in_flight.saturating_add(cost.max(1));
        if self.mode == Mode::Free {
            return Duration::ZERO;
        }
        if let Mode::Ramp { since, .. } | Mode::Settle { since, .. } = &mut self.mode {
            // The search pauses while nothing is sent (every request waiting out a
            // Retry-After): its pace is what the server has been shown.
            let idle = (t - self.next).max(0.0);
            *since += idle;
            self.idled |= idle > 2.0 * RAMP_DOUBLING.as_secs_f64();
        }
        let slot = self.next.max(t);
        self.next = self.after(slot, f64::from(cost.max(1)));
        Duration::from_secs_f64(slot - t)
    }

    /// `cost` units sent at `sent` were accepted (answered, not with 429) at `now`;
    /// `paced`: the request had to wait for its slot.
    pub fn accepted(&mut self, now: Duration, sent: Duration, cost: u32, paced: bool) {
        let c = f64::from(cost);
        self.stats.accepted += u64::from(cost);
        self.deepest = self.deepest.max(cost);
        // Only what was sent after the last 429 measures the refill since.
        if sent.as_secs_f64() >= self.anchor {
            self.accepted_since += c;
        }
        if sent.as_secs_f64() >= self.search {
            self.accepted_search += c;
        }
        let _ = now;
        if let (Mode::Steady { rate }, true) = (&mut self.mode, paced) {
            *rate += INCREASE * c;
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
        let span = t - self.anchor;
        let measured = self.accepted_since / span.max(1e-3);
        let enough = self.accepted_since >= MIN_SAMPLES;
        let (mode, search) = match self.mode {
            Mode::Free => (
                Mode::Ramp {
                    since: t,
                    from: RAMP_START,
                },
                true,
            ),
            // Idle meanwhile: this 429 is where a clean search begins.
            Mode::Ramp { .. } if self.idled => (
                Mode::Ramp {
                    since: t,
                    from: RAMP_START,
                },
                true,
            ),
            Mode::Ramp { .. } if enough => (
                Mode::Settle {
                    since: t,
                    from: (SETTLE_ABOVE * measured).max(MIN_RATE),
                },
                false,
            ),
            // Too few to measure: search again from below what was seen.
            Mode::Ramp { .. } => (
                Mode::Ramp {
                    since: t,
                    from: (measured / 2.0).clamp(RAMP_START / 4.0, RAMP_START),
                },
                true,
            ),
            Mode::Settle { .. } => {
                let rate = self.rate_at(t).unwrap_or(MIN_RATE);
                // Over the whole search, or over the settling alone when that is long
                // enough: each undercounts if the client was slower than the server
                // long enough for its bucket to fill, so the larger.
                let whole = self.accepted_search / (t - self.search).max(1e-3);
                let settling = if span >= 0.5 && enough { measured } else { 0.0 };
                let best = whole.max(settling);
                let rate = if best > 0.0 { best } else { rate };
                (
                    Mode::Steady {
                        rate: (BACKOFF * rate).max(MIN_RATE),
                    },
                    false,
                )
            }
            Mode::Steady { rate } => (
                Mode::Steady {
                    rate: (DIP * rate).max(MIN_RATE),
                },
                false,
            ),
        };
        tracing::debug!(
            at = t,
            from = ?self.mode,
            to = ?mode,
            accepted = self.accepted_since,
            over = span,
            "Graph pace after a 429"
        );
        self.mode = mode;
        self.idled = false;
        self.epoch += 1;
        if search {
            self.search = t;
            self.accepted_search = 0.0;
        }
        // The bucket is empty now: the next request waits for one unit of the new pace.
        self.next = self.next.max(self.after(t, f64::from(cost.max(1))));
        self.anchor = t;
        self.accepted_since = 0.0;
    }

    /// What the pacer has seen.
    pub fn stats(&self) -> PaceStats {
        PaceStats {
            rate: match self.mode {
                Mode::Free => None,
                Mode::Ramp { from, .. } | Mode::Settle { from, .. } => Some(from),
                Mode::Steady { rate } => Some(rate),
            },
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
    /// The pacer's decrease count when the slot was reserved (see
    /// [`Limiter::still_paced`]).
    pub decreases: u64,
}

impl Limiter {
    fn pacer(&self) -> std::sync::MutexGuard<'_, Pacer> {
        self.pacer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn now(&self) -> Duration {
        self.epoch.elapsed()
    }

    /// Reserves a slot for `cost` units; the caller waits `ticket.wait` before sending.
    /// (Before the first 429, the caller first asks [`Limiter::window_full`].)
    pub fn reserve(&self, cost: u32) -> Ticket {
        let now = self.now();
        let mut p = self.pacer();
        let wait = p.reserve(now, cost);
        Ticket {
            wait,
            sent: now + wait,
            decreases: p.epoch(),
        }
    }

    /// Whether the start window holds a request of `units` back (see
    /// [`Pacer::window_full`]): wait [`WINDOW_POLL`] and ask again.
    pub fn window_full(&self, units: u32) -> bool {
        self.pacer().window_full(units)
    }

    /// How many inner requests the next `$batch` should carry (see
    /// [`Pacer::batch_size`]).
    pub fn batch_size(&self, most: u32) -> u32 {
        self.pacer().batch_size(most)
    }

    /// Whether a slot waited for is still good: false when the pace went down while it
    /// waited (the slot was handed out at the old, too fast pace: reserve again).
    pub fn still_paced(&self, ticket: &Ticket) -> bool {
        ticket.wait.is_zero() || self.pacer().epoch() == ticket.decreases
    }

    /// The request of a ticket, `cost` units, was answered, or will not be (see
    /// [`Pacer::released`]).
    pub fn released(&self, cost: u32) {
        self.pacer().released(cost);
    }

    /// The request of `ticket` was answered with something other than 429.
    pub fn accepted(&self, ticket: &Ticket, cost: u32) {
        let now = self.now();
        self.pacer()
            .accepted(now, ticket.sent, cost, !ticket.wait.is_zero());
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

    /// A fake server bucket: `capacity` tokens refilled at `rate` a second; a refusal
    /// says how many whole seconds to wait (at least 1, as the emulator does).
    struct Server {
        tokens: f64,
        capacity: f64,
        rate: f64,
        at: f64,
    }

    impl Server {
        fn take(&mut self, t: f64) -> Option<f64> {
            self.tokens = (self.tokens + (t - self.at) * self.rate).min(self.capacity);
            self.at = t;
            if self.tokens >= 1.0 {
                self.tokens -= 1.0;
                None
            } else {
                Some(((1.0 - self.tokens) / self.rate).ceil().max(1.0))
            }
        }
    }

    #[derive(Clone, Copy)]
    enum Ev {
        Ready,
        Send {
            paced: bool,
            epoch: u64,
        },
        Answer {
            sent: f64,
            retry: Option<f64>,
            paced: bool,
        },
    }

    /// Drives `n` requests from `workers` workers (each one request at a time, as the
    /// bulk runner's threads) with a round trip of `rtt` seconds (±20 %); a refused
    /// request waits its Retry-After and is sent again. A slot reserved before a
    /// decrease is reserved again (as `Core::pace` does). Returns (seconds taken, 429s,
    /// requests).
    fn simulate(capacity: f64, rate: f64, n: usize, workers: usize, rtt: f64) -> (f64, u64, u64) {
        let mut server = Server {
            tokens: capacity,
            capacity,
            rate,
            at: 0.0,
        };
        let mut p = Pacer::new();
        let mut seed = 1u64;
        let mut jitter = move || {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            0.8 + 0.4 * ((seed >> 11) as f64 / (1u64 << 53) as f64)
        };
        let mut events: Vec<(f64, usize, Ev)> = (0..workers).map(|w| (0.0, w, Ev::Ready)).collect();
        let (mut taken, mut done, mut end, mut requests) = (0, 0, 0.0f64, 0u64);
        let mut holding = vec![false; workers];
        while let Some(i) = (0..events.len()).min_by(|a, b| events[*a].0.total_cmp(&events[*b].0)) {
            let (t, w, ev) = events.swap_remove(i);
            let at = Duration::from_secs_f64(t);
            match ev {
                Ev::Ready => {
                    if !holding[w] {
                        if taken == n {
                            continue;
                        }
                        taken += 1;
                        holding[w] = true;
                    }
                    let wait = p.reserve(at, 1).as_secs_f64();
                    let ev = Ev::Send {
                        paced: wait > 0.0,
                        epoch: p.epoch(),
                    };
                    events.push((t + wait, w, ev));
                }
                Ev::Send { paced, epoch } if paced && epoch != p.epoch() => {
                    events.push((t, w, Ev::Ready));
                }
                Ev::Send { paced, .. } => {
                    let r = rtt * jitter();
                    requests += 1;
                    let retry = server.take(t + r / 2.0);
                    events.push((
                        t + r,
                        w,
                        Ev::Answer {
                            sent: t,
                            retry,
                            paced,
                        },
                    ));
                }
                Ev::Answer {
                    sent,
                    retry: None,
                    paced,
                } => {
                    p.accepted(at, Duration::from_secs_f64(sent), 1, paced);
                    done += 1;
                    holding[w] = false;
                    end = end.max(t);
                    events.push((t, w, Ev::Ready));
                }
                Ev::Answer {
                    sent,
                    retry: Some(ra),
                    ..
                } => {
                    p.throttled(at, Duration::from_secs_f64(sent), 1);
                    events.push((t + ra, w, Ev::Ready));
                }
            }
        }
        assert_eq!(done, n);
        (end, p.stats().throttled, requests)
    }

    /// As [`simulate`], with `$batch`es: each worker takes as many due requests as
    /// [`Pacer::batch_size`] says (at most 20), reserves them as one request of that
    /// cost, and the server meters each inner request; refused ones come back after
    /// their Retry-After, the worker goes on. Returns (seconds taken, inner 429s, inner
    /// requests).
    fn simulate_batches(
        capacity: f64,
        rate: f64,
        n: usize,
        workers: usize,
        rtt: f64,
    ) -> (f64, u64, u64) {
        #[derive(Clone)]
        enum Bev {
            Ready,
            Send {
                items: usize,
                paced: bool,
                epoch: u64,
            },
            Answer {
                sent: f64,
                items: usize,
                refused: Vec<f64>,
                paced: bool,
            },
        }
        let mut server = Server {
            tokens: capacity,
            capacity,
            rate,
            at: 0.0,
        };
        let mut p = Pacer::new();
        let mut seed = 7u64;
        let mut jitter = move || {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            0.8 + 0.4 * ((seed >> 11) as f64 / (1u64 << 53) as f64)
        };
        // Due times of the requests waiting to be sent.
        let mut waiting: Vec<f64> = vec![0.0; n];
        let mut events: Vec<(f64, usize, Bev)> =
            (0..workers).map(|w| (0.0, w, Bev::Ready)).collect();
        let (mut done, mut end, mut requests) = (0usize, 0.0f64, 0u64);
        while let Some(i) = (0..events.len()).min_by(|a, b| events[*a].0.total_cmp(&events[*b].0)) {
            let (t, w, ev) = events.swap_remove(i);
            let at = Duration::from_secs_f64(t);
            match ev {
                Bev::Ready => {
                    if done == n {
                        continue;
                    }
                    let size = p.batch_size(20) as usize;
                    waiting.sort_by(f64::total_cmp);
                    let due = waiting.iter().take_while(|d| **d <= t).count().min(size);
                    if due == 0 || p.window_full(due as u32) {
                        let next = waiting.first().copied().unwrap_or(t).max(t);
                        events.push((next.min(t + 0.005).max(t + 0.001), w, Bev::Ready));
                        continue;
                    }
                    waiting.drain(..due);
                    let wait = p.reserve(at, due as u32).as_secs_f64();
                    let ev = Bev::Send {
                        items: due,
                        paced: wait > 0.0,
                        epoch: p.epoch(),
                    };
                    events.push((t + wait, w, ev));
                }
                Bev::Send {
                    items,
                    paced,
                    epoch,
                } if paced && epoch != p.epoch() => {
                    // Reserved at the old pace: again (as `Core::pace` does).
                    p.released(items as u32);
                    let wait = p.reserve(at, items as u32).as_secs_f64();
                    let ev = Bev::Send {
                        items,
                        paced: wait > 0.0,
                        epoch: p.epoch(),
                    };
                    events.push((t + wait, w, ev));
                }
                Bev::Send { items, paced, .. } => {
                    let r = rtt * jitter();
                    requests += items as u64;
                    let refused: Vec<f64> = (0..items)
                        .filter_map(|_| server.take(t + r / 2.0))
                        .collect();
                    let ev = Bev::Answer {
                        sent: t,
                        items,
                        refused,
                        paced,
                    };
                    events.push((t + r, w, ev));
                }
                Bev::Answer {
                    sent,
                    items,
                    refused,
                    paced,
                } => {
                    let sent = Duration::from_secs_f64(sent);
                    let accepted = items - refused.len();
                    if accepted > 0 {
                        p.accepted(at, sent, accepted as u32, paced);
                    }
                    if !refused.is_empty() {
                        p.throttled(at, sent, refused.len() as u32);
                    }
                    p.released(items as u32);
                    done += accepted;
                    if accepted > 0 {
                        end = end.max(t);
                    }
                    waiting.extend(refused.iter().map(|ra| t + ra));
                    events.push((t, w, Bev::Ready));
                }
            }
        }
        assert_eq!(done, n);
        (end, p.stats().throttled, requests)
    }

    #[test]
    fn batches_are_sized_to_the_bucket_and_paced_by_their_inner_requests() {
        // The three shapes of the single-request test, 8 workers sending `$batch`es.
        for (capacity, rate) in [(3500.0, 350.0), (200.0, 400.0), (5.0, 20.0)] {
            let n = (capacity + 8.0 * rate) as usize;
            let (took, refused, requests) = simulate_batches(capacity, rate, n, 8, 0.007);
            let bound = (n as f64 - capacity) / rate;
            assert!(
                took <= 1.1 * bound,
                "{capacity}/{rate}: {took:.2} s vs {bound:.2} s"
            );
            assert!(
                (refused as f64) < 0.05 * requests as f64,
                "{capacity}/{rate}: {refused} refused of {requests}"
            );
        }
    }

    #[test]
    fn a_batch_is_never_larger_than_the_bucket_seen() {
        let mut p = Pacer::new();
        let ms = Duration::from_millis;
        // Before any 429: the room in the start window.
        assert_eq!(p.batch_size(20), START_WINDOW);
        p.reserve(ms(0), 2);
        assert!(p.window_full(1));
        assert_eq!(p.batch_size(20), 1, "at least one");
        p.accepted(ms(10), ms(0), 2, false);
        p.released(2);
        // A batch of 8 meets a bucket of 5: 5 accepted, 3 refused.
        p.reserve(ms(10), 8);
        p.accepted(ms(20), ms(10), 5, false);
        p.throttled(ms(20), ms(10), 3);
        p.released(8);
        // Searching from 1 a second: one at a time.
        assert_eq!(p.batch_size(20), 1);
        // Paced at 1000 a second (25 per BATCH_SPAN): half the 5 seen, rounded up.
        p.mode = Mode::Steady { rate: 1000.0 };
        assert_eq!(p.batch_size(20), 3);
        // A deep bucket: 20 accepted at once, the most a batch carries.
        p.accepted(ms(30), ms(25), 20, false);
        assert_eq!(p.batch_size(20), 20);
        // At 200 a second: what 25 ms refill.
        p.mode = Mode::Steady { rate: 200.0 };
        assert_eq!(p.batch_size(20), 5);
    }

    #[test]
    fn deep_buckets_are_never_paced() {
        let mut p = Pacer::new();
        for i in 0..1000u64 {
            let now = Duration::from_millis(i);
            assert_eq!(p.reserve(now, 1), Duration::ZERO);
            p.accepted(now, now, 1, false);
        }
        assert_eq!(p.stats().rate, None);
    }

    #[test]
    fn requests_are_spread_by_their_cost() {
        let mut p = Pacer::new();
        p.mode = Mode::Steady { rate: 10.0 };
        let t = Duration::from_secs(5);
        assert_eq!(p.reserve(t, 1), Duration::ZERO);
        assert_eq!(p.reserve(t, 2), Duration::from_millis(100));
        assert_eq!(p.reserve(t, 1), Duration::from_millis(300));
    }

    #[test]
    fn a_429_already_in_flight_does_not_lower_the_pace_twice() {
        let mut p = Pacer::new();
        p.mode = Mode::Steady { rate: 100.0 };
        let t = Duration::from_secs(1);
        p.throttled(t, t - Duration::from_millis(5), 1);
        assert_eq!(p.stats().rate, Some(DIP * 100.0));
        let epoch = p.epoch();
        // Sent before the decrease: stale.
        p.throttled(
            t + Duration::from_millis(3),
            t - Duration::from_millis(2),
            1,
        );
        assert_eq!(p.stats().rate, Some(DIP * 100.0));
        assert_eq!(p.epoch(), epoch);
        // Sent after it: a new round.
        p.throttled(
            t + Duration::from_millis(20),
            t + Duration::from_millis(10),
            1,
        );
        assert_eq!(p.stats().rate, Some(DIP * DIP * 100.0));
        assert_eq!(p.epoch(), epoch + 1);
    }

    #[test]
    fn the_refill_rate_is_measured_between_two_429s() {
        let mut p = Pacer::new();
        let ms = Duration::from_millis;
        // The first 429 starts the search slowly: the next slot is a while away.
        p.throttled(ms(0), ms(0), 1);
        assert!(p.reserve(ms(0), 1) > ms(100));
        // 20 a second accepted for a second, then the next 429: settle just above.
        for i in 1..=20u64 {
            p.accepted(ms(i * 50), ms(i * 50 - 5), 1, true);
        }
        p.throttled(ms(1000), ms(995), 1);
        let r = p.stats().rate.expect("paced");
        assert!((r - SETTLE_ABOVE * 20.0).abs() < 0.01, "{r}");
        // 21 more over the next second: the settling alone (21 a second) measures more
        // than the whole search (41 in 2 s): paced at BACKOFF × 21.
        for i in 1..=21u64 {
            p.accepted(ms(1000 + i * 47), ms(1000 + i * 47 - 5), 1, true);
        }
        p.throttled(ms(2000), ms(1995), 1);
        let r = p.stats().rate.expect("paced");
        assert!((r - BACKOFF * 21.0).abs() < 0.01, "{r}");
        assert_eq!(p.stats().accepted, 41);
        assert_eq!(p.stats().throttled, 3);
    }

    #[test]
    fn pacing_stays_near_the_bound_with_few_429s_in_three_bucket_shapes() {
        // (capacity, refill per second): Graph-sized, graph-bench's default, 5 tokens at
        // 20 a second; 8 workers, 7 ms round trips, about 8 s of work at the bound.
        for (capacity, rate) in [(3500.0, 350.0), (200.0, 400.0), (5.0, 20.0)] {
            let n = (capacity + 8.0 * rate) as usize;
            let (took, refused, requests) = simulate(capacity, rate, n, 8, 0.007);
            let bound = (n as f64 - capacity) / rate;
            assert!(
                took <= 1.1 * bound,
                "{capacity}/{rate}: {took:.2} s vs {bound:.2} s"
            );
            assert!(
                (refused as f64) < 0.05 * requests as f64,
                "{capacity}/{rate}: {refused} refused of {requests}"
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
