//! The step interpreter: runs the planner's steps against the key, the store and the
//! IdPs.

use fido_core::pin::Permissions;
use rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::device::{self, DeviceOps};
use super::payload::StatePayload;
use super::{CrashPoint, DevicePrompt, Engine, IdpEffectError, LookupError, PlanError, UnixMillis};
use crate::model::CredentialState;
use crate::state::{Operation, Step};
use crate::store::{
    FieldChange, JournalClose, JournalOp, JournalStatus, NewJournalEntry, PasskeyRecord, PendingId,
    PendingRegistration, StoreError, Transition, TransportPin,
};
use crate::template::render_display_name;
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

    pub(super) fn execute(
        &self,
        flow: &mut FlowContext<'_>,
        steps: &[Step],
        mut device: Option<&mut dyn DeviceOps>,
        holder_pin: Option<&str>,
        now: UnixMillis,
    ) -> Result<(), Error> {
        let need = |step: &'static str| PlanError::Unsupported {
            step,
            reason: "the flow has no key attached".into(),
        };
        // Registrations left in doubt are settled before the key leaves its state.
        self.settle_in_doubt(flow, steps, now)?;
        for (index, step) in steps.iter().enumerate() {
            tracing::info!(?step, "step");
            if matches!(
                step,
                Step::RegisterPending { .. } | Step::DeletePasskeyAtIdp { .. }
            ) {
                self.open_intent(flow, &steps[index..], now)?;
            }
            match step {
                Step::PolicyPreflight { idp_connection, .. } => {
                    let d = device.as_deref_mut().ok_or_else(|| need("preflight"))?;
                    let aaguid = d.info()?.aaguid;
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
                Step::ResetAuthenticator => {
                    let d = device.as_deref_mut().ok_or_else(|| need("reset"))?;
                    d.reset(&|p| self.prompt(p))?;
                    self.store.delete_transport_pin(&flow.key.key_id)?;
                    flow.pin = None;
                }
                Step::SetTransportPin => {
                    let d = device.as_deref_mut().ok_or_else(|| need("setPIN"))?;
                    let pin = random_pin();
                    // Sealed and stored before the key gets it: a crash in between
                    // never leaves a key with a PIN nobody knows.
                    let sealed = TransportPin::new(pin.as_str())?;
                    self.store
                        .put_transport_pin(&flow.key.key_id, &sealed, &self.pin_key, now)?;
                    d.set_pin(&pin)?;
                    flow.pin = Some(pin);
                }
                Step::SetMinPinLength {
                    min_pin_length,
                    rp_ids,
                    force_change_pin,
                } => {
                    let pin = self.current_pin(flow)?;
                    let d = device
                        .as_deref_mut()
                        .ok_or_else(|| need("setMinPINLength"))?;
                    let min = match min_pin_length {
                        Some(m) => Some(u8::try_from(*m).map_err(|_| PlanError::Unsupported {
                            step: "setMinPINLength",
                            reason: format!("minimum PIN length {m} exceeds 255"),
                        })?),
                        None => None,
                    };
                    let token = d.token(&pin, Permissions::AUTHENTICATOR_CONFIG, None)?;
                    d.set_min_pin_length(min, rp_ids, *force_change_pin, &token)?;
                }
                Step::EnableAlwaysUv => {
                    let pin = self.current_pin(flow)?;
                    let d = device
                        .as_deref_mut()
                        .ok_or_else(|| need("toggleAlwaysUv"))?;
                    let token = d.token(&pin, Permissions::AUTHENTICATOR_CONFIG, None)?;
                    d.enable_always_uv(&token)?;
                }
                Step::EnrollFingerprints {
                    min_fingerprints,
                    timeout_ms,
                } => {
                    let pin = self.current_pin(flow)?;
                    let d = device.as_deref_mut().ok_or_else(|| need("bioEnrollment"))?;
                    let token = d.token(&pin, Permissions::BIO_ENROLLMENT, None)?;
                    let mut enrolled = d.bio_count(&token)?;
                    while enrolled < *min_fingerprints {
                        self.prompt(&DevicePrompt::EnrollFingerprint {
                            number: enrolled + 1,
                            of: *min_fingerprints,
                        });
                        // A fresh token per finger: enrolment can outlast a token's
                        // usage window on real keys.
                        let token = d.token(&pin, Permissions::BIO_ENROLLMENT, None)?;
                        d.bio_enroll(&token, *timeout_ms, &|p| self.prompt(p))?;
                        enrolled += 1;
                    }
                }
                Step::MakeCredential {
                    passkey_template,
                    idp_connection,
                    rp_id,
                    origin,
                } => {
                    let pin = self.current_pin(flow)?;
                    let d = device
                        .as_deref_mut()
                        .ok_or_else(|| need("makeCredential"))?;
                    self.make(
                        flow,
                        d,
                        &pin,
                        passkey_template,
                        idp_connection,
                        rp_id.as_deref(),
                        origin.as_deref(),
                        now,
                    )?;
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
                    });
                }
                Step::ChangePin => {
                    let holder = holder_pin.ok_or(PlanError::Unsupported {
                        step: "changePIN",
                        reason: "no holder PIN given".into(),
                    })?;
                    let d = device.as_deref_mut().ok_or_else(|| need("changePIN"))?;
                    let stored = match &flow.pin {
                        Some(p) => Some(p.clone()),
                        None => self
                            .store
                            .get_transport_pin(&flow.key.key_id, &self.pin_key)?
                            .map(|t| Zeroizing::new(t.expose().to_owned())),
                    };
                    match stored {
                        Some(transport) => {
                            d.change_pin(&transport, holder)?;
                            self.store.delete_transport_pin(&flow.key.key_id)?;
                        }
                        // An earlier attempt changed the PIN and then failed at the IdP:
                        // the transport PIN is gone, so the holder's PIN is checked
                        // instead (a wrong one fails here, before any IdP call).
                        None => {
                            d.token(
                                holder,
                                Permissions::MAKE_CREDENTIAL,
                                Some("keysmith.invalid"),
                            )
                            .map(drop)?;
                        }
                    }
                    flow.pin = Some(Zeroizing::new(holder.to_owned()));
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
                    self.register_pending(flow, passkey_template, idp_connection, now)?;
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
            }
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
        let entry = self.store.journal_append(
            &NewJournalEntry {
                key_id: flow.key.key_id.clone(),
                idp: connection,
                operation: JournalOp::State,
                payload: payload.to_bytes(),
            },
            now,
        )?;
        flow.intent = Some(entry.id);
        self.maybe_crash(CrashPoint::AfterStateJournal)
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn make(
        &self,
        flow: &mut FlowContext<'_>,
        d: &mut dyn DeviceOps,
        pin: &str,
        passkey_template: &str,
        idp_connection: &str,
        rp_id: Option<&str>,
        origin: Option<&str>,
        now: UnixMillis,
    ) -> Result<(), Error> {
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
        let challenge = idp.creation_challenge(&idp_user, minutes, origin)?;
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
        let client_data = challenge.client_data_json();
        let hash: [u8; 32] = Sha256::digest(client_data.as_bytes()).into();
        let upn = flow
            .attrs
            .get("userPrincipalName")
            .cloned()
            .unwrap_or_else(|| user.clone());
        let args = device::make_args(hash, &challenge, &upn, &display);
        let token = d.token(pin, Permissions::MAKE_CREDENTIAL, Some(&challenge.rp_id))?;
        let made = d.make_credential(&args, &token, &|p| self.prompt(p))?;
        let info_aaguid = d.info()?.aaguid;
        let verdict = self.check_attestation(
            &t,
            idp.as_ref(),
            &idp_user,
            &made,
            &hash,
            &info_aaguid,
            args.resident_key,
            now,
        )?;
        let rec = flow.audit(
            "attestation",
            if verdict.trusted {
                "verified"
            } else {
                "unattested"
            },
            Some(format!(
                "passkey_template={passkey_template} {}",
                verdict.detail
            )),
            now,
        );
        flow.work.audit.push(rec);
        flow.made.insert(
            passkey_template.to_owned(),
            MadeCredential {
                made,
                client_data: client_data.into_bytes(),
                idp_expiry: challenge.expires_at_ms,
                idp_user,
            },
        );
        Ok(())
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
