//! authenticatorClientPIN (0x06): every CTAP 2.1 subcommand.

use super::{
    map_or_empty, opt, req, Command, MapBuilder, ResponseData, SecretBytes, CMD_CLIENT_PIN,
};
use crate::cbor::{MapRef, Value};
use crate::cose::CoseKey;
use crate::pin::Permissions;
use crate::{CtapStatus, Error};

/// authenticatorClientPIN request, one variant per subcommand.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientPin {
    /// getPINRetries (0x01).
    GetPinRetries {
        /// PIN/UV auth protocol (optional for this subcommand).
        pin_uv_auth_protocol: Option<u8>,
    },
    /// getKeyAgreement (0x02).
    GetKeyAgreement {
        /// PIN/UV auth protocol.
        pin_uv_auth_protocol: u8,
    },
    /// setPIN (0x03).
    SetPin {
        /// PIN/UV auth protocol.
        pin_uv_auth_protocol: u8,
        /// The platform's key-agreement public key.
        key_agreement: CoseKey,
        /// The encrypted, padded new PIN.
        new_pin_enc: Vec<u8>,
        /// authenticate(shared secret, newPinEnc).
        pin_uv_auth_param: Vec<u8>,
    },
    /// changePIN (0x04).
    ChangePin {
        /// PIN/UV auth protocol.
        pin_uv_auth_protocol: u8,
        /// The platform's key-agreement public key.
        key_agreement: CoseKey,
        /// The encrypted hash of the current PIN.
        pin_hash_enc: Vec<u8>,
        /// The encrypted, padded new PIN.
        new_pin_enc: Vec<u8>,
        /// authenticate(shared secret, newPinEnc || pinHashEnc).
        pin_uv_auth_param: Vec<u8>,
    },
    /// getPinToken (0x05), the CTAP 2.0 way (no permissions).
    GetPinToken {
        /// PIN/UV auth protocol.
        pin_uv_auth_protocol: u8,
        /// The platform's key-agreement public key.
        key_agreement: CoseKey,
        /// The encrypted PIN hash.
        pin_hash_enc: Vec<u8>,
    },
    /// getPinUvAuthTokenUsingUvWithPermissions (0x06).
    GetPinUvAuthTokenUsingUvWithPermissions {
        /// PIN/UV auth protocol.
        pin_uv_auth_protocol: u8,
        /// The platform's key-agreement public key.
        key_agreement: CoseKey,
        /// Permissions asked for.
        permissions: Permissions,
        /// RP id the token is bound to (needed for mc/ga).
        rp_id: Option<String>,
    },
    /// getUVRetries (0x07).
    GetUvRetries {
        /// PIN/UV auth protocol (optional for this subcommand).
        pin_uv_auth_protocol: Option<u8>,
    },
    /// getPinUvAuthTokenUsingPinWithPermissions (0x09).
    GetPinUvAuthTokenUsingPinWithPermissions {
        /// PIN/UV auth protocol.
        pin_uv_auth_protocol: u8,
        /// The platform's key-agreement public key.
        key_agreement: CoseKey,
        /// The encrypted PIN hash.
        pin_hash_enc: Vec<u8>,
        /// Permissions asked for.
        permissions: Permissions,
        /// RP id the token is bound to (needed for mc/ga).
        rp_id: Option<String>,
    },
}

impl ClientPin {
    /// The subCommand byte.
    pub fn sub_command(&self) -> u8 {
        match self {
            ClientPin::GetPinRetries { .. } => 0x01,
            ClientPin::GetKeyAgreement { .. } => 0x02,
            ClientPin::SetPin { .. } => 0x03,
            ClientPin::ChangePin { .. } => 0x04,
            ClientPin::GetPinToken { .. } => 0x05,
            ClientPin::GetPinUvAuthTokenUsingUvWithPermissions { .. } => 0x06,
            ClientPin::GetUvRetries { .. } => 0x07,
            ClientPin::GetPinUvAuthTokenUsingPinWithPermissions { .. } => 0x09,
        }
    }
}

