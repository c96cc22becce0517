//! fido-core's CBOR reader against ciborium (issue 17 item 7a): on every item fido-core
//! accepts, ciborium reads the same value from the same bytes; where ciborium reads an item
//! fido-core refuses, fido-core's reason is one of its documented strictness rules. The
//! checker is shared with the proptests in `fido-core/tests/ciborium.rs`.
#![no_main]

#[path = "../../fido-core/tests/ciborium/differential.rs"]
mod differential;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    differential::check(data);
});
