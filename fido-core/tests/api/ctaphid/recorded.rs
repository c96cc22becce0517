//! libfido2's recorded CTAPHID traffic of a YubiKey, replayed through the host state
//! machine: INIT, keepalives, reassembly, and a mismatched continuation channel.

use super::*;

fn replay(name: &str, cid: Cid) -> Vec<Event> {
    crate::api::support::replay_reports(name, &fixture_lines(name), cid)
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
