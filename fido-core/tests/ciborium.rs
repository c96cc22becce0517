//! fido-core's CBOR reader against ciborium (issue 17 item 7).
//!
//! (a) Differential: the same bytes through fido-core's reader and through ciborium; on
//! every item fido-core accepts they agree (`ciborium/differential.rs`, shared with the
//! `cbor_differential` fuzz target).
//! (b) The candidate reader on ciborium-ll's header codec (`ciborium/ll_reader.rs`, timed by
//! the decode bench) returns exactly what fido-core's reader returns, errors included, in
//! both modes: it keeps every strictness rule. It was not adopted (ARCHITECTURE.md).

#[path = "ciborium/differential.rs"]
mod differential;
#[path = "ciborium/ll_reader.rs"]
mod ll_reader;

use std::path::Path;

use differential::{check, ciborium_view, Outcome};
use fido_core::cbor::{decode_with, encode, CborError, Float, Limits, Value};
use proptest::collection::vec;
use proptest::prelude::*;

fn hex(s: &str) -> Vec<u8> {
    base16ct::mixed::decode_vec(s).expect("hex in test data")
}

/// fido-core's reader and the ciborium-ll candidate agree exactly, in both modes.
fn same_as_candidate(data: &[u8]) {
    for limits in [Limits::RESPONSE, Limits::CANONICAL] {
        let ours = decode_with(data, limits);
        let candidate = ll_reader::decode_with(data, limits);
        assert_eq!(
            ours, candidate,
            "canonical={} input {data:02x?}",
            limits.canonical
        );
    }
}

fn both(data: &[u8]) -> Outcome {
    same_as_candidate(data);
    check(data)
}

// ---- generators ----------------------------------------------------------------------

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<u64>().prop_map(Value::Unsigned),
        (0u64..300).prop_map(Value::Unsigned),
        any::<u64>().prop_map(Value::Negative),
        (0u64..300).prop_map(Value::Negative),
        vec(any::<u8>(), 0..24).prop_map(Value::Bytes),
        "\\PC{0,12}".prop_map(Value::Text),
        any::<bool>().prop_map(Value::Bool),
        Just(Value::Null),
        Just(Value::Undefined),
        prop_oneof![0u8..20, 32u8..=255].prop_map(Value::Simple),
        any::<u16>().prop_map(|b| Value::Float(Float::Half(b))),
        any::<u32>().prop_map(|b| Value::Float(Float::Single(b))),
        any::<u64>().prop_map(|b| Value::Float(Float::Double(b))),
        (2u64..=3, vec(any::<u8>(), 0..20))
            .prop_map(|(t, b)| Value::Tag(t, Box::new(Value::Bytes(b)))),
    ]
}

/// A map's entries with keys made unique (fido-core refuses duplicates in every mode).
fn unique(entries: Vec<(Value, Value)>) -> Value {
    let mut seen = std::collections::HashSet::new();
    Value::Map(
        entries
            .into_iter()
            .filter(|(k, _)| seen.insert(encode(k)))
            .collect(),
    )
}

fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Value::Array),
            vec((inner.clone(), inner.clone()), 0..6).prop_map(unique),
            (any::<u64>(), inner).prop_map(|(t, v)| Value::Tag(t, Box::new(v))),
        ]
    })
}

/// Encodes `v` with a head width chosen per head from `choices` (0 = shortest, 1..=3 =
/// wider, 4 = an indefinite length where the type allows one) and map entries in the order
/// given: non-canonical but, apart from indefinite lengths, well-formed.
struct Loose<'a> {
    choices: &'a [u8],
    next: usize,
    out: Vec<u8>,
}

