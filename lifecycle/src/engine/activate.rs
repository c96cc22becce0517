//! Activation by the holder: their PIN replaces the transport PIN and the pending
//! registrations are sent.

use fido_transport::client::Authenticator;
use fido_transport::Transport;

use super::issue::transport_name;
use super::{DevicePrompt, Engine, UnixMillis};
use crate::remote::{DeviceLink, LocalLink};
use crate::state::{plan, Operation, TransitionError};
use crate::store::KeyRecord;
use crate::Error;

use super::flow::FlowContext;

impl Engine {
    /// Activation by the holder: their PIN replaces the transport PIN and the pending
    /// registrations are sent. An expired challenge refuses with
    /// [`crate::state::TransitionError::ChallengeExpired`] and marks the key as needing
    /// reissue.
    pub fn activate<T: Transport>(
        &self,
        actor: &str,
        key_id: &str,
        holder_pin: &str,
        device: &mut Authenticator<T>,
        now: UnixMillis,
    ) -> Result<KeyRecord, Error> {
        let prompt = |p: &DevicePrompt| self.prompt(p);
        let kind = transport_name(device.transport().kind());
        let mut link = LocalLink::open(device, Some(holder_pin), kind, &prompt)?;
        self.activate_via(actor, key_id, &mut link, now)
    }

    /// Activation over `link`: the device half's holder UI gives the new PIN.
    pub(crate) fn activate_via(
        &self,
        actor: &str,
        key_id: &str,
        link: &mut dyn DeviceLink,
        now: UnixMillis,
    ) -> Result<KeyRecord, Error> {
        let key = self.key(key_id)?;
        let templates = self.template_for(&key)?;
        let flow = FlowContext::new(actor, Operation::Activate, templates, key);
        self.run_flow(flow, now, |flow| {
            let facts = self.facts(&flow.key, &flow.templates)?;
            let p = match plan(Operation::Activate, &flow.templates, &facts, None, now) {
                Ok(p) => p,
                Err(e @ Error::Transition(TransitionError::ChallengeExpired { .. })) => {
                    let rec = flow.audit("activate", "refused", Some(e.to_string()), now);
                    self.mark_needs_reissue(&flow.key, rec, Vec::new(), now)?;
                    return Err(e);
                }
                Err(e) => return Err(e),
            };
            self.execute(flow, &p.steps, Some(link), now)
        })
    }
}
