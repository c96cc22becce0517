//! CTAP2 canonical CBOR: a writer that always produces the canonical form and a strict,
//! bounded reader.
//!
//! The writer ([`encode`]) emits definite lengths, the shortest integer and length
//! encodings, and map keys sorted the CTAP2 way (shorter encoding first, then bytewise),
//! whatever order the caller built the map in.
//!
//! The reader ([`decode`], [`decode_with`]) never recurses deeper than
//! [`Limits::max_depth`], never allocates more than the input could hold (a declared
//! length larger than the remaining bytes is an error before anything is allocated),
//! rejects indefinite lengths, duplicate map keys and trailing bytes, and, with
//! [`Limits::canonical`], also non-shortest encodings and unsorted map keys (as needed
//! for signed structures such as the credential public key inside authenticator data).
//!
//! Typed decoding uses the accessors on [`Value`] and [`MapRef`], which name the field
//! in the error when a value has the wrong type or is missing.

use core::cmp::Ordering;
use core::fmt;

/// A CBOR data item.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// Major type 0: an unsigned integer.
    Unsigned(u64),
    /// Major type 1: the negative integer `-1 - n` for the stored `n`.
    Negative(u64),
    /// Major type 2: a byte string.
    Bytes(Vec<u8>),
    /// Major type 3: a text string.
    Text(String),
    /// Major type 4: an array.
    Array(Vec<Value>),
    /// Major type 5: a map, in the order it was read or built (encoding sorts it).
    Map(Vec<(Value, Value)>),
    /// Major type 6: a tagged item.
    Tag(u64, Box<Value>),
    /// Simple values 20 and 21.
    Bool(bool),
    /// Simple value 22.
    Null,
    /// Simple value 23.
    Undefined,
    /// Other simple values (0..=19, 32..=255).
    Simple(u8),
    /// A floating-point number, kept bit-exact in the width it was read in (CTAP itself
    /// carries none; they are kept so that unknown fields survive a round trip).
    Float(Float),
}

/// The bits of a CBOR floating-point number, in the width it had on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Float {
    /// IEEE 754 half precision.
    Half(u16),
    /// IEEE 754 single precision.
    Single(u32),
    /// IEEE 754 double precision.
    Double(u64),
}

impl Float {
    /// The value as `f64` (exact for every width).
    pub fn to_f64(self) -> f64 {
        match self {
            Float::Half(h) => f16_to_f64(h),
            Float::Single(x) => f32::from_bits(x) as f64,
            Float::Double(x) => f64::from_bits(x),
        }
    }
}

/// What went wrong while reading CBOR or interpreting it as a CTAP structure.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CborError {
    /// The input ended inside a data item.
    #[error("CBOR ends early at byte {offset}")]
    UnexpectedEnd {
        /// Offset where more bytes were needed.
        offset: usize,
    },
    /// Bytes follow the single top-level item.
    #[error("{count} unexpected bytes after the CBOR item at byte {offset}")]
    TrailingBytes {
        /// Offset of the first extra byte.
        offset: usize,
        /// How many extra bytes there are.
        count: usize,
    },
    /// A reserved additional-information value (28..=30) or a misplaced break byte.
    #[error("malformed CBOR header byte 0x{byte:02x} at byte {offset}")]
    Malformed {
        /// Offset of the header.
        offset: usize,
        /// The header byte.
        byte: u8,
    },
    /// Indefinite-length items are not allowed in CTAP2.
    #[error("indefinite-length CBOR item at byte {offset} (not allowed in CTAP2)")]
    IndefiniteLength {
        /// Offset of the header.
        offset: usize,
    },
    /// An integer or length was not encoded in its shortest form (canonical mode only).
    #[error("non-canonical (not shortest) CBOR encoding at byte {offset}")]
    NonShortestEncoding {
        /// Offset of the header.
        offset: usize,
    },
    /// A floating-point value where CTAP2 canonical form is required (CTAP carries none).
    #[error("floating-point value at byte {offset} (CTAP2 canonical CBOR carries none)")]
    FloatNotAllowed {
        /// Offset of the header.
        offset: usize,
    },
    /// Map keys are not in CTAP2 canonical order (canonical mode only).
    #[error("CBOR map keys out of canonical order at byte {offset}")]
    UnsortedMapKeys {
        /// Offset of the out-of-order key.
        offset: usize,
    },
    /// A map holds the same key twice.
    #[error("duplicate CBOR map key at byte {offset}")]
    DuplicateMapKey {
        /// Offset of the repeated key.
        offset: usize,
    },
    /// Nesting is deeper than the reader allows.
    #[error("CBOR nested deeper than {limit} levels")]
    TooDeep {
        /// The depth limit in force.
        limit: usize,
    },
    /// A declared length cannot fit in the input or exceeds a limit.
    #[error("CBOR length {declared} at byte {offset} exceeds what is available ({available})")]
    LengthTooLarge {
        /// Offset of the header.
        offset: usize,
        /// The length the header declared.
        declared: u64,
        /// The most that could be valid there.
        available: u64,
    },
    /// The input is larger than the reader accepts.
    #[error("CBOR input of {len} bytes exceeds the limit of {limit}")]
    InputTooLarge {
        /// Input length.
        len: usize,
        /// The limit in force.
        limit: usize,
    },
    /// A text string is not valid UTF-8.
    #[error("CBOR text string at byte {offset} is not valid UTF-8")]
    InvalidUtf8 {
        /// Offset of the header.
        offset: usize,
    },
    /// A field has the wrong CBOR type.
    #[error("{field}: expected {expected}, found {found}")]
    WrongType {
        /// The field (e.g. `getInfo.versions`).
        field: &'static str,
        /// What the field must be.
        expected: &'static str,
        /// What was found.
        found: &'static str,
    },
    /// A required field is absent.
    #[error("{field}: required field is missing")]
    MissingField {
        /// The field.
        field: &'static str,
    },
    /// A field has the right type but a value that is not allowed.
    #[error("{field}: {reason}")]
    InvalidValue {
        /// The field.
        field: &'static str,
        /// Why the value is not allowed.
        reason: String,
    },
}

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
fn canonical_key_order(a: &[u8], b: &[u8]) -> Ordering {
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

fn f16_to_f64(h: u16) -> f64 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = ((h >> 10) & 0x1f) as i32;
    let frac = (h & 0x3ff) as f64;
    let v = match exp {
        0 => frac * 2f64.powi(-24),
        31 => {
            if frac == 0.0 {
                f64::INFINITY
            } else {
                f64::NAN
            }
        }
        e => (1.0 + frac / 1024.0) * 2f64.powi(e - 15),
    };
    sign * v
}

