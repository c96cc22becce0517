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

// ---------------------------------------------------------------------------------
// authenticatorConfig

fn config_cmd(sub: ConfigSubCommand, token: Option<&PinUvAuthToken>) -> AuthenticatorConfig {
    let mut cmd = AuthenticatorConfig::new(sub);
    if let Some(t) = token {
        cmd.pin_uv_auth_protocol = Some(t.protocol().id());
        cmd.pin_uv_auth_param = Some(t.authenticate(&cmd.pin_uv_auth_message()));
    }
    cmd
}

fn min_len(n: Option<u8>, rpids: Option<Vec<&str>>, force: Option<bool>) -> ConfigSubCommand {
    ConfigSubCommand::SetMinPinLength {
        new_min_pin_length: n,
        min_pin_length_rpids: rpids.map(|r| r.into_iter().map(str::to_owned).collect()),
        force_change_pin: force,
    }
}

#[test]
fn toggle_always_uv_needs_acfg_token_and_is_reflected() {
    let mut h = harness();
    assert_eq!(h.set_pin(2, "1234"), None);
    // Without a token: PUAT_REQUIRED; with a token lacking acfg: PIN_AUTH_INVALID.
    assert_eq!(
        h.status(&config_cmd(ConfigSubCommand::ToggleAlwaysUv, None)),
        Some(CtapStatus::PuatRequired)
    );
    let ga = h
        .token(2, "1234", Some(Permissions::GET_ASSERTION), None)
        .expect("token");
    assert_eq!(
        h.status(&config_cmd(ConfigSubCommand::ToggleAlwaysUv, Some(&ga))),
        Some(CtapStatus::PinAuthInvalid)
    );
    let t = h
        .token(2, "1234", Some(Permissions::AUTHENTICATOR_CONFIG), None)
        .expect("token");
    assert_eq!(
        h.status(&config_cmd(ConfigSubCommand::ToggleAlwaysUv, Some(&t))),
        None
    );
    assert_eq!(h.info().supports_option("alwaysUv"), Some(true));
    // alwaysUv: a non-resident credential now needs UV too.
    let r = h.make_credential(RP, user(1, "a"), false, None);
    assert_eq!(ctap(r), CtapStatus::PuatRequired);
    assert_eq!(
        h.status(&config_cmd(ConfigSubCommand::ToggleAlwaysUv, Some(&t))),
        None
    );
    assert_eq!(h.info().supports_option("alwaysUv"), Some(false));
    h.make_credential(RP, user(1, "a"), false, None)
        .expect("no UV needed again");
}

#[test]
fn set_min_pin_length_only_grows_and_bounds_rpids() {
    let mut h = harness();
    assert_eq!(
        h.status(&config_cmd(min_len(Some(6), None, None), None)),
        None
    );
    assert_eq!(h.info().min_pin_length, Some(6));
    assert_eq!(
        h.status(&config_cmd(min_len(Some(5), None, None), None)),
        Some(CtapStatus::PinPolicyViolation)
    );
    assert_eq!(
        h.status(&config_cmd(
            min_len(
                None,
                Some(vec!["a.example", "b.example", "c.example"]),
                None
            ),
            None
        )),
        Some(CtapStatus::PinPolicyViolation),
        "more RP ids than maxRPIDsForSetMinPINLength (2)"
    );
    assert_eq!(h.info().max_rpids_for_set_min_pin_length, Some(2));
    assert_eq!(
        h.status(&config_cmd(min_len(None, Some(vec![RP]), None), None)),
        None
    );
    // forceChangePin without a PIN.
    assert_eq!(
        h.status(&config_cmd(min_len(None, None, Some(true)), None)),
        Some(CtapStatus::PinNotSet)
    );
    assert_eq!(h.info().min_pin_length, Some(6));
}

#[test]
fn min_pin_length_extension_only_for_listed_rp_ids() {
    let mut h = harness();
    assert_eq!(
        h.status(&config_cmd(min_len(Some(7), Some(vec![RP]), None), None)),
        None
    );
    let ask = |h: &mut Harness, rp_id: &str| {
        let mut mc = MakeCredential::new(
            cdh(1),
            rp(rp_id),
            user(1, "a"),
            vec![PublicKeyCredentialParameters::public_key(ALG_ES256)],
        );
        mc.extensions = Some(MakeCredentialExtensions {
            min_pin_length: Some(true),
            ..Default::default()
        });
        let r = h.send(&mc).expect("mc");
        AuthenticatorData::parse(&r.auth_data)
            .expect("ad")
            .min_pin_length()
    };
    assert_eq!(ask(&mut h, RP), Some(7));
    assert_eq!(ask(&mut h, "other.example"), None);
}

