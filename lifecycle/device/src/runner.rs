//! The job runner: a job's steps in order on one key, each PIN resolved locally, each
//! pinUvAuthToken derived here (never received, never returned), stopping at the first
//! failure.

use std::collections::BTreeMap;

use fido_core::commands::{CredentialDescriptor, MakeCredentialExtensions, RpEntity, UserEntity};
use fido_core::pin::Permissions;
use fido_transport::client::{GetAssertionArgs, MakeCredentialArgs};
use keysmith_wire::{DeviceStep, Outcome, OutcomeStatus, PinSource, StepOutput};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::fault::{DeviceFault, OpError};
use crate::ops::{DeviceOps, Prompt};

/// The RP id a `VerifyPin` token is bound to: a name no relying party uses.
const VERIFY_RP_ID: &str = "keysmith.invalid";

/// The transport PINs of one job, opened, by secret id.
pub type Secrets = BTreeMap<u32, Zeroizing<String>>;

/// Why the holder's UI gave no PIN.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HolderUiError {
    /// The holder cancelled.
    #[error("the holder cancelled")]
    Cancelled,
    /// This device half has no holder UI.
    #[error("no holder UI is attached")]
    Unavailable,
}

/// The holder's side of the device half: PIN entry and prompts. The PIN goes from here to
/// the key, never to the server.
pub trait HolderUi {
    /// Asks the holder for a new PIN (`NewHolderPin`): at least `min_len` characters, asked
    /// twice when `confirm`.
    fn new_pin(&mut self, min_len: u32, confirm: bool) -> Result<Zeroizing<String>, HolderUiError>;
    /// Asks the holder for their existing PIN (`HolderPin`).
    fn holder_pin(&mut self) -> Result<Zeroizing<String>, HolderUiError>;
    /// Shows a prompt ("touch your key", fingerprint samples).
    fn prompt(&self, prompt: &Prompt);
}

/// The PIN an earlier step of this session set, changed or verified (`PinSource::Current`).
/// Zeroized when dropped; `Debug` shows only whether one is held.
#[derive(Default)]
pub struct PinMemory {
    current: Option<Zeroizing<String>>,
}

impl PinMemory {
    /// True when a PIN is held.
    pub fn is_set(&self) -> bool {
        self.current.is_some()
    }
    /// Forgets the PIN (zeroized).
    pub fn clear(&mut self) {
        self.current = None;
    }
}

