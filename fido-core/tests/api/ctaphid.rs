//! Integration tests: ctaphid.

use std::time::{Duration, Instant};

use fido_core::cbor::{self, Value};
use fido_core::ctaphid::{
    fragment, Capabilities, Cid, Command, DeviceConfig, DeviceEvent, Event, HidClient, HidDevice,
    HidError, HidErrorCode, InitResponse, KeepaliveStatus, MAX_MESSAGE_LEN, REPORT_LEN,
};
use proptest::prelude::*;

use super::support::{fixture_lines, hex};

const T: Duration = Duration::from_millis(500);
/// The channel most libfido2 recordings use.
const YUBICO_CID: Cid = Cid(0x0022_0002);

fn cid_of(report: &[u8]) -> Cid {
    Cid::from_bytes([report[0], report[1], report[2], report[3]])
}

fn replay(name: &str, cid: Cid) -> Vec<Event> {
    super::support::replay_reports(name, &fixture_lines(name), cid)
}

fn responses(events: &[Event]) -> Vec<&[u8]> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Response {
                cmd: Command::Cbor,
                payload,
            } => Some(payload.as_slice()),
            _ => None,
        })
        .collect()
}

/// A CTAP2 success response: status 0 followed by one complete CBOR map.
fn ctap_ok_map(payload: &[u8]) -> Value {
    assert_eq!(payload.first(), Some(&0x00), "CTAP status byte");
    let body = cbor::decode(&payload[1..]).expect("response body is complete CBOR");
    assert!(matches!(body, Value::Map(_)), "response body is a map");
    body
}

#[test]
fn fixture_init_reply_with_libfido2_nonce() {
    let report = &fixture_lines("wiredata-ctap_init.hex")[0];
    let nonce: [u8; 8] = hex("80435640b14ed92d").try_into().unwrap();
    let now = Instant::now();

    // A host that sent another nonce ignores the reply entirely.
    let mut other = HidClient::new(T);
    other.init([0; 8], now).unwrap();
    other.handle_report(report, now).unwrap();
    assert_eq!(other.poll_event(), None);
    assert_eq!(other.channel(), None);

    let mut host = HidClient::new(T);
    host.init(nonce, now).unwrap();
    let sent = host.poll_transmit().unwrap();
    assert_eq!(&sent[..7], &hex("ffffffff860008")[..]);
    host.handle_report(report, now).unwrap();
    let Some(Event::Init(resp)) = host.poll_event() else {
        panic!("INIT reply expected")
    };
    assert_eq!(resp.nonce, nonce);
    assert_eq!(resp.cid, YUBICO_CID);
    assert_eq!(resp.protocol_version, 2);
    assert_eq!(
        (resp.version_major, resp.version_minor, resp.version_build),
        (5, 2, 1)
    );
    assert!(resp
        .capabilities
        .contains(Capabilities::WINK | Capabilities::CBOR));
    assert!(!resp.capabilities.contains(Capabilities::NMSG));
    assert_eq!(host.channel(), Some(YUBICO_CID));
}

#[test]
fn fixture_keepalive() {
    let report = &fixture_lines("wiredata-ctap_keepalive.hex")[0];
    let now = Instant::now();
    let mut host = HidClient::with_channel(YUBICO_CID, T).unwrap();
    host.send(Command::Cbor, &[0x01], now).unwrap();
    let later = now + Duration::from_millis(400);
    host.handle_report(report, later).unwrap();
    assert_eq!(
        host.poll_event(),
        Some(Event::Keepalive(KeepaliveStatus::UpNeeded))
    );
    assert!(!host.is_idle());
    assert_eq!(host.poll_timeout(), Some(later + T));
}