impl Loose<'_> {
    fn choice(&mut self) -> u8 {
        let c = self.choices.get(self.next).copied().unwrap_or(0);
        self.next += 1;
        c
    }

    fn head(&mut self, major: u8, n: u64) {
        let m = major << 5;
        let sizes: &[u8] = &[1, 2, 3, 5, 9];
        let shortest = match n {
            0..=23 => 0,
            24..=0xff => 1,
            0x100..=0xffff => 2,
            0x1_0000..=0xffff_ffff => 3,
            _ => 4,
        };
        let pick = (shortest + (self.choice() % 4) as usize).min(4);
        match sizes[pick] {
            1 => self.out.push(m | n as u8),
            2 => self.out.extend_from_slice(&[m | 24, n as u8]),
            3 => {
                self.out.push(m | 25);
                self.out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            5 => {
                self.out.push(m | 26);
                self.out.extend_from_slice(&(n as u32).to_be_bytes());
            }
            _ => {
                self.out.push(m | 27);
                self.out.extend_from_slice(&n.to_be_bytes());
            }
        }
    }

    fn indefinite(&mut self) -> bool {
        self.choices.get(self.next).is_some_and(|c| *c % 8 == 4) && {
            self.next += 1;
            true
        }
    }

    fn value(&mut self, v: &Value) {
        match v {
            Value::Unsigned(n) => self.head(0, *n),
            Value::Negative(n) => self.head(1, *n),
            Value::Bytes(_) | Value::Text(_) if self.indefinite() => {
                let (major, b): (u8, &[u8]) = match v {
                    Value::Text(s) => (3, s.as_bytes()),
                    Value::Bytes(b) => (2, b),
                    _ => unreachable!(),
                };
                self.out.push((major << 5) | 31);
                self.head(major, b.len() as u64);
                self.out.extend_from_slice(b);
                self.out.push(0xff);
            }
            Value::Bytes(b) => {
                self.head(2, b.len() as u64);
                self.out.extend_from_slice(b);
            }
            Value::Text(s) => {
                self.head(3, s.len() as u64);
                self.out.extend_from_slice(s.as_bytes());
            }
            Value::Array(items) => {
                let indefinite = self.indefinite();
                if indefinite {
                    self.out.push(0x9f);
                } else {
                    self.head(4, items.len() as u64);
                }
                items.iter().for_each(|i| self.value(i));
                if indefinite {
                    self.out.push(0xff);
                }
            }
            Value::Map(entries) => {
                let indefinite = self.indefinite();
                if indefinite {
                    self.out.push(0xbf);
                } else {
                    self.head(5, entries.len() as u64);
                }
                for (k, v) in entries {
                    self.value(k);
                    self.value(v);
                }
                if indefinite {
                    self.out.push(0xff);
                }
            }
            Value::Tag(t, inner) => {
                self.head(6, *t);
                self.value(inner);
            }
            other => encode_leaf(other, &mut self.out),
        }
    }
}

fn encode_leaf(v: &Value, out: &mut Vec<u8>) {
    fido_core::cbor::encode_into(v, out);
}

fn loose(v: &Value, choices: &[u8]) -> Vec<u8> {
    let mut l = Loose {
        choices,
        next: 0,
        out: Vec::new(),
    };
    l.value(v);
    l.out
}

fn contains_indefinite(choices: &[u8]) -> bool {
    choices.iter().any(|c| c % 8 == 4)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// The canonical encoding of any value: both readers read it, to the same value.
    #[test]
    fn canonical_encodings_agree(v in value()) {
        let bytes = encode(&v);
        let outcome = both(&bytes);
        let expected = if ciborium_view(&v).is_some() { Outcome::Agreed } else { Outcome::OutsideCiboriumModel };
        prop_assert_eq!(outcome, expected);
        // Maps come back in canonical order, so compare encodings.
        let back = decode_with(&bytes, Limits::RESPONSE).expect("canonical encoding reads");
        prop_assert_eq!(encode(&back), bytes);
    }

    /// Non-shortest heads, unsorted maps and indefinite lengths: the lenient reader and
    /// ciborium agree; the canonical reader refuses with the rule that was broken, and so
    /// does the ciborium-ll candidate.
    #[test]
    fn loose_encodings_agree(v in value(), choices in vec(0u8..8, 0..64)) {
        let bytes = loose(&v, &choices);
        let outcome = both(&bytes);
        if outcome == Outcome::StricterThanCiborium {
            prop_assert!(contains_indefinite(&choices));
        }
    }

    /// Any bytes at all.
    #[test]
    fn arbitrary_bytes_agree(bytes in vec(any::<u8>(), 0..48)) {
        both(&bytes);
    }

    /// Canonical encodings with one byte changed, or cut short.
    #[test]
    fn mutated_encodings_agree(v in value(), at in any::<usize>(), byte in any::<u8>(), cut in any::<bool>()) {
        let mut bytes = encode(&v);
        let i = at % bytes.len();
        if cut { bytes.truncate(i) } else { bytes[i] = byte }
        both(&bytes);
    }
}

// ---- fixed cases ----------------------------------------------------------------------

