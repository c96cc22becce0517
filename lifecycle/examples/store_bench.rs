//! Store benchmark: state transitions per second and lookup latency with N keys, for
//! SQLite and (if `KEYSMITH_PG_URL` is set or `target/pg/env` exists) PostgreSQL.
//!
//! The issue's figure is one million keys:
//!
//! ```text
//! scripts/pg-start.sh
//! cargo run -p lifecycle --release --example store_bench -- 1000000
//! ```
//!
//! Arguments: `[N (default 100000)] [sqlite|pg|both (default both)]`.
//! Each transition is its own committed transaction (CAS + audit record), as the engine
//! does it; lookups are random `get_key` by id and `find_keys` by serial.

use lifecycle::store::{
    KeyQuery, NewAuditRecord, NewKey, PgStore, SqliteStore, Store, Transition, UnitOfWork,
};
use lifecycle::CredentialState;
use std::time::{Duration, Instant};

const BATCH: usize = 5_000;
const TRANSITIONS: usize = 5_000;
const LOOKUPS: usize = 10_000;

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

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted.get(idx).copied().unwrap_or_default()
}

fn bench(name: &str, store: &dyn Store, n: usize) -> lifecycle::store::Result<()> {
    println!("== {name}: {n} keys");
    let t0 = Instant::now();
    let mut i = 0;
    while i < n {
        let end = (i + BATCH).min(n);
        let work = UnitOfWork {
            create_keys: (i..end)
                .map(|j| NewKey {
                    key_id: key_id(j),
                    aaguid: [0x2f; 16],
                    serial: format!("SN{j:08}"),
                })
                .collect(),
            ..UnitOfWork::default()
        };
        store.commit(work, 1)?;
        i = end;
    }
    let load = t0.elapsed();
    println!(
        "   load:        {:>10.0} keys/s ({:.1?})",
        n as f64 / load.as_secs_f64(),
        load
    );

    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let count = TRANSITIONS.min(n);
    let t0 = Instant::now();
    for j in 0..count {
        let id = key_id(j);
        let key = store
            .get_key(&id)?
            .ok_or_else(|| lifecycle::store::StoreError::NotFound { what: id.clone() })?;
        let audit = NewAuditRecord {
            actor: "bench".into(),
            time_ms: 2,
            action: "issue".into(),
            key_id: Some(id.clone()),
            user_id: Some("bench-user".into()),
            template_id: None,
            outcome: "success".into(),
            idp_request_id: None,
            detail: None,
        };
        store.transition(&Transition::new(&key, CredentialState::Issued), &audit, 2)?;
    }
    let tr = t0.elapsed();
    println!(
        "   transitions: {:>10.0} /s (read + CAS + audit, {count} in {:.1?})",
        count as f64 / tr.as_secs_f64(),
        tr
    );

    let mut lat = Vec::with_capacity(LOOKUPS);
    for _ in 0..LOOKUPS {
        let id = key_id(rng.below(n));
        let t = Instant::now();
        let found = store.get_key(&id)?;
        lat.push(t.elapsed());
        assert!(found.is_some(), "{id} missing");
    }
    lat.sort();
    println!(
        "   get_key:     p50 {:?}  p99 {:?}  max {:?}",
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        lat.last().copied().unwrap_or_default()
    );
    let mut lat = Vec::with_capacity(LOOKUPS / 10);
    for _ in 0..LOOKUPS / 10 {
        let serial = format!("SN{:08}", rng.below(n));
        let t = Instant::now();
        let found = store.find_keys(&KeyQuery::BySerial(serial))?;
        lat.push(t.elapsed());
        assert_eq!(found.len(), 1);
    }
    lat.sort();
    println!(
        "   by serial:   p50 {:?}  p99 {:?}",
        percentile(&lat, 0.5),
        percentile(&lat, 0.99)
    );
    Ok(())
}

fn pg_url() -> Option<String> {
    std::env::var("KEYSMITH_PG_URL")
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| {
            let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/pg/env");
            std::fs::read_to_string(file).ok().and_then(|t| {
                t.lines()
                    .find_map(|l| l.strip_prefix("KEYSMITH_PG_URL="))
                    .map(|s| s.trim().to_owned())
            })
        })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let n: usize = match args.next() {
        Some(s) => s
            .parse()
            .map_err(|_| format!("N must be a number, got {s:?}"))?,
        None => 100_000,
    };
    let which = args.next().unwrap_or_else(|| "both".into());
    let run_id = std::process::id();
    if which == "sqlite" || which == "both" {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/store-bench");
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(format!("bench-{run_id}.db"));
        let store = SqliteStore::open(&path)?;
        bench("sqlite (WAL, synchronous=FULL)", &store, n)?;
        drop(store);
        for ext in ["", "-wal", "-shm"] {
            let mut p = path.clone().into_os_string();
            p.push(ext);
            let _ = std::fs::remove_file(p);
        }
    }
    if which == "pg" || which == "both" {
        match pg_url() {
            Some(url) => {
                let schema = format!("ks_bench_{run_id}");
                let store = PgStore::connect_in_schema(&url, &schema)?;
                bench("postgresql", &store, n)?;
                drop(store);
                let mut c = postgres::Client::connect(&url, postgres::NoTls)?;
                c.batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))?;
            }
            None => {
                println!("== postgresql: SKIPPED (run scripts/pg-start.sh or set KEYSMITH_PG_URL)")
            }
        }
    }
    Ok(())
}
