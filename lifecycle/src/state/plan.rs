//! The planner: the ordered steps the engine performs for an operation.
//!
//! [`plan`] is a pure function of (operation, template, recorded key facts, device facts,
//! now): no IO, no clock, no randomness, so it can be property-tested and replayed. The
//! engine executes the steps in order, journalling each IdP side effect first, and writes
//! one audit record per operation.

use super::{can_reissue, next_state, not_allowed, Operation, TransitionError};
use crate::model::{Action, CredentialState};
use crate::template::{DeviceFacts, TemplateSet};
use crate::Error;

/// Milliseconds since the Unix epoch (UTC); the engine passes its clock's reading in.
pub type UnixMillis = u64;

/// A pending registration recorded for the key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PendingFact {
    /// The passkey template it was made for.
    pub passkey_template: String,
    /// The IdP connection it is to be sent to.
    pub idp_connection: String,
    /// When its challenge expires. At exactly this instant it counts as expired.
    pub expires_at_ms: UnixMillis,
}

/// A passkey recorded as registered at an IdP.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RegisteredFact {
    /// The passkey template it was made with.
    pub passkey_template: String,
    /// The IdP connection holding it.
    pub idp_connection: String,
}

/// What the repository records about the key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct KeyFacts {
    /// The recorded state.
    pub state: CredentialState,
    /// Set when an activation found an expired challenge.
    pub needs_reissue: bool,
    /// Pending registrations, in the order they were made.
    pub pending: Vec<PendingFact>,
    /// Passkeys registered at IdPs.
    pub registered: Vec<RegisteredFact>,
}

impl KeyFacts {
    /// A key in `state` with nothing recorded on it.
    pub fn new(state: CredentialState) -> Self {
        KeyFacts {
            state,
            needs_reissue: false,
            pending: Vec::new(),
            registered: Vec::new(),
        }
    }
}

/// What a failed IdP deletion does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OnIdpFailure {
    /// Cancel the whole operation: state stays as it was, the caller gets the IdP's error
    /// (revoke with forced IdP deletion).
    CancelOperation,
    /// The local change stands; the deletion is retried durably until done.
    RetryDurably,
}

/// One step of a plan.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Step {
    /// Check the IdP's FIDO2 policy admits the key and the connection works.
    PolicyPreflight {
        /// Passkey template.
        passkey_template: String,
        /// IdP connection.
        idp_connection: String,
    },
    /// CTAP reset of the FIDO2 application.
    ResetAuthenticator,
    /// Set a random transport PIN (stored encrypted, never shown).
    SetTransportPin,
    /// `setMinPINLength`.
    SetMinPinLength {
        /// New minimum, when it raises the key's current one (or the key was reset).
        min_pin_length: Option<u32>,
        /// RP ids allowed to read it.
        rp_ids: Vec<String>,
        /// Demand a new PIN on first use.
        force_change_pin: bool,
    },
    /// Make sure always-UV is on: `toggleAlwaysUv` flips the option, so the engine reads
    /// `getInfo` first and toggles only when it is off. Left out when the key already has it
    /// on and is not reset.
    EnableAlwaysUv,
    /// Enrol fingerprints.
    EnrollFingerprints {
        /// At least this many.
        min_fingerprints: u32,
        /// Timeout per sample in ms.
        timeout_ms: u32,
    },
    /// Ask the IdP for creation options and make the discoverable, user-verified credential
    /// (display name rendered with `render_display_name`).
    MakeCredential {
        /// Passkey template.
        passkey_template: String,
        /// IdP connection.
        idp_connection: String,
        /// Pinned RP id, if the template pins one.
        rp_id: Option<String>,
        /// Pinned origin, if the template pins one.
        origin: Option<String>,
    },
    /// Store the attestation as a pending registration.
    StorePendingRegistration {
        /// Passkey template.
        passkey_template: String,
        /// IdP connection.
        idp_connection: String,
        /// Expiry by the template's timeout; the engine keeps the earlier of this and the
        /// IdP's own expiry.
        expires_at_ms: UnixMillis,
    },
    /// The holder's PIN replaces the transport PIN (`changePIN`).
    ChangePin,
    /// Send a pending registration to the IdP.
    RegisterPending {
        /// Passkey template.
        passkey_template: String,
        /// IdP connection.
        idp_connection: String,
    },
    /// Forget a pending registration (nothing exists at the IdP).
    DropPendingRegistration {
        /// Passkey template.
        passkey_template: String,
        /// IdP connection.
        idp_connection: String,
    },
    /// Delete a registered passkey at the IdP.
    DeletePasskeyAtIdp {
        /// Passkey template.
        passkey_template: String,
        /// IdP connection.
        idp_connection: String,
        /// What a failure does.
        on_failure: OnIdpFailure,
    },
    /// Forget the key's records (the audit log stays).
    ForgetKey,
    /// Record the new state.
    SetState(CredentialState),
}

