//! `LocalLink`: the server half and the device half of one session connected in memory.
//! Every message crosses as bytes (encoded, signed, then opened and verified on the other
//! side), both ways, so the in-process API runs through the wire format.

use fido_core::commands::{AuthenticatorInfo, ResponseData};
use keysmith_device::{
    DeviceConfig, DeviceOps, DeviceSession, Event, HolderUi, HolderUiError, Prompt,
};
use keysmith_wire::{AgentMessage, Capabilities, HostClaim, OsEntropy, Outcome, SigningKey};
use zeroize::Zeroizing;

use super::channel::{Incoming, JobSpec, ServerChannel};
use super::{LinkError, JOB_TTL_MS};
use crate::engine::DevicePrompt;
use crate::Error;

/// A hostile (or recording) relay between the halves, for tests: it sees every message
/// and decides what is delivered (none: dropped; twice: duplicated; altered bytes).
#[cfg(feature = "fault-injection")]
pub trait Relay {
    /// A server message on its way to the device half: the messages to deliver instead.
    fn to_device(&mut self, bytes: Vec<u8>) -> Vec<Vec<u8>> {
        vec![bytes]
    }
    /// A device message on its way to the server half: the messages to deliver instead.
    fn to_server(&mut self, bytes: Vec<u8>) -> Vec<Vec<u8>> {
        vec![bytes]
    }
    /// Milliseconds the device half's monotonic clock moves between receiving a job and
    /// running it.
    fn elapse_ms(&mut self) -> u64 {
        0
    }
}

#[cfg(feature = "fault-injection")]
type SharedRelay = std::rc::Rc<std::cell::RefCell<dyn Relay>>;

#[cfg(feature = "fault-injection")]
thread_local! {
    static RELAY: std::cell::RefCell<Option<SharedRelay>> = const { std::cell::RefCell::new(None) };
}

/// Runs `f` with `relay` between the halves of every link opened on this thread (tests).
#[cfg(feature = "fault-injection")]
pub fn with_relay<R>(relay: SharedRelay, f: impl FnOnce() -> R) -> R {
    let old = RELAY.with(|r| r.borrow_mut().replace(relay));
    let out = f();
    RELAY.with(|r| *r.borrow_mut() = old);
    out
}

fn to_device(bytes: Vec<u8>) -> Vec<Vec<u8>> {
    #[cfg(feature = "fault-injection")]
    if let Some(r) = RELAY.with(|r| r.borrow().clone()) {
        return r.borrow_mut().to_device(bytes);
    }
    vec![bytes]
}

fn to_server(bytes: Vec<u8>) -> Vec<Vec<u8>> {
    #[cfg(feature = "fault-injection")]
    if let Some(r) = RELAY.with(|r| r.borrow().clone()) {
        return r.borrow_mut().to_server(bytes);
    }
    vec![bytes]
}

fn elapse_ms() -> u64 {
    #[cfg(feature = "fault-injection")]
    if let Some(r) = RELAY.with(|r| r.borrow().clone()) {
        return r.borrow_mut().elapse_ms();
    }
    0
}

/// The device half's UI in the in-process API: it answers every PIN question with the PIN
/// the API caller gave, and passes prompts to the engine's prompt receiver.
struct LinkUi<'d> {
    holder_pin: Option<Zeroizing<String>>,
    prompt: &'d dyn Fn(&DevicePrompt),
}

impl HolderUi for LinkUi<'_> {
    fn new_pin(
        &mut self,
        _min_len: u32,
        _confirm: bool,
    ) -> Result<Zeroizing<String>, HolderUiError> {
        self.holder_pin.clone().ok_or(HolderUiError::Unavailable)
    }
    fn holder_pin(&mut self) -> Result<Zeroizing<String>, HolderUiError> {
        self.holder_pin.clone().ok_or(HolderUiError::Unavailable)
    }
    fn prompt(&self, p: &Prompt) {
        let p = match *p {
            Prompt::TouchKey { op } => DevicePrompt::TouchKey { step: op },
            Prompt::FingerprintSample {
                last_status,
                remaining,
            } => DevicePrompt::FingerprintSample {
                last_status,
                remaining,
            },
            Prompt::EnrollFingerprint { number, of } => {
                DevicePrompt::EnrollFingerprint { number, of }
            }
            Prompt::HoldKey { op } => DevicePrompt::HoldKey { step: op },
            Prompt::Replug(r) => DevicePrompt::Replug(r),
            _ => return,
        };
        (self.prompt)(&p);
    }
}