fn protocol(m: &MapRef<'_>) -> Result<u8, Error> {
    Ok(req(m, 1, "clientPIN.pinUvAuthProtocol", |v| {
        v.as_u8("clientPIN.pinUvAuthProtocol")
    })?)
}
fn key_agreement(m: &MapRef<'_>) -> Result<CoseKey, Error> {
    req(m, 3, "clientPIN.keyAgreement", |v| {
        CoseKey::from_value(v).map_err(Error::from)
    })
}
fn bytes(m: &MapRef<'_>, key: i64, field: &'static str) -> Result<Vec<u8>, Error> {
    Ok(req(m, key, field, |v| {
        v.as_bytes(field).map(<[u8]>::to_vec)
    })?)
}
fn permissions(m: &MapRef<'_>) -> Result<Permissions, Error> {
    Ok(req(m, 9, "clientPIN.permissions", |v| {
        v.as_u8("clientPIN.permissions").map(Permissions::from_bits)
    })?)
}
fn rp_id(m: &MapRef<'_>) -> Result<Option<String>, Error> {
    Ok(opt(m, 10, |v| {
        v.as_text("clientPIN.rpId").map(str::to_owned)
    })?)
}

impl Command for ClientPin {
    const CMD: u8 = CMD_CLIENT_PIN;
    type Response = ClientPinResponse;

    fn params(&self) -> Option<Value> {
        let b = MapBuilder::new().put(2, self.sub_command());
        let b = match self {
            ClientPin::GetPinRetries {
                pin_uv_auth_protocol,
            }
            | ClientPin::GetUvRetries {
                pin_uv_auth_protocol,
            } => b.put_opt(1, *pin_uv_auth_protocol),
            ClientPin::GetKeyAgreement {
                pin_uv_auth_protocol,
            } => b.put(1, *pin_uv_auth_protocol),
            ClientPin::SetPin {
                pin_uv_auth_protocol,
                key_agreement,
                new_pin_enc,
                pin_uv_auth_param,
            } => b
                .put(1, *pin_uv_auth_protocol)
                .put(3, key_agreement.to_value())
                .put(4, pin_uv_auth_param.clone())
                .put(5, new_pin_enc.clone()),
            ClientPin::ChangePin {
                pin_uv_auth_protocol,
                key_agreement,
                pin_hash_enc,
                new_pin_enc,
                pin_uv_auth_param,
            } => b
                .put(1, *pin_uv_auth_protocol)
                .put(3, key_agreement.to_value())
                .put(4, pin_uv_auth_param.clone())
                .put(5, new_pin_enc.clone())
                .put(6, pin_hash_enc.clone()),
            ClientPin::GetPinToken {
                pin_uv_auth_protocol,
                key_agreement,
                pin_hash_enc,
            } => b
                .put(1, *pin_uv_auth_protocol)
                .put(3, key_agreement.to_value())
                .put(6, pin_hash_enc.clone()),
            ClientPin::GetPinUvAuthTokenUsingUvWithPermissions {
                pin_uv_auth_protocol,
                key_agreement,
                permissions,
                rp_id,
            } => b
                .put(1, *pin_uv_auth_protocol)
                .put(3, key_agreement.to_value())
                .put(9, permissions.bits())
                .put_opt(10, rp_id.as_deref()),
            ClientPin::GetPinUvAuthTokenUsingPinWithPermissions {
                pin_uv_auth_protocol,
                key_agreement,
                pin_hash_enc,
                permissions,
                rp_id,
            } => b
                .put(1, *pin_uv_auth_protocol)
                .put(3, key_agreement.to_value())
                .put(6, pin_hash_enc.clone())
                .put(9, permissions.bits())
                .put_opt(10, rp_id.as_deref()),
        };
        Some(b.build())
    }

