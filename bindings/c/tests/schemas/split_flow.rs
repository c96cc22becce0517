//! The split deployment through the C ABI, both halves in this process: a station issues a
//! key queued by an operator, then the holder activates it after signing in. Every JSON
//! document of `ks_device_half_*`, `ks_server_half_*` and `ks_wire_describe` is recorded,
//! and each message that crosses is described.

use std::ffi::{c_char, c_void, CString};
use std::path::Path;
use std::ptr::null_mut;

use entra_graph::emulator::Emulator;
use keysmith::*;
use keysmith_testkit::{softkey_spec, ALEX};

use crate::abi::{ok, take, Device, Docs, Session};

fn c(s: &str) -> CString {
    CString::new(s).expect("no NUL")
}

/// Writes the test's holder PIN.
unsafe extern "C" fn on_pin(
    _user: *mut c_void,
    _kind: i32,
    _min_len: u32,
    _confirm: i32,
    buf: *mut c_char,
    buf_len: usize,
) -> i64 {
    let pin = crate::PIN.as_bytes();
    if pin.len() > buf_len {
        return -1;
    }
    // SAFETY: the library gives a writable buffer of buf_len bytes.
    unsafe { std::ptr::copy_nonoverlapping(pin.as_ptr(), buf.cast::<u8>(), pin.len()) };
    i64::try_from(pin.len()).unwrap_or(-1)
}

/// A message buffer from the library.
struct Msg(*mut u8, usize);

impl Msg {
    fn bytes(&self) -> &[u8] {
        // SAFETY: a library buffer of this length, alive until dropped.
        unsafe { std::slice::from_raw_parts(self.0, self.1) }
    }
}

impl Drop for Msg {
    fn drop(&mut self) {
        // SAFETY: from the library with its length, freed once.
        unsafe { ks_bytes_free(self.0, self.1) };
    }
}

fn msg(what: &str, f: impl FnOnce(*mut *mut u8, *mut usize) -> ks_status) -> Msg {
    let (mut p, mut n) = (null_mut(), 0);
    ok(f(&mut p, &mut n), what);
    Msg(p, n)
}

fn describe(docs: &mut Docs, m: &[u8]) {
    let mut p = null_mut();
    // SAFETY: a valid buffer and out pointer.
    ok(
        unsafe { ks_wire_describe(m.as_ptr(), m.len(), &mut p) },
        "ks_wire_describe",
    );
    docs.add("wire-message", &take(p));
}

struct Halves<'a> {
    server: *mut ks_server_half,
    device: *mut ks_device_half,
    session_id: String,
    clock: u64,
    docs: &'a mut Docs,
}

impl Halves<'_> {
    /// Sends a device message to the server half, gives the reply to the device half and
    /// returns its event; jobs are run on `key` and their results sent, until another event.
    fn exchange(&mut self, key: &Device, mut m: Msg) -> serde_json::Value {
        loop {
            describe(self.docs, m.bytes());
            let sid = c(&self.session_id);
            let reply = msg("ks_server_half_session_handle", |o, n| {
                // SAFETY: live handle, valid strings, buffers and out pointers.
                unsafe {
                    ks_server_half_session_handle(
                        self.server,
                        sid.as_ptr(),
                        m.bytes().as_ptr(),
                        m.1,
                        0,
                        o,
                        n,
                    )
                }
            });
            let event = self.receive(&reply);
            if event["event"] != "job" {
                return event;
            }
            self.clock += 1;
            let clock = self.clock;
            m = msg("ks_device_half_run_job", |o, n| {
                // SAFETY: live handles, valid callbacks and out pointers.
                unsafe {
                    ks_device_half_run_job(
                        self.device,
                        key.0,
                        clock,
                        Some(on_pin),
                        None,
                        null_mut(),
                        o,
                        n,
                    )
                }
            });
        }
    }

    fn receive(&mut self, reply: &Msg) -> serde_json::Value {
        describe(self.docs, reply.bytes());
        self.clock += 1;
        let mut p = null_mut();
        // SAFETY: live handle, a valid buffer and out pointer.
        ok(
            unsafe { ks_device_half_receive(self.device, reply.0, reply.1, self.clock, &mut p) },
            "ks_device_half_receive",
        );
        self.docs.add("device-half-event", &take(p))
    }
}

