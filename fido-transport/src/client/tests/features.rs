//! authenticatorConfig, makeCredential / getAssertion, credential management, large
//! blobs and bio enrollment against the fake key.

use super::*;

// ---------------------------------------------------------------------------------
// authenticatorConfig

fn config_hook(st: &mut KeyState, r: &Request) -> Option<Vec<u8>> {
    let Request::Config(c) = r else { return None };
    if !st.verify(&c.pin_uv_auth_message(), &c.pin_uv_auth_param) {
        return Some(encode_status(CtapStatus::PinAuthInvalid));
    }
    match &c.sub_command {
        ConfigSubCommand::ToggleAlwaysUv => {
            let on = st.info.supports_option("alwaysUv") == Some(true);
            set_option(&mut st.info, "alwaysUv", !on);
        }
        ConfigSubCommand::SetMinPinLength {
            new_min_pin_length: Some(n),
            ..
        } => st.info.min_pin_length = Some(u64::from(*n)),
        _ => {}
    }
    ok_empty()
}

#[test]
fn set_min_pin_length_sends_authenticated_rp_ids() {
    let (mut a, s) = key(info21(), config_hook);
    let t = a
        .pin_token(PIN, Permissions::AUTHENTICATOR_CONFIG, None)
        .unwrap();
    a.set_min_pin_length(Some(8), &["contoso.com".to_owned()], true, Some(&t))
        .unwrap();
    let sub = sent(&s).into_iter().find_map(|r| match r {
        Request::Config(c) => Some(c.sub_command),
        _ => None,
    });
    assert_eq!(
        sub,
        Some(ConfigSubCommand::SetMinPinLength {
            new_min_pin_length: Some(8),
            min_pin_length_rpids: Some(vec!["contoso.com".into()]),
            force_change_pin: Some(true),
        })
    );
    // getInfo was refreshed: the new minimum is known.
    assert_eq!(a.info().unwrap().min_pin_length, Some(8));
    // Lowering is refused locally.
    let before = sent_count(&s);
    assert!(matches!(
        a.set_min_pin_length(Some(6), &[], false, Some(&t)),
        Err(Error::InvalidArgument(m)) if m.contains("only grow")
    ));
    assert_eq!(sent_count(&s), before);
}

#[test]
fn set_min_pin_length_refuses_rp_ids_the_key_cannot_take() {
    let rp = |n: usize| (0..n).map(|i| format!("rp{i}.example")).collect::<Vec<_>>();
    let (mut a, s) = key(info21(), config_hook);
    let t = a
        .pin_token(PIN, Permissions::AUTHENTICATOR_CONFIG, None)
        .unwrap();
    let before = sent_count(&s);
    let err = a
        .set_min_pin_length(None, &rp(3), false, Some(&t))
        .unwrap_err();
    assert!(
        matches!(&err, Error::Unsupported(m) if m.contains("at most 2")),
        "{err}"
    );
    let mut info = info21();
    info.extensions = None;
    let (mut b, s2) = key(info, config_hook);
    let err = b.set_min_pin_length(None, &rp(1), false, None).unwrap_err();
    assert!(
        matches!(&err, Error::Unsupported(m) if m.contains("minPinLength extension")),
        "{err}"
    );
    assert_eq!(sent_count(&s), before);
    assert_eq!(sent_count(&s2), 1);
    let mut info = info21();
    set_option(&mut info, "authnrCfg", false);
    let (mut c, _) = key(info, config_hook);
    assert!(matches!(
        c.set_min_pin_length(Some(6), &[], false, None),
        Err(Error::Unsupported(m)) if m.contains("authnrCfg")
    ));
}

#[test]
fn config_refuses_a_token_without_the_acfg_permission() {
    let (mut a, s) = key(info21(), config_hook);
    let t = a
        .pin_token(PIN, Permissions::CREDENTIAL_MANAGEMENT, None)
        .unwrap();
    let before = sent_count(&s);
    assert!(matches!(
        a.set_always_uv(true, Some(&t)),
        Err(Error::InvalidArgument(m)) if m.contains("0x20")
    ));
    assert_eq!(sent_count(&s), before);
}

