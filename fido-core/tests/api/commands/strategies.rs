//! proptest strategies for every request and response type.

use super::*;

pub(super) fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..max)
}
pub(super) fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 ._@-]{0,24}"
}
pub(super) fn cose_key() -> impl Strategy<Value = CoseKey> {
    prop_oneof![
        (any::<[u8; 32]>(), any::<[u8; 32]>()).prop_map(|(x, y)| CoseKey::Ec2 {
            alg: fido_core::cose::ALG_ECDH_ES_HKDF_256,
            x,
            y
        }),
        any::<[u8; 32]>().prop_map(|x| CoseKey::Okp {
            alg: fido_core::cose::ALG_EDDSA,
            x
        }),
    ]
}
pub(super) fn rp() -> impl Strategy<Value = RpEntity> {
    (text(), proptest::option::of(text())).prop_map(|(id, name)| RpEntity { id, name })
}
pub(super) fn user() -> impl Strategy<Value = UserEntity> {
    (
        bytes(64),
        proptest::option::of(text()),
        proptest::option::of(text()),
    )
        .prop_map(|(id, name, display_name)| UserEntity {
            id,
            name,
            display_name,
        })
}
pub(super) fn descriptor() -> impl Strategy<Value = CredentialDescriptor> {
    (
        bytes(80),
        proptest::option::of(proptest::collection::vec(text(), 0..3)),
    )
        .prop_map(|(id, transports)| CredentialDescriptor {
            cred_type: "public-key".into(),
            id,
            transports,
        })
}
/// Map entries in CTAP2 canonical key order (shorter first, then bytewise), as they
/// come back from the wire.
pub(super) fn canonical<V>(m: std::collections::BTreeMap<String, V>) -> Vec<(String, V)> {
    let mut v: Vec<(String, V)> = m.into_iter().collect();
    v.sort_by(|a, b| (a.0.len(), a.0.as_bytes()).cmp(&(b.0.len(), b.0.as_bytes())));
    v
}
pub(super) fn other_ext() -> impl Strategy<Value = Vec<(String, Value)>> {
    proptest::collection::btree_map(
        "x-[a-z]{1,8}",
        prop_oneof![
            any::<bool>().prop_map(Value::Bool),
            any::<u64>().prop_map(Value::Unsigned),
            bytes(8).prop_map(Value::Bytes),
        ],
        0..3,
    )
    .prop_map(canonical)
}
pub(super) fn make_credential() -> impl Strategy<Value = MakeCredential> {
    (
        (
            any::<[u8; 32]>(),
            rp(),
            user(),
            proptest::collection::vec(any::<i64>(), 0..4),
            proptest::option::of(proptest::collection::vec(descriptor(), 0..3)),
        ),
        proptest::option::of((
            proptest::option::of(any::<u8>()),
            proptest::option::of(any::<bool>()),
            proptest::option::of(any::<bool>()),
            proptest::option::of(bytes(32)),
            proptest::option::of(any::<bool>()),
            other_ext(),
        )),
        (
            proptest::option::of(any::<bool>()),
            proptest::option::of(any::<bool>()),
            proptest::option::of(any::<bool>()),
        ),
        (
            proptest::option::of(bytes(32)),
            proptest::option::of(any::<u8>()),
            proptest::option::of(any::<u8>()),
        ),
    )
        .prop_map(
            |((cdh, rp, user, algs, excl), ext, (rk, up, uv), (param, proto, ep))| {
                let mut mc = MakeCredential::new(
                    cdh,
                    rp,
                    user,
                    algs.into_iter()
                        .map(PublicKeyCredentialParameters::public_key)
                        .collect(),
                );
                mc.exclude_list = excl;
                mc.extensions =
                    ext.map(|(cp, hs, mpl, blob, lbk, other)| MakeCredentialExtensions {
                        cred_protect: cp,
                        hmac_secret: hs,
                        min_pin_length: mpl,
                        cred_blob: blob,
                        large_blob_key: lbk,
                        other,
                    });
                mc.options = MakeCredentialOptions { rk, up, uv };
                mc.pin_uv_auth_param = param;
                mc.pin_uv_auth_protocol = proto;
                mc.enterprise_attestation = ep;
                mc
            },
        )
}
pub(super) fn get_assertion() -> impl Strategy<Value = GetAssertion> {
    (
        text(),
        any::<[u8; 32]>(),
        proptest::option::of(proptest::collection::vec(descriptor(), 0..3)),
        proptest::option::of((
            proptest::option::of((
                cose_key(),
                bytes(64),
                bytes(32),
                proptest::option::of(1u8..3),
            )),
            proptest::option::of(any::<bool>()),
            proptest::option::of(any::<bool>()),
            other_ext(),
        )),
        (
            proptest::option::of(any::<bool>()),
            proptest::option::of(any::<bool>()),
        ),
        proptest::option::of(bytes(32)),
        proptest::option::of(any::<u8>()),
    )
        .prop_map(|(rp_id, cdh, allow, ext, (up, uv), param, proto)| {
            let mut ga = GetAssertion::new(rp_id, cdh);
            ga.allow_list = allow;
            ga.extensions = ext.map(|(hs, cb, lbk, other)| GetAssertionExtensions {
                hmac_secret: hs.map(|(key_agreement, salt_enc, salt_auth, p)| HmacSecretInput {
                    key_agreement,
                    salt_enc,
                    salt_auth,
                    pin_uv_auth_protocol: p,
                }),
                cred_blob: cb,
                large_blob_key: lbk,
                other,
            });
            ga.options = GetAssertionOptions { up, uv };
            ga.pin_uv_auth_param = param;
            ga.pin_uv_auth_protocol = proto;
            ga
        })
}
pub(super) fn client_pin() -> impl Strategy<Value = ClientPin> {
    let p = 1u8..3;
    prop_oneof![
        proptest::option::of(p.clone()).prop_map(|pin_uv_auth_protocol| ClientPin::GetPinRetries {
            pin_uv_auth_protocol
        }),
        proptest::option::of(p.clone()).prop_map(|pin_uv_auth_protocol| ClientPin::GetUvRetries {
            pin_uv_auth_protocol
        }),
        p.clone()
            .prop_map(|pin_uv_auth_protocol| ClientPin::GetKeyAgreement {
                pin_uv_auth_protocol
            }),
        (p.clone(), cose_key(), bytes(80), bytes(32)).prop_map(|(a, k, n, m)| ClientPin::SetPin {
            pin_uv_auth_protocol: a,
            key_agreement: k,
            new_pin_enc: n,
            pin_uv_auth_param: m
        }),
        (p.clone(), cose_key(), bytes(32), bytes(80), bytes(32)).prop_map(|(a, k, h, n, m)| {
            ClientPin::ChangePin {
                pin_uv_auth_protocol: a,
                key_agreement: k,
                pin_hash_enc: h,
                new_pin_enc: n,
                pin_uv_auth_param: m,
            }
        }),
        (p.clone(), cose_key(), bytes(32)).prop_map(|(a, k, h)| ClientPin::GetPinToken {
            pin_uv_auth_protocol: a,
            key_agreement: k,
            pin_hash_enc: h
        }),
        (
            p.clone(),
            cose_key(),
            any::<u8>(),
            proptest::option::of(text())
        )
            .prop_map(|(a, k, perm, rp)| {
                ClientPin::GetPinUvAuthTokenUsingUvWithPermissions {
                    pin_uv_auth_protocol: a,
                    key_agreement: k,
                    permissions: Permissions::from_bits(perm),
                    rp_id: rp,
                }
            }),
        (
            p,
            cose_key(),
            bytes(32),
            any::<u8>(),
            proptest::option::of(text())
        )
            .prop_map(|(a, k, h, perm, rp)| {
                ClientPin::GetPinUvAuthTokenUsingPinWithPermissions {
                    pin_uv_auth_protocol: a,
                    key_agreement: k,
                    pin_hash_enc: h,
                    permissions: Permissions::from_bits(perm),
                    rp_id: rp,
                }
            }),
    ]
}
pub(super) fn auth() -> impl Strategy<Value = (Option<u8>, Option<Vec<u8>>)> {
    (
        proptest::option::of(1u8..3),
        proptest::option::of(bytes(32)),
    )
}
pub(super) fn cred_mgmt() -> impl Strategy<Value = CredentialManagement> {
    let sub = prop_oneof![
        Just(CredMgmtSubCommand::GetCredsMetadata),
        Just(CredMgmtSubCommand::EnumerateRpsBegin),
        Just(CredMgmtSubCommand::EnumerateRpsGetNextRp),
        any::<[u8; 32]>()
            .prop_map(|rp_id_hash| CredMgmtSubCommand::EnumerateCredentialsBegin { rp_id_hash }),
        Just(CredMgmtSubCommand::EnumerateCredentialsGetNextCredential),
        descriptor()
            .prop_map(|credential_id| CredMgmtSubCommand::DeleteCredential { credential_id }),
        (descriptor(), user()).prop_map(|(credential_id, user)| {
            CredMgmtSubCommand::UpdateUserInformation {
                credential_id,
                user,
            }
        }),
    ];
    (sub, auth(), any::<bool>()).prop_map(|(sub_command, (p, a), prototype)| CredentialManagement {
        sub_command,
        pin_uv_auth_protocol: p,
        pin_uv_auth_param: a,
        prototype,
    })
}
pub(super) fn bio() -> impl Strategy<Value = BioEnrollment> {
    let t = proptest::option::of(any::<u32>());
    let sub = prop_oneof![
        t.clone()
            .prop_map(|timeout_milliseconds| BioSubCommand::EnrollBegin {
                timeout_milliseconds
            }),
        (bytes(8), t).prop_map(|(template_id, timeout_milliseconds)| {
            BioSubCommand::EnrollCaptureNextSample {
                template_id,
                timeout_milliseconds,
            }
        }),
        Just(BioSubCommand::CancelCurrentEnrollment),
        Just(BioSubCommand::EnumerateEnrollments),
        (bytes(8), text()).prop_map(|(template_id, template_friendly_name)| {
            BioSubCommand::SetFriendlyName {
                template_id,
                template_friendly_name,
            }
        }),
        bytes(8).prop_map(|template_id| BioSubCommand::RemoveEnrollment { template_id }),
        Just(BioSubCommand::GetFingerprintSensorInfo),
    ];
    (
        proptest::option::of(any::<u8>()),
        proptest::option::of(sub),
        auth(),
        proptest::option::of(any::<bool>()),
        any::<bool>(),
    )
        .prop_map(
            |(modality, sub_command, (p, a), get_modality, prototype)| BioEnrollment {
                modality,
                sub_command,
                pin_uv_auth_protocol: p,
                pin_uv_auth_param: a,
                get_modality,
                prototype,
            },
        )
}
pub(super) fn config() -> impl Strategy<Value = AuthenticatorConfig> {
    let sub = prop_oneof![
        Just(ConfigSubCommand::EnableEnterpriseAttestation),
        Just(ConfigSubCommand::ToggleAlwaysUv),
        (
            proptest::option::of(any::<u8>()),
            proptest::option::of(proptest::collection::vec(text(), 0..3)),
            proptest::option::of(any::<bool>())
        )
            .prop_map(|(n, r, f)| ConfigSubCommand::SetMinPinLength {
                new_min_pin_length: n,
                min_pin_length_rpids: r,
                force_change_pin: f
            }),
        any::<u64>()
            .prop_map(|vendor_command_id| ConfigSubCommand::VendorPrototype { vendor_command_id }),
    ];
    (sub, auth()).prop_map(|(sub_command, (p, a))| AuthenticatorConfig {
        sub_command,
        pin_uv_auth_protocol: p,
        pin_uv_auth_param: a,
    })
}
pub(super) fn large_blobs() -> impl Strategy<Value = LargeBlobs> {
    (
        proptest::option::of(any::<u32>()),
        proptest::option::of(bytes(64)),
        any::<u32>(),
        proptest::option::of(any::<u32>()),
        auth(),
    )
        .prop_map(|(get, set, offset, length, (p, a))| LargeBlobs {
            get,
            set,
            offset,
            length,
            pin_uv_auth_param: a,
            pin_uv_auth_protocol: p,
        })
}
pub(super) fn request() -> impl Strategy<Value = Request> {
    prop_oneof![
        make_credential().prop_map(Request::MakeCredential),
        get_assertion().prop_map(Request::GetAssertion),
        Just(Request::GetInfo(GetInfo)),
        client_pin().prop_map(Request::ClientPin),
        Just(Request::Reset(Reset)),
        Just(Request::GetNextAssertion(GetNextAssertion)),
        bio().prop_map(Request::BioEnrollment),
        cred_mgmt().prop_map(Request::CredentialManagement),
        Just(Request::Selection(Selection)),
        large_blobs().prop_map(Request::LargeBlobs),
        config().prop_map(Request::Config),
    ]
}

