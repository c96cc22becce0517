//! Journal replay: finishes the IdP side effects and state changes a crash left open.

use super::payload::{DeletePayload, RegisterPayload, StatePayload};
use super::settle::{delete_by_credential, registration_open};
use super::{Engine, JournalError, UnixMillis, JOURNAL_LEASE_MS};
use crate::idp::Idp;
use crate::model::{Action, CredentialState};
use crate::state::{next_state, Operation};
use crate::store::{
    JournalClose, JournalFence, JournalOp, JournalStatus, KeyRecord, NewAuditRecord, PendingId,
    StoreError, Transition, UnitOfWork,
};
use crate::Error;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

/// What a journal replay did with one entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Replayed {
    /// The journal entry.
    pub id: i64,
    /// The key.
    pub key_id: String,
    /// The operation.
    pub operation: JournalOp,
    /// What became of it.
    pub outcome: ReplayOutcome,
}

/// What a journal replay did with one entry. Its text (`Display`) is the one logged and
/// shown to operators.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReplayOutcome {
    /// The passkey was registered at the IdP now.
    Registered,
    /// The passkey was found at the IdP (registered before the interruption): it was not
    /// registered again.
    FoundAtIdp,
    /// The passkey was deleted at the IdP now.
    Deleted,
    /// The passkey was already gone at the IdP.
    AlreadyGone,
    /// Another station holds the entry's lease.
    Busy,
    /// A state change waits for the key's IdP side effects (or a deletion by credential
    /// for the registration it undoes); the next replay tries again.
    WaitingForSideEffects,
    /// A state change was finished or settled; what happened.
    StateSettled(String),
    /// A registration journalled for an earlier version or another state of its key
    /// was refused and closed as superseded (audited); why.
    Superseded(String),
    /// The entry could not be finished (`failed: ...`); the journal keeps it for the next
    /// replay unless the failure is final.
    Failed(String),
}

impl std::fmt::Display for ReplayOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReplayOutcome::Registered => f.write_str("registered"),
            ReplayOutcome::FoundAtIdp => f.write_str("found at IdP"),
            ReplayOutcome::Deleted => f.write_str("done"),
            ReplayOutcome::AlreadyGone => f.write_str("already gone"),
            ReplayOutcome::Busy => f.write_str("busy"),
            ReplayOutcome::WaitingForSideEffects => {
                f.write_str("waiting for the key's IdP side effects")
            }
            ReplayOutcome::StateSettled(what) => f.write_str(what),
            ReplayOutcome::Superseded(why) => write!(f, "superseded: {why}"),
            ReplayOutcome::Failed(why) => write!(f, "failed: {why}"),
        }
    }
}

impl Engine {
    /// Finishes the IdP side effects a crash (or an IdP failure) left pending. A
    /// registration is first looked for in the user's methods, so it is never made twice.
    pub fn replay_journal(&self, now: UnixMillis) -> Result<Vec<Replayed>, Error> {
        let mut out = Vec::new();
        let mut entries = self.store.journal_unfinished()?;
        // State changes are finished after the side effects they wait for.
        entries.sort_by_key(|e| (e.operation == JournalOp::State, e.id));
        for entry in entries {
            let mut report = Replayed {
                id: entry.id,
                key_id: entry.key_id.clone(),
                operation: entry.operation,
                outcome: ReplayOutcome::Busy,
            };
            if self.live.holds(&entry.key_id) {
                // A flow of this engine is working on the key: its entry is not ours to
                // take over (the station's claim would let us, see `live.rs`).
                out.push(report);
                continue;
            }
            if entry.operation == JournalOp::Delete {
                // A deletion by credential waits for the registration it undoes.
                let by_credential = DeletePayload::from_bytes(entry.id, &entry.payload)
                    .ok()
                    .filter(|p| p.method_id.is_empty());
                if let Some(p) = by_credential {
                    let open = self.store.journal_unfinished()?;
                    if registration_open(&open, &entry.key_id, &p.credential_id) {
                        report.outcome = ReplayOutcome::WaitingForSideEffects;
                        out.push(report);
                        continue;
                    }
                }
            }
            // The claim checks the row's MAC: replay works from the claimed row only.
            let entry =
                match self
                    .store
                    .journal_claim(entry.id, &self.station, now, JOURNAL_LEASE_MS)
                {
                    Ok(claimed) => claimed,
                    Err(StoreError::JournalBusy { .. }) => {
                        report.outcome = ReplayOutcome::Busy;
                        out.push(report);
                        continue;
                    }
                    // Closed meanwhile (a flow settled it): nothing left to do.
                    Err(StoreError::JournalClosed { .. }) => continue,
                    Err(e @ StoreError::Integrity { .. }) => {
                        report.outcome = self.refuse_tampered_entry(&entry, e, now)?;
                        out.push(report);
                        continue;
                    }
                    Err(e) => return Err(e.into()),
                };
            let fence = JournalFence::of(&entry);
            let result = match entry.operation {
                JournalOp::Register => self
                    .idp(&entry.idp)
                    .map_err(Error::from)
                    .and_then(|idp| self.replay_register(&entry, idp.as_ref(), &fence, now)),
                JournalOp::Delete => self
                    .idp(&entry.idp)
                    .map_err(Error::from)
                    .and_then(|idp| self.replay_delete(&entry, idp.as_ref(), &fence, now)),
                JournalOp::State => self.replay_state(&entry, &fence, now),
            };
            report.outcome = match result {
                Ok(s) => s,
                Err(e) => {
                    if let Error::Idp(ie) = &e {
                        self.close_failed_if_final(entry.id, ie, &fence, now)?;
                    }
                    ReplayOutcome::Failed(e.to_string())
                }
            };
            tracing::info!(
                journal_id = entry.id,
                key_id = %entry.key_id,
                op = ?entry.operation,
                outcome = %report.outcome,
                "journal entry replayed"
            );
            out.push(report);
        }
        Ok(out)
    }