#[test]
fn always_uv_is_toggled_only_when_needed() {
    let (mut a, s) = key(info21(), config_hook);
    let t = a
        .pin_token(PIN, Permissions::AUTHENTICATOR_CONFIG, None)
        .unwrap();
    assert!(!a.set_always_uv(false, Some(&t)).unwrap());
    let toggles = |s: &Arc<Mutex<KeyState>>| {
        sent(s)
            .iter()
            .filter(|r| matches!(r, Request::Config(c) if c.sub_command == ConfigSubCommand::ToggleAlwaysUv))
            .count()
    };
    assert_eq!(toggles(&s), 0);
    assert!(a.set_always_uv(true, Some(&t)).unwrap());
    assert_eq!(toggles(&s), 1);
    assert!(!a.set_always_uv(true, Some(&t)).unwrap());
    assert!(!a.toggle_always_uv(Some(&t)).unwrap());
    assert_eq!(toggles(&s), 2);
}

#[test]
fn enterprise_attestation_needs_the_ep_option() {
    let (mut a, s) = key(info21(), config_hook);
    let t = a
        .pin_token(PIN, Permissions::AUTHENTICATOR_CONFIG, None)
        .unwrap();
    a.enable_enterprise_attestation(Some(&t)).unwrap();
    assert!(sent(&s).iter().any(|r| matches!(r, Request::Config(c) if c.sub_command == ConfigSubCommand::EnableEnterpriseAttestation)));
    let mut info = info21();
    info.options.as_mut().unwrap().retain(|(k, _)| k != "ep");
    let (mut b, _) = key(info, config_hook);
    assert!(matches!(
        b.enable_enterprise_attestation(None),
        Err(Error::Unsupported(m)) if m.contains("ep")
    ));
}

// ---------------------------------------------------------------------------------
// makeCredential / getAssertion

fn auth_data(rp_id: &str, with_credential: bool) -> Vec<u8> {
    use fido_core::authdata::*;
    let flags = if with_credential {
        AuthDataFlags::UP | AuthDataFlags::AT
    } else {
        AuthDataFlags::UP
    };
    let mut d = AuthenticatorData::new(rp_id_hash(rp_id), flags, 1);
    if with_credential {
        let key = fido_core::cose::CoseKey::Ec2 {
            alg: fido_core::cose::ALG_ES256,
            x: [1; 32],
            y: [2; 32],
        };
        d = d.with_attested_credential(
            AttestedCredentialData::new([7; 16], vec![9; 16], key).unwrap(),
        );
    }
    d.to_bytes()
}

fn mc_hook(st: &mut KeyState, r: &Request) -> Option<Vec<u8>> {
    let Request::MakeCredential(m) = r else {
        return None;
    };
    if m.pin_uv_auth_param.is_some() && !st.verify(&m.client_data_hash, &m.pin_uv_auth_param) {
        return Some(encode_status(CtapStatus::PinAuthInvalid));
    }
    Some(encode_response(&MakeCredentialResponse {
        fmt: "none".into(),
        auth_data: auth_data(&m.rp.id, true),
        att_stmt: Value::Map(vec![]),
        ep_att: None,
        large_blob_key: None,
    }))
}

pub(super) fn mc_args(rp: &str) -> MakeCredentialArgs {
    MakeCredentialArgs::new(
        [5; 32],
        RpEntity {
            id: rp.into(),
            name: None,
        },
        UserEntity {
            id: vec![1, 2, 3],
            name: Some("alice".into()),
            display_name: None,
        },
    )
}

