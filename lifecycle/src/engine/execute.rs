//! The step interpreter: runs the planner's steps against the key, the store and the
//! IdPs.

use rand_core::{OsRng, RngCore};
use zeroize::Zeroizing;

use super::device;
use super::payload::StatePayload;
use super::{CrashPoint, Engine, LookupError, PlanError, UnixMillis};
use crate::model::CredentialState;
use crate::remote::DeviceLink;
use crate::state::{Operation, Step};
use crate::store::{
    FieldChange, JournalClose, JournalOp, JournalStatus, NewJournalEntry, PasskeyRecord, PendingId,
    PendingRegistration, StoreError, Transition,
};
use crate::Error;

use super::flow::{FlowContext, MadeCredential};

/// Length of the random transport PIN (digits): the largest minimum PIN length a
/// template may set, so the key always accepts it.
const TRANSPORT_PIN_DIGITS: usize = crate::template::MAX_MIN_PIN_LENGTH as usize;

pub(super) fn action_name(to: CredentialState) -> &'static str {
    match to {
        CredentialState::Issued => "issue",
        CredentialState::Active => "activate",
        CredentialState::Inactive => "inactivate",
        CredentialState::Revoked => "revoke",
        CredentialState::Retired => "retire",
        CredentialState::Unregistered => "unregister",
        _ => "state",
    }
}

pub(super) fn random_pin() -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(TRANSPORT_PIN_DIGITS));
    while out.len() < TRANSPORT_PIN_DIGITS {
        let mut b = [0u8; 1];
        OsRng.fill_bytes(&mut b);
        // Rejection sampling keeps the digits uniform.
        if b[0] < 250 {
            out.push(char::from(b'0' + b[0] % 10));
        }
    }
    out
}

impl Engine {
    pub(super) fn commit_state(
        &self,
        flow: &mut FlowContext<'_>,
        to: CredentialState,
        now: UnixMillis,
    ) -> Result<(), Error> {
        let mut t = Transition::new(&flow.key, to);
        match to {
            CredentialState::Issued => {
                t.user_id = FieldChange::to(flow.user.clone());
                t.template_id = FieldChange::Set(flow.templates.credential.name.clone());
                t.needs_reissue = Some(false);
                t.identity = Some(super::identity::recorded_identity(flow));
            }
            CredentialState::Unregistered => {
                t.user_id = FieldChange::Clear;
                t.template_id = FieldChange::Clear;
                t.needs_reissue = Some(false);
            }
            _ => {}
        }
        let detail = (flow.operation == Operation::Reissue).then(|| "reissue".to_owned());
        self.maybe_crash(CrashPoint::BeforeStateChange)?;
        let rec = flow.audit(action_name(to), "success", detail, now);
        let mut work = std::mem::take(&mut flow.work);
        work.transition = Some(t);
        work.audit.push(rec);
        if let Some(id) = flow.intent.take() {
            work.close_journal.push(JournalClose {
                id,
                status: JournalStatus::Done,
                result: Some(format!("state {}", to.as_str())),
                fence: flow.intent_fence.take(),
            });
        }
        let done = self.store.commit(work, now)?;
        tracing::info!(to = to.as_str(), "state committed");
        flow.key = done.key.ok_or_else(|| StoreError::Corrupt {
            what: "transition committed without a key".into(),
        })?;
        flow.request_id = None;
        Ok(())
    }

    pub(super) fn current_pin(&self, flow: &FlowContext<'_>) -> Result<Zeroizing<String>, Error> {
        if let Some(p) = &flow.pin {
            return Ok(p.clone());
        }
        let t = self
            .store
            .get_transport_pin(&flow.key.key_id, &self.pin_key)?
            .ok_or_else(|| LookupError::NoTransportPin {
                key_id: flow.key.key_id.clone(),
            })?;
        Ok(Zeroizing::new(t.expose().to_owned()))
    }

