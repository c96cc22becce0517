//! CTAPHID transport tests: the blocking driver against the in-process key, scripted
//! misbehaving devices, the hidapi backend without devices, and interop with trussed's
//! `fido-authenticator` firmware (see `trussed_fw`).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use fido_core::ctaphid::{
    Cid, Command, HidError, HidErrorCode, KeepaliveStatus, MAX_MESSAGE_LEN, REPORT_LEN,
};
use fido_transport::hid::{
    self, CtapHidTransport, HidConfig, InProcessHid, ReportPipe, RequestContext,
};
use fido_transport::{Error, Progress, Transport, TransportKind};

fn hid_err(e: &Error) -> Option<&HidError> {
    match e {
        Error::Core(fido_core::Error::Hid(h)) => Some(h),
        _ => None,
    }
}

fn echo_key() -> InProcessHid {
    InProcessHid::from_fn(|req: &[u8], _ctx: &mut RequestContext<'_>| req.to_vec())
}

fn fast() -> HidConfig {
    HidConfig {
        inactivity_timeout: Duration::from_millis(300),
        transaction_timeout: Duration::from_secs(10),
        busy_backoff: Duration::from_millis(5),
        ..HidConfig::default()
    }
}

/// Reads the CID of a report.
fn cid_of(report: &[u8]) -> [u8; 4] {
    [report[0], report[1], report[2], report[3]]
}

fn init_report(cid: [u8; 4], cmd: u8, payload: &[u8]) -> Vec<u8> {
    let mut r = vec![0u8; REPORT_LEN];
    r[..4].copy_from_slice(&cid);
    r[4] = cmd | 0x80;
    r[5..7].copy_from_slice(&(payload.len() as u16).to_be_bytes());
    r[7..7 + payload.len()].copy_from_slice(payload);
    r
}

// ---------------------------------------------------------------------------------
// Round trips through the in-process key
// ---------------------------------------------------------------------------------

#[test]
fn round_trips_every_size_up_to_the_maximum() {
    let mut t = CtapHidTransport::with_config(echo_key(), fast()).unwrap();
    assert_eq!(t.kind(), TransportKind::InProcess);
    for len in 0..=MAX_MESSAGE_LEN {
        let msg: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
        let got = t.request(Command::Cbor, &msg, &mut |_| {}).unwrap();
        assert_eq!(got.len(), len);
        assert!(got == msg, "payload of {len} bytes changed in transit");
    }
    let too_big = vec![0u8; MAX_MESSAGE_LEN + 1];
    let err = t.request(Command::Cbor, &too_big, &mut |_| {}).unwrap_err();
    assert_eq!(
        hid_err(&err),
        Some(&HidError::MessageTooLarge {
            len: MAX_MESSAGE_LEN + 1
        })
    );
    // Still usable afterwards.
    assert_eq!(t.transact(&[0x04], &mut |_| {}).unwrap(), vec![0x04]);
}

#[test]
fn transact_through_dyn_transport_and_ping() {
    let t = CtapHidTransport::with_config(echo_key().with_name("test key"), fast()).unwrap();
    let mut t: Box<dyn Transport> = Box::new(t);
    assert_eq!(t.describe(), "test key");
    assert_eq!(
        t.transact(&[0x04, 0xa0], &mut |_| {}).unwrap(),
        [0x04, 0xa0]
    );
    assert!(matches!(t.power_cycle(), Err(Error::Unsupported(_))));

    let mut t = CtapHidTransport::with_config(echo_key(), fast()).unwrap();
    for len in [0usize, 1, 57, 58, 1000, MAX_MESSAGE_LEN] {
        t.ping(&vec![0x5a; len]).unwrap();
    }
    assert!(t.channel().is_allocatable());
}

#[test]
fn empty_cbor_response_is_a_typed_error() {
    let key = InProcessHid::from_fn(|_req: &[u8], _ctx: &mut RequestContext<'_>| Vec::new());
    let mut t = CtapHidTransport::with_config(key, fast()).unwrap();
    let err = t.transact(&[0x04], &mut |_| {}).unwrap_err();
    assert!(matches!(
        hid_err(&err),
        Some(HidError::LengthMismatch { len: 0, .. })
    ));
}

#[test]
fn wink_reaches_the_handler() {
    struct Winker(Arc<AtomicUsize>);
    impl hid::CtapHandler for Winker {
        fn handle(&mut self, req: &[u8], _ctx: &mut RequestContext<'_>) -> Vec<u8> {
            req.to_vec()
        }
        fn wink(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let winks = Arc::new(AtomicUsize::new(0));
    let mut t =
        CtapHidTransport::with_config(InProcessHid::new(Winker(winks.clone())), fast()).unwrap();
    t.wink().unwrap();
    t.wink().unwrap();
    assert_eq!(winks.load(Ordering::SeqCst), 2);
}

#[test]
fn ctap1_msg_is_refused_by_the_in_process_key() {
    let mut t = CtapHidTransport::with_config(echo_key(), fast()).unwrap();
    let err = t
        .request(Command::Msg, &[0, 3, 0, 0], &mut |_| {})
        .unwrap_err();
    assert_eq!(
        hid_err(&err),
        Some(&HidError::DeviceError(HidErrorCode::InvalidCmd))
    );
    assert_eq!(t.transact(&[0x04], &mut |_| {}).unwrap(), [0x04]);
}

// ---------------------------------------------------------------------------------
// Keepalives, cancel, timeouts
// ---------------------------------------------------------------------------------

#[test]
fn keepalives_reach_the_progress_callback() {
    let key = InProcessHid::from_fn(|req: &[u8], ctx: &mut RequestContext<'_>| {
        ctx.keepalive(KeepaliveStatus::Processing);
        std::thread::sleep(Duration::from_millis(20));
        ctx.keepalive(KeepaliveStatus::UpNeeded);
        std::thread::sleep(Duration::from_millis(20));
        ctx.keepalive(KeepaliveStatus::Other(9));
        req.to_vec()
    });
    let mut t = CtapHidTransport::with_config(key, fast()).unwrap();
    let mut seen = Vec::new();
    let out = t.transact(&[0x01, 0xa0], &mut |p| seen.push(p)).unwrap();
    assert_eq!(out, [0x01, 0xa0]);
    assert_eq!(
        seen,
        [Progress::Processing, Progress::UserPresenceNeeded],
        "unknown keepalive statuses are not reported"
    );
}

#[test]
fn keepalive_storm_is_absorbed() {
    let key = InProcessHid::from_fn(|req: &[u8], ctx: &mut RequestContext<'_>| {
        for _ in 0..500 {
            ctx.keepalive(KeepaliveStatus::Processing);
        }
        req.to_vec()
    });
    let mut t = CtapHidTransport::with_config(key, fast()).unwrap();
    let mut n = 0;
    let big = vec![0x33; 3000];
    assert_eq!(t.transact(&big, &mut |_| n += 1).unwrap(), big);
    assert_eq!(n, 500);
}

/// A key that waits for "user presence" (a touch that never comes) while sending
/// UPNEEDED keepalives, until the host cancels. Records whether it saw the cancel.
fn waiting_key(saw_cancel: Arc<AtomicBool>) -> InProcessHid {
    InProcessHid::from_fn(move |req: &[u8], ctx: &mut RequestContext<'_>| {
        if req.first() == Some(&0x04) {
            return vec![0x00];
        }
        let give_up = Instant::now() + Duration::from_secs(20);
        while Instant::now() < give_up {
            ctx.keepalive(KeepaliveStatus::UpNeeded);
            if ctx.is_cancelled() {
                saw_cancel.store(true, Ordering::SeqCst);
                return vec![0x2d];
            }
            std::thread::sleep(Duration::from_millis(30));
        }
        vec![0x00]
    })
}

#[test]
fn cancel_from_another_thread_while_waiting_for_touch() {
    let saw_cancel = Arc::new(AtomicBool::new(false));
    let mut t = CtapHidTransport::with_config(waiting_key(saw_cancel.clone()), fast()).unwrap();
    let token = t.cancel_token();
    let (touch_tx, touch_rx) = mpsc::channel::<()>();
    let canceller = std::thread::spawn(move || {
        touch_rx.recv().unwrap();
        std::thread::sleep(Duration::from_millis(50));
        token.cancel();
    });
    let start = Instant::now();
    let mut asked = false;
    let err = t
        .transact(&[0x01, 0xa0], &mut |p| {
            if p == Progress::UserPresenceNeeded && !asked {
                asked = true;
                touch_tx.send(()).unwrap();
            }
        })
        .unwrap_err();
    canceller.join().unwrap();
    assert!(matches!(err, Error::Cancelled), "{err:?}");
    assert!(start.elapsed() < Duration::from_secs(5));
    assert!(saw_cancel.load(Ordering::SeqCst), "key saw CTAPHID_CANCEL");
    // The next transaction works (the token was reset).
    assert_eq!(t.transact(&[0x04], &mut |_| {}).unwrap(), [0x00]);
}

#[test]
fn overall_timeout_cancels_on_the_wire() {
    let saw_cancel = Arc::new(AtomicBool::new(false));
    let config = HidConfig {
        transaction_timeout: Duration::from_millis(400),
        ..fast()
    };
    let mut t = CtapHidTransport::with_config(waiting_key(saw_cancel.clone()), config).unwrap();
    let start = Instant::now();
    let err = t.transact(&[0x01, 0xa0], &mut |_| {}).unwrap_err();
    assert!(
        matches!(err, Error::Timeout(d) if d == Duration::from_millis(400)),
        "{err:?}"
    );
    assert!(start.elapsed() < Duration::from_secs(3));
    assert!(saw_cancel.load(Ordering::SeqCst));
    assert_eq!(t.transact(&[0x04], &mut |_| {}).unwrap(), [0x00]);
}

#[test]
fn silent_key_times_out_and_the_transport_recovers() {
    let key = InProcessHid::from_fn(|req: &[u8], _ctx: &mut RequestContext<'_>| {
        if req.first() == Some(&0x07) {
            // Works without keepalives for far longer than the inactivity timeout.
            std::thread::sleep(Duration::from_millis(800));
        }
        req.to_vec()
    });
    let mut t = CtapHidTransport::with_config(key, fast()).unwrap();
    let start = Instant::now();
    let err = t.transact(&[0x07], &mut |_| {}).unwrap_err();
    assert!(
        matches!(err, Error::Timeout(d) if d == Duration::from_millis(300)),
        "{err:?}"
    );
    assert!(start.elapsed() < Duration::from_millis(750));
    // The late answer to 0x07 must not be taken for the answer to the next request.
    assert_eq!(
        t.transact(&[0x04, 1, 2], &mut |_| {}).unwrap(),
        [0x04, 1, 2]
    );
}

