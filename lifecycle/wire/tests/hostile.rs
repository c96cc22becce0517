//! Hostile inputs: every bit flip, every truncation, duplicate keys, indefinite lengths,
//! depth bombs, oversize, unknown keys / steps / kinds, and COSE headers outside the profile.
//! Each is an error, never a panic, never an accepted message.

mod common;

use common::{agent_key, samples, server_key, session_key, Sample, Seeded, JOB, SESSION};
use fido_core::cbor::{self, Value};
use keysmith_wire::*;

#[test]
fn every_bit_flip_is_refused() {
    for (name, sample) in samples() {
        let bytes = sample.seal();
        for i in 0..bytes.len() {
            // One bit per byte, rotating, keeps the run short while touching every byte
            // and every bit position.
            let mut b = bytes.clone();
            b[i] ^= 1 << (i % 8);
            assert!(
                sample.open_any(&b).is_err(),
                "{name}: flip at byte {i} accepted"
            );
        }
    }
}

#[test]
fn every_truncation_and_extension_is_refused() {
    for (name, sample) in samples() {
        let bytes = sample.seal();
        for n in 0..bytes.len() {
            assert!(
                sample.open_any(&bytes[..n]).is_err(),
                "{name}: prefix {n} accepted"
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(
            sample.open_any(&longer).is_err(),
            "{name}: trailing byte accepted"
        );
    }
}

#[test]
fn payload_truncations_never_panic() {
    for (_, sample) in samples() {
        let p = sample.payload();
        for n in 0..p.len() {
            assert!(decode_agent(&p[..n]).is_err());
            assert!(decode_server(&p[..n]).is_err());
        }
    }
}

/// The payload of `sample` with its map rebuilt by `edit`, encoded canonically.
fn edited(sample: &Sample, edit: impl FnOnce(&mut Vec<(Value, Value)>)) -> Vec<u8> {
    let Value::Map(mut m) = cbor::decode(&sample.payload()).unwrap() else {
        unreachable!()
    };
    edit(&mut m);
    cbor::encode(&Value::Map(m))
}

fn body_of(m: &mut [(Value, Value)]) -> &mut Vec<(Value, Value)> {
    match m
        .iter_mut()
        .find(|(k, _)| *k == Value::Unsigned(6))
        .map(|(_, v)| v)
    {
        Some(Value::Map(b)) => b,
        _ => unreachable!(),
    }
}

fn sample(name: &str) -> Sample {
    samples().into_iter().find(|(n, _)| *n == name).unwrap().1
}

#[test]
fn unknown_keys_are_refused_where_the_contract_says() {
    let job = sample("34-job");
    // In the envelope.
    let p = edited(&job, |m| m.push((Value::Unsigned(7), Value::Bool(true))));
    assert_eq!(
        decode_server(&p),
        Err(WireError::UnknownField {
            field: "envelope",
            key: 7
        })
    );
    // A text key in the envelope.
    let p = edited(&job, |m| {
        m.push((Value::Text("x".into()), Value::Bool(true)))
    });
    assert!(matches!(
        decode_server(&p),
        Err(WireError::UnknownField {
            field: "envelope",
            ..
        })
    ));
    // In the Job body.
    let p = edited(&job, |m| {
        body_of(m).push((Value::Unsigned(9), Value::Unsigned(0)))
    });
    assert_eq!(
        decode_server(&p),
        Err(WireError::UnknownField {
            field: "Job",
            key: 9
        })
    );
    // In expect.
    let p = edited(&job, |m| {
        let b = body_of(m);
        let (_, e) = b
            .iter_mut()
            .find(|(k, _)| *k == Value::Unsigned(3))
            .unwrap();
        let Value::Map(e) = e else { unreachable!() };
        e.push((Value::Unsigned(4), Value::Bool(true)));
    });
    assert_eq!(
        decode_server(&p),
        Err(WireError::UnknownField {
            field: "Job.expect",
            key: 4
        })
    );
    // In a step: Reset with an extra narrowing key an older device does not know.
    let p = edited(&job, |m| {
        steps_of(body_of(m))[2].push((Value::Unsigned(3), Value::Bool(true)))
    });
    assert_eq!(
        decode_server(&p),
        Err(WireError::UnknownField {
            field: "step",
            key: 3
        })
    );
    // In a PinSource (SetPin is step 4).
    let p = edited(&job, |m| {
        let step = &mut steps_of(body_of(m))[4];
        let (_, pin) = step
            .iter_mut()
            .find(|(k, _)| *k == Value::Unsigned(1))
            .unwrap();
        *pin = Value::map([(5u64, Value::Bool(true))]);
    });
    assert_eq!(
        decode_server(&p),
        Err(WireError::UnknownField {
            field: "SetPin.pin",
            key: 5
        })
    );
    // Two PinSource keys at once.
    let p = edited(&job, |m| {
        let step = &mut steps_of(body_of(m))[4];
        let (_, pin) = step
            .iter_mut()
            .find(|(k, _)| *k == Value::Unsigned(1))
            .unwrap();
        *pin = Value::map([(1u64, Value::Unsigned(1)), (3u64, Value::Bool(true))]);
    });
    assert!(matches!(
        decode_server(&p),
        Err(WireError::InvalidValue {
            field: "SetPin.pin",
            ..
        })
    ));
    // An unknown step type refuses the whole job.
    let p = edited(&job, |m| {
        let b = body_of(m);
        let (_, steps) = b
            .iter_mut()
            .find(|(k, _)| *k == Value::Unsigned(5))
            .unwrap();
        let Value::Array(steps) = steps else {
            unreachable!()
        };
        steps.push(Value::map([(0u64, Value::Unsigned(99))]));
    });
    assert_eq!(
        decode_server(&p),
        Err(WireError::UnknownStep { step_type: 99 })
    );
    // In an agent body.
    let p = edited(&sample("06-job-result"), |m| {
        body_of(m).push((Value::Unsigned(4), Value::Null))
    });
    assert_eq!(
        decode_agent(&p),
        Err(WireError::UnknownField {
            field: "JobResult",
            key: 4
        })
    );
}

fn steps_of(body: &mut [(Value, Value)]) -> Vec<&mut Vec<(Value, Value)>> {
    let (_, steps) = body
        .iter_mut()
        .find(|(k, _)| *k == Value::Unsigned(5))
        .unwrap();
    let Value::Array(steps) = steps else {
        unreachable!()
    };
    steps
        .iter_mut()
        .map(|s| match s {
            Value::Map(m) => m,
            _ => unreachable!(),
        })
        .collect()
}

#[test]
fn unknown_keys_are_ignored_in_informational_maps() {
    let hello = sample("01-agent-hello");
    let p = edited(&hello, |m| {
        let b = body_of(m);
        let (_, host) = b
            .iter_mut()
            .find(|(k, _)| *k == Value::Unsigned(7))
            .unwrap();
        let Value::Map(host) = host else {
            unreachable!()
        };
        host.push((Value::Unsigned(9), Value::Text("arm64".into())));
    });
    assert!(decode_agent(&p).is_ok());
    for name in ["05-progress", "07-abort"] {
        let p = edited(&sample(name), |m| {
            body_of(m).push((Value::Unsigned(9), Value::Null))
        });
        assert!(decode_agent(&p).is_ok(), "{name}");
    }
    // Not in caps.
    let p = edited(&hello, |m| {
        let b = body_of(m);
        let (_, caps) = b
            .iter_mut()
            .find(|(k, _)| *k == Value::Unsigned(6))
            .unwrap();
        let Value::Map(caps) = caps else {
            unreachable!()
        };
        caps.push((Value::Unsigned(9), Value::Bool(true)));
    });
    assert!(matches!(
        decode_agent(&p),
        Err(WireError::UnknownField { .. })
    ));
}

#[test]
fn envelope_rules() {
    // Kinds: unknown, and of the other direction.
    let job = sample("34-job");
    let set_kind = |k: u64| {
        edited(&job, move |m| {
            m.iter_mut()
                .find(|(key, _)| *key == Value::Unsigned(1))
                .unwrap()
                .1 = Value::Unsigned(k)
        })
    };
    assert_eq!(
        decode_server(&set_kind(40)),
        Err(WireError::UnknownKind { kind: 40 })
    );
    assert_eq!(
        decode_server(&set_kind(0)),
        Err(WireError::UnknownKind { kind: 0 })
    );
    assert_eq!(
        decode_agent(&job.payload()),
        Err(WireError::WrongDirection { kind: 34 })
    );
    assert_eq!(
        decode_server(&sample("08-ready").payload()),
        Err(WireError::WrongDirection { kind: 8 })
    );
    // A job message without its job id; a non-hello without a session.
    let no_job = edited(&job, |m| m.retain(|(k, _)| *k != Value::Unsigned(4)));
    assert_eq!(
        decode_server(&no_job),
        Err(WireError::MissingField {
            field: "envelope.job"
        })
    );
    let no_session = edited(&job, |m| m.retain(|(k, _)| *k != Value::Unsigned(2)));
    assert_eq!(
        decode_server(&no_session),
        Err(WireError::MissingField {
            field: "envelope.session"
        })
    );
    // A hello with a session; a device message with a ttl.
    let hello = sample("01-agent-hello");
    let p = edited(&hello, |m| {
        m.push((Value::Unsigned(2), Value::Bytes(vec![0; 16])))
    });
    assert!(matches!(
        decode_agent(&p),
        Err(WireError::InvalidValue {
            field: "envelope.session",
            ..
        })
    ));
    let p = edited(&hello, |m| m.push((Value::Unsigned(5), Value::Unsigned(1))));
    assert!(matches!(
        decode_agent(&p),
        Err(WireError::InvalidValue {
            field: "envelope.ttl_ms",
            ..
        })
    ));
    // Wrong sizes and types.
    let p = edited(&job, |m| {
        m.iter_mut()
            .find(|(k, _)| *k == Value::Unsigned(2))
            .unwrap()
            .1 = Value::Bytes(vec![0; 15])
    });
    assert!(matches!(
        decode_server(&p),
        Err(WireError::WrongType {
            field: "envelope.session",
            ..
        })
    ));
    let p = edited(&job, |m| {
        m.iter_mut()
            .find(|(k, _)| *k == Value::Unsigned(3))
            .unwrap()
            .1 = Value::Negative(0)
    });
    assert!(matches!(
        decode_server(&p),
        Err(WireError::WrongType {
            field: "envelope.seq",
            ..
        })
    ));
    // Not a map at all.
    assert!(decode_server(&cbor::encode(&Value::Array(vec![]))).is_err());
}

#[test]
fn strict_cbor_is_required() {
    let p = sample("37-wait").payload();
    // Duplicate key: append a second `1: 37` by hand (a5 → a6 entries).
    let mut dup = p.clone();
    assert_eq!(dup[0], 0xa5);
    dup[0] = 0xa6;
    dup.extend_from_slice(&[0x01, 0x18, 0x25]);
    assert!(matches!(decode_server(&dup), Err(WireError::Cbor(_))));
    // Indefinite-length map.
    let mut indef = p.clone();
    indef[0] = 0xbf;
    indef.push(0xff);
    assert!(matches!(decode_server(&indef), Err(WireError::Cbor(_))));
    // Keys out of canonical order: {100: 0, -1: 0} is bytewise-sorted but not CTAP2 order
    // (RFC 8949 §4.2.3 puts the shorter encoding -1 first).
    let bytewise = [0xa2, 0x18, 0x64, 0x00, 0x20, 0x00];
    assert!(matches!(decode_server(&bytewise), Err(WireError::Cbor(_))));
    assert_eq!(
        cbor::encode(&Value::map([
            (100i64, Value::Unsigned(0)),
            (-1i64, Value::Unsigned(0))
        ])),
        [0xa2, 0x20, 0x00, 0x18, 0x64, 0x00]
    );
    // Non-shortest integer: seq 5 as 0x18 0x05.
    let mut long = p.clone();
    let at = long.windows(2).position(|w| w == [0x03, 0x05]).unwrap();
    long.splice(at + 1..at + 2, [0x18, 0x05]);
    assert!(matches!(decode_server(&long), Err(WireError::Cbor(_))));
    // Depth bomb: 10_000 nested arrays.
    let mut bomb = vec![0x81; 10_000];
    bomb.push(0x00);
    assert!(decode_server(&bomb).is_err());
    assert!(open_server(&bomb, &[server_key().public_key()]).is_err());
    // Oversize: a 1 MiB + 1 byte input, and a declared length past the end.
    let big = vec![0u8; (1 << 20) + 1];
    assert!(matches!(
        decode_server(&big),
        Err(WireError::TooLarge { .. })
    ));
    assert!(matches!(
        open_server(&vec![0u8; 2 << 20], &[]),
        Err(WireError::TooLarge { .. })
    ));
    assert!(decode_server(&[0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]).is_err());
}

#[test]
fn size_limits_of_the_contract() {
    let mut job = common::sample_job();
    job.steps = vec![DeviceStep::ReadInfo; 65];
    let env = |job: Job| Envelope {
        session: Some(SESSION),
        seq: 1,
        job: Some(JOB),
        ttl_ms: None,
        msg: ServerMessage::Job(job),
    };
    assert_eq!(
        decode_server(&encode_server(&env(job.clone()))),
        Err(WireError::TooLarge {
            field: "Job.steps",
            limit: 64
        })
    );
    job.steps.truncate(64);
    assert!(decode_server(&encode_server(&env(job.clone()))).is_ok());
    let s = job.secrets[0].clone();
    job.secrets = vec![s; 9];
    assert!(matches!(
        decode_server(&encode_server(&env(job.clone()))),
        Err(WireError::TooLarge {
            field: "Job.secrets",
            ..
        })
    ));
    job.secrets.truncate(8);
    job.operation = "x".repeat(4097);
    assert!(matches!(
        decode_server(&encode_server(&env(job.clone()))),
        Err(WireError::TooLarge {
            field: "Job.operation",
            ..
        })
    ));
    job.operation = "issue".into();
    job.steps = vec![DeviceStep::Probe {
        rp_id: "r".into(),
        allow: vec![vec![1]; 257],
        client_data_json: vec![],
    }];
    assert!(matches!(
        decode_server(&encode_server(&env(job))),
        Err(WireError::TooLarge {
            field: "Probe.allow",
            ..
        })
    ));
    // id_token up to 16 KiB.
    let auth = |n: usize| Envelope {
        session: Some(SESSION),
        seq: 1,
        job: None,
        ttl_ms: None,
        msg: AgentMessage::HolderAuth(HolderAuth {
            id_token: "t".repeat(n).into(),
        }),
    };
    assert!(decode_agent(&encode_agent(&auth(16 * 1024))).is_ok());
    assert!(matches!(
        decode_agent(&encode_agent(&auth(16 * 1024 + 1))),
        Err(WireError::TooLarge {
            field: "HolderAuth.id_token",
            ..
        })
    ));
}

#[test]
fn errors_never_show_values() {
    let secret_token = "SECRET-TOKEN-VALUE";
    let p = edited(&sample("04-holder-auth"), |m| {
        body_of(m)[0].1 = Value::Bytes(secret_token.as_bytes().to_vec());
    });
    let e = decode_agent(&p).unwrap_err();
    assert!(!format!("{e} {e:?}").contains("SECRET"), "{e}");
    let a = HolderAuth {
        id_token: secret_token.to_string().into(),
    };
    assert!(!format!("{a:?}").contains("SECRET"));
    assert!(!format!("{:?}", server_key()).contains(&hex::encode(
        server_key().to_pkcs8_der().unwrap().as_slice()
    )));
    assert!(format!("{:?}", session_key()).contains("redacted"));
}

// ---- COSE profile ----

/// A COSE_Sign1 over `payload` with the given headers, signed by `key` with `aad`.
fn forge(
    protected: coset::Header,
    unprotected: coset::Header,
    payload: Vec<u8>,
    aad: &[u8],
    key: &SigningKey,
    tag: u64,
) -> Vec<u8> {
    use coset::{AsCborValue, CoseSign1Builder};
    let der = key.to_pkcs8_der().unwrap();
    let sk = SigningKeyBytes(der.to_vec());
    let sign1 = CoseSign1Builder::new()
        .protected(protected)
        .unprotected(unprotected)
        .payload(payload)
        .create_signature(aad, |tbs| sk.sign(tbs))
        .build();
    let v = sign1.to_cbor_value().unwrap();
    let mut out = Vec::new();
    coset::cbor::ser::into_writer(&coset::cbor::value::Value::Tag(tag, Box::new(v)), &mut out)
        .unwrap();
    out
}

/// Signs arbitrary bytes with a key given as PKCS#8, through the public API only: a seal
/// of a throwaway message is not usable, so the test signs with p256 via the PKCS#8 export.
struct SigningKeyBytes(Vec<u8>);

impl SigningKeyBytes {
    fn sign(&self, data: &[u8]) -> Vec<u8> {
        use p256::ecdsa::signature::Signer;
        use p256::pkcs8::DecodePrivateKey;
        let k = p256::ecdsa::SigningKey::from_pkcs8_der(&self.0).unwrap();
        let s: p256::ecdsa::Signature = k.sign(data);
        s.to_bytes().to_vec()
    }
}

fn header(alg: coset::iana::Algorithm, kid: &KeyId, typ: Option<&str>) -> coset::HeaderBuilder {
    let mut h = coset::HeaderBuilder::new()
        .algorithm(alg)
        .key_id(kid.0.to_vec());
    if let Some(t) = typ {
        h = h.value(16, coset::cbor::value::Value::Text(t.into()));
    }
    h
}

#[test]
fn cose_profile_is_enforced() {
    use coset::iana::Algorithm;
    let key = server_key();
    let pinned = [key.public_key()];
    let kid = key.key_id();
    let payload = sample("37-wait").payload();
    let aad = b"keysmith/v1 s2a";
    let typ = Some("application/keysmith-server+cose");
    let empty = coset::Header::default();

    // The forge helper reproduces a valid message (so the refusals below are about the
    // one thing each changes).
    let ok = forge(
        header(Algorithm::ES256, &kid, typ).build(),
        empty.clone(),
        payload.clone(),
        aad,
        &key,
        18,
    );
    assert!(open_server(&ok, &pinned).is_ok());
    assert_eq!(peek_kid(&ok).unwrap(), kid);

    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "tag 98",
            forge(
                header(Algorithm::ES256, &kid, typ).build(),
                empty.clone(),
                payload.clone(),
                aad,
                &key,
                98,
            ),
        ),
        (
            "alg ES384",
            forge(
                header(Algorithm::ES384, &kid, typ).build(),
                empty.clone(),
                payload.clone(),
                aad,
                &key,
                18,
            ),
        ),
        (
            "alg EdDSA",
            forge(
                header(Algorithm::EdDSA, &kid, typ).build(),
                empty.clone(),
                payload.clone(),
                aad,
                &key,
                18,
            ),
        ),
        (
            "no typ",
            forge(
                header(Algorithm::ES256, &kid, None).build(),
                empty.clone(),
                payload.clone(),
                aad,
                &key,
                18,
            ),
        ),
        (
            "agent typ",
            forge(
                header(
                    Algorithm::ES256,
                    &kid,
                    Some("application/keysmith-agent+cose"),
                )
                .build(),
                empty.clone(),
                payload.clone(),
                aad,
                &key,
                18,
            ),
        ),
        (
            "crit",
            forge(
                header(Algorithm::ES256, &kid, typ)
                    .add_critical(coset::iana::HeaderParameter::Alg)
                    .build(),
                empty.clone(),
                payload.clone(),
                aad,
                &key,
                18,
            ),
        ),
        (
            "extra label",
            forge(
                header(Algorithm::ES256, &kid, typ)
                    .value(99, coset::cbor::value::Value::Bool(true))
                    .build(),
                empty.clone(),
                payload.clone(),
                aad,
                &key,
                18,
            ),
        ),
        (
            "content type",
            forge(
                header(Algorithm::ES256, &kid, typ)
                    .content_type("application/cbor".into())
                    .build(),
                empty.clone(),
                payload.clone(),
                aad,
                &key,
                18,
            ),
        ),
        (
            "unprotected kid",
            forge(
                header(Algorithm::ES256, &kid, typ).build(),
                coset::HeaderBuilder::new().key_id(vec![1]).build(),
                payload.clone(),
                aad,
                &key,
                18,
            ),
        ),
        (
            "agent aad",
            forge(
                header(Algorithm::ES256, &kid, typ).build(),
                empty.clone(),
                payload.clone(),
                b"keysmith/v1 a2s",
                &key,
                18,
            ),
        ),
        (
            "other key, its own kid",
            forge(
                header(Algorithm::ES256, &agent_key().key_id(), typ).build(),
                empty.clone(),
                payload.clone(),
                aad,
                &agent_key(),
                18,
            ),
        ),
        (
            "other key, pinned kid",
            forge(
                header(Algorithm::ES256, &kid, typ).build(),
                empty.clone(),
                payload.clone(),
                aad,
                &agent_key(),
                18,
            ),
        ),
    ];
    for (name, bytes) in cases {
        let e = open_server(&bytes, &pinned).unwrap_err();
        let code = e.refusal_code();
        assert!(
            matches!(code, RefusalCode::BadSignature | RefusalCode::UnknownKey),
            "{name}: {code:?}"
        );
        match name {
            "other key, its own kid" => assert_eq!(e, WireError::UnknownKey, "{name}"),
            "other key, pinned kid" | "agent aad" => {
                assert_eq!(e, WireError::BadSignature, "{name}")
            }
            "tag 98" => assert!(matches!(e, WireError::NotCoseSign1 { .. }), "{name}: {e:?}"),
            _ => assert!(matches!(e, WireError::BadHeader { .. }), "{name}: {e:?}"),
        }
    }
    // Direction: a server message is no agent message, whatever key is trusted.
    let server_msg = sample("37-wait").seal();
    assert!(matches!(
        open_agent(&server_msg, &key.public_key()),
        Err(WireError::BadHeader { .. })
    ));
    let agent_msg = sample("08-ready").seal();
    assert!(matches!(
        open_server(&agent_msg, &[agent_key().public_key()]),
        Err(WireError::BadHeader { .. })
    ));
    // A hello whose agent_id is not the signer's.
    let Sample::Agent(mut hello) = sample("01-agent-hello") else {
        unreachable!()
    };
    if let AgentMessage::Hello(h) = &mut hello.msg {
        h.agent_id = KeyId([0; 32]);
    }
    assert!(matches!(
        open_agent(&seal_agent(&hello, &agent_key()), &agent_key().public_key()),
        Err(WireError::InvalidValue {
            field: "AgentHello.agent_id",
            ..
        })
    ));
}

