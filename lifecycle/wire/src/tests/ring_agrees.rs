//! The two signature checks (`p256`, *ring*) accept and refuse the same envelope signatures.

use p256::elliptic_curve::PrimeField;
use proptest::prelude::*;

use crate::keys::{sha256, Entropy, PublicKey, SigningKey};

/// Deterministic bytes: SHA-256 of a counter.
struct Counter(u64);

impl Entropy for Counter {
    fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(32) {
            self.0 += 1;
            let block = sha256(&self.0.to_be_bytes());
            chunk.copy_from_slice(&block[..chunk.len()]);
        }
    }
}

fn both(key: &PublicKey, data: &[u8], sig: &[u8]) -> bool {
    let p = key.verify_raw_p256(data, sig).is_ok();
    let r = key.verify_raw_ring(data, sig).is_ok();
    assert_eq!(p, r, "p256 says {p}, ring says {r} for sig {sig:02x?}");
    r
}

/// P-256's group order n, big-endian.
const N: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];

#[test]
fn ring_and_p256_agree() {
    let mut rng = Counter(7);
    for i in 0..24u8 {
        let key = SigningKey::generate_with(&mut rng);
        let public = key.public_key();
        let data = [i; 40];
        let sig = key.sign_raw(&data);
        assert!(both(&public, &data, &sig), "a good signature verifies");

        // High S (n - s) is the same signature to ECDSA: both accept it.
        let r = p256::Scalar::from_repr(<[u8; 32]>::try_from(&sig[..32]).unwrap().into()).unwrap();
        let s = p256::Scalar::from_repr(<[u8; 32]>::try_from(&sig[32..]).unwrap().into()).unwrap();
        let mut high = [0u8; 64];
        high[..32].copy_from_slice(&r.to_bytes());
        high[32..].copy_from_slice(&(-s).to_bytes());
        assert!(both(&public, &data, &high), "high S verifies in both");

        // Out of range and malformed.
        let zero = [0u8; 32];
        for (rr, ss) in [
            (&zero[..], &sig[32..]),
            (&sig[..32], &zero[..]),
            (&N[..], &sig[32..]),
            (&sig[..32], &N[..]),
        ] {
            let bad = [rr, ss].concat();
            assert!(!both(&public, &data, &bad));
        }
        // r above n (n starts ff ff ff ff 00).
        let mut over = sig;
        over[0] = 0xff;
        over[1] = 0xff;
        over[2] = 0xff;
        over[3] = 0xff;
        over[4] = 0xff;
        assert!(!both(&public, &data, &over));
        assert!(!both(&public, &data, &sig[..63]));
        assert!(!both(&public, &data, &[&sig[..], &[0]].concat()));
        assert!(!both(&public, b"other data", &sig));
        let other = SigningKey::generate_with(&mut rng).public_key();
        assert!(!both(&other, &data, &sig));
        let mut flipped = sig;
        flipped[usize::from(i) % 64] ^= 0x01;
        assert!(!both(&public, &data, &flipped));
    }
}

proptest! {
    #[test]
    fn random_signatures_get_one_answer(sig in proptest::collection::vec(any::<u8>(), 0..80), data in proptest::collection::vec(any::<u8>(), 0..64)) {
        let key = SigningKey::generate_with(&mut Counter(1)).public_key();
        both(&key, &data, &sig);
    }
}
