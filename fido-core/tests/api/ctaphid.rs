//! Integration tests: ctaphid. Host and device state machines talking to each other
//! (channels, keepalives, cancel, busy, round trips of every size) here; recorded
//! traffic in `recorded`, malformed framing in `framing`.

use std::time::{Duration, Instant};

use fido_core::cbor::{self, Value};
use fido_core::ctaphid::{
    fragment, Capabilities, Cid, Command, DeviceConfig, DeviceEvent, Event, HidClient, HidDevice,
    HidError, HidErrorCode, InitResponse, KeepaliveStatus, MAX_MESSAGE_LEN, REPORT_LEN,
};
use proptest::prelude::*;

use super::support::{fixture_lines, hex};

mod framing;
mod recorded;

const T: Duration = Duration::from_millis(500);
/// The channel most libfido2 recordings use.
const YUBICO_CID: Cid = Cid(0x0022_0002);

fn cid_of(report: &[u8]) -> Cid {
    Cid::from_bytes([report[0], report[1], report[2], report[3]])
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
            if i.is_multiple_of(2) && r.len() >= 4 {
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