    /// A journal entry whose MAC does not verify: never sent to the IdP, closed as
    /// failed and audited as refused (naming the row). A failed audit append fails the
    /// replay.
    fn refuse_tampered_entry(
        &self,
        entry: &crate::store::JournalEntry,
        e: StoreError,
        now: UnixMillis,
    ) -> Result<ReplayOutcome, Error> {
        tracing::error!(journal_id = entry.id, error = %e, "journal entry refused");
        let rec = NewAuditRecord {
            actor: format!("replay:{}", self.station),
            time_ms: now,
            action: format!("replay-{}", entry.operation.as_str()),
            key_id: Some(entry.key_id.clone()),
            user_id: None,
            template_id: None,
            outcome: "refused".into(),
            idp_request_id: None,
            detail: Some(e.to_string()),
        };
        self.store.commit(
            UnitOfWork {
                close_journal: vec![JournalClose {
                    id: entry.id,
                    status: JournalStatus::Failed,
                    result: Some(e.to_string()),
                    fence: None,
                }],
                audit: vec![rec],
                ..UnitOfWork::default()
            },
            now,
        )?;
        Ok(ReplayOutcome::Failed(format!("refused: {e}")))
    }

    pub(super) fn replay_audit(
        &self,
        key: &KeyRecord,
        action: &str,
        request_id: Option<String>,
        detail: String,
        now: UnixMillis,
    ) -> NewAuditRecord {
        NewAuditRecord {
            actor: format!("replay:{}", self.station),
            time_ms: now,
            action: action.to_owned(),
            key_id: Some(key.key_id.clone()),
            user_id: key.user_id.clone(),
            template_id: key.template_id.clone(),
            outcome: "success".into(),
            idp_request_id: request_id,
            detail: Some(detail),
        }
    }

