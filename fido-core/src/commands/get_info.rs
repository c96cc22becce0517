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

/// What an authenticator says about itself: every CTAP 2.1 getInfo field.
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

    /// True if PIN/UV auth protocol `n` is listed.
    pub fn supports_pin_protocol(&self, n: u8) -> bool {
        self.pin_uv_auth_protocols
            .as_ref()
            .is_some_and(|p| p.contains(&n))
    }
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
                .build(),
        )
    }
}
