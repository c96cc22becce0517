//! CTAPHID transport tests: the blocking driver against the in-process key (here), faults
//! on the wire (`wire_faults`), scripted misbehaving devices (`scripted`), the hidapi
//! backend without devices (here), and interop with trussed's `fido-authenticator`
//! firmware (`trussed_fw`).

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

mod scripted;
mod trussed_fw;
mod wire_faults;

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
