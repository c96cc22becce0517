//! authenticatorClientPIN and the pinUvAuthParam checks other commands share.

use fido_core::commands::{encode_response, ClientPin, ClientPinResponse, SecretBytes};
use fido_core::cose::CoseKey;
use fido_core::pin::{
    decrypt_pin_hash, AuthMessage, Permissions, Pin, PinError, PinUvAuthProtocol, PinUvAuthToken,
    SharedSecret,
};
use fido_core::CtapStatus;

use super::state::{Secret, StoredPin};
use super::{
    Presence, SoftAuthenticator, TokenState, MAX_PIN_RETRIES, MAX_UV_RETRIES,
    PIN_ATTEMPTS_BEFORE_POWER_CYCLE,
};

type R = Result<Vec<u8>, CtapStatus>;

/// The status for a new PIN that fails the rules or cannot be decrypted.
fn new_pin_status(e: &PinError) -> CtapStatus {
    match e {
        PinError::TooShort { .. }
        | PinError::TooLong { .. }
        | PinError::ContainsNul
        | PinError::NotUtf8 => CtapStatus::PinPolicyViolation,
        _ => CtapStatus::InvalidParameter,
    }
}

impl SoftAuthenticator {
    /// The protocol of a request, checked against the configuration: absent is
    /// MISSING_PARAMETER, unknown or not offered INVALID_PARAMETER.
    pub(super) fn protocol(&self, id: Option<u8>) -> Result<PinUvAuthProtocol, CtapStatus> {
        let id = id.ok_or(CtapStatus::MissingParameter)?;
        if !self.config.pin_protocols.contains(&id) {
            return Err(CtapStatus::InvalidParameter);
        }
        PinUvAuthProtocol::from_id(u64::from(id)).map_err(|_| CtapStatus::InvalidParameter)
    }

    /// Checks a pinUvAuthParam against the current token: the message, the permission
    /// and (for mc/ga) the RP id, binding the token to `rp_id` on first use.
    pub(super) fn verify_token(
        &mut self,
        protocol: Option<u8>,
        param: &[u8],
        message: &AuthMessage<'_>,
        permission: Permissions,
        rp_id: Option<&str>,
    ) -> Result<(), CtapStatus> {
        let protocol = self.protocol(protocol)?;
        let now = self.clock.now();
        let lifetime = self.config.token_lifetime;
        if self
            .token
            .as_ref()
            .is_some_and(|t| now.saturating_duration_since(t.issued) > lifetime)
        {
            self.token = None;
        }
        let state = self.token.as_ref().ok_or(CtapStatus::PinAuthInvalid)?;
        if state.token.protocol() != protocol {
            return Err(CtapStatus::PinAuthInvalid);
        }
        state
            .token
            .verify_message(message, param)
            .map_err(|_| CtapStatus::PinAuthInvalid)?;
        state
            .token
            .require(permission, rp_id)
            .map_err(|_| CtapStatus::PinAuthInvalid)?;
        if let (Some(rp), None) = (rp_id, state.token.rp_id()) {
            if permission.needs_rp_id() {
                let bound = PinUvAuthToken::from_bytes(
                    state.token.protocol(),
                    state.token.expose_secret(),
                    state.token.permissions(),
                    Some(rp.to_owned()),
                )
                .map_err(|_| CtapStatus::PinAuthInvalid)?;
                let issued = state.issued;
                self.token = Some(TokenState {
                    token: bound,
                    issued,
                });
            }
        }
        Ok(())
    }

    /// The RP id the current token is bound to, if any.
    pub(super) fn token_rp_id(&self) -> Option<String> {
        self.token
            .as_ref()
            .and_then(|t| t.token.rp_id().map(str::to_owned))
    }

