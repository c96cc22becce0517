//! CTAPHID host and device state machines driven by a structure-aware operation sequence
//! (messages, raw reports, ticks, cancels); the driver checks the invariants.
#![no_main]

use fido_core::ctaphid::fuzzing::{run_operations, Operation};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = run_operations(&Operation::decode_all(data));
});