impl Step {
    /// True if the step needs raw CTAP access to the key (clientPIN, authenticatorConfig,
    /// reset, bio enrolment): a device half with platform-only access (an unelevated
    /// Windows process using `webauthn.dll`) can run makeCredential and getAssertion
    /// only. Server-side steps (IdP calls, records) need none.
    pub fn needs_raw_ctap(&self) -> bool {
        matches!(
            self,
            Step::ResetAuthenticator
                | Step::SetTransportPin
                | Step::SetMinPinLength { .. }
                | Step::EnableAlwaysUv
                | Step::EnrollFingerprints { .. }
                | Step::ChangePin
        )
    }
}

impl Plan {
    /// Refuses, before any step runs, a plan a platform-only station cannot carry out
    /// (see [`Step::needs_raw_ctap`]), naming every such step and what to do.
    pub fn check_platform_only(&self) -> Result<(), Error> {
        Plan::check_steps_platform_only(&self.steps)
    }

    /// [`Plan::check_platform_only`] for the steps of a plan.
    pub fn check_steps_platform_only(steps: &[Step]) -> Result<(), Error> {
        let problems: Vec<crate::template::Problem> = steps
            .iter()
            .filter(|s| s.needs_raw_ctap())
            .map(|s| {
                crate::template::Problem::new(
                    "station",
                    format!(
                        "this station reaches keys through Windows (webauthn.dll) only and cannot run {s:?}: install the keysmith agent service (or run as administrator) for PIN, policy, reset and fingerprint steps"
                    ),
                )
            })
            .collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(crate::template::TemplateError::Invalid(problems).into())
        }
    }
}

/// The ordered steps for one operation.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Plan {
    /// The operation planned.
    pub operation: Operation,
    /// The state it starts from.
    pub from: CredentialState,
    /// The state it ends in.
    pub to: CredentialState,
    /// The steps, in order.
    pub steps: Vec<Step>,
}