#[test]
fn cancel_before_start_is_cleared() {
    let mut t = CtapHidTransport::with_config(echo_key(), fast()).unwrap();
    t.cancel_token().cancel();
    // A transaction clears a stale request when it starts.
    assert_eq!(t.transact(&[0x04], &mut |_| {}).unwrap(), [0x04]);
}

// ---------------------------------------------------------------------------------
// Faults on the wire (in-process key with filters)
// ---------------------------------------------------------------------------------

/// A filter that rewrites only the first response report of CTAPHID_CBOR (0x90) it
/// sees with `f`, and drops the rest of that response if `drop_rest`.
fn corrupt_first_cbor_response(
    f: impl Fn(Vec<u8>) -> Vec<Vec<u8>> + Send + 'static,
    drop_rest: bool,
) -> impl FnMut(Vec<u8>) -> Vec<Vec<u8>> + Send + 'static {
    let mut state = 0u8; // 0: waiting, 1: corrupting this response, 2: done
    move |r: Vec<u8>| {
        let is_cbor_init = r.get(4) == Some(&0x90);
        match state {
            0 if is_cbor_init => {
                state = 1;
                f(r)
            }
            1 if r.get(4).is_some_and(|b| b & 0x80 == 0) => {
                if drop_rest {
                    vec![]
                } else {
                    vec![r]
                }
            }
            1 => {
                state = 2;
                vec![r]
            }
            _ => vec![r],
        }
    }
}