#[test]
fn force_pin_change_blocks_tokens_until_change_pin() {
    let mut h = harness();
    assert_eq!(h.set_pin(2, "1234"), None);
    let t = h
        .token(2, "1234", Some(Permissions::AUTHENTICATOR_CONFIG), None)
        .expect("token");
    // Raising the minimum above the PIN's length forces a change.
    assert_eq!(
        h.status(&config_cmd(min_len(Some(6), None, None), Some(&t))),
        None
    );
    assert_eq!(h.info().force_pin_change, Some(true));
    assert_eq!(
        h.token(2, "1234", Some(Permissions::GET_ASSERTION), None)
            .err(),
        Some(CtapStatus::PinPolicyViolation)
    );
    // The new PIN must satisfy the new minimum.
    assert_eq!(
        h.change_pin(2, "1234", "12345"),
        Some(CtapStatus::PinPolicyViolation)
    );
    assert_eq!(h.change_pin(2, "1234", "123456"), None);
    assert_eq!(h.info().force_pin_change, Some(false));
    h.token(2, "123456", Some(Permissions::GET_ASSERTION), None)
        .expect("token after change");

    // Explicit forceChangePin: the same PIN is not accepted as the "new" one.
    let t = h
        .token(2, "123456", Some(Permissions::AUTHENTICATOR_CONFIG), None)
        .expect("token");
    assert_eq!(
        h.status(&config_cmd(min_len(None, None, Some(true)), Some(&t))),
        None
    );
    assert_eq!(
        h.change_pin(2, "123456", "123456"),
        Some(CtapStatus::PinPolicyViolation)
    );
    assert_eq!(h.change_pin(2, "123456", "654321"), None);
}

// ---------------------------------------------------------------------------------
// credProtect

#[test]
fn cred_protect_levels_are_honoured_without_uv() {
    let mut h = harness();
    let make = |h: &mut Harness, uid: u8, level: u8| {
        let mut mc = MakeCredential::new(
            cdh(1),
            rp(RP),
            user(uid, "u"),
            vec![PublicKeyCredentialParameters::public_key(ALG_ES256)],
        );
        mc.options.rk = Some(true);
        mc.extensions = Some(MakeCredentialExtensions {
            cred_protect: Some(level),
            ..Default::default()
        });
        let r = h.send(&mc).expect("mc");
        let ad = AuthenticatorData::parse(&r.auth_data).expect("ad");
        assert_eq!(ad.cred_protect(), Some(level));
        credential_of(&r).0
    };
    let id1 = make(&mut h, 1, 1);
    let id2 = make(&mut h, 2, 2);
    let id3 = make(&mut h, 3, 3);
    // Discoverable without UV: only level 1.
    let ga = h.get_assertion(RP, None, None).expect("ga");
    assert_eq!(ga.number_of_credentials, None);
    assert_eq!(ga.credential.map(|c| c.id), Some(id1.clone()));
    // Allow list without UV: level 2 allowed, level 3 not.
    let ga = h
        .get_assertion(RP, Some(vec![id2.clone()]), None)
        .expect("ga");
    assert_eq!(ga.credential.map(|c| c.id), Some(id2.clone()));
    assert_eq!(
        ctap(h.get_assertion(RP, Some(vec![id3.clone()]), None)),
        CtapStatus::NoCredentials
    );
    // With UV, all three.
    assert_eq!(h.set_pin(2, "1234"), None);
    let t = h
        .token(2, "1234", Some(Permissions::GET_ASSERTION), Some(RP))
        .expect("token");
    let ga = h.get_assertion(RP, None, Some(&t)).expect("ga");
    assert_eq!(ga.number_of_credentials, Some(3));
    let ga = h
        .get_assertion(RP, Some(vec![id3.clone()]), Some(&t))
        .expect("ga");
    assert_eq!(ga.credential.map(|c| c.id), Some(id3));
    // Invalid level.
    let mut mc = MakeCredential::new(
        cdh(1),
        rp(RP),
        user(9, "u"),
        vec![PublicKeyCredentialParameters::public_key(ALG_ES256)],
    );
    mc.extensions = Some(MakeCredentialExtensions {
        cred_protect: Some(4),
        ..Default::default()
    });
    assert_eq!(h.status(&mc), Some(CtapStatus::InvalidParameter));
}

#[test]
fn cred_blob_and_large_blob_key_extensions() {
    let mut h = harness();
    let mut mc = MakeCredential::new(
        cdh(1),
        rp(RP),
        user(1, "u"),
        vec![PublicKeyCredentialParameters::public_key(ALG_ES256)],
    );
    mc.options.rk = Some(true);
    mc.extensions = Some(MakeCredentialExtensions {
        cred_blob: Some(b"hello".to_vec()),
        large_blob_key: Some(true),
        ..Default::default()
    });
    let r = h.send(&mc).expect("mc");
    let ad = AuthenticatorData::parse(&r.auth_data).expect("ad");
    assert_eq!(ad.cred_blob_stored(), Some(true));
    let lbk = r.large_blob_key.expect("largeBlobKey").expose().to_vec();
    assert_eq!(lbk.len(), 32);
    let mut ga = GetAssertion::new(RP, cdh(2));
    ga.extensions = Some(GetAssertionExtensions {
        cred_blob: Some(true),
        large_blob_key: Some(true),
        ..Default::default()
    });
    let a = h.send(&ga).expect("ga");
    assert_eq!(
        AuthenticatorData::parse(&a.auth_data)
            .expect("ad")
            .cred_blob(),
        Some(&b"hello"[..])
    );
    assert_eq!(a.large_blob_key.map(|k| k.expose().to_vec()), Some(lbk));
    // largeBlobKey needs rk.
    mc.options.rk = Some(false);
    assert_eq!(h.status(&mc), Some(CtapStatus::InvalidOption));
}

// ---------------------------------------------------------------------------------
// Credential management

