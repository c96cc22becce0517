//! A simulated device half: `keysmith_device::DeviceSession` on a software key, its
//! messages carried over HTTPS to one or several nodes (round robin per message, as a load
//! balancer would), each request timed. The holder's sign-in is an ID token the emulator
//! mints for the session's nonce (the browser part of the sign-in is not what is measured).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use entra_graph::emulator::{Emulator, HolderTokenOptions};
use fido_transport::client::Authenticator;
use fido_transport::softkey::{SoftAuthenticator, SoftConfig, SoftTransport};
use keysmith_device::{DeviceConfig, DeviceSession, Event, HolderUi, HolderUiError, Prompt};
use keysmith_testkit::HOLDER_PIN;
use keysmith_wire::{
    Capabilities, HostClaim, OsEntropy, PublicKey, Request, RequestOp, SigningKey,
};
use zeroize::Zeroizing;

/// A software key.
pub type Key = Authenticator<SoftTransport>;

/// A fresh software key.
pub fn softkey() -> Key {
    Authenticator::new(SoftTransport::new(
        SoftAuthenticator::new(SoftConfig::default()).expect("softkey"),
    ))
}

/// What a request was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `POST /v1/sessions` (AgentHello).
    Open,
    /// `POST /v1/sessions/{id}`.
    Message,
    /// An operator API call (queue work, revoke).
    Operator,
}

/// One timed request.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    /// What it was.
    pub kind: Kind,
    /// Its wall time.
    pub latency: Duration,
    /// The node that answered.
    pub node: usize,
    /// Server CPU (ns, live threads of every node) spent while it ran, when measured.
    pub cpu_ns: Option<u64>,
    /// What was sent (`station: JobResult`, `operator: revoke`, ...), for the breakdown.
    pub what: &'static str,
}

/// Where requests go and what is recorded.
pub struct Net<'a> {
    /// One client per worker (keeps its connections).
    pub http: &'a reqwest::blocking::Client,
    /// The nodes' base URLs.
    pub nodes: &'a [String],
    /// Next node (round robin shared by every worker).
    pub next: &'a AtomicUsize,
    /// The nodes' pids, when each request's server CPU is measured (one worker only).
    pub measure_pids: Option<&'a [u32]>,
}

impl Net<'_> {
    fn pick(&self) -> usize {
        self.next.fetch_add(1, Ordering::Relaxed) % self.nodes.len()
    }

    fn cpu(&self) -> Option<u64> {
        self.measure_pids
            .map(|p| p.iter().map(|&pid| crate::world::thread_cpu_ns(pid)).sum())
    }

    /// Sends `send` to a node, timing it; returns the status, `Location` and body.
    pub fn timed(
        &self,
        kind: Kind,
        samples: &mut Vec<Sample>,
        send: impl Fn(&str) -> reqwest::blocking::RequestBuilder,
    ) -> Result<(u16, Option<String>, Vec<u8>), String> {
        let node = self.pick();
        let cpu0 = self.cpu();
        let t0 = Instant::now();
        let r = send(&self.nodes[node]).send().map_err(|e| e.to_string())?;
        let status = r.status().as_u16();
        let loc = r
            .headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
            .map(str::to_owned);
        let body = r.bytes().map(|b| b.to_vec()).unwrap_or_default();
        let latency = t0.elapsed();
        let cpu_ns = cpu0.and_then(|c0| self.cpu().map(|c1| c1.saturating_sub(c0)));
        samples.push(Sample {
            kind,
            latency,
            node,
            cpu_ns,
            what: "",
        });
        Ok((status, loc, body))
    }
}

/// What the device half is there for.
#[derive(Clone, Debug)]
pub enum Mode {
    /// A station taking one queued work item.
    Station,
    /// The holder activates `key_id`.
    Activate(String),
    /// A sign-in check with `key_id`.
    Verify(String),
}

/// The holder's UI: the PIN the load generator's holders use.
struct Pin;

impl HolderUi for Pin {
    fn new_pin(&mut self, _: u32, _: bool) -> Result<Zeroizing<String>, HolderUiError> {
        Ok(Zeroizing::new(HOLDER_PIN.to_owned()))
    }
    fn holder_pin(&mut self) -> Result<Zeroizing<String>, HolderUiError> {
        Ok(Zeroizing::new(HOLDER_PIN.to_owned()))
    }
    fn prompt(&self, _: &Prompt) {}
}

