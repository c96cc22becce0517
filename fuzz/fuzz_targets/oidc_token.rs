#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    entra_graph::fuzzing::oidc_token(data);
});
