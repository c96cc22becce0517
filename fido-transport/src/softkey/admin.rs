//! Credential management, authenticatorConfig, large blobs and (simulated) bio
//! enrolment.

use fido_core::authdata::rp_id_hash;
use fido_core::commands::{
    encode_response, AuthenticatorConfig, BioEnrollment, BioEnrollmentResponse, BioSubCommand,
    ConfigSubCommand, CredMgmtSubCommand, CredentialDescriptor, CredentialManagement,
    CredentialManagementResponse, LargeBlobs, LargeBlobsResponse, RpEntity, SecretBytes,
    TemplateInfo, UserEntity, MODALITY_FINGERPRINT,
};
use fido_core::pin::{AuthMessage, Permissions};
use fido_core::CtapStatus;
use sha2::{Digest, Sha256};

use super::ops::resident_public_key;
use super::state::{ResidentCredential, Template};
use super::{
    Enrollment, LargeBlobWrite, Pending, Presence, SoftAuthenticator, CONTINUATION_TIMEOUT,
};

type R = Result<Vec<u8>, CtapStatus>;

/// Longest template friendly name, in bytes.
const MAX_FRIENDLY_NAME: usize = 32;

impl SoftAuthenticator {
    fn cred_answer(
        &self,
        c: &ResidentCredential,
        total: Option<u32>,
    ) -> CredentialManagementResponse {
        CredentialManagementResponse {
            user: Some(UserEntity {
                id: c.user_id.clone(),
                name: c.user_name.clone(),
                display_name: c.user_display_name.clone(),
            }),
            credential_id: Some(CredentialDescriptor::public_key(c.id.clone())),
            public_key: resident_public_key(self, c),
            total_credentials: total,
            cred_protect: Some(c.cred_protect),
            large_blob_key: c
                .large_blob_key
                .as_ref()
                .map(|k| SecretBytes::from(k.expose())),
            ..Default::default()
        }
    }

