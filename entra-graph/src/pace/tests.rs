//! The pacer's unit tests: its rules one by one, and an event-driven simulation of
//! workers against a token bucket (single requests and `$batch`es).

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
    let mut events: Vec<(f64, usize, Bev)> = (0..workers).map(|w| (0.0, w, Bev::Ready)).collect();
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