/// Every recorded authenticator payload in the fuzz seeds agrees, and most are inside
/// ciborium's model.
#[test]
fn recorded_payloads_agree() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/cbor_decode");
    let mut agreed = 0;
    let mut total = 0;
    for entry in std::fs::read_dir(&dir).expect("seed folder") {
        let data = std::fs::read(entry.expect("entry").path()).expect("seed");
        total += 1;
        // A seed may carry the CTAP status byte first; try both.
        for payload in [&data[..], data.get(1..).unwrap_or_default()] {
            if both(payload) == Outcome::Agreed {
                agreed += 1;
            }
        }
    }
    assert!(
        total >= 10 && agreed >= total / 2,
        "{agreed} agreed of {total} seeds"
    );
}

/// The three places where ciborium's data model differs, each pinned.
#[test]
fn documented_model_differences() {
    // undefined reads as null.
    assert_eq!(check(&hex("f7")), Outcome::Agreed);
    // A bignum that fits 64 bits reads as an integer; a wider one stays a tag.
    assert_eq!(check(&hex("c2420102")), Outcome::Agreed);
    assert_eq!(check(&hex("c249010000000000000000")), Outcome::Agreed);
    // Over 16 bytes ciborium keeps the tag as it is.
    assert_eq!(
        check(&hex("c35101000000000000000000000000000000ff")),
        Outcome::Agreed
    );
    // A negative bignum beyond i128 is refused by ciborium only.
    assert_eq!(
        check(&hex("c350ffffffffffffffffffffffffffffffff")),
        Outcome::OutsideCiboriumModel
    );
    // Simple values other than false/true/null/undefined are outside ciborium's Value.
    assert_eq!(check(&hex("e0")), Outcome::OutsideCiboriumModel);
    assert_eq!(check(&hex("f8ff")), Outcome::OutsideCiboriumModel);
}

/// What ciborium reads and fido-core refuses: only fido-core's strictness rules.
#[test]
fn fido_core_is_stricter_only_where_documented() {
    for (h, rule) in [
        ("9f01ff", CborError::IndefiniteLength { offset: 0 }),
        ("5f4101ff", CborError::IndefiniteLength { offset: 0 }),
        ("a201010102", CborError::DuplicateMapKey { offset: 3 }),
        (
            "f814",
            CborError::Malformed {
                offset: 0,
                byte: 0x14,
            },
        ),
    ] {
        let bytes = hex(h);
        assert_eq!(both(&bytes), Outcome::StricterThanCiborium, "{h}");
        assert_eq!(decode_with(&bytes, Limits::RESPONSE), Err(rule), "{h}");
    }
    let deep = [vec![0x81u8; 17], vec![0x00]].concat();
    assert_eq!(both(&deep), Outcome::StricterThanCiborium);
}

/// The candidate keeps each canonical rule with fido-core's exact error.
#[test]
fn candidate_keeps_every_strictness_rule() {
    for (h, err) in [
        ("1817", CborError::NonShortestEncoding { offset: 0 }),
        ("a2020101 01", CborError::UnsortedMapKeys { offset: 3 }),
        ("f93c00", CborError::FloatNotAllowed { offset: 0 }),
        (
            "5b8000000000000000",
            CborError::LengthTooLarge {
                offset: 0,
                declared: 1 << 63,
                available: 0,
            },
        ),
        ("19", CborError::UnexpectedEnd { offset: 1 }),
        (
            "0101",
            CborError::TrailingBytes {
                offset: 1,
                count: 1,
            },
        ),
        ("1f", CborError::IndefiniteLength { offset: 0 }),
        (
            "1c",
            CborError::Malformed {
                offset: 0,
                byte: 0x1c,
            },
        ),
        (
            "ff",
            CborError::Malformed {
                offset: 0,
                byte: 0xff,
            },
        ),
        ("62c328", CborError::InvalidUtf8 { offset: 0 }),
    ] {
        let bytes = hex(&h.replace(' ', ""));
        assert_eq!(
            ll_reader::decode_with(&bytes, Limits::CANONICAL),
            Err(err.clone()),
            "{h}"
        );
        assert_eq!(decode_with(&bytes, Limits::CANONICAL), Err(err), "{h}");
    }
    let bomb = vec![0x81u8; 100_000];
    assert_eq!(
        ll_reader::decode_with(&bomb, Limits::RESPONSE),
        Err(CborError::TooDeep { limit: 16 })
    );
}
