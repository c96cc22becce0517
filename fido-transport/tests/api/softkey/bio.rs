//! Simulated bio enrolment and built-in user verification.

use super::*;

fn bio(sub: BioSubCommand, t: Option<&PinUvAuthToken>) -> BioEnrollment {
    let mut b = BioEnrollment::fingerprint(sub);
    if let Some(t) = t {
        b.pin_uv_auth_protocol = Some(t.protocol().id());
        b.pin_uv_auth_param = Some(t.authenticate(&b.pin_uv_auth_message()));
    }
    b
}

impl Harness {
    fn uv_token(
        &mut self,
        permissions: Permissions,
        rp_id: Option<&str>,
    ) -> Result<PinUvAuthToken, CtapStatus> {
        let peer = self.key_agreement(2);
        let (platform_key, shared) = PinUvAuthProtocol::Two
            .encapsulate(&peer, &mut self.rng)
            .expect("encapsulate");
        let answer = match self.send(&ClientPin::GetPinUvAuthTokenUsingUvWithPermissions {
            pin_uv_auth_protocol: 2,
            key_agreement: platform_key,
            permissions,
            rp_id: rp_id.map(str::to_owned),
        }) {
            Ok(a) => a,
            Err(Error::Ctap(s)) => return Err(s),
            Err(e) => panic!("unexpected {e:?}"),
        };
        Ok(PinUvAuthToken::decrypt(
            PinUvAuthProtocol::Two,
            &shared,
            answer.pin_uv_auth_token.expect("token").expose(),
            permissions,
            rp_id.map(str::to_owned),
        )
        .expect("decrypt"))
    }
}

#[test]
fn bio_enrolment_enumerate_rename_remove_and_uv() {
    let mut h = harness_with(SoftConfig::with_bio());
    let info = h.info();
    assert_eq!(info.supports_option("bioEnroll"), Some(false));
    assert_eq!(info.supports_option("uv"), Some(false));
    let sensor = h
        .send(&bio(BioSubCommand::GetFingerprintSensorInfo, None))
        .expect("sensor info");
    assert_eq!(sensor.max_capture_samples_required_for_enroll, Some(4));
    assert_eq!(sensor.fingerprint_kind, Some(1));
    // No template: UV token refused.
    assert_eq!(
        h.uv_token(Permissions::GET_ASSERTION, Some(RP)).err(),
        Some(CtapStatus::NotAllowed)
    );
    assert_eq!(h.set_pin(2, "1234"), None);
    assert_eq!(
        h.status(&bio(
            BioSubCommand::EnrollBegin {
                timeout_milliseconds: None
            },
            None
        )),
        Some(CtapStatus::PuatRequired)
    );
    let t = h
        .token(2, "1234", Some(Permissions::BIO_ENROLLMENT), None)
        .expect("be token");
    let begin = h
        .send(&bio(
            BioSubCommand::EnrollBegin {
                timeout_milliseconds: None,
            },
            Some(&t),
        ))
        .expect("begin");
    assert_eq!(begin.remaining_samples, Some(3));
    assert_eq!(begin.last_enroll_sample_status, Some(0));
    let tid = begin.template_id.expect("template id");
    // Wrong template id.
    assert_eq!(
        h.status(&bio(
            BioSubCommand::EnrollCaptureNextSample {
                template_id: vec![0xee],
                timeout_milliseconds: None
            },
            Some(&t)
        )),
        Some(CtapStatus::InvalidParameter)
    );
    for left in [2u32, 1, 0] {
        let r = h
            .send(&bio(
                BioSubCommand::EnrollCaptureNextSample {
                    template_id: tid.clone(),
                    timeout_milliseconds: None,
                },
                Some(&t),
            ))
            .expect("sample");
        assert_eq!(r.remaining_samples, Some(left));
    }
    assert_eq!(h.info().supports_option("bioEnroll"), Some(true));
    assert_eq!(h.info().supports_option("uv"), Some(true));
    let list = h
        .send(&bio(BioSubCommand::EnumerateEnrollments, Some(&t)))
        .expect("enumerate")
        .template_infos
        .expect("infos");
    assert_eq!(list.len(), 1);
    assert_eq!(
        h.status(&bio(
            BioSubCommand::SetFriendlyName {
                template_id: tid.clone(),
                template_friendly_name: "right thumb".into()
            },
            Some(&t)
        )),
        None
    );
    assert_eq!(
        h.auth.state().templates[0].name.as_deref(),
        Some("right thumb")
    );

    // Built-in UV now gives a token, and makeCredential with it sets UV.
    let uv = h
        .uv_token(Permissions::MAKE_CREDENTIAL, Some(RP))
        .expect("uv token");
    let mc = h
        .make_credential(RP, user(1, "a"), true, Some(&uv))
        .expect("mc");
    assert!(AuthenticatorData::parse(&mc.auth_data)
        .expect("ad")
        .flags()
        .user_verified());
    // A finger that does not match counts down UV retries.
    h.auth.control().set_fingerprint_matches(false);
    assert_eq!(
        h.uv_token(Permissions::GET_ASSERTION, Some(RP)).err(),
        Some(CtapStatus::UvInvalid)
    );
    let retries = h
        .send(&ClientPin::GetUvRetries {
            pin_uv_auth_protocol: Some(2),
        })
        .expect("uv retries")
        .uv_retries;
    assert_eq!(retries, Some(4));
    h.auth.control().set_fingerprint_matches(true);

    // The UV token replaced the PIN token: the old one no longer works.
    assert_eq!(
        h.status(&bio(BioSubCommand::EnumerateEnrollments, Some(&t))),
        Some(CtapStatus::PinAuthInvalid)
    );
    let t = h
        .token(2, "1234", Some(Permissions::BIO_ENROLLMENT), None)
        .expect("be token");
    assert_eq!(
        h.status(&bio(
            BioSubCommand::RemoveEnrollment {
                template_id: tid.clone()
            },
            Some(&t)
        )),
        None
    );
    assert_eq!(
        h.status(&bio(
            BioSubCommand::RemoveEnrollment { template_id: tid },
            Some(&t)
        )),
        Some(CtapStatus::InvalidOption)
    );
    assert_eq!(
        h.status(&bio(BioSubCommand::EnumerateEnrollments, Some(&t))),
        Some(CtapStatus::InvalidOption)
    );
    assert_eq!(h.info().supports_option("bioEnroll"), Some(false));
}