#[test]
fn interleaved_foreign_channel_frames_are_ignored() {
    let foreign = [0xde, 0xad, 0xbe, 0xef];
    let key = echo_key().filter_to_host(move |r| {
        let mut bogus_cont = r.clone();
        bogus_cont[..4].copy_from_slice(&foreign);
        bogus_cont[4] = 0x00;
        vec![
            init_report(foreign, 0x10, &[0x00; 50]),
            bogus_cont,
            init_report(foreign, 0x3f, &[0x06]),
            r,
        ]
    });
    let mut t = CtapHidTransport::with_config(key, fast()).unwrap();
    let msg: Vec<u8> = (0..2000u32).map(|i| i as u8).collect();
    assert_eq!(t.transact(&msg, &mut |_| {}).unwrap(), msg);
    t.ping(b"still fine").unwrap();
}

#[test]
fn truncated_report_is_a_typed_error_and_recovers() {
    let key = echo_key().filter_to_host(corrupt_first_cbor_response(
        |r| vec![r[..30].to_vec()],
        true,
    ));
    let mut t = CtapHidTransport::with_config(key, fast()).unwrap();
    let err = t.transact(&[0x04; 100], &mut |_| {}).unwrap_err();
    assert_eq!(hid_err(&err), Some(&HidError::ReportLength { len: 30 }));
    assert_eq!(t.transact(&[0x04; 100], &mut |_| {}).unwrap(), [0x04; 100]);
}