    pub(super) fn replay_register(
        &self,
        entry: &crate::store::JournalEntry,
        idp: &dyn Idp,
        fence: &JournalFence,
        now: UnixMillis,
    ) -> Result<ReplayOutcome, Error> {
        let p = RegisterPayload::from_bytes(entry.id, &entry.payload)?;
        let request = p.request(entry.id)?;
        let Some(key) = self.store.get_key(&entry.key_id)? else {
            let why = "the key is no longer recorded".to_owned();
            self.fail_fenced(entry.id, &format!("superseded: {why}"), fence, now)?;
            return Ok(ReplayOutcome::Superseded(why));
        };
        // Only for the key version and state it was journalled for: a key revoked,
        // inactivated or reissued since never gets this passkey registered.
        let expected = p.expect_state.as_deref().unwrap_or("issued");
        let stale_version = p.key_version.is_some_and(|v| v != key.version);
        if key.state.as_str() != expected || stale_version {
            let why = format!(
                "the registration was journalled for the key {expected}{}; the key is now {} (version {})",
                p.key_version
                    .map(|v| format!(" at version {v}"))
                    .unwrap_or_default(),
                key.state,
                key.version
            );
            let mut rec = self.replay_audit(
                &key,
                "register",
                None,
                format!(
                    "journal {}: passkey {} not registered: {why}",
                    entry.id, p.passkey_template
                ),
                now,
            );
            rec.outcome = "refused".into();
            self.store.commit(
                UnitOfWork {
                    close_journal: vec![Self::fenced_close(
                        entry.id,
                        JournalStatus::Failed,
                        Some(format!("superseded: {why}")),
                        fence,
                    )],
                    audit: vec![rec],
                    ..UnitOfWork::default()
                },
                now,
            )?;
            return Ok(ReplayOutcome::Superseded(why));
        }
        let mut found = self
            .leased(entry.id, fence, now, || idp.list(&p.user))?
            .into_iter()
            .find(|m| m.holds(&request.credential_id));
        // An earlier claim may have reached the IdP, and a fresh registration may not be
        // listed yet (replication lag): look again before registering.
        if found.is_none() && entry.attempts > 1 {
            found = self.leased(entry.id, fence, now, || {
                self.relisted(idp, &p.user, &request.credential_id)
            })?;
        }
        let (method_id, request_id, outcome) = match found {
            Some(m) => (m.method_id, None, ReplayOutcome::FoundAtIdp),
            None if p.delegated => {
                // Only the holder's token could register it, and the holder is gone
                // with their session: the passkey was not registered; they start again.
                let why = "the holder's own registration did not reach the IdP".to_owned();
                self.fail_fenced(entry.id, &format!("superseded: {why}"), fence, now)?;
                return Ok(ReplayOutcome::Superseded(why));
            }
            None => {
                let o = self.leased(entry.id, fence, now, || idp.register(&p.user, &request))?;
                (o.method_id, o.request_id, ReplayOutcome::Registered)
            }
        };
        let mut work = UnitOfWork::default();
        if let Some(mut pk) = self
            .store
            .list_passkeys(&entry.key_id)?
            .into_iter()
            .find(|pk| pk.credential_id == request.credential_id)
        {
            pk.idp_method_id = Some(method_id.clone());
            pk.state = CredentialState::Active;
            work.update_passkeys.push(pk);
        }
        work.remove_pending.push(PendingId {
            key_id: entry.key_id.clone(),
            passkey_template: p.passkey_template.clone(),
        });
        work.close_journal.push(Self::fenced_close(
            entry.id,
            JournalStatus::Done,
            Some(method_id.clone()),
            fence,
        ));
        work.audit.push(self.replay_audit(
            &key,
            "register",
            request_id.clone(),
            format!(
                "journal {}: passkey {} {outcome} as {method_id}",
                entry.id, p.passkey_template
            ),
            now,
        ));
        // The activation got as far as the PIN change; finish it once nothing is pending.
        let others_pending = self
            .store
            .pending_for_key(&entry.key_id)?
            .iter()
            .any(|x| x.passkey_template != p.passkey_template);
        if key.state == CredentialState::Issued && !others_pending {
            let mut t = Transition::new(&key, CredentialState::Active);
            t.needs_reissue = Some(false);
            work.transition = Some(t);
            work.audit.push(self.replay_audit(
                &key,
                "activate",
                request_id,
                format!("journal {}: activation finished by replay", entry.id),
                now,
            ));
        }
        self.store.commit(work, now)?;
        Ok(outcome)
    }

    /// Finishes (or settles) a state change whose flow died after its IdP side effects.
    pub(super) fn replay_state(
        &self,
        entry: &crate::store::JournalEntry,
        fence: &JournalFence,
        now: UnixMillis,
    ) -> Result<ReplayOutcome, Error> {
        let p = StatePayload::from_bytes(entry.id, &entry.payload)?;
        let close = |result: &str| -> Result<ReplayOutcome, Error> {
            self.store.commit(
                UnitOfWork {
                    close_journal: vec![Self::fenced_close(
                        entry.id,
                        JournalStatus::Done,
                        Some(result.to_owned()),
                        fence,
                    )],
                    ..UnitOfWork::default()
                },
                now,
            )?;
            Ok(ReplayOutcome::StateSettled(result.to_owned()))
        };
        let Some(key) = self.store.get_key(&entry.key_id)? else {
            return close("superseded: the key is no longer recorded");
        };
        if key.version != p.key_version || key.state.as_str() != p.from {
            return close(&format!("superseded: the key is now {}", key.state));
        }
        let waiting = self.store.journal_unfinished()?.into_iter().any(|e| {
            e.key_id == entry.key_id && e.id != entry.id && e.operation != JournalOp::State
        });
        if waiting {
            // Left pending; the next replay tries again once those are finished.
            return Ok(ReplayOutcome::WaitingForSideEffects);
        }
        let to: CredentialState = p.to.parse().map_err(|_| JournalError::BadJournalPayload {
            id: entry.id,
            reason: format!("unknown target state {:?}", p.to),
        })?;
        let actor = format!("replay:{}", self.station);
        match to {
            CredentialState::Revoked | CredentialState::Inactive => {
                // Run the operation again from the recorded facts: deletions already
                // made are not planned again; the journal entry closes with the state.
                let op = if to == CredentialState::Inactive {
                    Operation::Inactivate
                } else {
                    Operation::Revoke
                };
                match self.run_transition(
                    &actor,
                    op,
                    &key.key_id,
                    p.force,
                    Some((entry.id, fence.clone())),
                    now,
                ) {
                    Ok(k) => Ok(ReplayOutcome::StateSettled(format!(
                        "{op} finished by replay; the key is {}",
                        k.state
                    ))),
                    // `fail` closed the entry as failed and audited the error.
                    Err(e) => Ok(ReplayOutcome::Failed(e.to_string())),
                }
            }
            CredentialState::Active => {
                if !self.store.pending_for_key(&key.key_id)?.is_empty() {
                    let why = "activation incomplete: registrations are still pending; run the activation again";
                    self.fail_fenced(entry.id, why, fence, now)?;
                    return Ok(ReplayOutcome::StateSettled(why.into()));
                }
                let mut t = Transition::new(&key, CredentialState::Active);
                t.needs_reissue = Some(false);
                let rec = self.replay_audit(
                    &key,
                    "activate",
                    None,
                    format!("journal {}: activation finished by replay", entry.id),
                    now,
                );
                self.store.commit(
                    UnitOfWork {
                        transition: Some(t),
                        audit: vec![rec],
                        close_journal: vec![Self::fenced_close(
                            entry.id,
                            JournalStatus::Done,
                            Some("state active".into()),
                            fence,
                        )],
                        ..UnitOfWork::default()
                    },
                    now,
                )?;
                Ok(ReplayOutcome::StateSettled(
                    "activate finished by replay".into(),
                ))
            }
            other => close(&format!("nothing to finish for a change to {other}")),
        }
    }

