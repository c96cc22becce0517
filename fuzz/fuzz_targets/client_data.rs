//! clientDataJSON: strict parse of any bytes; what parses serializes and parses again.
#![no_main]

use fido_core::clientdata::CollectedClientData;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(cd) = CollectedClientData::parse(data) {
        let json = cd.to_json();
        let back = CollectedClientData::parse(json.as_bytes()).expect("our JSON parses");
        assert_eq!(back.to_json(), json);
    }
});
