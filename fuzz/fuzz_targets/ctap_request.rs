//! Requests as an authenticator receives them: any bytes decode to a typed request or a
//! typed error (never a panic); a decoded request re-encodes to bytes that decode to it.
#![no_main]

use fido_core::commands::{status_for_request_error, Request};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match Request::decode(data) {
        Ok(req) => {
            let bytes = req.encode();
            let back = Request::decode(&bytes).expect("our encoding decodes");
            assert_eq!(back.encode(), bytes);
        }
        Err(e) => {
            let _ = status_for_request_error(&e);
        }
    }
});
