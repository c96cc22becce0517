//! Item 4: the server half under load. Workers each drive a station agent and a holder
//! agent (in this process, on software keys); every holder goes through a realistic
//! journey: the operator queues an issuance at a station, the station's device half takes
//! it (configure and make jobs, nothing registered), the holder activates at their own
//! agent (sign-in, new PIN, registration at Graph), runs two sign-in checks, and one holder
//! in four has the key revoked by the operator (deleted at Graph).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::AtomicUsize;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use entra_graph::emulator::Emulator;
use hmac::{Hmac, Mac};
use keysmith_testkit::STANDARD_NAME;
use keysmith_wire::{PublicKey, SigningKey};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::device::{label_last, run_session, softkey, Ack, AgentId, Kind, Mode, Net, Sample};
use crate::world::{self, Node};

/// A load run's settings.
#[derive(Clone, Debug)]
pub struct LoadSpec {
    /// What the table calls it.
    pub label: String,
    /// Nodes (1 or 2).
    pub nodes: usize,
    /// `None`: SQLite (one node only); `Some(url)`: PostgreSQL.
    pub pg_url: Option<String>,
    /// Holders in the concurrent phase.
    pub holders: usize,
    /// Worker threads (each a station agent and a holder agent).
    pub workers: usize,
    /// Holders in the sequential phase that measures server CPU per message.
    pub calibration: usize,
    /// Latency added to every Graph answer.
    pub graph_latency: Duration,
}

