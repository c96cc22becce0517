//! Malformed framing on both sides: truncated, oversized, out-of-sequence and stray
//! reports, oversize lengths, zero-length messages, device error bytes.

use super::*;

#[test]
fn truncated_and_oversized_reports_are_rejected_without_harm() {
    let now = Instant::now();
    let mut host = waiting_host(now);
    let good = fragment(YUBICO_CID, Command::Cbor, &[0x00; 100]).unwrap();
    host.handle_report(&good[0], now).unwrap();
    for len in [0usize, 1, 4, 6, 63] {
        assert_eq!(
            host.handle_report(&good[1][..len], now),
            Err(HidError::ReportLength { len })
        );
    }
    // A 65-byte buffer with the OS report id must be stripped by the transport.
    let mut with_id = vec![0u8];
    with_id.extend_from_slice(&good[1]);
    assert_eq!(
        host.handle_report(&with_id, now),
        Err(HidError::ReportLength { len: 65 })
    );
    assert_eq!(host.poll_event(), None);
    host.handle_report(&good[1], now).unwrap();
    assert_eq!(
        host.poll_event(),
        Some(Event::Response {
            cmd: Command::Cbor,
            payload: vec![0; 100]
        })
    );
}

#[test]
fn out_of_sequence_aborts() {
    let now = Instant::now();
    let good = fragment(YUBICO_CID, Command::Cbor, &[0x00; 200]).unwrap();
    let mut host = waiting_host(now);
    host.handle_report(&good[0], now).unwrap();
    host.handle_report(&good[1], now).unwrap();
    let err = HidError::UnexpectedSeq {
        expected: 1,
        got: 2,
    };
    assert_eq!(host.handle_report(&good[2 + 1], now), Err(err.clone()));
    assert_eq!(host.poll_event(), Some(Event::Failed(err)));
    assert!(host.is_idle());

    // A repeated sequence number too.
    let mut host = waiting_host(now);
    host.handle_report(&good[0], now).unwrap();
    host.handle_report(&good[1], now).unwrap();
    assert!(host.handle_report(&good[1], now).is_err());
    assert!(matches!(
        host.poll_event(),
        Some(Event::Failed(HidError::UnexpectedSeq {
            expected: 1,
            got: 0
        }))
    ));
}

#[test]
fn stray_continuation_and_unexpected_init_abort() {
    let now = Instant::now();
    let good = fragment(YUBICO_CID, Command::Cbor, &[0x00; 200]).unwrap();
    let mut host = waiting_host(now);
    assert_eq!(
        host.handle_report(&good[2], now),
        Err(HidError::UnexpectedContinuation { seq: 1 })
    );
    assert!(host.is_idle());

    let mut host = waiting_host(now);
    host.handle_report(&good[0], now).unwrap();
    assert_eq!(
        host.handle_report(&good[0], now),
        Err(HidError::UnexpectedInit { cmd: 0x10 })
    );

    let mut host = waiting_host(now);
    let ping = fragment(YUBICO_CID, Command::Ping, &[1]).unwrap();
    assert_eq!(
        host.handle_report(&ping[0], now),
        Err(HidError::UnexpectedCommand {
            expected: 0x10,
            got: 0x01
        })
    );

    // Idle hosts drop whatever arrives.
    let mut idle = HidClient::with_channel(YUBICO_CID, T).unwrap();
    idle.handle_report(&good[1], now).unwrap();
    assert_eq!(idle.poll_event(), None);
}

#[test]
fn oversize_bcnt_and_messages() {
    let now = Instant::now();
    for bcnt in [7610u16, 0xffff] {
        let mut host = waiting_host(now);
        let mut r = [0u8; REPORT_LEN];
        r[..4].copy_from_slice(&YUBICO_CID.to_bytes());
        r[4] = 0x90;
        r[5..7].copy_from_slice(&bcnt.to_be_bytes());
        let err = HidError::MessageTooLarge {
            len: usize::from(bcnt),
        };
        assert_eq!(host.handle_report(&r, now), Err(err.clone()));
        assert_eq!(host.poll_event(), Some(Event::Failed(err)));
    }
    // 7609 exactly is fine.
    let mut host = waiting_host(now);
    for r in fragment(YUBICO_CID, Command::Cbor, &[1; MAX_MESSAGE_LEN]).unwrap() {
        host.handle_report(&r, now).unwrap();
    }
    assert!(
        matches!(host.poll_event(), Some(Event::Response { payload, .. }) if payload.len() == 7609)
    );

    let mut host = HidClient::with_channel(YUBICO_CID, T).unwrap();
    assert_eq!(
        host.send(Command::Cbor, &vec![0; MAX_MESSAGE_LEN + 1], now),
        Err(HidError::MessageTooLarge { len: 7610 })
    );
    assert!(host.is_idle());
    assert_eq!(host.poll_transmit(), None);

    // The device answers an oversize BCNT with ERR_INVALID_LEN.
    let mut dev = HidDevice::new(DeviceConfig::default());
    let mut h = HidClient::new(T);
    let cid = connect(&mut h, &mut dev, [6; 8], now);
    let mut r = [0u8; REPORT_LEN];
    r[..4].copy_from_slice(&cid.to_bytes());
    r[4] = 0x90;
    r[5..7].copy_from_slice(&7610u16.to_be_bytes());
    assert_eq!(
        dev.handle_report(&r, now),
        Err(HidError::MessageTooLarge { len: 7610 })
    );
    let e = dev.poll_transmit().unwrap();
    assert_eq!(&e[4..8], &[0xbf, 0, 1, 0x03]);
}

