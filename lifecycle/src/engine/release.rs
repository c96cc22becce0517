//! Transport-PIN releases to a remote device half (`docs/split-protocol.md`): every job that
//! carries the transport PIN sealed to a remote session is audited as a release, and a
//! key whose PIN was released too often without the activation completing is marked as
//! needing reissue instead of released again.

use super::{Engine, UnixMillis};
use crate::state::TransitionError;
use crate::store::{AuditQuery, NewAuditRecord};
use crate::Error;

/// The audit action of a release.
pub(crate) const RELEASE_ACTION: &str = "transport_pin_release";

impl Engine {
    /// Records that the transport PIN of `key_id` goes to a remote device half (`to`:
    /// session, agent, job), or refuses when `limit` releases were made since the key was
    /// last issued: the key is then marked as needing reissue (a PIN handed out that often
    /// may be known to someone else).
    pub(crate) fn release_transport_pin(
        &self,
        key_id: &str,
        to: &str,
        limit: u32,
        now: UnixMillis,
    ) -> Result<(), Error> {
        let key = self.key(key_id)?;
        let records = self.store.query_audit(&AuditQuery {
            key_id: Some(key_id.to_owned()),
            ..AuditQuery::default()
        })?;
        // Releases since the key's last successful issuance.
        let since = records
            .iter()
            .rposition(|r| {
                r.event.outcome == "success"
                    && matches!(r.event.action.as_str(), "issue" | "reissue")
            })
            .map_or(0, |i| i + 1);
        let released = records[since..]
            .iter()
            .filter(|r| r.event.action == RELEASE_ACTION && r.event.outcome == "released")
            .count();
        let mut rec = NewAuditRecord {
            actor: format!("station:{}", self.station),
            time_ms: now,
            action: RELEASE_ACTION.to_owned(),
            key_id: Some(key_id.to_owned()),
            user_id: key.user_id.clone(),
            template_id: key.template_id.clone(),
            outcome: "released".into(),
            idp_request_id: None,
            detail: Some(to.to_owned()),
        };
        if u32::try_from(released).unwrap_or(u32::MAX) >= limit {
            rec.outcome = "refused".into();
            rec.detail = Some(format!(
                "{to}; {released} releases since issuance reached the limit of {limit}: the key needs reissue"
            ));
            self.mark_needs_reissue(&key, rec, Vec::new(), now)?;
            // The planner refuses activation of a key marked so from now on.
            return Err(TransitionError::NeedsReissue.into());
        }
        self.store.append_audit(&rec)?;
        Ok(())
    }
}
