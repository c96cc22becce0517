//! Faults on the wire: the in-process key behind filters that corrupt, drop, reorder
//! or interleave reports.

use super::*;

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
