//! Journal claims held across IdP calls (renewed, fenced) and the settling of
//! registrations whose outcome is in doubt when a key leaves the issued state.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::effects::deleted_state;
use super::payload::{DeletePayload, RegisterPayload};
use super::{Engine, IdpEffectError, UnixMillis, JOURNAL_LEASE_MS};
use crate::idp::{Idp, IdpDeletion, IdpError};
use crate::state::{Operation, Step};
use crate::store::{
    JournalClose, JournalEntry, JournalFence, JournalOp, JournalStatus, NewJournalEntry,
    StoreError, UnitOfWork,
};
use crate::Error;

use super::flow::FlowContext;

/// How often (wall clock) a claim is renewed while its IdP call runs.
const RENEW_EVERY: Duration = Duration::from_secs(60);

/// Whether an IdP failure is definite: a refusal (a 4xx other than 408/429, or a policy
/// refusal) or a request that could not even be built (never sent, and never will be).
/// The call was not carried out. Anything else may have been.
pub(super) fn definite(e: &IdpError) -> bool {
    matches!(e, IdpError::Call { status: Some(s), .. } if (400..500).contains(s) && *s != 408 && *s != 429)
        || matches!(e, IdpError::Policy { .. } | IdpError::Unsendable { .. })
}

/// Deletes `user`'s passkey whose credential id is `credential_id`, if the IdP has one:
/// the method id and the deletion, or `None` when the IdP has no such passkey.
pub(super) fn delete_by_credential(
    idp: &dyn Idp,
    user: &str,
    credential_id: &[u8],
) -> Result<Option<(String, IdpDeletion)>, IdpError> {
    let found = idp.list(user)?.into_iter().find(|m| m.holds(credential_id));
    match found {
        None => Ok(None),
        Some(m) => {
            let d = idp.delete(user, &m.method_id)?;
            Ok(Some((m.method_id, d)))
        }
    }
}

/// A journalled deletion, by credential, of the passkey registration `entry` (payload
/// `p`) may have made; it changes no key state (the operation `op` does that).
fn deferred_delete(entry: &JournalEntry, p: &RegisterPayload, op: Operation) -> NewJournalEntry {
    let delete = DeletePayload {
        user: p.user.clone(),
        passkey_template: p.passkey_template.clone(),
        method_id: String::new(),
        credential_id: p.credential_id.clone(),
        target: Some(deleted_state(op).as_str().to_owned()),
        keep_key_state: true,
    };
    NewJournalEntry {
        key_id: entry.key_id.clone(),
        idp: entry.idp.clone(),
        operation: JournalOp::Delete,
        payload: delete.to_bytes(),
    }
}

/// Whether a registration of `credential_id` (base64url, as payloads carry it) for key
/// `key_id` is still open in `unfinished`: a deletion by credential waits for it.
pub(super) fn registration_open(
    unfinished: &[JournalEntry],
    key_id: &str,
    credential_id: &str,
) -> bool {
    unfinished.iter().any(|e| {
        e.key_id == key_id
            && e.operation == JournalOp::Register
            && RegisterPayload::from_bytes(e.id, &e.payload)
                .is_ok_and(|r| r.credential_id == credential_id)
    })
}

impl Engine {
    /// Claims journal entry `id` for this station; returns the claimed row (checked as
    /// the store checks a claim) and the claim's fence.
    pub(super) fn claim(
        &self,
        id: i64,
        now: UnixMillis,
    ) -> Result<(JournalEntry, JournalFence), Error> {
        let e = self
            .store
            .journal_claim(id, &self.station, now, JOURNAL_LEASE_MS)?;
        let fence = JournalFence::of(&e);
        Ok((e, fence))
    }

    /// Journals `entry` already claimed for this station (one transaction), so no other
    /// station's replay can take it over before the flow makes its side effect; returns
    /// the entry and the claim's fence.
    pub(super) fn append_claimed(
        &self,
        entry: &NewJournalEntry,
        now: UnixMillis,
    ) -> Result<(JournalEntry, JournalFence), Error> {
        let e = self
            .store
            .journal_append_claimed(entry, &self.station, now, JOURNAL_LEASE_MS)?;
        let fence = JournalFence::of(&e);
        Ok((e, fence))
    }

    /// Renews the claim `fence` holds on entry `id` at `at` (synchronously). A claim
    /// another station took over (its lease ran out, and that station's replay claimed
    /// the entry, and perhaps closed it) fails with [`StoreError::JournalClaimLost`]: the
    /// flow stops there, before its next device job or IdP call.
    pub(super) fn hold_claim(
        &self,
        id: i64,
        fence: &JournalFence,
        at: UnixMillis,
    ) -> Result<(), Error> {
        self.store.journal_renew(id, fence, at, JOURNAL_LEASE_MS)?;
        Ok(())
    }

