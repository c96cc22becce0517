//! What the authenticator is and advertises: [`SoftConfig`] and its attestation mode.

use std::time::Duration;

use super::{SoftError, UserPresence};

/// Which attestation statement makeCredential returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AttestationMode {
    /// `packed` with the generated certificate in `x5c` (basic attestation).
    Packed,
    /// `packed` self attestation (signed with the credential key, no `x5c`).
    SelfAttestation,
    /// `none`.
    None,
}

/// What the authenticator is and advertises.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SoftConfig {
    /// The AAGUID (also written into the attestation certificate).
    pub aaguid: [u8; 16],
    /// getInfo versions (`FIDO_2_0`, `FIDO_2_1`, ...).
    pub versions: Vec<String>,
    /// PIN/UV auth protocols, preferred first (subset of `[2, 1]`).
    pub pin_protocols: Vec<u8>,
    /// Most discoverable credentials.
    pub max_resident_credentials: usize,
    /// Minimum PIN length after a reset (at least 4).
    pub min_pin_length: u8,
    /// RP ids allowed to read the minimum PIN length after a reset.
    pub min_pin_length_rpids: Vec<String>,
    /// alwaysUv after a reset.
    pub always_uv: bool,
    /// Offer authenticatorConfig (`authnrCfg`, `setMinPINLength`, `alwaysUv`).
    pub authenticator_config: bool,
    /// Offer credential management (`credMgmt`).
    pub credential_management: bool,
    /// Offer large blobs (`largeBlobs`, `largeBlobKey`).
    pub large_blobs: bool,
    /// Offer simulated fingerprint enrolment and built-in UV (`bioEnroll`, `uv`).
    pub bio: bool,
    /// Good samples a fingerprint enrolment needs.
    pub bio_samples: u32,
    /// Most fingerprint templates.
    pub max_templates: usize,
    /// Offer enterprise attestation (`ep`).
    pub enterprise_attestation: bool,
    /// Largest request (getInfo maxMsgSize).
    pub max_msg_size: usize,
    /// maxCredentialCountInList.
    pub max_credential_count_in_list: usize,
    /// maxRPIDsForSetMinPINLength.
    pub max_rpids_for_set_min_pin_length: usize,
    /// maxSerializedLargeBlobArray.
    pub max_large_blob_array: usize,
    /// maxCredBlobLength.
    pub max_cred_blob_length: usize,
    /// Transports listed in getInfo.
    pub transports: Vec<String>,
    /// firmwareVersion.
    pub firmware_version: u64,
    /// Attestation statement kind.
    pub attestation: AttestationMode,
    /// User-presence policy at start.
    pub presence: UserPresence,
    /// How long a pinUvAuthToken stays usable after it was issued.
    pub token_lifetime: Duration,
    /// How long after power-up reset is accepted (YubiKeys: 5 s before firmware 5.5.2,
    /// 10 s later).
    pub reset_window: Duration,
    /// The status a reset outside the window draws: NOT_ALLOWED (0x30) on most keys,
    /// PIN_AUTH_BLOCKED (0x34) on some YubiKey firmware.
    pub reset_too_late_status: fido_core::CtapStatus,
    /// getInfo 0x18 `longTouchForReset`.
    pub long_touch_for_reset: bool,
    /// getInfo 0x1A `transportsForReset`; a reset over another transport draws
    /// OPERATION_DENIED (0x27). `None`: not advertised, reset allowed everywhere.
    pub transports_for_reset: Option<Vec<String>>,
    /// getInfo 0x08 `maxCredentialIdLength`, enforced: a list holding a longer id is
    /// refused with INVALID_LENGTH. `None`: advertise the key's own id length and
    /// ignore longer ids.
    pub max_credential_id_length: Option<usize>,
    /// getInfo 0x1D `maxPINLength` (code points); `None`: not advertised (63 bytes).
    pub max_pin_length: Option<u64>,
    /// getInfo 0x1B `pinComplexityPolicy`, enforced: setPIN / changePIN with a PIN
    /// that breaks [`fido_core::pin::PinPolicy::is_complex_enough`] draws
    /// PIN_POLICY_VIOLATION (0x37), as Token2 PIN+ keys do.
    pub pin_complexity_policy: bool,
    /// getInfo 0x16 `attestationFormats`; `None`: not advertised.
    pub attestation_formats: Option<Vec<String>>,
    /// getInfo 0x1F `authenticatorConfigCommands`; `None`: not advertised.
    pub authenticator_config_commands: Option<Vec<u64>>,
    /// getInfo 0x19 `encIdentifier`: the device identifier (16 bytes) the key encrypts
    /// under its persistent token; `None`: not advertised.
    pub device_identifier: Option<[u8; 16]>,
    /// Extensions the key neither lists in getInfo nor honours (`credProtect`,
    /// `hmac-secret`, ...): a key of an older or smaller firmware. Empty: all of them.
    pub without_extensions: Vec<String>,
}