/// The final answer of a session.
#[derive(Clone, Debug)]
pub struct Ack {
    /// The key.
    pub key_id: String,
    /// Its state.
    pub state: String,
    /// Passkeys registered by the job.
    pub registered: u32,
}

/// The agent's identity for one session.
pub struct AgentId<'a> {
    /// Its signing key.
    pub key: &'a SigningKey,
    /// The server's key (pinned).
    pub server_key: &'a PublicKey,
    /// A holder agent (interactive UI) or a station.
    pub holder: bool,
}

/// Runs one session to its `JobAck`; the holder (for activation and sign-in checks)
/// signs in as `upn` at `emu`; the key claims serial `serial`.
#[allow(clippy::too_many_arguments)]
pub fn run_session(
    net: &Net<'_>,
    samples: &mut Vec<Sample>,
    agent: &AgentId<'_>,
    key: &mut Key,
    mode: &Mode,
    emu: &Emulator,
    upn: &str,
    serial: &str,
) -> Result<Ack, String> {
    let started = Instant::now();
    let now = || u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let (mut session, hello) = DeviceSession::new(
        DeviceConfig {
            agent_key: agent.key.clone(),
            server_keys: vec![agent.server_key.clone()],
            caps: Capabilities {
                ctap_raw: true,
                can_reset_in_place: true,
                interactive_holder_ui: agent.holder,
                max_job_steps: 64,
                ..Default::default()
            },
            host: HostClaim {
                name: "load".into(),
                os: "linux".into(),
                ..Default::default()
            },
            agent_version: "server-load".into(),
        },
        &mut OsEntropy,
    );
    let mut path: Option<String> = None;
    let label = |sent: &str| -> &'static str {
        match (mode, sent) {
            (_, "hello") => "AgentHello",
            (_, "report") => "DeviceReport",
            (Mode::Station, "request") => "station: Ready",
            (Mode::Station, "job") => "station: JobResult",
            (Mode::Activate(_), "request") => "activate: Request",
            (Mode::Activate(_), "auth") => "activate: HolderAuth",
            (Mode::Activate(_), "job") => "activate: JobResult",
            (Mode::Verify(_), "request") => "verify: Request",
            (Mode::Verify(_), "auth") => "verify: HolderAuth",
            (Mode::Verify(_), "job") => "verify: JobResult",
            _ => "other",
        }
    };
    let mut sent = "hello";
    let mut post =
        |bytes: &[u8], samples: &mut Vec<Sample>, sent: &str| -> Result<Vec<u8>, String> {
            let mut last = String::new();
            for attempt in 0..8u32 {
                if attempt > 0 {
                    std::thread::sleep(Duration::from_millis(100 * u64::from(attempt)));
                }
                let kind = if path.is_none() {
                    Kind::Open
                } else {
                    Kind::Message
                };
                let p = path.clone().unwrap_or_else(|| "/v1/sessions".into());
                let (status, loc, body) = net.timed(kind, samples, |base| {
                    net.http
                        .post(format!("{base}{p}"))
                        .header("content-type", "application/cose")
                        .body(bytes.to_vec())
                })?;
                if let Some(last) = samples.last_mut() {
                    last.what = label(sent);
                }
                match status {
                    200 | 201 => {
                        if path.is_none() {
                            let id = loc
                                .and_then(|l| l.rsplit('/').next().map(str::to_owned))
                                .ok_or("no Location for the session")?;
                            path = Some(format!("/v1/sessions/{id}"));
                        }
                        return Ok(body);
                    }
                    409 | 503 => last = format!("{status}: {}", String::from_utf8_lossy(&body)),
                    _ => {
                        return Err(format!(
                            "{status}: {}",
                            String::from_utf8_lossy(&body)
                                .chars()
                                .take(300)
                                .collect::<String>()
                        ))
                    }
                }
            }
            Err(format!("busy after 8 attempts: {last}"))
        };
    let err = |e: keysmith_device::SessionError| e.to_string();
    let reply = post(&hello, samples, sent)?;
    match session.receive(&reply, now()).map_err(err)? {
        Event::Established => {}
        other => return Err(format!("no ServerHello: {other:?}")),
    }
    let mut msg = session
        .report(
            key,
            "software",
            Some(serial.to_owned()),
            Some("transport".into()),
        )
        .map_err(err)?;
    sent = "report";
    let mut asked = false;
    let mut ui = Pin;
    loop {
        let reply = post(&msg, samples, sent)?;
        match session.receive(&reply, now()).map_err(err)? {
            Event::Job(_) => {
                msg = session.run_job(now(), key, &mut ui).map_err(err)?;
                sent = "job";
            }
            Event::JobRefused { reason, .. } => return Err(format!("job refused: {reason}")),
            Event::NeedHolderAuth(need) => {
                let token = emu
                    .holder_token_with(
                        &HolderTokenOptions::new(upn, need.client_id.clone()).nonce(need.nonce),
                    )
                    .map_err(|e| e.to_string())?;
                msg = session.holder_auth(Zeroizing::new(token)).map_err(err)?;
                sent = "auth";
            }
            Event::Wait { retry_ms } => {
                if asked {
                    std::thread::sleep(Duration::from_millis(retry_ms.clamp(20, 2_000)));
                    msg = session.ready().map_err(err)?;
                    sent = "request";
                    continue;
                }
                asked = true;
                sent = "request";
                let request = |operation, key_id: &str| Request {
                    operation,
                    template: None,
                    key_id: Some(key_id.to_owned()),
                };
                msg = match mode {
                    Mode::Station => session.ready(),
                    Mode::Activate(k) => session.request(request(RequestOp::Activate, k)),
                    Mode::Verify(k) => session.request(request(RequestOp::Verify, k)),
                }
                .map_err(err)?;
            }
            Event::JobAck(ack) => {
                return Ok(Ack {
                    key_id: ack.key_id,
                    state: ack.state,
                    registered: ack.registered,
                })
            }
            Event::Done { key_id, state } => {
                return Err(format!("session done without a job: {key_id:?} {state:?}"))
            }
            Event::Refused(r) => {
                return Err(format!("refused ({}): {}", r.code.as_str(), r.reason))
            }
            Event::Retransmission { reply: Some(r) } => msg = r,
            other => return Err(format!("unexpected: {other:?}")),
        }
    }
}

