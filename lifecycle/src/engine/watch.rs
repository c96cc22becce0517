//! What reconciliation learns about passkeys that are where they should be (issue 19 item
//! 5, issue 13 item 12), and how it tells a missing passkey from one the IdP's listing
//! does not show yet (issue 13 item 8: directory reads are eventually consistent).
//!
//! - **Last use.** The IdP's last use of each registered passkey (Entra: beta
//!   `lastUsedDateTime`) is recorded whether or not reconciliation fixes anything;
//!   `keysmith list --stale DAYS` reads it ([`Engine::unused_keys`]).
//! - **Renames.** Entra cannot change the user name stored in a passkey. A passkey whose
//!   recorded name (the holder's UPN when it was made) differs from the holder's UPN now
//!   is a [`DriftKind::UserRenamed`] finding; the fix marks the key as needing reissue with
//!   reason `user_renamed`. A passkey with no recorded name gets the UPN now as baseline.
//! - **Replication lag.** A registered passkey the listing does not show is read by its
//!   method id; found, the listing lags and nothing is wrong. When the IdP cannot say,
//!   it is listed again after [`RELIST_DELAYS_MS`]; one still not shown but registered
//!   within [`REPLICATION_GRACE_MS`] is [`DriftKind::NotListedYet`], never repaired.

use super::reconcile::{matches, DriftFinding, DriftKind, Held, ReconcileOptions};
use super::{b64, Engine, UnixMillis};
use crate::model::CredentialState;
use crate::store::{KeyRecord, KeyUse, NewAuditRecord, PasskeyRecord, ReissueReason};
use crate::Error;

/// How long after its registration a passkey missing from a listing may still be on its
/// way through the directory's replicas: reported as not listed yet, never repaired.
pub const REPLICATION_GRACE_MS: UnixMillis = 15 * 60 * 1000;

/// The waits before each listing again of a connection that did not show a registered
/// passkey (backoff; 1.75 s in all).
pub const RELIST_DELAYS_MS: [u64; 3] = [250, 500, 1000];

fn iso_ms(s: &str) -> Option<UnixMillis> {
    let t = entra_graph::wire::parse_utc(s)?;
    let d = t.duration_since(std::time::UNIX_EPOCH).ok()?;
    UnixMillis::try_from(d.as_millis()).ok()
}

impl Engine {
    /// Whether the registered passkey `pk` of key `k` is really gone at the connections
    /// `asked` (each already listed once without it). First each connection reads that
    /// one method ([`crate::idp::Idp::has_passkey`]): there means the listing lags
    /// (`None`); not there at every connection means [`DriftKind::MissingAtIdp`]. When a
    /// connection cannot tell, they are listed again after [`RELIST_DELAYS_MS`]; still
    /// not shown, it is [`DriftKind::NotListedYet`] when registered within
    /// [`REPLICATION_GRACE_MS`] of `now`, else [`DriftKind::MissingAtIdp`].
    pub(super) fn confirm_missing(
        &self,
        asked: &[&Held],
        k: &KeyRecord,
        pk: &PasskeyRecord,
        now: UnixMillis,
    ) -> Option<DriftKind> {
        let method = pk.idp_method_id.as_deref().unwrap_or_default();
        let mut all_say_gone = !asked.is_empty();
        for h in asked {
            let said = self
                .idps
                .get(&h.connection)
                .map(|idp| idp.has_passkey(&h.user_id, method));
            match said {
                Some(Ok(Some(true))) => return None,
                Some(Ok(Some(false))) => {}
                _ => all_say_gone = false,
            }
        }
        if all_say_gone {
            return Some(DriftKind::MissingAtIdp);
        }
        for delay in RELIST_DELAYS_MS {
            std::thread::sleep(std::time::Duration::from_millis(delay));
            let shown = asked.iter().any(|h| {
                self.idps.get(&h.connection).is_some_and(|idp| {
                    idp.list(&h.user_id)
                        .is_ok_and(|ms| ms.iter().any(|m| matches(m, pk)))
                })
            });
            if shown {
                return None;
            }
        }
        // The key record changes when its passkeys are registered (issue, activation).
        let registered = pk.created_ms.max(k.updated_ms);
        Some(if now.saturating_sub(registered) < REPLICATION_GRACE_MS {
            DriftKind::NotListedYet
        } else {
            DriftKind::MissingAtIdp
        })
    }