fn cm(sub: CredMgmtSubCommand, token: Option<&PinUvAuthToken>) -> CredentialManagement {
    let mut c = CredentialManagement::new(sub);
    if let Some(t) = token {
        c.pin_uv_auth_protocol = Some(t.protocol().id());
        c.pin_uv_auth_param = Some(t.authenticate(&c.pin_uv_auth_message()));
    }
    c
}

#[test]
fn credential_management_enumerate_update_delete() {
    let mut h = harness();
    assert_eq!(h.set_pin(2, "1234"), None);
    let mk = h
        .token(2, "1234", Some(Permissions::MAKE_CREDENTIAL), Some(RP))
        .expect("token");
    let a = h
        .make_credential(RP, user(1, "alice"), true, Some(&mk))
        .expect("mc");
    h.make_credential(RP, user(2, "bob"), true, Some(&mk))
        .expect("mc");
    let mk2 = h
        .token(
            2,
            "1234",
            Some(Permissions::MAKE_CREDENTIAL),
            Some("other.example"),
        )
        .expect("token");
    h.make_credential("other.example", user(3, "carol"), true, Some(&mk2))
        .expect("mc");
    let (alice_id, alice_key) = credential_of(&a);

    // Without a token, or with a token lacking cm.
    assert_eq!(
        h.status(&cm(CredMgmtSubCommand::GetCredsMetadata, None)),
        Some(CtapStatus::PuatRequired)
    );
    assert_eq!(
        h.status(&cm(CredMgmtSubCommand::GetCredsMetadata, Some(&mk2))),
        Some(CtapStatus::PinAuthInvalid)
    );
    let t = h
        .token(2, "1234", Some(Permissions::CREDENTIAL_MANAGEMENT), None)
        .expect("cm token");
    let meta = h
        .send(&cm(CredMgmtSubCommand::GetCredsMetadata, Some(&t)))
        .expect("metadata");
    assert_eq!(meta.existing_resident_credentials_count, Some(3));
    assert_eq!(
        meta.max_possible_remaining_resident_credentials_count,
        Some(22)
    );

    let first = h
        .send(&cm(CredMgmtSubCommand::EnumerateRpsBegin, Some(&t)))
        .expect("rps");
    assert_eq!(first.total_rps, Some(2));
    let next = h
        .send(&cm(CredMgmtSubCommand::EnumerateRpsGetNextRp, None))
        .expect("next rp");
    let mut ids = vec![
        first.rp.expect("rp").id,
        next.rp.as_ref().expect("rp").id.clone(),
    ];
    ids.sort();
    assert_eq!(ids, vec![RP.to_owned(), "other.example".to_owned()]);
    assert_eq!(
        next.rp_id_hash,
        Some(fido_core::authdata::rp_id_hash(&next.rp.expect("rp").id))
    );
    assert_eq!(
        h.status(&cm(CredMgmtSubCommand::EnumerateRpsGetNextRp, None)),
        Some(CtapStatus::NotAllowed)
    );

    let begin = CredMgmtSubCommand::EnumerateCredentialsBegin {
        rp_id_hash: fido_core::authdata::rp_id_hash(RP),
    };
    let c1 = h.send(&cm(begin.clone(), Some(&t))).expect("creds");
    assert_eq!(c1.total_credentials, Some(2));
    assert_eq!(c1.cred_protect, Some(1));
    // The enumeration state is invalidated by any other command.
    h.info();
    assert_eq!(
        h.status(&cm(
            CredMgmtSubCommand::EnumerateCredentialsGetNextCredential,
            None
        )),
        Some(CtapStatus::NotAllowed)
    );
    let c1 = h.send(&cm(begin.clone(), Some(&t))).expect("creds");
    let c2 = h
        .send(&cm(
            CredMgmtSubCommand::EnumerateCredentialsGetNextCredential,
            None,
        ))
        .expect("next cred");
    let both = [c1, c2];
    let alice = both
        .iter()
        .find(|c| c.user.as_ref().map(|u| u.id.clone()) == Some(vec![1; 16]))
        .expect("alice listed");
    assert_eq!(
        alice.credential_id.as_ref().map(|d| d.id.clone()),
        Some(alice_id.clone())
    );
    assert_eq!(alice.public_key.as_ref(), Some(&alice_key));

    // Update: user id must match.
    let wrong = CredMgmtSubCommand::UpdateUserInformation {
        credential_id: CredentialDescriptor::public_key(alice_id.clone()),
        user: user(9, "mallory"),
    };
    assert_eq!(
        h.status(&cm(wrong, Some(&t))),
        Some(CtapStatus::InvalidParameter)
    );
    let update = CredMgmtSubCommand::UpdateUserInformation {
        credential_id: CredentialDescriptor::public_key(alice_id.clone()),
        user: UserEntity {
            id: vec![1; 16],
            name: Some("alice2".into()),
            display_name: None,
        },
    };
    assert_eq!(h.status(&cm(update, Some(&t))), None);
    let stored = h
        .auth
        .state()
        .credentials
        .iter()
        .find(|c| c.id == alice_id)
        .expect("still there")
        .clone();
    assert_eq!(stored.user_name.as_deref(), Some("alice2"));
    assert_eq!(stored.user_display_name, None);

    // Delete, then it is gone for assertions and for a second delete.
    let del = CredMgmtSubCommand::DeleteCredential {
        credential_id: CredentialDescriptor::public_key(alice_id.clone()),
    };
    assert_eq!(h.status(&cm(del.clone(), Some(&t))), None);
    assert_eq!(
        h.status(&cm(del, Some(&t))),
        Some(CtapStatus::NoCredentials)
    );
    assert_eq!(
        ctap(h.get_assertion(RP, Some(vec![alice_id]), None)),
        CtapStatus::NoCredentials
    );
    assert_eq!(h.auth.state().credentials.len(), 2);
}

