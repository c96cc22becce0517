//! Item 6: peak RSS. The CLI during a bulk issue (RSS sampled as rows finish), a station
//! agent idle and during a job, and a server node with many sessions open (RSS sampled as
//! they open). Peaks are `VmHWM`, watched every 5 ms until the process ends.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use keysmith_testkit::{STANDARD_NAME, STANDARD_TEMPLATE};
use keysmith_wire::SigningKey;
use serde_json::json;

use crate::device::{open_only, softkey, AgentId, Net};
use crate::load::{enrol_holder, enrol_station};
use crate::world;

/// One figure: what, and the RSS at each point (label, kB).
#[derive(Clone, Debug, Default)]
pub struct RssFigure {
    /// The process and what it did.
    pub what: String,
    /// (point, VmRSS kB) in order.
    pub points: Vec<(String, u64)>,
    /// Peak (kB).
    pub peak_kb: u64,
    /// Anything that went wrong.
    pub note: String,
}

/// Watches `pid`'s `VmHWM` every 5 ms until it ends; returns the last (highest) value.
/// (`wait4`'s `ru_maxrss` is not used: Linux folds the spawning parent's high-water mark
/// into the child's at `exec` after a `vfork`, so it reports this process's peak.)
fn hwm_watch(pid: u32) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut peak = 0;
        loop {
            let (_, hwm) = world::rss_kb(pid);
            if hwm == 0 {
                return peak;
            }
            peak = peak.max(hwm);
            std::thread::sleep(Duration::from_millis(5));
        }
    })
}

/// Waits for `child` and returns its exit success and the peak `watch` saw (kB).
fn wait_peak(child: &mut Child, watch: std::thread::JoinHandle<u64>) -> (bool, u64) {
    let ok = child.wait().map(|s| s.success()).unwrap_or(false);
    (ok, watch.join().unwrap_or(0))
}

