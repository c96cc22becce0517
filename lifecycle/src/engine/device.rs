//! Device steps as jobs of the split protocol. Consecutive device steps of a plan become
//! one signed `Job` for the device half (`keysmith-device`), split before the
//! makeCredential steps (review E10: the key is configured first, then the creation
//! options are fetched and the credentials made). What only the server may do happens
//! here, around the job: the transport PIN is generated, sealed under the PIN key and
//! stored before the job carrying it is sent; the client data is built here; the returned
//! attestation is verified here; the stored transport PIN is deleted once a result shows
//! the key's PIN reset or changed.

use std::sync::Arc;

use fido_core::attestation::AttestationObject;
use fido_core::commands::AuthenticatorInfo;
use keysmith_device::{Made, OpError};
use keysmith_wire::{DeviceStep, OutcomeStatus, PinSource, RpInfo, StepOutput, UserInfo};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::execute::random_pin;
use super::flow::{FlowContext, MadeCredential};
use super::Engine;
use super::{EngineError, IdpEffectError, LookupError, PlanError, UnixMillis};
use crate::idp::{CreationChallenge, Idp};
use crate::remote::{DeviceLink, JobSpec, JOB_TTL_MS};
use crate::state::Step;
use crate::store::TransportPin;
use crate::template::{render_display_name, DeviceFacts, DeviceOptions, PasskeyTemplate};
use crate::Error;

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

/// True for the plan steps the device half runs.
pub(super) fn is_device_step(step: &Step) -> bool {
    matches!(
        step,
        Step::ResetAuthenticator
            | Step::SetTransportPin
            | Step::SetMinPinLength { .. }
            | Step::EnableAlwaysUv
            | Step::EnrollFingerprints { .. }
            | Step::MakeCredential { .. }
            | Step::ChangePin
    )
}

/// The CTAP operation a device step starts with (for "no key attached").
pub(super) fn step_name(step: &Step) -> &'static str {
    match step {
        Step::ResetAuthenticator => "reset",
        Step::SetTransportPin => "setPIN",
        Step::SetMinPinLength { .. } => "setMinPINLength",
        Step::EnableAlwaysUv => "toggleAlwaysUv",
        Step::EnrollFingerprints { .. } => "bioEnrollment",
        Step::MakeCredential { .. } => "makeCredential",
        Step::ChangePin => "changePIN",
        _ => "device",
    }
}

/// The end (exclusive) of the job that starts at `start`: consecutive device steps, cut
/// before a makeCredential that follows a configuration step.
pub(super) fn batch_end(steps: &[Step], start: usize) -> usize {
    let mut end = start;
    while end < steps.len() && is_device_step(&steps[end]) {
        let make = matches!(steps[end], Step::MakeCredential { .. });
        if end > start && make && !matches!(steps[end - 1], Step::MakeCredential { .. }) {
            break;
        }
        end += 1;
    }
    end
}

/// What is done on the server once a step's outcome is ok.
enum Post {
    None,
    /// The key was reset: its transport PIN is gone (unless this job stored a new one).
    Reset,
    /// The transport PIN is on the key.
    SetPin(Zeroizing<String>),
    /// A credential to verify and keep.
    Made(Box<MakePrep>),
    /// The holder's PIN replaced the transport PIN.
    ChangedPin,
}

/// The server's part of a makeCredential, prepared before the job.
struct MakePrep {
    passkey_template: String,
    t: PasskeyTemplate,
    idp: Arc<dyn Idp>,
    idp_user: String,
    challenge: CreationChallenge,
    client_data: String,
    hash: [u8; 32],
    /// The display name the key was given: registered as is at activation.
    display_name: String,
}

/// A job being built: its steps, their post-actions and sealed-to-be secrets.
#[derive(Default)]
struct Batch {
    steps: Vec<DeviceStep>,
    posts: Vec<Post>,
    secrets: Vec<(u32, Zeroizing<String>)>,
    /// A step of this job set, changed or verified the PIN (`Current` works from here).
    pin_in_batch: bool,
    /// A step of this job reset the key.
    reset: bool,
    /// This job stores a new transport PIN.
    stores_pin: bool,
}

impl Engine {
    /// Where the PIN for a token comes from: the device session's current PIN when it
    /// holds one, else the stored transport PIN, sealed into the job.
    fn pin_source(
        &self,
        flow: &FlowContext<'_>,
        link_current: bool,
        b: &mut Batch,
    ) -> Result<PinSource, Error> {
        if b.pin_in_batch || (link_current && !b.reset) {
            return Ok(PinSource::Current);
        }
        let pin = self.current_pin(flow)?;
        let id = u32::try_from(b.secrets.len() + 1).unwrap_or(u32::MAX);
        b.secrets.push((id, pin));
        Ok(PinSource::Secret(id))
    }