#[test]
fn fixture_single_responses_reassemble() {
    // (file, channel, length, leading bytes)
    let cases: &[(&str, u32, usize, &str)] = &[
        (
            "wiredata-ctap_cbor_authkey.hex",
            0x0022_0002,
            81,
            "00a101a5",
        ),
        (
            "wiredata-ctap_cbor_bio_enum.hex",
            0x0010_000f,
            46,
            "00a10783",
        ),
        (
            "wiredata-ctap_cbor_bio_info.hex",
            0x0010_0004,
            6,
            "00a2020103",
        ),
        (
            "wiredata-ctap_cbor_cred.hex",
            0x0091_0003,
            993,
            "00a3016670",
        ),
        (
            "wiredata-ctap_cbor_credman_meta.hex",
            0x0012_0004,
            7,
            "00a20100",
        ),
        ("wiredata-ctap_cbor_info.hex", 0x0022_0002, 597, "00b81a01"),
        (
            "wiredata-ctap_cbor_largeblob_get_array.hex",
            0x89c9_8d28,
            486,
            "00a1015901e0",
        ),
        (
            "wiredata-ctap_cbor_pintoken.hex",
            0x0022_0002,
            20,
            "00a10250",
        ),
        ("wiredata-ctap_cbor_retries.hex", 0x0022_0002, 4, "00a10308"),
        ("wiredata-ctap_cbor_status.hex", 0x0022_0002, 1, "00"),
        (
            "cred-wiredata-makecred.hex",
            0x0022_0002,
            1043,
            "00a3016670",
        ),
        (
            "cred-wiredata-makecred_entattest.hex",
            0x0022_0002,
            973,
            "00a4016670",
        ),
    ];
    for &(name, cid, len, head) in cases {
        let events = replay(name, Cid(cid));
        assert_eq!(events.len(), 1, "{name}: {events:?}");
        let payload = responses(&events)[0];
        assert_eq!(payload.len(), len, "{name}");
        assert!(payload.starts_with(&hex(head)), "{name}");
        if len > 1 {
            ctap_ok_map(payload);
        }
    }
}

#[test]
fn fixture_response_contents() {
    let info = ctap_ok_map(responses(&replay("wiredata-ctap_cbor_info.hex", YUBICO_CID))[0]);
    let versions = info.as_map("getInfo").unwrap().get_int(1).unwrap().clone();
    let versions = versions.as_text_array("getInfo.versions").unwrap();
    assert!(versions.iter().any(|v| v == "FIDO_2_0"));

    let retries = ctap_ok_map(responses(&replay("wiredata-ctap_cbor_retries.hex", YUBICO_CID))[0]);
    let n = retries.as_map("clientPIN").unwrap();
    assert_eq!(n.get_int(3).unwrap().as_u64("pinRetries").unwrap(), 8);

    let blob = ctap_ok_map(
        responses(&replay(
            "wiredata-ctap_cbor_largeblob_get_array.hex",
            Cid(0x89c9_8d28),
        ))[0],
    );
    let blob = blob.as_map("largeBlobs").unwrap();
    assert_eq!(
        blob.get_int(1).unwrap().as_bytes("config").unwrap().len(),
        480
    );
}

#[test]
fn fixture_multi_response_files() {
    let rk = replay("wiredata-ctap_cbor_credman_rklist.hex", Cid(0x0015_0004));
    let lens: Vec<usize> = responses(&rk).iter().map(|p| p.len()).collect();
    assert_eq!(lens, [197, 160, 160, 195, 195]);
    for p in responses(&rk) {
        ctap_ok_map(p);
    }

    let rp = replay("wiredata-ctap_cbor_credman_rplist.hex", Cid(0x0015_0002));
    let lens: Vec<usize> = responses(&rp).iter().map(|p| p.len()).collect();
    assert_eq!(lens, [55, 54, 55]);
    assert!(responses(&rp)[0].starts_with(&hex("00a303a1")));
    assert!(responses(&rp)[1].starts_with(&hex("00a203a1")));
}

