//! The engine's in-process API through the split protocol's in-memory link (issue 11):
//! a recording tap shows what crosses between the server half and the device half, and a
//! hostile relay drops, duplicates, replays, alters and delays messages. Each is refused
//! or harmless: a typed error, the key's state unchanged, nothing made twice, and a retry
//! works.

use std::cell::RefCell;
use std::rc::Rc;

use entra_graph::emulator::{Emulator, EmulatorConfig};
use fido_core::cbor::{self, Value};
use fido_transport::client::Authenticator;
use fido_transport::softkey::{SoftAuthenticator, SoftConfig, SoftTransport};
use lifecycle::engine::{key_id_for, Engine, EngineError, IssueRequest};
use lifecycle::remote::{with_relay, Relay};
use lifecycle::store::PinKey;
use lifecycle::template::{KeyTransport, TemplateSet};
use lifecycle::{CredentialState, DeviceError, DeviceFault, Error};

use crate::common::{now_ms, sqlite_engine, temp_dir, KIM};

const HOLDER_PIN: &str = "holder-pin-2468";
const KIM_ID: &str = "6e8a5a4e-5a0d-4e4c-9c8e-2f7c3d8a1b11";

fn template() -> TemplateSet {
    TemplateSet::from_toml_str(
        r#"
[passkey.entra]
idp = { connection = "contoso-entra", kind = "entra", graph_api_version = "beta" }
display_name = "{displayName} {serial}"
truncate_display_name = true
rp_id = "login.microsoft.com"
challenge_timeout_minutes = 60

[credential]
name = "split-standard"
passkey_templates = ["entra"]
user_assignment = { directory = "contoso-entra" }

[credential.fido2]
reset_before_issuance = true
always_uv = true
min_pin_length = 8
min_pin_length_rp_ids = ["login.microsoft.com"]
"#,
    )
    .expect("test template parses")
}

struct World {
    emulator: Emulator,
    engine: Engine,
    key: Authenticator<SoftTransport>,
    soft: SoftTransport,
}

fn world(name: &str) -> World {
    let emulator = Emulator::start(EmulatorConfig::default()).expect("emulator");
    let db = temp_dir(&format!("split-{name}")).join("keysmith.db");
    let engine = sqlite_engine(&emulator, &db, "station-a", 7);
    engine.add_template(template()).expect("template loads");
    let soft = SoftTransport::new(SoftAuthenticator::new(SoftConfig::default()).expect("softkey"));
    World {
        emulator,
        engine,
        key: Authenticator::new(soft.clone()),
        soft,
    }
}

fn request() -> IssueRequest {
    IssueRequest {
        actor: "operator:alice".into(),
        user: KIM.into(),
        serial: "SN0001".into(),
        transport: KeyTransport::Usb,
        can_reset_in_place: true,
    }
}

/// The message kind (envelope key 1) and body (key 6) of a COSE_Sign1 message, read
/// without verifying (the tap only looks).
fn kind_and_body(bytes: &[u8]) -> Option<(u64, Value)> {
    let Value::Tag(18, inner) = cbor::decode(bytes).ok()? else {
        return None;
    };
    let Value::Array(parts) = *inner else {
        return None;
    };
    let Value::Bytes(payload) = parts.get(2)? else {
        return None;
    };
    let Value::Map(env) = cbor::decode(payload).ok()? else {
        return None;
    };
    let get = |k: u64| env.iter().find(|(key, _)| *key == Value::Unsigned(k));
    let kind = match get(1)? {
        (_, Value::Unsigned(k)) => *k,
        _ => return None,
    };
    Some((kind, get(6).map(|(_, v)| v.clone()).unwrap_or(Value::Null)))
}

const JOB: u64 = 34;
const JOB_RESULT: u64 = 6;

/// What the relay does.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Carries everything.
    Pass,
    /// Drops every job.
    DropJobs,
    /// Replaces every job with the first job recorded in an earlier session.
    ReplayOldJob,
    /// Delivers every message twice, both ways.
    Duplicate,
    /// Flips one bit in every job result.
    FlipResults,
    /// The device half waits longer than a job's ttl before running it.
    Delay,
}

struct Tap {
    mode: Mode,
    to_device: Vec<Vec<u8>>,
    to_server: Vec<Vec<u8>>,
    old_job: Option<Vec<u8>>,
}

impl Tap {
    fn new(mode: Mode) -> Rc<RefCell<Tap>> {
        Rc::new(RefCell::new(Tap {
            mode,
            to_device: Vec::new(),
            to_server: Vec::new(),
            old_job: None,
        }))
    }
    fn all(&self) -> impl Iterator<Item = &Vec<u8>> {
        self.to_device.iter().chain(self.to_server.iter())
    }
}