    /// The user's passkey holding `credential_id`, listed again after each of
    /// [`RELIST_DELAYS_MS`] (a registration an earlier attempt may have made, not listed
    /// yet); `None` when no listing shows it.
    pub(super) fn relisted(
        &self,
        idp: &dyn crate::idp::Idp,
        user: &str,
        credential_id: &[u8],
    ) -> Result<Option<crate::idp::IdpPasskey>, crate::idp::IdpError> {
        for delay in RELIST_DELAYS_MS {
            std::thread::sleep(std::time::Duration::from_millis(delay));
            if let Some(m) = idp.list(user)?.into_iter().find(|m| m.holds(credential_id)) {
                return Ok(Some(m));
            }
        }
        Ok(None)
    }

    /// Records what the listings say about the user's registered passkeys (last use, the
    /// user name baseline) and reports (with `fix`: marks) keys whose holder was renamed.
    #[allow(clippy::too_many_arguments)] // reconcile's context, as its other steps take it
    pub(super) fn observe_passkeys(
        &self,
        actor: &str,
        user: &str,
        held: &[Held],
        passkeys: &[(KeyRecord, PasskeyRecord)],
        options: &ReconcileOptions,
        now: UnixMillis,
        out: &mut Vec<DriftFinding>,
    ) -> Result<(), Error> {
        let mut renamed: Vec<&str> = Vec::new();
        for (k, pk) in passkeys {
            if pk.idp_method_id.is_none()
                || k.state != CredentialState::Active
                || pk.state != CredentialState::Active
            {
                continue;
            }
            let connection = self.connection_of(k, &pk.passkey_template);
            let Some(h) = held
                .iter()
                .find(|h| connection.is_empty() || h.connection == connection)
            else {
                continue;
            };
            if let Some(t) = h
                .methods
                .iter()
                .find(|m| matches(m, pk))
                .and_then(|m| m.last_used.as_deref())
                .and_then(iso_ms)
            {
                self.store.record_last_used(
                    &k.key_id,
                    &pk.passkey_template,
                    &pk.credential_id,
                    t,
                )?;
            }
            let Some(upn) = h.upn.as_deref() else {
                continue;
            };
            let name = self
                .store
                .passkey_watch(&k.key_id)?
                .into_iter()
                .find(|w| {
                    w.passkey_template == pk.passkey_template && w.credential_id == pk.credential_id
                })
                .and_then(|w| w.user_name);
            let Some(name) = name else {
                self.store.note_user_name(
                    &k.key_id,
                    &pk.passkey_template,
                    &pk.credential_id,
                    upn,
                )?;
                continue;
            };
            if name.eq_ignore_ascii_case(upn)
                || k.needs_reissue
                || renamed.contains(&k.key_id.as_str())
            {
                continue;
            }
            renamed.push(&k.key_id);
            let mut f = DriftFinding {
                user: user.to_owned(),
                user_id: Some(h.user_id.clone()),
                key_id: Some(k.key_id.clone()),
                passkey_template: Some(pk.passkey_template.clone()),
                idp_connection: h.connection.clone(),
                method_id: pk.idp_method_id.clone(),
                credential_id: Some(b64(&pk.credential_id)),
                kind: DriftKind::UserRenamed,
                fixed: false,
                error: None,
                blocked_by: None,
            };
            if options.fix {
                let detail = format!(
                    "reconcile: the holder was renamed from {name} to {upn}; passkey {} still \
                     carries the old name (Entra cannot change it): the key needs reissue",
                    pk.passkey_template
                );
                let r = self.key(&k.key_id).and_then(|key| {
                    let rec = NewAuditRecord {
                        actor: actor.to_owned(),
                        time_ms: now,
                        action: "reconcile".into(),
                        key_id: Some(key.key_id.clone()),
                        user_id: key.user_id.clone(),
                        template_id: key.template_id.clone(),
                        outcome: "success".into(),
                        idp_request_id: None,
                        detail: Some(detail),
                    };
                    self.mark_needs_reissue_for(
                        &key,
                        Some(ReissueReason::UserRenamed),
                        rec,
                        Vec::new(),
                        now,
                    )
                    .map(|_| ())
                });
                match r {
                    Ok(()) => f.fixed = true,
                    Err(e) => f.error = Some(e.to_string()),
                }
            }
            out.push(f);
        }
        Ok(())
    }

    /// Active keys none of whose registered passkeys signed in at or after `before_ms`
    /// as last read by reconciliation (a key never seen used counts from when its passkey
    /// was made), by key id. Last use comes from the IdP (Entra: beta
    /// `lastUsedDateTime`, recorded by [`Engine::reconcile`]).
    pub fn unused_keys(&self, before_ms: UnixMillis) -> Result<Vec<KeyUse>, Error> {
        Ok(self.store.unused_keys(before_ms)?)
    }

    /// Why a key was marked as needing reissue, if the mark said.
    pub fn reissue_reason(&self, key_id: &str) -> Result<Option<ReissueReason>, Error> {
        Ok(self.store.reissue_reason(key_id)?)
    }
}