/// Samples `pid`'s VmRSS whenever `progress` crosses one of `marks`, until `done`.
fn sampler(
    pid: u32,
    unit: &'static str,
    progress: Arc<AtomicUsize>,
    marks: Vec<usize>,
    done: Arc<AtomicUsize>,
) -> std::thread::JoinHandle<Vec<(String, u64)>> {
    std::thread::spawn(move || {
        let mut out = Vec::new();
        let mut next = 0;
        while done.load(Ordering::Relaxed) == 0 {
            let p = progress.load(Ordering::Relaxed);
            while next < marks.len() && p >= marks[next] {
                out.push((format!("{} {unit}", marks[next]), world::rss_kb(pid).0));
                next += 1;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        out
    })
}

/// How VmRSS moved from the 20 % mark to the last one: total and per 1,000 rows (the
/// first fifth is start-up and caches filling to their bounds).
fn growth(points: &[(String, u64)], rows: usize) -> Option<String> {
    let from_rows = rows / 5;
    let start = points
        .iter()
        .position(|(p, _)| *p == format!("{from_rows} rows"))?;
    let (first, last) = (points.get(start)?.1, points.last()?.1);
    let span = rows.checked_sub(from_rows).filter(|s| *s > 0)?;
    let delta = last as f64 - first as f64;
    Some(format!(
        "VmRSS from {from_rows} to {rows} rows: {:+.2} MB ({:+.3} MB per 1,000 rows)",
        delta / 1000.0,
        delta / span as f64
    ))
}

/// `keysmith bulk issue` of `rows` rows, a fresh software key per row, against the
/// emulator (no throttle: memory, not pacing, is measured).
pub fn cli_bulk(rows: usize) -> RssFigure {
    let dir = world::run_dir("rss-cli");
    let emu = world::emulator(rows, false, Duration::ZERO);
    std::fs::write(dir.join("template.toml"), STANDARD_TEMPLATE).expect("write");
    std::fs::write(dir.join("host.key"), "11".repeat(32)).expect("write");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let _ =
            std::fs::set_permissions(dir.join("host.key"), std::fs::Permissions::from_mode(0o600));
    }
    let config = dir.join("keysmith.toml");
    std::fs::write(
        &config,
        format!(
            "station = \"rss\"\nallow_software_keys = true\npin_key_file = \"host.key\"\n\
             template_files = [\"template.toml\"]\n\n[repository]\nsqlite = \"keysmith.db\"\n\n\
             [[idp]]\nname = \"contoso-entra\"\ntenant = \"{}\"\nclient_id = \"{}\"\n\
             client_secret_env = \"KEYSMITH_LOAD_SECRET\"\nlogin_base = \"{}\"\n\
             graph_base = \"{}\"\ngraph_api_version = \"beta\"\n",
            emu.tenant_id(),
            emu.client_id(),
            emu.base_url(),
            emu.base_url()
        ),
    )
    .expect("write");
    let mut csv = String::from("user,serial\n");
    for i in 0..rows {
        csv.push_str(&format!("{},LOAD{i:06}\n", world::holder_upn(i)));
    }
    std::fs::write(dir.join("rows.csv"), csv).expect("write");
    let device = format!("softkey:{}", dir.join("row-key").display());
    let mut child = Command::new(world::keysmith_bin())
        .current_dir(&dir)
        .arg("--config")
        .arg(&config)
        .args(["--device", &device, "--json", "bulk", "issue", "rows.csv"])
        .args(["--template", "template.toml"])
        .env(
            "KEYSMITH_LOAD_SECRET",
            emu.client_secret().unwrap_or_default(),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn keysmith bulk issue");
    // RSS is read as the marked rows' lines arrive (the process is still running: it
    // prints the summary after the last row): every tenth of the rows, so growth with
    // the rows processed shows as a slope over the last eight tenths.
    let mut marks: Vec<usize> = (1..=10).map(|t| rows * t / 10).filter(|m| *m > 0).collect();
    marks.dedup();
    let pid = child.id();
    let watch = hwm_watch(pid);
    let mut points = Vec::new();
    let out = child.stdout.take().expect("stdout");
    let (mut done_rows, mut failed, mut last) = (0usize, 0usize, String::new());
    for line in BufReader::new(out).lines().map_while(Result::ok) {
        if line.contains("\"status\"") {
            if !line.contains("\"done\"") {
                failed += 1;
                if last.is_empty() {
                    last = line.chars().take(200).collect();
                }
            }
            done_rows += 1;
            if marks.contains(&done_rows) {
                points.push((format!("{done_rows} rows"), world::rss_kb(pid).0));
            }
        }
    }
    let (ok, peak) = wait_peak(&mut child, watch);
    let mut passkeys_note = format!("{done_rows} rows reported, {failed} not done");
    if let Some(g) = growth(&points, rows) {
        passkeys_note.push_str(&format!("; {g}"));
    }
    let note = if ok && failed == 0 && done_rows == rows {
        passkeys_note
    } else {
        format!("{passkeys_note}; exit ok: {ok}; first failure: {last}")
    };
    if note.contains("exit ok") {
        eprintln!("server-load: kept {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    RssFigure {
        what: format!("CLI `bulk issue`, {rows} rows (software key per row, SQLite)"),
        points,
        peak_kb: peak,
        note,
    }
}

/// A station agent (`keysmith agent run`) polling with no work, then taking one issuance.
pub fn agent() -> RssFigure {
    let dir = world::run_dir("rss-agent");
    let emu = world::emulator(1, false, Duration::ZERO);
    let tls = world::tls_files(&dir);
    let (key_file, _, fp) = world::server_key(&dir);
    let node = world::start_node(
        &dir,
        "node",
        &emu,
        &json!({ "sqlite": dir.join("keysmith.db") }),
        &key_file,
        &tls,
    );
    let http = world::client(&tls.0);
    let admin = world::token(&emu, world::ADMIN);
    let operator = world::token(&emu, world::OPERATOR);
    let home = dir.join("station");
    std::fs::create_dir_all(&home).expect("mkdir");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let _ = std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o700));
    }
    let cfg = home.join("agent.toml");
    std::fs::write(
        &cfg,
        format!(
            "server_url = {url:?}\nserver_key = {fp:?}\nserver_ca_file = {ca:?}\n\
             class = \"station\"\nstation = \"desk-rss\"\nkey_file = {key:?}\n",
            url = node.base,
            ca = tls.0,
            key = home.join("agent.pem"),
        ),
    )
    .expect("write");
    let agent = |args: &[&str]| {
        let mut c = Command::new(world::keysmith_bin());
        c.arg("agent").arg("--config").arg(&cfg).args(args);
        c
    };
    let mut figure = RssFigure {
        what: "station agent `keysmith agent run` (software key)".into(),
        ..RssFigure::default()
    };
    let (s, j) = {
        let r = http
            .post(format!("{}/v1/agents/enrolments", node.base))
            .bearer_auth(&admin)
            .json(&json!({"station": "desk-rss", "class": "station"}))
            .send()
            .expect("enrolment code");
        (
            r.status().as_u16(),
            r.json::<serde_json::Value>().unwrap_or_default(),
        )
    };
    assert_eq!(s, 201, "{j}");
    let code = j["code"].as_str().expect("code").to_owned();
    let out = agent(&["enroll", "--code", &code])
        .output()
        .expect("enroll");
    assert!(out.status.success(), "agent enroll: {out:?}");
    let out = agent(&["fingerprint"]).output().expect("fingerprint");
    let id = String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("agent id").map(|r| r.trim().to_owned()))
        .expect("agent id");
    let r = http
        .post(format!("{}/v1/agents/{id}/approve", node.base))
        .bearer_auth(&admin)
        .send()
        .expect("approve");
    assert_eq!(r.status().as_u16(), 200);

    let device = format!("softkey:{}", dir.join("key.json").display());
    let mut child = agent(&["run", "--device", &device])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the agent");
    let pid = child.id();
    let watch = hwm_watch(pid);
    for secs in [1u64, 5, 10] {
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(if secs == 1 { 1 } else { secs / 2 }) {
            std::thread::sleep(Duration::from_millis(100));
        }
        figure
            .points
            .push((format!("idle {secs} s"), world::rss_kb(pid).0));
    }
    let idle_peak = world::rss_kb(pid).1;
    // Queue an issuance for the agent and sample while it runs.
    let r = http
        .post(format!("{}/v1/agents/{id}/work", node.base))
        .bearer_auth(&operator)
        .json(
            &json!({"operation": "issue", "user": world::holder_upn(0), "template": STANDARD_NAME}),
        )
        .send()
        .expect("queue work");
    assert_eq!(r.status().as_u16(), 201);
    let mut during = 0;
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(60) {
        let (rss, _) = world::rss_kb(pid);
        if rss == 0 {
            break;
        }
        during = during.max(rss);
        std::thread::sleep(Duration::from_millis(5));
    }
    figure
        .points
        .push(("during the job (max sampled)".into(), during));
    let mut stdout = String::new();
    if let Some(mut o) = child.stdout.take() {
        let _ = std::io::Read::read_to_string(&mut o, &mut stdout);
    }
    let (ok, peak) = wait_peak(&mut child, watch);
    figure.peak_kb = peak;
    figure.note = format!(
        "idle VmHWM {:.1} MB; job {}",
        idle_peak as f64 / 1000.0,
        if ok && stdout.contains("\"issued\"") {
            "issued".to_owned()
        } else {
            format!("FAILED: {}", stdout.trim())
        }
    );
    drop(node);
    if figure.note.contains("FAILED") {
        eprintln!("server-load: kept {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    figure
}

/// A server node (SQLite) with `sessions` sessions opened (AgentHello + DeviceReport each)
/// and left open.
pub fn server_sessions(sessions: usize, threads: usize) -> RssFigure {
    let dir = world::run_dir("rss-server");
    let emu = world::emulator(1, false, Duration::ZERO);
    let tls = world::tls_files(&dir);
    let (key_file, server_key, _) = world::server_key(&dir);
    let node = world::start_node(
        &dir,
        "node",
        &emu,
        &json!({ "sqlite": dir.join("keysmith.db") }),
        &key_file,
        &tls,
    );
    let pid = node.pid();
    let http = world::client(&tls.0);
    let admin = world::token(&emu, world::ADMIN);
    let mut figure = RssFigure {
        what: format!("server node with {sessions} sessions open (SQLite)"),
        ..RssFigure::default()
    };
    figure.points.push(("started".into(), world::rss_kb(pid).0));
    // Half the agents are stations, half holders: both kinds of session.
    let agents: Vec<(SigningKey, bool)> = (0..threads.max(1))
        .map(|t| {
            let k = SigningKey::generate();
            if t % 2 == 0 {
                enrol_station(&http, &node.base, &admin, &format!("desk-{t}"), &k);
                (k, false)
            } else {
                enrol_holder(&http, &node.base, &k);
                (k, true)
            }
        })
        .collect();
    let opened = Arc::new(AtomicUsize::new(0));
    let finished = Arc::new(AtomicUsize::new(0));
    let marks: Vec<usize> = [sessions / 10, sessions / 2, sessions]
        .into_iter()
        .filter(|m| *m > 0)
        .collect();
    let s = sampler(pid, "sessions", opened.clone(), marks, finished.clone());
    let errors = Mutex::new(Vec::<String>::new());
    let bases = vec![node.base.clone()];
    let next = AtomicUsize::new(0);
    std::thread::scope(|sc| {
        for (t, (key, holder)) in agents.iter().enumerate() {
            let (opened, errors, bases, next, server_key, ca) =
                (&opened, &errors, &bases, &next, &server_key, &tls.0);
            sc.spawn(move || {
                let http = world::client(ca);
                let net = Net {
                    http: &http,
                    nodes: bases,
                    next,
                    measure_pids: None,
                };
                let id = AgentId {
                    key,
                    server_key,
                    holder: *holder,
                };
                let mut soft = softkey();
                let mut samples = Vec::new();
                let mine = sessions / threads.max(1) + usize::from(t < sessions % threads.max(1));
                for _ in 0..mine {
                    samples.clear();
                    match open_only(&net, &mut samples, &id, &mut soft) {
                        Ok(_) => {
                            opened.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => errors.lock().expect("errors").push(e),
                    }
                }
            });
        }
    });
    std::thread::sleep(Duration::from_millis(50));
    finished.store(1, Ordering::Relaxed);
    figure.points.extend(s.join().expect("sampler"));
    let (rss, hwm) = world::rss_kb(pid);
    figure.points.push(("after all opened".into(), rss));
    figure.peak_kb = hwm;
    let errors = errors.into_inner().expect("errors");
    figure.note = format!(
        "{} opened, {} errors{}",
        opened.load(Ordering::Relaxed),
        errors.len(),
        errors
            .first()
            .map(|e| format!(" (first: {e})"))
            .unwrap_or_default()
    );
    drop(node);
    if errors.is_empty() {
        let _ = std::fs::remove_dir_all(&dir);
    } else {
        eprintln!("server-load: kept {}", dir.display());
    }
    figure
}

/// Text for a figure's row.
pub fn row(f: &RssFigure) -> String {
    let pts = f
        .points
        .iter()
        .map(|(p, kb)| format!("{p}: {:.1} MB", *kb as f64 / 1000.0))
        .collect::<Vec<_>>()
        .join("; ");
    format!(
        "peak {:.1} MB; {pts}; {}",
        f.peak_kb as f64 / 1000.0,
        f.note
    )
}
