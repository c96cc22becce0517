//! The CTAP operations the flows make, behind an object-safe trait so the runner needs no
//! transport type.

use fido_core::commands::{AuthenticatorInfo, CredentialDescriptor};
use fido_core::pin::{Permissions, PinUvAuthToken};
use fido_transport::client::{
    Assertion, Authenticator, EnrollProgress, GetAssertionArgs, MakeCredentialArgs, ResetPrompt,
};
use fido_transport::{Progress, Transport};

use crate::fault::OpError;

/// What the holder (or operator) is asked to do while a command waits.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Prompt {
    /// "Touch your key": the key waits for user presence.
    TouchKey {
        /// The CTAP operation waiting (`makeCredential`, `getAssertion`, `reset`, ...).
        op: &'static str,
    },
    /// "Place your finger": a fingerprint sample was taken during enrolment.
    FingerprintSample {
        /// The key's lastEnrollSampleStatus (0 = good sample).
        last_status: u8,
        /// Samples still needed for this fingerprint.
        remaining: u32,
    },
    /// A fingerprint is about to be enrolled.
    EnrollFingerprint {
        /// Which one (1-based).
        number: u32,
        /// How many the job asks for.
        of: u32,
    },
    /// "Press and hold your key": the key wants a long touch (getInfo
    /// `longTouchForReset`); follows [`Prompt::TouchKey`] for the same operation.
    HoldKey {
        /// The CTAP operation waiting (`reset`).
        op: &'static str,
    },
    /// The replug of a reset at the station: "remove the key" / "insert it again" (USB),
    /// "lift the key off the reader" / "put it back" (NFC). [`ResetPrompt::message`]
    /// gives the text.
    Replug(ResetPrompt),
}

/// A credential made on the key (owned bytes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Made {
    /// The credential id.
    pub credential_id: Vec<u8>,
    /// Its public key (COSE, canonical CBOR).
    pub public_key: Vec<u8>,
    /// The attestation object (CBOR).
    pub attestation_object: Vec<u8>,
}