    /// A token's PIN source for an authenticatorConfig step, which needs none on a key
    /// without a PIN: none after a reset in this job or before the job sets the PIN.
    fn config_pin(
        &self,
        flow: &FlowContext<'_>,
        link_current: bool,
        b: &mut Batch,
        rest: &[Step],
    ) -> Result<Option<PinSource>, Error> {
        let later_sets = rest.iter().any(|s| matches!(s, Step::SetTransportPin));
        if !b.pin_in_batch && (b.reset || (later_sets && !link_current)) {
            return Ok(None);
        }
        self.pin_source(flow, link_current, b).map(Some)
    }

    /// Runs `steps` (device steps, see [`batch_end`]) as one job through `link`.
    pub(super) fn run_job(
        &self,
        flow: &mut FlowContext<'_>,
        steps: &[Step],
        link: &mut dyn DeviceLink,
        now: UnixMillis,
    ) -> Result<(), Error> {
        let current = link.current_known();
        let mut b = Batch::default();
        for (i, step) in steps.iter().enumerate() {
            tracing::info!(?step, "step");
            match step {
                Step::ResetAuthenticator => {
                    b.steps.push(DeviceStep::Reset {
                        require_replug: false,
                        only_if_aaguid: None,
                    });
                    b.posts.push(Post::Reset);
                    b.reset = true;
                    b.pin_in_batch = false;
                }
                Step::SetTransportPin => {
                    let pin = random_pin();
                    // Sealed and stored before the job carrying it is sent: a crash in
                    // between never leaves a key with a PIN nobody knows.
                    let sealed = TransportPin::new(pin.as_str())?;
                    self.store
                        .put_transport_pin(&flow.key.key_id, &sealed, &self.pin_key, now)?;
                    let id = u32::try_from(b.secrets.len() + 1).unwrap_or(u32::MAX);
                    b.secrets.push((id, pin.clone()));
                    b.steps.push(DeviceStep::SetPin {
                        pin: PinSource::Secret(id),
                    });
                    b.posts.push(Post::SetPin(pin));
                    b.pin_in_batch = true;
                    b.stores_pin = true;
                }
                Step::SetMinPinLength {
                    min_pin_length,
                    rp_ids,
                    force_change_pin,
                } => {
                    if let Some(m) = min_pin_length {
                        u8::try_from(*m).map_err(|_| PlanError::Unsupported {
                            step: "setMinPINLength",
                            reason: format!("minimum PIN length {m} exceeds 255"),
                        })?;
                    }
                    let pin = self.config_pin(flow, current, &mut b, &steps[i + 1..])?;
                    b.steps.push(DeviceStep::SetMinPinLength {
                        min: *min_pin_length,
                        rp_ids: rp_ids.clone(),
                        force_change: *force_change_pin,
                        pin,
                    });
                    b.posts.push(Post::None);
                }
                Step::EnableAlwaysUv => {
                    let pin = self.config_pin(flow, current, &mut b, &steps[i + 1..])?;
                    b.steps.push(DeviceStep::EnableAlwaysUv { pin });
                    b.posts.push(Post::None);
                }
                Step::EnrollFingerprints {
                    min_fingerprints,
                    timeout_ms,
                } => {
                    let pin = self.pin_source(flow, current, &mut b)?;
                    b.steps.push(DeviceStep::EnrollFingerprints {
                        min: *min_fingerprints,
                        timeout_ms: *timeout_ms,
                        pin,
                    });
                    b.posts.push(Post::None);
                    b.pin_in_batch = true;
                }
                Step::MakeCredential {
                    passkey_template,
                    idp_connection,
                    rp_id,
                    origin,
                } => {
                    let pin = self.pin_source(flow, current, &mut b)?;
                    let key_extensions = link.info().extensions.clone().unwrap_or_default();
                    let key_ep = link.info().supports_option("ep") == Some(true);
                    let (step, prep) = self.prepare_make(
                        flow,
                        passkey_template,
                        idp_connection,
                        rp_id.as_deref(),
                        origin.as_deref(),
                        pin,
                        &key_extensions,
                        key_ep,
                        link,
                    )?;
                    b.steps.push(step);
                    b.posts.push(Post::Made(Box::new(prep)));
                    b.pin_in_batch = true;
                }
                Step::ChangePin => {
                    if !link.has_holder_pin() {
                        return Err(PlanError::Unsupported {
                            step: "changePIN",
                            reason: "no holder PIN given".into(),
                        }
                        .into());
                    }
                    let stored = match &flow.pin {
                        Some(p) => Some(p.clone()),
                        None => self
                            .store
                            .get_transport_pin(&flow.key.key_id, &self.pin_key)?
                            .map(|t| Zeroizing::new(t.expose().to_owned())),
                    };
                    let min_len = link
                        .info()
                        .min_pin_length
                        .and_then(|n| u32::try_from(n).ok())
                        .unwrap_or(4);
                    match stored {
                        Some(transport) => {
                            let current_src = if b.pin_in_batch || (current && !b.reset) {
                                PinSource::Current
                            } else {
                                let id = u32::try_from(b.secrets.len() + 1).unwrap_or(u32::MAX);
                                b.secrets.push((id, transport));
                                PinSource::Secret(id)
                            };
                            b.steps.push(DeviceStep::ChangePin {
                                current: current_src,
                                new: PinSource::NewHolderPin {
                                    min_len,
                                    confirm: false,
                                },
                            });
                            b.posts.push(Post::ChangedPin);
                        }
                        // An earlier attempt changed the PIN and then failed at the IdP:
                        // the transport PIN is gone, so the holder's PIN is checked
                        // instead (a wrong one fails here, before any IdP call).
                        None => {
                            b.steps.push(DeviceStep::VerifyPin {
                                pin: PinSource::HolderPin,
                            });
                            b.posts.push(Post::None);
                        }
                    }
                    b.pin_in_batch = true;
                }
                other => {
                    return Err(PlanError::Unsupported {
                        step: step_name(other),
                        reason: "not a device step".into(),
                    }
                    .into())
                }
            }
        }
        let Batch {
            steps: dsteps,
            posts,
            secrets,
            pin_in_batch,
            reset,
            stores_pin,
        } = b;
        let outcomes = link.run(JobSpec {
            operation: flow.operation.as_str().to_owned(),
            key_id: Some(flow.key.key_id.clone()),
            expect_aaguid: Some(flow.key.aaguid),
            deadline_ms: JOB_TTL_MS,
            steps: dsteps,
            secrets,
        })?;
        let aaguid = link.info().aaguid;
        for (o, post) in outcomes.iter().zip(posts) {
            if o.status != OutcomeStatus::Ok {
                let e = OpError::from_outcome(o).unwrap_or_else(|| {
                    OpError::new(
                        "job",
                        keysmith_device::DeviceFault::Protocol {
                            message: "a step was skipped without an earlier failure".into(),
                        },
                    )
                });
                return Err(e.into());
            }
            match post {
                Post::None => {}
                Post::Reset => {
                    if !stores_pin {
                        self.store.delete_transport_pin(&flow.key.key_id)?;
                    }
                    flow.pin = None;
                }
                Post::SetPin(pin) => flow.pin = Some(pin),
                Post::ChangedPin => {
                    self.store.delete_transport_pin(&flow.key.key_id)?;
                    flow.pin = None;
                }
                Post::Made(prep) => {
                    let Some(StepOutput::Made {
                        credential_id,
                        attestation_object,
                    }) = o.out.clone()
                    else {
                        return Err(EngineError::Attestation {
                            passkey_template: prep.passkey_template.clone(),
                            reason: "the device half returned no credential".into(),
                        }
                        .into());
                    };
                    self.finish_make(flow, *prep, credential_id, attestation_object, &aaguid, now)?;
                }
            }
        }
        let known = pin_in_batch || (link.current_known() && !reset);
        link.set_current_known(known);
        Ok(())
    }