    pub(super) fn client_pin(&mut self, req: ClientPin, ctx: &mut dyn Presence) -> R {
        match req {
            ClientPin::GetPinRetries { .. } => Ok(encode_response(&ClientPinResponse {
                pin_retries: Some(u32::from(self.state.pin_retries)),
                power_cycle_state: Some(
                    self.consecutive_pin_failures >= PIN_ATTEMPTS_BEFORE_POWER_CYCLE,
                ),
                ..Default::default()
            })),
            ClientPin::GetUvRetries { .. } => {
                if !self.config.bio {
                    return Err(CtapStatus::InvalidSubcommand);
                }
                Ok(encode_response(&ClientPinResponse {
                    uv_retries: Some(u32::from(self.state.uv_retries)),
                    ..Default::default()
                }))
            }
            ClientPin::GetKeyAgreement {
                pin_uv_auth_protocol,
            } => {
                self.protocol(Some(pin_uv_auth_protocol))?;
                Ok(encode_response(&ClientPinResponse {
                    key_agreement: Some(self.key_agreement.public_key()),
                    ..Default::default()
                }))
            }
            ClientPin::SetPin {
                pin_uv_auth_protocol,
                key_agreement,
                new_pin_enc,
                pin_uv_auth_param,
            } => self.set_pin(
                pin_uv_auth_protocol,
                &key_agreement,
                &new_pin_enc,
                &pin_uv_auth_param,
            ),
            ClientPin::ChangePin {
                pin_uv_auth_protocol,
                key_agreement,
                pin_hash_enc,
                new_pin_enc,
                pin_uv_auth_param,
            } => self.change_pin(
                pin_uv_auth_protocol,
                &key_agreement,
                &pin_hash_enc,
                &new_pin_enc,
                &pin_uv_auth_param,
            ),
            ClientPin::GetPinToken {
                pin_uv_auth_protocol,
                key_agreement,
                pin_hash_enc,
            } => self.pin_token(
                pin_uv_auth_protocol,
                &key_agreement,
                &pin_hash_enc,
                Permissions::MAKE_CREDENTIAL | Permissions::GET_ASSERTION,
                None,
                false,
            ),
            ClientPin::GetPinUvAuthTokenUsingPinWithPermissions {
                pin_uv_auth_protocol,
                key_agreement,
                pin_hash_enc,
                permissions,
                rp_id,
            } => {
                if !self.config.is_ctap21() {
                    return Err(CtapStatus::InvalidSubcommand);
                }
                self.pin_token(
                    pin_uv_auth_protocol,
                    &key_agreement,
                    &pin_hash_enc,
                    permissions,
                    rp_id,
                    true,
                )
            }
            ClientPin::GetPinUvAuthTokenUsingUvWithPermissions {
                pin_uv_auth_protocol,
                key_agreement,
                permissions,
                rp_id,
            } => self.uv_token(
                pin_uv_auth_protocol,
                &key_agreement,
                permissions,
                rp_id,
                ctx,
            ),
            _ => Err(CtapStatus::InvalidSubcommand),
        }
    }

    fn shared_secret(
        &self,
        protocol: u8,
        platform_key: &CoseKey,
    ) -> Result<SharedSecret, CtapStatus> {
        let protocol = self.protocol(Some(protocol))?;
        self.key_agreement
            .decapsulate(protocol, platform_key)
            .map_err(|_| CtapStatus::InvalidParameter)
    }

    fn set_pin(&mut self, protocol: u8, key: &CoseKey, new_pin_enc: &[u8], param: &[u8]) -> R {
        let shared = self.shared_secret(protocol, key)?;
        if self.state.pin.is_some() {
            return Err(CtapStatus::NotAllowed);
        }
        shared
            .verify(new_pin_enc, param)
            .map_err(|_| CtapStatus::PinAuthInvalid)?;
        let pin = self.decrypt_new_pin(&shared, new_pin_enc)?;
        self.store_pin(&pin);
        Ok(vec![0x00])
    }

    fn decrypt_new_pin(
        &self,
        shared: &SharedSecret,
        new_pin_enc: &[u8],
    ) -> Result<Pin, CtapStatus> {
        let padded = shared
            .decrypt(new_pin_enc)
            .map_err(|_| CtapStatus::InvalidParameter)?;
        if padded.len() < 64 {
            return Err(CtapStatus::InvalidParameter);
        }
        // Protocol 1 may carry more than 64 bytes; only the first 64 are the padded PIN.
        let first = padded.get(..64).ok_or(CtapStatus::InvalidParameter)?;
        let pin = Pin::from_padded(first, usize::from(self.state.min_pin_length))
            .map_err(|e| new_pin_status(&e))?;
        let too_long = self
            .config
            .max_pin_length
            .is_some_and(|max| pin.code_points() as u64 > max);
        let too_simple = self.config.pin_complexity_policy
            && !fido_core::pin::PinPolicy::is_complex_enough(pin.as_str());
        if too_long || too_simple {
            return Err(CtapStatus::PinPolicyViolation);
        }
        Ok(pin)
    }