/// One session between the server half and the device half, in memory.
pub(crate) struct LocalLink<'d> {
    server: ServerChannel,
    device: DeviceSession,
    ops: &'d mut dyn DeviceOps,
    ui: LinkUi<'d>,
    info: AuthenticatorInfo,
    /// PIN retries the device report gave (keys with clientPin).
    pin_retries: Option<u32>,
    /// The device half's monotonic clock (ms).
    clock_ms: u64,
    /// The device session holds the key's current PIN (`PinSource::Current` works).
    pub(crate) current_known: bool,
}

impl<'d> LocalLink<'d> {
    /// Opens a session on `ops`: AgentHello, ServerHello, DeviceReport (`transport`).
    /// `holder_pin` is what the device half's UI answers when a job asks the holder.
    pub(crate) fn open(
        ops: &'d mut dyn DeviceOps,
        holder_pin: Option<&str>,
        transport: &str,
        prompt: &'d dyn Fn(&DevicePrompt),
    ) -> Result<Self, Error> {
        let agent_key = SigningKey::generate();
        let agent_pub = agent_key.public_key();
        let server_key = SigningKey::generate();
        let config = DeviceConfig {
            agent_key,
            server_keys: vec![server_key.public_key()],
            caps: Capabilities {
                ctap_raw: true,
                webauthn_platform: false,
                can_reset_in_place: true,
                interactive_holder_ui: holder_pin.is_some(),
                bio_ui: true,
                max_job_steps: 64,
            },
            host: HostClaim {
                name: "in-process".into(),
                os: std::env::consts::OS.into(),
                elevated: false,
                remote_session: false,
            },
            agent_version: env!("CARGO_PKG_VERSION").into(),
        };
        let (mut device, hello) = DeviceSession::new(config, &mut OsEntropy);
        let mut server = None;
        for bytes in to_server(hello) {
            match ServerChannel::accept_hello(server_key.clone(), agent_pub.clone(), &bytes) {
                Ok((ch, _, reply)) if server.is_none() => {
                    for b in to_device(reply) {
                        if let Err(e) = device.receive(&b, 0) {
                            tracing::warn!(error = %e, "link: server hello refused");
                        }
                    }
                    server = Some(ch);
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "link: agent hello refused"),
            }
        }
        let mut server = server.ok_or(LinkError::NoAnswer)?;
        if device.session().is_none() {
            return Err(LinkError::NoAnswer.into());
        }
        let report = device
            .report(ops, transport, None, None)
            .map_err(LinkError::from)?;
        let mut info = None;
        let mut pin_retries = None;
        for bytes in to_server(report) {
            match server.accept(&bytes) {
                Ok(Incoming::Message(env)) => {
                    if let AgentMessage::DeviceReport(r) = env.msg {
                        info = Some(parse_info(r.get_info.as_deref())?);
                        pin_retries = r.pin_retries;
                    }
                }
                Ok(Incoming::Retransmission) => {}
                Err(e) => tracing::warn!(error = %e, "link: device report refused"),
            }
        }
        let info = info.ok_or(LinkError::NoAnswer)?;
        Ok(LocalLink {
            server,
            device,
            ops,
            ui: LinkUi {
                holder_pin: holder_pin.map(|p| Zeroizing::new(p.to_owned())),
                prompt,
            },
            info,
            pin_retries,
            clock_ms: 0,
            current_known: false,
        })
    }
}

