//! Integration tests of the software authenticator, driven with raw CTAP messages
//! built by fido-core's command and PIN builders.

use std::time::Duration;

use fido_core::attestation::{verify_assertion, AttestationObject, AttestationType};
use fido_core::authdata::AuthenticatorData;
use fido_core::commands::*;
use fido_core::cose::{CoseKey, ALG_ES256};
use fido_core::pin::{
    change_pin, pin_token_request, set_pin, AuthMessage, Permissions, Pin, PinUvAuthProtocol,
    PinUvAuthToken,
};
use fido_core::{CtapStatus, Error};
use fido_transport::softkey::*;
use fido_transport::{Progress, Transport};

const AAGUID: [u8; 16] = *b"0123456789abcdef";
const RP: &str = "login.microsoft.com";

struct Harness {
    auth: SoftAuthenticator,
    clock: ManualClock,
    rng: SeededRng,
}

fn harness_with(config: SoftConfig) -> Harness {
    let clock = ManualClock::new();
    let auth = SoftAuthenticator::with_rng_and_clock(
        SoftConfig {
            aaguid: AAGUID,
            ..config
        },
        SeededRng::new(1),
        clock.clone(),
    )
    .expect("authenticator");
    Harness {
        auth,
        clock,
        rng: SeededRng::new(2),
    }
}

fn harness() -> Harness {
    harness_with(SoftConfig::default())
}

fn cdh(n: u8) -> [u8; 32] {
    [n; 32]
}

fn user(id: u8, name: &str) -> UserEntity {
    UserEntity {
        id: vec![id; 16],
        name: Some(name.to_owned()),
        display_name: Some(format!("{name} display")),
    }
}

fn rp(id: &str) -> RpEntity {
    RpEntity {
        id: id.to_owned(),
        name: Some("RP".to_owned()),
    }
}

fn protocol(n: u8) -> PinUvAuthProtocol {
    if n == 1 {
        PinUvAuthProtocol::One
    } else {
        PinUvAuthProtocol::Two
    }
}

impl Harness {
    fn raw(&mut self, bytes: &[u8]) -> Vec<u8> {
        self.auth.handle(bytes, &mut NoPresence)
    }

    fn send<C: Command>(&mut self, cmd: &C) -> Result<C::Response, Error> {
        let reply = self.raw(&encode_request(cmd));
        decode_response::<C>(&reply)
    }

    fn status<C: Command>(&mut self, cmd: &C) -> Option<CtapStatus> {
        match self.send(cmd) {
            Ok(_) => None,
            Err(Error::Ctap(s)) => Some(s),
            Err(e) => panic!("unexpected error {e:?}"),
        }
    }

    fn info(&mut self) -> AuthenticatorInfo {
        self.send(&GetInfo).expect("getInfo")
    }

    fn key_agreement(&mut self, p: u8) -> CoseKey {
        self.send(&ClientPin::GetKeyAgreement {
            pin_uv_auth_protocol: p,
        })
        .expect("getKeyAgreement")
        .key_agreement
        .expect("key agreement present")
    }

    fn set_pin(&mut self, p: u8, pin: &str) -> Option<CtapStatus> {
        let peer = self.key_agreement(p);
        let params = set_pin(
            protocol(p),
            &peer,
            &Pin::new(pin).expect("pin"),
            &mut self.rng,
        )
        .expect("set_pin params");
        self.status(&ClientPin::SetPin {
            pin_uv_auth_protocol: p,
            key_agreement: params.key_agreement,
            new_pin_enc: params.new_pin_enc,
            pin_uv_auth_param: params.pin_uv_auth_param,
        })
    }

    fn change_pin(&mut self, p: u8, old: &str, new: &str) -> Option<CtapStatus> {
        let peer = self.key_agreement(p);
        let params = change_pin(
            protocol(p),
            &peer,
            &Pin::new(old).expect("pin"),
            &Pin::new(new).expect("pin"),
            &mut self.rng,
        )
        .expect("change_pin params");
        self.status(&ClientPin::ChangePin {
            pin_uv_auth_protocol: p,
            key_agreement: params.key_agreement,
            pin_hash_enc: params.pin_hash_enc,
            new_pin_enc: params.new_pin_enc,
            pin_uv_auth_param: params.pin_uv_auth_param,
        })
    }