#[test]
fn make_credential_authenticates_and_parses_the_attestation() {
    let (mut a, s) = key(info21(), mc_hook);
    let t = a
        .pin_token(PIN, Permissions::MAKE_CREDENTIAL, Some("example.com"))
        .unwrap();
    let mut touched = false;
    let r = a
        .make_credential(&mc_args("example.com"), Some(&t), &mut |p| {
            touched |= p == Progress::UserPresenceNeeded
        })
        .unwrap();
    assert!(touched);
    assert_eq!(r.credential_id, vec![9; 16]);
    assert_eq!(r.attestation.fmt(), "none");
    let m = sent(&s).into_iter().find_map(|r| match r {
        Request::MakeCredential(m) => Some(m),
        _ => None,
    });
    let m = m.unwrap();
    assert_eq!(m.options.rk, Some(true));
    assert_eq!(m.pin_uv_auth_protocol, Some(2));
    assert_eq!(m.pub_key_cred_params[0].alg, fido_core::cose::ALG_ES256);
}

#[test]
fn make_credential_refuses_a_token_for_another_rp() {
    let (mut a, s) = key(info21(), mc_hook);
    let t = a
        .pin_token(PIN, Permissions::MAKE_CREDENTIAL, Some("example.com"))
        .unwrap();
    let before = sent_count(&s);
    assert!(matches!(
        a.make_credential(&mc_args("evil.example"), Some(&t), &mut |_| {}),
        Err(Error::InvalidArgument(m)) if m.contains("bound to")
    ));
    assert_eq!(sent_count(&s), before);
}

#[test]
fn make_credential_checks_the_rp_id_hash_of_the_answer() {
    let (mut a, _) = key(info21(), |_, r| {
        matches!(r, Request::MakeCredential(_)).then(|| {
            encode_response(&MakeCredentialResponse {
                fmt: "none".into(),
                auth_data: auth_data("other.example", true),
                att_stmt: Value::Map(vec![]),
                ep_att: None,
                large_blob_key: None,
            })
        })
    });
    let err = a
        .make_credential(&mc_args("example.com"), None, &mut |_| {})
        .unwrap_err();
    assert!(err.to_string().contains("rpIdHash"), "{err}");
}

#[test]
fn get_assertion_follows_number_of_credentials() {
    let (mut a, s) = key(info21(), |_, r| {
        let answer = |n: Option<u32>, id: u8| {
            encode_response(&GetAssertionResponse {
                credential: Some(CredentialDescriptor::public_key(vec![id])),
                auth_data: auth_data("example.com", false),
                signature: vec![0x30],
                user: None,
                number_of_credentials: n,
                user_selected: None,
                large_blob_key: None,
            })
        };
        match r {
            Request::GetAssertion(_) => Some(answer(Some(3), 1)),
            Request::GetNextAssertion(_) => Some(answer(None, 2)),
            _ => None,
        }
    });
    let t = a
        .pin_token(PIN, Permissions::GET_ASSERTION, Some("example.com"))
        .unwrap();
    let out = a
        .get_assertion(
            &GetAssertionArgs::new("example.com", [1; 32]),
            Some(&t),
            &mut |_| {},
        )
        .unwrap();
    assert_eq!(out.len(), 3);
    assert_eq!(out[0].credential.id, vec![1]);
    assert_eq!(out[2].credential.id, vec![2]);
    let nexts = sent(&s)
        .iter()
        .filter(|r| matches!(r, Request::GetNextAssertion(_)))
        .count();
    assert_eq!(nexts, 2);
}

