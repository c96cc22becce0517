//! authenticatorGetAssertion (0x02) and authenticatorGetNextAssertion (0x08).

use super::{
    array_of, map_or_empty, opt, req, Command, CredentialDescriptor, MapBuilder, ResponseData,
    SecretBytes, UserEntity, CMD_GET_ASSERTION, CMD_GET_NEXT_ASSERTION,
};
use crate::cbor::{CborError, Value};
use crate::cose::CoseKey;
use crate::Error;

/// The `hmac-secret` input of getAssertion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HmacSecretInput {
    /// The platform's key-agreement public key.
    pub key_agreement: CoseKey,
    /// The encrypted salt(s).
    pub salt_enc: Vec<u8>,
    /// authenticate(shared secret, saltEnc).
    pub salt_auth: Vec<u8>,
    /// PIN/UV auth protocol (absent means 1).
    pub pin_uv_auth_protocol: Option<u8>,
}

impl HmacSecretInput {
    fn from_value(v: &Value) -> Result<Self, Error> {
        let m = v.as_map("getAssertion.extensions.hmac-secret")?;
        Ok(HmacSecretInput {
            key_agreement: req(
                &m,
                1,
                "getAssertion.extensions.hmac-secret.keyAgreement",
                |v| CoseKey::from_value(v).map_err(Error::from),
            )?,
            salt_enc: req(&m, 2, "getAssertion.extensions.hmac-secret.saltEnc", |v| {
                v.as_bytes("getAssertion.extensions.hmac-secret.saltEnc")
                    .map(<[u8]>::to_vec)
            })?,
            salt_auth: req(&m, 3, "getAssertion.extensions.hmac-secret.saltAuth", |v| {
                v.as_bytes("getAssertion.extensions.hmac-secret.saltAuth")
                    .map(<[u8]>::to_vec)
            })?,
            pin_uv_auth_protocol: opt(&m, 4, |v| {
                v.as_u8("getAssertion.extensions.hmac-secret.pinUvAuthProtocol")
            })?,
        })
    }
    fn to_value(&self) -> Value {
        MapBuilder::new()
            .put(1, self.key_agreement.to_value())
            .put(2, self.salt_enc.clone())
            .put(3, self.salt_auth.clone())
            .put_opt(4, self.pin_uv_auth_protocol)
            .build()
    }
}

/// Extension inputs of getAssertion that CTAP 2.1 defines; others are kept as sent.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GetAssertionExtensions {
    /// `hmac-secret`.
    pub hmac_secret: Option<HmacSecretInput>,
    /// `credBlob`: return the credential's blob.
    pub cred_blob: Option<bool>,
    /// `largeBlobKey`: return the credential's large-blob key.
    pub large_blob_key: Option<bool>,
    /// Any other extension, by identifier, value as sent.
    pub other: Vec<(String, Value)>,
}

impl GetAssertionExtensions {
    /// Reads the extensions map.
    pub fn from_value(v: &Value) -> Result<Self, Error> {
        const F: &str = "getAssertion.extensions";
        let mut out = GetAssertionExtensions::default();
        for (k, v) in v.as_map(F)?.entries() {
            match k.as_text(F)? {
                "hmac-secret" => out.hmac_secret = Some(HmacSecretInput::from_value(v)?),
                "credBlob" => out.cred_blob = Some(v.as_bool("getAssertion.extensions.credBlob")?),
                "largeBlobKey" => {
                    out.large_blob_key = Some(v.as_bool("getAssertion.extensions.largeBlobKey")?)
                }
                other => out.other.push((other.to_owned(), v.clone())),
            }
        }
        Ok(out)
    }

    /// As a CBOR map.
    pub fn to_value(&self) -> Value {
        let mut b = MapBuilder::new()
            .put_text_opt(
                "hmac-secret",
                self.hmac_secret.as_ref().map(|h| h.to_value()),
            )
            .put_text_opt("credBlob", self.cred_blob)
            .put_text_opt("largeBlobKey", self.large_blob_key);
        for (k, v) in &self.other {
            b = b.put_text(k, v.clone());
        }
        b.build()
    }
}

/// getAssertion options.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GetAssertionOptions {
    /// User presence (default true).
    pub up: Option<bool>,
    /// User verification (CTAP 2.0 style).
    pub uv: Option<bool>,
}

impl GetAssertionOptions {
    fn from_value(v: &Value) -> Result<Self, CborError> {
        let m = v.as_map("getAssertion.options")?;
        let b = |k: &str, f: &'static str| m.get_text(k).map(|v| v.as_bool(f)).transpose();
        Ok(GetAssertionOptions {
            up: b("up", "getAssertion.options.up")?,
            uv: b("uv", "getAssertion.options.uv")?,
        })
    }
    fn to_value(self) -> Option<Value> {
        let b = MapBuilder::new()
            .put_text_opt("up", self.up)
            .put_text_opt("uv", self.uv);
        (!b.is_empty()).then(|| b.build())
    }
}

/// authenticatorGetAssertion request.
#[derive(Clone, Debug, PartialEq)]
pub struct GetAssertion {
    /// The RP id.
    pub rp_id: String,
    /// SHA-256 of the clientDataJSON.
    pub client_data_hash: [u8; 32],
    /// Acceptable credentials (absent: discoverable credentials of the RP).
    pub allow_list: Option<Vec<CredentialDescriptor>>,
    /// Extension inputs.
    pub extensions: Option<GetAssertionExtensions>,
    /// Options (absent when all are unset).
    pub options: GetAssertionOptions,
    /// PIN/UV auth parameter (authenticate(token, clientDataHash)).
    pub pin_uv_auth_param: Option<Vec<u8>>,
    /// PIN/UV auth protocol (1 or 2).
    pub pin_uv_auth_protocol: Option<u8>,
}

