//! CBOR reader: any bytes, both modes. Re-encoding is stable, and canonical input
//! re-encodes to itself.
#![no_main]

use fido_core::cbor::{decode, decode_with, encode, Limits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = decode(data) {
        let re = encode(&v);
        let back = decode(&re).expect("our encoding decodes");
        // NaN floats are not equal to themselves; compare encodings instead.
        assert_eq!(encode(&back), re);
    }
    if decode_with(data, Limits::CANONICAL).is_ok() {
        let v = decode(data).expect("canonical input decodes leniently too");
        assert_eq!(encode(&v), data, "canonical input re-encodes to itself");
    }
});
