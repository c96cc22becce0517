//! What every flow shares: [`FlowContext`] carries one flow's state and owns its
//! bookkeeping (its span, its audit records, the record of its failure and the log of
//! its outcome); [`Engine::run_flow`] is the one wrapper every flow runs in.

use std::collections::BTreeMap;

use zeroize::Zeroizing;

use super::{Engine, EngineError, UnixMillis};
use crate::state::{Operation, TransitionError};
use crate::store::{KeyRecord, NewAuditRecord, PasskeyRecord, StoreError, Transition, UnitOfWork};
use crate::template::TemplateSet;
use crate::Error;
use keysmith_device::Made;

/// A credential made in this flow, waiting to be stored as a pending registration.
pub(super) struct MadeCredential {
    /// The credential as the key made it.
    pub(super) made: Made,
    /// The client data JSON it was made over.
    pub(super) client_data: Vec<u8>,
    /// The IdP's challenge expiry, when it gave one.
    pub(super) idp_expiry: Option<u64>,
    /// The user's id at that IdP.
    pub(super) idp_user: String,
    /// The passkey's display name as the key was given it (`user.displayName`): the
    /// name registered at the IdP, kept with the pending registration.
    pub(super) display_name: String,
}

/// One flow in progress: what it works on, what it has done so far, and its span.
pub(super) struct FlowContext<'a> {
    pub(super) actor: &'a str,
    pub(super) operation: Operation,
    pub(super) templates: TemplateSet,
    pub(super) key: KeyRecord,
    /// The IdP user (object id) the flow is for.
    pub(super) user: Option<String>,
    /// Placeholder values for display names.
    pub(super) attrs: BTreeMap<String, String>,
    /// The PIN currently on the key, when the flow knows it.
    pub(super) pin: Option<Zeroizing<String>>,
    /// Credentials made in this flow, by passkey template.
    pub(super) made: BTreeMap<String, MadeCredential>,
    /// Work to commit with the next state change.
    pub(super) work: UnitOfWork,
    /// The last IdP request id since the last state change.
    pub(super) request_id: Option<String>,
    /// The open journal entry for the state change that follows this flow's IdP side
    /// effects (closed with it, failed with the flow).
    pub(super) intent: Option<i64>,
    /// The claim this flow holds on `intent` (a replay finishing a state change): the
    /// intent's close is fenced by it.
    pub(super) intent_fence: Option<crate::store::JournalFence>,
    /// The span the flow's events are recorded in: action, key id and serial, user,
    /// template. Never a PIN or token.
    pub(super) span: tracing::Span,
    /// Holds the key live while the flow's state intent is open (see `live.rs`).
    pub(super) live: Option<super::live::LiveGuard>,
    /// What the key proved about itself in this flow (see `identity.rs`), recorded with
    /// the issuance.
    pub(super) identity: Option<crate::store::KeyIdentity>,
    /// Where the station got the serial from when the key proves nothing.
    pub(super) claimed: Option<super::SerialSource>,
    /// When the flow started (wall clock): its `now` plus the time since is the flow's
    /// clock for lease renewals (see [`FlowContext::clock`]).
    pub(super) started: std::time::Instant,
}

impl<'a> FlowContext<'a> {
    /// A flow `operation` by `actor` on `key` under `templates`, for the key's recorded
    /// user.
    pub(super) fn new(
        actor: &'a str,
        operation: Operation,
        templates: TemplateSet,
        key: KeyRecord,
    ) -> Self {
        let span = tracing::info_span!(
            "flow",
            action = operation.as_str(),
            actor,
            key_id = %key.key_id,
            serial = %key.serial,
            user = key.user_id.as_deref().unwrap_or(""),
            template = key.template_id.as_deref().unwrap_or(""),
        );
        FlowContext {
            actor,
            operation,
            templates,
            user: key.user_id.clone(),
            key,
            attrs: BTreeMap::new(),
            pin: None,
            made: BTreeMap::new(),
            work: UnitOfWork::default(),
            request_id: None,
            intent: None,
            intent_fence: None,
            span,
            live: None,
            identity: None,
            claimed: None,
            started: std::time::Instant::now(),
        }
    }

    /// The flow's clock: `now` (the time the flow was started with) plus the wall-clock
    /// time since it started. Leases renewed by a long flow (a holder slow at PIN or
    /// touch) are counted from it, not from the flow's start.
    pub(super) fn clock(&self, now: UnixMillis) -> UnixMillis {
        let elapsed = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        now.saturating_add(elapsed)
    }

    /// An audit record of this flow: `action` with `outcome`, the flow's actor, key,
    /// user, template and last IdP request id.
    pub(super) fn audit(
        &self,
        action: &str,
        outcome: &str,
        detail: Option<String>,
        now: UnixMillis,
    ) -> NewAuditRecord {
        NewAuditRecord {
            actor: self.actor.to_owned(),
            time_ms: now,
            action: action.to_owned(),
            key_id: Some(self.key.key_id.clone()),
            user_id: self.user.clone().or_else(|| self.key.user_id.clone()),
            template_id: Some(self.templates.credential.name.clone()),
            outcome: outcome.to_owned(),
            idp_request_id: self.request_id.clone(),
            detail,
        }
    }
}