#[test]
fn zero_length_messages() {
    let now = Instant::now();
    // A zero-length response is a complete (empty) response.
    let mut host = waiting_host(now);
    let empty = fragment(YUBICO_CID, Command::Cbor, &[]).unwrap();
    assert_eq!(empty.len(), 1);
    host.handle_report(&empty[0], now).unwrap();
    assert_eq!(
        host.poll_event(),
        Some(Event::Response {
            cmd: Command::Cbor,
            payload: vec![]
        })
    );
    // A keepalive or error without its status byte is malformed.
    let mut host = waiting_host(now);
    let ka = fragment(YUBICO_CID, Command::Keepalive, &[]).unwrap();
    assert!(matches!(
        host.handle_report(&ka[0], now),
        Err(HidError::LengthMismatch {
            field: "KEEPALIVE",
            ..
        })
    ));
    assert!(!host.is_idle());
    let err = fragment(YUBICO_CID, Command::Error, &[]).unwrap();
    assert!(host.handle_report(&err[0], now).is_err());
    assert!(matches!(
        host.poll_event(),
        Some(Event::Failed(HidError::LengthMismatch {
            field: "ERROR",
            ..
        }))
    ));
}

#[test]
fn device_errors_keep_their_byte() {
    let now = Instant::now();
    for (byte, code) in [
        (0x01, HidErrorCode::InvalidCmd),
        (0x02, HidErrorCode::InvalidPar),
        (0x03, HidErrorCode::InvalidLen),
        (0x04, HidErrorCode::InvalidSeq),
        (0x05, HidErrorCode::MsgTimeout),
        (0x06, HidErrorCode::ChannelBusy),
        (0x0a, HidErrorCode::LockRequired),
        (0x0b, HidErrorCode::InvalidChannel),
        (0x7f, HidErrorCode::Other(0x7f)),
        (0x42, HidErrorCode::Other(0x42)),
    ] {
        let mut host = waiting_host(now);
        let r = fragment(YUBICO_CID, Command::Error, &[byte]).unwrap();
        host.handle_report(&r[0], now).unwrap();
        assert_eq!(host.poll_event(), Some(Event::Error(code)));
        assert_eq!(code.to_u8(), byte);
    }
}

#[test]
fn device_rejects_bad_framing() {
    let now = Instant::now();
    let mut dev = HidDevice::new(DeviceConfig::default());
    let mut host = HidClient::new(T);
    let cid = connect(&mut host, &mut dev, [7; 8], now);
    // Non-INIT command on the broadcast channel.
    let r = fragment(Cid::BROADCAST, Command::Cbor, &[4]).unwrap();
    assert!(dev.handle_report(&r[0], now).is_err());
    assert_eq!(
        &dev.poll_transmit().unwrap()[..8],
        &hex("ffffffffbf00010b")[..]
    );
    // Out-of-sequence continuation.
    let req = fragment(cid, Command::Cbor, &[1; 300]).unwrap();
    dev.handle_report(&req[0], now).unwrap();
    assert!(dev.handle_report(&req[2], now).is_err());
    assert_eq!(dev.poll_transmit().unwrap()[7], 0x04);
    // Half a message, then silence.
    dev.handle_report(&req[0], now).unwrap();
    dev.handle_report(&req[1], now).unwrap();
    let deadline = dev.poll_timeout().unwrap();
    dev.handle_timeout(deadline - Duration::from_millis(1));
    assert_eq!(dev.poll_transmit(), None);
    dev.handle_timeout(deadline);
    assert_eq!(dev.poll_transmit().unwrap()[7], 0x05);
    assert_eq!(dev.poll_event(), None);
    // Wrong report sizes are rejected and not answered.
    assert_eq!(
        dev.handle_report(&[0u8; 65], now),
        Err(HidError::ReportLength { len: 65 })
    );
    assert_eq!(dev.poll_transmit(), None);
}
