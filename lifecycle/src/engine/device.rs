//! The engine's view of an attached authenticator: the few CTAP operations the flows
//! make, behind an object-safe trait so flows without a key need no transport type.

use fido_core::commands::{AuthenticatorInfo, CredentialDescriptor, RpEntity, UserEntity};
use fido_core::pin::{Permissions, PinUvAuthToken};
use fido_transport::client::{
    Assertion, Authenticator, EnrollProgress, GetAssertionArgs, MakeCredentialArgs,
};
use fido_transport::{Progress, Transport};

use super::{DevicePrompt, EngineError};
use crate::template::{DeviceFacts, DeviceOptions};

/// Wraps the transport's error of `step`, kept typed.
pub(super) fn dev(step: &'static str) -> impl Fn(fido_transport::Error) -> EngineError {
    move |e| EngineError::Device {
        step,
        cause: e.into(),
    }
}

/// A credential made on the key (owned bytes).
pub(crate) struct Made {
    pub credential_id: Vec<u8>,
    pub public_key: Vec<u8>,
    pub attestation_object: Vec<u8>,
}

/// Maps the transport's progress to the engine's prompt for `step`.
fn relay<'a>(step: &'static str, prompt: &'a dyn Fn(&DevicePrompt)) -> impl FnMut(Progress) + 'a {
    move |p| {
        if p == Progress::UserPresenceNeeded {
            prompt(&DevicePrompt::TouchKey { step });
        }
    }
}

/// What the flows ask of a key. `prompt` receives "touch your key" and fingerprint
/// prompts while a command waits for the holder.
pub(crate) trait DeviceOps {
    fn info(&mut self) -> Result<AuthenticatorInfo, EngineError>;
    fn reset(&mut self, prompt: &dyn Fn(&DevicePrompt)) -> Result<(), EngineError>;
    fn set_pin(&mut self, pin: &str) -> Result<(), EngineError>;
    fn change_pin(&mut self, current: &str, new_pin: &str) -> Result<(), EngineError>;
    fn token(
        &mut self,
        pin: &str,
        permissions: Permissions,
        rp_id: Option<&str>,
    ) -> Result<PinUvAuthToken, EngineError>;
    fn set_min_pin_length(
        &mut self,
        min: Option<u8>,
        rp_ids: &[String],
        force_change: bool,
        token: &PinUvAuthToken,
    ) -> Result<(), EngineError>;
    fn enable_always_uv(&mut self, token: &PinUvAuthToken) -> Result<(), EngineError>;
    fn make_credential(
        &mut self,
        args: &MakeCredentialArgs,
        token: &PinUvAuthToken,
        prompt: &dyn Fn(&DevicePrompt),
    ) -> Result<Made, EngineError>;
    fn get_assertion(
        &mut self,
        args: &GetAssertionArgs,
        token: &PinUvAuthToken,
        prompt: &dyn Fn(&DevicePrompt),
    ) -> Result<Vec<Assertion>, EngineError>;
    /// Number of fingerprints enrolled on the key.
    fn bio_count(&mut self, token: &PinUvAuthToken) -> Result<u32, EngineError>;
    /// Enrolls one fingerprint (all its samples).
    fn bio_enroll(
        &mut self,
        token: &PinUvAuthToken,
        timeout_ms: u32,
        prompt: &dyn Fn(&DevicePrompt),
    ) -> Result<(), EngineError>;
}