    fn store_pin(&mut self, pin: &Pin) {
        self.state.pin = Some(StoredPin {
            hash: Secret::new(pin.pin_hash().to_vec()),
            code_points: pin.code_points(),
        });
        self.state.pin_retries = MAX_PIN_RETRIES;
        self.consecutive_pin_failures = 0;
        self.dirty = true;
    }

    /// Checks the PIN-entry preconditions (blocked states).
    fn pin_entry_allowed(&self) -> Result<(), CtapStatus> {
        if self.state.pin.is_none() {
            return Err(CtapStatus::PinNotSet);
        }
        if self.state.pin_retries == 0 {
            return Err(CtapStatus::PinBlocked);
        }
        if self.consecutive_pin_failures >= PIN_ATTEMPTS_BEFORE_POWER_CYCLE {
            return Err(CtapStatus::PinAuthBlocked);
        }
        Ok(())
    }

    /// Decrements the retries, then compares `pinHashEnc` with the stored PIN.
    fn check_pin_hash(
        &mut self,
        shared: &SharedSecret,
        pin_hash_enc: &[u8],
    ) -> Result<(), CtapStatus> {
        self.state.pin_retries = self.state.pin_retries.saturating_sub(1);
        self.dirty = true;
        let matches = match (decrypt_pin_hash(shared, pin_hash_enc), &self.state.pin) {
            (Ok(given), Some(stored)) => {
                let stored: Option<[u8; 16]> = stored.hash.expose().try_into().ok();
                stored.is_some_and(|s| Pin::hashes_match(&given, &s))
            }
            _ => false,
        };
        if !matches {
            self.regenerate_key_agreement();
            self.consecutive_pin_failures = self.consecutive_pin_failures.saturating_add(1);
            if self.state.pin_retries == 0 {
                return Err(CtapStatus::PinBlocked);
            }
            if self.consecutive_pin_failures >= PIN_ATTEMPTS_BEFORE_POWER_CYCLE {
                return Err(CtapStatus::PinAuthBlocked);
            }
            return Err(CtapStatus::PinInvalid);
        }
        self.state.pin_retries = MAX_PIN_RETRIES;
        self.consecutive_pin_failures = 0;
        Ok(())
    }

    fn change_pin(
        &mut self,
        protocol: u8,
        key: &CoseKey,
        pin_hash_enc: &[u8],
        new_pin_enc: &[u8],
        param: &[u8],
    ) -> R {
        let shared = self.shared_secret(protocol, key)?;
        self.pin_entry_allowed()?;
        shared
            .verify(&[new_pin_enc, pin_hash_enc].concat(), param)
            .map_err(|_| CtapStatus::PinAuthInvalid)?;
        self.check_pin_hash(&shared, pin_hash_enc)?;
        let pin = self.decrypt_new_pin(&shared, new_pin_enc)?;
        if self.state.force_pin_change {
            if let Some(stored) = &self.state.pin {
                if stored.hash.expose() == pin.pin_hash().as_slice() {
                    return Err(CtapStatus::PinPolicyViolation);
                }
            }
        }
        self.store_pin(&pin);
        self.state.force_pin_change = false;
        self.token = None;
        self.regenerate_key_agreement();
        self.regenerate_persistent_token();
        Ok(vec![0x00])
    }