#[test]
fn overlong_report_is_a_typed_error() {
    let key = echo_key().filter_to_host(corrupt_first_cbor_response(
        |mut r| {
            r.push(0);
            vec![r]
        },
        true,
    ));
    let mut t = CtapHidTransport::with_config(key, fast()).unwrap();
    let err = t.transact(&[0x04], &mut |_| {}).unwrap_err();
    assert_eq!(hid_err(&err), Some(&HidError::ReportLength { len: 65 }));
}

#[test]
fn out_of_sequence_continuation_is_a_typed_error() {
    // Swap the first two continuations of the response.
    let mut held: Option<Vec<u8>> = None;
    let mut done = false;
    let key = echo_key().filter_to_host(move |r| {
        if done || r[4] & 0x80 != 0 {
            return vec![r];
        }
        match (r[4], held.take()) {
            (0, None) => {
                held = Some(r);
                vec![]
            }
            (1, Some(first)) => {
                done = true;
                vec![r, first]
            }
            (_, h) => {
                held = h;
                vec![r]
            }
        }
    });
    let mut t = CtapHidTransport::with_config(key, fast()).unwrap();
    let err = t.transact(&[0x01; 200], &mut |_| {}).unwrap_err();
    assert_eq!(
        hid_err(&err),
        Some(&HidError::UnexpectedSeq {
            expected: 0,
            got: 1
        })
    );
    assert_eq!(t.transact(&[0x01; 200], &mut |_| {}).unwrap(), [0x01; 200]);
}