impl Value {
    /// A short name of the item's type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Unsigned(_) => "unsigned integer",
            Value::Negative(_) => "negative integer",
            Value::Bytes(_) => "byte string",
            Value::Text(_) => "text string",
            Value::Array(_) => "array",
            Value::Map(_) => "map",
            Value::Tag(..) => "tag",
            Value::Bool(_) => "boolean",
            Value::Null => "null",
            Value::Undefined => "undefined",
            Value::Simple(_) => "simple value",
            Value::Float(_) => "float",
        }
    }

    fn wrong(&self, field: &'static str, expected: &'static str) -> CborError {
        CborError::WrongType {
            field,
            expected,
            found: self.type_name(),
        }
    }

    /// A map built from entries (encoding sorts them canonically).
    pub fn map<K: Into<Value>>(entries: impl IntoIterator<Item = (K, Value)>) -> Value {
        Value::Map(entries.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// An integer as `i128` (covers the whole CBOR integer range).
    pub fn as_integer(&self, field: &'static str) -> Result<i128, CborError> {
        match self {
            Value::Unsigned(n) => Ok(*n as i128),
            Value::Negative(n) => Ok(-1 - *n as i128),
            other => Err(other.wrong(field, "integer")),
        }
    }

    /// An integer that fits `i64`.
    pub fn as_i64(&self, field: &'static str) -> Result<i64, CborError> {
        let n = self.as_integer(field)?;
        i64::try_from(n).map_err(|_| CborError::InvalidValue {
            field,
            reason: format!("integer {n} out of range"),
        })
    }

    /// An unsigned integer.
    pub fn as_u64(&self, field: &'static str) -> Result<u64, CborError> {
        match self {
            Value::Unsigned(n) => Ok(*n),
            other => Err(other.wrong(field, "unsigned integer")),
        }
    }

    /// An unsigned integer that fits `u32`.
    pub fn as_u32(&self, field: &'static str) -> Result<u32, CborError> {
        let n = self.as_u64(field)?;
        u32::try_from(n).map_err(|_| CborError::InvalidValue {
            field,
            reason: format!("{n} does not fit 32 bits"),
        })
    }

    /// An unsigned integer that fits `u8`.
    pub fn as_u8(&self, field: &'static str) -> Result<u8, CborError> {
        let n = self.as_u64(field)?;
        u8::try_from(n).map_err(|_| CborError::InvalidValue {
            field,
            reason: format!("{n} does not fit 8 bits"),
        })
    }

    /// A byte string.
    pub fn as_bytes(&self, field: &'static str) -> Result<&[u8], CborError> {
        match self {
            Value::Bytes(b) => Ok(b),
            other => Err(other.wrong(field, "byte string")),
        }
    }

    /// A byte string of exactly `N` bytes.
    pub fn as_byte_array<const N: usize>(&self, field: &'static str) -> Result<[u8; N], CborError> {
        let b = self.as_bytes(field)?;
        b.try_into().map_err(|_| CborError::InvalidValue {
            field,
            reason: format!("expected {N} bytes, found {}", b.len()),
        })
    }

    /// A text string.
    pub fn as_text(&self, field: &'static str) -> Result<&str, CborError> {
        match self {
            Value::Text(s) => Ok(s),
            other => Err(other.wrong(field, "text string")),
        }
    }

    /// A boolean.
    pub fn as_bool(&self, field: &'static str) -> Result<bool, CborError> {
        match self {
            Value::Bool(b) => Ok(*b),
            other => Err(other.wrong(field, "boolean")),
        }
    }

    /// An array.
    pub fn as_array(&self, field: &'static str) -> Result<&[Value], CborError> {
        match self {
            Value::Array(a) => Ok(a),
            other => Err(other.wrong(field, "array")),
        }
    }

    /// A map, wrapped for keyed access.
    pub fn as_map(&self, field: &'static str) -> Result<MapRef<'_>, CborError> {
        match self {
            Value::Map(entries) => Ok(MapRef { entries, field }),
            other => Err(other.wrong(field, "map")),
        }
    }

    /// An array of text strings.
    pub fn as_text_array(&self, field: &'static str) -> Result<Vec<String>, CborError> {
        self.as_array(field)?
            .iter()
            .map(|v| v.as_text(field).map(str::to_owned))
            .collect()
    }
}

/// Keyed access to a decoded map; errors name the field.
#[derive(Clone, Copy, Debug)]
pub struct MapRef<'a> {
    entries: &'a [(Value, Value)],
    field: &'static str,
}

impl<'a> MapRef<'a> {
    /// The entries in wire order.
    pub fn entries(&self) -> &'a [(Value, Value)] {
        self.entries
    }

    /// The name this map was read under.
    pub fn field(&self) -> &'static str {
        self.field
    }

    /// The value under an integer key.
    pub fn get_int(&self, key: i64) -> Option<&'a Value> {
        self.entries
            .iter()
            .find(|(k, _)| matches!(k.as_integer(""), Ok(n) if n == key as i128))
            .map(|(_, v)| v)
    }

    /// The value under a text key.
    pub fn get_text(&self, key: &str) -> Option<&'a Value> {
        self.entries
            .iter()
            .find(|(k, _)| matches!(k, Value::Text(s) if s == key))
            .map(|(_, v)| v)
    }

    /// The value under an integer key, or [`CborError::MissingField`] naming `field`.
    pub fn require_int(&self, key: i64, field: &'static str) -> Result<&'a Value, CborError> {
        self.get_int(key).ok_or(CborError::MissingField { field })
    }

    /// The value under a text key, or [`CborError::MissingField`] naming `field`.
    pub fn require_text(&self, key: &str, field: &'static str) -> Result<&'a Value, CborError> {
        self.get_text(key).ok_or(CborError::MissingField { field })
    }
}

impl From<u64> for Value {
    fn from(n: u64) -> Self {
        Value::Unsigned(n)
    }
}
impl From<u32> for Value {
    fn from(n: u32) -> Self {
        Value::Unsigned(n as u64)
    }
}
impl From<u8> for Value {
    fn from(n: u8) -> Self {
        Value::Unsigned(n as u64)
    }
}
impl From<usize> for Value {
    fn from(n: usize) -> Self {
        Value::Unsigned(n as u64)
    }
}
impl From<i64> for Value {
    fn from(n: i64) -> Self {
        if n >= 0 {
            Value::Unsigned(n as u64)
        } else {
            Value::Negative((-1 - n) as u64)
        }
    }
}
impl From<i32> for Value {
    fn from(n: i32) -> Self {
        Value::from(n as i64)
    }
}
impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}
impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Text(s.to_owned())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Text(s)
    }
}
impl From<Vec<u8>> for Value {
    fn from(b: Vec<u8>) -> Self {
        Value::Bytes(b)
    }
}
impl From<&[u8]> for Value {
    fn from(b: &[u8]) -> Self {
        Value::Bytes(b.to_vec())
    }
}
impl From<Vec<Value>> for Value {
    fn from(a: Vec<Value>) -> Self {
        Value::Array(a)
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Unsigned(n) => write!(f, "{n}"),
            Value::Negative(n) => write!(f, "{}", -1 - *n as i128),
            Value::Bytes(b) => {
                write!(f, "h'")?;
                for x in b {
                    write!(f, "{x:02x}")?;
                }
                write!(f, "'")
            }
            Value::Text(s) => write!(f, "{s:?}"),
            Value::Array(a) => {
                write!(f, "[")?;
                for (i, v) in a.iter().enumerate() {
                    if i > 0 {
                        write!(f, ", ")?;
                    }
                    write!(f, "{v}")?;
                }
                write!(f, "]")
            }
            Value::Map(m) => {
                write!(f, "{{")?;
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        write!(f, ", ")?;
                    }
                    write!(f, "{k}: {v}")?;
                }
                write!(f, "}}")
            }
            Value::Tag(t, v) => write!(f, "{t}({v})"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Null => write!(f, "null"),
            Value::Undefined => write!(f, "undefined"),
            Value::Simple(s) => write!(f, "simple({s})"),
            Value::Float(x) => write!(f, "{}", x.to_f64()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
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
}
