//! Golden byte vectors: one signed message per kind (fixed keys, RFC 6979 ECDSA, HPKE from a
//! seeded RNG), committed as hex with CBOR diagnostic notation under `tests/golden/`.
//! `KEYSMITH_BLESS=1 cargo test -p keysmith-wire --test golden` rewrites them.

mod common;

use std::path::PathBuf;

use fido_core::cbor::{self, Value};

fn diag(v: &Value) -> String {
    match v {
        Value::Unsigned(n) => n.to_string(),
        Value::Negative(n) => format!("-{}", u128::from(*n) + 1),
        Value::Bytes(b) => match cbor::decode(b) {
            // Byte strings holding a CBOR map (the protected header, the payload) are shown
            // embedded (RFC 8610 Appendix G.3).
            Ok(inner @ Value::Map(_)) if b.len() > 1 => format!("<<{}>>", diag(&inner)),
            _ => format!("h'{}'", hex::encode(b)),
        },
        Value::Text(s) => format!("{s:?}"),
        Value::Array(a) => format!("[{}]", a.iter().map(diag).collect::<Vec<_>>().join(", ")),
        Value::Map(m) => format!(
            "{{{}}}",
            m.iter()
                .map(|(k, v)| format!("{}: {}", diag(k), diag(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Value::Tag(t, v) => format!("{t}({})", diag(v)),
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".into(),
        Value::Undefined => "undefined".into(),
        Value::Simple(s) => format!("simple({s})"),
        Value::Float(f) => format!("{}", f.to_f64()),
    }
}

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// With `KEYSMITH_BLESS=1`, the golden messages also become the seed corpora of the
/// `wire_open`, `wire_decode` and `wire_secret` fuzz targets (`fuzz/seeds/`).
fn write_fuzz_seeds(name: &str, sample: &common::Sample, bytes: &[u8]) {
    let seeds = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds");
    if !seeds.is_dir() {
        return;
    }
    let put = |target: &str, data: &[u8]| {
        let d = seeds.join(target);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join(name), data).unwrap();
    };
    // wire_open: first byte picks the direction (even: server), the rest is the message.
    let dir_byte = match sample {
        common::Sample::Agent(_) => 1u8,
        common::Sample::Server(_) => 0u8,
    };
    put("wire_open", &[&[dir_byte][..], bytes].concat());
    put("wire_decode", &sample.payload());
    if let common::Sample::Server(e) = sample {
        if let keysmith_wire::ServerMessage::Job(job) = &e.msg {
            let s = &job.secrets[0];
            put("wire_secret", &[&s.enc[..], &s.ct[..]].concat());
        }
    }
}

#[test]
fn golden_vectors_match() {
    let bless = std::env::var("KEYSMITH_BLESS").is_ok_and(|v| v == "1");
    let mut failures = Vec::new();
    for (name, sample) in common::samples() {
        let bytes = sample.seal();
        // Sealing is deterministic: the same input gives the same bytes.
        assert_eq!(bytes, sample.seal(), "{name}: sealing is not deterministic");
        sample
            .open(&bytes)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let hex_path = dir().join(format!("{name}.hex"));
        let diag_path = dir().join(format!("{name}.diag"));
        let text = format!(
            "# {name}: COSE_Sign1 of {name}.hex, embedded CBOR shown as <<...>>\n{}\n",
            diag(&cbor::decode(&bytes).unwrap())
        );
        if bless {
            write_fuzz_seeds(name, &sample, &bytes);
            std::fs::create_dir_all(dir()).unwrap();
            std::fs::write(&hex_path, format!("{}\n", hex::encode(&bytes))).unwrap();
            std::fs::write(&diag_path, &text).unwrap();
            continue;
        }
        let committed = std::fs::read_to_string(&hex_path)
            .unwrap_or_else(|e| panic!("{name}: {e} (run with KEYSMITH_BLESS=1)"));
        let committed = hex::decode(committed.trim()).expect("hex");
        // The committed bytes open to the sample message (decoding is pinned too).
        sample
            .open(&committed)
            .unwrap_or_else(|e| panic!("{name}: committed bytes: {e}"));
        if committed != bytes {
            failures.push(name);
        }
        let committed_diag = std::fs::read_to_string(&diag_path).unwrap_or_default();
        if committed_diag != text {
            failures.push(name);
        }
    }
    assert!(
        failures.is_empty(),
        "golden vectors differ: {failures:?} (KEYSMITH_BLESS=1 regenerates them)"
    );
}

#[test]
fn every_kind_has_a_golden_vector() {
    let kinds: Vec<u64> = common::samples()
        .iter()
        .map(|(_, s)| match cbor::decode(&s.payload()).unwrap() {
            Value::Map(m) => m
                .iter()
                .find(|(k, _)| *k == Value::Unsigned(1))
                .map(|(_, v)| v.as_u64("kind").unwrap())
                .unwrap(),
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(
        kinds,
        [1, 2, 3, 4, 5, 6, 7, 8, 9, 32, 33, 34, 35, 36, 37, 38, 39]
    );
}