#[test]
fn oversize_declared_length_is_a_typed_error() {
    let key = echo_key().filter_to_host(corrupt_first_cbor_response(
        |mut r| {
            r[5] = 0xff;
            r[6] = 0xff;
            vec![r]
        },
        true,
    ));
    let mut t = CtapHidTransport::with_config(key, fast()).unwrap();
    let err = t.transact(&[0x04], &mut |_| {}).unwrap_err();
    assert_eq!(
        hid_err(&err),
        Some(&HidError::MessageTooLarge { len: 0xffff })
    );
    assert_eq!(t.transact(&[0x04], &mut |_| {}).unwrap(), [0x04]);
}

#[test]
fn garbage_error_codes_are_typed_errors() {
    for (payload, expected) in [
        (vec![0x55], HidError::DeviceError(HidErrorCode::Other(0x55))),
        (vec![0x04], HidError::DeviceError(HidErrorCode::InvalidSeq)),
        (
            vec![],
            HidError::LengthMismatch {
                field: "ERROR",
                len: 0,
                reason: "must carry an error code",
            },
        ),
    ] {
        let key = echo_key().filter_to_host(corrupt_first_cbor_response(
            move |r| vec![init_report(cid_of(&r), 0x3f, &payload)],
            true,
        ));
        let mut t = CtapHidTransport::with_config(key, fast()).unwrap();
        let err = t.transact(&[0x04], &mut |_| {}).unwrap_err();
        assert_eq!(hid_err(&err), Some(&expected));
    }
}

#[test]
fn wrong_response_command_is_a_typed_error() {
    let key = echo_key().filter_to_host(corrupt_first_cbor_response(
        |mut r| {
            r[4] = 0x81; // PING instead of CBOR
            vec![r]
        },
        true,
    ));
    let mut t = CtapHidTransport::with_config(key, fast()).unwrap();
    let err = t.transact(&[0x04], &mut |_| {}).unwrap_err();
    assert_eq!(
        hid_err(&err),
        Some(&HidError::UnexpectedCommand {
            expected: 0x10,
            got: 0x01
        })
    );
}

#[test]
fn dropped_report_times_out_then_recovers() {
    let key = echo_key().filter_to_host(corrupt_first_cbor_response(|r| vec![r], true));
    let mut t = CtapHidTransport::with_config(key, fast()).unwrap();
    let err = t.transact(&[0x04; 300], &mut |_| {}).unwrap_err();
    assert!(matches!(err, Error::Timeout(_)), "{err:?}");
    assert_eq!(t.transact(&[0x04; 300], &mut |_| {}).unwrap(), [0x04; 300]);
}

#[test]
fn dropped_request_report_gets_msg_timeout_from_the_key() {
    // The key never sees the first continuation of the request: it answers
    // ERR_MSG_TIMEOUT (or INVALID_SEQ when the next one arrives).
    let mut dropped = false;
    let key = echo_key().filter_to_device(move |r| {
        if !dropped && r[4] == 0x00 {
            dropped = true;
            return vec![];
        }
        vec![r]
    });
    let mut t = CtapHidTransport::with_config(key, fast()).unwrap();
    let err = t.transact(&[0x04; 200], &mut |_| {}).unwrap_err();
    assert_eq!(
        hid_err(&err),
        Some(&HidError::DeviceError(HidErrorCode::InvalidSeq))
    );
    assert_eq!(t.transact(&[0x04; 200], &mut |_| {}).unwrap(), [0x04; 200]);
}

#[test]
fn stopped_key_is_an_io_error_not_a_hang() {
    let key = InProcessHid::from_fn(|_req: &[u8], _ctx: &mut RequestContext<'_>| -> Vec<u8> {
        panic!("handler crashed")
    });
    // A long inactivity timeout: only the closed pipe can end this transaction.
    let config = HidConfig {
        inactivity_timeout: Duration::from_secs(20),
        ..fast()
    };
    let mut t = CtapHidTransport::with_config(key, config).unwrap();
    let start = Instant::now();
    let err = t.transact(&[0x04], &mut |_| {}).unwrap_err();
    assert!(matches!(err, Error::Hid { .. }), "{err:?}");
    assert!(start.elapsed() < Duration::from_secs(10));
}