    /// Renews the flow's claim on its state intent, when it holds one (see
    /// [`Engine::hold_claim`]), at the flow's clock.
    pub(super) fn hold_intent(&self, flow: &FlowContext<'_>, now: UnixMillis) -> Result<(), Error> {
        match (flow.intent, &flow.intent_fence) {
            (Some(id), Some(fence)) => self.hold_claim(id, fence, flow.clock(now)),
            _ => Ok(()),
        }
    }

    /// Runs `call` (an IdP call that can take as long as its retries) while the claim
    /// `fence` on entry `id` is renewed every [`RENEW_EVERY`], its lease counted from
    /// `now` plus the time elapsed. A claim lost meanwhile is not renewed again; the
    /// fenced close after the call then fails.
    pub(super) fn leased<T>(
        &self,
        id: i64,
        fence: &JournalFence,
        now: UnixMillis,
        call: impl FnOnce() -> T,
    ) -> T {
        let (stop, stopped) = mpsc::channel::<()>();
        let store = &self.store;
        std::thread::scope(|s| {
            s.spawn(move || {
                let start = Instant::now();
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(RENEW_EVERY) {
                    let elapsed = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
                    let at = now.saturating_add(elapsed);
                    if let Err(e) = store.journal_renew(id, fence, at, JOURNAL_LEASE_MS) {
                        tracing::warn!(journal_id = id, error = %e, "journal lease not renewed");
                        break;
                    }
                }
            });
            let out = call();
            drop(stop);
            out
        })
    }

    /// A close of entry `id` as `status`, fenced by `fence`.
    pub(super) fn fenced_close(
        id: i64,
        status: JournalStatus,
        result: Option<String>,
        fence: &JournalFence,
    ) -> JournalClose {
        JournalClose {
            id,
            status,
            result,
            fence: Some(fence.clone()),
        }
    }

    /// Closes entry `id` as failed (`reason`), fenced by `fence`.
    pub(super) fn fail_fenced(
        &self,
        id: i64,
        reason: &str,
        fence: &JournalFence,
        now: UnixMillis,
    ) -> Result<(), Error> {
        self.store.commit(
            UnitOfWork {
                close_journal: vec![Self::fenced_close(
                    id,
                    JournalStatus::Failed,
                    Some(reason.to_owned()),
                    fence,
                )],
                ..UnitOfWork::default()
            },
            now,
        )?;
        Ok(())
    }