impl Relay for Tap {
    fn to_device(&mut self, bytes: Vec<u8>) -> Vec<Vec<u8>> {
        self.to_device.push(bytes.clone());
        let is_job = kind_and_body(&bytes).is_some_and(|(k, _)| k == JOB);
        match self.mode {
            Mode::DropJobs if is_job => {
                self.old_job.get_or_insert(bytes);
                vec![]
            }
            Mode::ReplayOldJob if is_job => vec![self.old_job.clone().expect("a recorded job")],
            Mode::Duplicate => vec![bytes.clone(), bytes],
            _ => vec![bytes],
        }
    }
    fn to_server(&mut self, bytes: Vec<u8>) -> Vec<Vec<u8>> {
        self.to_server.push(bytes.clone());
        match self.mode {
            Mode::Duplicate => vec![bytes.clone(), bytes],
            Mode::FlipResults if kind_and_body(&bytes).is_some_and(|(k, _)| k == JOB_RESULT) => {
                let mut b = bytes;
                let i = b.len() / 2;
                b[i] ^= 0x04;
                vec![b]
            }
            _ => vec![bytes],
        }
    }
    fn elapse_ms(&mut self) -> u64 {
        if self.mode == Mode::Delay {
            11 * 60 * 1000
        } else {
            0
        }
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn issue(w: &mut World, now: u64) -> Result<lifecycle::store::KeyRecord, Error> {
    w.engine
        .issue(&request(), "split-standard", &mut w.key, now)
}

fn key_id(w: &mut World) -> String {
    let aaguid = keysmith_device::DeviceOps::info(&mut w.key)
        .expect("getInfo")
        .aaguid;
    key_id_for(&aaguid, "SN0001")
}

#[test]
fn no_pin_crosses_the_link_in_clear() {
    let mut w = world("tap");
    let tap = Tap::new(Mode::Pass);
    let now = now_ms();
    let key = with_relay(tap.clone(), || issue(&mut w, now)).expect("issue");
    assert_eq!(key.state, CredentialState::Issued);
    let transport = w
        .engine
        .store()
        .get_transport_pin(&key.key_id, &PinKey::from_bytes([7; 32]))
        .expect("store")
        .expect("a transport PIN");
    let transport = transport.expose().to_owned();
    let key = with_relay(tap.clone(), || {
        w.engine
            .activate("self:kim", &key.key_id, HOLDER_PIN, &mut w.key, now + 1_000)
    })
    .expect("activate");
    assert_eq!(key.state, CredentialState::Active);
    let signed = with_relay(tap.clone(), || {
        w.engine.sign_in(&key.key_id, HOLDER_PIN, &mut w.key)
    })
    .expect("sign-in");
    assert_eq!(signed.len(), 1);

    let tap = tap.borrow();
    assert!(tap.to_device.len() >= 6 && tap.to_server.len() >= 6);
    for m in tap.all() {
        assert!(
            !contains(m, HOLDER_PIN.as_bytes()),
            "the holder's PIN crossed"
        );
        assert!(
            !contains(m, transport.as_bytes()),
            "the transport PIN crossed in clear"
        );
    }
    // The transport PIN did cross, sealed: a job carried a secret.
    let sealed = tap
        .to_device
        .iter()
        .filter_map(|m| kind_and_body(m))
        .filter(|(k, _)| *k == JOB)
        .any(|(_, body)| match body {
            Value::Map(b) => b.iter().any(|(k, v)| {
                *k == Value::Unsigned(6) && matches!(v, Value::Array(a) if !a.is_empty())
            }),
            _ => false,
        });
    assert!(sealed, "no job carried a sealed secret");
    assert_eq!(w.emulator.methods(KIM_ID).len(), 1);
}

#[test]
fn a_dropped_or_replayed_job_fails_typed_and_a_retry_works() {
    let mut w = world("drop");
    let now = now_ms();
    let tap = Tap::new(Mode::DropJobs);
    let e = with_relay(tap.clone(), || issue(&mut w, now)).expect_err("no job arrived");
    assert!(
        matches!(
            e,
            Error::Engine(EngineError::Device {
                step: "link",
                cause: DeviceError::Fault(DeviceFault::Io { .. })
            })
        ),
        "{e:?}"
    );
    let id = key_id(&mut w);
    assert_eq!(
        w.engine.key(&id).expect("key").state,
        CredentialState::Blank
    );
    w.soft
        .with(|s| assert!(s.state().pin.is_none(), "nothing ran on the key"));

    // The dropped job, replayed into the next session: refused (another session's key and
    // id), nothing runs.
    tap.borrow_mut().mode = Mode::ReplayOldJob;
    let e = with_relay(tap.clone(), || issue(&mut w, now + 1)).expect_err("replay refused");
    assert!(
        matches!(e, Error::Engine(EngineError::Device { .. })),
        "{e:?}"
    );
    assert_eq!(
        w.engine.key(&id).expect("key").state,
        CredentialState::Blank
    );
    w.soft
        .with(|s| assert!(s.state().pin.is_none(), "the replayed job never ran"));

    let key = issue(&mut w, now + 2).expect("retry");
    assert_eq!(key.state, CredentialState::Issued);
    assert_eq!(w.engine.passkeys(&key.key_id).expect("passkeys").len(), 1);
}

#[test]
fn duplicated_messages_make_nothing_twice() {
    let mut w = world("dup");
    let now = now_ms();
    let tap = Tap::new(Mode::Duplicate);
    let key = with_relay(tap.clone(), || issue(&mut w, now)).expect("issue");
    let key = with_relay(tap.clone(), || {
        w.engine
            .activate("self:kim", &key.key_id, HOLDER_PIN, &mut w.key, now + 1_000)
    })
    .expect("activate");
    assert_eq!(key.state, CredentialState::Active);
    assert_eq!(w.engine.passkeys(&key.key_id).expect("passkeys").len(), 1);
    w.soft
        .with(|s| assert_eq!(s.state().credentials.len(), 1, "one credential on the key"));
    assert_eq!(
        w.emulator.methods(KIM_ID).len(),
        1,
        "one passkey at the IdP"
    );
}

#[test]
fn an_altered_result_is_refused_and_the_key_state_kept() {
    let mut w = world("flip");
    let now = now_ms();
    let tap = Tap::new(Mode::FlipResults);
    let e = with_relay(tap.clone(), || issue(&mut w, now)).expect_err("altered result");
    assert!(
        matches!(
            e,
            Error::Engine(EngineError::Device {
                step: "link",
                cause: DeviceError::Fault(DeviceFault::Io { .. })
            })
        ),
        "{e:?}"
    );
    let id = key_id(&mut w);
    let rec = w.engine.key(&id).expect("key");
    assert_eq!(rec.state, CredentialState::Blank);
    assert!(w.engine.passkeys(&id).expect("passkeys").is_empty());
    assert!(w.emulator.methods(KIM_ID).is_empty());
    // The key may be configured (the result was lost, not the job): issuance starts over.
    let key = issue(&mut w, now + 1).expect("retry");
    assert_eq!(key.state, CredentialState::Issued);
}

#[test]
fn a_job_past_its_ttl_runs_no_step() {
    let mut w = world("ttl");
    let now = now_ms();
    let tap = Tap::new(Mode::Delay);
    let e = with_relay(tap.clone(), || issue(&mut w, now)).expect_err("expired");
    assert!(
        matches!(
            e,
            Error::Engine(EngineError::Device {
                step: "job",
                cause: DeviceError::Fault(DeviceFault::Timeout(_))
            })
        ),
        "{e:?}"
    );
    w.soft.with(|s| {
        assert!(s.state().pin.is_none(), "no step ran");
        assert!(s.state().credentials.is_empty());
    });
    let id = key_id(&mut w);
    assert_eq!(
        w.engine.key(&id).expect("key").state,
        CredentialState::Blank
    );
}

#[test]
fn device_errors_keep_kind_reason_status_and_retries_through_the_link() {
    let mut w = world("errors");
    let now = now_ms();
    let key = issue(&mut w, now).expect("issue");
    let key = w
        .engine
        .activate("self:kim", &key.key_id, HOLDER_PIN, &mut w.key, now + 1)
        .expect("activate");
    let e = w
        .engine
        .sign_in(&key.key_id, "wrong-pin-0000", &mut w.key)
        .expect_err("a wrong PIN");
    match &e {
        Error::Engine(EngineError::Device { step, cause }) => {
            assert_eq!(*step, "getPinUvAuthToken");
            assert!(matches!(
                cause,
                DeviceError::Fault(DeviceFault::PinInvalid {
                    retries_left: 7,
                    power_cycle_required: false
                })
            ));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(e.reason(), "pin_invalid");
    assert_eq!(e.ctap_status(), Some(0x31));
    assert_eq!(e.retries_left(), Some(7));
}
