//! The split deployment's two halves for an embedding program (issue 11 item 7;
//! `docs/split-protocol.md`, `docs/split-embedding.md`): a CMS carries the messages over
//! its own channel and embeds either side.
//!
//! * [`DeviceHalf`] — where the key is attached: wraps [`keysmith_device::DeviceSession`].
//!   Bytes in, bytes out; the holder's PIN comes from the caller's [`HolderPrompts`] and
//!   goes to the key, never into a message.
//! * [`ServerHalf`] — beside the repository and the IdP: wraps
//!   [`lifecycle::coordinator::Coordinator`] over a [`crate::Session`]'s engine, with an agent
//!   directory the caller fills (add, approve, revoke).
//! * [`describe`] — a JSON view of any message for logs, with ID tokens and sealed secrets
//!   left out.
//!
//! A message either half did not accept is a [`FacadeError`] of kind `usage` with reason
//! `split_refused` and the protocol's stable code in [`FacadeError::refusal_code`].

use std::sync::{Mutex, MutexGuard, PoisonError};

use keysmith_device::{
    DeviceConfig, DeviceSession, Event, HolderUi, HolderUiError, Prompt as DevicePrompt,
    SessionError,
};
use keysmith_wire::{
    Capabilities, HostClaim, OsEntropy, PublicKey, RefusalCode, Request, RequestOp, SigningKey,
};
use lifecycle::coordinator::CoordinatorError;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::types::hex;
use crate::{Device, FacadeError, Prompt, Result};

/// A refusal by either half, with its stable code.
fn refused(code: RefusalCode, message: impl Into<String>) -> FacadeError {
    FacadeError {
        refusal_code: Some(code.as_str()),
        ..FacadeError::usage(message).with_reason("split_refused")
    }
}

impl From<SessionError> for FacadeError {
    fn from(e: SessionError) -> Self {
        let message = format!("device half: {e}");
        match e {
            SessionError::Wire(w) => refused(w.refusal_code(), message),
            SessionError::HelloMismatch => refused(RefusalCode::BadSignature, message),
            SessionError::SessionMismatch => refused(RefusalCode::SessionUnknown, message),
            SessionError::SessionBroken { .. } => refused(RefusalCode::SessionBroken, message),
            SessionError::Closed => FacadeError::usage(message).with_reason("session_closed"),
            SessionError::NoJob => FacadeError::usage(message).with_reason("no_job"),
            SessionError::NotAsked { .. } => FacadeError::usage(message).with_reason("not_asked"),
            SessionError::NotEstablished => {
                FacadeError::usage(message).with_reason("session_not_established")
            }
            SessionError::Device(op) => FacadeError::device(format!("security key: {op}")),
            _ => FacadeError::usage(message),
        }
    }
}

impl From<CoordinatorError> for FacadeError {
    fn from(e: CoordinatorError) -> Self {
        match e {
            CoordinatorError::Rejected(r) => refused(
                r.code,
                format!("server half: {}: {}", r.code.as_str(), r.reason),
            ),
            CoordinatorError::Store(s) => lifecycle::Error::from(s).into(),
            other => FacadeError::new(crate::ErrorKind::Internal, other.to_string()),
        }
    }
}

fn sec1_hex(key: &PublicKey) -> String {
    hex(&key.to_sec1())
}

fn unhex(text: &str, what: &str) -> Result<Vec<u8>> {
    base16ct::mixed::decode_vec(text.trim())
        .map_err(|_| FacadeError::usage(format!("{what}: expected hex digits")))
}

/// A P-256 public key from SPKI PEM or SEC1 hex.
fn public_key(text: &str, what: &str) -> Result<PublicKey> {
    let parsed = if text.trim_start().starts_with("-----BEGIN") {
        PublicKey::from_spki_pem(text)
    } else {
        PublicKey::from_sec1(&unhex(text, what)?)
    };
    parsed.map_err(|e| FacadeError::usage(format!("{what}: {e}")))
}

fn signing_key(pem: &str, what: &str) -> Result<SigningKey> {
    SigningKey::from_pkcs8_pem(pem).map_err(|e| FacadeError::usage(format!("{what}: {e}")))
}

fn json<T: for<'de> Deserialize<'de>>(text: &str, what: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| FacadeError::usage(format!("{what}: {e}")))
}

// ---------------------------------------------------------------------------------------
// The device half

