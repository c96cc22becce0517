//! `store-bench`: the repository at 10k, 100k and 1M keys on SQLite and PostgreSQL, through
//! lifecycle's own `Store` implementations (issue 18 item 5).
//!
//! ```text
//! scripts/pg-start.sh --bench                      # PostgreSQL with fsync=on, synchronous_commit=on
//! cargo run --release -p store-bench -- all        # the table (docs/benchmarks.md)
//! cargo run --release -p store-bench -- all --sizes 10000 --stores sqlite --explain
//! ```
//!
//! For each store and size: a fresh repository is filled (keys and users through
//! `Store::commit` in transactions of 10,000, then one `UPDATE` assigning each key its user
//! and a state), then timed: `get_key` by id; `find_keys` by serial, by UPN and by user
//! (object id); one page of 100 of `find_keys_page` over all keys and over one state, from
//! a random key; durable transitions (read + compare-and-set + audit, one commit each).
//! PostgreSQL must run durably (`fsync` and `synchronous_commit` on): the bench refuses
//! another server unless `--allow-non-durable` is given, and then labels the figures.
//! Target: lookups and searches under 1 ms at p99 at the largest size; the exit status is
//! 1 when one is missed.

mod backend;
mod measure;

use std::time::Duration;

use backend::{Bench, BoxError, Kind};
use measure::{Figures, Lat, Samples};

/// The target for lookups and searches at p99.
const TARGET: Duration = Duration::from_millis(1);

struct Args {
    sizes: Vec<usize>,
    stores: Vec<Kind>,
    samples: Samples,
    explain: bool,
    allow_non_durable: bool,
    /// Migrate the repositories only this far (to measure before a migration).
    schema: Option<u32>,
}

const USAGE: &str = "usage: store-bench [all] [--sizes N,N,..] [--stores sqlite,pg] \
[--lookups N] [--searches N] [--transitions N] [--explain] [--allow-non-durable] \
[--schema VERSION]";

fn parse_list<T>(v: &str, f: impl Fn(&str) -> Result<T, String>) -> Result<Vec<T>, String> {
    v.split(',').map(|s| f(s.trim())).collect()
}

fn number(s: &str) -> Result<usize, String> {
    let s = s.replace('_', "");
    let (digits, mul) = match s.strip_suffix(['k', 'K']) {
        Some(d) => (d.to_owned(), 1_000),
        None => match s.strip_suffix(['m', 'M']) {
            Some(d) => (d.to_owned(), 1_000_000),
            None => (s.clone(), 1),
        },
    };
    digits
        .parse::<usize>()
        .ok()
        .filter(|n| *n > 0)
        .map(|n| n * mul)
        .ok_or_else(|| format!("not a positive number: {s:?}"))
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        sizes: vec![10_000, 100_000, 1_000_000],
        stores: vec![Kind::Sqlite, Kind::Pg],
        samples: Samples {
            lookups: 20_000,
            searches: 5_000,
            transitions: 2_000,
        },
        explain: false,
        allow_non_durable: false,
        schema: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "all" => {}
            "--sizes" => a.sizes = parse_list(&value()?, number)?,
            "--stores" => {
                a.stores = parse_list(&value()?, |s| match s {
                    "sqlite" => Ok(Kind::Sqlite),
                    "pg" | "postgres" | "postgresql" => Ok(Kind::Pg),
                    other => Err(format!("unknown store {other:?} (sqlite, pg)")),
                })?
            }
            "--lookups" => a.samples.lookups = number(&value()?)?,
            "--searches" => a.samples.searches = number(&value()?)?,
            "--transitions" => a.samples.transitions = number(&value()?)?,
            "--explain" => a.explain = true,
            "--allow-non-durable" => a.allow_non_durable = true,
            "--schema" => {
                let v = value()?;
                a.schema = Some(
                    v.parse()
                        .map_err(|_| format!("--schema: not a version: {v:?}"))?,
                )
            }
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    Ok(a)
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|l| l.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches(" kB").parse::<u64>().ok())
        })
        .map_or_else(|| "?".into(), |kb| format!("{} GiB", kb / 1024 / 1024));
    format!(
        "{cpu}, {cpus} logical CPUs, {mem}; load average at start {}",
        loadavg()
    )
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn fmt_d(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 1000.0 {
        format!("{us:.1} µs")
    } else {
        format!("{:.2} ms", us / 1000.0)
    }
}