#[test]
fn credential_management_token_bound_to_rp() {
    let mut h = harness();
    assert_eq!(h.set_pin(2, "1234"), None);
    h.make_credential("other.example", user(3, "c"), false, None)
        .expect("non-rk without UV is fine");
    let t = h
        .token(
            2,
            "1234",
            Some(Permissions::CREDENTIAL_MANAGEMENT),
            Some("other.example"),
        )
        .expect("token");
    assert_eq!(
        h.status(&cm(CredMgmtSubCommand::EnumerateRpsBegin, Some(&t))),
        Some(CtapStatus::PinAuthInvalid)
    );
    assert_eq!(
        h.status(&cm(
            CredMgmtSubCommand::EnumerateCredentialsBegin {
                rp_id_hash: fido_core::authdata::rp_id_hash(RP)
            },
            Some(&t)
        )),
        Some(CtapStatus::PinAuthInvalid)
    );
    assert_eq!(
        h.status(&cm(
            CredMgmtSubCommand::EnumerateCredentialsBegin {
                rp_id_hash: fido_core::authdata::rp_id_hash("other.example")
            },
            Some(&t)
        )),
        Some(CtapStatus::NoCredentials)
    );
}

#[test]
fn key_store_full() {
    let mut h = harness_with(SoftConfig {
        max_resident_credentials: 2,
        ..SoftConfig::default()
    });
    h.make_credential(RP, user(1, "a"), true, None).expect("mc");
    h.make_credential(RP, user(2, "b"), true, None).expect("mc");
    assert_eq!(
        ctap(h.make_credential(RP, user(3, "c"), true, None)),
        CtapStatus::KeyStoreFull
    );
    // Replacing an existing user still works.
    h.make_credential(RP, user(2, "b2"), true, None)
        .expect("replace");
    assert_eq!(h.info().remaining_discoverable_credentials, Some(0));
}

// ---------------------------------------------------------------------------------
// Large blobs

fn serialized(body: &[u8]) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    let mut v = body.to_vec();
    v.extend_from_slice(&Sha256::digest(body)[..16]);
    v
}

fn lb_write(
    offset: u32,
    data: &[u8],
    length: Option<u32>,
    t: Option<&PinUvAuthToken>,
) -> LargeBlobs {
    let mut w = LargeBlobs::write(offset, data.to_vec(), length);
    if let Some(t) = t {
        w.pin_uv_auth_protocol = Some(t.protocol().id());
        w.pin_uv_auth_param =
            Some(t.authenticate_message(&AuthMessage::LargeBlobs { offset, data }));
    }
    w
}

#[test]
fn large_blobs_read_and_fragmented_write() {
    let mut h = harness();
    let initial = h.send(&LargeBlobs::read(0, 100)).expect("read");
    assert_eq!(initial.config.expect("config").len(), 17);
    assert_eq!(h.set_pin(2, "1234"), None);
    let array = serialized(&[0x81, 0x43, 1, 2, 3]);
    // Needs a token with lbw.
    assert_eq!(
        h.status(&lb_write(0, &array[..10], Some(array.len() as u32), None)),
        Some(CtapStatus::PuatRequired)
    );
    let t = h
        .token(2, "1234", Some(Permissions::LARGE_BLOB_WRITE), None)
        .expect("token");
    assert_eq!(
        h.status(&lb_write(
            0,
            &array[..10],
            Some(array.len() as u32),
            Some(&t)
        )),
        None
    );
    // Out-of-sequence offset.
    assert_eq!(
        h.status(&lb_write(5, &array[10..], None, Some(&t))),
        Some(CtapStatus::InvalidSeq)
    );
    assert_eq!(h.status(&lb_write(10, &array[10..], None, Some(&t))), None);
    let back = h
        .send(&LargeBlobs::read(0, 1000))
        .expect("read")
        .config
        .expect("config");
    assert_eq!(back, array);
    let part = h
        .send(&LargeBlobs::read(3, 4))
        .expect("read")
        .config
        .expect("config");
    assert_eq!(part, array[3..7].to_vec());
    // A corrupt trailer is an integrity failure and keeps the old array.
    let mut bad = serialized(&[0x80]);
    bad[5] ^= 1;
    assert_eq!(
        h.status(&lb_write(0, &bad, Some(bad.len() as u32), Some(&t))),
        Some(CtapStatus::IntegrityFailure)
    );
    assert_eq!(
        h.send(&LargeBlobs::read(0, 1000)).expect("read").config,
        Some(array)
    );
    // Too large.
    assert_eq!(
        h.status(&lb_write(0, &[0; 17], Some(5000), Some(&t))),
        Some(CtapStatus::LargeBlobStorageFull)
    );
    assert_eq!(
        h.status(&LargeBlobs::read(1000, 1)),
        Some(CtapStatus::InvalidParameter)
    );
}

