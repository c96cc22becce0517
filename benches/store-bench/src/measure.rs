//! Filling a repository with N keys and timing what an operator and the engine do with it.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use lifecycle::store::{
    KeyQuery, NewAuditRecord, NewKey, StoreError, Transition, UnitOfWork, UserRecord,
};
use lifecycle::CredentialState;

use crate::backend::{Bench, BoxError};

/// Keys and users committed per transaction while filling.
const FILL_BATCH: usize = 10_000;
/// Keys on one page of a listing.
pub const PAGE: u32 = 100;

/// How many of each operation to time.
#[derive(Clone, Copy, Debug)]
pub struct Samples {
    /// `get_key` calls.
    pub lookups: usize,
    /// Calls of each search and each listing.
    pub searches: usize,
    /// Durable transitions.
    pub transitions: usize,
}

/// Latency percentiles of one operation.
#[derive(Clone, Copy, Debug, Default)]
pub struct Lat {
    /// Median.
    pub p50: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// 99th percentile of the bench thread's CPU time: the work done in this process
    /// (all of it for SQLite, the client's side for PostgreSQL), without time spent
    /// waiting for the CPU, the disk or the server.
    pub cpu_p99: Duration,
}

fn percentile(v: &mut [Duration], p: f64) -> Duration {
    v.sort_unstable();
    let i = ((v.len().saturating_sub(1)) as f64 * p).round() as usize;
    v.get(i).copied().unwrap_or_default()
}

impl Lat {
    fn of(mut wall: Vec<Duration>, mut cpu: Vec<Duration>) -> Lat {
        Lat {
            p50: percentile(&mut wall, 0.50),
            p99: percentile(&mut wall, 0.99),
            cpu_p99: percentile(&mut cpu, 0.99),
        }
    }
}

/// The CPU time this thread has used.
#[cfg(unix)]
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_THREAD_CPUTIME_ID exists on Linux
    // (on failure `ts` stays zero and the CPU figures read zero).
    unsafe {
        libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts);
    }
    Duration::new(
        u64::try_from(ts.tv_sec).unwrap_or(0),
        u32::try_from(ts.tv_nsec).unwrap_or(0),
    )
}

/// The CPU time this thread has used: not measured off Unix (the figures read zero; the
/// bench is run on Linux, and only type-checked elsewhere).
#[cfg(not(unix))]
fn thread_cpu() -> Duration {
    Duration::ZERO
}

/// Everything measured on one repository of one size.
#[derive(Clone, Debug, Default)]
pub struct Figures {
    /// Keys in the repository.
    pub n: usize,
    /// Filling: keys (and their users) per second, through `Store::commit`.
    pub fill_per_s: f64,
    /// Bytes on disk after filling.
    pub bytes: u64,
    /// `get_key` by id.
    pub get: Lat,
    /// `find_keys(BySerial)`.
    pub serial: Lat,
    /// `find_keys(ByUpn)`.
    pub upn: Lat,
    /// `find_keys(ByUser)` (the IdP object id).
    pub user: Lat,
    /// `find_keys_page(All)` from a random key, 100 a page.
    pub page_all: Lat,
    /// `find_keys_page(ByState(Inactive))` from a random key (5 % of the keys are inactive).
    pub page_state: Lat,
    /// Durable transitions (read + compare-and-set + audit record, one commit each) per second.
    pub transitions_per_s: f64,
    /// Latency of one durable transition.
    pub transition: Lat,
}

/// xorshift64*: deterministic, dependency-free.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n.max(1) as u64) as usize
    }
}

fn key_id(i: usize) -> String {
    format!("key-{i:08}")
}
fn serial(i: usize) -> String {
    format!("SN{i:08}")
}
fn oid(i: usize) -> String {
    format!("oid-{i:08}")
}
fn upn(i: usize) -> String {
    format!("user{i:08}@contoso.example")
}

/// The state key `i` is given: 90 % active, 5 % inactive, 5 % issued.
const ASSIGN: &str = "UPDATE keys SET user_id = 'oid-' || substr(key_id, 5), \
     state = CASE CAST(substr(key_id, 5) AS BIGINT) % 20 WHEN 0 THEN 'inactive' \
     WHEN 1 THEN 'issued' ELSE 'active' END, version = 2, updated_ms = 2";