    pub(super) fn credential_management(
        &mut self,
        req: CredentialManagement,
        pending: Pending,
    ) -> R {
        if !self.config.credential_management {
            return Err(CtapStatus::InvalidCommand);
        }
        let now = self.clock.now();
        match req.sub_command {
            CredMgmtSubCommand::EnumerateRpsGetNextRp => {
                let Pending::Rps {
                    mut remaining,
                    started,
                } = pending
                else {
                    return Err(CtapStatus::NotAllowed);
                };
                if now.saturating_duration_since(started) > CONTINUATION_TIMEOUT
                    || remaining.is_empty()
                {
                    return Err(CtapStatus::NotAllowed);
                }
                let (id, name) = remaining.remove(0);
                let answer = CredentialManagementResponse {
                    rp_id_hash: Some(rp_id_hash(&id)),
                    rp: Some(RpEntity { id, name }),
                    ..Default::default()
                };
                if !remaining.is_empty() {
                    self.pending = Pending::Rps { remaining, started };
                }
                return Ok(encode_response(&answer));
            }
            CredMgmtSubCommand::EnumerateCredentialsGetNextCredential => {
                let Pending::Credentials {
                    mut remaining,
                    started,
                } = pending
                else {
                    return Err(CtapStatus::NotAllowed);
                };
                if now.saturating_duration_since(started) > CONTINUATION_TIMEOUT
                    || remaining.is_empty()
                {
                    return Err(CtapStatus::NotAllowed);
                }
                let c = remaining.remove(0);
                let answer = self.cred_answer(&c, None);
                if !remaining.is_empty() {
                    self.pending = Pending::Credentials { remaining, started };
                }
                return Ok(encode_response(&answer));
            }
            _ => {}
        }
        let param = req
            .pin_uv_auth_param
            .as_deref()
            .ok_or(CtapStatus::PuatRequired)?;
        let params = req.sub_command_params_bytes();
        self.verify_token(
            req.pin_uv_auth_protocol,
            param,
            &AuthMessage::CredentialManagement {
                sub_command: req.sub_command.byte(),
                sub_command_params: Some(&params),
            },
            Permissions::CREDENTIAL_MANAGEMENT,
            None,
        )?;
        let bound = self.token_rp_id();
        match req.sub_command {
            CredMgmtSubCommand::GetCredsMetadata => {
                if bound.is_some() {
                    return Err(CtapStatus::PinAuthInvalid);
                }
                let n = self.state.credentials.len();
                Ok(encode_response(&CredentialManagementResponse {
                    existing_resident_credentials_count: Some(n as u32),
                    max_possible_remaining_resident_credentials_count: Some(
                        self.config.max_resident_credentials.saturating_sub(n) as u32,
                    ),
                    ..Default::default()
                }))
            }
            CredMgmtSubCommand::EnumerateRpsBegin => {
                if bound.is_some() {
                    return Err(CtapStatus::PinAuthInvalid);
                }
                let mut rps: Vec<(String, Option<String>)> = Vec::new();
                for c in &self.state.credentials {
                    if !rps.iter().any(|(id, _)| *id == c.rp_id) {
                        rps.push((c.rp_id.clone(), c.rp_name.clone()));
                    }
                }
                if rps.is_empty() {
                    return Err(CtapStatus::NoCredentials);
                }
                let total = rps.len() as u32;
                let (id, name) = rps.remove(0);
                if !rps.is_empty() {
                    self.pending = Pending::Rps {
                        remaining: rps,
                        started: now,
                    };
                }
                Ok(encode_response(&CredentialManagementResponse {
                    rp_id_hash: Some(rp_id_hash(&id)),
                    rp: Some(RpEntity { id, name }),
                    total_rps: Some(total),
                    ..Default::default()
                }))
            }
            CredMgmtSubCommand::EnumerateCredentialsBegin { rp_id_hash: hash } => {
                if let Some(rp) = &bound {
                    if rp_id_hash(rp) != hash {
                        return Err(CtapStatus::PinAuthInvalid);
                    }
                }
                let mut creds: Vec<ResidentCredential> = self
                    .state
                    .credentials
                    .iter()
                    .filter(|c| rp_id_hash(&c.rp_id) == hash)
                    .cloned()
                    .collect();
                if creds.is_empty() {
                    return Err(CtapStatus::NoCredentials);
                }
                let total = creds.len() as u32;
                let first = creds.remove(0);
                let answer = self.cred_answer(&first, Some(total));
                if !creds.is_empty() {
                    self.pending = Pending::Credentials {
                        remaining: creds,
                        started: now,
                    };
                }
                Ok(encode_response(&answer))
            }
            CredMgmtSubCommand::DeleteCredential { credential_id } => {
                let pos = self
                    .state
                    .credentials
                    .iter()
                    .position(|c| c.id == credential_id.id)
                    .ok_or(CtapStatus::NoCredentials)?;
                if let (Some(rp), Some(c)) = (&bound, self.state.credentials.get(pos)) {
                    if *rp != c.rp_id {
                        return Err(CtapStatus::PinAuthInvalid);
                    }
                }
                self.state.credentials.remove(pos);
                self.dirty = true;
                Ok(vec![0x00])
            }
            CredMgmtSubCommand::UpdateUserInformation {
                credential_id,
                user,
            } => {
                let c = self
                    .state
                    .credentials
                    .iter_mut()
                    .find(|c| c.id == credential_id.id)
                    .ok_or(CtapStatus::NoCredentials)?;
                if let Some(rp) = &bound {
                    if *rp != c.rp_id {
                        return Err(CtapStatus::PinAuthInvalid);
                    }
                }
                if c.user_id != user.id {
                    return Err(CtapStatus::InvalidParameter);
                }
                c.user_name = user.name;
                c.user_display_name = user.display_name;
                self.dirty = true;
                Ok(vec![0x00])
            }
            _ => Err(CtapStatus::InvalidSubcommand),
        }
    }

    pub(super) fn authenticator_config(&mut self, req: AuthenticatorConfig) -> R {
        if !self.config.authenticator_config {
            return Err(CtapStatus::InvalidCommand);
        }
        match &req.pin_uv_auth_param {
            Some(param) => {
                let params = req.sub_command_params_bytes();
                self.verify_token(
                    req.pin_uv_auth_protocol,
                    param,
                    &AuthMessage::AuthenticatorConfig {
                        sub_command: req.sub_command.byte(),
                        sub_command_params: Some(&params),
                    },
                    Permissions::AUTHENTICATOR_CONFIG,
                    None,
                )?;
            }
            None => {
                if self.state.pin.is_some() || self.state.always_uv {
                    return Err(CtapStatus::PuatRequired);
                }
            }
        }
        match req.sub_command {
            ConfigSubCommand::EnableEnterpriseAttestation => {
                if !self.config.enterprise_attestation {
                    return Err(CtapStatus::InvalidParameter);
                }
                self.state.enterprise_attestation = true;
            }
            ConfigSubCommand::ToggleAlwaysUv => {
                self.state.always_uv = !self.state.always_uv;
            }
            ConfigSubCommand::SetMinPinLength {
                new_min_pin_length,
                min_pin_length_rpids,
                force_change_pin,
            } => {
                let new = new_min_pin_length.unwrap_or(self.state.min_pin_length);
                if new < self.state.min_pin_length || new > 63 {
                    return Err(CtapStatus::PinPolicyViolation);
                }
                if let Some(rpids) = &min_pin_length_rpids {
                    if rpids.len() > self.config.max_rpids_for_set_min_pin_length {
                        return Err(CtapStatus::PinPolicyViolation);
                    }
                }
                if force_change_pin == Some(true) && self.state.pin.is_none() {
                    return Err(CtapStatus::PinNotSet);
                }
                self.state.min_pin_length = new;
                if let Some(rpids) = min_pin_length_rpids {
                    self.state.min_pin_length_rpids = rpids;
                }
                let too_short = self
                    .state
                    .pin
                    .as_ref()
                    .is_some_and(|p| p.code_points < usize::from(new));
                if force_change_pin == Some(true) || too_short {
                    self.state.force_pin_change = true;
                }
            }
            _ => return Err(CtapStatus::InvalidSubcommand),
        }
        self.dirty = true;
        Ok(vec![0x00])
    }