/// Labels the last sample (operator calls).
pub fn label_last(samples: &mut [Sample], what: &'static str) {
    if let Some(last) = samples.last_mut() {
        last.what = what;
    }
}

/// Opens a session (`AgentHello`, then the `DeviceReport`) and leaves it open; returns the
/// device half (dropping it leaves the server's session open until it expires).
pub fn open_only(
    net: &Net<'_>,
    samples: &mut Vec<Sample>,
    agent: &AgentId<'_>,
    key: &mut Key,
) -> Result<DeviceSession, String> {
    let (mut session, hello) = DeviceSession::new(
        DeviceConfig {
            agent_key: agent.key.clone(),
            server_keys: vec![agent.server_key.clone()],
            caps: Capabilities {
                ctap_raw: true,
                interactive_holder_ui: agent.holder,
                max_job_steps: 64,
                ..Default::default()
            },
            host: HostClaim {
                name: "load".into(),
                os: "linux".into(),
                ..Default::default()
            },
            agent_version: "server-load".into(),
        },
        &mut OsEntropy,
    );
    let (status, loc, body) = net.timed(Kind::Open, samples, |base| {
        net.http
            .post(format!("{base}/v1/sessions"))
            .header("content-type", "application/cose")
            .body(hello.clone())
    })?;
    if status != 201 && status != 200 {
        return Err(format!(
            "open: {status}: {}",
            String::from_utf8_lossy(&body)
        ));
    }
    let id = loc
        .and_then(|l| l.rsplit('/').next().map(str::to_owned))
        .ok_or("no Location")?;
    session.receive(&body, 0).map_err(|e| e.to_string())?;
    let report = session
        .report(key, "software", None, None)
        .map_err(|e| e.to_string())?;
    let (status, _, body) = net.timed(Kind::Message, samples, |base| {
        net.http
            .post(format!("{base}/v1/sessions/{id}"))
            .header("content-type", "application/cose")
            .body(report.clone())
    })?;
    if status != 200 {
        return Err(format!(
            "report: {status}: {}",
            String::from_utf8_lossy(&body)
        ));
    }
    Ok(session)
}
