//! The scripted fake key: a minimal authenticator (getInfo, clientPIN with real
//! PIN/UV auth crypto from fido-core's authenticator side) plus per-test hooks.

use super::*;

pub(super) type Hook = Box<dyn FnMut(&mut KeyState, &Request) -> Option<Vec<u8>> + Send>;

/// The fake key's state, shared with the test.
pub(super) struct KeyState {
    pub(super) info: AuthenticatorInfo,
    pub(super) key_agreement: AuthenticatorKeyAgreement,
    pub(super) pin_hash: Option<[u8; 16]>,
    pub(super) retries: u32,
    pub(super) power_cycle: bool,
    pub(super) token: Option<PinUvAuthToken>,
    pub(super) log: Vec<Vec<u8>>,
    pub(super) power_cycles: u32,
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
    pub(super) fn verify(&self, message: &[u8], param: &Option<Vec<u8>>) -> bool {
        match (&self.token, param) {
            (Some(t), Some(p)) => t.verify(message, p).is_ok(),
            _ => false,
        }
    }
}

pub(super) fn set_option(info: &mut AuthenticatorInfo, name: &str, on: bool) {
    let options = info.options.get_or_insert_with(Vec::new);
    match options.iter_mut().find(|(k, _)| k == name) {
        Some(o) => o.1 = on,
        None => options.push((name.to_owned(), on)),
    }
}

/// A CTAP 2.1 key with a PIN ("1234"), protocols 2 and 1, and every feature on.
pub(super) fn info21() -> AuthenticatorInfo {
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

pub(super) const PIN: &str = "1234";

pub(super) fn state(info: AuthenticatorInfo) -> Arc<Mutex<KeyState>> {
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

pub(super) struct FakeKey {
    pub(super) state: Arc<Mutex<KeyState>>,
    pub(super) hook: Hook,
    pub(super) can_power_cycle: bool,
    pub(super) cancel: CancelToken,
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

pub(super) fn key(
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

pub(super) fn no_hook(_: &mut KeyState, _: &Request) -> Option<Vec<u8>> {
    None
}

/// The requests sent so far, decoded.
pub(super) fn sent(s: &Arc<Mutex<KeyState>>) -> Vec<Request> {
    s.lock()
        .unwrap()
        .log
        .iter()
        .map(|r| Request::decode(r).unwrap())
        .collect()
}

pub(super) fn sent_count(s: &Arc<Mutex<KeyState>>) -> usize {
    s.lock().unwrap().log.len()
}

pub(super) fn ok_empty() -> Option<Vec<u8>> {
    Some(vec![0])
}