/// What the device half says it can do (`AgentHello` caps, split-protocol.md §5).
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct CapsJson {
    ctap_raw: bool,
    webauthn_platform: bool,
    can_reset_in_place: bool,
    interactive_holder_ui: bool,
    bio_ui: bool,
    max_job_steps: u32,
}

impl Default for CapsJson {
    fn default() -> Self {
        CapsJson {
            ctap_raw: true,
            webauthn_platform: false,
            can_reset_in_place: false,
            interactive_holder_ui: false,
            bio_ui: false,
            max_job_steps: 64,
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct HostJson {
    name: String,
    os: String,
    elevated: bool,
    remote_session: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeviceHalfJson {
    #[serde(default)]
    agent_key_pem: Option<SecretText>,
    server_keys: Vec<String>,
    #[serde(default)]
    capabilities: CapsJson,
    #[serde(default)]
    host: HostJson,
    #[serde(default)]
    agent_version: Option<String>,
}

/// Asks the holder at the device half for PINs and shows prompts (see
/// [`DeviceHalf::run_job`]). The PINs go to the key only.
pub trait HolderPrompts {
    /// A new PIN of at least `min_len` characters (asked twice when `confirm`); `None`
    /// when the holder cancels or there is no holder here.
    fn new_pin(&mut self, min_len: u32, confirm: bool) -> Option<Zeroizing<String>>;
    /// The holder's current PIN; `None` when they cancel or there is no holder here.
    fn holder_pin(&mut self) -> Option<Zeroizing<String>>;
    /// "Touch your key", fingerprint prompts.
    fn prompt(&mut self, prompt: &Prompt);
}

/// Secret text from JSON, zeroized when dropped.
struct SecretText(Zeroizing<String>);

impl<'de> Deserialize<'de> for SecretText {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        String::deserialize(d).map(|s| SecretText(Zeroizing::new(s)))
    }
}

/// Adapts [`HolderPrompts`] to the device crate's [`HolderUi`].
struct Ui<'a>(Mutex<&'a mut dyn HolderPrompts>);

impl<'a> Ui<'a> {
    fn get(&self) -> MutexGuard<'_, &'a mut dyn HolderPrompts> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl HolderUi for Ui<'_> {
    fn new_pin(
        &mut self,
        min_len: u32,
        confirm: bool,
    ) -> std::result::Result<Zeroizing<String>, HolderUiError> {
        self.get()
            .new_pin(min_len, confirm)
            .ok_or(HolderUiError::Cancelled)
    }
    fn holder_pin(&mut self) -> std::result::Result<Zeroizing<String>, HolderUiError> {
        self.get().holder_pin().ok_or(HolderUiError::Cancelled)
    }
    fn prompt(&self, prompt: &DevicePrompt) {
        let p = match prompt {
            DevicePrompt::TouchKey { op } => Prompt::TouchKey {
                step: (*op).to_owned(),
            },
            DevicePrompt::FingerprintSample {
                last_status,
                remaining,
            } => Prompt::FingerprintSample {
                last_status: *last_status,
                remaining: *remaining,
            },
            DevicePrompt::EnrollFingerprint { number, of } => Prompt::EnrollFingerprint {
                number: *number,
                of: *of,
            },
            other => Prompt::Other {
                description: format!("{other:?}"),
            },
        };
        self.get().prompt(&p);
    }
}

/// What a server message means to the device half's caller (JSON: `{"event": ...}`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum DeviceEvent {
    /// The session is established (`ServerHello`).
    Established,
    /// The holder must sign in at `issuer` with the `nonce`, then
    /// [`DeviceHalf::holder_auth`] with the ID token.
    NeedHolderAuth {
        /// The OpenID issuer.
        issuer: String,
        /// The client id to sign in with.
        client_id: String,
        /// The scopes to ask for.
        scopes: Vec<String>,
        /// The nonce the ID token must carry (bound to this session).
        nonce: String,
        /// The user expected, if the server knows.
        login_hint: Option<String>,
        /// The longest accepted age of the sign-in.
        max_age_s: u32,
        /// The code both the agent UI and the sign-in page show.
        session_code: String,
    },
    /// A checked job: run it with [`DeviceHalf::run_job`].
    Job {
        /// Its operation (`issue`, `activate`, ...), for the UI.
        operation: String,
        /// How many steps it has.
        steps: usize,
    },
    /// The job was refused before any step ran; send `reply` (an `Abort`).
    JobRefused {
        /// Why (no secret).
        reason: String,
        /// The `Abort` to send (hex in JSON).
        #[serde(serialize_with = "ser_hex")]
        reply: Vec<u8>,
    },
    /// The server accepted a job's result.
    JobAck {
        /// The key.
        key_id: String,
        /// Its state now.
        state: String,
        /// Whether it needs reissue.
        needs_reissue: bool,
        /// Passkeys registered at the IdP by this job.
        registered: u32,
    },
    /// The server refused something (stable code, split-protocol.md §7).
    Refused {
        /// The stable code.
        code: String,
        /// Why, for people.
        reason: String,
        /// Whether the key now needs reissue.
        needs_reissue: Option<bool>,
        /// The step concerned.
        step: Option<String>,
    },
    /// Nothing to do yet: poll ([`DeviceHalf::ready`]) after `retry_ms`.
    Wait {
        /// Milliseconds.
        retry_ms: u64,
    },
    /// The session is finished.
    Done {
        /// The key concerned.
        key_id: Option<String>,
        /// Its state.
        state: Option<String>,
    },
    /// Delegated registration: make this Graph call with the holder's delegated token
    /// (from their sign-in; never send it to the server) and answer with
    /// [`DeviceHalf::holder_graph_result`].
    HolderGraph {
        /// `creation_options` or `register`.
        op: String,
        /// The HTTP method (`GET`, `POST`).
        method: String,
        /// The path under the Graph base URL (`/v1.0/me/authentication/...`).
        path: String,
        /// The JSON request body (`register` only).
        body: Option<String>,
    },
    /// A repeat of the last server message: send `reply` again if there is one.
    Retransmission {
        /// The reply already sent (hex in JSON).
        #[serde(serialize_with = "ser_hex_opt")]
        reply: Option<Vec<u8>>,
    },
}

fn ser_hex<S: serde::Serializer>(b: &[u8], s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&hex(b))
}