impl std::fmt::Debug for PinMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PinMemory")
            .field("current", &self.current.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Runs `steps` in order on `ops`: resolves each [`PinSource`] (`Secret` from `secrets`,
/// `NewHolderPin`/`HolderPin` through `ui`, `Current` from `memory`), derives the tokens,
/// relays prompts to `ui`, stops at the first failure and reports every later step
/// `Skipped`. Returns one outcome per step, in order.
pub fn run_steps(
    steps: &[DeviceStep],
    secrets: &Secrets,
    memory: &mut PinMemory,
    ops: &mut dyn DeviceOps,
    ui: &mut dyn HolderUi,
) -> Vec<Outcome> {
    let mut out = Vec::with_capacity(steps.len());
    let mut failed = false;
    for (i, step) in steps.iter().enumerate() {
        let index = u32::try_from(i).unwrap_or(u32::MAX);
        if failed {
            out.push(Outcome {
                step: index,
                status: OutcomeStatus::Skipped,
                ctap: None,
                retries: None,
                out: None,
                error: None,
            });
            continue;
        }
        let mut run = Run {
            secrets,
            memory: &mut *memory,
            ops: &mut *ops,
            ui: &mut *ui,
        };
        match run.step(step) {
            Ok(output) => out.push(Outcome {
                step: index,
                status: OutcomeStatus::Ok,
                ctap: None,
                retries: None,
                out: output,
                error: None,
            }),
            Err(e) => {
                failed = true;
                out.push(e.to_outcome(index));
            }
        }
    }
    out
}

struct Run<'a> {
    secrets: &'a Secrets,
    memory: &'a mut PinMemory,
    ops: &'a mut dyn DeviceOps,
    ui: &'a mut dyn HolderUi,
}

fn ui_error(e: HolderUiError) -> OpError {
    let fault = match e {
        HolderUiError::Cancelled => DeviceFault::Cancelled,
        HolderUiError::Unavailable => DeviceFault::Unsupported {
            message: "the job needs the holder's PIN and no holder UI is attached".into(),
        },
    };
    OpError::new("holderUi", fault)
}

impl Run<'_> {
    fn pin(&mut self, source: &PinSource) -> Result<Zeroizing<String>, OpError> {
        let bad = |message: String| OpError::new("job", DeviceFault::InvalidArgument { message });
        match source {
            PinSource::Secret(id) => self
                .secrets
                .get(id)
                .cloned()
                .ok_or_else(|| bad(format!("the job carries no secret {id}"))),
            PinSource::NewHolderPin { min_len, confirm } => {
                self.ui.new_pin(*min_len, *confirm).map_err(ui_error)
            }
            PinSource::HolderPin => self.ui.holder_pin().map_err(ui_error),
            PinSource::Current => self
                .memory
                .current
                .clone()
                .ok_or_else(|| bad("no earlier step of this session set a PIN".into())),
        }
    }

    /// `pin` worked on the key: later steps may use it as `Current`.
    fn remember(&mut self, pin: Zeroizing<String>) {
        self.memory.current = Some(pin);
    }

    fn step(&mut self, step: &DeviceStep) -> Result<Option<StepOutput>, OpError> {
        match step {
            DeviceStep::ReadInfo => {
                let info = self.ops.info()?;
                Ok(Some(StepOutput::Info {
                    get_info: encode_info(&info),
                }))
            }
            DeviceStep::Probe {
                rp_id,
                allow,
                client_data_json,
            } => {
                let mut args =
                    GetAssertionArgs::new(rp_id.clone(), Sha256::digest(client_data_json).into());
                args.allow_list = descriptors(allow);
                args.user_presence = false;
                let a = self
                    .ops
                    .get_assertion(&args, None, &|p| self.ui.prompt(p))?;
                asserted(a)
            }
            // At a station that knows the key's slot, a key past its power-up window (or
            // any key, with `require_replug`) is replugged and reset at once
            // (`DeviceOps::reset_at_station`); elsewhere the transport reports "too late".
            DeviceStep::Reset {
                require_replug,
                only_if_aaguid,
            } => {
                if let Some(want) = only_if_aaguid {
                    if self.ops.info()?.aaguid != *want {
                        return Err(OpError::new("reset", DeviceFault::WrongKey));
                    }
                }
                self.ops
                    .reset_at_station(*require_replug, &|p| self.ui.prompt(p))?;
                self.memory.clear();
                Ok(None)
            }
            DeviceStep::SetPin { pin } => {
                let pin = self.pin(pin)?;
                self.ops.set_pin(&pin)?;
                self.remember(pin);
                Ok(None)
            }
            DeviceStep::ChangePin { current, new } => {
                let current = self.pin(current)?;
                let new = self.pin(new)?;
                self.ops.change_pin(&current, &new)?;
                self.remember(new);
                Ok(None)
            }
            DeviceStep::VerifyPin { pin } => {
                let pin = self.pin(pin)?;
                self.ops
                    .token(&pin, Permissions::MAKE_CREDENTIAL, Some(VERIFY_RP_ID))?;
                self.remember(pin);
                Ok(None)
            }
            DeviceStep::SetMinPinLength {
                min,
                rp_ids,
                force_change,
                pin,
            } => {
                let min = match min {
                    Some(m) => Some(u8::try_from(*m).map_err(|_| {
                        OpError::new(
                            "setMinPINLength",
                            DeviceFault::InvalidArgument {
                                message: format!("minimum PIN length {m} exceeds 255"),
                            },
                        )
                    })?),
                    None => None,
                };
                let token = self.token(pin.as_ref(), Permissions::AUTHENTICATOR_CONFIG, None)?;
                self.ops
                    .set_min_pin_length(min, rp_ids, *force_change, token.as_ref())?;
                Ok(None)
            }
            DeviceStep::EnableAlwaysUv { pin } => {
                let token = self.token(pin.as_ref(), Permissions::AUTHENTICATOR_CONFIG, None)?;
                self.ops.enable_always_uv(token.as_ref())?;
                Ok(None)
            }
            DeviceStep::EnrollFingerprints {
                min,
                timeout_ms,
                pin,
            } => {
                let pin = self.pin(pin)?;
                let token = self.ops.token(&pin, Permissions::BIO_ENROLLMENT, None)?;
                let mut enrolled = self.ops.bio_count(&token)?;
                self.remember(pin.clone());
                while enrolled < *min {
                    self.ui.prompt(&Prompt::EnrollFingerprint {
                        number: enrolled + 1,
                        of: *min,
                    });
                    // A fresh token per finger: enrolment can outlast a token's usage
                    // window on real keys.
                    let token = self.ops.token(&pin, Permissions::BIO_ENROLLMENT, None)?;
                    self.ops
                        .bio_enroll(&token, *timeout_ms, &|p| self.ui.prompt(p))?;
                    enrolled += 1;
                }
                Ok(Some(StepOutput::Enrolled { enrolled }))
            }
            DeviceStep::MakeCredential {
                passkey_template: _,
                rp,
                user,
                client_data_json,
                algs,
                exclude,
                cred_protect,
                min_pin_length,
                hmac_secret,
                pin,
                enterprise_attestation,
            } => {
                let pin = self.pin(pin)?;
                let mut args = MakeCredentialArgs::new(
                    Sha256::digest(client_data_json).into(),
                    RpEntity {
                        id: rp.id.clone(),
                        name: Some(rp.name.clone()).filter(|n| !n.is_empty()),
                    },
                    UserEntity {
                        id: user.id.clone(),
                        name: Some(user.name.clone()),
                        display_name: Some(user.display_name.clone()),
                    },
                );
                if !algs.is_empty() {
                    args.algorithms = algs.clone();
                }
                args.exclude_list = descriptors(exclude);
                args.enterprise_attestation = *enterprise_attestation;
                let ext = MakeCredentialExtensions {
                    cred_protect: *cred_protect,
                    hmac_secret: hmac_secret.then_some(true),
                    min_pin_length: min_pin_length.then_some(true),
                    ..MakeCredentialExtensions::default()
                };
                if !ext.is_empty() {
                    args.extensions = Some(ext);
                }
                let token = self
                    .ops
                    .token(&pin, Permissions::MAKE_CREDENTIAL, Some(&rp.id))?;
                self.remember(pin);
                let made = self
                    .ops
                    .make_credential(&args, &token, &|p| self.ui.prompt(p))?;
                Ok(Some(StepOutput::Made {
                    credential_id: made.credential_id,
                    attestation_object: made.attestation_object,
                }))
            }
            DeviceStep::GetAssertion {
                rp_id,
                allow,
                client_data_json,
                pin,
            } => {
                let token = self.token(pin.as_ref(), Permissions::GET_ASSERTION, Some(rp_id))?;
                let mut args =
                    GetAssertionArgs::new(rp_id.clone(), Sha256::digest(client_data_json).into());
                args.allow_list = descriptors(allow);
                let a = self
                    .ops
                    .get_assertion(&args, token.as_ref(), &|p| self.ui.prompt(p))?;
                asserted(a)
            }
            DeviceStep::CredMgmtDelete {
                rp_id: _,
                credential_id,
                pin,
            } => {
                let pin = self.pin(pin)?;
                let token = self
                    .ops
                    .token(&pin, Permissions::CREDENTIAL_MANAGEMENT, None)?;
                self.remember(pin);
                self.ops.delete_credential(&token, credential_id)?;
                Ok(None)
            }
            DeviceStep::ReadIdentifier { pin } => {
                let pin = self.pin(pin)?;
                let id = self.ops.device_identifier(&pin)?;
                self.remember(pin);
                Ok(id.map(|identifier| StepOutput::Identifier { identifier }))
            }
            // The wire's step list is non-exhaustive: a step this runner does not know is
            // refused, never approximated.
            #[allow(unreachable_patterns)]
            _ => Err(OpError::new(
                "job",
                DeviceFault::Unsupported {
                    message: "this device half does not know the step".into(),
                },
            )),
        }
    }

    /// A token from `pin` when the step gives one (and the PIN is then `Current`).
    fn token(
        &mut self,
        pin: Option<&PinSource>,
        permissions: Permissions,
        rp_id: Option<&str>,
    ) -> Result<Option<fido_core::pin::PinUvAuthToken>, OpError> {
        let Some(source) = pin else {
            return Ok(None);
        };
        let pin = self.pin(source)?;
        let token = self.ops.token(&pin, permissions, rp_id)?;
        self.remember(pin);
        Ok(Some(token))
    }
}

fn descriptors(ids: &[Vec<u8>]) -> Vec<CredentialDescriptor> {
    ids.iter()
        .map(|id| CredentialDescriptor::public_key(id.clone()))
        .collect()
}

fn asserted(mut a: Vec<fido_transport::client::Assertion>) -> Result<Option<StepOutput>, OpError> {
    if a.is_empty() {
        return Err(OpError::new(
            "getAssertion",
            DeviceFault::Protocol {
                message: "the key returned no assertion".into(),
            },
        ));
    }
    let a = a.swap_remove(0);
    Ok(Some(StepOutput::Asserted {
        credential_id: a.credential.id,
        auth_data: a.auth_data_bytes,
        signature: a.signature,
        user_handle: a.user.map(|u| u.id),
    }))
}

/// getInfo as canonical CBOR (what a `DeviceReport` and a `ReadInfo` carry).
pub(crate) fn encode_info(info: &fido_core::commands::AuthenticatorInfo) -> Vec<u8> {
    use fido_core::commands::ResponseData;
    info.to_cbor()
        .map(|v| fido_core::cbor::encode(&v))
        .unwrap_or_default()
}
