//! [`CborError`]: what went wrong reading CBOR or interpreting it as CTAP.

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