impl GetAssertion {
    /// A request with only the required fields.
    pub fn new(rp_id: impl Into<String>, client_data_hash: [u8; 32]) -> Self {
        GetAssertion {
            rp_id: rp_id.into(),
            client_data_hash,
            allow_list: None,
            extensions: None,
            options: GetAssertionOptions::default(),
            pin_uv_auth_param: None,
            pin_uv_auth_protocol: None,
        }
    }
}

impl Command for GetAssertion {
    const CMD: u8 = CMD_GET_ASSERTION;
    type Response = GetAssertionResponse;

    fn params(&self) -> Option<Value> {
        Some(
            MapBuilder::new()
                .put(1, self.rp_id.as_str())
                .put(2, self.client_data_hash.to_vec())
                .put_opt(
                    3,
                    self.allow_list.as_ref().map(|l| {
                        Value::Array(l.iter().map(CredentialDescriptor::to_value).collect())
                    }),
                )
                .put_opt(4, self.extensions.as_ref().map(|e| e.to_value()))
                .put_opt(5, self.options.to_value())
                .put_opt(6, self.pin_uv_auth_param.clone())
                .put_opt(7, self.pin_uv_auth_protocol)
                .build(),
        )
    }

    fn decode_params(params: Option<&Value>) -> Result<Self, Error> {
        let m = map_or_empty(params, "getAssertion")?;
        Ok(GetAssertion {
            rp_id: req(&m, 1, "getAssertion.rpId", |v| {
                v.as_text("getAssertion.rpId").map(str::to_owned)
            })?,
            client_data_hash: req(&m, 2, "getAssertion.clientDataHash", |v| {
                v.as_byte_array("getAssertion.clientDataHash")
            })?,
            allow_list: opt(&m, 3, |v| {
                array_of(
                    v,
                    "getAssertion.allowList",
                    CredentialDescriptor::from_value,
                )
            })?,
            extensions: opt(&m, 4, GetAssertionExtensions::from_value)?,
            options: opt(&m, 5, GetAssertionOptions::from_value)?.unwrap_or_default(),
            pin_uv_auth_param: opt(&m, 6, |v| {
                v.as_bytes("getAssertion.pinUvAuthParam")
                    .map(<[u8]>::to_vec)
            })?,
            pin_uv_auth_protocol: opt(&m, 7, |v| v.as_u8("getAssertion.pinUvAuthProtocol"))?,
        })
    }
}

/// authenticatorGetAssertion / GetNextAssertion response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GetAssertionResponse {
    /// The credential used (may be absent if the allow list had exactly one entry).
    pub credential: Option<CredentialDescriptor>,
    /// Raw authenticator data (parsed by [`crate::authdata`]).
    pub auth_data: Vec<u8>,
    /// Signature over authData || clientDataHash.
    pub signature: Vec<u8>,
    /// The user (discoverable credentials only).
    pub user: Option<UserEntity>,
    /// How many credentials matched (first response only).
    pub number_of_credentials: Option<u32>,
    /// True if the user picked the credential on the key.
    pub user_selected: Option<bool>,
    /// The credential's large-blob key (secret).
    pub large_blob_key: Option<SecretBytes>,
}

impl ResponseData for GetAssertionResponse {
    fn from_cbor(value: Option<&Value>) -> Result<Self, Error> {
        let m = map_or_empty(value, "getAssertion response")?;
        Ok(GetAssertionResponse {
            credential: opt(&m, 1, CredentialDescriptor::from_value)?,
            auth_data: req(&m, 2, "getAssertion.authData", |v| {
                v.as_bytes("getAssertion.authData").map(<[u8]>::to_vec)
            })?,
            signature: req(&m, 3, "getAssertion.signature", |v| {
                v.as_bytes("getAssertion.signature").map(<[u8]>::to_vec)
            })?,
            user: opt(&m, 4, UserEntity::from_value)?,
            number_of_credentials: opt(&m, 5, |v| v.as_u32("getAssertion.numberOfCredentials"))?,
            user_selected: opt(&m, 6, |v| v.as_bool("getAssertion.userSelected"))?,
            large_blob_key: opt(&m, 7, |v| {
                v.as_bytes("getAssertion.largeBlobKey")
                    .map(SecretBytes::from)
            })?,
        })
    }

    fn to_cbor(&self) -> Option<Value> {
        Some(
            MapBuilder::new()
                .put_opt(1, self.credential.as_ref().map(|c| c.to_value()))
                .put(2, self.auth_data.clone())
                .put(3, self.signature.clone())
                .put_opt(4, self.user.as_ref().map(|u| u.to_value()))
                .put_opt(5, self.number_of_credentials)
                .put_opt(6, self.user_selected)
                .put_opt(7, self.large_blob_key.as_ref())
                .build(),
        )
    }
}

/// authenticatorGetNextAssertion request (no parameters).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GetNextAssertion;

impl Command for GetNextAssertion {
    const CMD: u8 = CMD_GET_NEXT_ASSERTION;
    type Response = GetAssertionResponse;

    fn params(&self) -> Option<Value> {
        None
    }
    fn decode_params(_params: Option<&Value>) -> Result<Self, Error> {
        Ok(GetNextAssertion)
    }
}