#[test]
fn bio_disabled_is_invalid_command() {
    let mut h = harness();
    assert_eq!(
        h.status(&bio(BioSubCommand::GetFingerprintSensorInfo, None)),
        Some(CtapStatus::InvalidCommand)
    );
    assert_eq!(
        h.uv_token(Permissions::GET_ASSERTION, None).err(),
        Some(CtapStatus::InvalidSubcommand)
    );
}

#[test]
fn permissions_not_offered_are_unauthorized() {
    let mut h = harness(); // no bio
    assert_eq!(h.set_pin(2, "1234"), None);
    assert_eq!(
        h.token(2, "1234", Some(Permissions::BIO_ENROLLMENT), None)
            .err(),
        Some(CtapStatus::UnauthorizedPermission)
    );
    assert_eq!(
        h.token(2, "1234", Some(Permissions::empty()), None).err(),
        Some(CtapStatus::InvalidParameter)
    );
    // Neither attempt used a retry.
    assert_eq!(h.retries(), 8);
}

#[test]
fn built_in_uv_option_counts_as_the_touch() {
    let mut h = harness_with(SoftConfig::with_bio());
    assert_eq!(h.set_pin(2, "1234"), None);
    let t = h
        .token(2, "1234", Some(Permissions::BIO_ENROLLMENT), None)
        .expect("token");
    let begin = h
        .send(&bio(
            BioSubCommand::EnrollBegin {
                timeout_milliseconds: None,
            },
            Some(&t),
        ))
        .expect("begin");
    let tid = begin.template_id.expect("id");
    for _ in 0..3 {
        h.send(&bio(
            BioSubCommand::EnrollCaptureNextSample {
                template_id: tid.clone(),
                timeout_milliseconds: None,
            },
            Some(&t),
        ))
        .expect("sample");
    }
    let mut mc = MakeCredential::new(
        cdh(1),
        rp(RP),
        user(1, "a"),
        vec![PublicKeyCredentialParameters::public_key(ALG_ES256)],
    );
    mc.options.rk = Some(true);
    mc.options.uv = Some(true);
    let mut touches = 0;
    let reply = h.auth.handle(&encode_request(&mc), &mut |p: Progress| {
        if p == Progress::UserPresenceNeeded {
            touches += 1;
        }
    });
    let r = decode_response::<MakeCredential>(&reply).expect("mc with built-in uv");
    assert!(AuthenticatorData::parse(&r.auth_data)
        .expect("ad")
        .flags()
        .user_verified());
    assert_eq!(touches, 1, "one touch for UV and presence");
    let mut ga = GetAssertion::new(RP, cdh(2));
    ga.options.uv = Some(true);
    let a = h.send(&ga).expect("ga with built-in uv");
    assert_eq!(a.user.and_then(|u| u.name), Some("a".to_owned()));
}
