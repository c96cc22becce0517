//! Temporary passes for a replacement key (issue 13 item 11) and leavers (item 13).
//!
//! Leavers: the directory's change feed (Entra `users/delta`) names
//! the users deleted or disabled since the last round; their live keys are revoked
//! through a bulk revoke job, which is journalled, resumable and idempotent like every
//! bulk job.

use super::{BulkKind, Engine, UnixMillis};
use crate::idp::TemporaryPass;
use crate::model::CredentialState;
use crate::store::NewAuditRecord;
use crate::store::{BulkJob, KeyQuery};
use crate::Error;

/// How long the pass for a replacement key lasts by default: a working day.
pub const REPLACEMENT_PASS_MINUTES: u32 = 8 * 60;

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
        self.leavers_round_with(connection, resume, false, actor, now)
    }

    /// [`Engine::leavers_round`]; with `include_foreign` every leaver gets a revoke row
    /// (column `include_foreign` true), keys or not, and the row also deletes the
    /// passkeys keysmith did not issue, each journalled and audited
    /// ([`Engine::delete_foreign_passkeys`]).
    pub fn leavers_round_with(
        &self,
        connection: &str,
        resume: Option<&str>,
        include_foreign: bool,
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
            if (live || include_foreign) && !holders.contains(id) {
                holders.push(id.clone());
            }
        }
        let job = if holders.is_empty() {
            None
        } else {
            let mut csv = String::from(if include_foreign {
                "user,include_foreign\n"
            } else {
                "user\n"
            });
            for h in &holders {
                csv.push_str(h);
                csv.push_str(if include_foreign { ",true\n" } else { "\n" });
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

impl Engine {
    /// "Issue a replacement key: a temporary pass for the day": for the user of
    /// `key_id` (typically a lost or stolen key being revoked), the key's first
    /// passkey template's IdP issues a temporary sign-in pass (Entra: a Temporary Access
    /// Pass) valid `lifetime_minutes` ([`REPLACEMENT_PASS_MINUTES`] for a day), so the
    /// holder can work until the replacement key is issued. Audited as
    /// `idp-temporary-pass` (never the pass itself); the pass is returned once.
    pub fn replacement_pass(
        &self,
        actor: &str,
        key_id: &str,
        lifetime_minutes: u32,
        now: UnixMillis,
    ) -> Result<TemporaryPass, Error> {
        let key = self.key(key_id)?;
        let user = key.user_id.clone().ok_or(super::LookupError::NotIssued {
            key_id: key_id.to_owned(),
            what: "user",
        })?;
        let templates = self.template_for(&key)?;
        let connection = templates
            .passkey_templates()
            .first()
            .map(|t| t.idp.connection.clone())
            .unwrap_or_default();
        let idp = self.idp(&connection)?;
        let record = |outcome: &str, detail: String| NewAuditRecord {
            actor: actor.to_owned(),
            time_ms: now,
            action: "idp-temporary-pass".into(),
            key_id: Some(key_id.to_owned()),
            user_id: Some(user.clone()),
            template_id: Some(templates.credential.name.clone()),
            outcome: outcome.to_owned(),
            idp_request_id: None,
            detail: Some(detail),
        };
        match idp.temporary_pass(&user, lifetime_minutes, false) {
            Ok(Some(pass)) => {
                self.store.append_audit(&record(
                    "success",
                    format!(
                        "temporary pass {} for {} minutes",
                        pass.method_id, pass.lifetime_minutes
                    ),
                ))?;
                Ok(pass)
            }
            Ok(None) => Err(crate::idp::IdpError::BadAnswer {
                idp: connection,
                field: "temporary pass",
                message: "this IdP issues no temporary passes".into(),
            }
            .into()),
            Err(e) => {
                self.store
                    .append_audit(&record("failure", format!("temporary pass refused: {e}")))?;
                Err(e.into())
            }
        }
    }
}
