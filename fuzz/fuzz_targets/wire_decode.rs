//! keysmith-wire payload decoding (both directions), strict: never a panic; whatever
//! decodes re-encodes to bytes that decode to the same envelope.
#![no_main]

use keysmith_wire::{decode_agent, decode_server, encode_agent, encode_server};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(env) = decode_agent(data) {
        assert_eq!(decode_agent(&encode_agent(&env)).as_ref(), Ok(&env));
    }
    if let Ok(env) = decode_server(data) {
        assert_eq!(decode_server(&encode_server(&env)).as_ref(), Ok(&env));
    }
});
