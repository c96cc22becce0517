#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    entra_graph::fuzzing::emulator_inputs(data);
});
