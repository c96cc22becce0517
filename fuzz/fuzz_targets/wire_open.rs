//! keysmith-wire envelope verification with the golden vectors' fixed keys: the first byte
//! picks the direction, the rest is a COSE_Sign1. Never a panic; `peek_kid` agrees with
//! what a successful open reports.
#![no_main]

use keysmith_wire::{open_agent, open_server, peek_kid, sha256, SigningKey};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&dir, msg)) = data.split_first() else {
        return;
    };
    let server = SigningKey::from_scalar(&sha256(b"keysmith-wire golden server key"))
        .expect("fixed key")
        .public_key();
    let agent = SigningKey::from_scalar(&sha256(b"keysmith-wire golden agent key"))
        .expect("fixed key")
        .public_key();
    let kid = peek_kid(msg);
    if dir % 2 == 0 {
        if let Ok(o) = open_server(msg, &[server]) {
            assert_eq!(kid, Ok(o.signer));
        }
    } else if let Ok(o) = open_agent(msg, &agent) {
        assert_eq!(kid, Ok(o.signer));
    }
});
