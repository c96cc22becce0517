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
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, PoisonError};
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
    /// Users a batch read is under way for (lowercase), and its landing.
    inflight: Mutex<HashSet<String>>,
    landed: Condvar,
}

/// Longest a row waits for another worker's batch read of its user.
const INFLIGHT_WAIT: Duration = Duration::from_secs(30);

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
        q.remove(at);
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

    /// The batch read of `batch` (from [`Cache::take_batch`]) ended, found or not.
    pub fn batch_landed(&self, batch: &[String]) {
        let mut inflight = self.inflight.lock().unwrap_or_else(PoisonError::into_inner);
        for u in batch {
            inflight.remove(u);
        }
        self.landed.notify_all();
    }

    /// Waits while another worker's batch read includes `user` (at most
    /// [`INFLIGHT_WAIT`]); then the cached user, if the batch found it.
    pub fn wait_for_batch(&self, user: &str) -> Option<User> {
        let key = user.to_ascii_lowercase();
        let g = self.inflight.lock().unwrap_or_else(PoisonError::into_inner);
        let (g, _) = self
            .landed
            .wait_timeout_while(g, INFLIGHT_WAIT, |f| f.contains(&key))
            .unwrap_or_else(PoisonError::into_inner);
        drop(g);
        self.user(user)
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

    fn user(i: usize) -> User {
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
            users.put(&format!("User{i}@contoso.com"), &user(i), old);
            assert!(
                users.map.len() <= 2 * FIRST_SWEEP + 2,
                "{i}: {}",
                users.map.len()
            );
        }
        // A fresh read is kept and found by either name.
        users.put("fresh@contoso.com", &user(1), Instant::now());
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
            users.put(&format!("user{i}@contoso.com"), &user(i), now);
        }
        assert!((0..1_000).all(|i| users.get(&format!("user{i}@contoso.com")).is_some()));
    }
}