#[test]
fn real_busy_from_another_channel_is_retried() {
    // Another application holds the key (a long request on its own channel) while we
    // send ours: the device state machine answers ERR_CHANNEL_BUSY and we retry.
    let key = InProcessHid::from_fn(|req: &[u8], ctx: &mut RequestContext<'_>| {
        if req.first() == Some(&0x99) {
            let until = Instant::now() + Duration::from_millis(300);
            while Instant::now() < until {
                ctx.keepalive(KeepaliveStatus::Processing);
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        req.to_vec()
    });
    let busy_seen = Arc::new(AtomicUsize::new(0));
    let seen = busy_seen.clone();
    let key = key.filter_to_host(move |r| {
        if r[4] == 0xbf && r[7] == 0x06 {
            seen.fetch_add(1, Ordering::SeqCst);
        }
        vec![r]
    });
    let config = HidConfig {
        busy_backoff: Duration::from_millis(50),
        ..fast()
    };
    let mut t = CtapHidTransport::with_config(key, config).unwrap();
    let ours = t.channel();
    // The other application: INIT on broadcast (gets the next channel), then a request.
    let other = [0, 0, 0, 2];
    assert_ne!(ours.to_bytes(), other);
    let pipe = t.pipe_mut();
    pipe.inject_to_device(init_report([0xff; 4], 0x06, &[7; 8]))
        .unwrap();
    pipe.inject_to_device(init_report(other, 0x10, &[0x99]))
        .unwrap();
    std::thread::sleep(Duration::from_millis(30));
    assert_eq!(t.transact(&[0x04, 7], &mut |_| {}).unwrap(), [0x04, 7]);
    assert!(
        busy_seen.load(Ordering::SeqCst) >= 1,
        "the key was busy at first"
    );
}

// ---------------------------------------------------------------------------------
// A scripted device: busy, invalid channel, garbage
// ---------------------------------------------------------------------------------

type Script = Box<dyn FnMut(&[u8; REPORT_LEN]) -> Vec<Vec<u8>> + Send>;

/// A pipe whose device side is a script: every written report produces the reports
/// the script returns.
struct ScriptedPipe {
    script: Script,
    out: VecDeque<Vec<u8>>,
}

impl ScriptedPipe {
    fn new(script: impl FnMut(&[u8; REPORT_LEN]) -> Vec<Vec<u8>> + Send + 'static) -> Self {
        ScriptedPipe {
            script: Box::new(script),
            out: VecDeque::new(),
        }
    }
}

impl std::fmt::Debug for ScriptedPipe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScriptedPipe").finish_non_exhaustive()
    }
}

impl ReportPipe for ScriptedPipe {
    fn write_report(&mut self, report: &[u8; REPORT_LEN]) -> Result<(), Error> {
        let replies = (self.script)(report);
        self.out.extend(replies);
        Ok(())
    }
    fn read_report(&mut self, timeout: Duration) -> Result<Option<Vec<u8>>, Error> {
        match self.out.pop_front() {
            Some(r) => Ok(Some(r)),
            None => {
                std::thread::sleep(timeout.min(Duration::from_millis(5)));
                Ok(None)
            }
        }
    }
    fn describe(&self) -> String {
        "scripted".into()
    }
}

/// The INIT answer to an INIT request report, allocating `cid`.
fn init_answer(req: &[u8; REPORT_LEN], cid: u32) -> Vec<u8> {
    let mut body = [0u8; 17];
    body[..8].copy_from_slice(&req[7..15]);
    body[8..12].copy_from_slice(&cid.to_be_bytes());
    body[12] = 2;
    body[16] = 0x05; // WINK | CBOR
    init_report(cid_of(req), 0x06, &body)
}

