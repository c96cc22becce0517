//! Host-side cost of a full issuance sequence against the in-process software
//! authenticator over CTAPHID: getInfo, setPIN, PIN/UV auth token (makeCredential +
//! authenticatorConfig permissions), setMinPINLength, makeCredential.
//!
//! Run with `cargo run --release -p fido-transport --example issuance_bench [runs]`.
//!
//! Printed per run (mean and minimum over the runs):
//! - CPU time of the host thread (the client, the CTAP/CBOR/PIN-protocol code and the
//!   host half of CTAPHID framing; the key runs on its own thread and is not counted),
//!   from Linux `/proc/thread-self/schedstat` ("n/a" elsewhere);
//! - wall time of the whole sequence (includes the key's work and thread hand-offs);
//! - CTAP round trips and CTAP message bytes each way (what the client sent and
//!   received);
//! - 64-byte HID reports each way (including the CTAPHID_INIT of the connection and any
//!   KEEPALIVE reports).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fido_core::commands::{RpEntity, UserEntity};
use fido_core::pin::Permissions;
use fido_transport::client::{Authenticator, MakeCredentialArgs, TransferStats};
use fido_transport::hid::{CtapHidTransport, InProcessHid, ReportPipe, REPORT_LEN};
use fido_transport::softkey::{SoftAuthenticator, SoftConfig};
use fido_transport::{Error, TransportKind};

const PIN: &str = "4821-keysmith";
const RP: &str = "login.microsoft.com";

/// Counts the reports that cross the pipe.
struct CountingPipe {
    inner: InProcessHid,
    written: Arc<AtomicU64>,
    read: Arc<AtomicU64>,
}

impl ReportPipe for CountingPipe {
    fn write_report(&mut self, report: &[u8; REPORT_LEN]) -> Result<(), Error> {
        self.written.fetch_add(1, Ordering::Relaxed);
        self.inner.write_report(report)
    }
    fn read_report(&mut self, timeout: Duration) -> Result<Option<Vec<u8>>, Error> {
        let r = self.inner.read_report(timeout)?;
        if r.is_some() {
            self.read.fetch_add(1, Ordering::Relaxed);
        }
        Ok(r)
    }
    fn describe(&self) -> String {
        self.inner.describe()
    }
    fn kind(&self) -> TransportKind {
        self.inner.kind()
    }
}

/// CPU time of the calling thread (Linux), from /proc/thread-self/schedstat.
fn thread_cpu() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = text.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

