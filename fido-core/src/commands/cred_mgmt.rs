//! authenticatorCredentialManagement (0x0A, prototype 0x41).

use super::{
    map_or_empty, opt, params_bytes, req, Command, CredentialDescriptor, MapBuilder, ResponseData,
    RpEntity, SecretBytes, UserEntity, CMD_CREDENTIAL_MANAGEMENT,
    CMD_CREDENTIAL_MANAGEMENT_PROTOTYPE,
};
use crate::cbor::{CborError, Value};
use crate::cose::CoseKey;
use crate::{CtapStatus, Error};

/// A credentialManagement subcommand with its subCommandParams.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CredMgmtSubCommand {
    /// getCredsMetadata (0x01).
    GetCredsMetadata,
    /// enumerateRPsBegin (0x02).
    EnumerateRpsBegin,
    /// enumerateRPsGetNextRP (0x03).
    EnumerateRpsGetNextRp,
    /// enumerateCredentialsBegin (0x04).
    EnumerateCredentialsBegin {
        /// SHA-256 of the RP id.
        rp_id_hash: [u8; 32],
    },
    /// enumerateCredentialsGetNextCredential (0x05).
    EnumerateCredentialsGetNextCredential,
    /// deleteCredential (0x06).
    DeleteCredential {
        /// The credential to delete.
        credential_id: CredentialDescriptor,
    },
    /// updateUserInformation (0x07).
    UpdateUserInformation {
        /// The credential to update.
        credential_id: CredentialDescriptor,
        /// The new user entity (its id must match the stored one).
        user: UserEntity,
    },
}

impl CredMgmtSubCommand {
    /// The subCommand byte.
    pub fn byte(&self) -> u8 {
        match self {
            CredMgmtSubCommand::GetCredsMetadata => 0x01,
            CredMgmtSubCommand::EnumerateRpsBegin => 0x02,
            CredMgmtSubCommand::EnumerateRpsGetNextRp => 0x03,
            CredMgmtSubCommand::EnumerateCredentialsBegin { .. } => 0x04,
            CredMgmtSubCommand::EnumerateCredentialsGetNextCredential => 0x05,
            CredMgmtSubCommand::DeleteCredential { .. } => 0x06,
            CredMgmtSubCommand::UpdateUserInformation { .. } => 0x07,
        }
    }

    /// The subCommandParams map, if this subcommand has one.
    pub fn params(&self) -> Option<Value> {
        match self {
            CredMgmtSubCommand::EnumerateCredentialsBegin { rp_id_hash } => {
                Some(MapBuilder::new().put(1, rp_id_hash.to_vec()).build())
            }
            CredMgmtSubCommand::DeleteCredential { credential_id } => {
                Some(MapBuilder::new().put(2, credential_id.to_value()).build())
            }
            CredMgmtSubCommand::UpdateUserInformation {
                credential_id,
                user,
            } => Some(
                MapBuilder::new()
                    .put(2, credential_id.to_value())
                    .put(3, user.to_value())
                    .build(),
            ),
            _ => None,
        }
    }
}

/// authenticatorCredentialManagement request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CredentialManagement {
    /// The subcommand and its parameters.
    pub sub_command: CredMgmtSubCommand,
    /// PIN/UV auth protocol (absent for the GetNext subcommands).
    pub pin_uv_auth_protocol: Option<u8>,
    /// authenticate(token, subCommand || subCommandParams); see
    /// [`CredentialManagement::pin_uv_auth_message`].
    pub pin_uv_auth_param: Option<Vec<u8>>,
    /// Send as the CTAP 2.1-PRE prototype command (0x41).
    pub prototype: bool,
}

impl CredentialManagement {
    /// A request without PIN/UV auth, standard command byte.
    pub fn new(sub_command: CredMgmtSubCommand) -> Self {
        CredentialManagement {
            sub_command,
            pin_uv_auth_protocol: None,
            pin_uv_auth_param: None,
            prototype: false,
        }
    }

    /// Canonical CBOR of subCommandParams (empty if there are none).
    pub fn sub_command_params_bytes(&self) -> Vec<u8> {
        params_bytes(self.sub_command.params().as_ref())
    }

    /// The message the PIN/UV auth param authenticates: subCommand || subCommandParams.
    pub fn pin_uv_auth_message(&self) -> Vec<u8> {
        let mut m = vec![self.sub_command.byte()];
        m.extend(self.sub_command_params_bytes());
        m
    }
}

impl Command for CredentialManagement {
    const CMD: u8 = CMD_CREDENTIAL_MANAGEMENT;
    type Response = CredentialManagementResponse;

    fn command_byte(&self) -> u8 {
        if self.prototype {
            CMD_CREDENTIAL_MANAGEMENT_PROTOTYPE
        } else {
            CMD_CREDENTIAL_MANAGEMENT
        }
    }

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

