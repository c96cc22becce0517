//! makeCredential, getAssertion, getNextAssertion, reset and selection, and the
//! credential-id scheme.
//!
//! A credential id is `version || flags || nonce(16) || tag(16)` (flags: credProtect in
//! the low two bits, 0x80 when hmac-secret was requested): version 1 for
//! non-discoverable credentials (valid wherever the tag verifies), version 2 for
//! discoverable ones (valid only while stored). The tag is an HMAC under the master key
//! over the first 18 bytes and the RP id hash; the private key is derived the same way,
//! so nothing about non-discoverable credentials needs storing.

use fido_core::attestation::{none_att_stmt, packed_att_stmt, signed_data};
use fido_core::authdata::{rp_id_hash, AttestedCredentialData, AuthDataFlags, AuthenticatorData};
use fido_core::cbor::Value;
use fido_core::commands::{
    encode_response, CredentialDescriptor, GetAssertion, GetAssertionExtensions,
    GetAssertionResponse, HmacSecretInput, MakeCredential, MakeCredentialResponse, SecretBytes,
    UserEntity,
};
use fido_core::cose::{CoseKey, ALG_ES256};
use fido_core::pin::{AuthMessage, Permissions};
use fido_core::CtapStatus;
use hmac::{Hmac, Mac};
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use sha2::Sha256;

use super::state::{ResidentCredential, Secret};
use super::{AttestationMode, Pending, Presence, SoftAuthenticator, CONTINUATION_TIMEOUT};

type R = Result<Vec<u8>, CtapStatus>;

/// Length of the credential ids this authenticator makes.
pub(crate) const CREDENTIAL_ID_LEN: usize = 34;
const VERSION_NON_RESIDENT: u8 = 1;
const VERSION_RESIDENT: u8 = 2;
/// Longest user handle (WebAuthn).
const MAX_USER_ID_LEN: usize = 64;
const FLAG_CRED_PROTECT: u8 = 0x03;
const FLAG_HMAC_SECRET: u8 = 0x80;

/// A credential found for an assertion.
#[derive(Clone)]
pub(crate) struct Candidate {
    id: Vec<u8>,
    cred_protect: u8,
    resident: Option<ResidentCredential>,
}

fn hmac_parts(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC accepts keys of any length.
    let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => return [0; 32],
    };
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

impl SoftAuthenticator {
    fn id_tag(&self, head: &[u8], rp_hash: &[u8; 32]) -> [u8; 32] {
        hmac_parts(
            self.state.master_key.expose(),
            &[b"softkey id", head, rp_hash],
        )
    }

    /// A new credential id for `rp_hash`.
    fn new_credential_id(
        &mut self,
        resident: bool,
        flags: u8,
        rp_hash: &[u8; 32],
    ) -> Result<Vec<u8>, CtapStatus> {
        let nonce: [u8; 16] = self.random_bytes()?;
        let mut id = vec![
            if resident {
                VERSION_RESIDENT
            } else {
                VERSION_NON_RESIDENT
            },
            flags,
        ];
        id.extend_from_slice(&nonce);
        let tag = self.id_tag(&id, rp_hash);
        id.extend_from_slice(tag.get(..16).unwrap_or_default());
        Ok(id)
    }

    /// True if `id` was made by this authenticator for `rp_hash`.
    fn id_is_ours(&self, id: &[u8], rp_hash: &[u8; 32]) -> bool {
        if id.len() != CREDENTIAL_ID_LEN {
            return false;
        }
        let (head, tag) = id.split_at(18);
        let expected = self.id_tag(head, rp_hash);
        let diff = expected
            .iter()
            .zip(tag)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        diff == 0
    }

