//! authenticatorGetInfo.

use fido_core::commands::{encode_response, AuthenticatorInfo, PublicKeyCredentialParameters};
use fido_core::cose::ALG_ES256;

use super::SoftAuthenticator;

impl SoftAuthenticator {
    /// The getInfo answer reflecting the current configuration and state.
    pub fn info(&self) -> AuthenticatorInfo {
        let c = &self.config;
        let s = &self.state;
        let ctap21 = c.is_ctap21();
        let has_templates = !s.templates.is_empty();
        let mut options: Vec<(String, bool)> = vec![
            ("rk".into(), true),
            ("up".into(), true),
            ("plat".into(), false),
            ("clientPin".into(), s.pin.is_some()),
        ];
        if c.bio {
            options.push(("uv".into(), has_templates));
        }
        if ctap21 {
            options.push(("pinUvAuthToken".into(), true));
            options.push(("makeCredUvNotRqd".into(), true));
            if c.credential_management {
                options.push(("credMgmt".into(), true));
            }
            if c.authenticator_config {
                options.push(("authnrCfg".into(), true));
                options.push(("setMinPINLength".into(), true));
                options.push(("alwaysUv".into(), s.always_uv));
            }
            if c.large_blobs {
                options.push(("largeBlobs".into(), true));
            }
            if c.bio {
                options.push(("bioEnroll".into(), has_templates));
            }
            if c.device_identifier.is_some() {
                options.push(("perCredMgmtRO".into(), true));
            }
            if c.enterprise_attestation {
                options.push(("ep".into(), s.enterprise_attestation));
            }
        }
        let mut extensions = vec!["credProtect".to_owned(), "hmac-secret".to_owned()];
        if ctap21 {
            extensions.push("credBlob".into());
            extensions.push("minPinLength".into());
            if c.large_blobs {
                extensions.push("largeBlobKey".into());
            }
        }
        extensions.retain(|e| c.has_extension(e));
        let u = |n: usize| Some(n as u64);
        AuthenticatorInfo {
            versions: c.versions.clone(),
            extensions: Some(extensions),
            aaguid: c.aaguid,
            options: Some(options),
            max_msg_size: u(c.max_msg_size),
            pin_uv_auth_protocols: Some(c.pin_protocols.clone()),
            max_credential_count_in_list: u(c.max_credential_count_in_list),
            max_credential_id_length: u(c
                .max_credential_id_length
                .unwrap_or(super::ops::CREDENTIAL_ID_LEN)),
            transports: Some(c.transports.clone()),
            algorithms: Some(vec![PublicKeyCredentialParameters::public_key(ALG_ES256)]),
            max_serialized_large_blob_array: (ctap21 && c.large_blobs)
                .then_some(c.max_large_blob_array as u64),
            force_pin_change: ctap21.then_some(s.force_pin_change),
            min_pin_length: ctap21.then_some(u64::from(s.min_pin_length)),
            firmware_version: Some(c.firmware_version),
            max_cred_blob_length: ctap21.then_some(c.max_cred_blob_length as u64),
            max_rpids_for_set_min_pin_length: (ctap21 && c.authenticator_config)
                .then_some(c.max_rpids_for_set_min_pin_length as u64),
            preferred_platform_uv_attempts: c.bio.then_some(3),
            uv_modality: c.bio.then_some(0x02),
            certifications: None,
            remaining_discoverable_credentials: ctap21.then_some(
                c.max_resident_credentials
                    .saturating_sub(s.credentials.len()) as u64,
            ),
            vendor_prototype_config_commands: None,
            attestation_formats: c.attestation_formats.clone(),
            uv_count_since_last_pin_entry: None,
            long_touch_for_reset: c.long_touch_for_reset.then_some(true),
            enc_identifier: c.device_identifier.and_then(|id| self.enc_identifier(&id)),
            transports_for_reset: c.transports_for_reset.clone(),
            pin_complexity_policy: c.pin_complexity_policy.then_some(true),
            pin_complexity_policy_url: None,
            max_pin_length: c.max_pin_length,
            enc_cred_store_state: None,
            authenticator_config_commands: c.authenticator_config_commands.clone(),
        }
    }

    pub(super) fn get_info(&self) -> Vec<u8> {
        encode_response(&self.info())
    }
}
