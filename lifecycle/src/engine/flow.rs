//! What every flow shares: its state, its span, its audit records, its failure.

use std::collections::BTreeMap;

use zeroize::Zeroizing;

use super::device::Made;
use super::{ms, Engine, EngineError, UnixMillis};
use crate::state::Operation;
use crate::store::{KeyRecord, NewAuditRecord, UnitOfWork};
use crate::template::TemplateSet;
use crate::Error;

/// State carried through one flow.
pub(super) struct Run<'a> {
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
    /// Credentials made in this flow, by passkey template, with their client data, the
    /// IdP's challenge expiry and the user's id at that IdP.
    pub(super) made: BTreeMap<String, (Made, Vec<u8>, Option<u64>, String)>,
    /// Work to commit with the next state change.
    pub(super) work: UnitOfWork,
    /// The last IdP request id since the last state change.
    pub(super) request_id: Option<String>,
    /// The open journal entry for the state change that follows this flow's IdP side
    /// effects (closed with it, failed with the flow).
    pub(super) intent: Option<i64>,
}

/// The span a flow's events are recorded in: action, key id and serial, user, template.
/// Never a PIN or token.
pub(super) fn flow_span(operation: Operation, actor: &str, key: &KeyRecord) -> tracing::Span {
    tracing::info_span!(
        "flow",
        action = operation.as_str(),
        actor,
        key_id = %key.key_id,
        serial = %key.serial,
        user = key.user_id.as_deref().unwrap_or(""),
        template = key.template_id.as_deref().unwrap_or(""),
    )
}

/// Logs a flow's outcome in its span.
pub(super) fn log_outcome(result: &Result<KeyRecord, Error>) {
    match result {
        Ok(k) => tracing::info!(state = k.state.as_str(), "flow finished"),
        Err(e) => tracing::warn!(error = %e, "flow failed"),
    }
}

impl Engine {
    pub(super) fn audit(
        &self,
        run: &Run<'_>,
        action: &str,
        outcome: &str,
        detail: Option<String>,
        now: UnixMillis,
    ) -> NewAuditRecord {
        NewAuditRecord {
            actor: run.actor.to_owned(),
            time_ms: ms(now),
            action: action.to_owned(),
            key_id: Some(run.key.key_id.clone()),
            user_id: run.user.clone().or_else(|| run.key.user_id.clone()),
            template_id: Some(run.templates.credential.name.clone()),
            outcome: outcome.to_owned(),
            idp_request_id: run.request_id.clone(),
            detail,
        }
    }

    /// Records a failed flow in the audit log (a simulated crash writes nothing).
    pub(super) fn fail(&self, run: &Run<'_>, e: Error, now: UnixMillis) -> Error {
        if matches!(e, Error::Engine(EngineError::SimulatedCrash { .. })) {
            return e;
        }
        let outcome = match e {
            Error::Transition(_) | Error::Template(_) => "refused",
            _ => "failure",
        };
        if let Some(id) = run.intent {
            // The flow stopped before its state change: replay must not finish it.
            let _ = self
                .store
                .journal_failed(id, &format!("flow failed: {e}"), ms(now));
        }
        let rec = self.audit(
            run,
            run.operation.as_str(),
            outcome,
            Some(e.to_string()),
            now,
        );
        // The flow's error matters more than a failing audit append.
        let _ = self.store.append_audit(&rec);
        e
    }

    pub(super) fn run<'a>(
        &self,
        actor: &'a str,
        operation: Operation,
        templates: TemplateSet,
        key: KeyRecord,
    ) -> Run<'a> {
        Run {
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
        }
    }
}