    /// The credential's signing key.
    fn credential_key(&self, id: &[u8], rp_hash: &[u8; 32]) -> Result<SigningKey, CtapStatus> {
        let head = id.get(..18).ok_or(CtapStatus::InvalidCredential)?;
        for counter in 0u8..8 {
            let mut seed = hmac_parts(
                self.state.master_key.expose(),
                &[b"softkey key", head, rp_hash, &[counter]],
            );
            let key = SigningKey::from_bytes(&seed.into());
            zeroize::Zeroize::zeroize(&mut seed);
            if let Ok(k) = key {
                return Ok(k);
            }
        }
        Err(CtapStatus::Other7F)
    }

    /// A zero-length pinUvAuthParam: the platform probes for a PIN after a touch.
    fn pin_probe(&mut self, ctx: &mut dyn Presence) -> R {
        self.user_presence(ctx)?;
        Err(if self.state.pin.is_some() {
            CtapStatus::PinInvalid
        } else {
            CtapStatus::PinNotSet
        })
    }

    fn next_sign_count(&mut self) -> u32 {
        self.state.sign_count = self.state.sign_count.wrapping_add(1);
        self.dirty = true;
        self.state.sign_count
    }

    pub(super) fn make_credential(&mut self, req: MakeCredential, ctx: &mut dyn Presence) -> R {
        if req.pin_uv_auth_param.as_ref().is_some_and(Vec::is_empty) {
            return self.pin_probe(ctx);
        }
        if req.pin_uv_auth_param.is_some() {
            self.protocol(req.pin_uv_auth_protocol)?;
        }
        if !req
            .pub_key_cred_params
            .iter()
            .any(|p| p.cred_type == "public-key" && p.alg == ALG_ES256)
        {
            return Err(CtapStatus::UnsupportedAlgorithm);
        }
        let rk = req.options.rk.unwrap_or(false);
        if req.options.up == Some(false) {
            return Err(CtapStatus::InvalidOption);
        }
        let mut uv = false;
        let mut touched = false;
        let uv_option = req.options.uv.unwrap_or(false);
        if uv_option && req.pin_uv_auth_param.is_none() && !self.config.bio {
            return Err(CtapStatus::InvalidOption);
        }
        if let Some(param) = &req.pin_uv_auth_param {
            self.verify_token(
                req.pin_uv_auth_protocol,
                param,
                &AuthMessage::MakeCredential {
                    client_data_hash: &req.client_data_hash,
                },
                Permissions::MAKE_CREDENTIAL,
                Some(&req.rp.id),
            )?;
            uv = true;
        } else if uv_option {
            // The finger on the sensor is also the touch.
            self.built_in_uv(ctx)?;
            uv = true;
            touched = true;
        } else if self.state.always_uv && self.state.pin.is_none() {
            // alwaysUv on a key with no way to verify the user: a PIN must be set first.
            return Err(CtapStatus::PinNotSet);
        } else if self.state.always_uv
            || (self.state.pin.is_some() && (rk || !self.config.is_ctap21()))
        {
            return Err(CtapStatus::PuatRequired);
        }
        if req.enterprise_attestation.is_some() && !self.state.enterprise_attestation {
            return Err(CtapStatus::InvalidParameter);
        }
        if req.user.id.len() > MAX_USER_ID_LEN {
            return Err(CtapStatus::InvalidLength);
        }
        if req
            .exclude_list
            .as_ref()
            .is_some_and(|l| l.len() > self.config.max_credential_count_in_list)
        {
            return Err(CtapStatus::LimitExceeded);
        }
        self.check_id_lengths(req.exclude_list.as_deref())?;
        let rp_hash = rp_id_hash(&req.rp.id);
        // Exclude list: a known credential (visible at this UV level) ends the request
        // after a touch.
        if let Some(list) = &req.exclude_list {
            let excluded = list.iter().any(|d| {
                self.find_credential(&d.id, &rp_hash)
                    .is_some_and(|c| c.cred_protect < 3 || uv)
            });
            if excluded {
                if !touched {
                    self.user_presence(ctx)?;
                }
                return Err(CtapStatus::CredentialExcluded);
            }
        }
        let mut ext = req.extensions.clone().unwrap_or_default();
        // Extensions this key does not have are ignored, as CTAP says.
        if !self.config.has_extension("credProtect") {
            ext.cred_protect = None;
        }
        if !self.config.has_extension("hmac-secret") {
            ext.hmac_secret = None;
        }
        let cred_protect = match ext.cred_protect {
            None => 1,
            Some(l @ 1..=3) => l,
            Some(_) => return Err(CtapStatus::InvalidParameter),
        };
        if ext.large_blob_key.is_some()
            && (!self.config.large_blobs || ext.large_blob_key == Some(false) || !rk)
        {
            return Err(CtapStatus::InvalidOption);
        }
        if !touched {
            self.user_presence(ctx)?;
        }

        // Storage for a discoverable credential.
        let existing = if rk {
            let pos = self
                .state
                .credentials
                .iter()
                .position(|c| c.rp_id == req.rp.id && c.user_id == req.user.id);
            if pos.is_none() && self.state.credentials.len() >= self.config.max_resident_credentials
            {
                return Err(CtapStatus::KeyStoreFull);
            }
            pos
        } else {
            None
        };
        let hmac_secret = ext.hmac_secret == Some(true);
        let flags = cred_protect | if hmac_secret { FLAG_HMAC_SECRET } else { 0 };
        let id = self.new_credential_id(rk, flags, &rp_hash)?;
        let key = self.credential_key(&id, &rp_hash)?;
        let public = cose_public_key(&key);

        let mut ext_out: Vec<(Value, Value)> = Vec::new();
        if ext.cred_protect.is_some() {
            ext_out.push((Value::from("credProtect"), Value::from(cred_protect)));
        }
        if hmac_secret {
            ext_out.push((Value::from("hmac-secret"), Value::from(true)));
        }
        let mut cred_blob = None;
        if let Some(blob) = &ext.cred_blob {
            let ok = rk && blob.len() <= self.config.max_cred_blob_length;
            if ok {
                cred_blob = Some(Secret::new(blob.clone()));
            }
            ext_out.push((Value::from("credBlob"), Value::from(ok)));
        }
        if ext.min_pin_length == Some(true) && self.state.min_pin_length_rpids.contains(&req.rp.id)
        {
            ext_out.push((
                Value::from("minPinLength"),
                Value::from(u64::from(self.state.min_pin_length)),
            ));
        }
        let large_blob_key = if ext.large_blob_key == Some(true) {
            Some(self.random_bytes::<32>()?.to_vec())
        } else {
            None
        };
        if rk {
            let serial = self.next_serial();
            let record = ResidentCredential {
                id: id.clone(),
                rp_id: req.rp.id.clone(),
                rp_name: req.rp.name.clone(),
                user_id: req.user.id.clone(),
                user_name: req.user.name.clone(),
                user_display_name: req.user.display_name.clone(),
                cred_protect,
                cred_blob,
                large_blob_key: large_blob_key.clone().map(Secret::new),
                created: serial,
            };
            match existing {
                Some(i) => {
                    if let Some(slot) = self.state.credentials.get_mut(i) {
                        *slot = record;
                    }
                }
                None => self.state.credentials.push(record),
            }
            self.dirty = true;
        }

        let flags = AuthDataFlags::UP.with(AuthDataFlags::UV, uv);
        let count = self.next_sign_count();
        let acd = AttestedCredentialData::new(self.config.aaguid, id, public)
            .map_err(|_| CtapStatus::Other7F)?;
        let mut auth_data =
            AuthenticatorData::new(rp_hash, flags, count).with_attested_credential(acd);
        if !ext_out.is_empty() {
            auth_data = auth_data
                .with_extensions(Value::Map(ext_out))
                .map_err(|_| CtapStatus::Other7F)?;
        }
        let auth_data = auth_data.to_bytes();
        let to_sign = signed_data(&auth_data, &req.client_data_hash);
        let (fmt, att_stmt) = match self.config.attestation {
            AttestationMode::Packed => {
                let sig: Signature = self.attestation_key.sign(&to_sign);
                let chain = [self.attestation_cert.clone()];
                (
                    "packed",
                    packed_att_stmt(ALG_ES256, sig.to_der().as_bytes(), Some(&chain)),
                )
            }
            AttestationMode::SelfAttestation => {
                let sig: Signature = key.sign(&to_sign);
                (
                    "packed",
                    packed_att_stmt(ALG_ES256, sig.to_der().as_bytes(), None),
                )
            }
            AttestationMode::None => ("none", none_att_stmt()),
        };
        Ok(encode_response(&MakeCredentialResponse {
            fmt: fmt.to_owned(),
            auth_data,
            att_stmt,
            ep_att: req.enterprise_attestation.map(|_| true),
            large_blob_key: large_blob_key.map(SecretBytes::new),
        }))
    }