    pub(super) fn large_blobs(&mut self, req: LargeBlobs) -> R {
        if !self.config.large_blobs {
            return Err(CtapStatus::InvalidCommand);
        }
        let max_fragment = self.config.max_msg_size.saturating_sub(64);
        let offset = req.offset as usize;
        match (req.get, &req.set) {
            (Some(count), None) => {
                if req.length.is_some() {
                    return Err(CtapStatus::InvalidParameter);
                }
                if count as usize > max_fragment {
                    return Err(CtapStatus::InvalidLength);
                }
                let array = &self.state.large_blob_array;
                if offset > array.len() {
                    return Err(CtapStatus::InvalidParameter);
                }
                let end = offset.saturating_add(count as usize).min(array.len());
                let chunk = array.get(offset..end).unwrap_or_default().to_vec();
                Ok(encode_response(&LargeBlobsResponse {
                    config: Some(chunk),
                }))
            }
            (None, Some(fragment)) => {
                if fragment.len() > max_fragment {
                    return Err(CtapStatus::InvalidLength);
                }
                if offset == 0 {
                    let length = req.length.ok_or(CtapStatus::InvalidParameter)? as usize;
                    if length > self.config.max_large_blob_array {
                        return Err(CtapStatus::LargeBlobStorageFull);
                    }
                    if length < 17 {
                        return Err(CtapStatus::InvalidParameter);
                    }
                    self.large_blob_write = Some(LargeBlobWrite {
                        expected_length: length,
                        buffer: Vec::new(),
                    });
                } else if req.length.is_some() {
                    return Err(CtapStatus::InvalidParameter);
                }
                let expected_offset = self
                    .large_blob_write
                    .as_ref()
                    .map(|w| w.buffer.len())
                    .ok_or(CtapStatus::InvalidSeq)?;
                if offset != expected_offset {
                    return Err(CtapStatus::InvalidSeq);
                }
                if self.state.pin.is_some()
                    || self.state.always_uv
                    || req.pin_uv_auth_param.is_some()
                {
                    let param = req
                        .pin_uv_auth_param
                        .as_deref()
                        .ok_or(CtapStatus::PuatRequired)?;
                    self.verify_token(
                        req.pin_uv_auth_protocol,
                        param,
                        &AuthMessage::LargeBlobs {
                            offset: req.offset,
                            data: fragment,
                        },
                        Permissions::LARGE_BLOB_WRITE,
                        None,
                    )?;
                }
                let write = self
                    .large_blob_write
                    .as_mut()
                    .ok_or(CtapStatus::InvalidSeq)?;
                if offset + fragment.len() > write.expected_length {
                    return Err(CtapStatus::InvalidParameter);
                }
                write.buffer.extend_from_slice(fragment);
                if write.buffer.len() == write.expected_length {
                    let done = self
                        .large_blob_write
                        .take()
                        .map(|w| w.buffer)
                        .unwrap_or_default();
                    let split = done.len().saturating_sub(16);
                    let (body, trailer) = done.split_at(split);
                    let digest = Sha256::digest(body);
                    if digest.get(..16) != Some(trailer) {
                        return Err(CtapStatus::IntegrityFailure);
                    }
                    self.state.large_blob_array = done;
                    self.dirty = true;
                }
                Ok(vec![0x00])
            }
            _ => Err(CtapStatus::InvalidParameter),
        }
    }

