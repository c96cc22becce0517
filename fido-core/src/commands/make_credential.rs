//! authenticatorMakeCredential (0x01).

use super::{
    array_of, map_or_empty, opt, req, Command, CredentialDescriptor, MapBuilder,
    PublicKeyCredentialParameters, ResponseData, RpEntity, SecretBytes, UserEntity,
    CMD_MAKE_CREDENTIAL,
};
use crate::cbor::{CborError, Value};
use crate::Error;

/// Extension inputs of makeCredential that CTAP 2.1 defines; others are kept as sent.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MakeCredentialExtensions {
    /// `credProtect`: 1 userVerificationOptional, 2 ...WithCredentialIDList, 3 ...Required.
    pub cred_protect: Option<u8>,
    /// `hmac-secret`: create the credential with a CredRandom.
    pub hmac_secret: Option<bool>,
    /// `minPinLength`: ask for the minimum PIN length in the authenticator data.
    pub min_pin_length: Option<bool>,
    /// `credBlob`: a small blob stored with the credential.
    pub cred_blob: Option<Vec<u8>>,
    /// `largeBlobKey`: ask for the credential's large-blob key.
    pub large_blob_key: Option<bool>,
    /// Any other extension, by identifier, value as sent.
    pub other: Vec<(String, Value)>,
}

impl MakeCredentialExtensions {
    /// True if no extension is set.
    pub fn is_empty(&self) -> bool {
        self.cred_protect.is_none()
            && self.hmac_secret.is_none()
            && self.min_pin_length.is_none()
            && self.cred_blob.is_none()
            && self.large_blob_key.is_none()
            && self.other.is_empty()
    }

    /// Reads the extensions map.
    pub fn from_value(v: &Value) -> Result<Self, CborError> {
        const F: &str = "makeCredential.extensions";
        let mut out = MakeCredentialExtensions::default();
        for (k, v) in v.as_map(F)?.entries() {
            match k.as_text(F)? {
                "credProtect" => {
                    out.cred_protect = Some(v.as_u8("makeCredential.extensions.credProtect")?)
                }
                "hmac-secret" => {
                    out.hmac_secret = Some(v.as_bool("makeCredential.extensions.hmac-secret")?)
                }
                "minPinLength" => {
                    out.min_pin_length = Some(v.as_bool("makeCredential.extensions.minPinLength")?)
                }
                "credBlob" => {
                    out.cred_blob = Some(v.as_bytes("makeCredential.extensions.credBlob")?.to_vec())
                }
                "largeBlobKey" => {
                    out.large_blob_key = Some(v.as_bool("makeCredential.extensions.largeBlobKey")?)
                }
                other => out.other.push((other.to_owned(), v.clone())),
            }
        }
        Ok(out)
    }

    /// As a CBOR map.
    pub fn to_value(&self) -> Value {
        let mut b = MapBuilder::new()
            .put_text_opt("credProtect", self.cred_protect)
            .put_text_opt("hmac-secret", self.hmac_secret)
            .put_text_opt("minPinLength", self.min_pin_length)
            .put_text_opt("credBlob", self.cred_blob.clone())
            .put_text_opt("largeBlobKey", self.large_blob_key);
        for (k, v) in &self.other {
            b = b.put_text(k, v.clone());
        }
        b.build()
    }
}

/// makeCredential options.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MakeCredentialOptions {
    /// Resident (discoverable) key.
    pub rk: Option<bool>,
    /// User presence (must not be false in makeCredential; kept as sent).
    pub up: Option<bool>,
    /// User verification (CTAP 2.0 style; 2.1 platforms use pinUvAuthParam).
    pub uv: Option<bool>,
}

impl MakeCredentialOptions {
    fn from_value(v: &Value) -> Result<Self, CborError> {
        const F: &str = "makeCredential.options";
        let m = v.as_map(F)?;
        let b = |k: &str, f: &'static str| m.get_text(k).map(|v| v.as_bool(f)).transpose();
        Ok(MakeCredentialOptions {
            rk: b("rk", "makeCredential.options.rk")?,
            up: b("up", "makeCredential.options.up")?,
            uv: b("uv", "makeCredential.options.uv")?,
        })
    }
    fn to_value(self) -> Option<Value> {
        let b = MapBuilder::new()
            .put_text_opt("rk", self.rk)
            .put_text_opt("up", self.up)
            .put_text_opt("uv", self.uv);
        (!b.is_empty()).then(|| b.build())
    }
}

/// authenticatorMakeCredential request.
#[derive(Clone, Debug, PartialEq)]
pub struct MakeCredential {
    /// SHA-256 of the clientDataJSON.
    pub client_data_hash: [u8; 32],
    /// The relying party.
    pub rp: RpEntity,
    /// The user account.
    pub user: UserEntity,
    /// Acceptable algorithms, most preferred first.
    pub pub_key_cred_params: Vec<PublicKeyCredentialParameters>,
    /// Credentials that must not already be on the key.
    pub exclude_list: Option<Vec<CredentialDescriptor>>,
    /// Extension inputs.
    pub extensions: Option<MakeCredentialExtensions>,
    /// Options (absent when all are unset).
    pub options: MakeCredentialOptions,
    /// PIN/UV auth parameter (authenticate(token, clientDataHash)).
    pub pin_uv_auth_param: Option<Vec<u8>>,
    /// PIN/UV auth protocol (1 or 2).
    pub pin_uv_auth_protocol: Option<u8>,
    /// Enterprise attestation (1 vendor-facilitated, 2 platform-managed).
    pub enterprise_attestation: Option<u8>,
}

