//! authenticatorGetInfo (0x04).

use super::{
    array_of, bool_map, map_or_empty, opt, req, Command, MapBuilder, PublicKeyCredentialParameters,
    ResponseData, CMD_GET_INFO,
};
use crate::cbor::Value;
use crate::Error;

/// authenticatorGetInfo request (no parameters).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GetInfo;

impl Command for GetInfo {
    const CMD: u8 = CMD_GET_INFO;
    type Response = AuthenticatorInfo;

    fn params(&self) -> Option<Value> {
        None
    }
    fn decode_params(_params: Option<&Value>) -> Result<Self, Error> {
        Ok(GetInfo)
    }
}

/// What an authenticator says about itself: every getInfo field of CTAP 2.1, 2.2 and 2.3
/// (keys 0x01 to 0x1F). Unknown keys are ignored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuthenticatorInfo {
    /// 0x01 versions (`U2F_V2`, `FIDO_2_0`, `FIDO_2_1_PRE`, `FIDO_2_1`, ...).
    pub versions: Vec<String>,
    /// 0x02 supported extensions.
    pub extensions: Option<Vec<String>>,
    /// 0x03 AAGUID.
    pub aaguid: [u8; 16],
    /// 0x04 options, in the order sent.
    pub options: Option<Vec<(String, bool)>>,
    /// 0x05 largest message the key accepts.
    pub max_msg_size: Option<u64>,
    /// 0x06 PIN/UV auth protocols, most preferred first.
    pub pin_uv_auth_protocols: Option<Vec<u8>>,
    /// 0x07 most credentials in an allow or exclude list.
    pub max_credential_count_in_list: Option<u64>,
    /// 0x08 longest credential id.
    pub max_credential_id_length: Option<u64>,
    /// 0x09 transports (`usb`, `nfc`, ...).
    pub transports: Option<Vec<String>>,
    /// 0x0A supported algorithms.
    pub algorithms: Option<Vec<PublicKeyCredentialParameters>>,
    /// 0x0B largest serialized large-blob array.
    pub max_serialized_large_blob_array: Option<u64>,
    /// 0x0C the PIN must be changed before use.
    pub force_pin_change: Option<bool>,
    /// 0x0D current minimum PIN length.
    pub min_pin_length: Option<u64>,
    /// 0x0E firmware version.
    pub firmware_version: Option<u64>,
    /// 0x0F largest credBlob.
    pub max_cred_blob_length: Option<u64>,
    /// 0x10 most RP ids for setMinPINLength.
    pub max_rpids_for_set_min_pin_length: Option<u64>,
    /// 0x11 preferred number of built-in UV attempts by the platform.
    pub preferred_platform_uv_attempts: Option<u64>,
    /// 0x12 user verification modality bit set (FIDO registry).
    pub uv_modality: Option<u64>,
    /// 0x13 certifications (e.g. `FIPS-CMVP-2` -> 2).
    pub certifications: Option<Vec<(String, u64)>>,
    /// 0x14 estimated remaining discoverable credentials.
    pub remaining_discoverable_credentials: Option<u64>,
    /// 0x15 vendor prototype authenticatorConfig command ids.
    pub vendor_prototype_config_commands: Option<Vec<u64>>,
    /// 0x16 (CTAP 2.2) attestation statement formats the key can produce, most preferred
    /// first (`packed`, `none`, ...).
    pub attestation_formats: Option<Vec<String>>,
    /// 0x17 (CTAP 2.2) built-in UV uses since the PIN was last entered.
    pub uv_count_since_last_pin_entry: Option<u64>,
    /// 0x18 (CTAP 2.2) reset needs a long touch (press and hold), not a tap.
    pub long_touch_for_reset: Option<bool>,
    /// 0x19 (CTAP 2.2) the device identifier, encrypted under a key derived from the
    /// persistent PinUvAuthToken (see [`AuthenticatorInfo::decrypt_identifier`]).
    pub enc_identifier: Option<Vec<u8>>,
    /// 0x1A (CTAP 2.2) transports over which authenticatorReset is accepted.
    pub transports_for_reset: Option<Vec<String>>,
    /// 0x1B (CTAP 2.3) a PIN complexity policy is in force.
    pub pin_complexity_policy: Option<bool>,
    /// 0x1C (CTAP 2.3) where the PIN complexity policy is described (a URL, as bytes).
    pub pin_complexity_policy_url: Option<Vec<u8>>,
    /// 0x1D (CTAP 2.3) longest PIN the key accepts, in code points.
    pub max_pin_length: Option<u64>,
    /// 0x1E (CTAP 2.3) the credential store state, encrypted like `enc_identifier`.
    pub enc_cred_store_state: Option<Vec<u8>>,
    /// 0x1F (CTAP 2.3) authenticatorConfig subcommands the key supports.
    pub authenticator_config_commands: Option<Vec<u64>>,
}

