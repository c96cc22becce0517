//! Integration tests: attestation.
