//! Self-service sign-ins in the store: nonces taken once, token ids used once.

use super::super::backends::Backend;
use lifecycle::store::Store;
use std::sync::{Arc, Barrier};

/// A nonce is taken once, only before it expires; a token id is recorded once (a second
/// use is a replay) and forgotten after the token expires. Of stations racing to use
/// the same token, exactly one wins.
pub fn self_service_nonces_and_used_tokens<B: Backend>(b: &B) {
    let s = b.open("selfsvc");
    s.put_nonce("digest-1", 2_000, 1_000).unwrap();
    s.put_nonce("digest-2", 2_000, 1_000).unwrap();
    assert!(s.put_nonce("", 2_000, 1_000).is_err());
    assert!(s.take_nonce("digest-1", 1_500).unwrap());
    assert!(!s.take_nonce("digest-1", 1_500).unwrap(), "taken twice");
    assert!(!s.take_nonce("digest-2", 2_001).unwrap(), "expired");
    assert!(!s.take_nonce("never-issued", 1_500).unwrap());

    assert!(s.use_token_id("iss", "uti-1", 10_000, 1_000).unwrap());
    assert!(
        !s.use_token_id("iss", "uti-1", 10_000, 2_000).unwrap(),
        "replay"
    );
    assert!(
        s.use_token_id("other-iss", "uti-1", 10_000, 2_000).unwrap(),
        "ids are per issuer"
    );
    assert!(s.use_token_id("iss", "", 10_000, 1_000).is_err());
    // Still refused up to the token's expiry; forgotten after it (the token is dead).
    assert!(!s.use_token_id("iss", "uti-1", 10_000, 10_000).unwrap());
    assert!(s.use_token_id("iss", "uti-1", 20_000, 10_001).unwrap());

    // Another station (another handle on the same database) sees the same records.
    let s2 = b.open("selfsvc");
    assert!(!s2.use_token_id("iss", "uti-1", 20_000, 10_002).unwrap());

    // Racing stations: exactly one first use.
    let stores: Vec<Arc<B::S>> = (0..4).map(|_| Arc::new(b.open("selfsvc"))).collect();
    let barrier = Arc::new(Barrier::new(stores.len()));
    let wins: usize = std::thread::scope(|scope| {
        let handles: Vec<_> = stores
            .iter()
            .map(|st| {
                let st = st.clone();
                let barrier = barrier.clone();
                scope.spawn(move || {
                    barrier.wait();
                    usize::from(st.use_token_id("iss", "uti-race", 50_000, 11_000).unwrap())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(wins, 1);
}
