//! The decoded data model: [`Value`], [`Float`] and keyed map access ([`MapRef`]).

use core::fmt;

use super::CborError;

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
                write!(f, "h'{}'", base16ct::lower::encode_string(b))
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
