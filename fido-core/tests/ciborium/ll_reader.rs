//! fido-core's strict reader rebuilt on `ciborium-ll`'s header codec (issue 17 item 7b):
//! the candidate that was measured against `fido_core::cbor::decode_with` and not adopted
//! (ARCHITECTURE.md, "CBOR: why fido-core keeps its own reader"; figures in
//! docs/benchmarks.md). The decode bench (`fido-core/benches/decode.rs`) includes this file
//! to time it; the proptests in `fido-core/tests/ciborium.rs` check that it returns exactly
//! what fido-core's reader returns, errors included.
//!
//! Everything ciborium-ll's public `Decoder::pull` does not say had to be re-derived from
//! the raw input, marked "(re-derived)" below: `Header` drops the head's width, so the
//! shortest-form rule, the two-byte simple values below 32 and the float widths come from
//! `Decoder::offset()` and the input bytes; `Syntax` errors do not distinguish a reserved
//! additional-information value from an indefinite integer; and the decoder reads through
//! `ciborium_io::Read`, so every string is copied out of the input instead of sliced.

#![allow(dead_code)]

use core::cmp::Ordering;

use ciborium_ll::{Decoder, Header};
use fido_core::cbor::{encode, CborError, Float, Limits, Value};

/// Decodes exactly one item filling `input`, like `fido_core::cbor::decode_with`.
pub fn decode_with(input: &[u8], limits: Limits) -> Result<Value, CborError> {
    if input.len() > limits.max_input {
        return Err(CborError::InputTooLarge {
            len: input.len(),
            limit: limits.max_input,
        });
    }
    let mut reader = LlReader {
        dec: Decoder::from(input),
        input,
        limits,
    };
    let value = reader.item(1)?;
    let used = reader.dec.offset();
    if used != input.len() {
        return Err(CborError::TrailingBytes {
            offset: used,
            count: input.len() - used,
        });
    }
    Ok(value)
}

struct LlReader<'a> {
    dec: Decoder<&'a [u8]>,
    input: &'a [u8],
    limits: Limits,
}

/// Bytes of the shortest head for argument `v`.
fn shortest(v: u64) -> usize {
    match v {
        0..=23 => 1,
        24..=0xff => 2,
        0x100..=0xffff => 3,
        0x1_0000..=0xffff_ffff => 5,
        _ => 9,
    }
}