/// What the device half asks of a key. `prompt` receives "touch your key" and fingerprint
/// prompts while a command waits for the holder. Every failure names its CTAP operation
/// ([`OpError::op`]).
pub trait DeviceOps {
    /// getInfo, read afresh.
    fn info(&mut self) -> Result<AuthenticatorInfo, OpError>;
    /// authenticatorReset (within the power-up window, with a touch).
    fn reset(&mut self, prompt: &dyn Fn(&Prompt)) -> Result<(), OpError>;
    /// authenticatorReset at the station: where the key's slot is known, a key past its
    /// power-up window (or any key, when `require_replug`) is replugged first, with
    /// [`Prompt::Replug`] prompts, checked to be the same key and reset at once. The
    /// default is [`DeviceOps::reset`] (no replug possible).
    fn reset_at_station(
        &mut self,
        require_replug: bool,
        prompt: &dyn Fn(&Prompt),
    ) -> Result<(), OpError> {
        let _ = require_replug;
        self.reset(prompt)
    }
    /// setPIN on a key without a PIN.
    fn set_pin(&mut self, pin: &str) -> Result<(), OpError>;
    /// changePIN.
    fn change_pin(&mut self, current: &str, new_pin: &str) -> Result<(), OpError>;
    /// A pinUvAuthToken from `pin` with `permissions` (bound to `rp_id` when given).
    fn token(
        &mut self,
        pin: &str,
        permissions: Permissions,
        rp_id: Option<&str>,
    ) -> Result<PinUvAuthToken, OpError>;
    /// authenticatorConfig setMinPINLength (`token`: acfg, when the key is protected).
    fn set_min_pin_length(
        &mut self,
        min: Option<u8>,
        rp_ids: &[String],
        force_change: bool,
        token: Option<&PinUvAuthToken>,
    ) -> Result<(), OpError>;
    /// Turns `alwaysUv` on (toggles only when it is off).
    fn enable_always_uv(&mut self, token: Option<&PinUvAuthToken>) -> Result<(), OpError>;
    /// makeCredential.
    fn make_credential(
        &mut self,
        args: &MakeCredentialArgs,
        token: &PinUvAuthToken,
        prompt: &dyn Fn(&Prompt),
    ) -> Result<Made, OpError>;
    /// getAssertion (`token`: ga, for user verification; `None` for a silent probe).
    fn get_assertion(
        &mut self,
        args: &GetAssertionArgs,
        token: Option<&PinUvAuthToken>,
        prompt: &dyn Fn(&Prompt),
    ) -> Result<Vec<Assertion>, OpError>;
    /// Number of fingerprints enrolled on the key.
    fn bio_count(&mut self, token: &PinUvAuthToken) -> Result<u32, OpError>;
    /// Enrolls one fingerprint (all its samples).
    fn bio_enroll(
        &mut self,
        token: &PinUvAuthToken,
        timeout_ms: u32,
        prompt: &dyn Fn(&Prompt),
    ) -> Result<(), OpError>;
    /// credentialManagement deleteCredential.
    fn delete_credential(
        &mut self,
        token: &PinUvAuthToken,
        credential_id: &[u8],
    ) -> Result<(), OpError>;
    /// getPINRetries: PIN attempts left (0: blocked).
    fn pin_retries(&mut self) -> Result<u32, OpError>;
    /// The key's CTAP 2.2 device identifier (getInfo `encIdentifier`, decrypted with a
    /// persistent token (`pcmr`) from `pin`): what the key can prove about which key it
    /// is. `None` when the key offers none (no `encIdentifier`, or no `perCredMgmtRO`
    /// option) or the backend cannot ask (the default).
    fn device_identifier(&mut self, pin: &str) -> Result<Option<Vec<u8>>, OpError> {
        let _ = pin;
        Ok(None)
    }
}

/// Maps the transport's progress to a prompt for `op`.
fn relay<'a>(op: &'static str, prompt: &'a dyn Fn(&Prompt)) -> impl FnMut(Progress) + 'a {
    move |p| {
        if p == Progress::UserPresenceNeeded {
            prompt(&Prompt::TouchKey { op });
        } else if p == Progress::LongTouchNeeded {
            prompt(&Prompt::HoldKey { op });
        }
    }
}