impl AuthenticatorInfo {
    /// The value of an option: `Some(true)` supported and on/set, `Some(false)`
    /// supported but off/unset, `None` not supported (absent).
    pub fn supports_option(&self, name: &str) -> Option<bool> {
        self.options
            .as_ref()?
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| *v)
    }

    /// True if the extension is listed.
    pub fn has_extension(&self, name: &str) -> bool {
        self.extensions
            .as_ref()
            .is_some_and(|e| e.iter().any(|x| x == name))
    }

    /// True if the key speaks CTAP 2.1 (`FIDO_2_1` in versions; `FIDO_2_1_PRE` alone
    /// does not count).
    pub fn is_ctap21(&self) -> bool {
        self.versions.iter().any(|v| v == "FIDO_2_1")
    }

    /// True if credential management is only offered as the CTAP 2.1-PRE prototype
    /// (option `credentialMgmtPreview` but not `credMgmt`): send it with command byte
    /// 0x41 (`CredentialManagement::prototype`).
    pub fn cred_mgmt_prototype_only(&self) -> bool {
        self.supports_option("credMgmt") != Some(true)
            && self.supports_option("credentialMgmtPreview") == Some(true)
    }

    /// True if bio enrollment is only offered as the CTAP 2.1-PRE prototype (option
    /// `userVerificationMgmtPreview` present but not `bioEnroll`): send it with command
    /// byte 0x40 (`BioEnrollment::prototype`).
    pub fn bio_enroll_prototype_only(&self) -> bool {
        self.supports_option("bioEnroll").is_none()
            && self
                .supports_option("userVerificationMgmtPreview")
                .is_some()
    }

    /// Whether authenticatorReset is accepted over `transport` (`usb`, `nfc`,
    /// `smart-card`, ...): `None` when the key does not say (0x1A absent, so assume yes).
    pub fn reset_allowed_over(&self, transport: &str) -> Option<bool> {
        self.transports_for_reset
            .as_ref()
            .map(|t| t.iter().any(|x| x == transport))
    }

    /// True if the key needs a long touch (press and hold) for reset (0x18).
    pub fn needs_long_touch_for_reset(&self) -> bool {
        self.long_touch_for_reset == Some(true)
    }

    /// Whether authenticatorConfig subcommand `n` is supported: `None` when the key
    /// does not list its subcommands (0x1F absent; gate on the options instead).
    pub fn supports_config_command(&self, n: u64) -> Option<bool> {
        self.authenticator_config_commands
            .as_ref()
            .map(|c| c.contains(&n))
    }

    /// Decrypts `encIdentifier` (0x19) with a persistent PinUvAuthToken: AES-128-CBC
    /// (IV = the first 16 bytes) under HKDF-SHA-256(salt = 32 zero bytes, IKM = the
    /// token, info = "encIdentifier", 16 bytes). `None` when the key sends no identifier;
    /// an error when the ciphertext is not whole blocks.
    pub fn decrypt_identifier(&self, ppuat: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        self.enc_identifier
            .as_deref()
            .map(|enc| decrypt_info_field(enc, ppuat, "encIdentifier"))
            .transpose()
    }

    /// Decrypts `encCredStoreState` (0x1E) like [`AuthenticatorInfo::decrypt_identifier`]
    /// with info = "encCredStoreState".
    pub fn decrypt_cred_store_state(&self, ppuat: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        self.enc_cred_store_state
            .as_deref()
            .map(|enc| decrypt_info_field(enc, ppuat, "encCredStoreState"))
            .transpose()
    }

    /// True if PIN/UV auth protocol `n` is listed.
    pub fn supports_pin_protocol(&self, n: u8) -> bool {
        self.pin_uv_auth_protocols
            .as_ref()
            .is_some_and(|p| p.contains(&n))
    }
}

/// The AES-128 key of an encrypted getInfo field: HKDF-SHA-256(salt = 32 zero bytes,
/// IKM = the persistent token, info, 16 bytes).
fn info_field_key(ppuat: &[u8], info: &'static str) -> zeroize::Zeroizing<[u8; 16]> {
    let mut key = zeroize::Zeroizing::new([0u8; 16]);
    // 16 bytes is always a valid HKDF-SHA-256 output length.
    let _ = hkdf::Hkdf::<sha2::Sha256>::new(Some(&[0u8; 32]), ppuat)
        .expand(info.as_bytes(), key.as_mut());
    key
}

