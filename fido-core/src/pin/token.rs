//! clientPIN parameters (setPIN, changePIN, getPinToken / getPinUvAuthTokenUsingPin…),
//! pinUvAuthTokens and the messages a pinUvAuthParam is computed over, for both the
//! platform and the authenticator side.

use core::fmt;

use rand_core::CryptoRngCore;
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::{Permissions, Pin, PinError, PinUvAuthProtocol, SharedSecret};
use crate::cose::CoseKey;

/// Length of a pinUvAuthToken this module generates (both protocols).
const TOKEN_LEN: usize = 32;

/// Parameters of clientPIN setPIN (0x03).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetPinParams {
    /// The platform's key-agreement key (`keyAgreement`, 0x03).
    pub key_agreement: CoseKey,
    /// The encrypted padded PIN (`newPinEnc`, 0x05).
    pub new_pin_enc: Vec<u8>,
    /// `authenticate(sharedSecret, newPinEnc)` (`pinUvAuthParam`, 0x04).
    pub pin_uv_auth_param: Vec<u8>,
}

/// Parameters of clientPIN changePIN (0x04).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangePinParams {
    /// The platform's key-agreement key (`keyAgreement`, 0x03).
    pub key_agreement: CoseKey,
    /// The encrypted hash of the current PIN (`pinHashEnc`, 0x06).
    pub pin_hash_enc: Vec<u8>,
    /// The encrypted padded new PIN (`newPinEnc`, 0x05).
    pub new_pin_enc: Vec<u8>,
    /// `authenticate(sharedSecret, newPinEnc || pinHashEnc)` (`pinUvAuthParam`, 0x04).
    pub pin_uv_auth_param: Vec<u8>,
}

/// Parameters of clientPIN getPinToken (0x05) or getPinUvAuthTokenUsingPinWithPermissions
/// (0x09), plus the shared secret needed to decrypt the answer with
/// [`PinUvAuthToken::decrypt`]. Permissions and rpId are added by the command itself.
#[derive(Debug)]
pub struct PinTokenRequest {
    /// The platform's key-agreement key (`keyAgreement`, 0x03).
    pub key_agreement: CoseKey,
    /// The encrypted PIN hash (`pinHashEnc`, 0x06).
    pub pin_hash_enc: Vec<u8>,
    /// The shared secret agreed for this request.
    pub shared_secret: SharedSecret,
}

/// Platform side of setPIN: key agreement with the authenticator's `peer_key`, then the
/// encrypted padded PIN and its pinUvAuthParam.
pub fn set_pin(
    protocol: PinUvAuthProtocol,
    peer_key: &CoseKey,
    new_pin: &Pin,
    rng: &mut impl CryptoRngCore,
) -> Result<SetPinParams, PinError> {
    let (key_agreement, shared) = protocol.encapsulate(peer_key, rng)?;
    let new_pin_enc = protocol.encrypt(&shared, &*new_pin.padded(), rng)?;
    let pin_uv_auth_param = shared.authenticate(&new_pin_enc);
    Ok(SetPinParams {
        key_agreement,
        new_pin_enc,
        pin_uv_auth_param,
    })
}

/// Platform side of changePIN: key agreement, the encrypted hash of `current`, the
/// encrypted padded `new` PIN, and the pinUvAuthParam over `newPinEnc || pinHashEnc`.
pub fn change_pin(
    protocol: PinUvAuthProtocol,
    peer_key: &CoseKey,
    current: &Pin,
    new: &Pin,
    rng: &mut impl CryptoRngCore,
) -> Result<ChangePinParams, PinError> {
    let (key_agreement, shared) = protocol.encapsulate(peer_key, rng)?;
    let pin_hash_enc = protocol.encrypt(&shared, &*current.pin_hash(), rng)?;
    let new_pin_enc = protocol.encrypt(&shared, &*new.padded(), rng)?;
    let pin_uv_auth_param = shared.authenticate(&[new_pin_enc.as_slice(), &pin_hash_enc].concat());
    Ok(ChangePinParams {
        key_agreement,
        pin_hash_enc,
        new_pin_enc,
        pin_uv_auth_param,
    })
}

/// Platform side of getting a token with a PIN: key agreement and the encrypted PIN hash.
pub fn pin_token_request(
    protocol: PinUvAuthProtocol,
    peer_key: &CoseKey,
    pin: &Pin,
    rng: &mut impl CryptoRngCore,
) -> Result<PinTokenRequest, PinError> {
    let (key_agreement, shared_secret) = protocol.encapsulate(peer_key, rng)?;
    let pin_hash_enc = protocol.encrypt(&shared_secret, &*pin.pin_hash(), rng)?;
    Ok(PinTokenRequest {
        key_agreement,
        pin_hash_enc,
        shared_secret,
    })
}