impl<T: Transport> DeviceOps for Authenticator<T> {
    fn device_identifier(&mut self, pin: &str) -> Result<Option<Vec<u8>>, OpError> {
        let info = DeviceOps::info(self)?;
        if info.enc_identifier.is_none() || info.supports_option("perCredMgmtRO") != Some(true) {
            return Ok(None);
        }
        let ppuat = self
            .pin_token(
                pin,
                Permissions::PERSISTENT_CREDENTIAL_MANAGEMENT_READ_ONLY,
                None,
            )
            .map_err(OpError::transport("getPinUvAuthToken"))?;
        Authenticator::device_identifier(self, &ppuat).map_err(OpError::transport("getInfo"))
    }
    fn info(&mut self) -> Result<AuthenticatorInfo, OpError> {
        self.refresh_info()
            .cloned()
            .map_err(OpError::transport("getInfo"))
    }
    fn reset(&mut self, prompt: &dyn Fn(&Prompt)) -> Result<(), OpError> {
        Authenticator::reset(self, &mut relay("reset", prompt)).map_err(OpError::transport("reset"))
    }
    fn reset_at_station(
        &mut self,
        require_replug: bool,
        prompt: &dyn Fn(&Prompt),
    ) -> Result<(), OpError> {
        Authenticator::reset_at_station(
            self,
            require_replug,
            &mut |p| prompt(&Prompt::Replug(p)),
            &mut relay("reset", prompt),
        )
        .map_err(OpError::transport("reset"))
    }
    fn set_pin(&mut self, pin: &str) -> Result<(), OpError> {
        Authenticator::set_pin(self, pin).map_err(OpError::transport("setPIN"))
    }
    fn change_pin(&mut self, current: &str, new_pin: &str) -> Result<(), OpError> {
        Authenticator::change_pin(self, current, new_pin).map_err(OpError::transport("changePIN"))
    }
    fn token(
        &mut self,
        pin: &str,
        permissions: Permissions,
        rp_id: Option<&str>,
    ) -> Result<PinUvAuthToken, OpError> {
        self.pin_token(pin, permissions, rp_id)
            .map_err(OpError::transport("getPinUvAuthToken"))
    }
    fn set_min_pin_length(
        &mut self,
        min: Option<u8>,
        rp_ids: &[String],
        force_change: bool,
        token: Option<&PinUvAuthToken>,
    ) -> Result<(), OpError> {
        Authenticator::set_min_pin_length(self, min, rp_ids, force_change, token)
            .map_err(OpError::transport("setMinPINLength"))
    }
    fn enable_always_uv(&mut self, token: Option<&PinUvAuthToken>) -> Result<(), OpError> {
        self.set_always_uv(true, token)
            .map(|_| ())
            .map_err(OpError::transport("toggleAlwaysUv"))
    }
    fn make_credential(
        &mut self,
        args: &MakeCredentialArgs,
        token: &PinUvAuthToken,
        prompt: &dyn Fn(&Prompt),
    ) -> Result<Made, OpError> {
        let r = Authenticator::make_credential(
            self,
            args,
            Some(token),
            &mut relay("makeCredential", prompt),
        )
        .map_err(OpError::transport("makeCredential"))?;
        Ok(Made {
            credential_id: r.credential_id,
            public_key: r.public_key.to_cbor(),
            attestation_object: r.attestation.to_cbor(),
        })
    }
    fn get_assertion(
        &mut self,
        args: &GetAssertionArgs,
        token: Option<&PinUvAuthToken>,
        prompt: &dyn Fn(&Prompt),
    ) -> Result<Vec<Assertion>, OpError> {
        Authenticator::get_assertion(self, args, token, &mut relay("getAssertion", prompt))
            .map_err(OpError::transport("getAssertion"))
    }
    fn bio_count(&mut self, token: &PinUvAuthToken) -> Result<u32, OpError> {
        let n = self
            .bio_enumerate(token)
            .map_err(OpError::transport("bioEnrollment.enumerateEnrollments"))?
            .len();
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }
    fn bio_enroll(
        &mut self,
        token: &PinUvAuthToken,
        timeout_ms: u32,
        prompt: &dyn Fn(&Prompt),
    ) -> Result<(), OpError> {
        let mut progress = |p: EnrollProgress| match p {
            EnrollProgress::Transport(Progress::UserPresenceNeeded) => {
                prompt(&Prompt::TouchKey {
                    op: "bioEnrollment",
                });
            }
            EnrollProgress::Sample { status, remaining } => {
                prompt(&Prompt::FingerprintSample {
                    last_status: status,
                    remaining,
                });
            }
            _ => {}
        };
        Authenticator::bio_enroll(self, token, Some(timeout_ms), &mut progress)
            .map(drop)
            .map_err(OpError::transport("bioEnrollment.enroll"))
    }
    fn delete_credential(
        &mut self,
        token: &PinUvAuthToken,
        credential_id: &[u8],
    ) -> Result<(), OpError> {
        Authenticator::delete_credential(
            self,
            token,
            &CredentialDescriptor::public_key(credential_id.to_vec()),
        )
        .map_err(OpError::transport("credentialManagement.deleteCredential"))
    }
    fn pin_retries(&mut self) -> Result<u32, OpError> {
        Authenticator::pin_retries(self)
            .map(|r| r.retries)
            .map_err(OpError::transport("getPINRetries"))
    }
}
