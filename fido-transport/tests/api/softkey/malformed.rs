//! Garbage in, CTAP status out: malformed requests and random (structured) input.

use super::*;

#[test]
fn malformed_requests_get_ctap_statuses() {
    let mut h = harness();
    assert_eq!(h.raw(&[]), vec![CtapStatus::MissingParameter.to_u8()]);
    assert_eq!(h.raw(&[0x55]), vec![CtapStatus::InvalidCommand.to_u8()]);
    assert_eq!(h.raw(&[0x01, 0xff]), vec![CtapStatus::InvalidCbor.to_u8()]);
    // makeCredential with an integer instead of a map.
    assert_eq!(
        h.raw(&[0x01, 0x01]),
        vec![CtapStatus::CborUnexpectedType.to_u8()]
    );
    // makeCredential with an empty map: missing parameter.
    assert_eq!(
        h.raw(&[0x01, 0xa0]),
        vec![CtapStatus::MissingParameter.to_u8()]
    );
    // clientPIN with an unknown subcommand.
    assert_eq!(
        h.raw(&[0x06, 0xa2, 0x01, 0x02, 0x02, 0x18, 0x20]),
        vec![CtapStatus::InvalidSubcommand.to_u8()]
    );
    // Larger than maxMsgSize.
    let big = vec![0x04; 5000];
    assert_eq!(h.raw(&big), vec![CtapStatus::InvalidLength.to_u8()]);
    // Unsupported PIN protocol.
    assert_eq!(
        h.status(&ClientPin::GetKeyAgreement {
            pin_uv_auth_protocol: 3
        }),
        Some(CtapStatus::InvalidParameter)
    );
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        #[test]
        fn random_bytes_never_panic(cmd in prop::sample::select(vec![1u8, 2, 4, 6, 7, 8, 9, 10, 11, 12, 13, 0x40, 0x41, 0x99]),
                                    body in prop::collection::vec(any::<u8>(), 0..200)) {
            let mut h = harness();
            let mut req = vec![cmd];
            req.extend(body);
            let reply = h.raw(&req);
            prop_assert!(!reply.is_empty());
            if reply[0] == 0 {
                // A success must carry decodable CBOR (or nothing).
                if reply.len() > 1 {
                    prop_assert!(fido_core::cbor::decode(&reply[1..]).is_ok());
                }
            }
        }
    }
}

mod structured_fuzz {
    use super::*;
    use fido_core::cbor::Value;
    use proptest::prelude::*;

    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            any::<u8>().prop_map(|n| Value::Unsigned(u64::from(n))),
            any::<u8>().prop_map(|n| Value::Negative(u64::from(n))),
            prop::collection::vec(any::<u8>(), 0..70).prop_map(Value::Bytes),
            prop::sample::select(vec!["id", "public-key", "a.example", "", "1234"])
                .prop_map(|s| Value::Text(s.to_owned())),
            any::<bool>().prop_map(Value::Bool),
        ];
        leaf.prop_recursive(3, 24, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec(
                    (
                        prop_oneof![
                            (1u8..12).prop_map(|k| Value::Unsigned(u64::from(k))),
                            prop::sample::select(vec![
                                "id",
                                "type",
                                "alg",
                                "name",
                                "rk",
                                "up",
                                "uv",
                                "credProtect",
                                "hmac-secret",
                                "credBlob",
                                "largeBlobKey",
                                "minPinLength",
                            ])
                            .prop_map(|s| Value::Text(s.to_owned())),
                        ],
                        inner,
                    ),
                    0..6,
                )
                .prop_map(|entries| {
                    // Keys must be unique for the request to be well-formed CBOR.
                    let mut seen: Vec<Value> = Vec::new();
                    let mut out = Vec::new();
                    for (k, v) in entries {
                        if !seen.contains(&k) {
                            seen.push(k.clone());
                            out.push((k, v));
                        }
                    }
                    Value::Map(out)
                }),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]
        #[test]
        fn random_cbor_requests_get_a_status(cmd in prop::sample::select(vec![1u8, 2, 6, 8, 9, 10, 12, 13]),
                                             params in value()) {
            let mut h = harness_with(SoftConfig::with_bio());
            prop_assert_eq!(h.set_pin(2, "1234"), None);
            let mut req = vec![cmd];
            req.extend(fido_core::cbor::encode(&params));
            let reply = h.raw(&req);
            prop_assert!(!reply.is_empty());
            // The authenticator still works afterwards.
            let info = h.raw(&[0x04]);
            prop_assert_eq!(info.first(), Some(&0x00));
        }
    }
}
