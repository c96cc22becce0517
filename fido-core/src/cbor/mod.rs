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

mod error;
mod read;
mod value;
mod write;

pub use error::CborError;
pub use read::{decode, decode_prefix_with, decode_with, Limits};
pub use value::{Float, MapRef, Value};
pub use write::{encode, encode_into};

#[cfg(test)]
mod tests;