    /// The credential with `id` for this RP, if it is ours (and, for discoverable ones,
    /// still stored).
    fn find_credential(&self, id: &[u8], rp_hash: &[u8; 32]) -> Option<Candidate> {
        if !self.id_is_ours(id, rp_hash) {
            return None;
        }
        match id.first() {
            Some(&VERSION_NON_RESIDENT) => Some(Candidate {
                id: id.to_vec(),
                cred_protect: id.get(1).map_or(1, |f| f & FLAG_CRED_PROTECT),
                resident: None,
            }),
            Some(&VERSION_RESIDENT) => {
                self.state
                    .credentials
                    .iter()
                    .find(|c| c.id == id)
                    .map(|c| Candidate {
                        id: id.to_vec(),
                        cred_protect: c.cred_protect,
                        resident: Some(c.clone()),
                    })
            }
            _ => None,
        }
    }

    pub(super) fn get_assertion(&mut self, req: GetAssertion, ctx: &mut dyn Presence) -> R {
        if req.pin_uv_auth_param.as_ref().is_some_and(Vec::is_empty) {
            return self.pin_probe(ctx);
        }
        if req.pin_uv_auth_param.is_some() {
            self.protocol(req.pin_uv_auth_protocol)?;
        }
        let up = req.options.up.unwrap_or(true);
        let uv_option = req.options.uv.unwrap_or(false);
        if uv_option && req.pin_uv_auth_param.is_none() && !self.config.bio {
            return Err(CtapStatus::InvalidOption);
        }
        let mut uv = false;
        let mut touched = false;
        if let Some(param) = &req.pin_uv_auth_param {
            self.verify_token(
                req.pin_uv_auth_protocol,
                param,
                &AuthMessage::GetAssertion {
                    client_data_hash: &req.client_data_hash,
                },
                Permissions::GET_ASSERTION,
                Some(&req.rp_id),
            )?;
            uv = true;
        } else if uv_option {
            // The finger on the sensor is also the touch.
            self.built_in_uv(ctx)?;
            uv = true;
            touched = true;
        } else if self.state.always_uv && up {
            return Err(CtapStatus::PuatRequired);
        }
        let rp_hash = rp_id_hash(&req.rp_id);
        let from_allow_list = req.allow_list.is_some();
        let mut candidates: Vec<Candidate> = match &req.allow_list {
            Some(list) => {
                if list.len() > self.config.max_credential_count_in_list {
                    return Err(CtapStatus::LimitExceeded);
                }
                self.check_id_lengths(Some(list))?;
                list.iter()
                    .filter(|d| d.cred_type == "public-key")
                    .filter_map(|d| self.find_credential(&d.id, &rp_hash))
                    .collect()
            }
            None => {
                let mut v: Vec<&ResidentCredential> = self
                    .state
                    .credentials
                    .iter()
                    .filter(|c| c.rp_id == req.rp_id)
                    .collect();
                v.sort_by_key(|c| core::cmp::Reverse(c.created));
                v.into_iter()
                    .map(|c| Candidate {
                        id: c.id.clone(),
                        cred_protect: c.cred_protect,
                        resident: Some(c.clone()),
                    })
                    .collect()
            }
        };
        candidates.retain(|c| match c.cred_protect {
            3 => uv,
            2 => uv || from_allow_list,
            _ => true,
        });
        if candidates.is_empty() {
            if up && !touched {
                // Real keys ask for a touch before saying no (no information leak).
                self.user_presence(ctx)?;
            }
            return Err(CtapStatus::NoCredentials);
        }
        if up && !touched {
            self.user_presence(ctx)?;
        }
        let flags = AuthDataFlags::from_bits(0)
            .with(AuthDataFlags::UP, up)
            .with(AuthDataFlags::UV, uv);
        let mut rest = candidates;
        let first = rest.remove(0);
        let total = rest.len() + 1;
        let ext = req.extensions.clone().map(Box::new);
        let answer = self.assertion(
            &first,
            &req.rp_id,
            &req.client_data_hash,
            flags,
            ext.as_deref(),
            uv,
            (!from_allow_list && total > 1).then_some(total as u32),
            from_allow_list,
        )?;
        if !from_allow_list && !rest.is_empty() {
            self.pending = Pending::Assertions {
                remaining: rest,
                client_data_hash: req.client_data_hash,
                flags,
                rp_id: req.rp_id,
                extensions: ext,
                uv,
                started: self.clock.now(),
            };
        }
        Ok(answer)
    }