/// Authenticator side of setPIN: verifies the pinUvAuthParam over `newPinEnc`, then
/// decrypts and validates the new PIN against `min_code_points`.
pub fn verify_set_pin(
    shared: &SharedSecret,
    new_pin_enc: &[u8],
    pin_uv_auth_param: &[u8],
    min_code_points: usize,
) -> Result<Pin, PinError> {
    shared.verify(new_pin_enc, pin_uv_auth_param)?;
    let padded = shared
        .protocol()
        .decrypt_field(shared, new_pin_enc, "newPinEnc")?;
    Pin::from_padded(&padded, min_code_points)
}

/// Authenticator side of changePIN: verifies the pinUvAuthParam over
/// `newPinEnc || pinHashEnc`, decrypts the current PIN hash (to compare with the stored
/// one using [`Pin::hashes_match`]) and the new PIN (validated against
/// `min_code_points`).
pub fn verify_change_pin(
    shared: &SharedSecret,
    pin_hash_enc: &[u8],
    new_pin_enc: &[u8],
    pin_uv_auth_param: &[u8],
    min_code_points: usize,
) -> Result<(Zeroizing<[u8; 16]>, Pin), PinError> {
    shared.verify(&[new_pin_enc, pin_hash_enc].concat(), pin_uv_auth_param)?;
    let hash = decrypt_pin_hash(shared, pin_hash_enc)?;
    let padded = shared
        .protocol()
        .decrypt_field(shared, new_pin_enc, "newPinEnc")?;
    Ok((hash, Pin::from_padded(&padded, min_code_points)?))
}

/// Authenticator side: decrypts a `pinHashEnc` (must hold exactly 16 bytes).
pub fn decrypt_pin_hash(
    shared: &SharedSecret,
    pin_hash_enc: &[u8],
) -> Result<Zeroizing<[u8; 16]>, PinError> {
    let plain = shared
        .protocol()
        .decrypt_field(shared, pin_hash_enc, "pinHashEnc")?;
    let hash: [u8; 16] = plain
        .as_slice()
        .try_into()
        .map_err(|_| PinError::PinHashLength { len: plain.len() })?;
    Ok(Zeroizing::new(hash))
}

/// The message a pinUvAuthParam is computed over, per command (CTAP 2.1 §6.1.2, §6.2.2,
/// §6.7, §6.8, §6.10.2, §6.11).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthMessage<'a> {
    /// authenticatorMakeCredential: the clientDataHash.
    MakeCredential {
        /// SHA-256 of the clientDataJSON.
        client_data_hash: &'a [u8],
    },
    /// authenticatorGetAssertion: the clientDataHash.
    GetAssertion {
        /// SHA-256 of the clientDataJSON.
        client_data_hash: &'a [u8],
    },
    /// authenticatorConfig: `32×0xff || 0x0d || subCommand || subCommandParams`.
    AuthenticatorConfig {
        /// The subcommand byte.
        sub_command: u8,
        /// The canonical CBOR encoding of subCommandParams, if any.
        sub_command_params: Option<&'a [u8]>,
    },
    /// authenticatorCredentialManagement: `subCommand || subCommandParams`.
    CredentialManagement {
        /// The subcommand byte.
        sub_command: u8,
        /// The canonical CBOR encoding of subCommandParams, if any.
        sub_command_params: Option<&'a [u8]>,
    },
    /// authenticatorBioEnrollment: `modality || subCommand || subCommandParams`.
    BioEnrollment {
        /// The modality byte (fingerprint = 0x01).
        modality: u8,
        /// The subcommand byte.
        sub_command: u8,
        /// The canonical CBOR encoding of subCommandParams, if any.
        sub_command_params: Option<&'a [u8]>,
    },
    /// authenticatorLargeBlobs set:
    /// `32×0xff || 0x0c 0x00 || uint32LE(offset) || SHA-256(set)`.
    LargeBlobs {
        /// The `offset` parameter.
        offset: u32,
        /// The contents of the `set` byte string.
        data: &'a [u8],
    },
}