#[test]
fn get_assertion_fills_the_credential_from_a_single_allow_list_entry() {
    let (mut a, _) = key(info21(), |_, r| {
        matches!(r, Request::GetAssertion(_)).then(|| {
            encode_response(&GetAssertionResponse {
                credential: None,
                auth_data: auth_data("example.com", false),
                signature: vec![0x30],
                user: None,
                number_of_credentials: None,
                user_selected: None,
                large_blob_key: None,
            })
        })
    });
    let mut args = GetAssertionArgs::new("example.com", [1; 32]);
    args.allow_list = vec![CredentialDescriptor::public_key(vec![4, 4])];
    args.user_presence = false;
    let out = a.get_assertion(&args, None, &mut |_| {}).unwrap();
    assert_eq!(out[0].credential.id, vec![4, 4]);
    args.allow_list
        .push(CredentialDescriptor::public_key(vec![5]));
    assert!(a.get_assertion(&args, None, &mut |_| {}).is_err());
    // A list longer than maxCredentialCountInList (8) is no longer refused: it is
    // pre-flighted in chunks (tests/api/devices/lists.rs); this fake answers the 8-entry
    // pre-flight without naming a credential, which is a bad answer.
    args.allow_list = vec![CredentialDescriptor::public_key(vec![1]); 9];
    assert!(matches!(
        a.get_assertion(&args, None, &mut |_| {}),
        Err(Error::Core(_))
    ));
}

// ---------------------------------------------------------------------------------
// Credential management

fn cm_hook(st: &mut KeyState, r: &Request) -> Option<Vec<u8>> {
    let Request::CredentialManagement(c) = r else {
        return None;
    };
    if c.pin_uv_auth_param.is_some() && !st.verify(&c.pin_uv_auth_message(), &c.pin_uv_auth_param) {
        return Some(encode_status(CtapStatus::PinAuthInvalid));
    }
    let rp = |id: &str, total| CredentialManagementResponse {
        rp: Some(RpEntity {
            id: id.into(),
            name: None,
        }),
        rp_id_hash: Some(fido_core::authdata::rp_id_hash(id)),
        total_rps: total,
        ..Default::default()
    };
    Some(encode_response(&match &c.sub_command {
        CredMgmtSubCommand::GetCredsMetadata => CredentialManagementResponse {
            existing_resident_credentials_count: Some(2),
            max_possible_remaining_resident_credentials_count: Some(23),
            ..Default::default()
        },
        CredMgmtSubCommand::EnumerateRpsBegin => rp("a.example", Some(2)),
        CredMgmtSubCommand::EnumerateRpsGetNextRp => rp("b.example", None),
        CredMgmtSubCommand::EnumerateCredentialsBegin { .. } => {
            return Some(encode_status(CtapStatus::NoCredentials))
        }
        _ => CredentialManagementResponse::default(),
    }))
}

#[test]
fn credential_management_enumerates_without_reauthenticating_get_next() {
    let (mut a, s) = key(info21(), cm_hook);
    let t = a
        .pin_token(PIN, Permissions::CREDENTIAL_MANAGEMENT, None)
        .unwrap();
    assert_eq!(
        a.credentials_metadata(&t).unwrap(),
        CredentialsMetadata {
            existing: 2,
            remaining: 23
        }
    );
    let rps = a.enumerate_rps(&t).unwrap();
    assert_eq!(rps.len(), 2);
    assert_eq!(rps[1].rp.id, "b.example");
    assert_eq!(
        rps[1].rp_id_hash,
        fido_core::authdata::rp_id_hash("b.example")
    );
    let next = sent(&s)
        .into_iter()
        .find_map(|r| match r {
            Request::CredentialManagement(c)
                if c.sub_command == CredMgmtSubCommand::EnumerateRpsGetNextRp =>
            {
                Some(c)
            }
            _ => None,
        })
        .unwrap();
    assert_eq!(next.pin_uv_auth_param, None);
    assert!(!next.prototype);
    assert!(a.enumerate_credentials(&t, [0; 32]).unwrap().is_empty());
    let cred = CredentialDescriptor::public_key(vec![1]);
    a.delete_credential(&t, &cred).unwrap();
    a.update_user(&t, &cred, &UserEntity::default()).unwrap();
}