// ---------------------------------------------------------------------------------
// Reset and power cycle

#[test]
fn reset_only_within_window_and_with_presence() {
    let mut h = harness();
    assert_eq!(h.set_pin(2, "1234"), None);
    h.make_credential(RP, user(1, "a"), false, None)
        .expect("mc");
    let cert = h.auth.attestation_certificate().to_vec();
    h.clock.advance(Duration::from_secs(11));
    assert_eq!(h.status(&Reset), Some(CtapStatus::NotAllowed));
    h.auth.power_cycle();
    h.auth.control().set_presence(UserPresence::Deny);
    assert_eq!(h.status(&Reset), Some(CtapStatus::OperationDenied));
    h.auth.control().set_presence(UserPresence::TimeOut);
    assert_eq!(h.status(&Reset), Some(CtapStatus::UserActionTimeout));
    h.auth.control().set_presence(UserPresence::Approve);
    h.clock.advance(Duration::from_secs(9));
    assert_eq!(h.status(&Reset), None);
    assert_eq!(h.info().supports_option("clientPin"), Some(false));
    assert!(h.auth.state().pin.is_none());
    assert_eq!(
        h.auth.attestation_certificate(),
        &cert[..],
        "model identity kept"
    );
}

#[test]
fn reset_forgets_credentials_and_tokens() {
    let mut h = harness();
    let mc = h.make_credential(RP, user(1, "a"), true, None).expect("mc");
    let (id, _) = credential_of(&mc);
    let nr = h
        .make_credential(RP, user(2, "b"), false, None)
        .expect("mc");
    let (nr_id, _) = credential_of(&nr);
    assert_eq!(h.status(&Reset), None);
    assert!(h.auth.state().credentials.is_empty());
    assert_eq!(
        ctap(h.get_assertion(RP, Some(vec![id, nr_id]), None)),
        CtapStatus::NoCredentials,
        "even non-resident ids die with the master key"
    );
}

// ---------------------------------------------------------------------------------
// User presence policy

#[test]
fn presence_policies_deny_timeout_delay_cancel() {
    let mut h = harness();
    let control = h.auth.control();
    control.set_presence(UserPresence::Deny);
    assert_eq!(
        ctap(h.make_credential(RP, user(1, "a"), false, None)),
        CtapStatus::OperationDenied
    );
    control.set_presence(UserPresence::TimeOut);
    assert_eq!(
        ctap(h.make_credential(RP, user(1, "a"), false, None)),
        CtapStatus::UserActionTimeout
    );
    control.set_presence(UserPresence::Delay(Duration::from_millis(120)));
    let req = MakeCredential::new(
        cdh(1),
        rp(RP),
        user(1, "a"),
        vec![PublicKeyCredentialParameters::public_key(ALG_ES256)],
    );
    let mut seen = Vec::new();
    let start = std::time::Instant::now();
    let reply = h
        .auth
        .handle(&encode_request(&req), &mut |p: Progress| seen.push(p));
    assert!(start.elapsed() >= Duration::from_millis(120));
    assert_eq!(reply.first(), Some(&0x00));
    assert!(
        seen.iter()
            .filter(|p| **p == Progress::UserPresenceNeeded)
            .count()
            >= 2
    );

    struct Cancelling;
    impl Presence for Cancelling {
        fn progress(&mut self, _: Progress) {}
        fn is_cancelled(&mut self) -> bool {
            true
        }
    }
    control.set_presence(UserPresence::Delay(Duration::from_secs(30)));
    let reply = h.auth.handle(&encode_request(&req), &mut Cancelling);
    assert_eq!(reply, vec![CtapStatus::KeepaliveCancel.to_u8()]);
    assert_eq!(
        control.presence(),
        UserPresence::Delay(Duration::from_secs(30))
    );
    // up=false assertions do not ask.
    control.set_presence(UserPresence::Deny);
    let mut h2 = harness();
    let mc = h2
        .make_credential(RP, user(1, "a"), false, None)
        .expect("mc");
    let (id, _) = credential_of(&mc);
    h2.auth.control().set_presence(UserPresence::Deny);
    let mut ga = GetAssertion::new(RP, cdh(2));
    ga.allow_list = Some(vec![CredentialDescriptor::public_key(id)]);
    ga.options.up = Some(false);
    let a = h2.send(&ga).expect("silent assertion");
    assert!(!AuthenticatorData::parse(&a.auth_data)
        .expect("ad")
        .flags()
        .user_present());
}

// ---------------------------------------------------------------------------------
// Persistence

