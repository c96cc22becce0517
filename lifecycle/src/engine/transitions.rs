//! The flows that need no key attached: inactivate, revoke, retire, unregister.

use super::{Engine, UnixMillis};
use crate::state::{plan, Operation};
use crate::store::KeyRecord;
use crate::template::TemplateSet;
use crate::Error;

use super::flow::FlowContext;

impl Engine {
    /// Runs `operation` (no key attached) on `key_id`; `force` overrides the template's
    /// forced IdP deletion; `intent` is a state journal entry the flow closes (replay
    /// finishing an interrupted change) and the replay's claim on it.
    pub(super) fn run_transition(
        &self,
        actor: &str,
        operation: Operation,
        key_id: &str,
        force: Option<bool>,
        intent: Option<(i64, crate::store::JournalFence)>,
        now: UnixMillis,
    ) -> Result<KeyRecord, Error> {
        let key = self.key(key_id)?;
        let mut templates = match self.template_for(&key) {
            Ok(t) => t,
            // Retire/unregister of a key never issued works without a template.
            Err(_) if key.template_id.is_none() => blank_templates()?,
            Err(e) => return Err(e),
        };
        if let Some(f) = force {
            templates.credential.lifecycle.force_idp_deletion_on_revoke = f;
        }
        let mut flow = FlowContext::new(actor, operation, templates, key);
        if let Some((id, fence)) = intent {
            flow.intent = Some(id);
            flow.intent_fence = Some(fence);
        }
        self.run_flow(flow, now, |flow| {
            let facts = self.facts(&flow.key, &flow.templates)?;
            let p = plan(operation, &flow.templates, &facts, None, now)?;
            self.execute(flow, &p.steps, None, now)
        })
    }

    /// Inactivate: the passkeys are removed at the IdP (retried durably on failure).
    pub fn inactivate(
        &self,
        actor: &str,
        key_id: &str,
        now: UnixMillis,
    ) -> Result<KeyRecord, Error> {
        self.run_transition(actor, Operation::Inactivate, key_id, None, None, now)
    }

    /// Revoke. `force` overrides the template's `force_idp_deletion_on_revoke`: forced,
    /// a failed IdP deletion cancels the revocation (nothing changes, the error is
    /// returned); unforced, the revocation stands and the deletion is journalled for
    /// [`Engine::replay_journal`].
    pub fn revoke(
        &self,
        actor: &str,
        key_id: &str,
        force: Option<bool>,
        now: UnixMillis,
    ) -> Result<KeyRecord, Error> {
        self.run_transition(actor, Operation::Revoke, key_id, force, None, now)
    }

    /// Retire.
    pub fn retire(&self, actor: &str, key_id: &str, now: UnixMillis) -> Result<KeyRecord, Error> {
        self.run_transition(actor, Operation::Retire, key_id, None, None, now)
    }

    /// Unregister: the key's records are forgotten (the audit log stays).
    pub fn unregister(
        &self,
        actor: &str,
        key_id: &str,
        now: UnixMillis,
    ) -> Result<KeyRecord, Error> {
        self.run_transition(actor, Operation::Unregister, key_id, None, None, now)
    }
}

/// A minimal template set for keys that were never issued (retire / unregister of a
/// blank key need no template content).
pub(super) fn blank_templates() -> Result<TemplateSet, Error> {
    const T: &str = "[passkey.none]\nidp = { connection = \"none\" }\ndisplay_name = \"{serial}\"\n\n[credential]\nname = \"none\"\npasskey_templates = [\"none\"]\nuser_assignment = { directory = \"none\" }\n";
    Ok(TemplateSet::from_toml_str(T)?)
}