impl SoftConfig {
    /// True unless `name` is one of [`SoftConfig::without_extensions`].
    pub fn has_extension(&self, name: &str) -> bool {
        !self.without_extensions.iter().any(|e| e == name)
    }
}

impl Default for SoftConfig {
    /// A full CTAP 2.1 authenticator (no bio, no enterprise attestation).
    fn default() -> Self {
        SoftConfig {
            aaguid: *b"keysmith-softkey",
            versions: vec!["FIDO_2_0".into(), "FIDO_2_1".into()],
            pin_protocols: vec![2, 1],
            max_resident_credentials: 25,
            min_pin_length: 4,
            min_pin_length_rpids: Vec::new(),
            always_uv: false,
            authenticator_config: true,
            credential_management: true,
            large_blobs: true,
            bio: false,
            bio_samples: 4,
            max_templates: 5,
            enterprise_attestation: false,
            max_msg_size: 1200,
            max_credential_count_in_list: 8,
            max_rpids_for_set_min_pin_length: 2,
            max_large_blob_array: 1024,
            max_cred_blob_length: 32,
            transports: vec!["usb".into(), "nfc".into()],
            firmware_version: 0x0001_0000,
            attestation: AttestationMode::Packed,
            presence: UserPresence::Approve,
            token_lifetime: Duration::from_secs(600),
            reset_window: Duration::from_secs(10),
            reset_too_late_status: fido_core::CtapStatus::NotAllowed,
            long_touch_for_reset: false,
            transports_for_reset: None,
            max_credential_id_length: None,
            max_pin_length: None,
            pin_complexity_policy: false,
            attestation_formats: None,
            authenticator_config_commands: None,
            device_identifier: None,
            without_extensions: Vec::new(),
        }
    }
}

impl SoftConfig {
    /// A CTAP 2.0-only key: `FIDO_2_0`, PIN protocol 1, no credential management,
    /// config, large blobs or bio.
    pub fn ctap20() -> Self {
        SoftConfig {
            versions: vec!["FIDO_2_0".into()],
            pin_protocols: vec![1],
            authenticator_config: false,
            credential_management: false,
            large_blobs: false,
            bio: false,
            ..SoftConfig::default()
        }
    }

    /// The default 2.1 key with simulated fingerprint support.
    pub fn with_bio() -> Self {
        SoftConfig {
            bio: true,
            ..SoftConfig::default()
        }
    }

    /// A YubiKey-like CTAP 2.2 key as libfido2's recording describes it: 8 credentials
    /// in a list, ids of at most 128 bytes, `transportsForReset = [usb, smart-card]`, `longTouchForReset`, a 5 s
    /// reset window answered with PIN_AUTH_BLOCKED, `maxPINLength = 63`, an
    /// `encIdentifier`.
    pub fn yubikey_like() -> Self {
        SoftConfig {
            versions: vec!["FIDO_2_0".into(), "FIDO_2_1".into(), "FIDO_2_3".into()],
            transports: vec!["usb".into(), "nfc".into(), "smart-card".into()],
            reset_window: Duration::from_secs(5),
            reset_too_late_status: fido_core::CtapStatus::PinAuthBlocked,
            long_touch_for_reset: true,
            transports_for_reset: Some(vec!["usb".into(), "smart-card".into()]),
            max_credential_id_length: Some(128),
            max_pin_length: Some(63),
            attestation_formats: Some(vec!["packed".into()]),
            authenticator_config_commands: Some(vec![1, 2, 3]),
            device_identifier: Some(*b"yubikey-like-id!"),
            ..SoftConfig::default()
        }
    }

    /// True if `FIDO_2_1` is listed.
    pub fn is_ctap21(&self) -> bool {
        self.versions.iter().any(|v| v == "FIDO_2_1")
    }

    pub(super) fn validate(&self) -> Result<(), SoftError> {
        if self.pin_protocols.is_empty() || self.pin_protocols.iter().any(|p| *p != 1 && *p != 2) {
            return Err(SoftError::Config(
                "pin_protocols must be a non-empty subset of [2, 1]".into(),
            ));
        }
        if self.min_pin_length < 4 || self.min_pin_length > 63 {
            return Err(SoftError::Config("min_pin_length must be 4..=63".into()));
        }
        if self.max_msg_size < 256 {
            return Err(SoftError::Config(
                "max_msg_size must be at least 256".into(),
            ));
        }
        if self.max_large_blob_array < 17 {
            return Err(SoftError::Config(
                "max_large_blob_array must be at least 17".into(),
            ));
        }
        Ok(())
    }
}
