//! WebAuthn attestation objects and CTAP makeCredential responses: parse, verify against a
//! fixed clientDataHash, and re-encode what parsed.
#![no_main]

use fido_core::attestation::AttestationObject;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(obj) = AttestationObject::from_cbor(data) {
        let _ = obj.verify(&[7u8; 32]);
        let again = AttestationObject::from_cbor(&obj.to_cbor()).expect("our encoding parses");
        assert_eq!(again.auth_data_bytes(), obj.auth_data_bytes());
    }
    if let Ok(v) = fido_core::cbor::decode(data) {
        if let Ok(obj) = AttestationObject::from_ctap_response(&v) {
            let _ = obj.verify(&[7u8; 32]);
        }
    }
});