    /// Reads the request (`prototype` is false; [`super::Request::decode`] sets it from
    /// the command byte). An unknown subcommand gives
    /// `Error::Ctap(CtapStatus::InvalidSubcommand)`.
    fn decode_params(params: Option<&Value>) -> Result<Self, Error> {
        const P: &str = "credentialManagement.subCommandParams";
        let m = map_or_empty(params, "credentialManagement")?;
        let sub = req(&m, 1, "credentialManagement.subCommand", |v| {
            v.as_u64("credentialManagement.subCommand")
        })?;
        let sp = opt(&m, 2, |v| v.as_map(P))?;
        let sp = || sp.ok_or(CborError::MissingField { field: P });
        let cred = |sp: &crate::cbor::MapRef<'_>| {
            req(
                sp,
                2,
                "credentialManagement.subCommandParams.credentialID",
                CredentialDescriptor::from_value,
            )
        };
        let sub_command = match sub {
            0x01 => CredMgmtSubCommand::GetCredsMetadata,
            0x02 => CredMgmtSubCommand::EnumerateRpsBegin,
            0x03 => CredMgmtSubCommand::EnumerateRpsGetNextRp,
            0x04 => CredMgmtSubCommand::EnumerateCredentialsBegin {
                rp_id_hash: req(
                    &sp()?,
                    1,
                    "credentialManagement.subCommandParams.rpIDHash",
                    |v| v.as_byte_array("credentialManagement.subCommandParams.rpIDHash"),
                )?,
            },
            0x05 => CredMgmtSubCommand::EnumerateCredentialsGetNextCredential,
            0x06 => CredMgmtSubCommand::DeleteCredential {
                credential_id: cred(&sp()?)?,
            },
            0x07 => {
                let sp = sp()?;
                CredMgmtSubCommand::UpdateUserInformation {
                    credential_id: cred(&sp)?,
                    user: req(
                        &sp,
                        3,
                        "credentialManagement.subCommandParams.user",
                        UserEntity::from_value,
                    )?,
                }
            }
            _ => return Err(Error::Ctap(CtapStatus::InvalidSubcommand)),
        };
        Ok(CredentialManagement {
            sub_command,
            pin_uv_auth_protocol: opt(&m, 3, |v| {
                v.as_u8("credentialManagement.pinUvAuthProtocol")
            })?,
            pin_uv_auth_param: opt(&m, 4, |v| {
                v.as_bytes("credentialManagement.pinUvAuthParam")
                    .map(<[u8]>::to_vec)
            })?,
            prototype: false,
        })
    }
}

/// authenticatorCredentialManagement response; which fields are present depends on
/// the subcommand.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CredentialManagementResponse {
    /// 0x01 discoverable credentials on the key.
    pub existing_resident_credentials_count: Option<u32>,
    /// 0x02 how many more fit (estimate).
    pub max_possible_remaining_resident_credentials_count: Option<u32>,
    /// 0x03 an RP.
    pub rp: Option<RpEntity>,
    /// 0x04 SHA-256 of that RP's id.
    pub rp_id_hash: Option<[u8; 32]>,
    /// 0x05 number of RPs (first answer of an enumeration).
    pub total_rps: Option<u32>,
    /// 0x06 a credential's user.
    pub user: Option<UserEntity>,
    /// 0x07 a credential's descriptor.
    pub credential_id: Option<CredentialDescriptor>,
    /// 0x08 a credential's public key.
    pub public_key: Option<CoseKey>,
    /// 0x09 number of credentials (first answer of an enumeration).
    pub total_credentials: Option<u32>,
    /// 0x0A the credential's credProtect level.
    pub cred_protect: Option<u8>,
    /// 0x0B the credential's large-blob key (secret).
    pub large_blob_key: Option<SecretBytes>,
}

impl ResponseData for CredentialManagementResponse {
    fn from_cbor(value: Option<&Value>) -> Result<Self, Error> {
        let m = map_or_empty(value, "credentialManagement response")?;
        Ok(CredentialManagementResponse {
            existing_resident_credentials_count: opt(&m, 1, |v| {
                v.as_u32("credentialManagement.existingResidentCredentialsCount")
            })?,
            max_possible_remaining_resident_credentials_count: opt(&m, 2, |v| {
                v.as_u32("credentialManagement.maxPossibleRemainingResidentCredentialsCount")
            })?,
            rp: opt(&m, 3, RpEntity::from_value)?,
            rp_id_hash: opt(&m, 4, |v| v.as_byte_array("credentialManagement.rpIDHash"))?,
            total_rps: opt(&m, 5, |v| v.as_u32("credentialManagement.totalRPs"))?,
            user: opt(&m, 6, UserEntity::from_value)?,
            credential_id: opt(&m, 7, CredentialDescriptor::from_value)?,
            public_key: opt(&m, 8, |v| CoseKey::from_value(v).map_err(Error::from))?,
            total_credentials: opt(&m, 9, |v| v.as_u32("credentialManagement.totalCredentials"))?,
            cred_protect: opt(&m, 10, |v| v.as_u8("credentialManagement.credProtect"))?,
            large_blob_key: opt(&m, 11, |v| {
                v.as_bytes("credentialManagement.largeBlobKey")
                    .map(SecretBytes::from)
            })?,
        })
    }

    fn to_cbor(&self) -> Option<Value> {
        let b = MapBuilder::new()
            .put_opt(1, self.existing_resident_credentials_count)
            .put_opt(2, self.max_possible_remaining_resident_credentials_count)
            .put_opt(3, self.rp.as_ref().map(RpEntity::to_value))
            .put_opt(4, self.rp_id_hash.map(|h| h.to_vec()))
            .put_opt(5, self.total_rps)
            .put_opt(6, self.user.as_ref().map(UserEntity::to_value))
            .put_opt(
                7,
                self.credential_id
                    .as_ref()
                    .map(CredentialDescriptor::to_value),
            )
            .put_opt(8, self.public_key.as_ref().map(CoseKey::to_value))
            .put_opt(9, self.total_credentials)
            .put_opt(10, self.cred_protect)
            .put_opt(11, self.large_blob_key.as_ref());
        (!b.is_empty()).then(|| b.build())
    }
}