    /// getPinUvAuthTokenUsingPinWithPermissions (p = 2 or 1), or getPinToken when
    /// `permissions` is None.
    fn token(
        &mut self,
        p: u8,
        pin: &str,
        permissions: Option<Permissions>,
        rp_id: Option<&str>,
    ) -> Result<PinUvAuthToken, CtapStatus> {
        let peer = self.key_agreement(p);
        let req = pin_token_request(
            protocol(p),
            &peer,
            &Pin::new(pin).expect("pin"),
            &mut self.rng,
        )
        .expect("token request");
        let cmd = match permissions {
            Some(perm) => ClientPin::GetPinUvAuthTokenUsingPinWithPermissions {
                pin_uv_auth_protocol: p,
                key_agreement: req.key_agreement.clone(),
                pin_hash_enc: req.pin_hash_enc.clone(),
                permissions: perm,
                rp_id: rp_id.map(str::to_owned),
            },
            None => ClientPin::GetPinToken {
                pin_uv_auth_protocol: p,
                key_agreement: req.key_agreement.clone(),
                pin_hash_enc: req.pin_hash_enc.clone(),
            },
        };
        let answer = match self.send(&cmd) {
            Ok(a) => a,
            Err(Error::Ctap(s)) => return Err(s),
            Err(e) => panic!("unexpected {e:?}"),
        };
        let enc = answer.pin_uv_auth_token.expect("token present");
        Ok(PinUvAuthToken::decrypt(
            protocol(p),
            &req.shared_secret,
            enc.expose(),
            permissions.unwrap_or(Permissions::MAKE_CREDENTIAL | Permissions::GET_ASSERTION),
            rp_id.map(str::to_owned),
        )
        .expect("token decrypts"))
    }

    fn retries(&mut self) -> u32 {
        self.send(&ClientPin::GetPinRetries {
            pin_uv_auth_protocol: Some(2),
        })
        .expect("retries")
        .pin_retries
        .expect("pinRetries present")
    }

    fn make_credential(
        &mut self,
        rp_id: &str,
        u: UserEntity,
        rk: bool,
        token: Option<&PinUvAuthToken>,
    ) -> Result<MakeCredentialResponse, Error> {
        let mut mc = MakeCredential::new(
            cdh(1),
            rp(rp_id),
            u,
            vec![PublicKeyCredentialParameters::public_key(ALG_ES256)],
        );
        mc.options.rk = Some(rk);
        if let Some(t) = token {
            mc.pin_uv_auth_param = Some(t.authenticate_message(&AuthMessage::MakeCredential {
                client_data_hash: &mc.client_data_hash,
            }));
            mc.pin_uv_auth_protocol = Some(t.protocol().id());
        }
        self.send(&mc)
    }

    fn get_assertion(
        &mut self,
        rp_id: &str,
        allow: Option<Vec<Vec<u8>>>,
        token: Option<&PinUvAuthToken>,
    ) -> Result<GetAssertionResponse, Error> {
        let mut ga = GetAssertion::new(rp_id, cdh(2));
        ga.allow_list = allow.map(|l| {
            l.into_iter()
                .map(CredentialDescriptor::public_key)
                .collect()
        });
        if let Some(t) = token {
            ga.pin_uv_auth_param = Some(t.authenticate_message(&AuthMessage::GetAssertion {
                client_data_hash: &ga.client_data_hash,
            }));
            ga.pin_uv_auth_protocol = Some(t.protocol().id());
        }
        self.send(&ga)
    }
}

fn credential_of(mc: &MakeCredentialResponse) -> (Vec<u8>, CoseKey) {
    let ad = AuthenticatorData::parse(&mc.auth_data).expect("authData");
    let acd = ad.attested_credential().expect("attested credential");
    (acd.credential_id().to_vec(), acd.public_key().clone())
}