/// Authenticator side of [`AuthenticatorInfo::decrypt_identifier`]: `iv` ‖
/// AES-128-CBC(`plaintext`) under the key derived from `ppuat` and `info`
/// (`"encIdentifier"` or `"encCredStoreState"`). `plaintext` must be whole 16-byte
/// blocks.
pub fn encrypt_info_field(
    ppuat: &[u8],
    info: &'static str,
    iv: [u8; 16],
    plaintext: &[u8],
) -> Result<Vec<u8>, Error> {
    use aes::cipher::{block_padding::NoPadding, BlockEncryptMut, KeyIvInit};
    if plaintext.is_empty() || !plaintext.len().is_multiple_of(16) {
        return Err(Error::Pin(crate::pin::PinError::UnalignedPlaintext {
            len: plaintext.len(),
        }));
    }
    let key = info_field_key(ppuat, info);
    let mut buf = plaintext.to_vec();
    let n = buf.len();
    cbc::Encryptor::<aes::Aes128>::new((&*key).into(), (&iv).into())
        .encrypt_padded_mut::<NoPadding>(&mut buf, n)
        .map_err(|_| Error::Pin(crate::pin::PinError::UnalignedPlaintext { len: n }))?;
    let mut out = iv.to_vec();
    out.extend_from_slice(&buf);
    Ok(out)
}

/// IV(16) ‖ AES-128-CBC ciphertext under HKDF-SHA-256(zero salt, ppuat, info, 16).
fn decrypt_info_field(enc: &[u8], ppuat: &[u8], info: &'static str) -> Result<Vec<u8>, Error> {
    use aes::cipher::{block_padding::NoPadding, BlockDecryptMut, KeyIvInit};
    let bad = || {
        Error::Pin(crate::pin::PinError::CiphertextLength {
            field: info,
            len: enc.len(),
            protocol: 2,
        })
    };
    if enc.len() < 32 || !enc.len().is_multiple_of(16) {
        return Err(bad());
    }
    let key = info_field_key(ppuat, info);
    let (iv, ct) = enc.split_at(16);
    let mut buf = ct.to_vec();
    cbc::Decryptor::<aes::Aes128>::new_from_slices(key.as_ref(), iv)
        .map_err(|_| bad())?
        .decrypt_padded_mut::<NoPadding>(&mut buf)
        .map_err(|_| bad())?;
    Ok(buf)
}

impl ResponseData for AuthenticatorInfo {
    fn from_cbor(value: Option<&Value>) -> Result<Self, Error> {
        let m = map_or_empty(value, "getInfo")?;
        let u = |key: i64, f: &'static str| opt(&m, key, |v| v.as_u64(f));
        Ok(AuthenticatorInfo {
            versions: req(&m, 1, "getInfo.versions", |v| {
                v.as_text_array("getInfo.versions")
            })?,
            extensions: opt(&m, 2, |v| v.as_text_array("getInfo.extensions"))?,
            aaguid: req(&m, 3, "getInfo.aaguid", |v| {
                v.as_byte_array("getInfo.aaguid")
            })?,
            options: opt(&m, 4, |v| bool_map(v, "getInfo.options"))?,
            max_msg_size: u(5, "getInfo.maxMsgSize")?,
            pin_uv_auth_protocols: opt(&m, 6, |v| {
                array_of(v, "getInfo.pinUvAuthProtocols", |p| {
                    p.as_u8("getInfo.pinUvAuthProtocols")
                })
            })?,
            max_credential_count_in_list: u(7, "getInfo.maxCredentialCountInList")?,
            max_credential_id_length: u(8, "getInfo.maxCredentialIdLength")?,
            transports: opt(&m, 9, |v| v.as_text_array("getInfo.transports"))?,
            algorithms: opt(&m, 10, |v| {
                array_of(
                    v,
                    "getInfo.algorithms",
                    PublicKeyCredentialParameters::from_value,
                )
            })?,
            max_serialized_large_blob_array: u(11, "getInfo.maxSerializedLargeBlobArray")?,
            force_pin_change: opt(&m, 12, |v| v.as_bool("getInfo.forcePINChange"))?,
            min_pin_length: u(13, "getInfo.minPINLength")?,
            firmware_version: u(14, "getInfo.firmwareVersion")?,
            max_cred_blob_length: u(15, "getInfo.maxCredBlobLength")?,
            max_rpids_for_set_min_pin_length: u(16, "getInfo.maxRPIDsForSetMinPINLength")?,
            preferred_platform_uv_attempts: u(17, "getInfo.preferredPlatformUvAttempts")?,
            uv_modality: u(18, "getInfo.uvModality")?,
            certifications: opt(&m, 19, |v| {
                v.as_map("getInfo.certifications")?
                    .entries()
                    .iter()
                    .map(|(k, v)| {
                        Ok((
                            k.as_text("getInfo.certifications")?.to_owned(),
                            v.as_u64("getInfo.certifications")?,
                        ))
                    })
                    .collect::<Result<Vec<_>, crate::cbor::CborError>>()
            })?,
            remaining_discoverable_credentials: u(20, "getInfo.remainingDiscoverableCredentials")?,
            vendor_prototype_config_commands: opt(&m, 21, |v| {
                array_of(v, "getInfo.vendorPrototypeConfigCommands", |c| {
                    c.as_u64("getInfo.vendorPrototypeConfigCommands")
                })
            })?,
            attestation_formats: opt(&m, 22, |v| v.as_text_array("getInfo.attestationFormats"))?,
            uv_count_since_last_pin_entry: u(23, "getInfo.uvCountSinceLastPinEntry")?,
            long_touch_for_reset: opt(&m, 24, |v| v.as_bool("getInfo.longTouchForReset"))?,
            enc_identifier: opt(&m, 25, |v| {
                v.as_bytes("getInfo.encIdentifier").map(<[u8]>::to_vec)
            })?,
            transports_for_reset: opt(&m, 26, |v| v.as_text_array("getInfo.transportsForReset"))?,
            pin_complexity_policy: opt(&m, 27, |v| v.as_bool("getInfo.pinComplexityPolicy"))?,
            pin_complexity_policy_url: opt(&m, 28, |v| {
                v.as_bytes("getInfo.pinComplexityPolicyURL")
                    .map(<[u8]>::to_vec)
            })?,
            max_pin_length: u(29, "getInfo.maxPINLength")?,
            enc_cred_store_state: opt(&m, 30, |v| {
                v.as_bytes("getInfo.encCredStoreState").map(<[u8]>::to_vec)
            })?,
            authenticator_config_commands: opt(&m, 31, |v| {
                array_of(v, "getInfo.authenticatorConfigCommands", |c| {
                    c.as_u64("getInfo.authenticatorConfigCommands")
                })
            })?,
        })
    }

