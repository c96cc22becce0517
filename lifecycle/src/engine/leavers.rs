//! Leavers (issue 13 item 13): the directory's change feed (Entra `users/delta`) names
//! the users deleted or disabled since the last round; their live keys are revoked
//! through a bulk revoke job, which is journalled, resumable and idempotent like every
//! bulk job.

use super::{BulkKind, Engine, UnixMillis};
use crate::model::CredentialState;
use crate::store::{BulkJob, KeyQuery};
use crate::Error;

/// What one leavers round found and set up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaversRound {
    /// Users the feed reported as gone (deleted or disabled).
    pub leavers: Vec<String>,
    /// The bulk revoke job for those of them who hold live keys (`None`: nothing to
    /// revoke). Run it with [`Engine::bulk_run`]; an interrupted run resumes.
    pub job: Option<BulkJob>,
    /// Where the next round starts: pass it to the next call (empty when the IdP has
    /// no change feed).
    pub resume: String,
}

impl Engine {
    /// One round of the leavers feed of IdP `connection`: asks the IdP who left since
    /// `resume` (from the last round; `None` the first time: every disabled user) and
    /// records a bulk revoke job (CSV column `user`) for those who hold keys not yet
    /// revoked or retired. Submitting the same leavers again while that job is
    /// unfinished returns the same job ([`Engine::bulk_create`]).
    pub fn leavers_round(
        &self,
        connection: &str,
        resume: Option<&str>,
        actor: &str,
        now: UnixMillis,
    ) -> Result<LeaversRound, Error> {
        let Some(feed) = self.idp(connection)?.leavers(resume)? else {
            return Ok(LeaversRound {
                leavers: Vec::new(),
                job: None,
                resume: String::new(),
            });
        };
        let mut holders = Vec::new();
        for id in &feed.user_ids {
            let live = self
                .store
                .find_keys(&KeyQuery::ByUser(id.clone()))?
                .iter()
                .any(|k| {
                    !matches!(
                        k.state,
                        CredentialState::Revoked
                            | CredentialState::Retired
                            | CredentialState::Unregistered
                    )
                });
            if live && !holders.contains(id) {
                holders.push(id.clone());
            }
        }
        let job = if holders.is_empty() {
            None
        } else {
            let mut csv = String::from("user\n");
            for h in &holders {
                csv.push_str(h);
                csv.push('\n');
            }
            Some(self.bulk_create(BulkKind::Revoke, &csv, actor, now)?)
        };
        Ok(LeaversRound {
            leavers: feed.user_ids,
            job,
            resume: feed.resume,
        })
    }
}