fn ctap(e: Result<impl std::fmt::Debug, Error>) -> CtapStatus {
    match e {
        Err(Error::Ctap(s)) => s,
        other => panic!("expected a CTAP status, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------
// getInfo

#[test]
fn get_info_reflects_configuration() {
    let mut h = harness();
    let info = h.info();
    assert_eq!(info.aaguid, AAGUID);
    assert!(info.is_ctap21());
    assert_eq!(info.pin_uv_auth_protocols, Some(vec![2, 1]));
    assert_eq!(info.supports_option("clientPin"), Some(false));
    assert_eq!(info.supports_option("rk"), Some(true));
    assert_eq!(info.supports_option("credMgmt"), Some(true));
    assert_eq!(info.supports_option("alwaysUv"), Some(false));
    assert_eq!(info.supports_option("bioEnroll"), None);
    assert_eq!(info.min_pin_length, Some(4));
    assert_eq!(info.force_pin_change, Some(false));
    assert!(info.has_extension("credProtect"));
    assert!(info.has_extension("minPinLength"));
    assert_eq!(info.remaining_discoverable_credentials, Some(25));

    let mut h20 = harness_with(SoftConfig::ctap20());
    let info = h20.info();
    assert!(!info.is_ctap21());
    assert_eq!(info.pin_uv_auth_protocols, Some(vec![1]));
    assert_eq!(info.supports_option("credMgmt"), None);
    assert_eq!(h20.status(&Selection), Some(CtapStatus::InvalidCommand));
}

// ---------------------------------------------------------------------------------
// clientPIN

#[test]
fn set_pin_then_tokens_with_both_protocols() {
    for p in [2u8, 1] {
        let mut h = harness();
        assert_eq!(h.set_pin(p, "1234"), None);
        assert_eq!(h.info().supports_option("clientPin"), Some(true));
        // A second setPIN is not allowed.
        assert_eq!(h.set_pin(p, "5678"), Some(CtapStatus::NotAllowed));
        let t = h
            .token(p, "1234", Some(Permissions::MAKE_CREDENTIAL), Some(RP))
            .expect("token");
        assert_eq!(t.protocol().id(), p);
        // Legacy getPinToken too.
        h.token(p, "1234", None, None).expect("getPinToken");
        assert_eq!(h.retries(), 8);
    }
}

#[test]
fn set_pin_rejects_short_pin_and_bad_auth() {
    let mut h = harness();
    // Raise the minimum first (allowed without a PIN), then a 4-digit PIN is refused.
    let cmd = AuthenticatorConfig::new(ConfigSubCommand::SetMinPinLength {
        new_min_pin_length: Some(6),
        min_pin_length_rpids: None,
        force_change_pin: None,
    });
    assert_eq!(h.status(&cmd), None);
    assert_eq!(h.set_pin(2, "1234"), Some(CtapStatus::PinPolicyViolation));
    // A tampered pinUvAuthParam.
    let peer = h.key_agreement(2);
    let params = set_pin(
        PinUvAuthProtocol::Two,
        &peer,
        &Pin::new("123456").expect("pin"),
        &mut h.rng,
    )
    .expect("params");
    let mut bad = params.pin_uv_auth_param.clone();
    bad[0] ^= 1;
    let status = h.status(&ClientPin::SetPin {
        pin_uv_auth_protocol: 2,
        key_agreement: params.key_agreement,
        new_pin_enc: params.new_pin_enc,
        pin_uv_auth_param: bad,
    });
    assert_eq!(status, Some(CtapStatus::PinAuthInvalid));
    assert_eq!(h.set_pin(2, "123456"), None);
}

#[test]
fn token_without_pin_is_pin_not_set() {
    let mut h = harness();
    assert_eq!(
        h.token(2, "1234", Some(Permissions::GET_ASSERTION), Some(RP))
            .err(),
        Some(CtapStatus::PinNotSet)
    );
}

#[test]
fn wrong_pins_block_until_power_cycle_then_for_good() {
    let mut h = harness();
    assert_eq!(h.set_pin(2, "1234"), None);
    let perm = Some(Permissions::GET_ASSERTION);
    assert_eq!(
        h.token(2, "9999", perm, None).err(),
        Some(CtapStatus::PinInvalid)
    );
    assert_eq!(h.retries(), 7);
    assert_eq!(
        h.token(2, "9999", perm, None).err(),
        Some(CtapStatus::PinInvalid)
    );
    assert_eq!(
        h.token(2, "9999", perm, None).err(),
        Some(CtapStatus::PinAuthBlocked)
    );
    assert_eq!(h.retries(), 5);
    // Even the right PIN is refused until a power cycle, without using a retry.
    assert_eq!(
        h.token(2, "1234", perm, None).err(),
        Some(CtapStatus::PinAuthBlocked)
    );
    assert_eq!(h.retries(), 5);
    let state = h
        .send(&ClientPin::GetPinRetries {
            pin_uv_auth_protocol: Some(2),
        })
        .expect("retries");
    assert_eq!(state.power_cycle_state, Some(true));
    h.auth.power_cycle();
    // The right PIN resets the counter.
    h.token(2, "1234", perm, None)
        .expect("token after power cycle");
    assert_eq!(h.retries(), 8);
    // Eight wrong PINs in all (with power cycles) block the PIN.
    let mut last = None;
    for i in 0..8 {
        if i % 3 == 0 {
            h.auth.power_cycle();
        }
        last = h.token(2, "0000", perm, None).err();
    }
    assert_eq!(last, Some(CtapStatus::PinBlocked));
    assert_eq!(h.retries(), 0);
    h.auth.power_cycle();
    assert_eq!(
        h.token(2, "1234", perm, None).err(),
        Some(CtapStatus::PinBlocked)
    );
}

#[test]
fn wrong_pin_regenerates_key_agreement() {
    let mut h = harness();
    assert_eq!(h.set_pin(2, "1234"), None);
    let before = h.key_agreement(2);
    assert_eq!(h.key_agreement(2), before, "stable while nothing happens");
    let _ = h.token(2, "4321", Some(Permissions::GET_ASSERTION), None);
    assert_ne!(h.key_agreement(2), before);
}

#[test]
fn change_pin_invalidates_token_and_checks_old_pin() {
    let mut h = harness();
    assert_eq!(h.set_pin(1, "1234"), None);
    let t = h
        .token(2, "1234", Some(Permissions::MAKE_CREDENTIAL), Some(RP))
        .expect("token");
    assert_eq!(
        h.change_pin(2, "0000", "5678"),
        Some(CtapStatus::PinInvalid)
    );
    assert_eq!(h.change_pin(2, "1234", "5678"), None);
    // The old token is gone.
    let r = h.make_credential(RP, user(1, "a"), false, Some(&t));
    assert_eq!(ctap(r), CtapStatus::PinAuthInvalid);
    assert_eq!(
        h.token(2, "1234", Some(Permissions::GET_ASSERTION), None)
            .err(),
        Some(CtapStatus::PinInvalid)
    );
    h.token(1, "5678", Some(Permissions::GET_ASSERTION), None)
        .expect("new PIN works");
}

// ---------------------------------------------------------------------------------
// makeCredential / getAssertion

#[test]
fn make_credential_packed_attestation_verifies() {
    let mut h = harness();
    let mc = h
        .make_credential(RP, user(1, "alice"), false, None)
        .expect("makeCredential");
    assert_eq!(mc.fmt, "packed");
    let obj = AttestationObject::from_parts(&mc.fmt, &mc.auth_data, &mc.att_stmt).expect("object");
    let verified = obj.verify(&cdh(1)).expect("attestation verifies (strict)");
    assert_eq!(verified.aaguid, AAGUID);
    assert!(matches!(
        verified.attestation_type,
        AttestationType::BasicOrAttCa { .. }
    ));
    let ad = obj.auth_data();
    assert!(ad.is_for_rp_id(RP));
    assert!(ad.flags().user_present());
    assert!(!ad.flags().user_verified());
    // A wrong clientDataHash does not verify.
    assert!(obj.verify(&cdh(9)).is_err());
}

#[test]
fn self_and_none_attestation_modes() {
    let mut h = harness_with(SoftConfig {
        attestation: AttestationMode::SelfAttestation,
        ..SoftConfig::default()
    });
    let mc = h
        .make_credential(RP, user(1, "a"), false, None)
        .expect("mc");
    let obj = AttestationObject::from_parts(&mc.fmt, &mc.auth_data, &mc.att_stmt).expect("obj");
    assert_eq!(
        obj.verify(&cdh(1)).expect("verifies").attestation_type,
        AttestationType::Self_
    );
    let mut h = harness_with(SoftConfig {
        attestation: AttestationMode::None,
        ..SoftConfig::default()
    });
    let mc = h
        .make_credential(RP, user(1, "a"), false, None)
        .expect("mc");
    assert_eq!(mc.fmt, "none");
}

#[test]
fn resident_credential_with_pin_and_assertion_signature() {
    let mut h = harness();
    assert_eq!(h.set_pin(2, "1234"), None);
    // rk without UV is refused once a PIN is set.
    let r = h.make_credential(RP, user(1, "alice"), true, None);
    assert_eq!(ctap(r), CtapStatus::PuatRequired);
    let t = h
        .token(
            2,
            "1234",
            Some(Permissions::MAKE_CREDENTIAL | Permissions::GET_ASSERTION),
            None,
        )
        .expect("token");
    let mc = h
        .make_credential(RP, user(1, "alice"), true, Some(&t))
        .expect("mc rk");
    let ad = AuthenticatorData::parse(&mc.auth_data).expect("ad");
    assert!(ad.flags().user_verified());
    let (id, key) = credential_of(&mc);
    assert_eq!(h.auth.state().credentials.len(), 1);
    // The token is now bound to RP; another RP is refused.
    let other = h.make_credential("example.com", user(2, "bob"), true, Some(&t));
    assert_eq!(ctap(other), CtapStatus::PinAuthInvalid);

    // Discoverable assertion with UV returns the user with names.
    let ga = h.get_assertion(RP, None, Some(&t)).expect("ga");
    assert_eq!(
        ga.credential.as_ref().map(|c| c.id.clone()),
        Some(id.clone())
    );
    let parsed = verify_assertion(&key, &ga.auth_data, &cdh(2), &ga.signature).expect("signature");
    assert!(parsed.flags().user_verified());
    assert!(parsed.sign_count() > ad.sign_count());
    let u = ga.user.expect("user");
    assert_eq!(u.id, vec![1; 16]);
    assert_eq!(u.name.as_deref(), Some("alice"));
    // Without UV: user id only.
    let ga = h.get_assertion(RP, None, None).expect("ga without uv");
    let u = ga.user.expect("user");
    assert_eq!(u.name, None);
    verify_assertion(&key, &ga.auth_data, &cdh(2), &ga.signature).expect("signature");
}

#[test]
fn non_resident_credential_round_trip_and_foreign_ids() {
    let mut h = harness();
    let mc = h
        .make_credential(RP, user(1, "a"), false, None)
        .expect("mc");
    let (id, key) = credential_of(&mc);
    assert!(h.auth.state().credentials.is_empty(), "not stored");
    let ga = h
        .get_assertion(RP, Some(vec![id.clone()]), None)
        .expect("ga with allow list");
    verify_assertion(&key, &ga.auth_data, &cdh(2), &ga.signature).expect("signature");
    assert_eq!(ga.user, None);
    // Same id for another RP, or a foreign id: no credentials.
    assert_eq!(
        ctap(h.get_assertion("evil.example", Some(vec![id.clone()]), None)),
        CtapStatus::NoCredentials
    );
    let mut forged = id.clone();
    forged[5] ^= 1;
    assert_eq!(
        ctap(h.get_assertion(RP, Some(vec![forged]), None)),
        CtapStatus::NoCredentials
    );
    // No discoverable credentials at all.
    assert_eq!(
        ctap(h.get_assertion(RP, None, None)),
        CtapStatus::NoCredentials
    );
}

#[test]
fn same_user_replaces_and_get_next_assertion_walks_the_rest() {
    let mut h = harness();
    let first = h.make_credential(RP, user(1, "a"), true, None).expect("mc");
    h.make_credential(RP, user(1, "a2"), true, None)
        .expect("replace");
    assert_eq!(h.auth.state().credentials.len(), 1);
    let (old_id, _) = credential_of(&first);
    assert_eq!(
        ctap(h.get_assertion(RP, Some(vec![old_id]), None)),
        CtapStatus::NoCredentials,
        "replaced credential is gone"
    );
    h.make_credential(RP, user(2, "b"), true, None).expect("mc");
    h.make_credential(RP, user(3, "c"), true, None).expect("mc");
    h.make_credential("other.example", user(4, "d"), true, None)
        .expect("mc");
    let ga = h.get_assertion(RP, None, None).expect("ga");
    assert_eq!(ga.number_of_credentials, Some(3));
    // Newest first.
    assert_eq!(ga.user.map(|u| u.id), Some(vec![3; 16]));
    let n1 = h.send(&GetNextAssertion).expect("next");
    let n2 = h.send(&GetNextAssertion).expect("next");
    assert_eq!(n1.user.map(|u| u.id), Some(vec![2; 16]));
    assert_eq!(n2.user.map(|u| u.id), Some(vec![1; 16]));
    assert_eq!(n1.number_of_credentials, None);
    assert_eq!(h.status(&GetNextAssertion), Some(CtapStatus::NotAllowed));
    // Any other command in between ends the sequence.
    h.get_assertion(RP, None, None).expect("ga");
    h.info();
    assert_eq!(h.status(&GetNextAssertion), Some(CtapStatus::NotAllowed));
    // And it expires after 30 s.
    h.get_assertion(RP, None, None).expect("ga");
    h.clock.advance(Duration::from_secs(31));
    assert_eq!(h.status(&GetNextAssertion), Some(CtapStatus::NotAllowed));
}

#[test]
fn exclude_list_gives_credential_excluded_after_presence() {
    let mut h = harness();
    let mc = h
        .make_credential(RP, user(1, "a"), false, None)
        .expect("mc");
    let (id, _) = credential_of(&mc);
    let mut req = MakeCredential::new(
        cdh(1),
        rp(RP),
        user(2, "b"),
        vec![PublicKeyCredentialParameters::public_key(ALG_ES256)],
    );
    req.exclude_list = Some(vec![CredentialDescriptor::public_key(id.clone())]);
    let mut touched = 0;
    let reply = h.auth.handle(&encode_request(&req), &mut |p: Progress| {
        if p == Progress::UserPresenceNeeded {
            touched += 1;
        }
    });
    assert_eq!(reply, vec![CtapStatus::CredentialExcluded.to_u8()]);
    assert_eq!(touched, 1, "asked for presence first");
    // For another RP the id is unknown, so the credential is made.
    req.rp = rp("other.example");
    h.send(&req).expect("not excluded elsewhere");
}

#[test]
fn unsupported_algorithm_and_invalid_options() {
    let mut h = harness();
    let mut req = MakeCredential::new(
        cdh(1),
        rp(RP),
        user(1, "a"),
        vec![PublicKeyCredentialParameters::public_key(-257)],
    );
    assert_eq!(h.status(&req), Some(CtapStatus::UnsupportedAlgorithm));
    req.pub_key_cred_params = vec![PublicKeyCredentialParameters::public_key(ALG_ES256)];
    req.options.up = Some(false);
    assert_eq!(h.status(&req), Some(CtapStatus::InvalidOption));
    req.options.up = None;
    req.options.uv = Some(true);
    assert_eq!(h.status(&req), Some(CtapStatus::InvalidOption));
}

#[test]
fn pin_probe_with_empty_auth_param() {
    let mut h = harness();
    let mut req = MakeCredential::new(
        cdh(1),
        rp(RP),
        user(1, "a"),
        vec![PublicKeyCredentialParameters::public_key(ALG_ES256)],
    );
    req.pin_uv_auth_param = Some(Vec::new());
    req.pin_uv_auth_protocol = Some(2);
    assert_eq!(h.status(&req), Some(CtapStatus::PinNotSet));
    assert_eq!(h.set_pin(2, "1234"), None);
    assert_eq!(h.status(&req), Some(CtapStatus::PinInvalid));
}

// ---------------------------------------------------------------------------------
// In-process transport

#[test]
fn soft_transport_carries_requests_and_power_cycles() {
    let h = harness();
    let mut t = SoftTransport::new(h.auth);
    let reply = t
        .transact(&encode_request(&GetInfo), &mut |_| {})
        .expect("transact");
    let info = decode_response::<GetInfo>(&reply).expect("info");
    assert_eq!(info.aaguid, AAGUID);
    assert!(t.power_cycle().is_ok());
    assert_eq!(t.describe(), "keysmith software authenticator (in-process)");
}