impl Drop for Halves<'_> {
    fn drop(&mut self) {
        // SAFETY: a handle from ks_device_half_open, freed once.
        unsafe { ks_device_half_free(self.device) };
    }
}

/// Opens a device half of `class` against `server`, enrols it and establishes a session.
fn connect<'a>(
    docs: &'a mut Docs,
    server: *mut ks_server_half,
    server_pem: &str,
    class: &str,
    work: Option<&str>,
) -> (Halves<'a>, Option<String>) {
    let config = serde_json::json!({
        "server_keys": [server_pem],
        "capabilities": {"interactive_holder_ui": class == "holder", "max_job_steps": 64},
        "host": {"name": "schema-check", "os": "linux", "elevated": false},
        "agent_version": "schemas.rs",
    })
    .to_string();
    docs.add("device-half-config", &config);
    let cfg = c(&config);
    let mut device = null_mut();
    // SAFETY: valid string and out pointer.
    ok(
        unsafe { ks_device_half_open(cfg.as_ptr(), &mut device) },
        "ks_device_half_open",
    );
    let mut p = null_mut();
    // SAFETY: live handle, valid out pointer.
    ok(
        unsafe { ks_device_half_agent(device, &mut p) },
        "ks_device_half_agent",
    );
    let agent = docs.add("device-half-agent", &take(p));
    let (pk, cl) = (c(agent["agent_public_key"].as_str().unwrap()), c(class));
    let mut id = null_mut();
    // SAFETY: live handle, valid strings and out pointer.
    ok(
        unsafe { ks_server_half_agent_add(server, pk.as_ptr(), cl.as_ptr(), 1, &mut id) },
        "ks_server_half_agent_add",
    );
    let agent_id = take(id);
    let work_id = work.map(|request| {
        docs.add("station-work-request", request);
        let (a, r, actor) = (c(&agent_id), c(request), c("operator:schemas"));
        let mut w = null_mut();
        // SAFETY: live handle, valid strings and out pointer.
        ok(
            unsafe {
                ks_server_half_work_queue(server, a.as_ptr(), r.as_ptr(), actor.as_ptr(), &mut w)
            },
            "ks_server_half_work_queue",
        );
        take(w)
    });
    // SAFETY: live handle, valid out pointers.
    let hello = msg("ks_device_half_hello", |o, n| unsafe {
        ks_device_half_hello(device, o, n)
    });
    describe(docs, hello.bytes());
    let mut sid = null_mut();
    let reply = msg("ks_server_half_session_open", |o, n| {
        // SAFETY: live handle, a valid buffer and out pointers.
        unsafe { ks_server_half_session_open(server, hello.0, hello.1, 0, &mut sid, o, n) }
    });
    let mut halves = Halves {
        server,
        device,
        session_id: take(sid),
        clock: 0,
        docs,
    };
    let event = halves.receive(&reply);
    assert_eq!(event["event"], "established", "{event}");
    (halves, work_id)
}

fn work_get(docs: &mut Docs, server: *mut ks_server_half, work_id: &str) -> serde_json::Value {
    let w = c(work_id);
    let mut p = null_mut();
    // SAFETY: live handle, valid string and out pointer.
    ok(
        unsafe { ks_server_half_work_get(server, w.as_ptr(), &mut p) },
        "ks_server_half_work_get",
    );
    docs.add("station-work", &take(p))
}

