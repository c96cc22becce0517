//! Channel bookkeeping (seq, retransmission, session, ttl) and sealed secrets through the
//! public API.

mod common;

use common::{session_key, Seeded, JOB, SESSION};
use keysmith_wire::*;

#[test]
fn seq_window_accepts_next_recognises_retransmission_refuses_the_rest() {
    let mut w = SeqWindow::new();
    let (a, b, c) = ([1u8; 32], [2u8; 32], [3u8; 32]);
    // Must start at 0.
    assert_eq!(
        w.check(1, &a),
        Err(WireError::SessionBroken {
            expected: 0,
            got: 1
        })
    );
    assert_eq!(w.accept(0, &a), Ok(SeqCheck::Next));
    // Same seq, same bytes: a retransmission (the window does not move).
    assert_eq!(w.accept(0, &a), Ok(SeqCheck::Retransmission));
    assert_eq!(w.expected(), 1);
    // Same seq, other bytes: broken.
    assert_eq!(
        w.check(0, &b),
        Err(WireError::SessionBroken {
            expected: 1,
            got: 0
        })
    );
    assert_eq!(w.accept(1, &b), Ok(SeqCheck::Next));
    // A gap, an old message, an older retransmission: broken.
    assert!(w.check(3, &c).is_err());
    assert!(w.check(0, &a).is_err());
    assert_eq!(w.accept(2, &c), Ok(SeqCheck::Next));
    assert_eq!(w.last(), Some((2, c)));
    // Resumed from stored state, it behaves the same.
    let mut r = SeqWindow::resume(2, c);
    assert_eq!(r.accept(2, &c), Ok(SeqCheck::Retransmission));
    assert_eq!(r.accept(3, &a), Ok(SeqCheck::Next));
    // The last seq there is cannot be followed.
    let mut end = SeqWindow::resume(u64::MAX, a);
    assert!(end.accept(u64::MAX, &b).is_err());
    assert_eq!(end.accept(u64::MAX, &a), Ok(SeqCheck::Retransmission));
}

#[test]
fn channel_checks_session_and_counts_outgoing() {
    let mut ch = Channel::new();
    assert_eq!(ch.next_out(), 0);
    assert_eq!(ch.next_out(), 1);
    assert_eq!(ch.peek_out(), 2);
    // Before the session is known (the server receiving AgentHello), any session passes.
    assert_eq!(ch.receive(None, 0, &[0; 32]), Ok(SeqCheck::Next));
    ch.set_session(SESSION).unwrap();
    assert_eq!(
        ch.set_session(SessionId([1; 16])),
        Err(WireError::SessionMismatch)
    );
    assert_eq!(
        ch.receive(Some(SessionId([1; 16])), 1, &[1; 32]),
        Err(WireError::SessionMismatch)
    );
    assert_eq!(
        ch.receive(None, 1, &[1; 32]),
        Err(WireError::SessionMismatch)
    );
    assert_eq!(ch.receive(Some(SESSION), 1, &[1; 32]), Ok(SeqCheck::Next));
    let resumed = Channel::resume(ch.session(), *ch.incoming(), ch.peek_out());
    assert_eq!(resumed, ch);
}

#[test]
fn ttl_counts_from_receipt_on_the_callers_clock() {
    let d = TtlDeadline::new(1_000, Some(500));
    assert_eq!(d.remaining(1_000), Some(500));
    assert_eq!(d.check(1_499), Ok(()));
    assert_eq!(d.check(1_500), Err(WireError::TtlExpired));
    assert_eq!(d.check(u64::MAX), Err(WireError::TtlExpired));
    // A clock reading before receipt (caller bug) never underflows.
    assert_eq!(d.remaining(0), Some(500));
    let none = TtlDeadline::new(1_000, None);
    assert_eq!(none.remaining(u64::MAX), None);
    assert_eq!(none.check(u64::MAX), Ok(()));
}

fn ctx() -> SecretContext {
    SecretContext {
        session: SESSION,
        job: JOB,
        key_id: Some("key-0001".into()),
        secret_id: 1,
    }
}

