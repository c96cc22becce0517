//! Integration tests: pin.