    /// Reads the request; an unknown subcommand gives
    /// `Error::Ctap(CtapStatus::InvalidSubcommand)`.
    fn decode_params(params: Option<&Value>) -> Result<Self, Error> {
        let m = map_or_empty(params, "clientPIN")?;
        let sub = req(&m, 2, "clientPIN.subCommand", |v| {
            v.as_u64("clientPIN.subCommand")
        })?;
        let opt_protocol = || -> Result<Option<u8>, Error> {
            Ok(opt(&m, 1, |v| v.as_u8("clientPIN.pinUvAuthProtocol"))?)
        };
        Ok(match sub {
            0x01 => ClientPin::GetPinRetries {
                pin_uv_auth_protocol: opt_protocol()?,
            },
            0x02 => ClientPin::GetKeyAgreement {
                pin_uv_auth_protocol: protocol(&m)?,
            },
            0x03 => ClientPin::SetPin {
                pin_uv_auth_protocol: protocol(&m)?,
                key_agreement: key_agreement(&m)?,
                new_pin_enc: bytes(&m, 5, "clientPIN.newPinEnc")?,
                pin_uv_auth_param: bytes(&m, 4, "clientPIN.pinUvAuthParam")?,
            },
            0x04 => ClientPin::ChangePin {
                pin_uv_auth_protocol: protocol(&m)?,
                key_agreement: key_agreement(&m)?,
                pin_hash_enc: bytes(&m, 6, "clientPIN.pinHashEnc")?,
                new_pin_enc: bytes(&m, 5, "clientPIN.newPinEnc")?,
                pin_uv_auth_param: bytes(&m, 4, "clientPIN.pinUvAuthParam")?,
            },
            0x05 => ClientPin::GetPinToken {
                pin_uv_auth_protocol: protocol(&m)?,
                key_agreement: key_agreement(&m)?,
                pin_hash_enc: bytes(&m, 6, "clientPIN.pinHashEnc")?,
            },
            0x06 => ClientPin::GetPinUvAuthTokenUsingUvWithPermissions {
                pin_uv_auth_protocol: protocol(&m)?,
                key_agreement: key_agreement(&m)?,
                permissions: permissions(&m)?,
                rp_id: rp_id(&m)?,
            },
            0x07 => ClientPin::GetUvRetries {
                pin_uv_auth_protocol: opt_protocol()?,
            },
            0x09 => ClientPin::GetPinUvAuthTokenUsingPinWithPermissions {
                pin_uv_auth_protocol: protocol(&m)?,
                key_agreement: key_agreement(&m)?,
                pin_hash_enc: bytes(&m, 6, "clientPIN.pinHashEnc")?,
                permissions: permissions(&m)?,
                rp_id: rp_id(&m)?,
            },
            _ => return Err(Error::Ctap(CtapStatus::InvalidSubcommand)),
        })
    }
}

/// authenticatorClientPIN response; which fields are present depends on the
/// subcommand (setPIN and changePIN answer with none).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientPinResponse {
    /// 0x01 the authenticator's key-agreement public key (getKeyAgreement).
    pub key_agreement: Option<CoseKey>,
    /// 0x02 the encrypted PIN/UV auth token (secret; redacted in `Debug`).
    pub pin_uv_auth_token: Option<SecretBytes>,
    /// 0x03 PIN retries left.
    pub pin_retries: Option<u32>,
    /// 0x04 a power cycle is needed before the next PIN attempt.
    pub power_cycle_state: Option<bool>,
    /// 0x05 built-in UV retries left.
    pub uv_retries: Option<u32>,
}

impl ResponseData for ClientPinResponse {
    fn from_cbor(value: Option<&Value>) -> Result<Self, Error> {
        let m = map_or_empty(value, "clientPIN response")?;
        Ok(ClientPinResponse {
            key_agreement: opt(&m, 1, |v| CoseKey::from_value(v).map_err(Error::from))?,
            pin_uv_auth_token: opt(&m, 2, |v| {
                v.as_bytes("clientPIN.pinUvAuthToken")
                    .map(SecretBytes::from)
            })?,
            pin_retries: opt(&m, 3, |v| v.as_u32("clientPIN.pinRetries"))?,
            power_cycle_state: opt(&m, 4, |v| v.as_bool("clientPIN.powerCycleState"))?,
            uv_retries: opt(&m, 5, |v| v.as_u32("clientPIN.uvRetries"))?,
        })
    }

    fn to_cbor(&self) -> Option<Value> {
        let b = MapBuilder::new()
            .put_opt(1, self.key_agreement.as_ref().map(CoseKey::to_value))
            .put_opt(2, self.pin_uv_auth_token.as_ref())
            .put_opt(3, self.pin_retries)
            .put_opt(4, self.power_cycle_state)
            .put_opt(5, self.uv_retries);
        (!b.is_empty()).then(|| b.build())
    }
}