fn pair(l: &Lat) -> String {
    format!("{} / {}", fmt_d(l.p50), fmt_d(l.p99))
}

fn size(n: usize) -> String {
    match n {
        n if n >= 1_000_000 && n % 1_000_000 == 0 => format!("{}M", n / 1_000_000),
        n if n >= 1_000 && n % 1_000 == 0 => format!("{}k", n / 1_000),
        n => n.to_string(),
    }
}

fn run_one(kind: Kind, url: Option<&str>, n: usize, a: &Args) -> Result<Figures, BoxError> {
    eprintln!("== {} with {} keys", kind.name(), size(n));
    let tag = format!("{}_{}", std::process::id(), n);
    let b = Bench::open(kind, url, &tag, a.schema)?;
    let result = (|| {
        let fill = measure::fill(&b, n)?;
        let mut f = measure::measure(&b, n, a.samples)?;
        f.fill_per_s = fill;
        f.bytes = b.size_bytes()?;
        if kind == Kind::Pg {
            let t = measure::server_times(&b, n, a.samples.searches.min(2_000))?;
            let shown: Vec<String> = t
                .iter()
                .map(|(name, p50, p99)| format!("{name} {p50:.3} / {p99:.3} ms"))
                .collect();
            println!(
                "PostgreSQL {} keys, the server's execution time p50 / p99 (EXPLAIN ANALYZE, {} each): {}",
                size(n),
                a.samples.searches.min(2_000),
                shown.join(", ")
            );
        }
        if a.explain {
            println!("\n-- {} at {} keys: query plans", kind.name(), size(n));
            for (name, sql) in measure::queries(n) {
                println!("  {name}: {sql}\n{}", b.plan(&sql)?);
            }
        }
        Ok::<_, BoxError>(f)
    })();
    b.remove()?;
    result
}

fn table(rows: &[(Kind, Figures)]) {
    println!();
    println!(
        "| store | keys | fill keys/s | on disk | get_key p50 / p99 | by serial p50 / p99 \
         | by UPN p50 / p99 | by user p50 / p99 | page of {p} (all) p50 / p99 \
         | page of {p} (one state) p50 / p99 | durable transitions/s | transition p50 / p99 |",
        p = measure::PAGE
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    for (k, f) in rows {
        println!(
            "| {} | {} | {:.0} | {} MB | {} | {} | {} | {} | {} | {} | {:.0} | {} |",
            k.name(),
            size(f.n),
            f.fill_per_s,
            f.bytes / 1_000_000,
            pair(&f.get),
            pair(&f.serial),
            pair(&f.upn),
            pair(&f.user),
            pair(&f.page_all),
            pair(&f.page_state),
            f.transitions_per_s,
            pair(&f.transition),
        );
    }
}

/// The bench thread's CPU time per operation at p99: what the wall-clock p99 would be
/// without waiting (for the CPU on a shared machine, the disk, or the server).
fn cpu_table(rows: &[(Kind, Figures)]) {
    println!();
    println!(
        "| store | keys | thread CPU p99: get_key | by serial | by UPN | by user | page (all) \
         | page (one state) | transition |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (k, f) in rows {
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            k.name(),
            size(f.n),
            fmt_d(f.get.cpu_p99),
            fmt_d(f.serial.cpu_p99),
            fmt_d(f.upn.cpu_p99),
            fmt_d(f.user.cpu_p99),
            fmt_d(f.page_all.cpu_p99),
            fmt_d(f.page_state.cpu_p99),
            fmt_d(f.transition.cpu_p99),
        );
    }
}

