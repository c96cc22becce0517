//! `server-load`: the split deployment's server half under load, and peak RSS of the
//! CLI, the agent and the server (issue 18 items 4 and 6). A benchmark: run by hand, never
//! in CI (CI only compiles it).
//!
//! ```text
//! cargo build --release -p keysmith-cli --bin keysmith
//! cargo run --release -p server-load -- all            # every figure, as tables
//! cargo run --release -p server-load -- load           # one node on SQLite
//! cargo run --release -p server-load -- two-nodes      # one and two nodes on PostgreSQL
//! cargo run --release -p server-load -- rss            # item 6
//! ```
//!
//! Options: `--holders N` (default 40), `--workers N` (8), `--calibration N` (5),
//! `--graph-latency-ms N` (20), `--rows N` (bulk issue rows, 10000), `--sessions N`
//! (10000), `--pg-url URL` (else `KEYSMITH_PG_URL`; without either, the PostgreSQL runs
//! are skipped). `KEYSMITH_BIN` names the `keysmith` binary (default: beside this one).

mod device;
mod load;
mod rss;
mod world;

use std::time::Duration;

struct Opts {
    holders: usize,
    workers: usize,
    calibration: usize,
    graph_latency_ms: u64,
    rows: usize,
    sessions: usize,
    pg_url: Option<String>,
}

fn usage() -> ! {
    eprintln!(
        "usage: server-load all|load|two-nodes|rss|rss-cli|rss-agent|rss-server \
         [--holders N] [--workers N] [--calibration N] [--graph-latency-ms N] [--rows N] \
         [--sessions N] [--pg-url URL]"
    );
    std::process::exit(2)
}

fn parse() -> (String, Opts) {
    let mut args = std::env::args().skip(1);
    let what = args.next().unwrap_or_else(|| usage());
    let mut o = Opts {
        holders: 40,
        workers: 8,
        calibration: 5,
        graph_latency_ms: 20,
        rows: 10_000,
        sessions: 10_000,
        pg_url: std::env::var("KEYSMITH_PG_URL")
            .ok()
            .filter(|s| !s.is_empty()),
    };
    while let Some(flag) = args.next() {
        let value = args.next().unwrap_or_else(|| usage());
        let n = || value.parse::<usize>().unwrap_or_else(|_| usage());
        match flag.as_str() {
            "--holders" => o.holders = n(),
            "--workers" => o.workers = n().max(1),
            "--calibration" => o.calibration = n(),
            "--graph-latency-ms" => o.graph_latency_ms = n() as u64,
            "--rows" => o.rows = n(),
            "--sessions" => o.sessions = n(),
            "--pg-url" => o.pg_url = Some(value.clone()),
            _ => usage(),
        }
    }
    (what, o)
}

fn table(title: &str, rows: &[(String, String)]) {
    println!("\n### {title}\n");
    println!("| figure | value |\n|---|---|");
    for (k, v) in rows {
        println!("| {k} | {v} |");
    }
}

fn load_runs(o: &Opts, single: bool, pg: bool) {
    let cores = world::cores();
    let spec = |label: &str, nodes: usize, pg_url: Option<String>| load::LoadSpec {
        label: label.into(),
        nodes,
        pg_url,
        holders: o.holders,
        workers: o.workers,
        calibration: o.calibration,
        graph_latency: Duration::from_millis(o.graph_latency_ms),
    };
    let mut specs = Vec::new();
    if single {
        specs.push(spec("one node, SQLite", 1, None));
    }
    match (&o.pg_url, pg) {
        (Some(url), true) => {
            specs.push(spec("one node, PostgreSQL", 1, Some(url.clone())));
            specs.push(spec("two nodes, one PostgreSQL", 2, Some(url.clone())));
        }
        (None, true) => {
            println!("\n(PostgreSQL runs skipped: set KEYSMITH_PG_URL or pass --pg-url)")
        }
        _ => {}
    }
    for s in specs {
        eprintln!("server-load: {} ...", s.label);
        let r = load::run(&s);
        table(
            &format!(
                "Server load: {} (Graph: small-tenant throttle 3,500/10 s + writes 3,000/150 s, {} ms added latency)",
                r.label, o.graph_latency_ms
            ),
            &load::rows(&r, cores),
        );
    }
}

fn rss_runs(o: &Opts, which: &str) {
    let mut rows = Vec::new();
    if which == "rss" || which == "rss-cli" {
        eprintln!("server-load: CLI bulk issue, {} rows ...", o.rows);
        let f = rss::cli_bulk(o.rows);
        rows.push((f.what.clone(), rss::row(&f)));
    }
    if which == "rss" || which == "rss-agent" {
        eprintln!("server-load: agent idle and during a job ...");
        let f = rss::agent();
        rows.push((f.what.clone(), rss::row(&f)));
    }
    if which == "rss" || which == "rss-server" {
        eprintln!("server-load: server with {} sessions ...", o.sessions);
        let f = rss::server_sessions(o.sessions, o.workers);
        rows.push((f.what.clone(), rss::row(&f)));
    }
    table("Peak RSS (item 6)", &rows);
}

fn main() {
    let (what, o) = parse();
    println!("## server-load\n\nmachine: {}", world::machine());
    println!("keysmith: {}", world::keysmith_bin().display());
    match what.as_str() {
        "all" => {
            load_runs(&o, true, true);
            rss_runs(&o, "rss");
        }
        "load" => load_runs(&o, true, false),
        "two-nodes" => load_runs(&o, false, true),
        "rss" | "rss-cli" | "rss-agent" | "rss-server" => rss_runs(&o, &what),
        _ => usage(),
    }
}
