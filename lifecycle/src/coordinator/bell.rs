//! Wake-ups between a session's handler and its flow when both run in this process.
//!
//! The handler of a device message waits for the flow's reply, and the flow waits for the
//! device half's next message, each by reading the session row again. Before, both read it
//! every [`POLL`](super::remote_link::POLL) while they waited: a waited-on Graph call of
//! 80 ms cost five or six repository transactions, most of a holder sign-in's own CPU on
//! PostgreSQL. Now whoever changes a session row in this process rings its slot, which wakes
//! the waiters at once; a waiter not woken (the change came from another node) reads the
//! row again after a back-off from `POLL` doubling to [`MAX_WAIT`]. The bell is only a hint:
//! the row stays the truth, and a spurious wake-up (two sessions sharing a slot) costs one
//! read.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::Duration;

/// The longest a waiter sleeps between two reads of the row when nothing rings.
pub(super) const MAX_WAIT: Duration = Duration::from_millis(60);

const SLOTS: usize = 64;

struct Bell {
    rung: [AtomicU64; SLOTS],
    lock: Mutex<()>,
    wake: Condvar,
}

static BELL: Bell = Bell {
    rung: [const { AtomicU64::new(0) }; SLOTS],
    lock: Mutex::new(()),
    wake: Condvar::new(),
};

fn slot(session_id: &str) -> &'static AtomicU64 {
    // FNV-1a: any spread will do; a collision only wakes a waiter for nothing.
    let h = session_id
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
    &BELL.rung[(h % SLOTS as u64) as usize]
}

/// What the session's slot reads now: take it before reading the row, then
/// [`wait`] with it, so a change made between the read and the wait is not missed.
pub(super) fn seen(session_id: &str) -> u64 {
    slot(session_id).load(Ordering::SeqCst)
}

/// Tells this process's waiters on `session_id` that its row changed.
pub(super) fn ring(session_id: &str) {
    slot(session_id).fetch_add(1, Ordering::SeqCst);
    let _guard = BELL.lock.lock().unwrap_or_else(PoisonError::into_inner);
    BELL.wake.notify_all();
}

/// Sleeps until `session_id`'s slot moves past `seen` or `timeout` passes.
pub(super) fn wait(session_id: &str, seen: u64, timeout: Duration) {
    let slot = slot(session_id);
    let guard = BELL.lock.lock().unwrap_or_else(PoisonError::into_inner);
    let _ = BELL
        .wake
        .wait_timeout_while(guard, timeout, |_| slot.load(Ordering::SeqCst) == seen)
        .unwrap_or_else(PoisonError::into_inner);
}

/// The next back-off: doubled, at most [`MAX_WAIT`].
pub(super) fn back_off(current: Duration) -> Duration {
    (current * 2).min(MAX_WAIT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ring_wakes_the_waiter_before_its_timeout() {
        let sid = "bell-test-session";
        let before = seen(sid);
        let t = std::thread::spawn(move || {
            let started = std::time::Instant::now();
            wait(sid, before, Duration::from_secs(10));
            started.elapsed()
        });
        std::thread::sleep(Duration::from_millis(20));
        ring(sid);
        assert!(t.join().unwrap() < Duration::from_secs(5));
        // Already moved: no wait at all.
        let started = std::time::Instant::now();
        wait(sid, before, Duration::from_secs(10));
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(back_off(Duration::from_millis(40)), MAX_WAIT);
    }
}