/// Odd but real answers (python-fido2 `credman.py`, libfido2 `credman.c` tolerate
/// them): totalRPs = 0 instead of NO_CREDENTIALS, and a Begin answer without
/// totalCredentials.
#[test]
fn credential_management_tolerates_zero_and_missing_totals() {
    let (mut a, _s) = key(info21(), |st, r| {
        let Request::CredentialManagement(c) = r else {
            return None;
        };
        let _ = st;
        Some(encode_response(&match &c.sub_command {
            CredMgmtSubCommand::EnumerateRpsBegin => CredentialManagementResponse {
                total_rps: Some(0),
                ..Default::default()
            },
            CredMgmtSubCommand::EnumerateCredentialsBegin { .. } => CredentialManagementResponse {
                user: Some(UserEntity {
                    id: vec![1],
                    ..Default::default()
                }),
                credential_id: Some(CredentialDescriptor::public_key(vec![9])),
                public_key: Some(fido_core::cose::CoseKey::Ec2 {
                    alg: fido_core::cose::ALG_ES256,
                    x: [1; 32],
                    y: [2; 32],
                }),
                total_credentials: None,
                ..Default::default()
            },
            _ => CredentialManagementResponse::default(),
        }))
    });
    let t = a
        .pin_token(PIN, Permissions::CREDENTIAL_MANAGEMENT, None)
        .unwrap();
    assert!(a.enumerate_rps(&t).unwrap().is_empty());
    let creds = a.enumerate_credentials(&t, [0; 32]).unwrap();
    assert_eq!(creds.len(), 1);
    assert_eq!(creds[0].credential_id.id, vec![9]);
}

#[test]
fn credential_management_uses_the_prototype_on_pre_keys() {
    let mut info = info21();
    info.options
        .as_mut()
        .unwrap()
        .retain(|(k, _)| k != "credMgmt");
    set_option(&mut info, "credentialMgmtPreview", true);
    let (mut a, s) = key(info, cm_hook);
    let t = a
        .pin_token(PIN, Permissions::CREDENTIAL_MANAGEMENT, None)
        .unwrap();
    a.credentials_metadata(&t).unwrap();
    assert_eq!(
        s.lock().unwrap().log.last().unwrap()[0],
        CMD_CREDENTIAL_MANAGEMENT_PROTOTYPE
    );
    let before = sent_count(&s);
    assert!(matches!(
        a.update_user(
            &t,
            &CredentialDescriptor::public_key(vec![1]),
            &UserEntity::default()
        ),
        Err(Error::Unsupported(_))
    ));
    assert_eq!(sent_count(&s), before);
}

// ---------------------------------------------------------------------------------
// Large blobs

fn blob_hook(st: &mut KeyState, r: &Request) -> Option<Vec<u8>> {
    let Request::LargeBlobs(l) = r else {
        return None;
    };
    // The stored array lives in the fake's aaguid-free scratch: reuse `log` is not
    // possible, so keep it in the info's vendor field.
    let stored = st
        .info
        .vendor_prototype_config_commands
        .get_or_insert_with(Vec::new);
    if let Some(n) = l.get {
        let bytes: Vec<u8> = stored.iter().map(|&b| b as u8).collect();
        let start = (l.offset as usize).min(bytes.len());
        let end = (start + n as usize).min(bytes.len());
        return Some(encode_response(&LargeBlobsResponse {
            config: Some(bytes[start..end].to_vec()),
        }));
    }
    let message = l.pin_uv_auth_message().unwrap();
    if !st.verify(&message, &l.pin_uv_auth_param) {
        return Some(encode_status(CtapStatus::PinAuthInvalid));
    }
    let stored = st
        .info
        .vendor_prototype_config_commands
        .get_or_insert_with(Vec::new);
    if l.offset == 0 {
        stored.clear();
    }
    stored.extend(l.set.as_ref().unwrap().iter().map(|&b| u64::from(b)));
    ok_empty()
}

