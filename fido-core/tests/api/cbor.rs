//! Integration tests: cbor.
