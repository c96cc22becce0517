//! Node-local wake-ups between a session's waiting handler and its flow.
//!
//! The handler of a device message waits for the flow's reply, and the flow waits for the
//! device half's next message, each by reading the session row again. Before, both read it
//! every 15 ms while they waited: a Graph call of 80 ms cost five or six repository
//! transactions, most of a holder sign-in's own CPU. Now whoever changes a session row in
//! this process rings the session's slot, which wakes its waiters at once; a waiter that
//! is not rung (the change came from another node) reads the row again after a pause
//! that grows from [`FIRST_WAIT`] to [`MAX_WAIT`], unless the repository tells this node
//! of other nodes' changes (PostgreSQL `LISTEN`/`NOTIFY`,
//! [`crate::store::split::SplitStore::watch_sessions`]), which rings the slot at the other
//! node's commit. The ring is only a hint: the row stays
//! the truth, a waiter takes the slot's count *before* it reads the row (so a change made
//! between its read and its wait is never slept through), and a spurious wake-up (two
//! sessions sharing a slot) costs one read.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::Duration;

/// The first pause of a waiter not rung.
pub(super) const FIRST_WAIT: Duration = Duration::from_millis(15);
/// The longest pause between two reads of the row when nothing rings (the other node's
/// change is seen this late at worst).
pub(super) const MAX_WAIT: Duration = Duration::from_millis(60);

const SLOTS: usize = 64;

struct Bells {
    rung: [AtomicU64; SLOTS],
    lock: Mutex<()>,
    wake: Condvar,
}

static BELLS: Bells = Bells {
    rung: [const { AtomicU64::new(0) }; SLOTS],
    lock: Mutex::new(()),
    wake: Condvar::new(),
};

fn slot(session_id: &str) -> &'static AtomicU64 {
    // FNV-1a: any spread will do; a collision only wakes a waiter for nothing.
    let h = session_id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let i = usize::try_from(h % SLOTS as u64).unwrap_or(0);
    &BELLS.rung[i]
}

/// The session's slot count now: take it before reading the row, then [`wait`] with it.
pub(super) fn seen(session_id: &str) -> u64 {
    slot(session_id).load(Ordering::SeqCst)
}

/// Tells this process's waiters on `session_id` that its row changed.
pub(super) fn ring(session_id: &str) {
    slot(session_id).fetch_add(1, Ordering::SeqCst);
    let _guard = BELLS.lock.lock().unwrap_or_else(PoisonError::into_inner);
    BELLS.wake.notify_all();
}

/// Sleeps until `session_id`'s slot moves past `seen` or `timeout` passes.
pub(super) fn wait(session_id: &str, seen: u64, timeout: Duration) {
    let slot = slot(session_id);
    let guard = BELLS.lock.lock().unwrap_or_else(PoisonError::into_inner);
    let _ = BELLS
        .wake
        .wait_timeout_while(guard, timeout, |()| slot.load(Ordering::SeqCst) == seen)
        .unwrap_or_else(PoisonError::into_inner);
}

/// The next pause: doubled, at most [`MAX_WAIT`].
pub(super) fn back_off(current: Duration) -> Duration {
    (current * 2).min(MAX_WAIT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ring_wakes_the_waiter_and_a_ring_before_the_wait_is_not_missed() {
        let sid = "wake-test-session";
        let before = seen(sid);
        let t = std::thread::spawn(move || {
            let started = std::time::Instant::now();
            wait(sid, before, Duration::from_secs(30));
            started.elapsed()
        });
        std::thread::sleep(Duration::from_millis(20));
        ring(sid);
        assert!(t.join().unwrap() < Duration::from_secs(20));
        // Rung after `seen` but before the wait: no wait at all.
        let started = std::time::Instant::now();
        wait(sid, before, Duration::from_secs(30));
        assert!(started.elapsed() < Duration::from_secs(20));
        assert_eq!(back_off(FIRST_WAIT), Duration::from_millis(30));
        assert_eq!(back_off(Duration::from_millis(40)), MAX_WAIT);
    }
}