    /// The server's part of a makeCredential before the job: the creation options from
    /// the IdP, the client data, and the device step. The IdP's creation extensions
    /// (credProtect policy, hmac-secret) are carried to the key as a browser does, given
    /// the extensions the key lists (`key_extensions`, getInfo).
    #[allow(clippy::too_many_arguments)]
    fn prepare_make(
        &self,
        flow: &mut FlowContext<'_>,
        passkey_template: &str,
        idp_connection: &str,
        rp_id: Option<&str>,
        origin: Option<&str>,
        pin: PinSource,
        key_extensions: &[String],
        key_ep: bool,
        link: &mut dyn DeviceLink,
    ) -> Result<(DeviceStep, MakePrep), Error> {
        let t = flow
            .templates
            .passkey
            .get(passkey_template)
            .cloned()
            .ok_or_else(|| LookupError::UnknownTemplate {
                template: passkey_template.to_owned(),
            })?;
        let idp = self.idp(idp_connection)?.clone();
        let user = flow.user.clone().ok_or(LookupError::NotIssued {
            key_id: flow.key.key_id.clone(),
            what: "user",
        })?;
        if flow.attrs.is_empty() {
            let (_, attrs, _) = self.user_attrs(idp.as_ref(), &user, &flow.key.serial)?;
            flow.attrs = attrs;
        }
        let display = render_display_name(&t, &flow.attrs).map_err(|p| PlanError::DisplayName {
            field: p.field,
            message: p.message,
        })?;
        let minutes = u32::try_from(t.challenge_timeout()).ok();
        let idp_user = self.user_at(
            &flow.templates,
            &user,
            flow.attrs.get("userPrincipalName").map(String::as_str),
            idp_connection,
        )?;
        let challenge = if link.delegated()
            && flow.templates.credential.self_service.registration
                == crate::template::RegistrationMode::Delegated
        {
            // The holder's own token fetches the options (Graph v1.0 `/me`: no timeout
            // parameter, 5 minutes).
            let upn = flow
                .attrs
                .get("userPrincipalName")
                .cloned()
                .unwrap_or_else(|| user.clone());
            self.holder_challenge(idp.as_ref(), link, origin, &upn)?
        } else {
            idp.creation_challenge(&idp_user, minutes, origin)?
        };
        if let Some(pinned) = rp_id {
            if pinned != challenge.rp_id {
                return Err(IdpEffectError::RpIdMismatch {
                    passkey_template: passkey_template.to_owned(),
                    pinned: pinned.to_owned(),
                    issued: challenge.rp_id.clone(),
                }
                .into());
            }
        }
        let ext =
            challenge
                .extensions
                .for_key(key_extensions)
                .map_err(|e| EngineError::Device {
                    step: "makeCredential",
                    cause: crate::DeviceFault::Unsupported {
                        message: e.to_string(),
                    }
                    .into(),
                })?;
        let client_data = challenge.client_data_json();
        let hash: [u8; 32] = Sha256::digest(client_data.as_bytes()).into();
        let upn = flow
            .attrs
            .get("userPrincipalName")
            .cloned()
            .unwrap_or_else(|| user.clone());
        let step = DeviceStep::MakeCredential {
            passkey_template: passkey_template.to_owned(),
            rp: RpInfo {
                id: challenge.rp_id.clone(),
                name: challenge.rp_name.clone().unwrap_or_default(),
            },
            user: UserInfo {
                id: challenge.user_handle.clone(),
                name: upn,
                display_name: display.clone(),
            },
            client_data_json: client_data.clone().into_bytes(),
            algs: challenge.algorithms.clone(),
            exclude: challenge.exclude_ids.clone(),
            cred_protect: ext.cred_protect,
            min_pin_length: false,
            hmac_secret: ext.hmac_secret,
            pin,
            // Only keys with enterprise attestation enabled are asked (others refuse it).
            enterprise_attestation: flow
                .templates
                .credential
                .fido2
                .enterprise_attestation
                .filter(|_| key_ep),
        };
        Ok((
            step,
            MakePrep {
                passkey_template: passkey_template.to_owned(),
                t,
                idp,
                idp_user,
                challenge,
                client_data,
                hash,
                display_name: display,
            },
        ))
    }

