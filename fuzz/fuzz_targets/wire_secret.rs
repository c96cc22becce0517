//! keysmith-wire sealed-secret opening (HPKE base mode) with the golden session key and
//! context: input = enc (65 bytes) ‖ ct. Never a panic.
#![no_main]

use std::sync::OnceLock;

use keysmith_wire::{
    open_secret, sha256, Entropy, JobId, SealedSecret, SecretContext, SessionId, SessionKey,
};
use libfuzzer_sys::fuzz_target;

/// The golden tests' seeded entropy: SHA-256(seed ‖ counter) blocks.
struct Seeded(Vec<u8>, u64, Vec<u8>);

impl Entropy for Seeded {
    fn fill(&mut self, out: &mut [u8]) {
        for b in out.iter_mut() {
            if self.2.is_empty() {
                let mut block = self.0.clone();
                block.extend_from_slice(&self.1.to_be_bytes());
                self.1 += 1;
                self.2 = sha256(&block).to_vec();
            }
            *b = self.2.remove(0);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 65 {
        return;
    }
    let (enc, ct) = data.split_at(65);
    static KEY: OnceLock<SessionKey> = OnceLock::new();
    let key = KEY.get_or_init(|| {
        SessionKey::generate_with(&mut Seeded(
            b"keysmith-wire golden session key".to_vec(),
            0,
            Vec::new(),
        ))
    });
    let ctx = SecretContext {
        session: SessionId([0x5e; 16]),
        job: JobId([0x10; 16]),
        key_id: Some("key-0001".into()),
        secret_id: 1,
    };
    let sealed = SealedSecret {
        id: 1,
        enc: enc.try_into().expect("65 bytes"),
        ct: ct.to_vec(),
    };
    let _ = open_secret(key, &ctx, &sealed);
});