/// Station issuance queued by an operator, then the holder's activation.
pub fn station_and_holder(docs: &mut Docs, session: &Session, emulator: &Emulator, dir: &Path) {
    let config = r#"{"allow_software_keys":true,"session_ttl_ms":600000,"message_ttl_ms":60000,"poll_ms":50}"#;
    docs.add("server-half-config", config);
    let cfg = c(config);
    let mut server = null_mut();
    // SAFETY: live session, valid string and out pointer.
    ok(
        unsafe { ks_server_half_open(session.0, cfg.as_ptr(), &mut server) },
        "ks_server_half_open",
    );
    let mut p = null_mut();
    // SAFETY: live handle, valid out pointer.
    ok(
        unsafe { ks_server_half_public_key(server, &mut p) },
        "ks_server_half_public_key",
    );
    let server_pem = take(p);
    let key = Device::open(&softkey_spec(dir, "split.json"));

    // The station: report the key, wait for the queued work, run the issuance.
    let request = format!(r#"{{"operation":"issue","user":"{ALEX}","template":"schema-self"}}"#);
    let (mut station, work_id) = connect(docs, server, &server_pem, "station", Some(&request));
    let work_id = work_id.unwrap();
    let sn = c("SN-SCHEMA-1");
    let report = msg("ks_device_half_report", |o, n| {
        // SAFETY: live handles, valid string and out pointers.
        unsafe { ks_device_half_report(station.device, key.0, sn.as_ptr(), o, n) }
    });
    let mut event = station.exchange(&key, report);
    if event["event"] == "wait" {
        let device = station.device;
        // SAFETY: live handle, valid out pointers.
        let ready = msg("ks_device_half_ready", |o, n| unsafe {
            ks_device_half_ready(device, o, n)
        });
        event = station.exchange(&key, ready);
    }
    assert_eq!(event["event"], "job_ack", "{event}");
    let key_id = event["key_id"].as_str().unwrap().to_owned();
    drop(station);
    let work = work_get(docs, server, &work_id);
    assert_eq!(work["state"], "done", "{work}");

    // The holder: ask to activate, sign in, run the activation with the PIN.
    let (mut holder, _) = connect(docs, server, &server_pem, "holder", None);
    let device = holder.device;
    let report = msg("ks_device_half_report", |o, n| {
        // SAFETY: live handles, NULL serial claim, valid out pointers.
        unsafe { ks_device_half_report(device, key.0, std::ptr::null(), o, n) }
    });
    holder.exchange(&key, report);
    let request = format!(r#"{{"operation":"activate","key_id":"{key_id}"}}"#);
    holder.docs.add("device-half-request", &request);
    let r = c(&request);
    let asked = msg("ks_device_half_request", |o, n| {
        // SAFETY: live handle, valid string and out pointers.
        unsafe { ks_device_half_request(device, r.as_ptr(), o, n) }
    });
    let event = holder.exchange(&key, asked);
    assert_eq!(event["event"], "need_holder_auth", "{event}");
    // A holder Graph answer nobody asked for (this template registers with the server's
    // permission): refused, the session unchanged.
    let result = r#"{"op":"creation_options","status":200,"body":"{}","request_id":null}"#;
    holder.docs.add("device-half-holder-graph-result", result);
    let rj = c(result);
    let (mut p, mut n) = (null_mut(), 0);
    // SAFETY: live handle, valid string and out pointers.
    let status = unsafe { ks_device_half_holder_graph_result(device, rj.as_ptr(), &mut p, &mut n) };
    assert_eq!(status, ks_status::KS_USAGE, "a result nobody asked for");
    assert!(p.is_null(), "nothing returned with a refusal");
    let token = crate::holder_token(
        emulator,
        ALEX,
        event["client_id"].as_str().unwrap(),
        event["nonce"].as_str().unwrap(),
    );
    let t = c(&token);
    let auth = msg("ks_device_half_holder_auth", |o, n| {
        // SAFETY: live handle, valid string and out pointers.
        unsafe { ks_device_half_holder_auth(device, t.as_ptr(), o, n) }
    });
    let event = holder.exchange(&key, auth);
    assert_eq!(event["event"], "job_ack", "{event}");
    assert_eq!(event["state"], "active", "{event}");
    drop(holder);
    // SAFETY: a handle from ks_server_half_open, freed once.
    unsafe { ks_server_half_free(server) };
}
