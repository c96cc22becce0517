//! Unit tests of request building and answer handling, against a scripted fake key:
//! a minimal authenticator (getInfo, clientPIN with real PIN/UV auth crypto from
//! fido-core's authenticator side) plus per-test hooks for everything else. Every
//! request is logged so tests can check what was (and was not) sent.

use std::sync::{Arc, Mutex};

use fido_core::cbor::Value;
use fido_core::commands::*;
use fido_core::pin::{
    decrypt_pin_hash, verify_change_pin, verify_set_pin, AuthenticatorKeyAgreement, Permissions,
    Pin, PinUvAuthProtocol, PinUvAuthToken,
};
use fido_core::CtapStatus;
use rand_core::OsRng;

use super::*;
use crate::TransportKind;

type Hook = Box<dyn FnMut(&mut KeyState, &Request) -> Option<Vec<u8>> + Send>;

/// The fake key's state, shared with the test.
struct KeyState {
    info: AuthenticatorInfo,
    key_agreement: AuthenticatorKeyAgreement,
    pin_hash: Option<[u8; 16]>,
    retries: u32,
    power_cycle: bool,
    token: Option<PinUvAuthToken>,
    log: Vec<Vec<u8>>,
    power_cycles: u32,
}

impl KeyState {
    fn shared(
        &self,
        protocol: u8,
        platform: &fido_core::cose::CoseKey,
    ) -> fido_core::pin::SharedSecret {
        let p = PinUvAuthProtocol::from_id(u64::from(protocol)).unwrap();
        self.key_agreement.decapsulate(p, platform).unwrap()
    }

    /// Default clientPIN behaviour.
    fn client_pin(&mut self, c: &ClientPin) -> Vec<u8> {
        let ok = |r: ClientPinResponse| encode_response(&r);
        match c {
            ClientPin::GetPinRetries { .. } => ok(ClientPinResponse {
                pin_retries: Some(self.retries),
                power_cycle_state: Some(self.power_cycle),
                ..Default::default()
            }),
            ClientPin::GetUvRetries { .. } => ok(ClientPinResponse {
                uv_retries: Some(3),
                ..Default::default()
            }),
            ClientPin::GetKeyAgreement { .. } => ok(ClientPinResponse {
                key_agreement: Some(self.key_agreement.public_key()),
                ..Default::default()
            }),
            ClientPin::SetPin {
                pin_uv_auth_protocol,
                key_agreement,
                new_pin_enc,
                pin_uv_auth_param,
            } => {
                let s = self.shared(*pin_uv_auth_protocol, key_agreement);
                match verify_set_pin(&s, new_pin_enc, pin_uv_auth_param, 4) {
                    Ok(pin) => {
                        self.pin_hash = Some(*pin.pin_hash());
                        set_option(&mut self.info, "clientPin", true);
                        ok(ClientPinResponse::default())
                    }
                    Err(_) => encode_status(CtapStatus::PinAuthInvalid),
                }
            }
            ClientPin::ChangePin {
                pin_uv_auth_protocol,
                key_agreement,
                pin_hash_enc,
                new_pin_enc,
                pin_uv_auth_param,
            } => {
                let s = self.shared(*pin_uv_auth_protocol, key_agreement);
                let (hash, new) =
                    verify_change_pin(&s, pin_hash_enc, new_pin_enc, pin_uv_auth_param, 4).unwrap();
                if Some(*hash) != self.pin_hash {
                    self.retries -= 1;
                    return encode_status(CtapStatus::PinInvalid);
                }
                self.pin_hash = Some(*new.pin_hash());
                ok(ClientPinResponse::default())
            }
            ClientPin::GetPinToken {
                pin_uv_auth_protocol,
                key_agreement,
                pin_hash_enc,
            } => self.issue(
                *pin_uv_auth_protocol,
                key_agreement,
                Some(pin_hash_enc),
                Permissions::from_bits(0x03),
                None,
            ),
            ClientPin::GetPinUvAuthTokenUsingPinWithPermissions {
                pin_uv_auth_protocol,
                key_agreement,
                pin_hash_enc,
                permissions,
                rp_id,
            } => self.issue(
                *pin_uv_auth_protocol,
                key_agreement,
                Some(pin_hash_enc),
                *permissions,
                rp_id.clone(),
            ),
            ClientPin::GetPinUvAuthTokenUsingUvWithPermissions {
                pin_uv_auth_protocol,
                key_agreement,
                permissions,
                rp_id,
            } => self.issue(
                *pin_uv_auth_protocol,
                key_agreement,
                None,
                *permissions,
                rp_id.clone(),
            ),
            _ => encode_status(CtapStatus::InvalidSubcommand),
        }
    }

