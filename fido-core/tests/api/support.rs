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
