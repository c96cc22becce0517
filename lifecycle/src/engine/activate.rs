//! Activation by the holder: their PIN replaces the transport PIN and the pending
//! registrations are sent.

use fido_transport::client::Authenticator;
use fido_transport::Transport;

use super::device::DeviceOps;
use super::{ms, Engine, UnixMillis};
use crate::state::{plan, Operation};
use crate::store::{KeyRecord, Transition};
use crate::Error;

use super::flow::{flow_span, log_outcome};

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
        let key = self.key(key_id)?;
        let span = flow_span(Operation::Activate, actor, &key);
        let _entered = span.enter();
        let templates = self.template_for(&key)?;
        let mut run = self.run(actor, Operation::Activate, templates, key);
        let result = (|| {
            let facts = self.facts(&run.key, &run.templates)?;
            let p = match plan(Operation::Activate, &run.templates, &facts, None, now) {
                Ok(p) => p,
                Err(
                    e @ Error::Transition(crate::state::TransitionError::ChallengeExpired {
                        ..
                    }),
                ) => {
                    let mut t = Transition::new(&run.key, run.key.state);
                    t.needs_reissue = Some(true);
                    let rec = self.audit(&run, "activate", "refused", Some(e.to_string()), now);
                    self.store.transition(&t, &rec, ms(now))?;
                    return Err(e);
                }
                Err(e) => return Err(e),
            };
            self.execute(
                &mut run,
                &p.steps,
                Some(device as &mut dyn DeviceOps),
                Some(holder_pin),
                now,
            )?;
            Ok(run.key.clone())
        })();
        let result = result.map_err(|e| match e {
            // Already audited with the needs-reissue mark.
            e @ Error::Transition(crate::state::TransitionError::ChallengeExpired { .. }) => {
                if let Some(id) = run.intent {
                    let _ = self.store.journal_failed(id, "challenge expired", ms(now));
                }
                e
            }
            e => self.fail(&run, e, now),
        });
        log_outcome(&result);
        result
    }
}
