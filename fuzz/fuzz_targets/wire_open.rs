//! keysmith-wire envelope verification with the golden vectors' fixed keys: the first byte
//! picks the direction, the rest is a COSE_Sign1. Never a panic; `peek_kid` agrees with
//! what a successful open reports.
#![no_main]

use std::sync::OnceLock;

use keysmith_wire::{open_agent, open_server, peek_kid, sha256, PublicKey, SigningKey};
use libfuzzer_sys::fuzz_target;

fn keys() -> &'static (PublicKey, PublicKey) {
    static KEYS: OnceLock<(PublicKey, PublicKey)> = OnceLock::new();
    KEYS.get_or_init(|| {
        let key = |seed: &[u8]| {
            SigningKey::from_scalar(&sha256(seed))
                .expect("fixed key")
                .public_key()
        };
        (
            key(b"keysmith-wire golden server key"),
            key(b"keysmith-wire golden agent key"),
        )
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&dir, msg)) = data.split_first() else {
        return;
    };
    let (server, agent) = keys();
    let kid = peek_kid(msg);
    if dir % 2 == 0 {
        if let Ok(o) = open_server(msg, std::slice::from_ref(server)) {
            assert_eq!(kid, Ok(o.signer));
        }
    } else if let Ok(o) = open_agent(msg, agent) {
        assert_eq!(kid, Ok(o.signer));
    }
});
