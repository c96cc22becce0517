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
        self.in_flight = self.in_flight.saturating_sub(cost);
    }

    /// Reserves a slot for a request costing `cost` units at `now`; returns how long to
    /// wait before sending it. The reservation is made either way.
    pub fn reserve(&mut self, now: Duration, cost: u32) -> Duration {
        let t = now.as_secs_f64();
        self.in_flight = self.in_flight.saturating_add(cost);
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
mod tests;