/// Per-step deltas of the client's counters.
#[derive(Default)]
struct Steps {
    last: TransferStats,
    list: Vec<(&'static str, TransferStats)>,
}

impl Steps {
    fn mark(&mut self, now: TransferStats, name: &'static str) {
        self.list.push((
            name,
            TransferStats {
                round_trips: now.round_trips - self.last.round_trips,
                bytes_sent: now.bytes_sent - self.last.bytes_sent,
                bytes_received: now.bytes_received - self.last.bytes_received,
            },
        ));
        self.last = now;
    }
}

struct Run {
    cpu: Option<Duration>,
    wall: Duration,
    ctap: TransferStats,
    reports_out: u64,
    reports_in: u64,
    steps: Vec<(&'static str, TransferStats)>,
}

fn one_run() -> Result<Run, Error> {
    let soft = SoftAuthenticator::new(SoftConfig::default())
        .map_err(|e| Error::InvalidArgument(e.to_string()))?;
    let written = Arc::new(AtomicU64::new(0));
    let read = Arc::new(AtomicU64::new(0));
    let pipe = CountingPipe {
        inner: InProcessHid::new(soft),
        written: written.clone(),
        read: read.clone(),
    };

    let cpu_start = thread_cpu();
    let wall_start = Instant::now();

    let transport = CtapHidTransport::new(pipe)?;
    let mut key = Authenticator::new(transport);
    let mut steps = Steps::default();
    let mut mark = |key: &Authenticator<_>, name| steps.mark(key.stats(), name);
    key.info()?;
    mark(&key, "getInfo");
    key.set_pin(PIN)?;
    mark(&key, "setPIN");
    let token = key.pin_token(
        PIN,
        Permissions::MAKE_CREDENTIAL | Permissions::AUTHENTICATOR_CONFIG,
        Some(RP),
    )?;
    mark(&key, "PIN/UV auth token");
    key.set_min_pin_length(Some(8), &[RP.to_owned()], false, Some(&token))?;
    mark(&key, "setMinPINLength");
    let args = MakeCredentialArgs::new(
        [0x42; 32],
        RpEntity {
            id: RP.into(),
            name: Some("Microsoft".into()),
        },
        UserEntity {
            id: vec![7; 32],
            name: Some("alice@contoso.com".into()),
            display_name: Some("Alice".into()),
        },
    );
    let made = key.make_credential(&args, Some(&token), &mut |_| {})?;
    made.attestation
        .verify(&args.client_data_hash)
        .map_err(|e| Error::Core(e.into()))?;
    mark(&key, "makeCredential");

    let wall = wall_start.elapsed();
    let cpu = match (cpu_start, thread_cpu()) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a)),
        _ => None,
    };
    Ok(Run {
        cpu,
        wall,
        ctap: key.stats(),
        reports_out: written.load(Ordering::Relaxed),
        reports_in: read.load(Ordering::Relaxed),
        steps: steps.list,
    })
}

fn mean_min(values: &[Duration]) -> (Duration, Duration) {
    let total: Duration = values.iter().sum();
    let n = u32::try_from(values.len().max(1)).unwrap_or(u32::MAX);
    (total / n, values.iter().copied().min().unwrap_or_default())
}

fn main() -> Result<(), Error> {
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20)
        .max(1);
    // One warm-up run (page faults, lazy statics).
    one_run()?;
    let mut results = Vec::with_capacity(runs);
    for _ in 0..runs {
        results.push(one_run()?);
    }
    let first = &results[0];
    let walls: Vec<Duration> = results.iter().map(|r| r.wall).collect();
    let cpus: Vec<Duration> = results.iter().filter_map(|r| r.cpu).collect();
    let (wall_mean, wall_min) = mean_min(&walls);

    println!("issuance sequence: getInfo, setPIN, token(mc|acfg, {RP}), setMinPINLength(8, [{RP}]), makeCredential + attestation check");
    println!(
        "transport: in-process CTAPHID (64-byte reports), software authenticator on its own thread"
    );
    println!("runs: {runs} (after one warm-up)");
    if cpus.len() == results.len() {
        let (cpu_mean, cpu_min) = mean_min(&cpus);
        println!("host thread CPU time: mean {cpu_mean:?}, min {cpu_min:?}");
    } else {
        println!("host thread CPU time: n/a (needs Linux /proc/thread-self/schedstat)");
    }
    println!("wall time:            mean {wall_mean:?}, min {wall_min:?}");
    println!("CTAP round trips:     {}", first.ctap.round_trips);
    println!(
        "CTAP bytes:           {} sent, {} received",
        first.ctap.bytes_sent, first.ctap.bytes_received
    );
    println!(
        "HID reports:          {} out ({} bytes), {} in ({} bytes), incl. CTAPHID_INIT and keepalives",
        first.reports_out,
        first.reports_out * REPORT_LEN as u64,
        first.reports_in,
        first.reports_in * REPORT_LEN as u64
    );
    println!("per step (round trips, bytes sent, bytes received; the getInfo re-read after a change counts in the next step):");
    for (name, s) in &first.steps {
        println!(
            "  {name:<20} {:>2} round trips {:>5} B out {:>5} B in",
            s.round_trips, s.bytes_sent, s.bytes_received
        );
    }
    Ok(())
}