    pub(crate) fn replay_delete(
        &self,
        entry: &crate::store::JournalEntry,
        idp: &dyn Idp,
        fence: &JournalFence,
        now: UnixMillis,
    ) -> Result<ReplayOutcome, Error> {
        let p = DeletePayload::from_bytes(entry.id, &entry.payload)?;
        let key = self.key(&entry.key_id)?;
        // No method id: a registration in doubt, found (if made) by its credential.
        let (method_id, d) = if p.method_id.is_empty() {
            let credential = URL_SAFE_NO_PAD.decode(&p.credential_id).map_err(|e| {
                JournalError::BadJournalPayload {
                    id: entry.id,
                    reason: format!("credential_id: {e}"),
                }
            })?;
            match self.leased(entry.id, fence, now, || {
                delete_by_credential(idp, &p.user, &credential)
            })? {
                Some((m, d)) => (m, d),
                None => (
                    "(not at the IdP)".to_owned(),
                    crate::idp::IdpDeletion {
                        request_id: None,
                        already_gone: true,
                    },
                ),
            }
        } else {
            let d = self.leased(entry.id, fence, now, || idp.delete(&p.user, &p.method_id))?;
            (p.method_id.clone(), d)
        };
        let target = p
            .target
            .as_deref()
            .and_then(|t| t.parse::<CredentialState>().ok())
            .unwrap_or(CredentialState::Revoked);
        let mut work = UnitOfWork::default();
        let passkeys = self.store.list_passkeys(&entry.key_id)?;
        if let Some(mut pk) = passkeys
            .iter()
            .find(|pk| pk.idp_method_id.as_deref() == Some(&method_id))
            .cloned()
        {
            pk.idp_method_id = None;
            pk.state = target;
            work.update_passkeys.push(pk);
        }
        work.close_journal.push(Self::fenced_close(
            entry.id,
            JournalStatus::Done,
            d.request_id.clone(),
            fence,
        ));
        work.audit.push(self.replay_audit(
            &key,
            "idp-delete",
            d.request_id.clone(),
            format!(
                "journal {}: passkey {} ({}) deleted",
                entry.id, p.passkey_template, method_id
            ),
            now,
        ));
        // The crash came before the state change: finish it once no other passkey of
        // the key is still registered.
        let action = match target {
            CredentialState::Inactive => Action::Inactivate,
            _ => Action::Revoke,
        };
        let others_registered = passkeys.iter().any(|pk| {
            pk.idp_method_id.is_some() && pk.idp_method_id.as_deref() != Some(&method_id)
        });
        if let (Ok(to), false, false) = (
            next_state(key.state, action),
            others_registered,
            p.keep_key_state,
        ) {
            work.transition = Some(Transition::new(&key, to));
            work.audit.push(self.replay_audit(
                &key,
                action.as_str(),
                d.request_id.clone(),
                format!("journal {}: {action} finished by replay", entry.id),
                now,
            ));
        }
        self.store.commit(work, now)?;
        Ok(if d.already_gone {
            ReplayOutcome::AlreadyGone
        } else {
            ReplayOutcome::Deleted
        })
    }
}