    fn issue(
        &mut self,
        protocol: u8,
        platform: &fido_core::cose::CoseKey,
        pin_hash_enc: Option<&Vec<u8>>,
        permissions: Permissions,
        rp_id: Option<String>,
    ) -> Vec<u8> {
        let s = self.shared(protocol, platform);
        if let Some(enc) = pin_hash_enc {
            let hash = decrypt_pin_hash(&s, enc).unwrap();
            if Some(*hash) != self.pin_hash {
                self.retries -= 1;
                return encode_status(CtapStatus::PinInvalid);
            }
        }
        let token = PinUvAuthToken::generate(s.protocol(), permissions, rp_id, &mut OsRng).unwrap();
        let enc = token.encrypt_for(&s, &mut OsRng).unwrap();
        self.token = Some(token);
        encode_response(&ClientPinResponse {
            pin_uv_auth_token: Some(SecretBytes::new(enc)),
            ..Default::default()
        })
    }

    /// Checks a pinUvAuthParam against the token the key issued last.
    fn verify(&self, message: &[u8], param: &Option<Vec<u8>>) -> bool {
        match (&self.token, param) {
            (Some(t), Some(p)) => t.verify(message, p).is_ok(),
            _ => false,
        }
    }
}

fn set_option(info: &mut AuthenticatorInfo, name: &str, on: bool) {
    let options = info.options.get_or_insert_with(Vec::new);
    match options.iter_mut().find(|(k, _)| k == name) {
        Some(o) => o.1 = on,
        None => options.push((name.to_owned(), on)),
    }
}

/// A CTAP 2.1 key with a PIN ("1234"), protocols 2 and 1, and every feature on.
fn info21() -> AuthenticatorInfo {
    let mut info = AuthenticatorInfo {
        versions: vec!["FIDO_2_0".into(), "FIDO_2_1".into()],
        extensions: Some(vec!["credProtect".into(), "minPinLength".into()]),
        aaguid: [7; 16],
        max_msg_size: Some(1200),
        pin_uv_auth_protocols: Some(vec![2, 1]),
        max_credential_count_in_list: Some(8),
        min_pin_length: Some(4),
        max_rpids_for_set_min_pin_length: Some(2),
        max_serialized_large_blob_array: Some(4096),
        ..Default::default()
    };
    for o in [
        "rk",
        "up",
        "clientPin",
        "pinUvAuthToken",
        "credMgmt",
        "authnrCfg",
        "setMinPINLength",
        "largeBlobs",
        "bioEnroll",
        "uv",
        "ep",
    ] {
        set_option(&mut info, o, true);
    }
    set_option(&mut info, "alwaysUv", false);
    info
}

const PIN: &str = "1234";

fn state(info: AuthenticatorInfo) -> Arc<Mutex<KeyState>> {
    let has_pin = info.supports_option("clientPin") == Some(true);
    Arc::new(Mutex::new(KeyState {
        info,
        key_agreement: AuthenticatorKeyAgreement::new(&mut OsRng).unwrap(),
        pin_hash: has_pin.then(|| *Pin::new(PIN).unwrap().pin_hash()),
        retries: 8,
        power_cycle: false,
        token: None,
        log: Vec::new(),
        power_cycles: 0,
    }))
}