    pub(super) fn get_next_assertion(&mut self, pending: Pending) -> R {
        let Pending::Assertions {
            mut remaining,
            client_data_hash,
            flags,
            rp_id,
            extensions,
            uv,
            started,
        } = pending
        else {
            return Err(CtapStatus::NotAllowed);
        };
        if self.clock.now().saturating_duration_since(started) > CONTINUATION_TIMEOUT
            || remaining.is_empty()
        {
            return Err(CtapStatus::NotAllowed);
        }
        let next = remaining.remove(0);
        let answer = self.assertion(
            &next,
            &rp_id,
            &client_data_hash,
            flags,
            extensions.as_deref(),
            uv,
            None,
            false,
        )?;
        if !remaining.is_empty() {
            self.pending = Pending::Assertions {
                remaining,
                client_data_hash,
                flags,
                rp_id,
                extensions,
                uv,
                started,
            };
        }
        Ok(answer)
    }

    #[allow(clippy::too_many_arguments)]
    fn assertion(
        &mut self,
        cred: &Candidate,
        rp_id: &str,
        client_data_hash: &[u8; 32],
        flags: AuthDataFlags,
        ext: Option<&GetAssertionExtensions>,
        uv: bool,
        number_of_credentials: Option<u32>,
        from_allow_list: bool,
    ) -> R {
        let rp_hash = rp_id_hash(rp_id);
        let key = self.credential_key(&cred.id, &rp_hash)?;
        let mut ext_out: Vec<(Value, Value)> = Vec::new();
        let mut large_blob_key = None;
        if let Some(ext) = ext {
            if ext.cred_blob == Some(true) {
                let blob = cred
                    .resident
                    .as_ref()
                    .and_then(|r| r.cred_blob.as_ref())
                    .map(|b| b.expose().to_vec())
                    .unwrap_or_default();
                ext_out.push((Value::from("credBlob"), Value::from(blob)));
            }
            if let Some(input) = &ext.hmac_secret {
                let has = cred.id.get(1).is_some_and(|f| f & FLAG_HMAC_SECRET != 0);
                if has {
                    let out = self.hmac_secret_output(&cred.id, &rp_hash, input, uv)?;
                    ext_out.push((Value::from("hmac-secret"), Value::from(out)));
                }
            }
            if ext.large_blob_key == Some(true) {
                large_blob_key = cred
                    .resident
                    .as_ref()
                    .and_then(|r| r.large_blob_key.as_ref())
                    .map(|k| SecretBytes::from(k.expose()));
            }
        }
        let count = self.next_sign_count();
        let mut auth_data = AuthenticatorData::new(rp_hash, flags, count);
        if !ext_out.is_empty() {
            auth_data = auth_data
                .with_extensions(Value::Map(ext_out))
                .map_err(|_| CtapStatus::Other7F)?;
        }
        let auth_data = auth_data.to_bytes();
        let sig: Signature = key.sign(&signed_data(&auth_data, client_data_hash));
        let user = cred.resident.as_ref().map(|r| {
            // Identifying user information only after user verification, and only when
            // the user picks among several accounts.
            let identifying = uv && !from_allow_list;
            UserEntity {
                id: r.user_id.clone(),
                name: if identifying {
                    r.user_name.clone()
                } else {
                    None
                },
                display_name: if identifying {
                    r.user_display_name.clone()
                } else {
                    None
                },
            }
        });
        Ok(encode_response(&GetAssertionResponse {
            credential: Some(CredentialDescriptor::public_key(cred.id.clone())),
            auth_data,
            signature: sig.to_der().as_bytes().to_vec(),
            user,
            number_of_credentials,
            user_selected: None,
            large_blob_key,
        }))
    }