/// What a load run measured.
#[derive(Clone, Debug, Default)]
pub struct LoadReport {
    /// The settings' label.
    pub label: String,
    /// Repository description.
    pub repository: String,
    /// Nodes.
    pub nodes: usize,
    /// Holders and workers.
    pub holders: usize,
    /// Worker threads.
    pub workers: usize,
    /// Wall time of the concurrent phase.
    pub wall: Duration,
    /// Requests (session opens + session messages + operator calls) in that phase.
    pub messages: usize,
    /// Of which per node.
    pub per_node: Vec<usize>,
    /// Server CPU (user + system, every node) in that phase.
    pub server_cpu: Duration,
    /// Per node.
    pub cpu_per_node: Vec<Duration>,
    /// Latency p50, p99, max over every request of that phase.
    pub latency: [Duration; 3],
    /// Session messages only (p50, p99).
    pub session_latency: [Duration; 2],
    /// Server CPU per request in the sequential phase (p50, p99, max), and its count.
    pub own_cpu: [Duration; 3],
    /// Requests measured in the sequential phase.
    pub calibrated: usize,
    /// Sequential phase by message: (what, count, mean, max server CPU).
    pub breakdown: Vec<(&'static str, usize, Duration, Duration)>,
    /// Peak RSS (VmHWM, kB) per node at the end.
    pub peak_rss_kb: Vec<u64>,
    /// Errors (failed sessions or calls), with the first few.
    pub errors: Vec<String>,
    /// Keys issued, activated, verified, revoked.
    pub counts: [usize; 4],
    /// What the checks afterwards found wrong (empty: nothing issued twice, every work
    /// item done once, passkeys at Graph as expected).
    pub check_failures: Vec<String>,
    /// Graph requests answered 429 during the run.
    pub graph_429: usize,
}

fn proof(code: &str, pk: &[u8]) -> String {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(code.as_bytes()).expect("hmac");
    m.update(pk);
    URL_SAFE_NO_PAD.encode(m.finalize().into_bytes())
}

fn call(
    http: &reqwest::blocking::Client,
    url: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> (u16, Value) {
    let mut rb = if body.is_some() || !url.contains("/v1/work/") {
        http.post(url)
    } else {
        http.get(url)
    };
    if let Some(t) = token {
        rb = rb.bearer_auth(t);
    }
    if let Some(b) = body {
        rb = rb.json(b);
    }
    match rb.send() {
        Ok(r) => {
            let s = r.status().as_u16();
            (s, r.json().unwrap_or(Value::Null))
        }
        Err(e) => (0, json!({ "error": e.to_string() })),
    }
}

/// A station agent enrolled with a code and approved; returns its id.
pub fn enrol_station(
    http: &reqwest::blocking::Client,
    base: &str,
    admin: &str,
    name: &str,
    key: &SigningKey,
) -> String {
    let (s, j) = call(
        http,
        &format!("{base}/v1/agents/enrolments"),
        Some(admin),
        Some(&json!({"station": name, "class": "station", "ttl_s": 600})),
    );
    assert_eq!(s, 201, "enrolment code: {j}");
    let code = j["code"].as_str().expect("code").to_owned();
    let pk = key.public_key().to_sec1();
    let (s, j) = call(
        http,
        &format!("{base}/v1/agents/enroll"),
        None,
        Some(&json!({"class": "station", "station": name,
            "public_key": URL_SAFE_NO_PAD.encode(pk), "proof": proof(&code, &pk),
            "host": {"name": name, "os": "linux"}})),
    );
    assert_eq!(s, 202, "enrol: {j}");
    let id = j["agent_id"].as_str().expect("agent_id").to_owned();
    let (s, j) = call(
        http,
        &format!("{base}/v1/agents/{id}/approve"),
        Some(admin),
        None,
    );
    assert_eq!(s, 200, "approve: {j}");
    id
}

/// A holder agent (registers itself, approved at once).
pub fn enrol_holder(http: &reqwest::blocking::Client, base: &str, key: &SigningKey) {
    let pk = key.public_key().to_sec1();
    let (s, j) = call(
        http,
        &format!("{base}/v1/agents/enroll"),
        None,
        Some(
            &json!({"class": "holder", "public_key": URL_SAFE_NO_PAD.encode(pk),
            "host": {"name": "holder", "os": "linux"}}),
        ),
    );
    assert!(s == 202 || s == 200 || s == 201, "holder enrol: {s} {j}");
}

/// What one worker needs.
struct Worker<'a> {
    station: SigningKey,
    station_id: String,
    holder: SigningKey,
    server_key: &'a PublicKey,
    operator: &'a str,
    emu: &'a Emulator,
}

/// One worker's result.
#[derive(Default)]
struct Done {
    samples: Vec<Sample>,
    errors: Vec<String>,
    issued: Vec<(usize, String, String)>,
    activated: Vec<usize>,
    verified: usize,
    revoked: Vec<usize>,
}

/// One holder's journey.
fn journey(w: &Worker<'_>, net: &Net<'_>, i: usize, done: &mut Done) -> Result<(), String> {
    let upn = world::holder_upn(i);
    let serial = format!("LOAD{i:06}");
    // The operator queues the issuance at the worker's station.
    let body = json!({"operation": "issue", "user": upn, "template": STANDARD_NAME});
    let (s, _, b) = net.timed(Kind::Operator, &mut done.samples, |base| {
        net.http
            .post(format!("{base}/v1/agents/{}/work", w.station_id))
            .bearer_auth(w.operator)
            .json(&body)
    })?;
    label_last(&mut done.samples, "operator: queue issue");
    if s != 201 {
        return Err(format!("queue work: {s} {}", String::from_utf8_lossy(&b)));
    }
    let work: Value = serde_json::from_slice(&b).map_err(|e| e.to_string())?;
    let work_id = work["work_id"].as_str().unwrap_or_default().to_owned();
    let mut key = softkey();
    let station = AgentId {
        key: &w.station,
        server_key: w.server_key,
        holder: false,
    };
    let ack = run_session(
        net,
        &mut done.samples,
        &station,
        &mut key,
        &Mode::Station,
        w.emu,
        &upn,
        &serial,
    )?;
    expect(&ack, "issued")?;
    done.issued.push((i, ack.key_id.clone(), work_id));
    let holder = AgentId {
        key: &w.holder,
        server_key: w.server_key,
        holder: true,
    };
    let mode = Mode::Activate(ack.key_id.clone());
    let a = run_session(
        net,
        &mut done.samples,
        &holder,
        &mut key,
        &mode,
        w.emu,
        &upn,
        &serial,
    )?;
    expect(&a, "active")?;
    if a.registered != 1 {
        return Err(format!("activation registered {} passkeys", a.registered));
    }
    done.activated.push(i);
    for _ in 0..2 {
        let mode = Mode::Verify(ack.key_id.clone());
        run_session(
            net,
            &mut done.samples,
            &holder,
            &mut key,
            &mode,
            w.emu,
            &upn,
            &serial,
        )?;
        done.verified += 1;
    }
    if i.is_multiple_of(4) {
        let (s, _, b) = net.timed(Kind::Operator, &mut done.samples, |base| {
            net.http
                .post(format!("{base}/v1/keys/{}/revoke", ack.key_id))
                .bearer_auth(w.operator)
        })?;
        label_last(&mut done.samples, "operator: revoke");
        if s != 200 {
            return Err(format!("revoke: {s} {}", String::from_utf8_lossy(&b)));
        }
        done.revoked.push(i);
    }
    Ok(())
}

fn expect(ack: &Ack, state: &str) -> Result<(), String> {
    if ack.state == state {
        Ok(())
    } else {
        Err(format!("key {} is {}, not {state}", ack.key_id, ack.state))
    }
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Runs one load configuration.
pub fn run(spec: &LoadSpec) -> LoadReport {
    let dir = world::run_dir(&format!("load-{}n", spec.nodes));
    let total = spec.calibration + spec.holders;
    let emu = world::emulator(total, true, spec.graph_latency);
    let tls = world::tls_files(&dir);
    let (key_file, server_key, _) = world::server_key(&dir);
    let (repository, repo_text) = match &spec.pg_url {
        None => (
            json!({ "sqlite": dir.join("keysmith.db") }),
            "SQLite (synchronous=FULL)".to_owned(),
        ),
        Some(url) => {
            let schema = format!("load_{}_{}", std::process::id(), keysmith_testkit::now_ms());
            (
                json!({ "postgres": url, "schema": schema }),
                format!("PostgreSQL, {}", world::pg_durability(url)),
            )
        }
    };
    let nodes: Vec<Node> = (0..spec.nodes)
        .map(|n| {
            world::start_node(
                &dir,
                &format!("node-{n}"),
                &emu,
                &repository,
                &key_file,
                &tls,
            )
        })
        .collect();
    let bases: Vec<String> = nodes.iter().map(|n| n.base.clone()).collect();
    let pids: Vec<u32> = nodes.iter().map(Node::pid).collect();
    let http = world::client(&tls.0);
    let admin = world::token(&emu, world::ADMIN);
    let operator = world::token(&emu, world::OPERATOR);
    let workers: Vec<Worker<'_>> = (0..spec.workers.max(1))
        .map(|w| {
            let station = SigningKey::generate();
            let base = &bases[w % bases.len()];
            let station_id = enrol_station(&http, base, &admin, &format!("desk-{w}"), &station);
            let holder = SigningKey::generate();
            enrol_holder(&http, base, &holder);
            Worker {
                station,
                station_id,
                holder,
                server_key: &server_key,
                operator: &operator,
                emu: &emu,
            }
        })
        .collect();
    let next = AtomicUsize::new(0);

    // Sequential phase: one worker, the server CPU of every request measured.
    let mut calib = Done::default();
    {
        let net = Net {
            http: &http,
            nodes: &bases,
            next: &next,
            measure_pids: Some(&pids),
        };
        for i in 0..spec.calibration {
            if let Err(e) = journey(&workers[0], &net, i, &mut calib) {
                calib.errors.push(format!("calibration holder {i}: {e}"));
            }
        }
    }

    // Concurrent phase.
    let graph_before = emu.request_log().iter().filter(|r| r.status == 429).count();
    let cpu0: Vec<Duration> = pids.iter().map(|&p| world::cpu_time(p)).collect();
    let t0 = Instant::now();
    let results: Vec<Done> = std::thread::scope(|s| {
        let handles: Vec<_> = workers
            .iter()
            .enumerate()
            .map(|(w, worker)| {
                let (bases, next, ca) = (&bases, &next, &tls.0);
                s.spawn(move || {
                    let http = world::client(ca);
                    let net = Net {
                        http: &http,
                        nodes: bases,
                        next,
                        measure_pids: None,
                    };
                    let mut done = Done::default();
                    let mut i = spec.calibration + w;
                    while i < total {
                        if let Err(e) = journey(worker, &net, i, &mut done) {
                            done.errors.push(format!("holder {i}: {e}"));
                        }
                        i += spec.workers.max(1);
                    }
                    done
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("worker"))
            .collect()
    });
    let wall = t0.elapsed();
    let cpu_per_node: Vec<Duration> = pids
        .iter()
        .zip(&cpu0)
        .map(|(&p, c0)| world::cpu_time(p).saturating_sub(*c0))
        .collect();
    let peak_rss_kb = pids.iter().map(|&p| world::rss_kb(p).1).collect();
    let graph_429 = emu.request_log().iter().filter(|r| r.status == 429).count() - graph_before;

    let mut report = LoadReport {
        label: spec.label.clone(),
        repository: repo_text,
        nodes: spec.nodes,
        holders: spec.holders,
        workers: spec.workers,
        wall,
        server_cpu: cpu_per_node.iter().sum(),
        cpu_per_node,
        peak_rss_kb,
        graph_429,
        ..LoadReport::default()
    };
    let mut all: Vec<Sample> = Vec::new();
    let mut issued = Vec::new();
    let (mut activated, mut revoked) = (BTreeSet::new(), BTreeSet::new());
    report.errors.extend(calib.errors.iter().cloned());
    for d in results.into_iter().chain(std::iter::once(calib)) {
        let is_calib = d.samples.iter().any(|s| s.cpu_ns.is_some());
        if !is_calib {
            all.extend(d.samples.iter().copied());
            report.errors.extend(d.errors);
        }
        report.counts[2] += d.verified;
        issued.extend(d.issued);
        activated.extend(d.activated);
        revoked.extend(d.revoked);
        if is_calib {
            let mut own: Vec<Duration> = d
                .samples
                .iter()
                .filter_map(|s| s.cpu_ns.map(Duration::from_nanos))
                .collect();
            own.sort();
            report.calibrated = own.len();
            let mut by: BTreeMap<&'static str, Vec<Duration>> = BTreeMap::new();
            for smp in &d.samples {
                if let Some(c) = smp.cpu_ns {
                    by.entry(smp.what)
                        .or_default()
                        .push(Duration::from_nanos(c));
                }
            }
            let mut bd: Vec<_> = by
                .into_iter()
                .map(|(w, v)| {
                    let n = v.len();
                    let mean = v.iter().sum::<Duration>() / u32::try_from(n.max(1)).unwrap_or(1);
                    (w, n, mean, v.into_iter().max().unwrap_or_default())
                })
                .collect();
            bd.sort_by_key(|b| std::cmp::Reverse(b.2));
            report.breakdown = bd;
            report.own_cpu = [
                pct(&own, 0.5),
                pct(&own, 0.99),
                own.last().copied().unwrap_or_default(),
            ];
        }
    }
    report.counts[0] = issued.len();
    report.counts[1] = activated.len();
    report.counts[3] = revoked.len();
    report.messages = all.len();
    report.per_node = (0..spec.nodes)
        .map(|n| all.iter().filter(|s| s.node == n).count())
        .collect();
    let mut lat: Vec<Duration> = all.iter().map(|s| s.latency).collect();
    lat.sort();
    report.latency = [
        pct(&lat, 0.5),
        pct(&lat, 0.99),
        lat.last().copied().unwrap_or_default(),
    ];
    let mut sl: Vec<Duration> = all
        .iter()
        .filter(|s| s.kind != Kind::Operator)
        .map(|s| s.latency)
        .collect();
    sl.sort();
    report.session_latency = [pct(&sl, 0.5), pct(&sl, 0.99)];
    report.check_failures = check(
        &emu, &http, &bases[0], &operator, &issued, &activated, &revoked,
    );
    let _ = std::fs::write(dir.join("errors.txt"), report.errors.join("\n"));
    drop(nodes);
    if report.errors.is_empty() && report.check_failures.is_empty() {
        let _ = std::fs::remove_dir_all(&dir);
    } else {
        eprintln!("server-load: kept {} for inspection", dir.display());
    }
    report
}

/// Afterwards: every key id distinct, every work item done once, and at Graph one passkey
/// per activated holder whose key was not revoked, none otherwise.
fn check(
    emu: &Emulator,
    http: &reqwest::blocking::Client,
    base: &str,
    operator: &str,
    issued: &[(usize, String, String)],
    activated: &BTreeSet<usize>,
    revoked: &BTreeSet<usize>,
) -> Vec<String> {
    let mut fails = Vec::new();
    let mut keys: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, k, _) in issued {
        if let Some(j) = keys.insert(k, *i) {
            fails.push(format!("key {k} issued twice (holders {j} and {i})"));
        }
    }
    let mut holders = BTreeSet::new();
    for (i, _, work) in issued {
        if !holders.insert(*i) {
            fails.push(format!("holder {i} issued twice"));
        }
        let (s, j) = call(
            http,
            &format!("{base}/v1/work/{work}"),
            Some(operator),
            None,
        );
        if s != 200 || j["state"] != "done" {
            fails.push(format!("work {work}: {s} {j}"));
        }
    }
    for (i, _, _) in issued {
        let n = emu.methods(&world::holder_upn(*i)).len();
        let want = usize::from(activated.contains(i) && !revoked.contains(i));
        if n != want {
            fails.push(format!(
                "holder {i}: {n} passkeys at Graph, expected {want}"
            ));
        }
    }
    fails
}

/// The table rows of a load report.
pub fn rows(r: &LoadReport, cores: usize) -> Vec<(String, String)> {
    let ms = |d: Duration| format!("{:.2} ms", d.as_secs_f64() * 1000.0);
    let msgs = r.messages.max(1) as f64;
    let rate = msgs / r.wall.as_secs_f64().max(1e-9);
    let cpu_per_msg = r.server_cpu.as_secs_f64() / msgs;
    let mut v = vec![
        ("repository".into(), r.repository.clone()),
        (
            "holders / workers".into(),
            format!(
                "{} / {} (issue, activate, 2 sign-in checks, 1 in 4 revoked)",
                r.holders, r.workers
            ),
        ),
        (
            "requests (sessions + messages + operator)".into(),
            format!("{} in {:.1} s", r.messages, r.wall.as_secs_f64()),
        ),
        (
            "messages per second (wall) / per core".into(),
            format!(
                "{rate:.1} / {:.1} (÷ {cores} cores, shared with the load generator and emulator)",
                rate / cores as f64
            ),
        ),
        (
            "server CPU per message, mean (load phase)".into(),
            format!(
                "{} → {:.0} messages per server-core-second",
                ms(Duration::from_secs_f64(cpu_per_msg)),
                1.0 / cpu_per_msg.max(1e-9)
            ),
        ),
        (
            "server CPU per message p50 / p99 / max (sequential)".into(),
            format!(
                "{} / {} / {} over {} requests",
                ms(r.own_cpu[0]),
                ms(r.own_cpu[1]),
                ms(r.own_cpu[2]),
                r.calibrated
            ),
        ),
        (
            "sequential, by message: mean / max server CPU (count)".into(),
            r.breakdown
                .iter()
                .map(|(w, n, mean, max)| format!("{w} {} / {} ({n})", ms(*mean), ms(*max)))
                .collect::<Vec<_>>()
                .join("; "),
        ),
        (
            "latency p50 / p99 / max, all requests".into(),
            format!(
                "{} / {} / {}",
                ms(r.latency[0]),
                ms(r.latency[1]),
                ms(r.latency[2])
            ),
        ),
        (
            "latency p50 / p99, session messages".into(),
            format!(
                "{} / {}",
                ms(r.session_latency[0]),
                ms(r.session_latency[1])
            ),
        ),
        (
            "peak RSS per node (VmHWM)".into(),
            r.peak_rss_kb
                .iter()
                .map(|k| format!("{:.1} MB", *k as f64 / 1000.0))
                .collect::<Vec<_>>()
                .join(", "),
        ),
        (
            "issued / activated / sign-in checks / revoked (both phases)".into(),
            format!(
                "{} / {} / {} / {}",
                r.counts[0], r.counts[1], r.counts[2], r.counts[3]
            ),
        ),
        ("Graph 429s".into(), r.graph_429.to_string()),
        (
            "errors".into(),
            if r.errors.is_empty() {
                "0".into()
            } else {
                format!(
                    "{}: {}",
                    r.errors.len(),
                    r.errors
                        .iter()
                        .take(3)
                        .cloned()
                        .collect::<Vec<_>>()
                        .join("; ")
                )
            },
        ),
        (
            "nothing issued twice, work done once, passkeys at Graph".into(),
            if r.check_failures.is_empty() {
                "ok".into()
            } else {
                format!(
                    "FAILED: {}",
                    r.check_failures
                        .iter()
                        .take(3)
                        .cloned()
                        .collect::<Vec<_>>()
                        .join("; ")
                )
            },
        ),
    ];
    if r.nodes > 1 {
        v.push((
            "work spread: requests / server CPU per node".into(),
            r.per_node
                .iter()
                .zip(&r.cpu_per_node)
                .enumerate()
                .map(|(n, (m, c))| format!("node {n}: {m} / {:.2} s", c.as_secs_f64()))
                .collect::<Vec<_>>()
                .join(", "),
        ));
    }
    v
}