fn is_active(i: usize) -> bool {
    i % 20 >= 2
}

/// Fills the repository with `n` keys, one user each. Keys and users go through
/// `Store::commit` in transactions of 10,000; then one direct `UPDATE` gives every key its
/// user and a state (the engine would take one durable transition per key: 1M of them is
/// what the transition figure measures, not what a fill should wait for).
pub fn fill(b: &Bench, n: usize) -> Result<f64, BoxError> {
    let t0 = Instant::now();
    let mut i = 0;
    while i < n {
        let end = (i + FILL_BATCH).min(n);
        let work = UnitOfWork {
            users: (i..end)
                .map(|j| UserRecord {
                    user_id: oid(j),
                    upn: upn(j),
                    display_name: format!("User {j}"),
                    idp_user_id: Some(oid(j)),
                })
                .collect(),
            create_keys: (i..end)
                .map(|j| NewKey {
                    key_id: key_id(j),
                    aaguid: [0x2f; 16],
                    serial: serial(j),
                })
                .collect(),
            ..UnitOfWork::default()
        };
        b.store().commit(work, 1)?;
        i = end;
    }
    let committed = t0.elapsed();
    b.exec(ASSIGN)?;
    b.analyze()?;
    eprintln!(
        "  filled {n} keys + users in {committed:.1?} through Store::commit, assigned in {:.1?}",
        t0.elapsed() - committed
    );
    Ok(n as f64 / committed.as_secs_f64())
}

fn time<F>(count: usize, n: usize, seed: u64, mut op: F) -> Result<Lat, BoxError>
where
    F: FnMut(usize) -> Result<(), BoxError>,
{
    let mut rng = Rng(seed);
    // Warm-up, not counted: the first calls also prepare statements.
    for _ in 0..count.min(200) {
        op(rng.below(n))?;
    }
    let mut v = Vec::with_capacity(count);
    let mut cpu = Vec::with_capacity(count);
    for _ in 0..count {
        let i = rng.below(n);
        let c = thread_cpu();
        let t = Instant::now();
        op(i)?;
        v.push(t.elapsed());
        cpu.push(thread_cpu().saturating_sub(c));
    }
    Ok(Lat::of(v, cpu))
}

fn expect(what: &str, ok: bool) -> Result<(), BoxError> {
    if ok {
        Ok(())
    } else {
        Err(format!("wrong answer: {what}").into())
    }
}

/// Times the lookups, searches, listings and durable transitions on a filled repository.
pub fn measure(b: &Bench, n: usize, s: Samples) -> Result<Figures, BoxError> {
    let st = b.store();
    let mut f = Figures {
        n,
        ..Figures::default()
    };
    f.get = time(s.lookups, n, 1, |i| {
        expect("get_key", st.get_key(&key_id(i))?.is_some())
    })?;
    f.serial = time(s.searches, n, 2, |i| {
        expect(
            "by serial",
            st.find_keys(&KeyQuery::BySerial(serial(i)))?.len() == 1,
        )
    })?;
    f.upn = time(s.searches, n, 3, |i| {
        expect("by UPN", st.find_keys(&KeyQuery::ByUpn(upn(i)))?.len() == 1)
    })?;
    f.user = time(s.searches, n, 4, |i| {
        expect(
            "by user",
            st.find_keys(&KeyQuery::ByUser(oid(i)))?.len() == 1,
        )
    })?;
    f.page_all = time(s.searches, n, 5, |i| {
        let page = st.find_keys_page(&KeyQuery::All, Some(&key_id(i)), PAGE)?;
        expect("page", page.len() == (n - 1 - i).min(PAGE as usize))
    })?;
    f.page_state = time(s.searches, n, 6, |i| {
        let page = st.find_keys_page(
            &KeyQuery::ByState(CredentialState::Inactive),
            Some(&key_id(i)),
            PAGE,
        )?;
        let left = (n - 1 - i) / 20;
        expect("state page", page.len() >= left.min(PAGE as usize))
    })?;
    transitions(b, n, s.transitions, &mut f)?;
    Ok(f)
}

