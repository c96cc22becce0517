//! Integration tests: the canonical CBOR writer and the bounded reader.

use fido_core::cbor::{decode, decode_prefix_with, decode_with, encode, CborError, Limits, Value};
use proptest::prelude::*;

fn arb_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        any::<u64>().prop_map(Value::Unsigned),
        any::<u64>().prop_map(Value::Negative),
        proptest::collection::vec(any::<u8>(), 0..40).prop_map(Value::Bytes),
        ".{0,20}".prop_map(Value::Text),
        any::<bool>().prop_map(Value::Bool),
        Just(Value::Null),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            // Integer and text keys, as CTAP uses; duplicates removed.
            proptest::collection::btree_map(any::<i32>(), inner.clone(), 0..8).prop_map(|m| {
                Value::Map(m.into_iter().map(|(k, v)| (Value::from(k), v)).collect())
            }),
            proptest::collection::btree_map("[a-z]{0,6}", inner, 0..6).prop_map(|m| {
                Value::Map(m.into_iter().map(|(k, v)| (Value::from(k), v)).collect())
            }),
        ]
    })
}

/// Sorts maps canonically so a decoded canonical value compares equal to the built one.
fn canonicalize(v: Value) -> Value {
    decode_with(&encode(&v), Limits::CANONICAL).expect("our encoding is canonical")
}

proptest! {
    #[test]
    fn encoding_is_canonical_and_round_trips(v in arb_value()) {
        let bytes = encode(&v);
        let strict = decode_with(&bytes, Limits { max_depth: 64, ..Limits::CANONICAL }).unwrap();
        prop_assert_eq!(&strict, &canonicalize(v));
        prop_assert_eq!(encode(&strict), bytes);
    }

    #[test]
    fn reader_never_panics_on_garbage(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = decode(&bytes);
        let _ = decode_with(&bytes, Limits::CANONICAL);
    }

    #[test]
    fn truncation_is_always_an_error(v in arb_value(), cut in any::<prop::sample::Index>()) {
        let bytes = encode(&v);
        let at = cut.index(bytes.len());
        prop_assert!(decode(&bytes[..at]).is_err());
    }
}

#[test]
fn nested_map_bomb_is_bounded() {
    // {0: {0: {0: ...}}} 10 000 deep.
    let mut bomb = Vec::new();
    for _ in 0..10_000 {
        bomb.extend_from_slice(&[0xa1, 0x00]);
    }
    bomb.push(0x00);
    assert_eq!(decode(&bomb), Err(CborError::TooDeep { limit: 16 }));
}

#[test]
fn tag_bomb_is_bounded() {
    let bomb = vec![0xc6u8; 50_000];
    assert!(matches!(decode(&bomb), Err(CborError::TooDeep { .. })));
}

#[test]
fn map_length_bomb_is_refused_before_allocation() {
    // A map declaring 2^32-1 entries in a 6-byte input.
    let err = decode(&[0xba, 0xff, 0xff, 0xff, 0xff, 0x00]).unwrap_err();
    assert!(
        matches!(
            err,
            CborError::LengthTooLarge {
                declared: 0xffff_ffff,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn keys_equal_after_normalisation_are_duplicates() {
    // 0 and 0 written non-shortest (0x18 0x00) are the same key.
    assert!(matches!(
        decode(&[0xa2, 0x00, 0x02, 0x18, 0x00, 0xf6]),
        Err(CborError::DuplicateMapKey { offset: 3 })
    ));
}

#[test]
fn input_size_is_limited() {
    let big = vec![0u8; 100];
    let limits = Limits {
        max_input: 10,
        ..Limits::RESPONSE
    };
    assert_eq!(
        decode_with(&big, limits),
        Err(CborError::InputTooLarge {
            len: 100,
            limit: 10
        })
    );
}

#[test]
fn prefix_decoding_reports_bytes_used() {
    let (v, used) = decode_prefix_with(&[0x82, 0x01, 0x02, 0xff, 0xff], Limits::RESPONSE).unwrap();
    assert_eq!(v, Value::Array(vec![Value::from(1u64), Value::from(2u64)]));
    assert_eq!(used, 3);
}

#[test]
fn floats_and_simple_values_decode() {
    let f = |b: &[u8]| match decode(b).unwrap() {
        Value::Float(x) => x.to_f64(),
        other => panic!("{other:?}"),
    };
    assert_eq!(f(&[0xf9, 0x3c, 0x00]), 1.0);
    assert_eq!(f(&[0xfa, 0x47, 0xc3, 0x50, 0x00]), 100000.0);
    assert_eq!(f(&[0xf9, 0x7c, 0x00]), f64::INFINITY);
    assert_eq!(decode(&[0xf8, 0xff]).unwrap(), Value::Simple(255));
    assert!(matches!(
        decode(&[0xf8, 0x10]),
        Err(CborError::Malformed { .. })
    ));
    assert!(matches!(decode(&[0xff]), Err(CborError::Malformed { .. })));
}

#[test]
fn invalid_utf8_is_rejected() {
    assert_eq!(
        decode(&[0x62, 0xc3, 0x28]),
        Err(CborError::InvalidUtf8 { offset: 0 })
    );
}

#[test]
fn every_recorded_cbor_payload_decodes_and_is_canonical() {
    // Payloads reassembled from real authenticator traffic (status byte stripped); see
    // fuzz/seeds/cbor_decode, produced from tests/fixtures/libfido2.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/cbor_decode");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let v = decode(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(encode(&v), bytes, "{} is canonical", path.display());
        n += 1;
    }
    assert!(n >= 20, "only {n} payloads found");
}