    /// The encrypted hmac-secret output: HMAC-SHA-256 of each salt under the
    /// credential's CredRandom (one for assertions with UV, one without).
    fn hmac_secret_output(
        &mut self,
        id: &[u8],
        rp_hash: &[u8; 32],
        input: &HmacSecretInput,
        uv: bool,
    ) -> Result<Vec<u8>, CtapStatus> {
        let protocol = self.protocol(Some(input.pin_uv_auth_protocol.unwrap_or(1)))?;
        let shared = self
            .key_agreement
            .decapsulate(protocol, &input.key_agreement)
            .map_err(|_| CtapStatus::InvalidParameter)?;
        shared
            .verify(&input.salt_enc, &input.salt_auth)
            .map_err(|_| CtapStatus::ExtensionFirst)?;
        let salts = shared
            .decrypt(&input.salt_enc)
            .map_err(|_| CtapStatus::InvalidLength)?;
        if salts.len() != 32 && salts.len() != 64 {
            return Err(CtapStatus::InvalidLength);
        }
        let head = id.get(..18).ok_or(CtapStatus::InvalidCredential)?;
        let mut cred_random = hmac_parts(
            self.state.master_key.expose(),
            &[b"softkey hmac-secret", head, rp_hash, &[u8::from(uv)]],
        );
        let mut out = zeroize::Zeroizing::new(Vec::with_capacity(64));
        for salt in salts.chunks(32) {
            out.extend_from_slice(&hmac_parts(&cred_random, &[salt]));
        }
        zeroize::Zeroize::zeroize(&mut cred_random);
        shared
            .encrypt(&out, &mut self.rng)
            .map_err(|_| CtapStatus::Other7F)
    }

