//! Short-lived caches of directory reads a bulk job would otherwise repeat per row: the
//! FIDO2 method policy (one for the tenant) and recently read users (the engine reads a
//! user for the key's record and the pre-flight reads the same user again).
//!
//! The caches are used only while a bulk job runs ([`crate::GraphClient::begin_job`]):
//! outside one, every pre-flight reads afresh, as before.
//!
//! Every check is still made; only where its data comes from changes. The policy is
//! dropped (and so re-read by the next pre-flight) when Graph answers a policy-shaped
//! refusal: a 403, or a 400 to creationOptions or a registration other than an expired
//! challenge.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::wire::{Fido2Policy, User};
use crate::GraphError;

/// How long a read FIDO2 policy is used without reading it again.
pub const POLICY_TTL: Duration = Duration::from_secs(60);
/// How long a read user is reused (by object id or by the UPN it was read by).
pub const USER_TTL: Duration = Duration::from_secs(30);
/// Most user entries kept (each user is kept under its id, its UPN and the name it was
/// read by), and most users announced and not read yet.
const MAX_USERS: usize = 65_536;
/// When the users are at [`MAX_USERS`], those read longer ago than this are dropped
/// first (a job's batches read ahead by 15 rows at most).
const KEEP_RECENT: Duration = Duration::from_secs(5);
/// Entries kept before the first sweep of expired users ([`USER_TTL`] passed): after each
/// sweep the next comes when the entries have doubled, so the map holds about twice the
/// users read within [`USER_TTL`], not every user a long job has read.
const FIRST_SWEEP: usize = 256;

/// The users read recently, by lowercase id, UPN and the name each was read by.
#[derive(Debug, Default)]
struct Users {
    map: HashMap<String, (Instant, User)>,
    /// Sweep expired entries when the map reaches this many.
    sweep_at: usize,
}

impl Users {
    fn get(&self, key: &str) -> Option<User> {
        self.map
            .get(&key.to_ascii_lowercase())
            .filter(|(at, _)| at.elapsed() < USER_TTL)
            .map(|(_, u)| u.clone())
    }

