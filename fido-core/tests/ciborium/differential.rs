//! Differential check of fido-core's CBOR reader against ciborium (issue 17 item 7a).
//!
//! Shared by the proptests in `fido-core/tests/ciborium.rs` and the `cbor_differential`
//! fuzz target (`fuzz/fuzz_targets/cbor_differential.rs` includes this file by path).
//!
//! The rule: every item fido-core's reader accepts, ciborium reads to the same value and
//! consumes the same number of bytes. ciborium's data model differs from fido-core's in
//! three documented ways, which [`ciborium_view`] maps:
//! - `undefined` reads as `Null` (ciborium has no `Undefined`);
//! - tags 2 and 3 over at most 16 bytes read as integers when they fit 64 bits (ciborium
//!   folds bignums), and a negative bignum beyond `i128` is refused;
//! - simple values other than false/true/null/undefined are refused (ciborium's `Value` has
//!   no simple values).
//!
//! The other direction is checked too: when ciborium reads an item that fido-core refuses,
//! fido-core's error must be one of its documented strictness rules (indefinite lengths,
//! duplicate map keys, the depth limit, a two-byte simple value below 32), never a
//! length, UTF-8 or truncation error that ciborium would have hit as well.

use ciborium::value::{Integer, Value as CValue};
use fido_core::cbor::{decode_prefix_with, decode_with, CborError, Limits, Value};

/// What ciborium's `Value` makes of `v`, or `None` where its data model cannot hold `v`
/// (then ciborium must refuse the input).
pub fn ciborium_view(v: &Value) -> Option<CValue> {
    Some(match v {
        Value::Unsigned(n) => CValue::Integer(Integer::from(*n)),
        Value::Negative(n) => CValue::Integer(Integer::try_from(-1 - *n as i128).ok()?),
        Value::Bytes(b) => CValue::Bytes(b.clone()),
        Value::Text(s) => CValue::Text(s.clone()),
        Value::Array(items) => {
            CValue::Array(items.iter().map(ciborium_view).collect::<Option<_>>()?)
        }
        Value::Map(entries) => CValue::Map(
            entries
                .iter()
                .map(|(k, v)| Some((ciborium_view(k)?, ciborium_view(v)?)))
                .collect::<Option<_>>()?,
        ),
        Value::Tag(tag, inner) => match (*tag, &**inner) {
            (2 | 3, Value::Bytes(b)) if b.len() <= 16 => return bignum(*tag == 3, b),
            _ => CValue::Tag(*tag, Box::new(ciborium_view(inner)?)),
        },
        Value::Bool(b) => CValue::Bool(*b),
        Value::Null | Value::Undefined => CValue::Null,
        Value::Simple(_) => return None,
        Value::Float(f) => CValue::Float(f.to_f64()),
    })
}

/// ciborium's bignum folding (`ciborium::de`, tags 2/3 over ≤ 16 bytes).
fn bignum(negative: bool, bytes: &[u8]) -> Option<CValue> {
    let raw = bytes.iter().fold(0u128, |acc, b| (acc << 8) | *b as u128);
    let folded = |tag: u64, raw: u128| {
        let be = raw.to_be_bytes();
        let first = be.iter().position(|b| *b != 0).unwrap_or(be.len());
        CValue::Tag(tag, Box::new(CValue::Bytes(be[first..].to_vec())))
    };
    if !negative {
        return Some(match u64::try_from(raw) {
            Ok(n) => CValue::Integer(n.into()),
            Err(_) => folded(2, raw),
        });
    }
    // ciborium refuses a negative bignum whose magnitude does not fit i128.
    i128::try_from(raw).ok()?;
    Some(match u64::try_from(raw) {
        Ok(_) => CValue::Integer(Integer::try_from(-1 - raw as i128).ok()?),
        Err(_) => folded(3, raw),
    })
}

/// Structural equality, with floats compared bit for bit (any NaN equals any NaN: CBOR
/// half/single NaN payloads widen differently in the two readers).
pub fn same(a: &CValue, b: &CValue) -> bool {
    match (a, b) {
        (CValue::Float(x), CValue::Float(y)) => {
            (x.is_nan() && y.is_nan()) || x.to_bits() == y.to_bits()
        }
        (CValue::Array(x), CValue::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y))
        }
        (CValue::Map(x), CValue::Map(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((xk, xv), (yk, yv))| same(xk, yk) && same(xv, yv))
        }
        (CValue::Tag(s, x), CValue::Tag(t, y)) => s == t && same(x, y),
        _ => a == b,
    }
}

/// What [`check`] saw, for the callers' coverage counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Both readers read the item, to the same value.
    Agreed,
    /// fido-core read an item outside ciborium's data model, and ciborium refused it.
    OutsideCiboriumModel,
    /// fido-core refused the input under one of its strictness rules; ciborium read it.
    StricterThanCiborium,
    /// Both refused the input.
    BothRefused,
}

/// Decodes `data` with fido-core (lenient and canonical limits) and with ciborium, and
/// panics on any disagreement.
pub fn check(data: &[u8]) -> Outcome {
    let mut rest = data;
    let theirs: Result<CValue, _> = ciborium::de::from_reader(&mut rest);
    let their_len = data.len() - rest.len();
    let outcome = match decode_prefix_with(data, Limits::RESPONSE) {
        Ok((ours, our_len)) => match ciborium_view(&ours) {
            Some(expected) => {
                let got = match theirs {
                    Ok(got) => got,
                    Err(e) => panic!("ciborium refused ({e:?}) an item fido-core read: {ours}"),
                };
                assert!(
                    same(&got, &expected),
                    "readers disagree: fido-core {ours} (as ciborium: {expected:?}), ciborium {got:?}"
                );
                assert_eq!(
                    our_len, their_len,
                    "readers consumed different lengths: {ours}"
                );
                Outcome::Agreed
            }
            None => {
                assert!(
                    theirs.is_err(),
                    "ciborium read {theirs:?} from an item outside its model: {ours}"
                );
                Outcome::OutsideCiboriumModel
            }
        },
        Err(e) => match theirs {
            Ok(got) => {
                assert!(
                    matches!(
                        e,
                        CborError::IndefiniteLength { .. }
                            | CborError::DuplicateMapKey { .. }
                            | CborError::TooDeep { .. }
                            | CborError::Malformed { .. }
                            | CborError::InputTooLarge { .. }
                    ),
                    "fido-core refused ({e}) an item ciborium reads as well-formed: {got:?}"
                );
                Outcome::StricterThanCiborium
            }
            Err(_) => Outcome::BothRefused,
        },
    };
    // Canonical form is a subset of what the lenient reader accepts, to the same value.
    if let Ok(canonical) = decode_with(data, Limits::CANONICAL) {
        let lenient = decode_with(data, Limits::RESPONSE).expect("canonical input reads leniently");
        assert_eq!(canonical, lenient);
        assert!(outcome_accepts(outcome), "canonical input refused");
    }
    outcome
}

fn outcome_accepts(o: Outcome) -> bool {
    matches!(o, Outcome::Agreed | Outcome::OutsideCiboriumModel)
}