#[test]
fn persistence_round_trip() {
    let dir = std::env::temp_dir().join(format!("softkey-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("state.json");
    let _ = std::fs::remove_file(&path);
    let (id, key);
    {
        let mut a = SoftAuthenticator::open_persistent(&path, SoftConfig::default()).expect("open");
        let mut h = Harness {
            auth: SoftAuthenticator::new(SoftConfig::default()).expect("placeholder"),
            clock: ManualClock::new(),
            rng: SeededRng::new(3),
        };
        std::mem::swap(&mut h.auth, &mut a);
        assert_eq!(h.set_pin(2, "1234"), None);
        let t = h
            .token(2, "1234", Some(Permissions::MAKE_CREDENTIAL), None)
            .expect("token");
        let mc = h
            .make_credential(RP, user(1, "a"), true, Some(&t))
            .expect("mc");
        (id, key) = credential_of(&mc);
        // Wrong PIN once: retries persisted.
        let _ = h.token(2, "9999", Some(Permissions::GET_ASSERTION), None);
    }
    let text = std::fs::read_to_string(&path).expect("state written");
    assert!(text.contains("\"pin_retries\": 7"), "{text}");
    assert!(
        !path.with_extension("json.tmp").exists(),
        "no temporary left"
    );
    let mut h = Harness {
        auth: SoftAuthenticator::load(&path, SoftConfig::default()).expect("load"),
        clock: ManualClock::new(),
        rng: SeededRng::new(4),
    };
    assert_eq!(h.retries(), 7);
    assert_eq!(h.info().supports_option("clientPin"), Some(true));
    let ga = h
        .get_assertion(RP, Some(vec![id.clone()]), None)
        .expect("credential survives");
    verify_assertion(&key, &ga.auth_data, &cdh(2), &ga.signature).expect("same key");
    // save/load through the state struct too.
    let copy = h.auth.state().clone();
    let again = SoftAuthenticator::from_state(
        SoftConfig::default(),
        copy.clone(),
        SeededRng::new(5),
        ManualClock::new(),
    )
    .expect("from_state");
    assert_eq!(again.state(), &copy);
    // A malformed file is a typed error.
    std::fs::write(&path, "{not json").expect("write");
    assert!(matches!(
        SoftAuthenticator::load(&path, SoftConfig::default()),
        Err(SoftError::Format { .. })
    ));
    assert!(matches!(
        SoftAuthenticator::load(dir.join("missing.json"), SoftConfig::default()),
        Err(SoftError::Io { .. })
    ));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn state_debug_redacts_secrets() {
    let h = harness();
    let dbg = format!("{:?}", h.auth.state());
    assert!(dbg.contains("redacted"));
    let json = serde_json_state(&h.auth);
    // The master key is in the JSON (test authenticator) but not in Debug.
    assert!(json.contains("master_key"));
}

fn serde_json_state(a: &SoftAuthenticator) -> String {
    let dir = std::env::temp_dir().join(format!("softkey-dbg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let p = dir.join("s.json");
    a.save(&p).expect("save");
    let s = std::fs::read_to_string(&p).expect("read");
    let _ = std::fs::remove_dir_all(&dir);
    s
}

// ---------------------------------------------------------------------------------
// Garbage in, CTAP status out

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

// ---------------------------------------------------------------------------------
// Simulated bio enrolment and built-in UV

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

// ---------------------------------------------------------------------------------
// As a virtual card (vpcd frames, no socket)

fn card_exchange(
    card: &mut fido_transport::nfc::VpcdCard,
    mut ex: fido_core::apdu::NfcCtapExchange,
) -> Vec<u8> {
    use fido_core::apdu::HostEvent;
    let mut answer = None;
    let mut guard = 0;
    while !ex.is_finished() {
        guard += 1;
        assert!(guard < 1000, "exchange does not finish");
        if let Some(apdu) = ex.poll_transmit() {
            let reply = card.handle_frame(&apdu).expect("card answers an APDU");
            ex.handle_response(&reply).expect("host accepts the reply");
        }
        while let Some(ev) = ex.poll_event() {
            if let HostEvent::Response(bytes) = ev {
                answer = Some(bytes);
            }
        }
    }
    while let Some(ev) = ex.poll_event() {
        if let HostEvent::Response(bytes) = ev {
            answer = Some(bytes);
        }
    }
    answer.unwrap_or_default()
}

#[test]
fn runs_as_a_virtual_card_in_every_reader_mode() {
    use fido_core::apdu::{ApduMode, CardConfig, HostConfig, NfcCtapExchange};
    use fido_transport::nfc::VpcdCard;
    for (card_config, mode) in [
        (CardConfig::extended(), ApduMode::Extended),
        (CardConfig::short_only(), ApduMode::Short),
        (CardConfig::quirky(), ApduMode::Short),
    ] {
        let h = harness();
        let clock = h.clock.clone();
        let mut card = VpcdCard::new(card_config, h.auth);
        assert_eq!(card.handle_frame(&[0x01]), None, "power on");
        let host = HostConfig::new(mode);
        card_exchange(&mut card, NfcCtapExchange::select(&host));
        let info = card_exchange(
            &mut card,
            NfcCtapExchange::ctap(&encode_request(&GetInfo), &host).expect("exchange"),
        );
        assert_eq!(
            decode_response::<GetInfo>(&info).expect("info").aaguid,
            AAGUID
        );
        // A request and answer longer than one short APDU.
        let mut mc = MakeCredential::new(
            cdh(1),
            rp(RP),
            UserEntity {
                id: vec![1; 64],
                name: Some("n".repeat(120)),
                display_name: Some("d".repeat(120)),
            },
            vec![PublicKeyCredentialParameters::public_key(ALG_ES256)],
        );
        mc.options.rk = Some(true);
        let reply = card_exchange(
            &mut card,
            NfcCtapExchange::ctap(&encode_request(&mc), &host).expect("exchange"),
        );
        let mc = decode_response::<MakeCredential>(&reply).expect("mc over NFC");
        assert!(mc.auth_data.len() > 100);
        let obj = AttestationObject::from_parts(&mc.fmt, &mc.auth_data, &mc.att_stmt).expect("obj");
        obj.verify(&cdh(1)).expect("attestation verifies");
        // A card power-up opens the reset window.
        clock.advance(Duration::from_secs(20));
        let r = card_exchange(
            &mut card,
            NfcCtapExchange::ctap(&encode_request(&Reset), &host).expect("exchange"),
        );
        assert_eq!(r, vec![CtapStatus::NotAllowed.to_u8()]);
        assert_eq!(card.handle_frame(&[0x01]), None, "power cycle");
        card_exchange(&mut card, NfcCtapExchange::select(&host));
        let r = card_exchange(
            &mut card,
            NfcCtapExchange::ctap(&encode_request(&Reset), &host).expect("exchange"),
        );
        assert_eq!(r, vec![0x00]);
    }
}

#[test]
fn preset_pin_is_usable_over_ctap() {
    let mut h = harness();
    h.auth.preset_pin("24680").expect("preset");
    assert!(h.auth.preset_pin("13579").is_err(), "only once");
    h.token(2, "24680", Some(Permissions::GET_ASSERTION), None)
        .expect("token with preset PIN");
    let mut h = harness();
    assert!(h.auth.preset_pin("12").is_err(), "too short");
}

// ---------------------------------------------------------------------------------
// hmac-secret

#[test]
fn hmac_secret_outputs_are_stable_per_credential_and_uv() {
    let mut h = harness();
    assert!(h.info().has_extension("hmac-secret"));
    let mut mc = MakeCredential::new(
        cdh(1),
        rp(RP),
        user(1, "a"),
        vec![PublicKeyCredentialParameters::public_key(ALG_ES256)],
    );
    mc.extensions = Some(MakeCredentialExtensions {
        hmac_secret: Some(true),
        ..Default::default()
    });
    let r = h.send(&mc).expect("mc");
    assert_eq!(
        AuthenticatorData::parse(&r.auth_data)
            .expect("ad")
            .hmac_secret_created(),
        Some(true)
    );
    let (id, _) = credential_of(&r);
    mc.extensions = None;
    let plain = h.send(&mc).expect("mc without hmac-secret");
    let (plain_id, _) = credential_of(&plain);

    let eval = |h: &mut Harness, id: &[u8], salt: &[u8], p: u8, token: Option<&PinUvAuthToken>| {
        let peer = h.key_agreement(p);
        let (platform_key, shared) = protocol(p)
            .encapsulate(&peer, &mut h.rng)
            .expect("encapsulate");
        let salt_enc = shared.encrypt(salt, &mut h.rng).expect("encrypt");
        let salt_auth = shared.authenticate(&salt_enc);
        let mut ga = GetAssertion::new(RP, cdh(2));
        ga.allow_list = Some(vec![CredentialDescriptor::public_key(id.to_vec())]);
        ga.extensions = Some(GetAssertionExtensions {
            hmac_secret: Some(HmacSecretInput {
                key_agreement: platform_key,
                salt_enc,
                salt_auth,
                pin_uv_auth_protocol: Some(p),
            }),
            ..Default::default()
        });
        if let Some(t) = token {
            ga.pin_uv_auth_param = Some(t.authenticate_message(&AuthMessage::GetAssertion {
                client_data_hash: &ga.client_data_hash,
            }));
            ga.pin_uv_auth_protocol = Some(t.protocol().id());
        }
        let a = h.send(&ga).expect("ga");
        let ad = AuthenticatorData::parse(&a.auth_data).expect("ad");
        ad.hmac_secret_output()
            .map(|enc| shared.decrypt(enc).expect("decrypt").to_vec())
    };
    let salt1 = [7u8; 32];
    let salt2 = [[7u8; 32], [8u8; 32]].concat();
    let o1 = eval(&mut h, &id, &salt1, 2, None).expect("output");
    assert_eq!(o1.len(), 32);
    assert_eq!(
        eval(&mut h, &id, &salt1, 1, None),
        Some(o1.clone()),
        "same across protocols"
    );
    let o2 = eval(&mut h, &id, &salt2, 2, None).expect("output");
    assert_eq!(o2.len(), 64);
    assert_eq!(o2[..32], o1[..]);
    assert_eq!(
        eval(&mut h, &plain_id, &salt1, 2, None),
        None,
        "not enabled"
    );
    // With UV, a different CredRandom.
    assert_eq!(h.set_pin(2, "1234"), None);
    let t = h
        .token(2, "1234", Some(Permissions::GET_ASSERTION), Some(RP))
        .expect("token");
    let uv = eval(&mut h, &id, &salt1, 2, Some(&t)).expect("output");
    assert_ne!(uv, o1);
    // A bad saltAuth.
    let peer = h.key_agreement(2);
    let (platform_key, shared) = PinUvAuthProtocol::Two
        .encapsulate(&peer, &mut h.rng)
        .expect("encapsulate");
    let salt_enc = shared.encrypt(&salt1, &mut h.rng).expect("encrypt");
    let mut ga = GetAssertion::new(RP, cdh(2));
    ga.allow_list = Some(vec![CredentialDescriptor::public_key(id.clone())]);
    ga.extensions = Some(GetAssertionExtensions {
        hmac_secret: Some(HmacSecretInput {
            key_agreement: platform_key,
            salt_enc,
            salt_auth: vec![0; 32],
            pin_uv_auth_protocol: Some(2),
        }),
        ..Default::default()
    });
    assert_eq!(h.status(&ga), Some(CtapStatus::ExtensionFirst));
}

#[test]
fn list_and_user_id_limits() {
    let mut h = harness();
    let ids: Vec<Vec<u8>> = (0..9u8).map(|i| vec![i; 34]).collect();
    assert_eq!(h.info().max_credential_count_in_list, Some(8));
    assert_eq!(
        ctap(h.get_assertion(RP, Some(ids.clone()), None)),
        CtapStatus::LimitExceeded
    );
    assert_eq!(
        ctap(h.get_assertion(RP, Some(ids[..8].to_vec()), None)),
        CtapStatus::NoCredentials
    );
    let mut mc = MakeCredential::new(
        cdh(1),
        rp(RP),
        user(1, "a"),
        vec![PublicKeyCredentialParameters::public_key(ALG_ES256)],
    );
    mc.exclude_list = Some(
        ids.into_iter()
            .map(CredentialDescriptor::public_key)
            .collect(),
    );
    assert_eq!(h.status(&mc), Some(CtapStatus::LimitExceeded));
    mc.exclude_list = None;
    mc.user.id = vec![1; 65];
    assert_eq!(h.status(&mc), Some(CtapStatus::InvalidLength));
}

#[test]
fn transport_cancel_token_stops_a_delayed_touch() {
    let h = harness();
    let control = h.auth.control();
    control.set_presence(UserPresence::Delay(Duration::from_secs(30)));
    let mut t = SoftTransport::new(h.auth);
    let cancel = t.cancel_token();
    let req = encode_request(&Selection);
    let canceller = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(150));
        cancel.cancel();
    });
    let mut up_needed = 0;
    let start = std::time::Instant::now();
    let reply = t
        .transact(&req, &mut |p| {
            if p == Progress::UserPresenceNeeded {
                up_needed += 1;
            }
        })
        .expect("transact");
    canceller.join().expect("thread");
    assert_eq!(reply, vec![CtapStatus::KeepaliveCancel.to_u8()]);
    assert!(start.elapsed() < Duration::from_secs(5));
    assert!(up_needed >= 2, "keepalives while waiting: {up_needed}");
    // The next transaction is not cancelled.
    control.set_presence(UserPresence::Approve);
    assert_eq!(t.transact(&req, &mut |_| {}).expect("transact"), vec![0x00]);
}

#[test]
fn exclude_list_ignores_cred_protect_3_without_uv() {
    let mut h = harness();
    let mut mc = MakeCredential::new(
        cdh(1),
        rp(RP),
        user(1, "a"),
        vec![PublicKeyCredentialParameters::public_key(ALG_ES256)],
    );
    mc.extensions = Some(MakeCredentialExtensions {
        cred_protect: Some(3),
        ..Default::default()
    });
    let r = h.send(&mc).expect("mc");
    let (id, _) = credential_of(&r);
    mc.extensions = None;
    mc.exclude_list = Some(vec![CredentialDescriptor::public_key(id)]);
    h.send(&mc)
        .expect("a UV-only credential is invisible without UV, so not excluded");
    assert_eq!(h.set_pin(2, "1234"), None);
    let t = h
        .token(2, "1234", Some(Permissions::MAKE_CREDENTIAL), Some(RP))
        .expect("token");
    mc.pin_uv_auth_protocol = Some(2);
    mc.pin_uv_auth_param = Some(t.authenticate_message(&AuthMessage::MakeCredential {
        client_data_hash: &mc.client_data_hash,
    }));
    assert_eq!(h.status(&mc), Some(CtapStatus::CredentialExcluded));
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

#[test]
fn tokens_expire_and_always_uv_without_pin() {
    let mut h = harness();
    assert_eq!(h.set_pin(2, "1234"), None);
    let t = h
        .token(2, "1234", Some(Permissions::MAKE_CREDENTIAL), Some(RP))
        .expect("token");
    h.make_credential(RP, user(1, "a"), true, Some(&t))
        .expect("fresh token works");
    h.clock.advance(Duration::from_secs(601));
    assert_eq!(
        ctap(h.make_credential(RP, user(1, "a"), true, Some(&t))),
        CtapStatus::PinAuthInvalid
    );

    // alwaysUv with no PIN: makeCredential asks for a PIN to be set.
    let mut h = harness();
    assert_eq!(
        h.status(&config_cmd(ConfigSubCommand::ToggleAlwaysUv, None)),
        None
    );
    assert_eq!(
        ctap(h.make_credential(RP, user(1, "a"), false, None)),
        CtapStatus::PinNotSet
    );
    // Turning it off again now needs PIN/UV auth.
    assert_eq!(
        h.status(&config_cmd(ConfigSubCommand::ToggleAlwaysUv, None)),
        Some(CtapStatus::PuatRequired)
    );
}

#[test]
fn handles_are_send() {
    fn send<T: Send>() {}
    send::<SoftAuthenticator>();
    send::<SoftTransport>();
    send::<PresenceControl>();
    send::<ManualClock>();
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
