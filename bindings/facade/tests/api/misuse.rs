//! Misuse the facade refuses at its boundary (issue 14 items 4 and 6): one device used by
//! two operations at once, serials that cannot be part of a key id, a bulk rate that
//! would wait an hour per call. Each refusal is typed and names what was wrong.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use keysmith_facade::{BulkRunOptions, Device, ErrorKind, IssueParams, KeyFilter, Prompt, Session};
use keysmith_testkit::{
    session_config, softkey_spec, EmulatorWorld, HOLDER_PIN, KIM, STANDARD_NAME,
};

fn params(serial: &str) -> IssueParams {
    IssueParams {
        template: STANDARD_NAME.into(),
        user: KIM.into(),
        serial: Some(serial.into()),
        ..IssueParams::default()
    }
}

/// Two threads issue the same key with different serials. Before, both "succeeded" and
/// the second reset silently destroyed the first key's credential and transport PIN.
/// Now the second is refused with `device_busy` while the first runs, touches nothing,
/// and the first key still activates.
#[test]
fn a_second_operation_on_a_busy_device_is_refused_and_the_first_key_survives() {
    let world = EmulatorWorld::start("facade-busy");
    let session = Session::open(&world.session_config("facade-busy")).expect("session");
    let device = Device::open(&softkey_spec(&world.dir, "busy.json")).expect("softkey");
    // The first "touch your key" of thread A announces itself and waits for the go.
    let (started_tx, started_rx) = mpsc::channel::<()>();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let gate = Arc::new(Mutex::new(Some((started_tx, go_rx))));
    let hold = gate.clone();
    session.set_prompt(Box::new(move |p: &Prompt| {
        if matches!(p, Prompt::TouchKey { .. }) {
            if let Some((started, go)) = hold.lock().expect("gate").take() {
                started.send(()).expect("announce");
                go.recv().expect("go");
            }
        }
    }));
    let first = {
        let (session, device) = (session.clone(), device.clone());
        std::thread::spawn(move || session.issue(&device, &params("TH0")))
    };
    started_rx.recv().expect("thread A is inside its issuance");
    // Thread B: the same device, another serial. (Before the fix it waited for A and
    // then issued over A's key; the wait is bounded so that shows as a failure.)
    let (second_tx, second_rx) = mpsc::channel();
    {
        let (session, device) = (session.clone(), device.clone());
        std::thread::spawn(move || {
            let _ = second_tx.send(session.issue(&device, &params("TH1")));
        });
    }
    let second = second_rx.recv_timeout(std::time::Duration::from_secs(10));
    // Any clone of the handle is the same device; a reset is refused too.
    let reset = second.is_ok().then(|| device.clone().reset());
    go_tx.send(()).expect("go");
    let second = second
        .or_else(|_| second_rx.recv())
        .expect("thread B answered");
    let e = second.expect_err("the second issuance on a busy device must be refused");
    assert_eq!(
        (e.kind, e.reason),
        (ErrorKind::Device, "device_busy"),
        "{e:?}"
    );
    assert!(e.message.contains("busy"), "{e:?}");
    let e = reset.expect("B was refused at once").unwrap_err();
    assert_eq!(e.reason, "device_busy", "{e:?}");
    let key = first.join().expect("thread A").expect("issue TH0");
    assert!(key.key_id.ends_with("-TH0"), "{key:?}");
    let keys = session
        .list_keys(&KeyFilter {
            user: Some(KIM.into()),
            ..KeyFilter::default()
        })
        .expect("list");
    assert_eq!(keys.len(), 1, "only TH0 is recorded: {keys:?}");
    // The first key is intact: its transport PIN still opens it.
    let active = session
        .activate(&device, &key.key_id, HOLDER_PIN)
        .expect("activate TH0");
    assert_eq!(active.state, "active");
    // After the operation the device is free again.
    assert!(device.info().is_ok());
}

#[test]
fn serials_that_cannot_be_part_of_a_key_id_are_refused_before_the_key_is_touched() {
    let world = EmulatorWorld::start("facade-serial");
    let session = Session::open(&world.session_config("facade-serial")).expect("session");
    let device = Device::open(&softkey_spec(&world.dir, "serial.json")).expect("softkey");
    for bad in ["NUL\0X", "two\nlines", "cr\r", " padded", &"9".repeat(129)] {
        let e = session.issue(&device, &params(bad)).unwrap_err();
        assert_eq!(
            (e.kind, e.reason),
            (ErrorKind::Usage, "serial_invalid"),
            "{bad:?}: {e:?}"
        );
        assert!(e.message.starts_with("serial "), "{e:?}");
    }
    let keys = session.list_keys(&KeyFilter::default()).expect("list");
    assert!(keys.is_empty(), "{keys:?}");
    assert_eq!(world.emulator.method_count(), 0);
}

#[test]
fn a_bulk_rate_below_the_minimum_is_refused() {
    let world = EmulatorWorld::start("facade-rate");
    let session = Session::open(&session_config(&world.emulator, &world.dir, "facade-rate"))
        .expect("session");
    for rate in [1e-300, 0.0999, 0.0, -1.0, f64::NAN, f64::INFINITY] {
        let options = BulkRunOptions {
            rate: Some(rate),
            ..serde_json::from_str("{}").expect("defaults")
        };
        let e = session
            .bulk_run(1, &options, &mut |_| Err("no device".into()), &mut |_| {})
            .unwrap_err();
        assert_eq!(
            (e.kind, e.reason),
            (ErrorKind::Usage, "rate_invalid"),
            "{rate}: {e:?}"
        );
        assert!(e.message.starts_with("rate: "), "{e:?}");
    }
    // The minimum itself is a rate (the job does not exist, so that is the error).
    let options = BulkRunOptions {
        rate: Some(keysmith_facade::MIN_RATE),
        ..serde_json::from_str("{}").expect("defaults")
    };
    let e = session
        .bulk_run(99, &options, &mut |_| Err("no device".into()), &mut |_| {})
        .unwrap_err();
    assert_ne!(e.reason, "rate_invalid", "{e:?}");
}