pub(super) fn info() -> impl Strategy<Value = AuthenticatorInfo> {
    let texts = || proptest::option::of(proptest::collection::vec(text(), 0..4));
    let u = || proptest::option::of(any::<u64>());
    (
        (
            proptest::collection::vec(text(), 0..4),
            texts(),
            any::<[u8; 16]>(),
            proptest::option::of(
                proptest::collection::btree_map(text(), any::<bool>(), 0..5).prop_map(canonical),
            ),
            u(),
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..3)),
            u(),
            u(),
            texts(),
            proptest::option::of(proptest::collection::vec(
                any::<i64>().prop_map(PublicKeyCredentialParameters::public_key),
                0..3,
            )),
        ),
        (
            u(),
            proptest::option::of(any::<bool>()),
            u(),
            u(),
            u(),
            u(),
            u(),
            u(),
            proptest::option::of(
                proptest::collection::btree_map(text(), any::<u64>(), 0..3).prop_map(canonical),
            ),
            u(),
            proptest::option::of(proptest::collection::vec(any::<u64>(), 0..3)),
        ),
        (
            texts(),
            u(),
            proptest::option::of(any::<bool>()),
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..48)),
            texts(),
            proptest::option::of(any::<bool>()),
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40)),
            u(),
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..48)),
            proptest::option::of(proptest::collection::vec(any::<u64>(), 0..5)),
        ),
    )
        .prop_map(|(a, b, c)| AuthenticatorInfo {
            versions: a.0,
            extensions: a.1,
            aaguid: a.2,
            options: a.3,
            max_msg_size: a.4,
            pin_uv_auth_protocols: a.5,
            max_credential_count_in_list: a.6,
            max_credential_id_length: a.7,
            transports: a.8,
            algorithms: a.9,
            max_serialized_large_blob_array: b.0,
            force_pin_change: b.1,
            min_pin_length: b.2,
            firmware_version: b.3,
            max_cred_blob_length: b.4,
            max_rpids_for_set_min_pin_length: b.5,
            preferred_platform_uv_attempts: b.6,
            uv_modality: b.7,
            certifications: b.8,
            remaining_discoverable_credentials: b.9,
            vendor_prototype_config_commands: b.10,
            attestation_formats: c.0,
            uv_count_since_last_pin_entry: c.1,
            long_touch_for_reset: c.2,
            enc_identifier: c.3,
            transports_for_reset: c.4,
            pin_complexity_policy: c.5,
            pin_complexity_policy_url: c.6,
            max_pin_length: c.7,
            enc_cred_store_state: c.8,
            authenticator_config_commands: c.9,
        })
}