#[test]
fn secrets_open_only_with_their_session_key_and_context() {
    let key = session_key();
    let sealed = seal_secret(&key.public(), &ctx(), b"48213907", &mut OsEntropy).unwrap();
    assert_eq!(
        open_secret(&key, &ctx(), &sealed).unwrap().as_slice(),
        b"48213907"
    );
    // Each part of the context matters.
    let variants = [
        SecretContext {
            session: SessionId([0; 16]),
            ..ctx()
        },
        SecretContext {
            job: JobId([0; 16]),
            ..ctx()
        },
        SecretContext {
            key_id: None,
            ..ctx()
        },
        SecretContext {
            key_id: Some("key-0002".into()),
            ..ctx()
        },
        SecretContext {
            secret_id: 2,
            ..ctx()
        },
    ];
    for c in variants {
        assert_eq!(
            open_secret(&key, &c, &sealed),
            Err(WireError::OpenFailed),
            "{c:?}"
        );
    }
    // Another session's key; altered enc / ct.
    let other = SessionKey::generate();
    assert_eq!(
        open_secret(&other, &ctx(), &sealed),
        Err(WireError::OpenFailed)
    );
    let mut bad = sealed.clone();
    bad.enc[10] ^= 1;
    assert_eq!(open_secret(&key, &ctx(), &bad), Err(WireError::OpenFailed));
    let mut bad = sealed.clone();
    bad.ct[0] ^= 1;
    assert_eq!(open_secret(&key, &ctx(), &bad), Err(WireError::OpenFailed));
    bad.ct.clear();
    assert_eq!(open_secret(&key, &ctx(), &bad), Err(WireError::OpenFailed));
    // Not a point: sealing refuses.
    assert_eq!(
        seal_secret(&[4; 65], &ctx(), b"x", &mut OsEntropy),
        Err(WireError::SealFailed)
    );
    // Two seals of one PIN differ (fresh ephemeral key each time).
    let again = seal_secret(&key.public(), &ctx(), b"48213907", &mut OsEntropy).unwrap();
    assert_ne!(again.enc, sealed.enc);
}

#[test]
fn info_is_prefix_and_hash_of_the_cbor_context() {
    // "keysmith/v1 secret" ‖ SHA-256(CBOR [h'5e..', h'10..', "key-0001", 1]).
    let mut cbor = vec![0x84, 0x50];
    cbor.extend([0x5e; 16]);
    cbor.push(0x50);
    cbor.extend([0x10; 16]);
    cbor.push(0x68);
    cbor.extend(b"key-0001");
    cbor.push(0x01);
    let mut want = b"keysmith/v1 secret".to_vec();
    want.extend(sha256(&cbor));
    assert_eq!(ctx().info(), want);
    // No key id is the empty string.
    let none = SecretContext {
        key_id: None,
        ..ctx()
    };
    let empty = SecretContext {
        key_id: Some(String::new()),
        ..ctx()
    };
    assert_eq!(none.info(), empty.info());
}

#[test]
fn holder_nonce_is_base64url_of_sha256_of_pub_and_server_nonce() {
    let pub_key = [4u8; 65];
    let nonce = [9u8; 16];
    let mut input = pub_key.to_vec();
    input.extend(nonce);
    let digest = sha256(&input);
    let n = holder_nonce(&pub_key, &nonce);
    assert_eq!(n.len(), 43);
    // Computed independently with Python's hashlib + base64.urlsafe_b64encode.
    assert_eq!(n, "avs__Ri_PpzmcsMN_ugoGLrWj27XS3JFK8vx5fCU9FU");
    assert!(!n.contains('=') && !n.contains('+') && !n.contains('/'));
    use base64::Engine as _;
    assert_eq!(
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&n)
            .unwrap(),
        digest
    );
}

#[test]
fn seeded_session_keys_are_reproducible() {
    let a = SessionKey::generate_with(&mut Seeded::new(b"s"));
    let b = SessionKey::generate_with(&mut Seeded::new(b"s"));
    assert_eq!(a.public(), b.public());
    assert_ne!(a.public(), SessionKey::generate().public());
}