impl MakeCredential {
    /// A request with only the required fields.
    pub fn new(
        client_data_hash: [u8; 32],
        rp: RpEntity,
        user: UserEntity,
        pub_key_cred_params: Vec<PublicKeyCredentialParameters>,
    ) -> Self {
        MakeCredential {
            client_data_hash,
            rp,
            user,
            pub_key_cred_params,
            exclude_list: None,
            extensions: None,
            options: MakeCredentialOptions::default(),
            pin_uv_auth_param: None,
            pin_uv_auth_protocol: None,
            enterprise_attestation: None,
        }
    }
}

impl Command for MakeCredential {
    const CMD: u8 = CMD_MAKE_CREDENTIAL;
    type Response = MakeCredentialResponse;

    fn params(&self) -> Option<Value> {
        Some(
            MapBuilder::new()
                .put(1, self.client_data_hash.to_vec())
                .put(2, self.rp.to_value())
                .put(3, self.user.to_value())
                .put(
                    4,
                    Value::Array(
                        self.pub_key_cred_params
                            .iter()
                            .map(PublicKeyCredentialParameters::to_value)
                            .collect(),
                    ),
                )
                .put_opt(
                    5,
                    self.exclude_list.as_ref().map(|l| {
                        Value::Array(l.iter().map(CredentialDescriptor::to_value).collect())
                    }),
                )
                .put_opt(6, self.extensions.as_ref().map(|e| e.to_value()))
                .put_opt(7, self.options.to_value())
                .put_opt(8, self.pin_uv_auth_param.clone())
                .put_opt(9, self.pin_uv_auth_protocol)
                .put_opt(10, self.enterprise_attestation)
                .build(),
        )
    }

    fn decode_params(params: Option<&Value>) -> Result<Self, Error> {
        let m = map_or_empty(params, "makeCredential")?;
        Ok(MakeCredential {
            client_data_hash: req(&m, 1, "makeCredential.clientDataHash", |v| {
                v.as_byte_array("makeCredential.clientDataHash")
            })?,
            rp: req(&m, 2, "makeCredential.rp", RpEntity::from_value)?,
            user: req(&m, 3, "makeCredential.user", UserEntity::from_value)?,
            pub_key_cred_params: req(&m, 4, "makeCredential.pubKeyCredParams", |v| {
                array_of(
                    v,
                    "makeCredential.pubKeyCredParams",
                    PublicKeyCredentialParameters::from_value,
                )
            })?,
            exclude_list: opt(&m, 5, |v| {
                array_of(
                    v,
                    "makeCredential.excludeList",
                    CredentialDescriptor::from_value,
                )
            })?,
            extensions: opt(&m, 6, MakeCredentialExtensions::from_value)?,
            options: opt(&m, 7, MakeCredentialOptions::from_value)?.unwrap_or_default(),
            pin_uv_auth_param: opt(&m, 8, |v| {
                v.as_bytes("makeCredential.pinUvAuthParam")
                    .map(<[u8]>::to_vec)
            })?,
            pin_uv_auth_protocol: opt(&m, 9, |v| v.as_u8("makeCredential.pinUvAuthProtocol"))?,
            enterprise_attestation: opt(&m, 10, |v| {
                v.as_u8("makeCredential.enterpriseAttestation")
            })?,
        })
    }
}

/// authenticatorMakeCredential response (the attestation object parts).
#[derive(Clone, Debug, PartialEq)]
pub struct MakeCredentialResponse {
    /// Attestation statement format (`packed`, `fido-u2f`, `none`, ...).
    pub fmt: String,
    /// Raw authenticator data (parsed by [`crate::authdata`]).
    pub auth_data: Vec<u8>,
    /// The attestation statement, as sent (interpreted by [`crate::attestation`]).
    pub att_stmt: Value,
    /// True if an enterprise attestation was returned.
    pub ep_att: Option<bool>,
    /// The credential's large-blob key (secret).
    pub large_blob_key: Option<SecretBytes>,
}

impl ResponseData for MakeCredentialResponse {
    fn from_cbor(value: Option<&Value>) -> Result<Self, Error> {
        let m = map_or_empty(value, "makeCredential response")?;
        let att_stmt = req(&m, 3, "makeCredential.attStmt", |v| {
            v.as_map("makeCredential.attStmt").map(|_| v.clone())
        })?;
        Ok(MakeCredentialResponse {
            fmt: req(&m, 1, "makeCredential.fmt", |v| {
                v.as_text("makeCredential.fmt").map(str::to_owned)
            })?,
            auth_data: req(&m, 2, "makeCredential.authData", |v| {
                v.as_bytes("makeCredential.authData").map(<[u8]>::to_vec)
            })?,
            att_stmt,
            ep_att: opt(&m, 4, |v| v.as_bool("makeCredential.epAtt"))?,
            large_blob_key: opt(&m, 5, |v| {
                v.as_bytes("makeCredential.largeBlobKey")
                    .map(SecretBytes::from)
            })?,
        })
    }

    fn to_cbor(&self) -> Option<Value> {
        Some(
            MapBuilder::new()
                .put(1, self.fmt.as_str())
                .put(2, self.auth_data.clone())
                .put(3, self.att_stmt.clone())
                .put_opt(4, self.ep_att)
                .put_opt(5, self.large_blob_key.as_ref())
                .build(),
        )
    }
}