#[test]
fn large_blob_array_is_written_in_fragments_and_read_back() {
    let mut info = info21();
    info.max_msg_size = Some(200); // fragments of 136 bytes
    let (mut a, s) = key(info, blob_hook);
    let t = a
        .pin_token(PIN, Permissions::LARGE_BLOB_WRITE, None)
        .unwrap();
    let entries = vec![Value::Bytes(vec![0xAB; 300]), Value::from(3u8)];
    a.write_large_blob_array(&t, &entries).unwrap();
    let writes: Vec<LargeBlobs> = sent(&s)
        .into_iter()
        .filter_map(|r| match r {
            Request::LargeBlobs(l) if l.set.is_some() => Some(l),
            _ => None,
        })
        .collect();
    let total = serialize_large_blob_array(&entries).len();
    assert_eq!(writes.len(), total.div_ceil(136));
    assert_eq!(writes.len(), 3);
    assert_eq!(writes[0].length, Some(total as u32));
    assert!(writes[1..].iter().all(|w| w.length.is_none()));
    assert_eq!(writes[1].offset, 136);
    assert_eq!(writes[2].offset, 272);
    assert!(writes.iter().all(|w| w.set.as_ref().unwrap().len() <= 136));
    assert_eq!(a.read_large_blob_array().unwrap(), entries);
    assert_eq!(
        a.read_large_blob_bytes().unwrap(),
        serialize_large_blob_array(&entries)
    );
}

#[test]
fn a_corrupt_large_blob_array_reads_as_empty() {
    let (mut a, s) = key(info21(), blob_hook);
    let mut bytes = serialize_large_blob_array(&[Value::from(1u8)]);
    bytes[0] ^= 0x01;
    s.lock().unwrap().info.vendor_prototype_config_commands =
        Some(bytes.iter().map(|&b| u64::from(b)).collect());
    assert!(a.read_large_blob_array().unwrap().is_empty());
}

#[test]
fn large_blob_writes_over_the_limit_are_refused() {
    let mut info = info21();
    info.max_serialized_large_blob_array = Some(1024);
    let (mut a, s) = key(info, blob_hook);
    let t = a
        .pin_token(PIN, Permissions::LARGE_BLOB_WRITE, None)
        .unwrap();
    let before = sent_count(&s);
    assert!(matches!(
        a.write_large_blob_array(&t, &[Value::Bytes(vec![0; 1100])]),
        Err(Error::InvalidArgument(m)) if m.contains("1024")
    ));
    assert_eq!(sent_count(&s), before);
}

// ---------------------------------------------------------------------------------
// Bio enrollment

fn bio_hook(st: &mut KeyState, r: &Request) -> Option<Vec<u8>> {
    let Request::BioEnrollment(b) = r else {
        return None;
    };
    if b.pin_uv_auth_param.is_some() && !st.verify(&b.pin_uv_auth_message(), &b.pin_uv_auth_param) {
        return Some(encode_status(CtapStatus::PinAuthInvalid));
    }
    let remaining = |n| BioEnrollmentResponse {
        template_id: Some(vec![0x11]),
        last_enroll_sample_status: Some(0),
        remaining_samples: Some(n),
        ..Default::default()
    };
    let retries = st.retries;
    Some(encode_response(&match b.sub_command.as_ref()? {
        BioSubCommand::GetFingerprintSensorInfo => BioEnrollmentResponse {
            fingerprint_kind: Some(1),
            max_capture_samples_required_for_enroll: Some(3),
            max_template_friendly_name: Some(32),
            ..Default::default()
        },
        BioSubCommand::EnrollBegin { .. } => remaining(2),
        BioSubCommand::EnrollCaptureNextSample { .. } => {
            // `retries` doubles as the sample countdown of the fake.
            if retries == 0 {
                return Some(encode_status(CtapStatus::UserActionTimeout));
            }
            st.retries -= 1;
            remaining(retries.saturating_sub(7).min(1))
        }
        BioSubCommand::EnumerateEnrollments => {
            return Some(encode_status(CtapStatus::InvalidOption))
        }
        _ => BioEnrollmentResponse::default(),
    }))
}