    /// INVALID_LENGTH for a list holding an id longer than the configured
    /// `max_credential_id_length` (a real-key quirk the client must avoid).
    fn check_id_lengths(
        &self,
        list: Option<&[fido_core::commands::CredentialDescriptor]>,
    ) -> Result<(), CtapStatus> {
        match (self.config.max_credential_id_length, list) {
            (Some(max), Some(list)) if list.iter().any(|d| d.id.len() > max) => {
                Err(CtapStatus::InvalidLength)
            }
            _ => Ok(()),
        }
    }

    pub(super) fn reset(&mut self, ctx: &mut dyn Presence) -> R {
        if let Some(allowed) = &self.config.transports_for_reset {
            if !allowed.iter().any(|t| t == self.via) {
                return Err(CtapStatus::OperationDenied);
            }
        }
        if self.clock.now().saturating_duration_since(self.power_up) > self.config.reset_window {
            return Err(self.config.reset_too_late_status);
        }
        self.user_presence(ctx)?;
        let attestation_key = self.state.attestation_key.clone();
        let mut fresh =
            super::fresh_state(&self.config, &mut self.rng).map_err(|_| CtapStatus::Other7F)?;
        fresh.attestation_key = attestation_key;
        self.state = fresh;
        self.token = None;
        self.consecutive_pin_failures = 0;
        self.large_blob_write = None;
        self.enrollment = None;
        self.regenerate_key_agreement();
        self.regenerate_persistent_token();
        self.dirty = true;
        Ok(vec![0x00])
    }