impl AuthMessage<'_> {
    /// The bytes to authenticate.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match *self {
            AuthMessage::MakeCredential { client_data_hash }
            | AuthMessage::GetAssertion { client_data_hash } => {
                out.extend_from_slice(client_data_hash);
            }
            AuthMessage::AuthenticatorConfig {
                sub_command,
                sub_command_params,
            } => {
                out.extend_from_slice(&[0xff; 32]);
                out.push(0x0d);
                out.push(sub_command);
                out.extend_from_slice(sub_command_params.unwrap_or_default());
            }
            AuthMessage::CredentialManagement {
                sub_command,
                sub_command_params,
            } => {
                out.push(sub_command);
                out.extend_from_slice(sub_command_params.unwrap_or_default());
            }
            AuthMessage::BioEnrollment {
                modality,
                sub_command,
                sub_command_params,
            } => {
                out.push(modality);
                out.push(sub_command);
                out.extend_from_slice(sub_command_params.unwrap_or_default());
            }
            AuthMessage::LargeBlobs { offset, data } => {
                out.extend_from_slice(&[0xff; 32]);
                out.extend_from_slice(&[0x0c, 0x00]);
                out.extend_from_slice(&offset.to_le_bytes());
                out.extend_from_slice(&Sha256::digest(data));
            }
        }
        out
    }
}

/// A pinUvAuthToken with the permissions and RP id it was requested for. Zeroized on
/// drop, redacted in `Debug`.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct PinUvAuthToken {
    #[zeroize(skip)]
    protocol: PinUvAuthProtocol,
    token: Vec<u8>,
    #[zeroize(skip)]
    permissions: Permissions,
    #[zeroize(skip)]
    rp_id: Option<String>,
}

impl PinUvAuthToken {
    /// Platform side: decrypts the `pinUvAuthToken` (0x02) of a clientPIN answer with
    /// the shared secret of the request. The token must be 16 or 32 bytes for protocol
    /// one, 32 for protocol two.
    pub fn decrypt(
        protocol: PinUvAuthProtocol,
        shared: &SharedSecret,
        encrypted_token: &[u8],
        permissions: Permissions,
        rp_id: Option<String>,
    ) -> Result<Self, PinError> {
        let token = protocol.decrypt_field(shared, encrypted_token, "pinUvAuthToken")?;
        Self::from_bytes(protocol, &token, permissions, rp_id)
    }

    /// A token from its raw bytes (length checked as in [`decrypt`](Self::decrypt)).
    pub fn from_bytes(
        protocol: PinUvAuthProtocol,
        token: &[u8],
        permissions: Permissions,
        rp_id: Option<String>,
    ) -> Result<Self, PinError> {
        let ok = match protocol {
            PinUvAuthProtocol::One => token.len() == 16 || token.len() == 32,
            PinUvAuthProtocol::Two => token.len() == 32,
        };
        if !ok {
            return Err(PinError::TokenLength {
                len: token.len(),
                protocol: protocol.id(),
            });
        }
        Ok(PinUvAuthToken {
            protocol,
            token: token.to_vec(),
            permissions,
            rp_id,
        })
    }