#[allow(clippy::ref_option)] // serde's serialize_with passes &Option<T>
fn ser_hex_opt<S: serde::Serializer>(
    b: &Option<Vec<u8>>,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    match b {
        Some(b) => s.serialize_str(&hex(b)),
        None => s.serialize_none(),
    }
}

impl DeviceEvent {
    fn from_event(e: Event) -> DeviceEvent {
        match e {
            Event::Established => DeviceEvent::Established,
            Event::NeedHolderAuth(n) => DeviceEvent::NeedHolderAuth {
                issuer: n.issuer,
                client_id: n.client_id,
                scopes: n.scopes,
                nonce: n.nonce,
                login_hint: n.login_hint,
                max_age_s: n.max_age_s,
                session_code: n.session_code,
            },
            Event::Job(j) => DeviceEvent::Job {
                operation: j.operation,
                steps: j.steps,
            },
            Event::JobRefused { reply, reason } => DeviceEvent::JobRefused { reason, reply },
            Event::JobAck(a) => DeviceEvent::JobAck {
                key_id: a.key_id,
                state: a.state,
                needs_reissue: a.needs_reissue,
                registered: a.registered,
            },
            Event::Refused(r) => DeviceEvent::Refused {
                code: r.code.as_str().to_owned(),
                reason: r.reason,
                needs_reissue: r.needs_reissue,
                step: r.step,
            },
            Event::Wait { retry_ms } => DeviceEvent::Wait { retry_ms },
            Event::Done { key_id, state } => DeviceEvent::Done { key_id, state },
            Event::Retransmission { reply } => DeviceEvent::Retransmission { reply },
            Event::HolderGraph(c) => DeviceEvent::HolderGraph {
                op: c.op.as_str().to_owned(),
                method: c.op.method().to_owned(),
                path: c.op.path().to_owned(),
                body: c.body,
            },
            other => DeviceEvent::Refused {
                code: RefusalCode::Internal.as_str().to_owned(),
                reason: format!("an event this version does not know: {other:?}"),
                needs_reissue: None,
                step: None,
            },
        }
    }

    /// The event as JSON text (byte strings as hex).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{\"event\":\"unknown\"}".into())
    }
}

