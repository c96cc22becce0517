//! The strict, bounded reader and its [`Limits`].

use core::cmp::Ordering;

use super::write::{canonical_key_order, encode};
use super::{CborError, Float, Value};

/// Reader limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Deepest nesting of arrays, maps and tags (the top-level item is depth 1).
    pub max_depth: usize,
    /// Largest input accepted, in bytes.
    pub max_input: usize,
    /// Also reject non-shortest encodings and unsorted map keys.
    pub canonical: bool,
}

impl Limits {
    /// Limits for responses from an authenticator: depth 16, 1 MiB, key order not enforced
    /// (duplicates are still rejected).
    pub const RESPONSE: Limits = Limits {
        max_depth: 16,
        max_input: 1 << 20,
        canonical: false,
    };
    /// Like [`Limits::RESPONSE`] but enforcing CTAP2 canonical form.
    pub const CANONICAL: Limits = Limits {
        max_depth: 16,
        max_input: 1 << 20,
        canonical: true,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Self::RESPONSE
    }
}

/// Decodes exactly one item filling `input`, with [`Limits::RESPONSE`].
pub fn decode(input: &[u8]) -> Result<Value, CborError> {
    decode_with(input, Limits::RESPONSE)
}

/// Decodes exactly one item filling `input`, with the given limits.
pub fn decode_with(input: &[u8], limits: Limits) -> Result<Value, CborError> {
    let (value, used) = decode_prefix_with(input, limits)?;
    if used != input.len() {
        return Err(CborError::TrailingBytes {
            offset: used,
            count: input.len() - used,
        });
    }
    Ok(value)
}

/// Decodes one item from the start of `input` and returns it with the number of bytes it
/// used (authenticator data carries CBOR followed by more CBOR).
pub fn decode_prefix_with(input: &[u8], limits: Limits) -> Result<(Value, usize), CborError> {
    if input.len() > limits.max_input {
        return Err(CborError::InputTooLarge {
            len: input.len(),
            limit: limits.max_input,
        });
    }
    let mut reader = Reader {
        input,
        pos: 0,
        limits,
    };
    let value = reader.item(1)?;
    Ok((value, reader.pos))
}

struct Reader<'a> {
    input: &'a [u8],
    pos: usize,
    limits: Limits,
}

