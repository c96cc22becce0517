//! Authenticator data: any bytes parse or fail typed; what parses re-serializes exactly.
#![no_main]

use fido_core::authdata::AuthenticatorData;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(ad) = AuthenticatorData::parse(data) {
        assert_eq!(ad.to_bytes(), data);
        let _ = (ad.cred_protect(), ad.min_pin_length(), ad.cred_blob(), ad.hmac_secret_output());
    }
});