#[test]
fn busy_key_is_retried_with_backoff() {
    let cbor_requests = Arc::new(AtomicUsize::new(0));
    let seen = cbor_requests.clone();
    let pipe = ScriptedPipe::new(move |req| match req[4] {
        0x86 => vec![init_answer(req, 0x0100_0001)],
        0x90 => {
            let n = seen.fetch_add(1, Ordering::SeqCst);
            if n < 3 {
                vec![init_report(cid_of(req), 0x3f, &[0x06])]
            } else {
                vec![init_report(cid_of(req), 0x10, &[0x00, 0xa0])]
            }
        }
        _ => vec![],
    });
    let mut t = CtapHidTransport::with_config(pipe, fast()).unwrap();
    assert_eq!(t.transact(&[0x04], &mut |_| {}).unwrap(), [0x00, 0xa0]);
    assert_eq!(cbor_requests.load(Ordering::SeqCst), 4);
}

#[test]
fn busy_beyond_the_retry_budget_is_a_typed_error() {
    let cbor_requests = Arc::new(AtomicUsize::new(0));
    let seen = cbor_requests.clone();
    let pipe = ScriptedPipe::new(move |req| match req[4] {
        0x86 => vec![init_answer(req, 0x0100_0001)],
        0x90 => {
            seen.fetch_add(1, Ordering::SeqCst);
            vec![init_report(cid_of(req), 0x3f, &[0x06])]
        }
        _ => vec![],
    });
    let config = HidConfig {
        busy_retries: 2,
        ..fast()
    };
    let mut t = CtapHidTransport::with_config(pipe, config).unwrap();
    let err = t.transact(&[0x04], &mut |_| {}).unwrap_err();
    assert_eq!(hid_err(&err), Some(&HidError::ChannelBusy));
    assert_eq!(cbor_requests.load(Ordering::SeqCst), 3);
}

#[test]
fn invalid_channel_triggers_one_reinit() {
    let inits = Arc::new(AtomicUsize::new(0));
    let seen = inits.clone();
    let pipe = ScriptedPipe::new(move |req| match req[4] {
        0x86 => {
            let n = seen.fetch_add(1, Ordering::SeqCst) as u32;
            vec![init_answer(req, 0x0100_0001 + n)]
        }
        // Only the second channel is accepted.
        0x90 if cid_of(req) == [1, 0, 0, 2] => {
            vec![init_report(cid_of(req), 0x10, &[0x00])]
        }
        0x90 => vec![init_report(cid_of(req), 0x3f, &[0x0b])],
        _ => vec![],
    });
    let mut t = CtapHidTransport::with_config(pipe, fast()).unwrap();
    assert_eq!(t.channel(), Cid(0x0100_0001));
    assert_eq!(t.transact(&[0x04], &mut |_| {}).unwrap(), [0x00]);
    assert_eq!(t.channel(), Cid(0x0100_0002));
    assert_eq!(inits.load(Ordering::SeqCst), 2);
}

#[test]
fn init_with_foreign_nonces_and_garbage_is_tolerated() {
    let pipe = ScriptedPipe::new(move |req| match req[4] {
        0x86 => {
            let mut foreign = init_answer(req, 0x0900_0009);
            foreign[7] ^= 0xff; // someone else's nonce
            vec![
                foreign,
                init_report([0xff; 4], 0x3f, &[0x06]),
                init_report([0xff; 4], 0xbb & 0x7f, &[0x01]),
                vec![0u8; 64],
                init_answer(req, 0x0100_0007),
            ]
        }
        _ => vec![],
    });
    let t = CtapHidTransport::with_config(pipe, fast()).unwrap();
    assert_eq!(t.channel(), Cid(0x0100_0007));
    assert_eq!(t.init_response().protocol_version, 2);
}

#[test]
fn mute_device_fails_init_with_a_timeout() {
    let pipe = ScriptedPipe::new(|_req| vec![]);
    let err = CtapHidTransport::with_config(pipe, fast()).unwrap_err();
    assert!(matches!(err, Error::Timeout(_)), "{err:?}");
}