impl Reader<'_> {
    fn byte(&mut self) -> Result<u8, CborError> {
        let b = *self
            .input
            .get(self.pos)
            .ok_or(CborError::UnexpectedEnd { offset: self.pos })?;
        self.pos += 1;
        Ok(b)
    }

    fn take(&mut self, n: usize) -> Result<&[u8], CborError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.input.len())
            .ok_or(CborError::UnexpectedEnd {
                offset: self.input.len(),
            })?;
        let s = &self.input[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn remaining(&self) -> usize {
        self.input.len() - self.pos
    }

    /// Reads the argument of a header; returns (major, argument).
    fn head(&mut self) -> Result<(u8, u8, u64), CborError> {
        let start = self.pos;
        let b = self.byte()?;
        let major = b >> 5;
        let info = b & 0x1f;
        let arg = match info {
            0..=23 => info as u64,
            24 => {
                let v = self.byte()? as u64;
                if self.limits.canonical && v < 24 && major != 7 {
                    return Err(CborError::NonShortestEncoding { offset: start });
                }
                v
            }
            25 => {
                let s = self.take(2)?;
                let v = u16::from_be_bytes([s[0], s[1]]) as u64;
                if self.limits.canonical && v <= u8::MAX as u64 && major != 7 {
                    return Err(CborError::NonShortestEncoding { offset: start });
                }
                v
            }
            26 => {
                let s = self.take(4)?;
                let v = u32::from_be_bytes([s[0], s[1], s[2], s[3]]) as u64;
                if self.limits.canonical && v <= u16::MAX as u64 && major != 7 {
                    return Err(CborError::NonShortestEncoding { offset: start });
                }
                v
            }
            27 => {
                let s = self.take(8)?;
                let mut a = [0u8; 8];
                a.copy_from_slice(s);
                let v = u64::from_be_bytes(a);
                if self.limits.canonical && v <= u32::MAX as u64 && major != 7 {
                    return Err(CborError::NonShortestEncoding { offset: start });
                }
                v
            }
            28..=30 => {
                return Err(CborError::Malformed {
                    offset: start,
                    byte: b,
                })
            }
            _ => {
                // info == 31
                if major == 7 {
                    return Err(CborError::Malformed {
                        offset: start,
                        byte: b,
                    });
                }
                return Err(CborError::IndefiniteLength { offset: start });
            }
        };
        Ok((major, info, arg))
    }

    fn length(&self, declared: u64, start: usize, min_item: u64) -> Result<usize, CborError> {
        // Each element needs at least `min_item` bytes, so the input bounds the count.
        let available = self.remaining() as u64 / min_item.max(1);
        if declared > available {
            return Err(CborError::LengthTooLarge {
                offset: start,
                declared,
                available,
            });
        }
        Ok(declared as usize)
    }

    fn item(&mut self, depth: usize) -> Result<Value, CborError> {
        if depth > self.limits.max_depth {
            return Err(CborError::TooDeep {
                limit: self.limits.max_depth,
            });
        }
        let start = self.pos;
        let (major, info, arg) = self.head()?;
        Ok(match major {
            0 => Value::Unsigned(arg),
            1 => Value::Negative(arg),
            2 => {
                let n = self.length(arg, start, 1)?;
                Value::Bytes(self.take(n)?.to_vec())
            }
            3 => {
                let n = self.length(arg, start, 1)?;
                let s = self.take(n)?;
                Value::Text(
                    core::str::from_utf8(s)
                        .map_err(|_| CborError::InvalidUtf8 { offset: start })?
                        .to_owned(),
                )
            }
            4 => {
                let n = self.length(arg, start, 1)?;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.item(depth + 1)?);
                }
                Value::Array(items)
            }
            5 => {
                let n = self.length(arg, start, 2)?;
                let mut entries: Vec<(Value, Value)> = Vec::with_capacity(n);
                // Canonical mode: wire order must be strictly ascending. Lenient mode: any
                // order, but no two keys may be equal once normalised (so that re-encoding
                // can never produce a duplicate).
                let mut prev_key: Option<&[u8]> = None;
                let mut seen = std::collections::HashSet::new();
                let input = self.input;
                for _ in 0..n {
                    let key_start = self.pos;
                    let key = self.item(depth + 1)?;
                    if self.limits.canonical {
                        let key_bytes = &input[key_start..self.pos];
                        if let Some(prev) = prev_key {
                            match canonical_key_order(prev, key_bytes) {
                                Ordering::Less => {}
                                Ordering::Equal => {
                                    return Err(CborError::DuplicateMapKey { offset: key_start })
                                }
                                Ordering::Greater => {
                                    return Err(CborError::UnsortedMapKeys { offset: key_start })
                                }
                            }
                        }
                        prev_key = Some(key_bytes);
                    } else {
                        // Values are equal exactly when their canonical encodings are, so
                        // small maps (all of CTAP's) compare directly; large ones hash.
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
            6 => {
                let inner = self.item(depth + 1)?;
                Value::Tag(arg, Box::new(inner))
            }
            _ => match info {
                20 => Value::Bool(false),
                21 => Value::Bool(true),
                22 => Value::Null,
                23 => Value::Undefined,
                24 => {
                    if arg < 32 {
                        return Err(CborError::Malformed {
                            offset: start,
                            byte: arg as u8,
                        });
                    }
                    Value::Simple(arg as u8)
                }
                25..=27 if self.limits.canonical => {
                    return Err(CborError::FloatNotAllowed { offset: start })
                }
                25 => Value::Float(Float::Half(arg as u16)),
                26 => Value::Float(Float::Single(arg as u32)),
                27 => Value::Float(Float::Double(arg)),
                _ => Value::Simple(info),
            },
        })
    }
}