    /// Settles every registration of the flow's key whose outcome is in doubt (its
    /// journal entry still pending) before a revoke, inactivate, unregister or reissue
    /// goes on: the user's passkeys are listed at the IdP, one with the credential is
    /// deleted, and the entry is closed as superseded (audited), so no replay registers
    /// it later. When the IdP cannot be asked, a forced revocation is cancelled (the
    /// entry stays pending); otherwise the entry is closed and a deletion by credential
    /// is journalled for replay. A registration another station holds (its call running,
    /// or its lease not yet over after a crash) cancels a forced revocation; otherwise
    /// the operation goes on and a deletion by credential is journalled that replay runs
    /// once that registration is closed. Registrations the key's passkey rows record as
    /// made are left to the operation's own deletions. `rest` is the flow's plan.
    pub(super) fn settle_in_doubt(
        &self,
        flow: &mut FlowContext<'_>,
        rest: &[Step],
        now: UnixMillis,
    ) -> Result<(), Error> {
        if !matches!(
            flow.operation,
            Operation::Revoke | Operation::Inactivate | Operation::Unregister | Operation::Reissue
        ) {
            return Ok(());
        }
        let key_id = flow.key.key_id.clone();
        let entries: Vec<_> = self
            .store
            .journal_unfinished()?
            .into_iter()
            .filter(|e| e.key_id == key_id && e.operation == JournalOp::Register)
            .collect();
        if entries.is_empty() {
            return Ok(());
        }
        self.open_intent(flow, rest, now)?;
        let cancel = flow.operation == Operation::Revoke
            && flow
                .templates
                .credential
                .lifecycle
                .force_idp_deletion_on_revoke;
        let op = flow.operation;
        for listed in entries {
            let (entry, fence) = match self.claim(listed.id, now) {
                Ok(claimed) => claimed,
                // Another station holds the registration (in its call, or crashed with
                // its lease running): its entry cannot be closed here.
                Err(Error::Store(StoreError::JournalBusy { claimed_by, .. })) => {
                    let entry = listed;
                    let p = RegisterPayload::from_bytes(entry.id, &entry.payload)?;
                    let credential = p.request(entry.id)?.credential_id;
                    // The row was not claimed (so not checked): its deletion is journalled
                    // only for a credential the key's own passkey rows name.
                    let ours = self
                        .store
                        .list_passkeys(&key_id)?
                        .iter()
                        .any(|pk| pk.credential_id == credential);
                    if !ours {
                        return Err(StoreError::Corrupt {
                            what: format!(
                                "journal entry {} names a credential key {key_id} does not hold",
                                entry.id
                            ),
                        }
                        .into());
                    }
                    let what = format!(
                        "registration (journal {}) of passkey {} is held by station {claimed_by}",
                        entry.id, p.passkey_template
                    );
                    if cancel {
                        return Err(IdpEffectError::IdpDeletionCancelled {
                            operation: op,
                            passkey_template: p.passkey_template.clone(),
                            message: format!("{what}; try again when its lease ends"),
                            request_id: None,
                        }
                        .into());
                    }
                    // The operation goes on; a deletion by credential is journalled that
                    // replay runs once that registration is closed (made, or refused as
                    // superseded by this change of the key).
                    let work = UnitOfWork {
                        journal: vec![deferred_delete(&entry, &p, op)],
                        audit: vec![flow.audit(
                            "idp-settle",
                            "deferred",
                            Some(format!(
                                "{what}; its deletion is journalled for replay after it"
                            )),
                            now,
                        )],
                        ..UnitOfWork::default()
                    };
                    self.store.commit(work, now)?;
                    continue;
                }
                Err(e) => return Err(e),
            };
            let p = RegisterPayload::from_bytes(entry.id, &entry.payload)?;
            let credential = p.request(entry.id)?.credential_id;
            let recorded = self
                .store
                .list_passkeys(&key_id)?
                .into_iter()
                .any(|pk| pk.credential_id == credential && pk.idp_method_id.is_some());
            if recorded {
                let why = format!("superseded by {op}: the registration is recorded as made");
                self.fail_fenced(entry.id, &why, &fence, now)?;
                continue;
            }
            let idp = self.idp(&entry.idp)?.clone();
            self.hold_intent(flow, now)?;
            let settled = self.leased(entry.id, &fence, flow.clock(now), || {
                delete_by_credential(idp.as_ref(), &p.user, &credential)
            });
            let superseded = |what: &str| {
                format!(
                    "superseded by {op} (key version {}): {what}",
                    flow.key.version
                )
            };
            let mut work = UnitOfWork::default();
            match settled {
                Ok(found) => {
                    let what = match &found {
                        Some((method, _)) => format!(
                            "registration in doubt (journal {}) of passkey {} was made at the IdP as {method}: deleted",
                            entry.id, p.passkey_template
                        ),
                        None => format!(
                            "registration in doubt (journal {}) of passkey {} is not at the IdP",
                            entry.id, p.passkey_template
                        ),
                    };
                    flow.request_id = found.and_then(|(_, d)| d.request_id);
                    work.close_journal.push(Self::fenced_close(
                        entry.id,
                        JournalStatus::Failed,
                        Some(superseded(&what)),
                        &fence,
                    ));
                    work.audit
                        .push(flow.audit("idp-settle", "success", Some(what), now));
                }
                Err(e) if cancel => {
                    flow.request_id = e.request_id().map(str::to_owned);
                    return Err(IdpEffectError::IdpDeletionCancelled {
                        operation: op,
                        passkey_template: p.passkey_template.clone(),
                        message: format!(
                            "settling the registration in doubt (journal {}) failed: {e}",
                            entry.id
                        ),
                        request_id: e.request_id().map(str::to_owned),
                    }
                    .into());
                }
                Err(e) => {
                    flow.request_id = e.request_id().map(str::to_owned);
                    let what = format!(
                        "registration in doubt (journal {}) of passkey {} could not be settled ({e}); its deletion is journalled for replay",
                        entry.id, p.passkey_template
                    );
                    work.journal.push(deferred_delete(&entry, &p, op));
                    work.close_journal.push(Self::fenced_close(
                        entry.id,
                        JournalStatus::Failed,
                        Some(superseded(&what)),
                        &fence,
                    ));
                    work.audit
                        .push(flow.audit("idp-settle", "deferred", Some(what), now));
                }
            }
            self.store.commit(work, now)?;
            tracing::info!(journal_id = entry.id, "registration in doubt settled");
        }
        Ok(())
    }
}