#[test]
fn bio_enroll_reports_each_sample_until_none_remain() {
    let (mut a, s) = key(info21(), bio_hook);
    assert_eq!(
        a.bio_sensor_info().unwrap(),
        BioSensorInfo {
            fingerprint_kind: Some(1),
            max_capture_samples_required_for_enroll: Some(3),
            max_template_friendly_name: Some(32),
        }
    );
    let t = a.pin_token(PIN, Permissions::BIO_ENROLLMENT, None).unwrap();
    let mut samples = Vec::new();
    let id = a
        .bio_enroll(&t, Some(5000), &mut |p| {
            if let EnrollProgress::Sample { remaining, .. } = p {
                samples.push(remaining)
            }
        })
        .unwrap();
    assert_eq!(id, vec![0x11]);
    // Begin says 2 left; the fake's countdown gives 1 then 0.
    assert_eq!(samples, vec![2, 1, 0]);
    assert!(a.bio_enumerate(&t).unwrap().is_empty());
    a.bio_rename(&t, &id, "thumb").unwrap();
    a.bio_remove(&t, &id).unwrap();
    let renamed = sent(&s).into_iter().any(|r| matches!(r, Request::BioEnrollment(b) if matches!(b.sub_command, Some(BioSubCommand::SetFriendlyName { ref template_friendly_name, .. }) if template_friendly_name == "thumb")));
    assert!(renamed);
}

#[test]
fn a_failed_sample_cancels_the_enrollment() {
    let (mut a, s) = key(info21(), bio_hook);
    let t = a.pin_token(PIN, Permissions::BIO_ENROLLMENT, None).unwrap();
    s.lock().unwrap().retries = 0;
    assert!(matches!(
        a.bio_enroll(&t, None, &mut |_| {}),
        Err(Error::Ctap(CtapStatus::UserActionTimeout))
    ));
    assert!(matches!(
        sent(&s).pop(),
        Some(Request::BioEnrollment(BioEnrollment {
            sub_command: Some(BioSubCommand::CancelCurrentEnrollment),
            ..
        }))
    ));
}

#[test]
fn bio_is_refused_on_keys_without_a_sensor() {
    let mut info = info21();
    info.options
        .as_mut()
        .unwrap()
        .retain(|(k, _)| k != "bioEnroll");
    let (mut a, s) = key(info, bio_hook);
    assert!(matches!(a.bio_sensor_info(), Err(Error::Unsupported(_))));
    assert_eq!(sent_count(&s), 1);
}

/// B13: a CTAP 2.1 key that omits pinUvAuthProtocols gets protocol 2; a 2.0 key 1.
#[test]
fn pin_protocol_when_the_key_omits_the_list() {
    let mut info = info21();
    info.pin_uv_auth_protocols = None;
    let (mut a, _) = key(info.clone(), |_, _| None);
    assert_eq!(a.pin_protocol().unwrap(), PinUvAuthProtocol::Two);
    info.versions = vec!["FIDO_2_0".into()];
    let (mut a, _) = key(info, |_, _| None);
    assert_eq!(a.pin_protocol().unwrap(), PinUvAuthProtocol::One);
}

/// B11: noMcGaPermissionsWithClientPin refuses mc/ga PIN tokens before the PIN is sent.
#[test]
fn no_mc_ga_permissions_with_client_pin_is_refused_up_front() {
    let mut info = info21();
    set_option(&mut info, "noMcGaPermissionsWithClientPin", true);
    let (mut a, s) = key(info, |_, _| None);
    a.info().unwrap();
    let before = sent_count(&s);
    let e = a
        .pin_token(PIN, Permissions::MAKE_CREDENTIAL, Some("example.com"))
        .unwrap_err();
    assert!(
        matches!(&e, Error::Unsupported(m) if m.contains("uv_token")),
        "{e}"
    );
    assert_eq!(sent_count(&s), before, "the PIN is not sent");
    // Other permissions still come from the PIN.
    a.pin_token(PIN, Permissions::CREDENTIAL_MANAGEMENT, None)
        .unwrap();
}
