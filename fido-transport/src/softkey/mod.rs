//! The software authenticator: a CTAP 2.1 authenticator in Rust for tests, demos and CI.