/// The device half of one split session (see the module docs). `Send + Sync`; calls on
/// one half are serialized.
pub struct DeviceHalf {
    session: Mutex<DeviceSession>,
    hello: Vec<u8>,
    agent_id: String,
    public_key: String,
    generated_pem: Mutex<Option<Zeroizing<String>>>,
}

impl std::fmt::Debug for DeviceHalf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceHalf")
            .field("agent_id", &self.agent_id)
            .finish_non_exhaustive()
    }
}

impl DeviceHalf {
    /// A new session from its JSON configuration:
    ///
    /// ```json
    /// {
    ///   "agent_key_pem": "-----BEGIN PRIVATE KEY-----...",  // PKCS#8 P-256; absent: generated
    ///   "server_keys": ["-----BEGIN PUBLIC KEY-----..." /* or SEC1 hex */],
    ///   "capabilities": {"ctap_raw": true, "webauthn_platform": false,
    ///                    "can_reset_in_place": false, "interactive_holder_ui": true,
    ///                    "bio_ui": false, "max_job_steps": 64},
    ///   "host": {"name": "desk-12", "os": "linux", "elevated": false, "remote_session": false},
    ///   "agent_version": "cms-agent 1.0"
    /// }
    /// ```
    ///
    /// The `AgentHello` to send is [`DeviceHalf::hello`]. A generated agent key is handed
    /// out once by [`DeviceHalf::take_generated_key_pem`] (to keep for the next session:
    /// the agent id is its key id).
    pub fn new(config_json: &str) -> Result<DeviceHalf> {
        let cfg: DeviceHalfJson = json(config_json, "device half config")?;
        if cfg.server_keys.is_empty() {
            return Err(FacadeError::usage(
                "device half config: server_keys: at least one pinned server key",
            ));
        }
        let server_keys = cfg
            .server_keys
            .iter()
            .map(|k| public_key(k, "device half config: server_keys"))
            .collect::<Result<Vec<_>>>()?;
        let (agent_key, generated) = match &cfg.agent_key_pem {
            Some(pem) => (
                signing_key(&pem.0, "device half config: agent_key_pem")?,
                None,
            ),
            None => {
                let key = SigningKey::generate();
                let pem = key
                    .to_pkcs8_pem()
                    .map_err(|e| FacadeError::new(crate::ErrorKind::Internal, e.to_string()))?;
                (key, Some(pem))
            }
        };
        let public = agent_key.public_key();
        let c = cfg.capabilities;
        let config = DeviceConfig {
            agent_key,
            server_keys,
            caps: Capabilities {
                ctap_raw: c.ctap_raw,
                webauthn_platform: c.webauthn_platform,
                can_reset_in_place: c.can_reset_in_place,
                interactive_holder_ui: c.interactive_holder_ui,
                bio_ui: c.bio_ui,
                max_job_steps: c.max_job_steps,
            },
            host: HostClaim {
                name: cfg.host.name,
                os: cfg.host.os,
                elevated: cfg.host.elevated,
                remote_session: cfg.host.remote_session,
            },
            agent_version: cfg
                .agent_version
                .unwrap_or_else(|| format!("keysmith-facade {}", crate::version())),
        };
        let (session, hello) = DeviceSession::new(config, &mut OsEntropy);
        Ok(DeviceHalf {
            session: Mutex::new(session),
            hello,
            agent_id: hex(&public.key_id().0),
            public_key: sec1_hex(&public),
            generated_pem: Mutex::new(generated),
        })
    }

