//! Shared helpers for the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

/// Decodes a hex string (whitespace ignored).
pub fn hex(s: &str) -> Vec<u8> {
    let clean: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    hex::decode(clean).expect("valid hex in test data")
}

/// Path of a recorded libfido2 fixture.
pub fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/libfido2")
        .join(name)
}

/// The lines of a hex fixture, each decoded (one 64-byte CTAPHID report per line for
/// the `wiredata-*` files, one value for the others).
pub fn fixture_lines(name: &str) -> Vec<Vec<u8>> {
    let text = std::fs::read_to_string(fixture_path(name)).expect("fixture exists");
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(hex)
        .collect()
}

/// A whole hex fixture as one byte string.
pub fn fixture_bytes(name: &str) -> Vec<u8> {
    fixture_lines(name).concat()
}

/// Feeds every report of a CTAPHID recording to a host on `cid`, starting a CBOR request
/// whenever the host is idle (the recordings hold responses only), and returns the events.
/// Panics (test failure) on a report the state machine rejects.
pub fn replay_reports(
    name: &str,
    reports: &[Vec<u8>],
    cid: fido_core::ctaphid::Cid,
) -> Vec<fido_core::ctaphid::Event> {
    use fido_core::ctaphid::{Command, HidClient};
    let now = std::time::Instant::now();
    let mut host = HidClient::with_channel(cid, std::time::Duration::from_millis(500)).unwrap();
    let mut events = Vec::new();
    for report in reports {
        if host.is_idle() {
            host.send(Command::Cbor, &[0x04], now).unwrap();
            while host.poll_transmit().is_some() {}
        }
        host.handle_report(report, now)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        events.extend(std::iter::from_fn(|| host.poll_event()));
    }
    assert!(host.is_idle(), "{name}: a response was left incomplete");
    events
}