#[test]
fn wink_without_capability_is_unsupported() {
    let pipe = ScriptedPipe::new(move |req| match req[4] {
        0x86 => {
            let mut r = init_answer(req, 0x0100_0001);
            r[7 + 16] = 0x04; // CBOR only
            vec![r]
        }
        _ => vec![],
    });
    let mut t = CtapHidTransport::with_config(pipe, fast()).unwrap();
    assert!(matches!(t.wink(), Err(Error::Unsupported(_))));
}

#[test]
fn ping_echo_mismatch_is_reported() {
    let pipe = ScriptedPipe::new(move |req| match req[4] {
        0x86 => vec![init_answer(req, 0x0100_0001)],
        0x81 => vec![init_report(cid_of(req), 0x01, b"other")],
        _ => vec![],
    });
    let mut t = CtapHidTransport::with_config(pipe, fast()).unwrap();
    assert!(matches!(t.ping(b"hello"), Err(Error::Hid { .. })));
}

/// Deterministic xorshift for the garbage test.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn random_garbage_from_the_device_never_panics_or_hangs() {
    let rng = Arc::new(Mutex::new(Rng(0x9e37_79b9_7f4a_7c15)));
    for round in 0..300u32 {
        let rng = rng.clone();
        let pipe = ScriptedPipe::new(move |req| {
            let mut rng = rng.lock().unwrap();
            if req[4] == 0x86 {
                return vec![init_answer(req, 0x0100_0001)];
            }
            let n = (rng.next() % 6) as usize;
            (0..n)
                .map(|_| {
                    let len = match rng.next() % 8 {
                        0 => (rng.next() % 80) as usize,
                        _ => REPORT_LEN,
                    };
                    let mut r: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
                    // Mostly on our channel, so the parser is really exercised.
                    if len >= 5 && rng.next() % 4 != 0 {
                        r[..4].copy_from_slice(&[1, 0, 0, 1]);
                        if rng.next() % 2 == 0 {
                            r[4] = [0x90, 0xbb, 0xbf, 0x00, 0x01][(rng.next() % 5) as usize];
                        }
                    }
                    r
                })
                .collect()
        });
        let config = HidConfig {
            inactivity_timeout: Duration::from_millis(20),
            transaction_timeout: Duration::from_millis(500),
            busy_retries: 1,
            busy_backoff: Duration::from_millis(1),
            drain_quiet: Duration::from_millis(1),
            ..HidConfig::default()
        };
        let mut t = CtapHidTransport::with_config(pipe, config).unwrap();
        // Any outcome is fine as long as it is an outcome.
        let _ = t.transact(&[0x04, round as u8], &mut |_| {});
    }
}

// ---------------------------------------------------------------------------------
// hidapi backend (no devices and no /dev/uhid in this environment)
// ---------------------------------------------------------------------------------

#[test]
fn hidapi_lists_and_opens_without_devices() {
    // Here (no /dev/hidraw*, no /dev/uhid) this is Ok(empty); with keys attached it
    // lists them.
    match hid::list_devices() {
        Ok(devices) => {
            for d in &devices {
                assert!(!d.path.is_empty());
            }
        }
        Err(e) => assert!(matches!(e, Error::Hid { .. }), "{e:?}"),
    }
    let err = hid::open("/dev/keysmith-no-such-hidraw").unwrap_err();
    assert!(matches!(err, Error::DeviceNotFound(_)), "{err:?}");
    assert!(matches!(
        hid::open("bad\0path"),
        Err(Error::InvalidArgument(_))
    ));
}

// ---------------------------------------------------------------------------------
// Interop: trussed `fido-authenticator` behind usbd-ctaphid at the 64-byte boundary
// ---------------------------------------------------------------------------------

mod trussed_fw;