// ---- keys ----

#[test]
fn keys_round_trip_through_pkcs8_and_spki() {
    let k = SigningKey::generate_with(&mut Seeded::new(b"k"));
    let again = SigningKey::from_pkcs8_pem(&k.to_pkcs8_pem().unwrap()).unwrap();
    assert_eq!(again.key_id(), k.key_id());
    let again = SigningKey::from_pkcs8_der(&k.to_pkcs8_der().unwrap()).unwrap();
    assert_eq!(again.key_id(), k.key_id());
    let p = k.public_key();
    assert_eq!(
        PublicKey::from_spki_pem(&p.to_spki_pem().unwrap()).unwrap(),
        p
    );
    assert_eq!(PublicKey::from_sec1(&p.to_sec1()).unwrap(), p);
    assert_eq!(p.key_id().0, sha256(&p.to_sec1()));
    // Compressed points, wrong lengths and off-curve points are refused.
    let mut compressed = p.to_sec1()[..33].to_vec();
    compressed[0] = 2;
    assert!(PublicKey::from_sec1(&compressed).is_err());
    let mut off = p.to_sec1();
    off[64] ^= 1;
    assert!(PublicKey::from_sec1(&off).is_err());
    assert!(
        SigningKey::from_pkcs8_pem("-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----\n")
            .is_err()
    );
    assert!(SigningKey::from_scalar(&[0; 32]).is_err());
}
