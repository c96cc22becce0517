//! Unit tests of the writer and the reader.

use super::*;

fn hex(s: &str) -> Vec<u8> {
    base16ct::mixed::decode_vec(s).expect("hex in test data")
}

#[test]
fn rfc8949_appendix_a_integers() {
    for (v, h) in [
        (Value::from(0u64), "00"),
        (Value::from(23u64), "17"),
        (Value::from(24u64), "1818"),
        (Value::from(100u64), "1864"),
        (Value::from(1000u64), "1903e8"),
        (Value::from(1000000u64), "1a000f4240"),
        (Value::from(1000000000000u64), "1b000000e8d4a51000"),
        (Value::from(u64::MAX), "1bffffffffffffffff"),
        (Value::from(-1i64), "20"),
        (Value::from(-10i64), "29"),
        (Value::from(-100i64), "3863"),
        (Value::from(-1000i64), "3903e7"),
        (Value::Negative(u64::MAX), "3bffffffffffffffff"),
    ] {
        assert_eq!(encode(&v), hex(h), "{v}");
        assert_eq!(decode_with(&hex(h), Limits::CANONICAL).unwrap(), v);
    }
}

#[test]
fn map_keys_sorted_ctap2_canonical() {
    // CTAP2 §8: shorter encodings first, then bytewise: 1, -1, "a", 256, "bb".
    let v = Value::map([
        (Value::from("bb"), Value::from(4u64)),
        (Value::from("a"), Value::from(3u64)),
        (Value::from(-1i64), Value::from(2u64)),
        (Value::from(1u64), Value::from(1u64)),
        (Value::from(256u64), Value::from(5u64)),
    ]);
    assert_eq!(encode(&v), hex("a5010120026161031901000562626204"));
}

#[test]
fn rejects_unsorted_keys_only_in_canonical_mode() {
    let unsorted = hex("a2020101 01".replace(' ', "").as_str());
    assert!(decode(&unsorted).is_ok());
    assert_eq!(
        decode_with(&unsorted, Limits::CANONICAL),
        Err(CborError::UnsortedMapKeys { offset: 3 })
    );
}

#[test]
fn rejects_duplicate_keys_in_every_mode() {
    let dup = hex("a201010101");
    assert_eq!(decode(&dup), Err(CborError::DuplicateMapKey { offset: 3 }));
    let dup_late = hex("a3010102010101");
    assert!(matches!(
        decode(&dup_late),
        Err(CborError::DuplicateMapKey { .. })
    ));
}

#[test]
fn rejects_indefinite_and_trailing_and_short() {
    assert_eq!(
        decode(&hex("9f01ff")),
        Err(CborError::IndefiniteLength { offset: 0 })
    );
    assert_eq!(
        decode(&hex("0101")),
        Err(CborError::TrailingBytes {
            offset: 1,
            count: 1
        })
    );
    assert_eq!(
        decode(&hex("19")),
        Err(CborError::UnexpectedEnd { offset: 1 })
    );
}

#[test]
fn floats_are_kept_bit_exact_and_refused_in_canonical_mode() {
    assert_eq!(
        decode(&hex("f93c00")).unwrap(),
        Value::Float(Float::Half(0x3c00))
    );
    assert_eq!(Float::Half(0x3c00).to_f64(), 1.0);
    assert_eq!(Float::Half(0x0001).to_f64(), 5.960464477539063e-8);
    assert_eq!(Float::Single(0x47c35000).to_f64(), 100000.0);
    assert_eq!(
        decode_with(&hex("f9ffa1"), Limits::CANONICAL),
        Err(CborError::FloatNotAllowed { offset: 0 })
    );
    for h in [
        "f93c00",
        "fa47c35000",
        "fb3ff199999999999a",
        "f90001",
        "f9ffa1",
        "fa7fc00001",
    ] {
        let v = decode(&hex(h)).unwrap();
        assert_eq!(encode(&v), hex(h), "{h}");
    }
}

#[test]
fn rejects_non_shortest_in_canonical_mode() {
    assert!(decode(&hex("1817")).is_ok());
    assert_eq!(
        decode_with(&hex("1817"), Limits::CANONICAL),
        Err(CborError::NonShortestEncoding { offset: 0 })
    );
}

#[test]
fn length_bomb_allocates_nothing() {
    // Byte string claiming 2^63 bytes, array claiming 2^32 items.
    assert!(matches!(
        decode(&hex("5b8000000000000000")),
        Err(CborError::LengthTooLarge { .. })
    ));
    assert!(matches!(
        decode(&hex("9affffffff00")),
        Err(CborError::LengthTooLarge { .. })
    ));
}

#[test]
fn recursion_bomb_is_bounded() {
    let bomb = vec![0x81u8; 100_000];
    assert_eq!(decode(&bomb), Err(CborError::TooDeep { limit: 16 }));
    let indefinite_bomb = vec![0x9fu8; 100_000];
    assert!(decode(&indefinite_bomb).is_err());
}

#[test]
fn typed_access_names_the_field() {
    let v = decode(&hex("a10163616263")).unwrap();
    let m = v.as_map("getInfo").unwrap();
    let err = m
        .require_int(1, "getInfo.versions")
        .unwrap()
        .as_array("getInfo.versions");
    assert_eq!(
        err,
        Err(CborError::WrongType {
            field: "getInfo.versions",
            expected: "array",
            found: "text string"
        })
    );
    assert_eq!(
        m.require_int(2, "getInfo.aaguid").unwrap_err().to_string(),
        "getInfo.aaguid: required field is missing"
    );
}