/// Plan `operation` for a key.
///
/// `templates` is the credential template with its passkey templates. `device` is needed
/// for issue and reissue (the template is checked against it; every problem is returned
/// as [`Error::Template`]). Refusals are [`Error::Transition`]: a transition the state
/// machine does not have, an expired challenge at activation
/// ([`TransitionError::ChallengeExpired`]; the engine then marks the key as needing
/// reissue), or a key already marked as needing reissue.
pub fn plan(
    operation: Operation,
    templates: &TemplateSet,
    key: &KeyFacts,
    device: Option<&DeviceFacts>,
    now_ms: UnixMillis,
) -> Result<Plan, Error> {
    let from = key.state;
    let mut steps = Vec::new();
    let to = match operation {
        Operation::Issue => {
            let to = next_state(from, Action::Issue)?;
            let device = device.ok_or(TransitionError::DeviceFactsRequired { operation })?;
            issue(templates, device, now_ms, &mut steps)?;
            finish_issue(templates, now_ms, to, &mut steps)?
        }
        Operation::Activate => {
            let to = next_state(from, Action::Activate)?;
            if key.needs_reissue {
                return Err(TransitionError::NeedsReissue.into());
            }
            activate(templates, &key.pending, &key.registered, now_ms, &mut steps)?;
            steps.push(Step::SetState(to));
            to
        }
        Operation::Inactivate => {
            let to = next_state(from, Action::Inactivate)?;
            let update = templates.credential.lifecycle.update_idp_on_inactivate;
            remove(key, update, OnIdpFailure::RetryDurably, &mut steps);
            steps.push(Step::SetState(to));
            to
        }
        Operation::Revoke => {
            let to = next_state(from, Action::Revoke)?;
            revoke(templates, key, &mut steps);
            steps.push(Step::SetState(to));
            to
        }
        Operation::Retire => {
            let to = next_state(from, Action::Retire)?;
            steps.push(Step::SetState(to));
            to
        }
        Operation::Unregister => {
            let to = next_state(from, Action::Unregister)?;
            steps.push(Step::ForgetKey);
            steps.push(Step::SetState(to));
            to
        }
        Operation::Reissue => {
            if !can_reissue(from) {
                return Err(not_allowed(from, operation).into());
            }
            let device = device.ok_or(TransitionError::DeviceFactsRequired { operation })?;
            // Check the issuance part first so a refused reissue changes nothing.
            let mut issue_steps = Vec::new();
            issue(templates, device, now_ms, &mut issue_steps)?;
            let mut state = from;
            if state != CredentialState::Revoked {
                state = next_state(state, Action::Revoke)?;
                revoke(templates, key, &mut steps);
                steps.push(Step::SetState(state));
            }
            state = next_state(state, Action::Retire)?;
            steps.push(Step::SetState(state));
            state = next_state(state, Action::Unregister)?;
            steps.push(Step::ForgetKey);
            steps.push(Step::SetState(state));
            state = next_state(state, Action::Issue)?;
            steps.extend(issue_steps);
            finish_issue(templates, now_ms, state, &mut steps)?
        }
    };
    Ok(Plan {
        operation,
        from,
        to,
        steps,
    })
}

/// Issuance up to (not including) the new state.
fn issue(
    templates: &TemplateSet,
    device: &DeviceFacts,
    now_ms: UnixMillis,
    steps: &mut Vec<Step>,
) -> Result<(), Error> {
    templates.validate()?;
    templates.check_device(device)?;
    let c = &templates.credential;
    let o = &c.fido2;
    let passkeys = templates.passkey_templates();
    // Reset first: a key accepts it only within 5 s (older YubiKeys) or 10 s of
    // power-up, and the IdP pre-flight (a Graph round trip) would eat that window. On a
    // USB station the executor runs the replug helper here
    // (`fido_transport::client::reset_after_replug`), which opens the window itself.
    if o.reset_before_issuance {
        steps.push(Step::ResetAuthenticator);
    }
    if c.lifecycle.update_idp_on_issue {
        for t in &passkeys {
            steps.push(Step::PolicyPreflight {
                passkey_template: t.name.clone(),
                idp_connection: t.idp.connection.clone(),
            });
        }
    }
    steps.push(Step::SetTransportPin);
    let raise = o.min_pin_length.filter(|want| {
        o.reset_before_issuance || device.min_pin_length.is_none_or(|have| want > &have)
    });
    if raise.is_some() || !o.min_pin_length_rp_ids.is_empty() {
        steps.push(Step::SetMinPinLength {
            min_pin_length: raise,
            rp_ids: o.min_pin_length_rp_ids.clone(),
            force_change_pin: false,
        });
    }
    if o.always_uv && (o.reset_before_issuance || !device.options.always_uv_enabled) {
        steps.push(Step::EnableAlwaysUv);
    }
    if let Some(bio) = &o.bio {
        steps.push(Step::EnrollFingerprints {
            min_fingerprints: bio.min_fingerprints,
            timeout_ms: bio.timeout_ms,
        });
    }
    if c.lifecycle.update_idp_on_issue {
        for t in &passkeys {
            make(t, now_ms, steps);
        }
    }
    if o.force_change_pin {
        // Last: once forcePINChange is set the key refuses PIN tokens until the PIN is
        // changed, and every step above needs one. The holder's changePIN at activation
        // clears it.
        steps.push(Step::SetMinPinLength {
            min_pin_length: None,
            rp_ids: Vec::new(),
            force_change_pin: true,
        });
    }
    Ok(())
}