    /// Runs `steps`: the device steps as jobs through `link` (see [`super::device`]), the
    /// rest here.
    pub(super) fn execute(
        &self,
        flow: &mut FlowContext<'_>,
        steps: &[Step],
        mut link: Option<&mut dyn DeviceLink>,
        now: UnixMillis,
    ) -> Result<(), Error> {
        let need = |step: &'static str| PlanError::Unsupported {
            step,
            reason: "the flow has no key attached".into(),
        };
        // A device half with platform WebAuthn only cannot run PIN, policy, reset or
        // fingerprint steps: refused before anything is done.
        if link.as_deref().is_some_and(|l| !l.raw_ctap()) {
            crate::state::Plan::check_steps_platform_only(steps)?;
        }
        // Registrations left in doubt are settled before the key leaves its state.
        self.settle_in_doubt(flow, steps, now)?;
        let mut index = 0;
        while index < steps.len() {
            let step = &steps[index];
            if device::is_device_step(step) {
                let end = device::batch_end(steps, index);
                if matches!(step, Step::ChangePin)
                    && link.as_deref().is_some_and(|l| !l.has_holder_pin())
                {
                    return Err(PlanError::Unsupported {
                        step: "changePIN",
                        reason: "no holder PIN given".into(),
                    }
                    .into());
                }
                let l = link
                    .as_deref_mut()
                    .ok_or_else(|| need(device::step_name(step)))?;
                // A flow holding its state intent keeps it through the job (a holder's
                // PIN or touch, over a split session, can take longer than the lease):
                // renewed before, during and after; a claim lost stops the flow here.
                match flow.intent.zip(flow.intent_fence.clone()) {
                    Some((id, fence)) => {
                        self.hold_claim(id, &fence, flow.clock(now))?;
                        let at = flow.clock(now);
                        self.leased(id, &fence, at, || {
                            self.run_job(flow, &steps[index..end], l, now)
                        })?;
                        self.hold_intent(flow, now)?;
                    }
                    None => self.run_job(flow, &steps[index..end], l, now)?,
                }
                // The key has a PIN only now: what it proves about itself is read
                // before it makes a credential.
                if steps[index..end]
                    .iter()
                    .any(|s| matches!(s, Step::SetTransportPin))
                {
                    self.prove_identity_after_pin(flow, l, now)?;
                }
                index = end;
                continue;
            }
            tracing::info!(?step, "step");
            if matches!(
                step,
                Step::RegisterPending { .. } | Step::DeletePasskeyAtIdp { .. }
            ) {
                self.open_intent(flow, &steps[index..], now)?;
            }
            match step {
                Step::PolicyPreflight {
                    idp_connection,
                    passkey_template,
                } => {
                    // The template's challenge lifetime against the connection's API
                    // version first (deferred activation needs Graph beta).
                    self.preflight_challenge(&flow.templates, passkey_template, idp_connection)?;
                    self.preflight_provenance(&flow.templates, passkey_template, idp_connection)?;
                    // The AAGUID the device half reported (a claim; the attestation
                    // re-checks it after makeCredential).
                    let aaguid = link
                        .as_deref()
                        .ok_or_else(|| need("preflight"))?
                        .info()
                        .aaguid;
                    let user = flow.user.clone().ok_or_else(|| need("preflight"))?;
                    let user = self.user_at(
                        &flow.templates,
                        &user,
                        flow.attrs.get("userPrincipalName").map(String::as_str),
                        idp_connection,
                    )?;
                    // Whether the model can be attested (in the MDS BLOB); the real
                    // verdict on this key's attestation follows makeCredential.
                    let attested = self.expects_attested(&aaguid);
                    self.idp(idp_connection)?
                        .preflight(&user, &aaguid, attested)?;
                }
                Step::StorePendingRegistration {
                    passkey_template,
                    expires_at_ms,
                    ..
                } => {
                    let MadeCredential {
                        made,
                        client_data,
                        idp_expiry,
                        idp_user,
                        display_name,
                    } = flow.made.remove(passkey_template).ok_or_else(|| {
                        LookupError::NoPendingRegistration {
                            key_id: flow.key.key_id.clone(),
                            passkey_template: passkey_template.clone(),
                        }
                    })?;
                    let expires = idp_expiry.map_or(*expires_at_ms, |e| e.min(*expires_at_ms));
                    let user = idp_user;
                    flow.work.add_passkeys.push(PasskeyRecord {
                        key_id: flow.key.key_id.clone(),
                        passkey_template: passkey_template.clone(),
                        credential_id: made.credential_id,
                        public_key: made.public_key,
                        idp_method_id: None,
                        state: CredentialState::Issued,
                        created_ms: now,
                    });
                    flow.work.put_pending.push(PendingRegistration {
                        key_id: flow.key.key_id.clone(),
                        passkey_template: passkey_template.clone(),
                        user_id: user,
                        attestation_object: made.attestation_object,
                        client_data_json: client_data,
                        challenge_expires_ms: expires,
                        created_ms: now,
                        display_name: Some(display_name),
                    });
                }
                Step::RegisterPending {
                    passkey_template,
                    idp_connection,
                } => {
                    // Passkeys made in this flow are committed first.
                    if !flow.work.add_passkeys.is_empty() || !flow.work.put_pending.is_empty() {
                        let work = std::mem::take(&mut flow.work);
                        self.store.commit(work, now)?;
                    }
                    self.register_pending(
                        flow,
                        passkey_template,
                        idp_connection,
                        link.as_deref_mut(),
                        now,
                    )?;
                }
                Step::DropPendingRegistration {
                    passkey_template, ..
                } => {
                    flow.work.remove_pending.push(PendingId {
                        key_id: flow.key.key_id.clone(),
                        passkey_template: passkey_template.clone(),
                    });
                    for mut pk in self.store.list_passkeys(&flow.key.key_id)? {
                        if &pk.passkey_template == passkey_template && pk.idp_method_id.is_none() {
                            pk.state = CredentialState::Unregistered;
                            flow.work.update_passkeys.push(pk);
                        }
                    }
                }
                Step::DeletePasskeyAtIdp {
                    passkey_template,
                    idp_connection,
                    on_failure,
                } => {
                    self.delete_at_idp(flow, passkey_template, idp_connection, *on_failure, now)?
                }
                Step::ForgetKey => {
                    self.store.delete_transport_pin(&flow.key.key_id)?;
                    for p in self.store.pending_for_key(&flow.key.key_id)? {
                        flow.work.remove_pending.push(PendingId {
                            key_id: p.key_id,
                            passkey_template: p.passkey_template,
                        });
                    }
                    for mut pk in self.store.list_passkeys(&flow.key.key_id)? {
                        if pk.state != CredentialState::Unregistered {
                            pk.state = CredentialState::Unregistered;
                            flow.work.update_passkeys.push(pk);
                        }
                    }
                }
                Step::SetState(to) => self.commit_state(flow, *to, now)?,
                // Run above, as jobs.
                _ => {}
            }
            index += 1;
        }
        Ok(())
    }

    /// Journals the state change that follows the IdP side effects about to be made
    /// (the first `SetState` in `rest`), unless one is open already.
    pub(super) fn open_intent(
        &self,
        flow: &mut FlowContext<'_>,
        rest: &[Step],
        now: UnixMillis,
    ) -> Result<(), Error> {
        if flow.intent.is_some() {
            return Ok(());
        }
        let Some(to) = rest.iter().find_map(|s| match s {
            Step::SetState(to) => Some(*to),
            _ => None,
        }) else {
            return Ok(());
        };
        let connection = rest
            .iter()
            .find_map(|s| match s {
                Step::RegisterPending { idp_connection, .. }
                | Step::DeletePasskeyAtIdp { idp_connection, .. } => Some(idp_connection.clone()),
                _ => None,
            })
            .unwrap_or_default();
        let revoking = matches!(flow.operation, Operation::Revoke | Operation::Reissue);
        let payload = StatePayload {
            operation: flow.operation.as_str().to_owned(),
            from: flow.key.state.as_str().to_owned(),
            to: to.as_str().to_owned(),
            key_version: flow.key.version,
            force: revoking.then_some(
                flow.templates
                    .credential
                    .lifecycle
                    .force_idp_deletion_on_revoke,
            ),
        };
        // Held until the flow ends: a replay in this process leaves the intent alone.
        flow.live = Some(self.live.hold(&flow.key.key_id));
        // Claimed as it is written: another node's replay must not finish or fail the
        // intent of a flow still running here (it waits for the lease, or the station's
        // own restart takes it over at once).
        let (entry, fence) = self.append_claimed(
            &NewJournalEntry {
                key_id: flow.key.key_id.clone(),
                idp: connection,
                operation: JournalOp::State,
                payload: payload.to_bytes(),
            },
            now,
        )?;
        flow.intent = Some(entry.id);
        flow.intent_fence = Some(fence);
        self.maybe_crash(CrashPoint::AfterStateJournal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transport_pins_are_random_digits() {
        let a = random_pin();
        let b = random_pin();
        assert_eq!(a.len(), TRANSPORT_PIN_DIGITS);
        assert!(a.chars().all(|c| c.is_ascii_digit()));
        assert_ne!(*a, *b);
    }

    #[test]
    fn state_changes_are_audited_by_action() {
        assert_eq!(action_name(CredentialState::Active), "activate");
        assert_eq!(action_name(CredentialState::Unregistered), "unregister");
    }
}
