//! The blocking CTAPHID transport against a key whose answers are the fuzzer's bytes:
//! typed errors, timeouts and recovery, never a panic or a hang.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    fido_transport::hid::fuzzing::drive_transport(data);
});