fn make(t: &crate::template::PasskeyTemplate, now_ms: UnixMillis, steps: &mut Vec<Step>) {
    steps.push(Step::MakeCredential {
        passkey_template: t.name.clone(),
        idp_connection: t.idp.connection.clone(),
        rp_id: t.rp_id.clone(),
        origin: t.origin.clone(),
    });
    steps.push(Step::StorePendingRegistration {
        passkey_template: t.name.clone(),
        idp_connection: t.idp.connection.clone(),
        expires_at_ms: now_ms.saturating_add(t.challenge_timeout_ms()),
    });
}

/// Records the issued state, then activates at once when the template says so.
fn finish_issue(
    templates: &TemplateSet,
    now_ms: UnixMillis,
    issued: CredentialState,
    steps: &mut Vec<Step>,
) -> Result<CredentialState, Error> {
    steps.push(Step::SetState(issued));
    if !templates.credential.lifecycle.auto_initiate_after_issuance {
        return Ok(issued);
    }
    let active = next_state(issued, Action::Activate)?;
    let pending: Vec<PendingFact> = steps
        .iter()
        .filter_map(|s| match s {
            Step::StorePendingRegistration {
                passkey_template,
                idp_connection,
                expires_at_ms,
            } => Some(PendingFact {
                passkey_template: passkey_template.clone(),
                idp_connection: idp_connection.clone(),
                expires_at_ms: *expires_at_ms,
            }),
            _ => None,
        })
        .collect();
    activate(templates, &pending, &[], now_ms, steps)?;
    steps.push(Step::SetState(active));
    Ok(active)
}

/// Activation steps up to (not including) the new state.
fn activate(
    templates: &TemplateSet,
    pending: &[PendingFact],
    registered: &[RegisteredFact],
    now_ms: UnixMillis,
    steps: &mut Vec<Step>,
) -> Result<(), Error> {
    // Refuse before any step if a challenge to be sent has expired.
    let update = templates.credential.lifecycle.update_idp_on_initiate;
    if update {
        if let Some(p) = pending.iter().find(|p| now_ms >= p.expires_at_ms) {
            return Err(TransitionError::ChallengeExpired {
                passkey_template: p.passkey_template.clone(),
                expired_at_ms: p.expires_at_ms,
                now_ms,
            }
            .into());
        }
    }
    steps.push(Step::ChangePin);
    if !update {
        return Ok(());
    }
    for p in pending {
        steps.push(Step::RegisterPending {
            passkey_template: p.passkey_template.clone(),
            idp_connection: p.idp_connection.clone(),
        });
    }
    // Passkey templates issued without IdP update: make and register them now. One that
    // is already registered (an activation interrupted after its registration but before
    // the state change) is not made again: the key would refuse it as excluded.
    for t in templates.passkey_templates() {
        if pending.iter().any(|p| p.passkey_template == t.name)
            || registered.iter().any(|r| r.passkey_template == t.name)
        {
            continue;
        }
        make(t, now_ms, steps);
        steps.push(Step::RegisterPending {
            passkey_template: t.name.clone(),
            idp_connection: t.idp.connection.clone(),
        });
    }
    Ok(())
}

fn revoke(templates: &TemplateSet, key: &KeyFacts, steps: &mut Vec<Step>) {
    let l = &templates.credential.lifecycle;
    let on_failure = if l.force_idp_deletion_on_revoke {
        OnIdpFailure::CancelOperation
    } else {
        OnIdpFailure::RetryDurably
    };
    remove(key, l.update_idp_on_revoke, on_failure, steps);
}

/// IdP deletions (when the switch is on), then pending registrations dropped.
fn remove(key: &KeyFacts, update_idp: bool, on_failure: OnIdpFailure, steps: &mut Vec<Step>) {
    if update_idp {
        for r in &key.registered {
            steps.push(Step::DeletePasskeyAtIdp {
                passkey_template: r.passkey_template.clone(),
                idp_connection: r.idp_connection.clone(),
                on_failure,
            });
        }
    }
    for p in &key.pending {
        steps.push(Step::DropPendingRegistration {
            passkey_template: p.passkey_template.clone(),
            idp_connection: p.idp_connection.clone(),
        });
    }
}