#[test]
fn fixture_bio_enroll_keepalives_between_replies() {
    let mut lines = fixture_lines("wiredata-ctap_cbor_bio_enroll.hex");
    assert!(lines.iter().all(|l| cid_of(l) == Cid(0x000a_0005)));
    let now = Instant::now();

    // The recording's last report was stored truncated (56 bytes): the state machine
    // takes exactly 64 and says so without touching the transaction.
    let last = lines.last().unwrap().clone();
    assert_eq!(last.len(), 56);
    let mut host = HidClient::with_channel(Cid(0x000a_0005), T).unwrap();
    host.send(Command::Cbor, &[0x09], now).unwrap();
    assert_eq!(
        host.handle_report(&last, now),
        Err(HidError::ReportLength { len: 56 })
    );
    assert!(!host.is_idle());
    assert_eq!(host.poll_event(), None);

    // Zero-padded, as a HID device would deliver it, everything reassembles.
    lines.last_mut().unwrap().resize(REPORT_LEN, 0);
    let mut host = HidClient::with_channel(Cid(0x000a_0005), T).unwrap();
    let mut events = Vec::new();
    for report in &lines {
        if host.is_idle() {
            host.send(Command::Cbor, &[0x09], now).unwrap();
        }
        host.handle_report(report, now).unwrap();
        events.extend(std::iter::from_fn(|| host.poll_event()));
    }
    let up = Event::Keepalive(KeepaliveStatus::UpNeeded);
    let kinds: Vec<String> = events
        .iter()
        .map(|e| match e {
            e if *e == up => "ka".to_string(),
            Event::Response { payload, .. } => format!("r{}", payload.len()),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(
        kinds,
        ["ka", "ka", "ka", "r10", "ka", "ka", "r6", "ka", "r6"]
    );
    for p in responses(&events) {
        ctap_ok_map(p);
    }
}

#[test]
fn fixture_assert_has_mismatched_continuation_channel() {
    // libfido2's edited getAssertion recording starts on 00220002 but its continuation
    // reports carry channel 0092000e. A correct host does not splice them together.
    let lines = fixture_lines("wiredata-ctap_cbor_assert.hex");
    assert_eq!(cid_of(&lines[0]), YUBICO_CID);
    assert!(lines[1..].iter().all(|l| cid_of(l) == Cid(0x0092_000e)));
    let now = Instant::now();

    // On 00220002 the continuations are another channel's: ignored, and the response
    // stays incomplete until the inactivity timeout.
    let mut host = HidClient::with_channel(YUBICO_CID, T).unwrap();
    host.send(Command::Cbor, &[0x02], now).unwrap();
    for l in &lines {
        host.handle_report(l, now).unwrap();
    }
    assert_eq!(host.poll_event(), None);
    assert_eq!(host.progress(), Some((57, 203)));
    host.handle_timeout(now + T);
    assert_eq!(host.poll_event(), Some(Event::Failed(HidError::Timeout)));

    // On 0092000e the first report is another channel's, so the continuation is stray.
    let mut host = HidClient::with_channel(Cid(0x0092_000e), T).unwrap();
    host.send(Command::Cbor, &[0x02], now).unwrap();
    host.handle_report(&lines[0], now).unwrap();
    assert_eq!(
        host.handle_report(&lines[1], now),
        Err(HidError::UnexpectedContinuation { seq: 0 })
    );
    assert_eq!(
        host.poll_event(),
        Some(Event::Failed(HidError::UnexpectedContinuation { seq: 0 }))
    );

    // With the continuations' channel corrected, the 203-byte response is whole.
    let mut host = HidClient::with_channel(YUBICO_CID, T).unwrap();
    host.send(Command::Cbor, &[0x02], now).unwrap();
    for l in &lines {
        let mut l = l.clone();
        l[..4].copy_from_slice(&YUBICO_CID.to_bytes());
        host.handle_report(&l, now).unwrap();
    }
    let Some(Event::Response { payload, .. }) = host.poll_event() else {
        panic!("response expected")
    };
    assert_eq!(payload.len(), 203);
    ctap_ok_map(&payload);
}

/// Runs INIT between a fresh host and the device; returns the allocated channel.
fn connect(host: &mut HidClient, dev: &mut HidDevice, nonce: [u8; 8], now: Instant) -> Cid {
    host.init(nonce, now).unwrap();
    pump(host, dev, now);
    match host.poll_event() {
        Some(Event::Init(r)) => r.cid,
        other => panic!("INIT failed: {other:?}"),
    }
}

fn pump(host: &mut HidClient, dev: &mut HidDevice, now: Instant) {
    loop {
        let mut moved = false;
        while let Some(r) = host.poll_transmit() {
            dev.handle_report(&r, now).unwrap();
            moved = true;
        }
        while let Some(r) = dev.poll_transmit() {
            host.handle_report(&r, now).unwrap();
            moved = true;
        }
        if !moved {
            break;
        }
    }
}

fn device_request(dev: &mut HidDevice) -> (Cid, Command, Vec<u8>) {
    match dev.poll_event() {
        Some(DeviceEvent::Request { cid, cmd, payload }) => (cid, cmd, payload),
        other => panic!("request expected, got {other:?}"),
    }
}

#[test]
fn interleaved_channels_keepalive_storm_and_broadcast() {
    let now = Instant::now();
    let mut host = HidClient::new(T);
    let mut dev = HidDevice::new(DeviceConfig::default());
    let cid = connect(&mut host, &mut dev, [1; 8], now);
    let other = Cid(cid.0.wrapping_add(1000));

    host.send(Command::Cbor, &[0x02; 300], now).unwrap();
    pump(&mut host, &mut dev, now);
    let (dcid, _, req) = device_request(&mut dev);
    assert_eq!((dcid, req.len()), (cid, 300));

    let response: Vec<u8> = (0..3000u32).map(|i| (i * 7 % 251) as u8).collect();
    let ours = fragment(cid, Command::Cbor, &response).unwrap();
    let theirs = fragment(other, Command::Cbor, &[0xee; 2000]).unwrap();
    let keepalive = fragment(cid, Command::Keepalive, &[1]).unwrap()[0];
    let foreign_init = fragment(
        Cid::BROADCAST,
        Command::Init,
        &InitResponse {
            nonce: [9; 8],
            cid: Cid(77),
            protocol_version: 2,
            version_major: 1,
            version_minor: 0,
            version_build: 0,
            capabilities: Capabilities::CBOR,
        }
        .to_bytes(),
    )
    .unwrap()[0];

    let mut t = now;
    let mut keepalives = 0;
    for _ in 0..300 {
        t += Duration::from_millis(100);
        host.handle_timeout(t);
        host.handle_report(&keepalive, t).unwrap();
        keepalives += 1;
    }
    // Our message, with another channel's complete message (same sequence numbers),
    // broadcast INIT replies and more keepalives between every report.
    for (i, r) in ours.iter().enumerate() {
        host.handle_report(r, t).unwrap();
        if let Some(o) = theirs.get(i) {
            host.handle_report(o, t).unwrap();
        }
        host.handle_report(&foreign_init, t).unwrap();
        host.handle_report(&keepalive, t).unwrap();
        keepalives += 1;
        t += Duration::from_millis(50);
        host.handle_timeout(t);
    }
    let events: Vec<Event> = std::iter::from_fn(|| host.poll_event()).collect();
    let (ka, rest): (Vec<&Event>, Vec<&Event>) = events
        .iter()
        .partition(|e| matches!(e, Event::Keepalive(KeepaliveStatus::Processing)));
    // The keepalive after the last report comes when the transaction is already over.
    assert_eq!(ka.len(), keepalives - 1);
    assert_eq!(
        rest,
        [&Event::Response {
            cmd: Command::Cbor,
            payload: response
        }]
    );
}

#[test]
fn cancel_while_waiting_for_touch() {
    let now = Instant::now();
    let mut host = HidClient::new(T);
    let mut dev = HidDevice::new(DeviceConfig::default());
    let cid = connect(&mut host, &mut dev, [2; 8], now);
    host.send(Command::Cbor, &[0x01; 150], now).unwrap();
    pump(&mut host, &mut dev, now);
    let _ = device_request(&mut dev);
    for _ in 0..200 {
        dev.send_keepalive(cid, KeepaliveStatus::UpNeeded).unwrap();
    }
    pump(&mut host, &mut dev, now);
    let ups = std::iter::from_fn(|| host.poll_event())
        .filter(|e| *e == Event::Keepalive(KeepaliveStatus::UpNeeded))
        .count();
    assert_eq!(ups, 200);

    host.cancel(now).unwrap();
    pump(&mut host, &mut dev, now);
    assert_eq!(dev.poll_event(), Some(DeviceEvent::Cancel { cid }));
    dev.respond(cid, Command::Cbor, &[0x2d]).unwrap();
    pump(&mut host, &mut dev, now);
    assert_eq!(host.poll_event(), Some(Event::Cancelled));
    assert!(host.is_idle());

    // The channel works again afterwards.
    host.send(Command::Ping, b"still here", now).unwrap();
    pump(&mut host, &mut dev, now);
    assert_eq!(
        host.poll_event(),
        Some(Event::Response {
            cmd: Command::Ping,
            payload: b"still here".to_vec()
        })
    );
}

#[test]
fn cancel_racing_a_finished_response_reports_the_response() {
    let now = Instant::now();
    let mut host = HidClient::new(T);
    let mut dev = HidDevice::new(DeviceConfig::default());
    let cid = connect(&mut host, &mut dev, [3; 8], now);
    host.send(Command::Cbor, &[0x01], now).unwrap();
    pump(&mut host, &mut dev, now);
    let _ = device_request(&mut dev);
    dev.respond(cid, Command::Cbor, &[0x00, 0xa0]).unwrap();
    host.cancel(now).unwrap(); // the response is already on the wire
    pump(&mut host, &mut dev, now);
    assert_eq!(dev.poll_event(), None, "a cancel for nothing is ignored");
    assert_eq!(
        host.poll_event(),
        Some(Event::Response {
            cmd: Command::Cbor,
            payload: vec![0x00, 0xa0]
        })
    );
}

#[test]
fn busy_device_answers_channel_busy_and_host_may_retry() {
    let now = Instant::now();
    let mut dev = HidDevice::new(DeviceConfig::default());
    let mut a = HidClient::new(T);
    let mut b = HidClient::new(T);
    let cid_a = connect(&mut a, &mut dev, [4; 8], now);
    let _cid_b = connect(&mut b, &mut dev, [5; 8], now);
    a.send(Command::Cbor, &[0x01], now).unwrap();
    pump(&mut a, &mut dev, now);
    let _ = device_request(&mut dev);
    b.send(Command::Cbor, &[0x04], now).unwrap();
    let r = b.poll_transmit().unwrap();
    assert_eq!(dev.handle_report(&r, now), Err(HidError::ChannelBusy));
    let answer = dev.poll_transmit().unwrap();
    b.handle_report(&answer, now).unwrap();
    let Some(Event::Error(code)) = b.poll_event() else {
        panic!("error expected")
    };
    assert_eq!(code, HidErrorCode::ChannelBusy);
    assert!(code.is_retryable());
    assert!(HidError::from(code).is_retryable());

    dev.respond(cid_a, Command::Cbor, &[0]).unwrap();
    pump(&mut a, &mut dev, now);
    b.send(Command::Cbor, &[0x04], now).unwrap();
    pump(&mut b, &mut dev, now);
    assert_eq!(device_request(&mut dev).2, [0x04]);
}

fn waiting_host(now: Instant) -> HidClient {
    let mut host = HidClient::with_channel(YUBICO_CID, T).unwrap();
    host.send(Command::Cbor, &[0x04], now).unwrap();
    while host.poll_transmit().is_some() {}
    host
}

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

fn round_trip(host: &mut HidClient, dev: &mut HidDevice, request: &[u8], response: &[u8]) {
    let now = Instant::now();
    host.send(Command::Cbor, request, now).unwrap();
    pump(host, dev, now);
    let (cid, cmd, got) = device_request(dev);
    assert_eq!(cmd, Command::Cbor);
    assert_eq!(got, request);
    dev.send_keepalive(cid, KeepaliveStatus::Processing)
        .unwrap();
    dev.respond(cid, Command::Cbor, response).unwrap();
    pump(host, dev, now);
    assert_eq!(
        host.poll_event(),
        Some(Event::Keepalive(KeepaliveStatus::Processing))
    );
    assert_eq!(
        host.poll_event(),
        Some(Event::Response {
            cmd: Command::Cbor,
            payload: response.to_vec()
        })
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn host_device_round_trip(
        req_len in 0usize..=MAX_MESSAGE_LEN,
        resp_len in 0usize..=MAX_MESSAGE_LEN,
        seed in any::<u8>(),
    ) {
        let now = Instant::now();
        let mut host = HidClient::new(T);
        let mut dev = HidDevice::new(DeviceConfig::default());
        connect(&mut host, &mut dev, [seed; 8], now);
        let request: Vec<u8> = (0..req_len).map(|i| (i as u8).wrapping_mul(31) ^ seed).collect();
        let response: Vec<u8> = (0..resp_len).map(|i| (i as u8).wrapping_add(seed)).collect();
        round_trip(&mut host, &mut dev, &request, &response);
    }

    #[test]
    fn garbage_reports_never_panic(reports in proptest::collection::vec(
        proptest::collection::vec(any::<u8>(), 0..70), 0..40)
    ) {
        let now = Instant::now();
        let mut host = waiting_host(now);
        let mut dev = HidDevice::new(DeviceConfig::default());
        for (i, r) in reports.iter().enumerate() {
            let mut r = r.clone();
            if i % 2 == 0 && r.len() >= 4 {
                r[..4].copy_from_slice(&YUBICO_CID.to_bytes());
            }
            let res = host.handle_report(&r, now);
            if r.len() != REPORT_LEN {
                prop_assert_eq!(res, Err(HidError::ReportLength { len: r.len() }));
            }
            let _ = dev.handle_report(&r, now);
            if let Some((got, declared)) = host.progress() {
                prop_assert!(got <= declared && declared <= MAX_MESSAGE_LEN);
            }
            while let Some(ev) = host.poll_event() {
                if let Event::Response { payload, .. } = ev {
                    prop_assert!(payload.len() <= MAX_MESSAGE_LEN);
                }
            }
        }
    }
}

#[test]
fn all_sizes_near_report_boundaries_round_trip() {
    let mut host = HidClient::new(T);
    let mut dev = HidDevice::new(DeviceConfig::default());
    connect(&mut host, &mut dev, [8; 8], Instant::now());
    for len in [0, 1, 56, 57, 58, 115, 116, 117, 7550, 7551, 7608, 7609] {
        let payload: Vec<u8> = (0..len).map(|i| (i % 253) as u8).collect();
        round_trip(&mut host, &mut dev, &payload, &payload);
    }
}