/// Active → inactive on distinct random keys, each its own durable commit, as the engine
/// does it: read the key, compare-and-set its state, append the audit record.
fn transitions(b: &Bench, n: usize, count: usize, f: &mut Figures) -> Result<(), BoxError> {
    let st = b.store();
    let mut rng = Rng(7);
    let mut used = HashSet::new();
    let count = count.min(n * 9 / 10);
    let mut v = Vec::with_capacity(count);
    let mut cpu = Vec::with_capacity(count);
    let t0 = Instant::now();
    while v.len() < count {
        let i = rng.below(n);
        if !is_active(i) || !used.insert(i) {
            continue;
        }
        let id = key_id(i);
        let c = thread_cpu();
        let t = Instant::now();
        let key = st
            .get_key(&id)?
            .ok_or_else(|| StoreError::NotFound { what: id.clone() })?;
        let audit = NewAuditRecord {
            actor: "store-bench".into(),
            time_ms: 3,
            action: "inactivate".into(),
            key_id: Some(id.clone()),
            user_id: key.user_id.clone(),
            template_id: None,
            outcome: "success".into(),
            idp_request_id: None,
            detail: None,
        };
        st.transition(&Transition::new(&key, CredentialState::Inactive), &audit, 3)?;
        v.push(t.elapsed());
        cpu.push(thread_cpu().saturating_sub(c));
    }
    f.transitions_per_s = count as f64 / t0.elapsed().as_secs_f64();
    f.transition = Lat::of(v, cpu);
    Ok(())
}

/// The queries the store runs for each measured operation, with literal values (for plans).
pub fn queries(n: usize) -> Vec<(&'static str, String)> {
    queries_at(n / 2)
}

/// PostgreSQL's own execution time of each query at `count` random keys: (name, p50, p99)
/// in ms; empty for SQLite.
pub fn server_times(
    b: &Bench,
    n: usize,
    count: usize,
) -> Result<Vec<(&'static str, f64, f64)>, BoxError> {
    let mut rng = Rng(11);
    let mut per: Vec<(&'static str, Vec<f64>)> = Vec::new();
    for _ in 0..count {
        let qs = queries_at(rng.below(n));
        let sqls: Vec<String> = qs.iter().map(|(_, q)| q.clone()).collect();
        let Some(times) = b.server_times(&sqls)? else {
            return Ok(Vec::new());
        };
        for ((name, _), t) in qs.iter().zip(times) {
            match per.iter_mut().find(|(k, _)| k == name) {
                Some((_, v)) => v.push(t),
                None => per.push((name, vec![t])),
            }
        }
    }
    Ok(per
        .into_iter()
        .map(|(name, mut v)| {
            v.sort_by(f64::total_cmp);
            let at = |p: f64| {
                let i = (v.len().saturating_sub(1) as f64 * p).round() as usize;
                v.get(i).copied().unwrap_or(0.0)
            };
            (name, at(0.5), at(0.99))
        })
        .collect())
}

fn queries_at(mid: usize) -> Vec<(&'static str, String)> {
    let cols = "SELECT * FROM keys WHERE";
    vec![
        ("get_key", format!("{cols} key_id = '{}'", key_id(mid))),
        (
            "by serial",
            format!("{cols} serial = '{}' ORDER BY key_id", serial(mid)),
        ),
        (
            "by UPN",
            format!(
                "{cols} user_id IN (SELECT user_id FROM users WHERE upn = '{}') ORDER BY key_id",
                upn(mid)
            ),
        ),
        (
            "by user",
            format!("{cols} user_id = '{}' ORDER BY key_id", oid(mid)),
        ),
        (
            "page (all)",
            format!(
                "{cols} 1 = 1 AND key_id > '{}' ORDER BY key_id LIMIT {PAGE}",
                key_id(mid)
            ),
        ),
        (
            "page (inactive)",
            format!(
                "{cols} state = 'inactive' AND key_id > '{}' ORDER BY key_id LIMIT {PAGE}",
                key_id(mid)
            ),
        ),
    ]
}
