//! The canonical writer: definite lengths, shortest heads, CTAP2 map-key order.

use core::cmp::Ordering;

use super::{Float, Value};

/// Encodes `value` in CTAP2 canonical form.
pub fn encode(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    encode_into(value, &mut out);
    out
}

/// Appends the canonical encoding of `value` to `out`.
pub fn encode_into(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Unsigned(n) => write_head(out, 0, *n),
        Value::Negative(n) => write_head(out, 1, *n),
        Value::Bytes(b) => {
            write_head(out, 2, b.len() as u64);
            out.extend_from_slice(b);
        }
        Value::Text(s) => {
            write_head(out, 3, s.len() as u64);
            out.extend_from_slice(s.as_bytes());
        }
        Value::Array(items) => {
            write_head(out, 4, items.len() as u64);
            for item in items {
                encode_into(item, out);
            }
        }
        Value::Map(entries) => {
            let mut encoded: Vec<(Vec<u8>, &Value)> =
                entries.iter().map(|(k, v)| (encode(k), v)).collect();
            encoded.sort_by(|a, b| canonical_key_order(&a.0, &b.0));
            write_head(out, 5, encoded.len() as u64);
            for (k, v) in encoded {
                out.extend_from_slice(&k);
                encode_into(v, out);
            }
        }
        Value::Tag(tag, inner) => {
            write_head(out, 6, *tag);
            encode_into(inner, out);
        }
        Value::Bool(false) => out.push(0xf4),
        Value::Bool(true) => out.push(0xf5),
        Value::Null => out.push(0xf6),
        Value::Undefined => out.push(0xf7),
        Value::Simple(s) => {
            if *s < 24 {
                out.push(0xe0 | *s);
            } else {
                out.push(0xf8);
                out.push(*s);
            }
        }
        Value::Float(Float::Half(h)) => {
            out.push(0xf9);
            out.extend_from_slice(&h.to_be_bytes());
        }
        Value::Float(Float::Single(x)) => {
            out.push(0xfa);
            out.extend_from_slice(&x.to_be_bytes());
        }
        Value::Float(Float::Double(x)) => {
            out.push(0xfb);
            out.extend_from_slice(&x.to_be_bytes());
        }
    }
}

/// CTAP2 canonical key order: shorter encoding first, then bytewise.
pub(super) fn canonical_key_order(a: &[u8], b: &[u8]) -> Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

fn write_head(out: &mut Vec<u8>, major: u8, n: u64) {
    let m = major << 5;
    if n < 24 {
        out.push(m | n as u8);
    } else if n <= u8::MAX as u64 {
        out.push(m | 24);
        out.push(n as u8);
    } else if n <= u16::MAX as u64 {
        out.push(m | 25);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else if n <= u32::MAX as u64 {
        out.push(m | 26);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    } else {
        out.push(m | 27);
        out.extend_from_slice(&n.to_be_bytes());
    }
}
