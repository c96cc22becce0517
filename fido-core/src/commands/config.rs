//! authenticatorConfig (0x0D).

use super::{map_or_empty, opt, params_bytes, req, Command, MapBuilder, CMD_CONFIG};
use crate::cbor::{CborError, Value};
use crate::{CtapStatus, Error};

/// An authenticatorConfig subcommand with its subCommandParams.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigSubCommand {
    /// enableEnterpriseAttestation (0x01).
    EnableEnterpriseAttestation,
    /// toggleAlwaysUv (0x02).
    ToggleAlwaysUv,
    /// setMinPINLength (0x03).
    SetMinPinLength {
        /// The new minimum (can only grow).
        new_min_pin_length: Option<u8>,
        /// RP ids that may read the minimum through the minPinLength extension.
        min_pin_length_rpids: Option<Vec<String>>,
        /// Force a PIN change before the next use.
        force_change_pin: Option<bool>,
    },
    /// vendorPrototype (0xFF).
    VendorPrototype {
        /// The vendor command id (listed in getInfo vendorPrototypeConfigCommands).
        vendor_command_id: u64,
    },
}

impl ConfigSubCommand {
    /// The subCommand byte.
    pub fn byte(&self) -> u8 {
        match self {
            ConfigSubCommand::EnableEnterpriseAttestation => 0x01,
            ConfigSubCommand::ToggleAlwaysUv => 0x02,
            ConfigSubCommand::SetMinPinLength { .. } => 0x03,
            ConfigSubCommand::VendorPrototype { .. } => 0xFF,
        }
    }

    /// The subCommandParams map, if this subcommand has one.
    pub fn params(&self) -> Option<Value> {
        match self {
            ConfigSubCommand::SetMinPinLength {
                new_min_pin_length,
                min_pin_length_rpids,
                force_change_pin,
            } => {
                let b = MapBuilder::new()
                    .put_opt(1, *new_min_pin_length)
                    .put_opt(
                        2,
                        min_pin_length_rpids.as_ref().map(|r| {
                            Value::Array(r.iter().map(|s| Value::from(s.as_str())).collect())
                        }),
                    )
                    .put_opt(3, *force_change_pin);
                (!b.is_empty()).then(|| b.build())
            }
            ConfigSubCommand::VendorPrototype { vendor_command_id } => {
                Some(MapBuilder::new().put(1, *vendor_command_id).build())
            }
            _ => None,
        }
    }
}

/// authenticatorConfig request (answer: empty).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthenticatorConfig {
    /// The subcommand and its parameters.
    pub sub_command: ConfigSubCommand,
    /// PIN/UV auth protocol.
    pub pin_uv_auth_protocol: Option<u8>,
    /// authenticate(token, 32×0xff || 0x0d || subCommand || subCommandParams); see
    /// [`AuthenticatorConfig::pin_uv_auth_message`].
    pub pin_uv_auth_param: Option<Vec<u8>>,
}

impl AuthenticatorConfig {
    /// A request without PIN/UV auth.
    pub fn new(sub_command: ConfigSubCommand) -> Self {
        AuthenticatorConfig {
            sub_command,
            pin_uv_auth_protocol: None,
            pin_uv_auth_param: None,
        }
    }

    /// Canonical CBOR of subCommandParams (empty if there are none).
    pub fn sub_command_params_bytes(&self) -> Vec<u8> {
        params_bytes(self.sub_command.params().as_ref())
    }

    /// The message the PIN/UV auth param authenticates:
    /// 32×0xff || 0x0d || subCommand || subCommandParams.
    pub fn pin_uv_auth_message(&self) -> Vec<u8> {
        let mut m = vec![0xff; 32];
        m.push(CMD_CONFIG);
        m.push(self.sub_command.byte());
        m.extend(self.sub_command_params_bytes());
        m
    }
}

impl Command for AuthenticatorConfig {
    const CMD: u8 = CMD_CONFIG;
    type Response = ();

    fn params(&self) -> Option<Value> {
        Some(
            MapBuilder::new()
                .put(1, self.sub_command.byte())
                .put_opt(2, self.sub_command.params())
                .put_opt(3, self.pin_uv_auth_protocol)
                .put_opt(4, self.pin_uv_auth_param.clone())
                .build(),
        )
    }

    /// Reads the request; an unknown subcommand gives
    /// `Error::Ctap(CtapStatus::InvalidSubcommand)`.
    fn decode_params(params: Option<&Value>) -> Result<Self, Error> {
        const P: &str = "authenticatorConfig.subCommandParams";
        let m = map_or_empty(params, "authenticatorConfig")?;
        let sub = req(&m, 1, "authenticatorConfig.subCommand", |v| {
            v.as_u64("authenticatorConfig.subCommand")
        })?;
        let sp = opt(&m, 2, |v| v.as_map(P))?;
        let sub_command = match sub {
            0x01 => ConfigSubCommand::EnableEnterpriseAttestation,
            0x02 => ConfigSubCommand::ToggleAlwaysUv,
            0x03 => match sp {
                None => ConfigSubCommand::SetMinPinLength {
                    new_min_pin_length: None,
                    min_pin_length_rpids: None,
                    force_change_pin: None,
                },
                Some(sp) => ConfigSubCommand::SetMinPinLength {
                    new_min_pin_length: opt(&sp, 1, |v| {
                        v.as_u8("authenticatorConfig.subCommandParams.newMinPINLength")
                    })?,
                    min_pin_length_rpids: opt(&sp, 2, |v| {
                        v.as_text_array("authenticatorConfig.subCommandParams.minPinLengthRPIDs")
                    })?,
                    force_change_pin: opt(&sp, 3, |v| {
                        v.as_bool("authenticatorConfig.subCommandParams.forceChangePin")
                    })?,
                },
            },
            0xFF => {
                let sp = sp.ok_or(CborError::MissingField { field: P })?;
                ConfigSubCommand::VendorPrototype {
                    vendor_command_id: req(
                        &sp,
                        1,
                        "authenticatorConfig.subCommandParams.vendorCommandId",
                        |v| v.as_u64("authenticatorConfig.subCommandParams.vendorCommandId"),
                    )?,
                }
            }
            _ => return Err(Error::Ctap(CtapStatus::InvalidSubcommand)),
        };
        Ok(AuthenticatorConfig {
            sub_command,
            pin_uv_auth_protocol: opt(&m, 3, |v| v.as_u8("authenticatorConfig.pinUvAuthProtocol"))?,
            pin_uv_auth_param: opt(&m, 4, |v| {
                v.as_bytes("authenticatorConfig.pinUvAuthParam")
                    .map(<[u8]>::to_vec)
            })?,
        })
    }
}