    /// Keeps `u` (read at `at`) under `key`, its id and its UPN; drops expired users
    /// first once the map has grown to the sweep mark.
    fn put(&mut self, key: &str, u: &User, at: Instant) {
        if self.map.len() >= self.sweep_at.max(FIRST_SWEEP) {
            self.map.retain(|_, (t, _)| t.elapsed() < USER_TTL);
            if self.map.len() >= MAX_USERS {
                self.map.retain(|_, (t, _)| t.elapsed() < KEEP_RECENT);
                if self.map.len() >= MAX_USERS {
                    self.map.clear();
                }
            }
            // Hand back what a burst grew the table to.
            self.map.shrink_to(self.map.len() * 2);
            self.sweep_at = (self.map.len() * 2).clamp(FIRST_SWEEP, MAX_USERS);
        }
        self.map.insert(key.to_ascii_lowercase(), (at, u.clone()));
        self.map.insert(u.id.to_ascii_lowercase(), (at, u.clone()));
        if let Some(upn) = &u.user_principal_name {
            self.map.insert(upn.to_ascii_lowercase(), (at, u.clone()));
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct Cache {
    jobs: AtomicUsize,
    policy: Mutex<Option<(Instant, Fido2Policy)>>,
    /// Held while a job's policy read is under way, so parallel rows read it once.
    policy_read: Mutex<()>,
    users: Mutex<Users>,
    /// The users the job's rows will read next, in order (lowercase), not read yet.
    upcoming: Mutex<VecDeque<String>>,
    /// Users a batch read is under way for (lowercase).
    inflight: Mutex<HashSet<String>>,
    /// Announced users a batch found that no row has read yet (lowercase): the users in
    /// hand ahead of the rows.
    ready: Mutex<HashSet<String>>,
    /// A read-ahead batch is under way.
    ahead: AtomicBool,
}

/// Longest a row waits for another worker's batch read of its user.
pub(crate) const INFLIGHT_WAIT: Duration = Duration::from_secs(30);

impl Cache {
    pub fn begin_job(&self) {
        self.jobs.fetch_add(1, Ordering::SeqCst);
    }

    pub fn end_job(&self) {
        let before = self
            .jobs
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                Some(n.saturating_sub(1))
            })
            .unwrap_or(0);
        if before <= 1 {
            self.drop_policy();
            *self.users.lock().unwrap_or_else(PoisonError::into_inner) = Users::default();
            self.upcoming
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clear();
            self.ready
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clear();
            self.ahead.store(false, Ordering::SeqCst);
        }
    }

    /// Adds `users` (ids or UPNs, in the order the rows will read them) to the users
    /// read ahead in batches; nothing outside a job.
    pub fn expect_users(&self, users: &[String]) {
        if !self.active() {
            return;
        }
        let mut q = self.upcoming.lock().unwrap_or_else(PoisonError::into_inner);
        q.extend(users.iter().map(|u| u.to_ascii_lowercase()));
        // The rows run in order: past the cap, the last announced are read on their own.
        q.truncate(MAX_USERS);
    }

    /// When `user` is one the job announced: it and up to `most - 1` more announced
    /// users of the same kind (`same`: object id or UPN), taken off the queue so that
    /// another worker does not read them again. Empty when `user` was not announced.
    pub fn take_batch(&self, user: &str, most: usize, same: impl Fn(&str) -> bool) -> Vec<String> {
        let key = user.to_ascii_lowercase();
        let mut q = self.upcoming.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(at) = q.iter().position(|u| *u == key) else {
            return Vec::new();
        };
        self.take_from(&mut q, at, most, same)
    }

    /// The read-ahead's batch: when fewer than `most` announced users are in hand
    /// ([`Cache::found`], not read by a row yet) and no read-ahead is under way, the next
    /// `most` announced users not cached (all of the kind of the first: `kind` says
    /// whether a name is an object id), taken off the queue. Empty otherwise; after a
    /// non-empty answer, [`Cache::ahead_landed`] must follow.
    pub fn take_ahead(&self, most: usize, kind: impl Fn(&str) -> bool) -> Vec<String> {
        if !self.active()
            || self.ahead.load(Ordering::SeqCst)
            || self
                .ready
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .len()
                >= most
        {
            return Vec::new();
        }
        let mut q = self.upcoming.lock().unwrap_or_else(PoisonError::into_inner);
        while q.front().is_some_and(|u| self.user(u).is_some()) {
            q.pop_front();
        }
        let Some(first) = q.front() else {
            return Vec::new();
        };
        let first = kind(first);
        if self.ahead.swap(true, Ordering::SeqCst) {
            return Vec::new();
        }
        self.take_from(&mut q, 0, most, |u| kind(u) == first)
    }

    /// The read-ahead batch from [`Cache::take_ahead`] ended (after its
    /// [`Cache::batch_landed`]).
    pub fn ahead_landed(&self) {
        self.ahead.store(false, Ordering::SeqCst);
    }

    /// Takes `q[at]` and up to `most - 1` more of `q` after it for which `same` holds
    /// (not cached, no repeats) off the queue and marks them in flight.
    fn take_from(
        &self,
        q: &mut VecDeque<String>,
        at: usize,
        most: usize,
        same: impl Fn(&str) -> bool,
    ) -> Vec<String> {
        let Some(key) = q.remove(at) else {
            return Vec::new();
        };
        let mut batch = vec![key];
        let mut inflight = self.inflight.lock().unwrap_or_else(PoisonError::into_inner);
        let mut i = at;
        while batch.len() < most && i < q.len() {
            if same(&q[i]) && !batch.contains(&q[i]) && self.user(&q[i]).is_none() {
                batch.extend(q.remove(i));
            } else if batch.contains(&q[i]) {
                q.remove(i);
            } else {
                i += 1;
            }
        }
        inflight.extend(batch.iter().cloned());
        batch
    }

    /// A batch read found `names` (announced names, as the rows will ask for them): in
    /// hand until a row reads them ([`Cache::consumed`]).
    pub fn found(&self, names: impl IntoIterator<Item = String>) {
        if !self.active() {
            return;
        }
        let mut r = self.ready.lock().unwrap_or_else(PoisonError::into_inner);
        r.extend(names.into_iter().map(|n| n.to_ascii_lowercase()));
        if r.len() > MAX_USERS {
            r.clear();
        }
    }

    /// A row read `name`: no longer in hand ahead of the rows.
    pub fn consumed(&self, name: &str) {
        self.ready
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&name.to_ascii_lowercase());
    }

    /// The batch read of `batch` (from [`Cache::take_batch`] or [`Cache::take_ahead`])
    /// ended, found or not.
    pub fn batch_landed(&self, batch: &[String]) {
        let mut inflight = self.inflight.lock().unwrap_or_else(PoisonError::into_inner);
        for u in batch {
            inflight.remove(&u.to_ascii_lowercase());
        }
    }

    /// Whether a batch read including `user` is under way.
    pub fn in_flight(&self, user: &str) -> bool {
        self.inflight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(&user.to_ascii_lowercase())
    }

    fn active(&self) -> bool {
        self.jobs.load(Ordering::SeqCst) > 0
    }

    pub fn policy(&self) -> Option<Fido2Policy> {
        if !self.active() {
            return None;
        }
        let g = self.policy.lock().unwrap_or_else(PoisonError::into_inner);
        g.as_ref()
            .filter(|(at, _)| at.elapsed() < POLICY_TTL)
            .map(|(_, p)| p.clone())
    }

