//! authenticatorCredentialManagement: metadata, enumeration, delete, update user.
//!
//! The token is passed in by the caller and never re-acquired between an enumeration's
//! Begin and its GetNext calls (a new token in between makes the key answer
//! NOT_ALLOWED), and nothing else is sent in between.

use fido_core::commands::{
    CredMgmtSubCommand, CredentialDescriptor, CredentialManagement, CredentialManagementResponse,
    RpEntity, SecretBytes, UserEntity,
};
use fido_core::cose::CoseKey;
use fido_core::pin::{Permissions, PinUvAuthToken};
use fido_core::CtapStatus;

use super::{bad_response, check_token, is_status, no_progress, Authenticator};
use crate::{Error, Transport};

/// Most RPs or credentials one enumeration follows (a key claiming more is refused).
const MAX_ENUMERATION: u32 = 4096;

/// How many discoverable credentials the key holds and how many more fit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CredentialsMetadata {
    /// Discoverable credentials on the key.
    pub existing: u32,
    /// How many more fit (estimate).
    pub remaining: u32,
}

/// A relying party with discoverable credentials on the key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RpInfo {
    /// The RP (the id may be all there is).
    pub rp: RpEntity,
    /// SHA-256 of the RP id (what [`Authenticator::enumerate_credentials`] takes).
    pub rp_id_hash: [u8; 32],
}

/// A discoverable credential on the key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CredentialInfo {
    /// The user it belongs to.
    pub user: UserEntity,
    /// Its descriptor (for delete and update).
    pub credential_id: CredentialDescriptor,
    /// Its public key.
    pub public_key: CoseKey,
    /// Its credProtect level, if reported.
    pub cred_protect: Option<u8>,
    /// Its large-blob key (secret), if any.
    pub large_blob_key: Option<SecretBytes>,
}

impl<T: Transport> Authenticator<T> {
    /// Whether credential management is offered, and only as the 2.1-PRE prototype.
    fn cred_mgmt_prototype(&mut self) -> Result<bool, Error> {
        let info = self.info()?;
        if info.supports_option("credMgmt") != Some(true)
            && info.supports_option("credentialMgmtPreview") != Some(true)
        {
            return Err(Error::Unsupported(
                "the key has no credential management (getInfo options credMgmt / credentialMgmtPreview not true)".into(),
            ));
        }
        Ok(info.cred_mgmt_prototype_only())
    }

    /// Sends a subcommand, authenticated with `token` when given (GetNext calls are not).
    fn cred_mgmt(
        &mut self,
        sub_command: CredMgmtSubCommand,
        token: Option<&PinUvAuthToken>,
    ) -> Result<CredentialManagementResponse, Error> {
        let mut request = CredentialManagement::new(sub_command);
        request.prototype = self.cred_mgmt_prototype()?;
        if let Some(token) = token {
            check_token(
                token,
                Permissions::CREDENTIAL_MANAGEMENT,
                None,
                "credentialManagement",
            )?;
            request.pin_uv_auth_protocol = Some(token.protocol().id());
            request.pin_uv_auth_param = Some(token.authenticate(&request.pin_uv_auth_message()));
        }
        self.call(&request, &mut no_progress)
    }

    /// getCredsMetadata.
    pub fn credentials_metadata(
        &mut self,
        token: &PinUvAuthToken,
    ) -> Result<CredentialsMetadata, Error> {
        let r = self.cred_mgmt(CredMgmtSubCommand::GetCredsMetadata, Some(token))?;
        Ok(CredentialsMetadata {
            existing: r.existing_resident_credentials_count.ok_or_else(|| {
                bad_response(
                    "credentialManagement.existingResidentCredentialsCount",
                    "missing in the answer",
                )
            })?,
            remaining: r
                .max_possible_remaining_resident_credentials_count
                .ok_or_else(|| {
                    bad_response(
                        "credentialManagement.maxPossibleRemainingResidentCredentialsCount",
                        "missing in the answer",
                    )
                })?,
        })
    }