    fn session(&self) -> MutexGuard<'_, DeviceSession> {
        self.session.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The `AgentHello` to send first (the server half's [`ServerHalf::open`]).
    pub fn hello(&self) -> Vec<u8> {
        self.hello.clone()
    }

    /// The agent id (lower-case hex of SHA-256 of the agent's public key).
    pub fn agent_id(&self) -> String {
        self.agent_id.clone()
    }

    /// The agent's public key, SEC1 uncompressed, hex (what the server enrols).
    pub fn agent_public_key(&self) -> String {
        self.public_key.clone()
    }

    /// The agent key generated by [`DeviceHalf::new`] (PKCS#8 PEM), once; `None` when the
    /// config gave one or it was taken already.
    pub fn take_generated_key_pem(&self) -> Option<Zeroizing<String>> {
        self.generated_pem
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    /// A `DeviceReport` of `device`: its getInfo, transport and the serial it claims
    /// (`serial_claim`, else the device's own serial when known).
    pub fn report(&self, device: &Device, serial_claim: Option<String>) -> Result<Vec<u8>> {
        let mut d = device.operate()?;
        let transport = d.transport.as_str();
        let (serial, source) = match serial_claim {
            Some(s) => (Some(s), Some("caller".to_owned())),
            None => {
                let s = d.serial.clone();
                let src = s.as_ref().map(|_| "transport".to_owned());
                (s, src)
            }
        };
        Ok(self
            .session()
            .report(&mut d.client, transport, serial, source)?)
    }

    /// A `Request` from JSON: `{"operation": "work" | "activate" | "self_issue" |
    /// "verify" | "reset", "template": "...", "key_id": "..."}`.
    pub fn request(&self, request_json: &str) -> Result<Vec<u8>> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct R {
            operation: String,
            #[serde(default)]
            template: Option<String>,
            #[serde(default)]
            key_id: Option<String>,
        }
        let r: R = json(request_json, "split request")?;
        let operation = match r.operation.as_str() {
            "work" => RequestOp::Work,
            "activate" => RequestOp::Activate,
            "self_issue" => RequestOp::SelfIssue,
            "verify" => RequestOp::Verify,
            "reset" => RequestOp::Reset,
            other => {
                return Err(FacadeError::usage(format!(
                    "split request: operation {other:?}: expected work, activate, \
                     self_issue, verify or reset"
                )))
            }
        };
        Ok(self.session().request(Request {
            operation,
            template: r.template,
            key_id: r.key_id,
        })?)
    }

    /// A `Ready` poll ("anything for me?").
    pub fn ready(&self) -> Result<Vec<u8>> {
        Ok(self.session().ready()?)
    }

    /// A `HolderAuth` with the holder's ID token (never logged; the copy made here is
    /// zeroized).
    pub fn holder_auth(&self, id_token: &str) -> Result<Vec<u8>> {
        Ok(self
            .session()
            .holder_auth(Zeroizing::new(id_token.to_owned()))?)
    }

    /// The answer to a [`DeviceEvent::HolderGraph`] call, as JSON: `{"op", "status",
    /// "body", "error"?, "request_id"?}` (`status` 0 with `error` when no answer came);
    /// returns the signed `HolderGraphResult` to send.
    pub fn holder_graph_result(&self, result_json: &str) -> Result<Vec<u8>> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct R {
            op: String,
            status: u16,
            #[serde(default)]
            body: String,
            #[serde(default)]
            error: Option<String>,
            #[serde(default)]
            request_id: Option<String>,
        }
        let r: R = json(result_json, "holder Graph result")?;
        let op = keysmith_wire::HolderGraphOp::parse(&r.op).ok_or_else(|| {
            FacadeError::usage(format!(
                "holder Graph result: unknown op {:?} (creation_options, register)",
                r.op
            ))
        })?;
        Ok(self
            .session()
            .holder_graph_result(keysmith_wire::HolderGraphResult {
                op,
                status: r.status,
                body: r.body,
                error: r.error,
                request_id: r.request_id,
            })?)
    }

    /// An `Abort` of the session's current work (`cancelled`, `key_removed`, ...).
    pub fn abort(&self, reason: &str) -> Result<Vec<u8>> {
        Ok(self.session().abort(None, reason, None)?)
    }

    /// Takes a server message received at monotonic `now_ms`.
    pub fn receive(&self, bytes: &[u8], now_ms: u64) -> Result<DeviceEvent> {
        let event = self.session().receive(bytes, now_ms)?;
        Ok(DeviceEvent::from_event(event))
    }

    /// Runs the job [`DeviceHalf::receive`] accepted on `device` at monotonic `now_ms`,
    /// asking `ui` for PINs; returns the signed `JobResult` (or `Abort`) to send.
    pub fn run_job(
        &self,
        device: &Device,
        now_ms: u64,
        ui: &mut dyn HolderPrompts,
    ) -> Result<Vec<u8>> {
        let mut d = device.operate()?;
        let mut ui = Ui(Mutex::new(ui));
        Ok(self.session().run_job(now_ms, &mut d.client, &mut ui)?)
    }

    /// Ends the session (the session key and any remembered PIN are zeroized).
    pub fn close(&self) {
        self.session().close();
    }
}

mod describe;
mod server;

pub use describe::describe;
pub use server::{ServerHalf, ServerOpened, StationWorkStatus};
