//! COSE keys from canonical CBOR, then a signature check over garbage (must fail or pass
//! without panicking); a parsed key re-encodes to bytes that parse to the same key
//! (unknown parameters such as `kid` are not kept).
#![no_main]

use fido_core::cose::CoseKey;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let split = data.len() / 2;
    let (key_bytes, sig) = data.split_at(split);
    if let Ok((key, used)) = CoseKey::from_cbor_canonical_prefix(key_bytes) {
        let _ = used;
        let again = CoseKey::from_cbor_canonical(&key.to_cbor()).expect("our encoding parses");
        assert_eq!(again, key);
        let _ = key.verify(b"message", sig);
    }
});