    fn pin_token(
        &mut self,
        protocol: u8,
        key: &CoseKey,
        pin_hash_enc: &[u8],
        permissions: Permissions,
        rp_id: Option<String>,
        with_permissions: bool,
    ) -> R {
        let proto = self.protocol(Some(protocol))?;
        if with_permissions {
            self.check_permissions(permissions)?;
        }
        let shared = self.shared_secret(protocol, key)?;
        self.pin_entry_allowed()?;
        self.check_pin_hash(&shared, pin_hash_enc)?;
        if self.state.force_pin_change {
            return Err(CtapStatus::PinPolicyViolation);
        }
        if permissions.contains(Permissions::PERSISTENT_CREDENTIAL_MANAGEMENT_READ_ONLY) {
            // pcmr stands alone and returns the persistent token; the regular token is
            // left as it is.
            if permissions != Permissions::PERSISTENT_CREDENTIAL_MANAGEMENT_READ_ONLY {
                return Err(CtapStatus::InvalidParameter);
            }
            let encrypted = proto
                .encrypt(&shared, self.persistent_token.as_ref(), &mut self.rng)
                .map_err(|_| CtapStatus::Other7F)?;
            return Ok(encode_response(&ClientPinResponse {
                pin_uv_auth_token: Some(SecretBytes::new(encrypted)),
                ..Default::default()
            }));
        }
        self.issue_token(proto, &shared, permissions, rp_id)
    }

    /// UNAUTHORIZED_PERMISSION for permissions this configuration does not offer,
    /// INVALID_PARAMETER for none.
    fn check_permissions(&self, p: Permissions) -> Result<(), CtapStatus> {
        if p.is_empty() {
            return Err(CtapStatus::InvalidParameter);
        }
        let c = &self.config;
        let mut offered = Permissions::MAKE_CREDENTIAL | Permissions::GET_ASSERTION;
        if c.credential_management {
            offered |= Permissions::CREDENTIAL_MANAGEMENT;
        }
        if c.bio {
            offered |= Permissions::BIO_ENROLLMENT;
        }
        if c.large_blobs {
            offered |= Permissions::LARGE_BLOB_WRITE;
        }
        if c.authenticator_config {
            offered |= Permissions::AUTHENTICATOR_CONFIG;
        }
        if c.device_identifier.is_some() {
            offered |= Permissions::PERSISTENT_CREDENTIAL_MANAGEMENT_READ_ONLY;
        }
        if !offered.contains(p) {
            return Err(CtapStatus::UnauthorizedPermission);
        }
        Ok(())
    }

    fn issue_token(
        &mut self,
        protocol: PinUvAuthProtocol,
        shared: &SharedSecret,
        permissions: Permissions,
        rp_id: Option<String>,
    ) -> R {
        let token = PinUvAuthToken::generate(protocol, permissions, rp_id, &mut self.rng)
            .map_err(|_| CtapStatus::Other7F)?;
        let encrypted = token
            .encrypt_for(shared, &mut self.rng)
            .map_err(|_| CtapStatus::Other7F)?;
        self.token = Some(TokenState {
            token,
            issued: self.clock.now(),
        });
        Ok(encode_response(&ClientPinResponse {
            pin_uv_auth_token: Some(SecretBytes::new(encrypted)),
            ..Default::default()
        }))
    }

    fn uv_token(
        &mut self,
        protocol: u8,
        key: &CoseKey,
        permissions: Permissions,
        rp_id: Option<String>,
        ctx: &mut dyn Presence,
    ) -> R {
        if !self.config.bio {
            return Err(CtapStatus::InvalidSubcommand);
        }
        let proto = self.protocol(Some(protocol))?;
        self.check_permissions(permissions)?;
        let shared = self.shared_secret(protocol, key)?;
        self.built_in_uv(ctx)?;
        self.issue_token(proto, &shared, permissions, rp_id)
    }

    /// Simulated fingerprint match: needs an enrolled template, a touch, and the
    /// control's "finger matches" setting; counts UV retries.
    pub(super) fn built_in_uv(&mut self, ctx: &mut dyn Presence) -> Result<(), CtapStatus> {
        if self.state.templates.is_empty() {
            return Err(CtapStatus::NotAllowed);
        }
        if self.state.uv_retries == 0 {
            return Err(CtapStatus::UvBlocked);
        }
        self.user_presence(ctx)?;
        if !self.control.fingerprint_matches() {
            self.state.uv_retries = self.state.uv_retries.saturating_sub(1);
            self.dirty = true;
            return Err(if self.state.uv_retries == 0 {
                CtapStatus::UvBlocked
            } else {
                CtapStatus::UvInvalid
            });
        }
        if self.state.uv_retries != MAX_UV_RETRIES {
            self.state.uv_retries = MAX_UV_RETRIES;
            self.dirty = true;
        }
        Ok(())
    }
}
