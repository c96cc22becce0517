//! The journalled IdP side effects: each is journalled before it is made and closed
//! after.

use super::payload::{DeletePayload, RegisterPayload};
use super::settle::definite;
use super::{b64, CrashPoint, Engine, IdpEffectError, LookupError, PlanError, UnixMillis};
use crate::idp::IdpError;
use crate::model::CredentialState;
use crate::state::{OnIdpFailure, Operation};
use crate::store::{
    JournalFence, JournalOp, JournalStatus, NewJournalEntry, PendingId, UnitOfWork,
};
use crate::template::render_display_name;
use crate::Error;

use super::flow::FlowContext;

/// The state a passkey deleted at the IdP by `operation` ends in.
pub(super) fn deleted_state(operation: Operation) -> CredentialState {
    match operation {
        Operation::Inactivate => CredentialState::Inactive,
        _ => CredentialState::Revoked,
    }
}

impl Engine {
    pub(super) fn register_pending(
        &self,
        flow: &mut FlowContext<'_>,
        passkey_template: &str,
        idp_connection: &str,
        link: Option<&mut (dyn crate::remote::DeviceLink + '_)>,
        now: UnixMillis,
    ) -> Result<(), Error> {
        let key_id = flow.key.key_id.clone();
        let _live = self.live.hold(&key_id);
        // Delegated registration: the holder's token makes the call, through the link.
        let holder = link.filter(|l| {
            l.delegated()
                && flow.templates.credential.self_service.registration
                    == crate::template::RegistrationMode::Delegated
        });
        let pending = self
            .store
            .pending_for_key(&key_id)?
            .into_iter()
            .find(|p| p.passkey_template == passkey_template)
            .ok_or_else(|| LookupError::NoPendingRegistration {
                key_id: key_id.clone(),
                passkey_template: passkey_template.to_owned(),
            })?;
        let passkey = self
            .store
            .list_passkeys(&key_id)?
            .into_iter()
            .rev()
            .find(|p| {
                p.passkey_template == passkey_template
                    && p.idp_method_id.is_none()
                    && p.state == CredentialState::Issued
            })
            .ok_or_else(|| LookupError::NoPendingRegistration {
                key_id: key_id.clone(),
                passkey_template: passkey_template.to_owned(),
            })?;
        let t = flow
            .templates
            .passkey
            .get(passkey_template)
            .cloned()
            .ok_or_else(|| LookupError::UnknownTemplate {
                template: passkey_template.to_owned(),
            })?;
        let idp = self.idp(idp_connection)?.clone();
        // The name the key was given when the passkey was made (kept with the pending
        // registration, under its row MAC): no read of the user. Rows stored before
        // schema 15 have none; theirs is rendered from the user as the directory has it.
        let display = match &pending.display_name {
            Some(name) => name.clone(),
            None => {
                if flow.attrs.is_empty() {
                    let (_, attrs, _) =
                        self.user_attrs(idp.as_ref(), &pending.user_id, &flow.key.serial)?;
                    flow.attrs = attrs;
                }
                render_display_name(&t, &flow.attrs).map_err(|p| PlanError::DisplayName {
                    field: p.field,
                    message: p.message,
                })?
            }
        };
        let payload = RegisterPayload {
            user: pending.user_id.clone(),
            passkey_template: passkey_template.to_owned(),
            display_name: display,
            credential_id: b64(&passkey.credential_id),
            client_data_json: b64(&pending.client_data_json),
            attestation_object: b64(&pending.attestation_object),
            key_version: Some(flow.key.version),
            expect_state: Some(flow.key.state.as_str().to_owned()),
            delegated: holder.is_some(),
        };
        // The flow's state intent is still its own (a flow that outlived its lease may
        // have had it taken over by another node's replay): nothing is journalled or
        // registered otherwise.
        self.hold_intent(flow, now)?;
        // Appended claimed (one transaction): another node's replay cannot take the
        // entry over before this flow's IdP call.
        let (entry, fence) = self.append_claimed(
            &NewJournalEntry {
                key_id: key_id.clone(),
                idp: idp_connection.to_owned(),
                operation: JournalOp::Register,
                payload: payload.to_bytes(),
            },
            now,
        )?;
        tracing::info!(
            journal_id = entry.id,
            op = "register",
            passkey_template,
            "journal entry appended"
        );
        self.maybe_crash(CrashPoint::AfterJournal)?;
        // Both claims checked right before the call: the registration's (another node's
        // replay may have taken it over and registered it) and the intent's (a lost one
        // fails the registration entry too, so no replay registers it later).
        self.hold_claim(entry.id, &fence, flow.clock(now))?;
        if let Err(e) = self.hold_intent(flow, now) {
            let why = format!("not registered: the flow stopped ({e})");
            self.fail_fenced(entry.id, &why, &fence, now)?;
            return Err(e);
        }
        let request = payload.request(entry.id)?;
        let registered = self.leased(entry.id, &fence, flow.clock(now), || match holder {
            Some(l) => self.register_delegated(idp.as_ref(), l, &pending.user_id, &request),
            None => idp.register(&pending.user_id, &request),
        });
        let outcome = match registered {
            Ok(o) => o,
            Err(e @ IdpError::ChallengeExpired { .. }) => {
                // The IdP's clock says expired although ours did not: same outcome.
                self.fail_fenced(entry.id, &e.to_string(), &fence, now)?;
                flow.request_id = e.request_id().map(str::to_owned);
                let refusal = crate::state::TransitionError::ChallengeExpired {
                    passkey_template: passkey_template.to_owned(),
                    expired_at_ms: pending.challenge_expires_ms,
                    now_ms: now,
                };
                let rec = flow.audit("activate", "refused", Some(e.to_string()), now);
                flow.key = self.mark_needs_reissue(&flow.key, rec, Vec::new(), now)?;
                return Err(refusal.into());
            }
            Err(e) => {
                tracing::warn!(
                    journal_id = entry.id,
                    idp_request_id = e.request_id().unwrap_or(""),
                    error = %e,
                    "IdP registration failed"
                );
                self.close_failed_if_final(entry.id, &e, &fence, now)?;
                flow.request_id = e.request_id().map(str::to_owned);
                return Err(e.into());
            }
        };
        tracing::info!(
            journal_id = entry.id,
            idp_request_id = outcome.request_id.as_deref().unwrap_or(""),
            method_id = %outcome.method_id,
            "IdP registration done"
        );
        self.maybe_crash(CrashPoint::AfterIdpCall)?;
        flow.request_id = outcome.request_id.clone();
        let credential_id = passkey.credential_id.clone();
        let mut pk = passkey;
        pk.idp_method_id = Some(outcome.method_id.clone());
        pk.state = CredentialState::Active;
        let detail = format!(
            "passkey {passkey_template} registered as {}",
            outcome.method_id
        );
        let rec = flow.audit("register", "success", Some(detail), now);
        self.store.commit(
            UnitOfWork {
                update_passkeys: vec![pk],
                remove_pending: vec![PendingId {
                    key_id,
                    passkey_template: passkey_template.to_owned(),
                }],
                close_journal: vec![Self::fenced_close(
                    entry.id,
                    JournalStatus::Done,
                    Some(outcome.method_id.clone()),
                    &fence,
                )],
                audit: vec![rec],
                ..UnitOfWork::default()
            },
            now,
        )?;
        tracing::info!(journal_id = entry.id, "journal entry closed");
        // Registered and stored: provenance now (a failure is audited, never undone).
        self.provenance_after_registration(
            flow,
            passkey_template,
            idp_connection,
            &pending.user_id,
            &outcome.method_id,
            &credential_id,
            now,
        )?;
        Ok(())
    }

    /// A definite failure (a 4xx refusal, or a request that could not be built) is not
    /// retried; anything else stays pending for replay.
    /// The close is fenced by the claim `fence`.
    pub(super) fn close_failed_if_final(
        &self,
        id: i64,
        e: &IdpError,
        fence: &JournalFence,
        now: UnixMillis,
    ) -> Result<(), Error> {
        if definite(e) {
            self.fail_fenced(id, &e.to_string(), fence, now)?;
        }
        Ok(())
    }

    pub(super) fn delete_at_idp(
        &self,
        flow: &mut FlowContext<'_>,
        passkey_template: &str,
        idp_connection: &str,
        on_failure: OnIdpFailure,
        now: UnixMillis,
    ) -> Result<(), Error> {
        let key_id = flow.key.key_id.clone();
        let _live = self.live.hold(&key_id);
        let idp = self.idp(idp_connection)?.clone();
        let user = flow.key.user_id.clone().ok_or(LookupError::NotIssued {
            key_id: key_id.clone(),
            what: "user",
        })?;
        let user = self.user_at(&flow.templates, &user, None, idp_connection)?;
        let revoking = flow.operation == Operation::Revoke;
        let mut deleted_any = false;
        for mut pk in self.store.list_passkeys(&key_id)? {
            let Some(method_id) = pk.idp_method_id.clone() else {
                continue;
            };
            if pk.passkey_template != passkey_template {
                continue;
            }
            if revoking {
                self.warn_if_last_phishing_resistant(flow, &*idp, &user, &method_id, now)?;
            }
            let payload = DeletePayload {
                user: user.clone(),
                passkey_template: passkey_template.to_owned(),
                method_id: method_id.clone(),
                credential_id: b64(&pk.credential_id),
                target: Some(deleted_state(flow.operation).as_str().to_owned()),
                keep_key_state: false,
            };
            self.hold_intent(flow, now)?;
            let (entry, fence) = self.append_claimed(
                &NewJournalEntry {
                    key_id: key_id.clone(),
                    idp: idp_connection.to_owned(),
                    operation: JournalOp::Delete,
                    payload: payload.to_bytes(),
                },
                now,
            )?;
            tracing::info!(
                journal_id = entry.id,
                op = "delete",
                passkey_template,
                method_id = %method_id,
                "journal entry appended"
            );
            self.maybe_crash(CrashPoint::AfterJournal)?;
            self.hold_claim(entry.id, &fence, flow.clock(now))?;
            self.hold_intent(flow, now)?;
            let mut deleted = self.leased(entry.id, &fence, flow.clock(now), || {
                idp.delete(&user, &method_id)
            });
            // An uncertain failure (5xx, no answer): the deletion may have been made.
            // Settled by listing the user's passkeys before anything is cancelled or
            // committed.
            let mut settled_by_listing = false;
            let mut in_doubt = None;
            if let Err(e) = &deleted {
                if !definite(e) {
                    let listed = self.leased(entry.id, &fence, flow.clock(now), || idp.list(&user));
                    match listed {
                        Ok(methods) => {
                            let present = methods
                                .iter()
                                .any(|m| m.method_id == method_id || m.holds(&pk.credential_id));
                            if !present {
                                settled_by_listing = true;
                                deleted = Ok(crate::idp::IdpDeletion {
                                    request_id: e.request_id().map(str::to_owned),
                                    already_gone: true,
                                });
                            }
                        }
                        Err(le) => {
                            in_doubt = Some(format!("{e}; listing the passkeys failed: {le}"))
                        }
                    }
                }
            }
            match &deleted {
                Ok(d) => tracing::info!(
                    journal_id = entry.id,
                    idp_request_id = d.request_id.as_deref().unwrap_or(""),
                    already_gone = d.already_gone,
                    "IdP deletion done"
                ),
                Err(e) => tracing::warn!(
                    journal_id = entry.id,
                    idp_request_id = e.request_id().unwrap_or(""),
                    error = %e,
                    "IdP deletion failed"
                ),
            }
            match deleted {
                Ok(d) => {
                    self.maybe_crash(CrashPoint::AfterIdpCall)?;
                    flow.request_id = d.request_id.clone();
                    pk.idp_method_id = None;
                    pk.state = deleted_state(flow.operation);
                    let detail = format!(
                        "passkey {passkey_template} ({method_id}) deleted at the IdP{}",
                        if settled_by_listing {
                            " (the deletion's answer was lost; the user's passkeys no longer list it)"
                        } else if d.already_gone {
                            " (already gone)"
                        } else {
                            ""
                        }
                    );
                    let rec = flow.audit("idp-delete", "success", Some(detail), now);
                    self.store.commit(
                        UnitOfWork {
                            update_passkeys: vec![pk],
                            close_journal: vec![Self::fenced_close(
                                entry.id,
                                JournalStatus::Done,
                                d.request_id,
                                &fence,
                            )],
                            audit: vec![rec],
                            ..UnitOfWork::default()
                        },
                        now,
                    )?;
                    tracing::info!(journal_id = entry.id, "journal entry closed");
                    deleted_any = true;
                }
                Err(e) => {
                    flow.request_id = e.request_id().map(str::to_owned);
                    match on_failure {
                        OnIdpFailure::CancelOperation => {
                            if let Some(message) = in_doubt {
                                // Neither cancelled nor committed: the entry stays
                                // pending and replay finishes deletion and revocation.
                                return Err(IdpEffectError::IdpDeletionInDoubt {
                                    operation: flow.operation,
                                    passkey_template: passkey_template.to_owned(),
                                    message,
                                    request_id: e.request_id().map(str::to_owned),
                                }
                                .into());
                            }
                            self.fail_fenced(entry.id, &e.to_string(), &fence, now)?;
                            return Err(IdpEffectError::IdpDeletionCancelled {
                                operation: flow.operation,
                                passkey_template: passkey_template.to_owned(),
                                message: e.to_string(),
                                request_id: e.request_id().map(str::to_owned),
                            }
                            .into());
                        }
                        _ => {
                            let detail = format!(
                                "deleting passkey {passkey_template} ({method_id}) failed, retried by journal replay: {e}"
                            );
                            let rec = flow.audit("idp-delete", "deferred", Some(detail), now);
                            self.store.append_audit(&rec)?;
                        }
                    }
                }
            }
        }
        if revoking
            && deleted_any
            && flow
                .templates
                .credential
                .lifecycle
                .revoke_sign_in_sessions_on_revoke
        {
            self.sign_out(flow, &*idp, &user, now)?;
        }
        Ok(())
    }

    /// Before a revocation deletes passkey `method_id`: an audited warning when it is
    /// the user's last phishing-resistant method (issue 13 item 9). A warning, not a
    /// refusal: a lost or stolen key must go whatever is left.
    fn warn_if_last_phishing_resistant(
        &self,
        flow: &mut FlowContext<'_>,
        idp: &dyn crate::idp::Idp,
        user: &str,
        method_id: &str,
        now: UnixMillis,
    ) -> Result<(), Error> {
        let (outcome, detail) = match idp.phishing_resistant_left(user, method_id) {
            Ok(Some(0)) => (
                "warning",
                format!("passkey {method_id} is the user's last phishing-resistant sign-in method"),
            ),
            Ok(_) => return Ok(()),
            Err(e) => (
                "unknown",
                format!("cannot tell whether passkey {method_id} is the user's last phishing-resistant method: {e}"),
            ),
        };
        tracing::warn!(method_id, "{detail}");
        let rec = flow.audit("idp-last-method", outcome, Some(detail), now);
        self.store.append_audit(&rec)?;
        Ok(())
    }

    /// After a revocation deleted the key's passkeys: sign the user out everywhere
    /// (issue 13 item 10), audited. A failure is audited and logged; the revocation
    /// stands (the passkeys are gone already).
    fn sign_out(
        &self,
        flow: &mut FlowContext<'_>,
        idp: &dyn crate::idp::Idp,
        user: &str,
        now: UnixMillis,
    ) -> Result<(), Error> {
        let (outcome, detail) = match idp.revoke_sign_in_sessions(user) {
            Ok(true) => (
                "success",
                "the user's sign-in sessions were revoked".to_owned(),
            ),
            Ok(false) => return Ok(()),
            Err(e) => {
                tracing::warn!(error = %e, "revoking the user's sign-in sessions failed");
                (
                    "failure",
                    format!("revoking the user's sign-in sessions failed: {e}"),
                )
            }
        };
        let rec = flow.audit("idp-sign-out", outcome, Some(detail), now);
        self.store.append_audit(&rec)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deletions_end_in_the_operations_state() {
        assert_eq!(
            deleted_state(Operation::Inactivate),
            CredentialState::Inactive
        );
        assert_eq!(deleted_state(Operation::Revoke), CredentialState::Revoked);
        assert_eq!(deleted_state(Operation::Reissue), CredentialState::Revoked);
    }
}