    pub(super) fn selection(&mut self, ctx: &mut dyn Presence) -> R {
        if !self.config.is_ctap21() {
            return Err(CtapStatus::InvalidCommand);
        }
        self.user_presence(ctx)?;
        Ok(vec![0x00])
    }
}

/// The COSE form of a credential's public key.
pub(super) fn cose_public_key(key: &SigningKey) -> CoseKey {
    let point = key.verifying_key().to_encoded_point(false);
    let mut x = [0u8; 32];
    let mut y = [0u8; 32];
    if let (Some(px), Some(py)) = (point.x(), point.y()) {
        x.copy_from_slice(px);
        y.copy_from_slice(py);
    }
    CoseKey::Ec2 {
        alg: ALG_ES256,
        x,
        y,
    }
}

/// The public key of a stored credential (credential management).
pub(super) fn resident_public_key(
    auth: &SoftAuthenticator,
    cred: &ResidentCredential,
) -> Option<CoseKey> {
    let rp_hash = rp_id_hash(&cred.rp_id);
    auth.credential_key(&cred.id, &rp_hash)
        .ok()
        .map(|k| cose_public_key(&k))
}

#[cfg(test)]
mod tests {
    use super::super::{ManualClock, SeededRng, SoftConfig};
    use super::*;

    fn auth(seed: u64) -> SoftAuthenticator {
        SoftAuthenticator::with_rng_and_clock(
            SoftConfig::default(),
            SeededRng::new(seed),
            ManualClock::new(),
        )
        .expect("authenticator")
    }

    #[test]
    fn credential_ids_are_bound_to_rp_and_master_key() {
        let mut a = auth(1);
        let rp = rp_id_hash("a.example");
        let other = rp_id_hash("b.example");
        let id = a
            .new_credential_id(false, 2 | FLAG_HMAC_SECRET, &rp)
            .expect("id");
        assert_eq!(id.len(), CREDENTIAL_ID_LEN);
        assert!(a.id_is_ours(&id, &rp));
        assert!(!a.id_is_ours(&id, &other));
        let mut tampered = id.clone();
        tampered[1] ^= 1; // flags are covered by the tag
        assert!(!a.id_is_ours(&tampered, &rp));
        assert!(!a.id_is_ours(&id[..33], &rp));
        assert!(!auth(2).id_is_ours(&id, &rp), "another master key");
        let c = a.find_credential(&id, &rp).expect("found");
        assert_eq!(c.cred_protect, 2);
        // Keys are derived deterministically and differ per RP.
        let k1 = a.credential_key(&id, &rp).expect("key");
        let k2 = a.credential_key(&id, &rp).expect("key");
        let k3 = a.credential_key(&id, &other).expect("key");
        assert_eq!(k1.to_bytes(), k2.to_bytes());
        assert_ne!(k1.to_bytes(), k3.to_bytes());
        assert!(a.credential_key(&[1, 2], &rp).is_err());
    }

    #[test]
    fn resident_ids_need_the_stored_record() {
        let mut a = auth(3);
        let rp = rp_id_hash("a.example");
        let id = a.new_credential_id(true, 1, &rp).expect("id");
        assert!(a.id_is_ours(&id, &rp));
        assert!(a.find_credential(&id, &rp).is_none(), "not stored");
    }
}
