//! PIN/UV protocol decryption of authenticator-supplied ciphertexts (tokens, PIN hashes)
//! with fixed shared secrets: typed errors on bad lengths, never a panic.
#![no_main]

use fido_core::pin::{decrypt_pin_hash, PinUvAuthProtocol, PinUvAuthToken, Permissions, SharedSecret};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for (protocol, len) in [(PinUvAuthProtocol::One, 32), (PinUvAuthProtocol::Two, 64)] {
        let shared = SharedSecret::from_bytes(protocol, &vec![0x42; len]).expect("valid length");
        let _ = PinUvAuthToken::decrypt(protocol, &shared, data, Permissions::GET_ASSERTION, None);
        let _ = decrypt_pin_hash(&shared, data);
        let _ = shared.verify(data, data);
    }
});