    /// During a job: a guard to hold while reading the policy (check
    /// [`Cache::policy`] again once it is held); `None` outside a job.
    pub fn policy_read(&self) -> Option<std::sync::MutexGuard<'_, ()>> {
        self.active().then(|| {
            self.policy_read
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
        })
    }

    pub fn put_policy(&self, p: &Fido2Policy) {
        if !self.active() {
            return;
        }
        *self.policy.lock().unwrap_or_else(PoisonError::into_inner) =
            Some((Instant::now(), p.clone()));
    }

    pub fn drop_policy(&self) {
        *self.policy.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }

    pub fn user(&self, key: &str) -> Option<User> {
        if !self.active() {
            return None;
        }
        self.users
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
    }

    pub fn put_user(&self, key: &str, u: &User) {
        if !self.active() {
            return;
        }
        self.users
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .put(key, u, Instant::now());
    }

    /// Drops what a refusal `e` may have shown to be stale.
    pub fn refused(&self, e: &GraphError, expired_challenge: bool) {
        if matches!(e.status(), Some(403)) || (e.status() == Some(400) && !expired_challenge) {
            tracing::debug!(
                status = e.status(),
                "policy-shaped refusal: the cached FIDO2 policy will be read again"
            );
            self.drop_policy();
        }
    }
}

/// Whether a 400's message says the registration's challenge expired (not a policy
/// refusal).
pub(crate) fn is_expired_challenge(e: &GraphError) -> bool {
    match e {
        GraphError::Api { message, .. } => {
            let m = message.to_ascii_lowercase();
            m.contains("challenge") && m.contains("expired")
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(upn: &str, i: usize) -> User {
        serde_json::from_value(serde_json::json!({
            "id": format!("00000000-0000-4000-8000-{i:012}"),
            "userPrincipalName": upn,
        }))
        .expect("a user")
    }

    /// A batch read landing: the users cached and in hand.
    fn land(c: &Cache, batch: &[String], first: usize) {
        for (i, u) in batch.iter().enumerate() {
            c.put_user(u, &user(u, first + i));
        }
        c.found(batch.to_vec());
        c.batch_landed(batch);
    }

    #[test]
    fn the_next_batch_is_read_ahead_while_the_rows_of_this_one_run() {
        let c = Cache::default();
        c.begin_job();
        let names: Vec<String> = (0..40).map(|i| format!("u{i}@contoso.com")).collect();
        c.expect_users(&names);
        // `take_batch` asks "the same kind?", `take_ahead` "an object id?".
        let (same, upn) = (|_: &str| true, |_: &str| false);
        // Row 1 misses: its batch is rows 1–15.
        let first = c.take_batch(&names[0], 15, same);
        assert_eq!(first, names[..15]);
        assert!(c.in_flight(&names[14]) && !c.in_flight(&names[15]));
        land(&c, &first, 0);
        // 15 in hand: nothing to read ahead yet.
        assert!(c.take_ahead(15, upn).is_empty());
        // Row 1 reads its user: rows 16–30 are read now, before rows 2–15 run.
        c.consumed(&names[0]);
        let next = c.take_ahead(15, upn);
        assert_eq!(next, names[15..30]);
        assert!(
            c.in_flight(&names[15]),
            "row 16 waits for the read under way"
        );
        // One read-ahead at a time.
        c.consumed(&names[1]);
        assert!(c.take_ahead(15, upn).is_empty());
        land(&c, &next, 15);
        c.ahead_landed();
        // 28 in hand: the rows 16–30 found in the cache, no read of their own.
        assert!(c.user(&names[15]).is_some());
        assert!(c.take_batch(&names[15], 15, same).is_empty());
        for n in &names[2..16] {
            c.consumed(n);
        }
        // 14 in hand: the last 10 are read ahead.
        assert_eq!(c.take_ahead(15, upn), names[30..]);
        c.end_job();
        assert!(c.take_ahead(15, upn).is_empty(), "nothing outside a job");
    }

    fn numbered_user(i: usize) -> User {
        serde_json::from_value(serde_json::json!({
            "id": format!("00000000-0000-4000-8000-{i:012}"),
            "userPrincipalName": format!("user{i}@contoso.com"),
        }))
        .expect("user")
    }

    /// A long job reads every user once: the users read longer ago than the TTL are
    /// dropped as it goes, so the map stays near twice the recent users instead of
    /// growing with the rows run (session 9 found it holding every user of the job).
    #[test]
    fn expired_users_do_not_accumulate() {
        let mut users = Users::default();
        let Some(old) = Instant::now().checked_sub(USER_TTL * 2) else {
            return; // the clock is too young to hold an expired read
        };
        for i in 0..20_000 {
            users.put(&format!("User{i}@contoso.com"), &numbered_user(i), old);
            assert!(
                users.map.len() <= 2 * FIRST_SWEEP + 2,
                "{i}: {}",
                users.map.len()
            );
        }
        // A fresh read is kept and found by either name.
        users.put("fresh@contoso.com", &numbered_user(1), Instant::now());
        assert!(users.get("FRESH@contoso.com").is_some());
        assert!(users.get("00000000-0000-4000-8000-000000000001").is_some());
        assert!(users.map.capacity() <= 4 * FIRST_SWEEP * 2);
    }

    /// Users read within the TTL are all kept (a sweep drops only expired ones).
    #[test]
    fn recent_users_survive_a_sweep() {
        let mut users = Users::default();
        let now = Instant::now();
        for i in 0..1_000 {
            users.put(&format!("user{i}@contoso.com"), &numbered_user(i), now);
        }
        assert!((0..1_000).all(|i| users.get(&format!("user{i}@contoso.com")).is_some()));
    }
}