    /// The server's part of a makeCredential after the job: the attestation verified over
    /// this server's client data hash, audited, and the credential kept for storing.
    fn finish_make(
        &self,
        flow: &mut FlowContext<'_>,
        prep: MakePrep,
        credential_id: Vec<u8>,
        attestation_object: Vec<u8>,
        aaguid: &[u8; 16],
        now: UnixMillis,
    ) -> Result<(), Error> {
        // The public key as the attested credential data carries it (what the key
        // returned as makeCredential's public key).
        let public_key = AttestationObject::from_cbor(&attestation_object)
            .ok()
            .and_then(|a| {
                a.auth_data()
                    .attested_credential()
                    .map(|c| c.public_key().to_cbor())
            })
            .unwrap_or_default();
        let mut made = Made {
            credential_id,
            public_key,
            attestation_object,
        };
        let MakePrep {
            passkey_template,
            t,
            idp,
            idp_user,
            challenge,
            client_data,
            hash,
            display_name,
        } = prep;
        let verdict =
            self.check_attestation(&t, idp.as_ref(), &idp_user, &made, &hash, aaguid, true, now)?;
        // The statement verified (else refused above): its certificate's serial is the
        // key's identity under enterprise attestation, else evidence for the audit.
        let serial = self.identity_from_attestation(flow, &made.attestation_object)?;
        // The IdP gets the WebAuthn attestation object without the CTAP `epAtt` mark.
        if let Some(att) = AttestationObject::from_cbor(&made.attestation_object)
            .ok()
            .filter(AttestationObject::enterprise_attestation)
        {
            made.attestation_object = att.with_enterprise_attestation(false).to_cbor();
        }
        let rec = flow.audit(
            "attestation",
            if verdict.trusted {
                "verified"
            } else {
                "unattested"
            },
            Some(format!(
                "passkey_template={passkey_template} {}{}",
                verdict.detail,
                serial.map(|s| format!(" {s}")).unwrap_or_default()
            )),
            now,
        );
        flow.work.audit.push(rec);
        flow.made.insert(
            passkey_template,
            MadeCredential {
                made,
                client_data: client_data.into_bytes(),
                idp_expiry: challenge.expires_at_ms,
                idp_user,
                display_name,
            },
        );
        Ok(())
    }
}