    fn to_cbor(&self) -> Option<Value> {
        let texts =
            |t: &Vec<String>| Value::Array(t.iter().map(|s| Value::from(s.as_str())).collect());
        Some(
            MapBuilder::new()
                .put(1, texts(&self.versions))
                .put_opt(2, self.extensions.as_ref().map(texts))
                .put(3, self.aaguid.to_vec())
                .put_opt(
                    4,
                    self.options.as_ref().map(|o| {
                        Value::Map(
                            o.iter()
                                .map(|(k, v)| (Value::from(k.as_str()), Value::from(*v)))
                                .collect(),
                        )
                    }),
                )
                .put_opt(5, self.max_msg_size)
                .put_opt(
                    6,
                    self.pin_uv_auth_protocols
                        .as_ref()
                        .map(|p| Value::Array(p.iter().map(|&n| Value::from(n)).collect())),
                )
                .put_opt(7, self.max_credential_count_in_list)
                .put_opt(8, self.max_credential_id_length)
                .put_opt(9, self.transports.as_ref().map(texts))
                .put_opt(
                    10,
                    self.algorithms.as_ref().map(|a| {
                        Value::Array(
                            a.iter()
                                .map(PublicKeyCredentialParameters::to_value)
                                .collect(),
                        )
                    }),
                )
                .put_opt(11, self.max_serialized_large_blob_array)
                .put_opt(12, self.force_pin_change)
                .put_opt(13, self.min_pin_length)
                .put_opt(14, self.firmware_version)
                .put_opt(15, self.max_cred_blob_length)
                .put_opt(16, self.max_rpids_for_set_min_pin_length)
                .put_opt(17, self.preferred_platform_uv_attempts)
                .put_opt(18, self.uv_modality)
                .put_opt(
                    19,
                    self.certifications.as_ref().map(|c| {
                        Value::Map(
                            c.iter()
                                .map(|(k, v)| (Value::from(k.as_str()), Value::from(*v)))
                                .collect(),
                        )
                    }),
                )
                .put_opt(20, self.remaining_discoverable_credentials)
                .put_opt(
                    21,
                    self.vendor_prototype_config_commands
                        .as_ref()
                        .map(|c| Value::Array(c.iter().map(|&n| Value::from(n)).collect())),
                )
                .put_opt(22, self.attestation_formats.as_ref().map(texts))
                .put_opt(23, self.uv_count_since_last_pin_entry)
                .put_opt(24, self.long_touch_for_reset)
                .put_opt(25, self.enc_identifier.clone())
                .put_opt(26, self.transports_for_reset.as_ref().map(texts))
                .put_opt(27, self.pin_complexity_policy)
                .put_opt(28, self.pin_complexity_policy_url.clone())
                .put_opt(29, self.max_pin_length)
                .put_opt(30, self.enc_cred_store_state.clone())
                .put_opt(
                    31,
                    self.authenticator_config_commands
                        .as_ref()
                        .map(|c| Value::Array(c.iter().map(|&n| Value::from(n)).collect())),
                )
                .build(),
        )
    }
}
