//! Integration tests: apdu.