impl<T: Transport> DeviceOps for Authenticator<T> {
    fn info(&mut self) -> Result<AuthenticatorInfo, EngineError> {
        self.refresh_info().cloned().map_err(dev("getInfo"))
    }
    fn reset(&mut self, prompt: &dyn Fn(&DevicePrompt)) -> Result<(), EngineError> {
        Authenticator::reset(self, &mut relay("reset", prompt)).map_err(dev("reset"))
    }
    fn set_pin(&mut self, pin: &str) -> Result<(), EngineError> {
        Authenticator::set_pin(self, pin).map_err(dev("setPIN"))
    }
    fn change_pin(&mut self, current: &str, new_pin: &str) -> Result<(), EngineError> {
        Authenticator::change_pin(self, current, new_pin).map_err(dev("changePIN"))
    }
    fn token(
        &mut self,
        pin: &str,
        permissions: Permissions,
        rp_id: Option<&str>,
    ) -> Result<PinUvAuthToken, EngineError> {
        self.pin_token(pin, permissions, rp_id)
            .map_err(dev("getPinUvAuthToken"))
    }
    fn set_min_pin_length(
        &mut self,
        min: Option<u8>,
        rp_ids: &[String],
        force_change: bool,
        token: &PinUvAuthToken,
    ) -> Result<(), EngineError> {
        Authenticator::set_min_pin_length(self, min, rp_ids, force_change, Some(token))
            .map_err(dev("setMinPINLength"))
    }
    fn enable_always_uv(&mut self, token: &PinUvAuthToken) -> Result<(), EngineError> {
        self.set_always_uv(true, Some(token))
            .map(|_| ())
            .map_err(dev("toggleAlwaysUv"))
    }
    fn make_credential(
        &mut self,
        args: &MakeCredentialArgs,
        token: &PinUvAuthToken,
        prompt: &dyn Fn(&DevicePrompt),
    ) -> Result<Made, EngineError> {
        let r = Authenticator::make_credential(
            self,
            args,
            Some(token),
            &mut relay("makeCredential", prompt),
        )
        .map_err(dev("makeCredential"))?;
        Ok(Made {
            credential_id: r.credential_id,
            public_key: r.public_key.to_cbor(),
            attestation_object: r.attestation.to_cbor(),
        })
    }
    fn get_assertion(
        &mut self,
        args: &GetAssertionArgs,
        token: &PinUvAuthToken,
        prompt: &dyn Fn(&DevicePrompt),
    ) -> Result<Vec<Assertion>, EngineError> {
        Authenticator::get_assertion(self, args, Some(token), &mut relay("getAssertion", prompt))
            .map_err(dev("getAssertion"))
    }
    fn bio_count(&mut self, token: &PinUvAuthToken) -> Result<u32, EngineError> {
        let n = self
            .bio_enumerate(token)
            .map_err(dev("bioEnrollment.enumerateEnrollments"))?
            .len();
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }
    fn bio_enroll(
        &mut self,
        token: &PinUvAuthToken,
        timeout_ms: u32,
        prompt: &dyn Fn(&DevicePrompt),
    ) -> Result<(), EngineError> {
        let mut progress = |p: EnrollProgress| match p {
            EnrollProgress::Transport(Progress::UserPresenceNeeded) => {
                prompt(&DevicePrompt::TouchKey {
                    step: "bioEnrollment",
                });
            }
            EnrollProgress::Sample { status, remaining } => {
                prompt(&DevicePrompt::FingerprintSample {
                    last_status: status,
                    remaining,
                });
            }
            _ => {}
        };
        Authenticator::bio_enroll(self, token, Some(timeout_ms), &mut progress)
            .map(drop)
            .map_err(dev("bioEnrollment.enroll"))
    }
}

/// The facts the planner needs, from getInfo.
pub(crate) fn facts(
    info: &AuthenticatorInfo,
    transport: crate::template::KeyTransport,
    can_reset_in_place: bool,
) -> DeviceFacts {
    let present = |name: &str| info.supports_option(name).is_some();
    DeviceFacts {
        ctap21: info.is_ctap21(),
        extensions: info.extensions.clone().unwrap_or_default(),
        options: DeviceOptions {
            bio_enroll: present("bioEnroll"),
            authnr_cfg: present("authnrCfg"),
            set_min_pin_length: present("setMinPINLength"),
            always_uv: present("alwaysUv"),
            always_uv_enabled: info.supports_option("alwaysUv") == Some(true),
            client_pin_set: info.supports_option("clientPin") == Some(true),
        },
        max_rpids_for_set_min_pin_length: info
            .max_rpids_for_set_min_pin_length
            .and_then(|n| u32::try_from(n).ok()),
        transport,
        can_reset_in_place,
        min_pin_length: info.min_pin_length.and_then(|n| u32::try_from(n).ok()),
    }
}

/// makeCredential arguments for a challenge.
pub(crate) fn make_args(
    client_data_hash: [u8; 32],
    challenge: &crate::idp::CreationChallenge,
    user_name: &str,
    display_name: &str,
) -> MakeCredentialArgs {
    let mut args = MakeCredentialArgs::new(
        client_data_hash,
        RpEntity {
            id: challenge.rp_id.clone(),
            name: challenge.rp_name.clone(),
        },
        UserEntity {
            id: challenge.user_handle.clone(),
            name: Some(user_name.to_owned()),
            display_name: Some(display_name.to_owned()),
        },
    );
    if !challenge.algorithms.is_empty() {
        args.algorithms = challenge.algorithms.clone();
    }
    args.exclude_list = challenge
        .exclude_ids
        .iter()
        .map(|id| CredentialDescriptor::public_key(id.clone()))
        .collect();
    args
}
