//! NFC APDU host exchange and virtual card driven by an operation sequence, plus raw
//! command/response APDU parsing; the driver checks the invariants.
#![no_main]

use fido_core::apdu::fuzzing::{decode_operations, run};
use fido_core::apdu::{CommandApdu, ResponseApdu};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    run(&decode_operations(data));
    if let Ok((apdu, form)) = CommandApdu::parse_with_form(data) {
        assert_eq!(apdu.encode(form).expect("parsed APDU re-encodes"), data);
    }
    if let Ok(resp) = ResponseApdu::parse(data) {
        assert_eq!(resp.encode(), data);
    }
});