    /// Authenticator side: a fresh random 32-byte token.
    pub fn generate(
        protocol: PinUvAuthProtocol,
        permissions: Permissions,
        rp_id: Option<String>,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Self, PinError> {
        let mut token = vec![0u8; TOKEN_LEN];
        if rng.try_fill_bytes(&mut token).is_err() {
            token.zeroize();
            return Err(PinError::Rng);
        }
        Ok(PinUvAuthToken {
            protocol,
            token,
            permissions,
            rp_id,
        })
    }

    /// Authenticator side: the token encrypted for the platform (`pinUvAuthToken`, 0x02).
    pub fn encrypt_for(
        &self,
        shared: &SharedSecret,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Vec<u8>, PinError> {
        self.protocol.encrypt(shared, &self.token, rng)
    }

    /// The protocol the token belongs to.
    pub fn protocol(&self) -> PinUvAuthProtocol {
        self.protocol
    }

    /// The permissions it was requested with.
    pub fn permissions(&self) -> Permissions {
        self.permissions
    }

    /// The RP id it is bound to, if any.
    pub fn rp_id(&self) -> Option<&str> {
        self.rp_id.as_deref()
    }

    /// The raw token bytes.
    pub fn expose_secret(&self) -> &[u8] {
        &self.token
    }

    /// The pinUvAuthParam over `message` (the whole token is the HMAC key).
    pub fn authenticate(&self, message: &[u8]) -> Vec<u8> {
        self.protocol.authenticate(&self.token, message)
    }

    /// The pinUvAuthParam for a command's [`AuthMessage`].
    pub fn authenticate_message(&self, message: &AuthMessage<'_>) -> Vec<u8> {
        self.authenticate(&message.to_bytes())
    }

    /// Authenticator side: constant-time check of a pinUvAuthParam over `message`.
    pub fn verify(&self, message: &[u8], pin_uv_auth_param: &[u8]) -> Result<(), PinError> {
        self.protocol
            .verify(&self.token, message, pin_uv_auth_param)
    }

    /// Authenticator side: [`verify`](Self::verify) for a command's [`AuthMessage`].
    pub fn verify_message(
        &self,
        message: &AuthMessage<'_>,
        pin_uv_auth_param: &[u8],
    ) -> Result<(), PinError> {
        self.verify(&message.to_bytes(), pin_uv_auth_param)
    }

    /// Authenticator side: checks that the token holds every permission in `required`
    /// and, if it is bound to an RP id and `rp_id` is given, that they are the same.
    pub fn require(&self, required: Permissions, rp_id: Option<&str>) -> Result<(), PinError> {
        if !self.permissions.contains(required) {
            return Err(PinError::MissingPermission {
                required: required.bits(),
                granted: self.permissions.bits(),
            });
        }
        match (self.rp_id.as_deref(), rp_id) {
            (Some(bound), Some(wanted)) if bound != wanted => Err(PinError::RpIdMismatch),
            _ => Ok(()),
        }
    }
}

impl fmt::Debug for PinUvAuthToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PinUvAuthToken")
            .field("protocol", &self.protocol)
            .field("token", &"<redacted>")
            .field("permissions", &self.permissions)
            .field("rp_id", &self.rp_id)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_blobs_message_layout() {
        let m = AuthMessage::LargeBlobs {
            offset: 0x0102_0304,
            data: b"",
        }
        .to_bytes();
        assert_eq!(m.len(), 32 + 2 + 4 + 32);
        assert!(m.iter().take(32).all(|&b| b == 0xff));
        assert_eq!(
            m.get(32..38),
            Some(&[0x0c, 0x00, 0x04, 0x03, 0x02, 0x01][..])
        );
        // SHA-256 of the empty string.
        assert_eq!(
            hex::encode(m.get(38..).unwrap_or_default()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn config_and_management_messages() {
        let params = [0xa1, 0x01, 0x06];
        let cfg = AuthMessage::AuthenticatorConfig {
            sub_command: 0x03,
            sub_command_params: Some(&params),
        }
        .to_bytes();
        let mut want = vec![0xff; 32];
        want.extend_from_slice(&[0x0d, 0x03, 0xa1, 0x01, 0x06]);
        assert_eq!(cfg, want);

        let cm = AuthMessage::CredentialManagement {
            sub_command: 0x01,
            sub_command_params: None,
        }
        .to_bytes();
        assert_eq!(cm, vec![0x01]);

        let be = AuthMessage::BioEnrollment {
            modality: 0x01,
            sub_command: 0x02,
            sub_command_params: Some(&params),
        }
        .to_bytes();
        assert_eq!(be, vec![0x01, 0x02, 0xa1, 0x01, 0x06]);

        let mc = AuthMessage::MakeCredential {
            client_data_hash: &[9; 32],
        }
        .to_bytes();
        assert_eq!(mc, vec![9; 32]);
    }

    #[test]
    fn token_length_rules() {
        let p = Permissions::empty();
        for (protocol, len, ok) in [
            (PinUvAuthProtocol::One, 16, true),
            (PinUvAuthProtocol::One, 32, true),
            (PinUvAuthProtocol::One, 48, false),
            (PinUvAuthProtocol::Two, 16, false),
            (PinUvAuthProtocol::Two, 32, true),
        ] {
            let r = PinUvAuthToken::from_bytes(protocol, &vec![1; len], p, None);
            assert_eq!(r.is_ok(), ok, "{protocol:?} {len}");
        }
    }

    #[test]
    fn require_checks_permissions_and_rp_id() {
        let t = PinUvAuthToken::from_bytes(
            PinUvAuthProtocol::Two,
            &[1; 32],
            Permissions::GET_ASSERTION,
            Some("example.com".into()),
        );
        let Ok(t) = t else {
            panic!("valid token rejected")
        };
        assert_eq!(
            t.require(Permissions::GET_ASSERTION, Some("example.com")),
            Ok(())
        );
        assert_eq!(
            t.require(Permissions::GET_ASSERTION, Some("other.example")),
            Err(PinError::RpIdMismatch)
        );
        assert_eq!(
            t.require(Permissions::MAKE_CREDENTIAL, Some("example.com")),
            Err(PinError::MissingPermission {
                required: 0x01,
                granted: 0x02
            })
        );
    }
}