/// Growth from the smallest to the largest size, per store, and the target check.
fn growth(rows: &[(Kind, Figures)]) -> bool {
    let mut met = true;
    println!();
    println!(
        "| store | from → to | get_key p99 | by serial p99 | by UPN p99 | by user p99 \
         | page (all) p99 | page (one state) p99 | transitions/s | target: lookups and searches p99 < 1 ms at the largest size |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for kind in [Kind::Sqlite, Kind::Pg] {
        let mine: Vec<&Figures> = rows
            .iter()
            .filter(|(k, _)| *k == kind)
            .map(|(_, f)| f)
            .collect();
        let (Some(lo), Some(hi)) = (mine.first(), mine.last()) else {
            continue;
        };
        let r = |a: Duration, b: Duration| {
            format!("{:.2}×", b.as_secs_f64() / a.as_secs_f64().max(1e-9))
        };
        let worst = [hi.get.p99, hi.serial.p99, hi.upn.p99, hi.user.p99]
            .into_iter()
            .max()
            .unwrap_or_default();
        let ok = worst < TARGET;
        met &= ok;
        println!(
            "| {} | {} → {} | {} | {} | {} | {} | {} | {} | {:.2}× | {} (worst {}) |",
            kind.name(),
            size(lo.n),
            size(hi.n),
            r(lo.get.p99, hi.get.p99),
            r(lo.serial.p99, hi.serial.p99),
            r(lo.upn.p99, hi.upn.p99),
            r(lo.user.p99, hi.user.p99),
            r(lo.page_all.p99, hi.page_all.p99),
            r(lo.page_state.p99, hi.page_state.p99),
            hi.transitions_per_s / lo.transitions_per_s.max(1e-9),
            if ok { "met" } else { "**MISSED**" },
            fmt_d(worst),
        );
    }
    met
}

fn main() {
    let a = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    match run(&a) {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(e) => {
            eprintln!("store-bench: {e}");
            std::process::exit(2);
        }
    }
}

fn run(a: &Args) -> Result<bool, BoxError> {
    println!("store-bench: {}", machine());
    println!(
        "SQLite {} (WAL, synchronous=FULL: the store's settings)",
        rusqlite::version()
    );
    let mut url = None;
    if a.stores.contains(&Kind::Pg) {
        let u = backend::pg_url().ok_or(
            "no PostgreSQL: run scripts/pg-start.sh --bench (or set KEYSMITH_BENCH_PG_URL)",
        )?;
        let settings = backend::pg_settings(&u)?;
        let get = |k: &str| {
            settings
                .iter()
                .find(|(n, _)| n == k)
                .map_or("", |(_, v)| v.as_str())
        };
        let durable = get("fsync") == "on" && get("synchronous_commit") == "on";
        let shown: Vec<String> = settings.iter().map(|(k, v)| format!("{k}={v}")).collect();
        println!("PostgreSQL (loopback TCP): {}", shown.join(", "));
        if !durable {
            if !a.allow_non_durable {
                return Err("the PostgreSQL server is not durable (fsync and synchronous_commit \
                            must be on): start the bench cluster with `scripts/pg-start.sh --bench`, \
                            or pass --allow-non-durable to measure it anyway (labelled)"
                    .into());
            }
            println!("**PostgreSQL NOT DURABLE (fsync or synchronous_commit off): its figures are not comparable**");
        }
        url = Some(u);
    }
    println!(
        "schema version {} (current {})",
        a.schema.unwrap_or(lifecycle::store::SCHEMA_VERSION),
        lifecycle::store::SCHEMA_VERSION
    );
    println!(
        "samples per size: {} get_key, {} of each search and listing, {} transitions",
        a.samples.lookups, a.samples.searches, a.samples.transitions
    );
    let mut rows = Vec::new();
    for &kind in &a.stores {
        for &n in &a.sizes {
            let f = run_one(kind, url.as_deref(), n, a)?;
            eprintln!(
                "  get_key {}, by serial {}, by UPN {}, by user {}, pages {} and {}, {:.0} transitions/s",
                pair(&f.get),
                pair(&f.serial),
                pair(&f.upn),
                pair(&f.user),
                pair(&f.page_all),
                pair(&f.page_state),
                f.transitions_per_s
            );
            rows.push((kind, f));
        }
    }
    table(&rows);
    cpu_table(&rows);
    let met = growth(&rows);
    println!("load average at the end: {}", loadavg());
    Ok(met)
}