impl Engine {
    /// Runs `body` as the flow `flow`: inside its span; a failure is recorded (see
    /// [`Engine::fail`]) and the outcome logged. Returns the key's record afterwards.
    pub(super) fn run_flow<'a>(
        &self,
        mut flow: FlowContext<'a>,
        now: UnixMillis,
        body: impl FnOnce(&mut FlowContext<'a>) -> Result<(), Error>,
    ) -> Result<KeyRecord, Error> {
        let span = flow.span.clone();
        let _entered = span.enter();
        let result = match body(&mut flow) {
            Ok(()) => Ok(flow.key.clone()),
            Err(e) => Err(self.fail(&flow, e, now)),
        };
        match &result {
            Ok(k) => tracing::info!(state = k.state.as_str(), "flow finished"),
            Err(e) => tracing::warn!(error = %e, "flow failed"),
        }
        result
    }

    /// Records a failed flow: its open state journal entry is failed (replay must not
    /// finish it) and the failure audited. A simulated crash writes nothing; an
    /// activation's expired challenge was audited already, with the needs-reissue mark.
    fn fail(&self, flow: &FlowContext<'_>, e: Error, now: UnixMillis) -> Error {
        if matches!(e, Error::Engine(EngineError::SimulatedCrash { .. })) {
            return e;
        }
        let challenge_expired = matches!(
            e,
            Error::Transition(TransitionError::ChallengeExpired { .. })
        );
        if flow.operation == Operation::Activate && challenge_expired {
            if let Some(id) = flow.intent {
                let _ = self.close_intent_failed(flow, id, "challenge expired", now);
            }
            return e;
        }
        let outcome = match e {
            Error::Transition(_)
            | Error::Template(_)
            | Error::Store(StoreError::Integrity { .. }) => "refused",
            _ => "failure",
        };
        if let Some(id) = flow.intent {
            let _ = self.close_intent_failed(flow, id, &format!("flow failed: {e}"), now);
        }
        let rec = flow.audit(flow.operation.as_str(), outcome, Some(e.to_string()), now);
        // Not best effort: a failure that cannot be recorded fails as such.
        self.audit_or_fail(&rec, e)
    }

    /// Appends the audit record of a failure or refusal `e`; returns `e`, or, when the
    /// append fails, [`EngineError::AuditFailed`] naming both.
    pub(super) fn audit_or_fail(&self, rec: &NewAuditRecord, e: Error) -> Error {
        match self.store.append_audit(rec) {
            Ok(_) => e,
            Err(cause) => {
                tracing::error!(error = %e, audit_error = %cause, "audit append failed");
                EngineError::AuditFailed {
                    operation_error: e.to_string(),
                    cause,
                }
                .into()
            }
        }
    }

    /// Closes the flow's state journal entry `id` as failed, fenced by the flow's claim
    /// on it if it holds one.
    fn close_intent_failed(
        &self,
        flow: &FlowContext<'_>,
        id: i64,
        reason: &str,
        now: UnixMillis,
    ) -> Result<(), Error> {
        match &flow.intent_fence {
            Some(fence) => self.fail_fenced(id, reason, fence, now),
            None => Ok(self.store.journal_failed(id, reason, now)?),
        }
    }

    /// Marks `key` as needing reissue (its state unchanged), committed with `audit` and
    /// the `passkeys` updates as one unit. Returns the key's new record.
    pub(super) fn mark_needs_reissue(
        &self,
        key: &KeyRecord,
        audit: NewAuditRecord,
        passkeys: Vec<PasskeyRecord>,
        now: UnixMillis,
    ) -> Result<KeyRecord, Error> {
        self.mark_needs_reissue_for(key, None, audit, passkeys, now)
    }

    /// [`Engine::mark_needs_reissue`] recording why (`keysmith list --needs-reissue`
    /// shows it).
    pub(super) fn mark_needs_reissue_for(
        &self,
        key: &KeyRecord,
        reason: Option<crate::store::ReissueReason>,
        audit: NewAuditRecord,
        passkeys: Vec<PasskeyRecord>,
        now: UnixMillis,
    ) -> Result<KeyRecord, Error> {
        let mut change = Transition::new(key, key.state);
        change.needs_reissue = Some(true);
        change.reissue_reason = reason;
        let done = self.store.commit(
            UnitOfWork {
                transition: Some(change),
                update_passkeys: passkeys,
                audit: vec![audit],
                ..UnitOfWork::default()
            },
            now,
        )?;
        Ok(done.key.ok_or_else(|| StoreError::Corrupt {
            what: "transition committed without a key".into(),
        })?)
    }
}