    pub(super) fn bio_enrollment(&mut self, req: BioEnrollment, ctx: &mut dyn Presence) -> R {
        if !self.config.bio {
            return Err(CtapStatus::InvalidCommand);
        }
        if req.get_modality == Some(true) {
            return Ok(encode_response(&BioEnrollmentResponse {
                modality: Some(MODALITY_FINGERPRINT),
                ..Default::default()
            }));
        }
        let sub = req
            .sub_command
            .clone()
            .ok_or(CtapStatus::MissingParameter)?;
        match req.modality {
            None => return Err(CtapStatus::MissingParameter),
            Some(MODALITY_FINGERPRINT) => {}
            Some(_) => return Err(CtapStatus::InvalidParameter),
        }
        match &sub {
            BioSubCommand::GetFingerprintSensorInfo => {
                return Ok(encode_response(&BioEnrollmentResponse {
                    modality: Some(MODALITY_FINGERPRINT),
                    fingerprint_kind: Some(1),
                    max_capture_samples_required_for_enroll: Some(self.config.bio_samples),
                    max_template_friendly_name: Some(MAX_FRIENDLY_NAME as u32),
                    ..Default::default()
                }));
            }
            BioSubCommand::CancelCurrentEnrollment => {
                self.enrollment = None;
                return Ok(vec![0x00]);
            }
            _ => {}
        }
        let param = req
            .pin_uv_auth_param
            .as_deref()
            .ok_or(CtapStatus::PuatRequired)?;
        let params = req.sub_command_params_bytes();
        self.verify_token(
            req.pin_uv_auth_protocol,
            param,
            &AuthMessage::BioEnrollment {
                modality: MODALITY_FINGERPRINT,
                sub_command: sub.byte(),
                sub_command_params: Some(&params),
            },
            Permissions::BIO_ENROLLMENT,
            None,
        )?;
        match sub {
            BioSubCommand::EnrollBegin { .. } => {
                if self.state.templates.len() >= self.config.max_templates {
                    return Err(CtapStatus::FpDatabaseFull);
                }
                self.user_presence(ctx)?;
                let serial = self.next_serial();
                let template_id = (serial as u32).to_be_bytes().to_vec();
                let remaining = self.config.bio_samples.saturating_sub(1);
                self.enrollment = Some(Enrollment {
                    template_id: template_id.clone(),
                    remaining,
                });
                self.finish_enrollment_if_done();
                Ok(encode_response(&BioEnrollmentResponse {
                    template_id: Some(template_id),
                    last_enroll_sample_status: Some(0),
                    remaining_samples: Some(remaining),
                    ..Default::default()
                }))
            }
            BioSubCommand::EnrollCaptureNextSample { template_id, .. } => {
                let matches = self
                    .enrollment
                    .as_ref()
                    .is_some_and(|e| e.template_id == template_id);
                if !matches {
                    return Err(CtapStatus::InvalidParameter);
                }
                self.user_presence(ctx)?;
                let remaining = match self.enrollment.as_mut() {
                    Some(e) => {
                        e.remaining = e.remaining.saturating_sub(1);
                        e.remaining
                    }
                    None => return Err(CtapStatus::InvalidParameter),
                };
                self.finish_enrollment_if_done();
                Ok(encode_response(&BioEnrollmentResponse {
                    last_enroll_sample_status: Some(0),
                    remaining_samples: Some(remaining),
                    ..Default::default()
                }))
            }
            BioSubCommand::EnumerateEnrollments => {
                if self.state.templates.is_empty() {
                    return Err(CtapStatus::InvalidOption);
                }
                Ok(encode_response(&BioEnrollmentResponse {
                    template_infos: Some(
                        self.state
                            .templates
                            .iter()
                            .map(|t| TemplateInfo {
                                template_id: t.id.clone(),
                                template_friendly_name: t.name.clone(),
                            })
                            .collect(),
                    ),
                    ..Default::default()
                }))
            }
            BioSubCommand::SetFriendlyName {
                template_id,
                template_friendly_name,
            } => {
                if template_friendly_name.len() > MAX_FRIENDLY_NAME {
                    return Err(CtapStatus::InvalidParameter);
                }
                let t = self
                    .state
                    .templates
                    .iter_mut()
                    .find(|t| t.id == template_id)
                    .ok_or(CtapStatus::InvalidOption)?;
                t.name = Some(template_friendly_name);
                self.dirty = true;
                Ok(vec![0x00])
            }
            BioSubCommand::RemoveEnrollment { template_id } => {
                let pos = self
                    .state
                    .templates
                    .iter()
                    .position(|t| t.id == template_id)
                    .ok_or(CtapStatus::InvalidOption)?;
                self.state.templates.remove(pos);
                self.dirty = true;
                Ok(vec![0x00])
            }
            _ => Err(CtapStatus::InvalidSubcommand),
        }
    }

    fn finish_enrollment_if_done(&mut self) {
        if self.enrollment.as_ref().is_some_and(|e| e.remaining == 0) {
            if let Some(e) = self.enrollment.take() {
                self.state.templates.push(Template {
                    id: e.template_id,
                    name: None,
                });
                self.dirty = true;
            }
        }
    }
}