struct FakeKey {
    state: Arc<Mutex<KeyState>>,
    hook: Hook,
    can_power_cycle: bool,
    cancel: CancelToken,
}

impl Transport for FakeKey {
    fn transact(
        &mut self,
        request: &[u8],
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Vec<u8>, Error> {
        let mut s = self.state.lock().unwrap();
        s.log.push(request.to_vec());
        let req = Request::decode(request).expect("the client sent a request the key cannot read");
        if matches!(
            req,
            Request::MakeCredential(_)
                | Request::Reset(_)
                | Request::ClientPin(ClientPin::GetPinUvAuthTokenUsingUvWithPermissions { .. })
        ) {
            progress(Progress::UserPresenceNeeded);
        }
        if let Some(answer) = (self.hook)(&mut s, &req) {
            return Ok(answer);
        }
        Ok(match &req {
            Request::GetInfo(_) => encode_response(&s.info),
            Request::ClientPin(c) => s.client_pin(c),
            _ => encode_status(CtapStatus::InvalidCommand),
        })
    }
    fn cancel_token(&self) -> CancelToken {
        self.cancel.clone()
    }
    fn kind(&self) -> TransportKind {
        TransportKind::InProcess
    }
    fn describe(&self) -> String {
        "fake key".into()
    }
    fn power_cycle(&mut self) -> Result<(), Error> {
        if self.can_power_cycle {
            self.state.lock().unwrap().power_cycles += 1;
            Ok(())
        } else {
            Err(Error::Unsupported("no power cycle".into()))
        }
    }
}

fn key(
    info: AuthenticatorInfo,
    hook: impl FnMut(&mut KeyState, &Request) -> Option<Vec<u8>> + Send + 'static,
) -> (Authenticator<FakeKey>, Arc<Mutex<KeyState>>) {
    let s = state(info);
    let t = FakeKey {
        state: s.clone(),
        hook: Box::new(hook),
        can_power_cycle: false,
        cancel: CancelToken::new(),
    };
    (Authenticator::new(t), s)
}

fn no_hook(_: &mut KeyState, _: &Request) -> Option<Vec<u8>> {
    None
}

/// The requests sent so far, decoded.
fn sent(s: &Arc<Mutex<KeyState>>) -> Vec<Request> {
    s.lock()
        .unwrap()
        .log
        .iter()
        .map(|r| Request::decode(r).unwrap())
        .collect()
}

fn sent_count(s: &Arc<Mutex<KeyState>>) -> usize {
    s.lock().unwrap().log.len()
}

fn ok_empty() -> Option<Vec<u8>> {
    Some(vec![0])
}

// ---------------------------------------------------------------------------------
// Session basics

#[test]
fn authenticator_is_send() {
    fn assert_send<S: Send>() {}
    assert_send::<Authenticator<FakeKey>>();
    assert_send::<Authenticator<Box<dyn Transport>>>();
}

#[test]
fn get_info_is_cached_and_counted() {
    let (mut a, s) = key(info21(), no_hook);
    assert_eq!(a.info().unwrap().aaguid, [7; 16]);
    assert_eq!(a.info().unwrap().aaguid, [7; 16]);
    assert_eq!(sent_count(&s), 1);
    let st = a.stats();
    assert_eq!(st.round_trips, 1);
    assert_eq!(st.bytes_sent, 1);
    assert_eq!(st.bytes_received, encode_response(&info21()).len() as u64);
    a.refresh_info().unwrap();
    assert_eq!(sent_count(&s), 2);
    a.reset_stats();
    assert_eq!(a.stats(), TransferStats::default());
}

#[test]
fn a_status_byte_becomes_a_lossless_ctap_error() {
    let (mut a, _) = key(info21(), |_, r| {
        matches!(r, Request::GetInfo(_)).then(|| vec![0x6A])
    });
    assert!(matches!(
        a.info(),
        Err(Error::Ctap(CtapStatus::Other(0x6A)))
    ));
}

#[test]
fn requests_over_max_msg_size_are_refused_before_sending() {
    let mut info = info21();
    info.max_msg_size = Some(100);
    let (mut a, s) = key(info, no_hook);
    a.info().unwrap();
    let mut args = GetAssertionArgs::new("example.com", [0; 32]);
    args.allow_list = vec![CredentialDescriptor::public_key(vec![1; 120])];
    let err = a.get_assertion(&args, None, &mut |_| {}).unwrap_err();
    assert!(
        matches!(&err, Error::InvalidArgument(m) if m.contains("maxMsgSize of 100")),
        "{err}"
    );
    assert_eq!(sent_count(&s), 1);
}

#[test]
fn keepalive_cancel_becomes_cancelled_and_selection_waits_for_a_touch() {
    let (mut a, _) = key(info21(), |_, r| match r {
        Request::MakeCredential(_) => Some(encode_status(CtapStatus::KeepaliveCancel)),
        Request::Selection(_) => ok_empty(),
        _ => None,
    });
    assert!(matches!(
        a.make_credential(&mc_args("example.com"), None, &mut |_| {}),
        Err(Error::Cancelled)
    ));
    a.selection(&mut |_| {}).unwrap();
    assert_eq!(a.stats().round_trips, 3);
}

// ---------------------------------------------------------------------------------
// PIN

#[test]
fn protocol_two_is_preferred_and_one_is_the_fallback() {
    let (mut a, _) = key(info21(), no_hook);
    assert_eq!(a.pin_protocol().unwrap(), PinUvAuthProtocol::Two);
    let mut info = info21();
    info.pin_uv_auth_protocols = Some(vec![1]);
    let (mut a, _) = key(info, no_hook);
    assert_eq!(a.pin_protocol().unwrap(), PinUvAuthProtocol::One);
    let mut info = info21();
    info.pin_uv_auth_protocols = Some(vec![3]);
    let (mut a, _) = key(info, no_hook);
    assert!(matches!(a.pin_protocol(), Err(Error::Unsupported(_))));
}

#[test]
fn pin_retries_reads_the_counter() {
    let (mut a, s) = key(info21(), no_hook);
    s.lock().unwrap().retries = 5;
    s.lock().unwrap().power_cycle = true;
    assert_eq!(
        a.pin_retries().unwrap(),
        PinRetries {
            retries: 5,
            power_cycle_required: true
        }
    );
    assert_eq!(a.uv_retries().unwrap(), 3);
}

#[test]
fn set_pin_sends_the_encrypted_pin_and_refreshes_info() {
    let mut info = info21();
    set_option(&mut info, "clientPin", false);
    let (mut a, s) = key(info, no_hook);
    a.set_pin("98765").unwrap();
    assert_eq!(
        s.lock().unwrap().pin_hash,
        Some(*Pin::new("98765").unwrap().pin_hash())
    );
    assert_eq!(a.info().unwrap().supports_option("clientPin"), Some(true));
    // getInfo, getKeyAgreement, setPIN, getInfo again.
    assert_eq!(sent_count(&s), 4);
    // A second setPIN is refused locally.
    assert!(matches!(a.set_pin("98765"), Err(Error::InvalidArgument(_))));
    assert_eq!(sent_count(&s), 4);
}

#[test]
fn set_pin_checks_the_minimum_length_before_sending() {
    let mut info = info21();
    set_option(&mut info, "clientPin", false);
    info.min_pin_length = Some(6);
    let (mut a, s) = key(info, no_hook);
    let err = a.set_pin("12345").unwrap_err();
    assert!(
        matches!(
            err,
            Error::Core(fido_core::Error::Pin(fido_core::pin::PinError::TooShort {
                min: 6,
                actual: 5
            }))
        ),
        "{err:?}"
    );
    assert_eq!(sent_count(&s), 1);
}

#[test]
fn change_pin_reports_retries_left_on_a_wrong_pin() {
    let (mut a, s) = key(info21(), no_hook);
    let err = a.change_pin("0000", "56789").unwrap_err();
    assert!(
        matches!(&err, Error::InvalidArgument(m) if m.contains("7 attempt(s) left")),
        "{err}"
    );
    a.change_pin(PIN, "56789").unwrap();
    assert_eq!(
        s.lock().unwrap().pin_hash,
        Some(*Pin::new("56789").unwrap().pin_hash())
    );
}

#[test]
fn change_pin_does_not_spend_an_attempt_on_a_blocked_key() {
    let (mut a, s) = key(info21(), no_hook);
    s.lock().unwrap().retries = 0;
    assert!(matches!(
        a.change_pin(PIN, "56789"),
        Err(Error::Ctap(CtapStatus::PinBlocked))
    ));
    s.lock().unwrap().retries = 3;
    s.lock().unwrap().power_cycle = true;
    let err = a.change_pin(PIN, "56789").unwrap_err();
    assert!(matches!(err, Error::Ctap(CtapStatus::PinAuthBlocked)));
    assert!(err.to_string().contains("remove and reattach"));
    assert!(!sent(&s)
        .iter()
        .any(|r| matches!(r, Request::ClientPin(ClientPin::ChangePin { .. }))));
}

#[test]
fn pin_token_asks_for_exactly_the_permissions_and_rp_id() {
    let (mut a, s) = key(info21(), no_hook);
    let t = a
        .pin_token(PIN, Permissions::MAKE_CREDENTIAL, Some("example.com"))
        .unwrap();
    assert_eq!(t.protocol(), PinUvAuthProtocol::Two);
    assert_eq!(t.permissions(), Permissions::MAKE_CREDENTIAL);
    assert_eq!(t.rp_id(), Some("example.com"));
    assert_eq!(
        t.expose_secret(),
        s.lock().unwrap().token.as_ref().unwrap().expose_secret()
    );
    let last = sent(&s).pop().unwrap();
    match last {
        Request::ClientPin(ClientPin::GetPinUvAuthTokenUsingPinWithPermissions {
            pin_uv_auth_protocol,
            permissions,
            rp_id,
            ..
        }) => {
            assert_eq!(pin_uv_auth_protocol, 2);
            assert_eq!(permissions, Permissions::MAKE_CREDENTIAL);
            assert_eq!(rp_id.as_deref(), Some("example.com"));
        }
        other => panic!("unexpected request {other:?}"),
    }
}

#[test]
fn pin_token_uses_get_pin_token_on_ctap20_keys() {
    let mut info = info21();
    info.versions = vec!["FIDO_2_0".into()];
    info.pin_uv_auth_protocols = None;
    info.options = None;
    set_option(&mut info, "clientPin", true);
    let (mut a, s) = key(info, no_hook);
    let t = a
        .pin_token(PIN, Permissions::MAKE_CREDENTIAL, Some("example.com"))
        .unwrap();
    assert_eq!(t.protocol(), PinUvAuthProtocol::One);
    assert_eq!(t.rp_id(), None);
    assert!(matches!(
        sent(&s).pop(),
        Some(Request::ClientPin(ClientPin::GetPinToken {
            pin_uv_auth_protocol: 1,
            ..
        }))
    ));
}

#[test]
fn pin_token_refuses_bad_requests_locally() {
    let mut info = info21();
    info.options
        .as_mut()
        .unwrap()
        .retain(|(k, _)| k != "credMgmt");
    let (mut a, s) = key(info, no_hook);
    assert!(matches!(
        a.pin_token(PIN, Permissions::GET_ASSERTION, None),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        a.pin_token(PIN, Permissions::empty(), None),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        a.pin_token(PIN, Permissions::CREDENTIAL_MANAGEMENT, None),
        Err(Error::Unsupported(m)) if m.contains("credMgmt")
    ));
    assert_eq!(sent_count(&s), 1);
    let err = a
        .pin_token("9999", Permissions::AUTHENTICATOR_CONFIG, None)
        .unwrap_err();
    assert!(matches!(&err, Error::InvalidArgument(m) if m.contains("7 attempt(s) left")));
}

#[test]
fn pin_token_is_refused_while_a_pin_change_is_forced() {
    let mut info = info21();
    info.force_pin_change = Some(true);
    let (mut a, s) = key(info, no_hook);
    assert!(matches!(
        a.pin_token(PIN, Permissions::MAKE_CREDENTIAL, Some("example.com")),
        Err(Error::Ctap(CtapStatus::PinPolicyViolation))
    ));
    assert_eq!(sent_count(&s), 1);
}

#[test]
fn uv_token_uses_built_in_verification_and_reports_progress() {
    let (mut a, s) = key(info21(), no_hook);
    let mut seen = 0;
    let t = a
        .uv_token(Permissions::BIO_ENROLLMENT, None, &mut |_| seen += 1)
        .unwrap();
    assert_eq!(t.permissions(), Permissions::BIO_ENROLLMENT);
    assert!(matches!(
        sent(&s).pop(),
        Some(Request::ClientPin(
            ClientPin::GetPinUvAuthTokenUsingUvWithPermissions { .. }
        ))
    ));
    assert_eq!(seen, 1);
    let mut info = info21();
    set_option(&mut info, "uv", false);
    let (mut a, _) = key(info, no_hook);
    assert!(matches!(
        a.uv_token(Permissions::BIO_ENROLLMENT, None, &mut |_| {}),
        Err(Error::Unsupported(_))
    ));
}

// ---------------------------------------------------------------------------------
// Reset

#[test]
fn reset_reports_progress_and_refreshes_info() {
    let (mut a, s) = key(info21(), |_, r| {
        matches!(r, Request::Reset(_)).then(ok_empty).flatten()
    });
    a.info().unwrap();
    let mut touches = Vec::new();
    a.reset(&mut |p| touches.push(p)).unwrap();
    assert_eq!(touches, vec![Progress::UserPresenceNeeded]);
    a.info().unwrap();
    assert_eq!(sent_count(&s), 3);
}

#[test]
fn reset_outside_the_window_says_reattach_within_10_seconds() {
    let (mut a, _) = key(info21(), |_, r| {
        matches!(r, Request::Reset(_)).then(|| encode_status(CtapStatus::NotAllowed))
    });
    let err = a.reset(&mut |_| {}).unwrap_err();
    assert!(
        matches!(&err, Error::Unsupported(m) if m.contains("reattach the key and retry within 10 seconds")),
        "{err}"
    );
}

#[test]
fn reset_power_cycles_when_the_transport_can_and_retries_once() {
    let s = state(info21());
    let t = FakeKey {
        state: s.clone(),
        hook: Box::new(move |st: &mut KeyState, r: &Request| {
            if !matches!(r, Request::Reset(_)) {
                return None;
            }
            Some(if st.power_cycles > 0 {
                vec![0]
            } else {
                encode_status(CtapStatus::NotAllowed)
            })
        }),
        can_power_cycle: true,
        cancel: CancelToken::new(),
    };
    let mut a = Authenticator::new(t);
    a.reset(&mut |_| {}).unwrap();
    assert_eq!(s.lock().unwrap().power_cycles, 1);
    assert_eq!(sent_count(&s), 2);
}

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

fn mc_args(rp: &str) -> MakeCredentialArgs {
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
    args.allow_list = vec![CredentialDescriptor::public_key(vec![1]); 9];
    assert!(matches!(
        a.get_assertion(&args, None, &mut |_| {}),
        Err(Error::InvalidArgument(m)) if m.contains("at most 8")
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