    /// Every RP with discoverable credentials (empty when there are none).
    pub fn enumerate_rps(&mut self, token: &PinUvAuthToken) -> Result<Vec<RpInfo>, Error> {
        let first = match self.cred_mgmt(CredMgmtSubCommand::EnumerateRpsBegin, Some(token)) {
            Ok(r) => r,
            Err(e) if is_status(&e, CtapStatus::NoCredentials) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let total = enumeration_total(first.total_rps, "credentialManagement.totalRPs")?;
        if total == 0 {
            return Ok(Vec::new());
        }
        let mut out = Vec::with_capacity(total as usize);
        out.push(rp_info(first)?);
        for _ in 1..total {
            let next = self.cred_mgmt(CredMgmtSubCommand::EnumerateRpsGetNextRp, None)?;
            out.push(rp_info(next)?);
        }
        Ok(out)
    }

    /// Every discoverable credential of the RP whose id hashes to `rp_id_hash` (empty
    /// when there are none).
    pub fn enumerate_credentials(
        &mut self,
        token: &PinUvAuthToken,
        rp_id_hash: [u8; 32],
    ) -> Result<Vec<CredentialInfo>, Error> {
        let first = match self.cred_mgmt(
            CredMgmtSubCommand::EnumerateCredentialsBegin { rp_id_hash },
            Some(token),
        ) {
            Ok(r) => r,
            Err(e) if is_status(&e, CtapStatus::NoCredentials) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let total = enumeration_total(
            first.total_credentials,
            "credentialManagement.totalCredentials",
        )?;
        if total == 0 {
            return Ok(Vec::new());
        }
        let mut out = Vec::with_capacity(total as usize);
        out.push(credential_info(first)?);
        for _ in 1..total {
            let next = self.cred_mgmt(
                CredMgmtSubCommand::EnumerateCredentialsGetNextCredential,
                None,
            )?;
            out.push(credential_info(next)?);
        }
        Ok(out)
    }

    /// deleteCredential.
    pub fn delete_credential(
        &mut self,
        token: &PinUvAuthToken,
        credential_id: &CredentialDescriptor,
    ) -> Result<(), Error> {
        self.cred_mgmt(
            CredMgmtSubCommand::DeleteCredential {
                credential_id: credential_id.clone(),
            },
            Some(token),
        )
        .map(drop)
    }

    /// updateUserInformation: replaces the name and display name stored with a
    /// credential (`user.id` must be the stored one). Not offered by CTAP 2.1-PRE keys
    /// (prototype command 0x41), which are refused before anything is sent.
    pub fn update_user(
        &mut self,
        token: &PinUvAuthToken,
        credential_id: &CredentialDescriptor,
        user: &UserEntity,
    ) -> Result<(), Error> {
        if self.cred_mgmt_prototype()? {
            return Err(Error::Unsupported(
                "updateUserInformation is a CTAP 2.1 subcommand; this key only offers the 2.1-PRE credential management prototype".into(),
            ));
        }
        self.cred_mgmt(
            CredMgmtSubCommand::UpdateUserInformation {
                credential_id: credential_id.clone(),
                user: user.clone(),
            },
            Some(token),
        )
        .map(drop)
    }
}

/// The count of an enumeration from its first answer, tolerant as python-fido2 and
/// libfido2 are: a missing total counts as 1 (the first answer itself), and 0 means
/// nothing to enumerate (some keys answer the Begin call with totalRPs = 0 instead of
/// NO_CREDENTIALS). Only an absurd count is refused.
fn enumeration_total(total: Option<u32>, field: &'static str) -> Result<u32, Error> {
    let total = total.unwrap_or(1);
    if total > MAX_ENUMERATION {
        return Err(bad_response(
            field,
            format!("{total} is more than {MAX_ENUMERATION}"),
        ));
    }
    Ok(total)
}

fn rp_info(r: CredentialManagementResponse) -> Result<RpInfo, Error> {
    Ok(RpInfo {
        rp: r
            .rp
            .clone()
            .ok_or_else(|| bad_response("credentialManagement.rp", "missing in the answer"))?,
        rp_id_hash: r.rp_id_hash.ok_or_else(|| {
            bad_response("credentialManagement.rpIDHash", "missing in the answer")
        })?,
    })
}

fn credential_info(r: CredentialManagementResponse) -> Result<CredentialInfo, Error> {
    Ok(CredentialInfo {
        user: r
            .user
            .clone()
            .ok_or_else(|| bad_response("credentialManagement.user", "missing in the answer"))?,
        credential_id: r.credential_id.clone().ok_or_else(|| {
            bad_response("credentialManagement.credentialID", "missing in the answer")
        })?,
        public_key: r.public_key.clone().ok_or_else(|| {
            bad_response("credentialManagement.publicKey", "missing in the answer")
        })?,
        cred_protect: r.cred_protect,
        large_blob_key: r.large_blob_key.clone(),
    })
}