impl LlReader<'_> {
    fn end(&self) -> CborError {
        CborError::UnexpectedEnd {
            offset: self.input.len(),
        }
    }

    /// Pulls one header; returns it with its offset and encoded size.
    fn head(&mut self) -> Result<(Header, usize, usize), CborError> {
        let start = self.dec.offset();
        let header = match self.dec.pull() {
            Ok(h) => h,
            Err(ciborium_ll::Error::Io(_)) => return Err(self.end()),
            Err(ciborium_ll::Error::Syntax(_)) => {
                // (re-derived) ciborium-ll calls both of these `Syntax`.
                let byte = self.input[start];
                return Err(if byte & 0x1f == 31 && byte >> 5 != 7 {
                    CborError::IndefiniteLength { offset: start }
                } else {
                    CborError::Malformed {
                        offset: start,
                        byte,
                    }
                });
            }
        };
        let size = self.dec.offset() - start;
        let arg = match header {
            Header::Positive(n) | Header::Negative(n) | Header::Tag(n) => Some(n),
            Header::Bytes(Some(n))
            | Header::Text(Some(n))
            | Header::Array(Some(n))
            | Header::Map(Some(n)) => Some(n as u64),
            Header::Bytes(None) | Header::Text(None) | Header::Array(None) | Header::Map(None) => {
                return Err(CborError::IndefiniteLength { offset: start })
            }
            Header::Break => {
                return Err(CborError::Malformed {
                    offset: start,
                    byte: 0xff,
                })
            }
            Header::Simple(_) | Header::Float(_) => None,
        };
        // (re-derived) the shortest-form rule, from the head's size.
        if let Some(arg) = arg {
            if self.limits.canonical && size > shortest(arg) {
                return Err(CborError::NonShortestEncoding { offset: start });
            }
        }
        Ok((header, start, size))
    }

    fn length(&mut self, declared: usize, start: usize, min_item: u64) -> Result<usize, CborError> {
        let remaining = (self.input.len() - self.dec.offset()) as u64;
        let available = remaining / min_item;
        if declared as u64 > available {
            return Err(CborError::LengthTooLarge {
                offset: start,
                declared: declared as u64,
                available,
            });
        }
        Ok(declared)
    }

    fn read(&mut self, n: usize) -> Result<Vec<u8>, CborError> {
        let mut buf = vec![0u8; n];
        ciborium_io::Read::read_exact(&mut self.dec, &mut buf).map_err(|_| self.end())?;
        Ok(buf)
    }

    fn item(&mut self, depth: usize) -> Result<Value, CborError> {
        if depth > self.limits.max_depth {
            return Err(CborError::TooDeep {
                limit: self.limits.max_depth,
            });
        }
        let (header, start, size) = self.head()?;
        Ok(match header {
            Header::Positive(n) => Value::Unsigned(n),
            Header::Negative(n) => Value::Negative(n),
            Header::Bytes(Some(n)) => {
                let n = self.length(n, start, 1)?;
                Value::Bytes(self.read(n)?)
            }
            Header::Text(Some(n)) => {
                let n = self.length(n, start, 1)?;
                let bytes = self.read(n)?;
                Value::Text(
                    String::from_utf8(bytes)
                        .map_err(|_| CborError::InvalidUtf8 { offset: start })?,
                )
            }
            Header::Array(Some(n)) => {
                let n = self.length(n, start, 1)?;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.item(depth + 1)?);
                }
                Value::Array(items)
            }
            Header::Map(Some(n)) => {
                let n = self.length(n, start, 2)?;
                let mut entries: Vec<(Value, Value)> = Vec::with_capacity(n);
                let mut prev_key: Option<(usize, usize)> = None;
                let mut seen = std::collections::HashSet::new();
                for _ in 0..n {
                    let key_start = self.dec.offset();
                    let key = self.item(depth + 1)?;
                    if self.limits.canonical {
                        let key_end = self.dec.offset();
                        let key_bytes = &self.input[key_start..key_end];
                        if let Some((s, e)) = prev_key {
                            let prev = &self.input[s..e];
                            match prev
                                .len()
                                .cmp(&key_bytes.len())
                                .then_with(|| prev.cmp(key_bytes))
                            {
                                Ordering::Less => {}
                                Ordering::Equal => {
                                    return Err(CborError::DuplicateMapKey { offset: key_start })
                                }
                                Ordering::Greater => {
                                    return Err(CborError::UnsortedMapKeys { offset: key_start })
                                }
                            }
                        }
                        prev_key = Some((key_start, key_end));
                    } else {
                        let duplicate = if n <= 32 {
                            entries.iter().any(|(k, _)| *k == key)
                        } else {
                            !seen.insert(encode(&key))
                        };
                        if duplicate {
                            return Err(CborError::DuplicateMapKey { offset: key_start });
                        }
                    }
                    let value = self.item(depth + 1)?;
                    entries.push((key, value));
                }
                Value::Map(entries)
            }
            Header::Tag(t) => Value::Tag(t, Box::new(self.item(depth + 1)?)),
            Header::Simple(s) => match (s, size) {
                // (re-derived) a two-byte simple value below 32 is not well-formed.
                (0..=31, 2) => {
                    return Err(CborError::Malformed {
                        offset: start,
                        byte: s,
                    })
                }
                (20, _) => Value::Bool(false),
                (21, _) => Value::Bool(true),
                (22, _) => Value::Null,
                (23, _) => Value::Undefined,
                _ => Value::Simple(s),
            },
            Header::Float(_) if self.limits.canonical => {
                return Err(CborError::FloatNotAllowed { offset: start })
            }
            Header::Float(_) => {
                // (re-derived) the wire bits: ciborium-ll widens every float to f64, which
                // loses the width and a half/single NaN's payload.
                let raw = &self.input[start + 1..start + size];
                Value::Float(match size {
                    3 => Float::Half(u16::from_be_bytes([raw[0], raw[1]])),
                    5 => Float::Single(u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]])),
                    _ => {
                        let mut a = [0u8; 8];
                        a.copy_from_slice(raw);
                        Float::Double(u64::from_be_bytes(a))
                    }
                })
            }
            // Indefinite lengths and breaks were refused in `head`.
            Header::Bytes(None)
            | Header::Text(None)
            | Header::Array(None)
            | Header::Map(None)
            | Header::Break => unreachable!("refused in head"),
        })
    }
}