impl super::DeviceLink for LocalLink<'_> {
    fn info(&self) -> &AuthenticatorInfo {
        &self.info
    }
    fn has_holder_pin(&self) -> bool {
        self.ui.holder_pin.is_some()
    }
    fn raw_ctap(&self) -> bool {
        true
    }
    fn current_known(&self) -> bool {
        self.current_known
    }
    fn set_current_known(&mut self, known: bool) {
        self.current_known = known;
    }
    fn run(&mut self, spec: JobSpec) -> Result<Vec<Outcome>, Error> {
        LocalLink::run(self, spec)
    }
    fn device_identifier(&mut self, pin: &str) -> Result<Option<Vec<u8>>, Error> {
        // In process: the engine holds the PIN already, so it is asked of the key
        // directly (a remote device half would need a job step for it).
        Ok(self.ops.device_identifier(pin)?)
    }
}

impl LocalLink<'_> {
    /// PIN retries as the device report gave them (`None`: the key has no clientPin).
    pub(crate) fn pin_retries(&self) -> Option<u32> {
        self.pin_retries
    }

    /// Signs and sends `spec`, lets the device half run it, and returns its checked
    /// outcomes (one per step).
    pub(crate) fn run(&mut self, spec: JobSpec) -> Result<Vec<Outcome>, Error> {
        let job = self.server.job(spec, JOB_TTL_MS)?;
        let mut replies = Vec::new();
        for bytes in to_device(job) {
            let received = self.clock_ms;
            match self.device.receive(&bytes, received) {
                Ok(Event::Job(_)) => {
                    self.clock_ms += elapse_ms();
                    match self.device.run_job(self.clock_ms, self.ops, &mut self.ui) {
                        Ok(r) => replies.push(r),
                        Err(e) => tracing::warn!(error = %e, "link: job not run"),
                    }
                }
                Ok(Event::JobRefused { reply, .. }) => replies.push(reply),
                Ok(Event::Retransmission { reply: Some(r) }) => replies.push(r),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "link: job refused by the device half"),
            }
        }
        let mut result = None;
        let mut aborted = None;
        for reply in replies {
            for bytes in to_server(reply) {
                let env = match self.server.accept(&bytes) {
                    Ok(Incoming::Message(env)) => env,
                    Ok(Incoming::Retransmission) => continue,
                    Err(e) => {
                        tracing::warn!(error = %e, "link: device message refused");
                        continue;
                    }
                };
                match env.msg {
                    AgentMessage::JobResult(r) if result.is_none() => {
                        match self.server.check_result(env.job, &r) {
                            Ok(()) => result = Some(r.outcomes),
                            Err(e) => tracing::warn!(error = %e, "link: job result refused"),
                        }
                    }
                    AgentMessage::Abort(a)
                        if env.job.is_none() || env.job == self.server.job_in_flight() =>
                    {
                        self.server.close_job();
                        aborted = Some(LinkError::Aborted {
                            reason: a.reason,
                            detail: a.detail,
                        });
                    }
                    _ => {}
                }
            }
        }
        match (result, aborted) {
            (Some(outcomes), _) => Ok(outcomes),
            (None, Some(e)) => Err(e.into()),
            (None, None) => {
                self.server.close_job();
                Err(LinkError::NoAnswer.into())
            }
        }
    }
}

impl Drop for LocalLink<'_> {
    fn drop(&mut self) {
        // The session ends with the call: the server says so, and the device half forgets
        // the PIN it held (closed even when the relay lost the `Done`).
        let done = self.server.message(keysmith_wire::ServerMessage::Done {
            key_id: None,
            state: None,
        });
        for bytes in to_device(done) {
            if let Err(e) = self.device.receive(&bytes, self.clock_ms) {
                tracing::debug!(error = %e, "link: done refused");
            }
        }
        self.device.close();
    }
}

pub(crate) fn parse_info(raw: Option<&[u8]>) -> Result<AuthenticatorInfo, LinkError> {
    let raw = raw.ok_or(LinkError::Unexpected("a device report without getInfo"))?;
    let v = fido_core::cbor::decode(raw)
        .map_err(|_| LinkError::Unexpected("a device report whose getInfo is not CBOR"))?;
    AuthenticatorInfo::from_cbor(Some(&v))
        .map_err(|_| LinkError::Unexpected("a device report whose getInfo does not parse"))
}
