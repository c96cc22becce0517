//! Reconciliation: what the repository says against what each IdP holds.
//!
//! For each user the engine lists the passkeys every configured IdP connection holds and
//! compares them with the passkeys recorded on the user's keys. The kinds of drift found
//! are [`DriftKind`]'s (renames and replication lag: `watch.rs`); with [`ReconcileOptions::fix`] each is repaired, and every
//! repair is audited. Deletions at the IdP go through the journal like every other IdP
//! side effect, so a crash in the middle is finished by [`Engine::replay_journal`].

use serde::{Deserialize, Serialize};

use super::payload::DeletePayload;
use super::{b64, Engine, UnixMillis};
use crate::idp::{Idp, IdpPasskey};
use crate::model::CredentialState;
use crate::store::{
    JournalOp, KeyQuery, KeyRecord, NewAuditRecord, NewJournalEntry, NewKey, PasskeyRecord,
    ReissueReason, StoreError, Transition, UnitOfWork,
};
use crate::Error;

/// What reconciliation may repair.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReconcileOptions {
    /// Repair what is found (otherwise only report).
    pub fix: bool,
    /// With `fix`: also delete passkeys nobody issued ([`DriftKind::Unknown`]).
    pub delete_unknown: bool,
}

/// A kind of drift between the repository and an IdP.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum DriftKind {
    /// A passkey the CMS registered (key active) is gone at the IdP. Fix: the key is
    /// marked as needing reissue and the passkey as no longer registered.
    MissingAtIdp,
    /// A passkey of a revoked, inactive, retired or unregistered key (or passkey) is still
    /// at the IdP. Fix: a journalled deletion.
    StillAtIdp,
    /// A passkey at the IdP whose credential id the repository does not know. Fix (only
    /// with [`ReconcileOptions::delete_unknown`]): a journalled deletion.
    Unknown,
    /// A pending registration's challenge expired. Fix: the key is marked as needing
    /// reissue.
    ExpiredPending,
    /// The user could not be checked at this IdP connection (the error says why).
    CheckFailed,
    /// A registered passkey of an active key that the IdP's policy now blocks at sign-in
    /// (its AAGUID or passkey type; `blocked_by` names the passkey profile). Reported
    /// only: a policy can be changed back.
    WouldFailAtSignIn,
    /// The holder's UPN changed since the passkey was made (Entra cannot change the name
    /// stored in a passkey). Fix: the key is marked as needing reissue (reason
    /// `user_renamed`).
    UserRenamed,
    /// A registered passkey the IdP does not list, registered so recently that the
    /// directory may not show it yet (replication lag). Never repaired: the next
    /// reconciliation decides.
    NotListedYet,
}

impl DriftKind {
    /// The stable snake_case name (as in JSON).
    pub const fn as_str(self) -> &'static str {
        match self {
            DriftKind::MissingAtIdp => "missing_at_idp",
            DriftKind::StillAtIdp => "still_at_idp",
            DriftKind::Unknown => "unknown",
            DriftKind::ExpiredPending => "expired_pending",
            DriftKind::CheckFailed => "check_failed",
            DriftKind::WouldFailAtSignIn => "would_fail_at_sign_in",
            DriftKind::UserRenamed => "user_renamed",
            DriftKind::NotListedYet => "not_listed_yet",
        }
    }
}

/// One finding of a reconciliation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriftFinding {
    /// The user as asked for.
    pub user: String,
    /// The user's IdP object id, when resolved.
    pub user_id: Option<String>,
    /// The key concerned, if the repository knows one.
    pub key_id: Option<String>,
    /// The passkey template, if known.
    pub passkey_template: Option<String>,
    /// The IdP connection.
    pub idp_connection: String,
    /// The IdP's method id, if any.
    pub method_id: Option<String>,
    /// The credential id (base64url), if known.
    pub credential_id: Option<String>,
    /// What is wrong.
    pub kind: DriftKind,
    /// The drift was repaired.
    pub fixed: bool,
    /// Why the repair (or the check) failed, if it did.
    pub error: Option<String>,
    /// For [`DriftKind::WouldFailAtSignIn`]: why, and the passkey profile(s) that block
    /// the passkey.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked_by: Option<crate::idp::SignInBlocked>,
}

/// What a reconciliation found (owned, serializable).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReconcileReport {
    /// How many users were checked.
    pub users_checked: u64,
    /// One entry per finding, in user order.
    pub findings: Vec<DriftFinding>,
}

impl ReconcileReport {
    /// Nothing was found.
    pub fn is_clean(&self) -> bool {
        self.findings.is_empty()
    }
}

/// A passkey state (or key state) that must not be at the IdP any more.
fn retired_state(s: CredentialState) -> bool {
    matches!(
        s,
        CredentialState::Inactive
            | CredentialState::Revoked
            | CredentialState::Retired
            | CredentialState::Unregistered
    )
}

pub(super) fn matches(m: &IdpPasskey, pk: &PasskeyRecord) -> bool {
    match &m.credential_id {
        Some(_) => m.holds(&pk.credential_id),
        None => pk.idp_method_id.as_deref() == Some(m.method_id.as_str()),
    }
}

/// One IdP connection's view of one user.
pub(super) struct Held {
    /// The IdP connection.
    pub(super) connection: String,
    /// The user's object id there.
    pub(super) user_id: String,
    /// The user's UPN there, if it said.
    pub(super) upn: Option<String>,
    /// The passkeys it lists for the user.
    pub(super) methods: Vec<IdpPasskey>,
}

impl Engine {
    /// Compares the repository with every IdP for `users` (IdP object ids or UPNs) and
    /// reports (and with `options.fix`, repairs) the drift. IdP failures for one user are
    /// findings ([`DriftKind::CheckFailed`]), not errors; repository failures are errors.
    pub fn reconcile(
        &self,
        actor: &str,
        users: &[String],
        options: &ReconcileOptions,
        now: UnixMillis,
    ) -> Result<ReconcileReport, Error> {
        let mut report = ReconcileReport::default();
        for user in users {
            self.reconcile_user(actor, user, options, now, &mut report.findings)?;
            report.users_checked += 1;
        }
        Ok(report)
    }

    fn reconcile_user(
        &self,
        actor: &str,
        user: &str,
        options: &ReconcileOptions,
        now: UnixMillis,
        out: &mut Vec<DriftFinding>,
    ) -> Result<(), Error> {
        let finding = |kind: DriftKind, connection: &str| DriftFinding {
            user: user.to_owned(),
            user_id: None,
            key_id: None,
            passkey_template: None,
            idp_connection: connection.to_owned(),
            method_id: None,
            credential_id: None,
            kind,
            fixed: false,
            error: None,
            blocked_by: None,
        };
        // What every connection holds for the user.
        let (held, failed) = self.held_by(user);
        for (name, e) in failed {
            out.push(DriftFinding {
                error: Some(e),
                ..finding(DriftKind::CheckFailed, &name)
            });
        }
        let mut ids: Vec<String> = vec![user.to_owned()];
        for h in &held {
            if !ids.contains(&h.user_id) {
                ids.push(h.user_id.clone());
            }
        }
        let checked_all = held.len() == self.idps.len();
        // The user's keys and their passkeys.
        let mut keys: Vec<KeyRecord> = Vec::new();
        for id in &ids {
            for k in self.store.find_keys(&KeyQuery::ByUser(id.clone()))? {
                if !keys.iter().any(|x| x.key_id == k.key_id) {
                    keys.push(k);
                }
            }
        }
        let user_id = held.first().map(|h| h.user_id.clone());
        let mut passkeys: Vec<(KeyRecord, PasskeyRecord)> = Vec::new();
        for k in &keys {
            for pk in self.store.list_passkeys(&k.key_id)? {
                passkeys.push((k.clone(), pk));
            }
        }

        // 1. Registered passkeys of active keys that their IdP no longer holds. Only
        // when that connection answered (or, if the passkey's connection is unknown,
        // every connection did): a failed or missing listing proves nothing.
        for (k, pk) in &passkeys {
            let registered = pk.idp_method_id.is_some()
                && k.state == CredentialState::Active
                && pk.state == CredentialState::Active;
            if !registered {
                continue;
            }
            let connection = self.connection_of(k, &pk.passkey_template);
            let asked: Vec<&Held> = held
                .iter()
                .filter(|h| connection.is_empty() || h.connection == connection)
                .collect();
            let checked = if connection.is_empty() {
                checked_all && !held.is_empty()
            } else {
                !asked.is_empty()
            };
            if !checked
                || asked
                    .iter()
                    .any(|h| h.methods.iter().any(|m| matches(m, pk)))
            {
                continue;
            }
            // Listed again first: a listing may not show a fresh registration yet.
            let Some(kind) = self.confirm_missing(&asked, k, pk, now) else {
                continue;
            };
            let mut f = DriftFinding {
                user_id: user_id.clone(),
                key_id: Some(k.key_id.clone()),
                passkey_template: Some(pk.passkey_template.clone()),
                method_id: pk.idp_method_id.clone(),
                credential_id: Some(b64(&pk.credential_id)),
                ..finding(kind, &connection)
            };
            if options.fix && kind == DriftKind::MissingAtIdp {
                self.settle(&mut f, self.fix_missing(actor, k, pk, now));
            }
            out.push(f);
        }

        // 1b. Registered passkeys the IdP's policy now blocks at sign-in.
        self.sign_in_findings(user, &held, &passkeys, out);

        // 2 and 3. Passkeys at the IdP that should not be there, or that nobody issued.
        for h in &held {
            for m in &h.methods {
                let known = match passkeys.iter().find(|(_, pk)| matches(m, pk)) {
                    Some((k, pk)) => Some((k.clone(), pk.clone())),
                    None => match &m.credential_id {
                        Some(c) => self.owner_of(c)?,
                        None => None,
                    },
                };
                let base = DriftFinding {
                    user_id: Some(h.user_id.clone()),
                    method_id: Some(m.method_id.clone()),
                    credential_id: m.credential_id.as_deref().map(b64),
                    ..finding(DriftKind::Unknown, &h.connection)
                };
                match known {
                    Some((k, pk)) => {
                        if !(retired_state(k.state) || retired_state(pk.state)) {
                            continue;
                        }
                        let mut f = DriftFinding {
                            key_id: Some(k.key_id.clone()),
                            passkey_template: Some(pk.passkey_template.clone()),
                            kind: DriftKind::StillAtIdp,
                            ..base
                        };
                        if options.fix {
                            let target = if retired_state(pk.state) {
                                pk.state
                            } else {
                                k.state
                            };
                            let r = self.journalled_delete(
                                actor,
                                &k,
                                &pk.passkey_template,
                                h,
                                m,
                                target,
                                DriftKind::StillAtIdp,
                                now,
                            );
                            self.settle(&mut f, r);
                        }
                        out.push(f);
                    }
                    None => {
                        let mut f = base;
                        if options.fix && options.delete_unknown {
                            let r = self.foreign_key(h, now).and_then(|k| {
                                self.journalled_delete(
                                    actor,
                                    &k,
                                    "",
                                    h,
                                    m,
                                    CredentialState::Unregistered,
                                    DriftKind::Unknown,
                                    now,
                                )
                            });
                            self.settle(&mut f, r);
                        }
                        out.push(f);
                    }
                }
            }
        }

        // 4. Pending registrations whose challenge expired.
        for k in &keys {
            if k.needs_reissue {
                continue;
            }
            for p in self.store.pending_for_key(&k.key_id)? {
                if p.challenge_expires_ms >= now {
                    continue;
                }
                let mut f = DriftFinding {
                    user_id: user_id.clone(),
                    key_id: Some(k.key_id.clone()),
                    passkey_template: Some(p.passkey_template.clone()),
                    ..finding(
                        DriftKind::ExpiredPending,
                        &self.connection_of(k, &p.passkey_template),
                    )
                };
                if options.fix {
                    let detail = format!(
                        "reconcile: the registration challenge of passkey {} expired at {}",
                        p.passkey_template, p.challenge_expires_ms
                    );
                    self.settle(
                        &mut f,
                        self.mark_reissue(
                            actor,
                            &k.key_id,
                            None,
                            ReissueReason::ChallengeExpired,
                            detail,
                            now,
                        ),
                    );
                }
                out.push(f);
                // One mark per key is enough.
                break;
            }
        }

        // 5. What the listings say about the passkeys that are there: last use, renames.
        self.observe_passkeys(actor, user, &held, &passkeys, options, now, out)
    }

    fn settle(&self, f: &mut DriftFinding, r: Result<(), Error>) {
        match r {
            Ok(()) => f.fixed = true,
            Err(e) => f.error = Some(e.to_string()),
        }
    }

    /// The IdP connection of a key's passkey template ("" when the template is unknown).
    pub(super) fn connection_of(&self, key: &KeyRecord, passkey_template: &str) -> String {
        self.template_for(key)
            .ok()
            .and_then(|t| {
                t.passkey
                    .get(passkey_template)
                    .map(|p| p.idp.connection.clone())
            })
            .unwrap_or_default()
    }

    /// The key and passkey holding this credential anywhere in the repository.
    pub(super) fn owner_of(
        &self,
        credential_id: &[u8],
    ) -> Result<Option<(KeyRecord, PasskeyRecord)>, Error> {
        for pk in self.store.passkeys_by_credential(credential_id)? {
            if let Some(k) = self.store.get_key(&pk.key_id)? {
                return Ok(Some((k, pk)));
            }
        }
        Ok(None)
    }

    fn reconcile_audit(
        &self,
        actor: &str,
        key: &KeyRecord,
        outcome: &str,
        detail: String,
        now: UnixMillis,
    ) -> NewAuditRecord {
        NewAuditRecord {
            actor: actor.to_owned(),
            time_ms: now,
            action: "reconcile".into(),
            key_id: Some(key.key_id.clone()),
            user_id: key.user_id.clone(),
            template_id: key.template_id.clone(),
            outcome: outcome.to_owned(),
            idp_request_id: None,
            detail: Some(detail),
        }
    }

    /// Marks a key as needing reissue (re-read first: the version may have moved), with
    /// an optional passkey update, audited.
    fn mark_reissue(
        &self,
        actor: &str,
        key_id: &str,
        passkey: Option<PasskeyRecord>,
        reason: ReissueReason,
        detail: String,
        now: UnixMillis,
    ) -> Result<(), Error> {
        let key = self.key(key_id)?;
        let rec = self.reconcile_audit(actor, &key, "success", detail, now);
        self.mark_needs_reissue_for(&key, Some(reason), rec, passkey.into_iter().collect(), now)?;
        Ok(())
    }

    fn fix_missing(
        &self,
        actor: &str,
        key: &KeyRecord,
        pk: &PasskeyRecord,
        now: UnixMillis,
    ) -> Result<(), Error> {
        let mut gone = pk.clone();
        gone.idp_method_id = None;
        gone.state = CredentialState::Inactive;
        let detail = format!(
            "reconcile: passkey {} ({}) is gone at the IdP; the key needs reissue",
            pk.passkey_template,
            pk.idp_method_id.as_deref().unwrap_or("-")
        );
        self.mark_reissue(
            actor,
            &key.key_id,
            Some(gone),
            ReissueReason::MissingAtIdp,
            detail,
            now,
        )
    }

    /// The placeholder key that journal entries for passkeys nobody issued are recorded
    /// against (`foreign:<connection>:<user id>`, unregistered, no user).
    pub(super) fn foreign_key(&self, h: &Held, now: UnixMillis) -> Result<KeyRecord, Error> {
        let key_id = format!("foreign:{}:{}", h.connection, h.user_id);
        if let Some(k) = self.store.get_key(&key_id)? {
            return Ok(k);
        }
        let placeholder = KeyRecord {
            key_id: key_id.clone(),
            aaguid: [0; 16],
            serial: String::new(),
            state: CredentialState::Blank,
            user_id: None,
            template_id: None,
            needs_reissue: false,
            version: 1,
            created_ms: now,
            updated_ms: now,
            identity: None,
            serial_source: None,
        };
        let work = UnitOfWork {
            create_keys: vec![NewKey {
                key_id: key_id.clone(),
                aaguid: [0; 16],
                serial: String::new(),
            }],
            transition: Some(Transition::new(&placeholder, CredentialState::Unregistered)),
            ..UnitOfWork::default()
        };
        match self.store.commit(work, now) {
            Ok(_) | Err(StoreError::Duplicate { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        self.key(&key_id)
    }

    /// Deletes a passkey at the IdP through the journal (an unfinished entry for the same
    /// method is reused), then audits the repair.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn journalled_delete(
        &self,
        actor: &str,
        key: &KeyRecord,
        passkey_template: &str,
        h: &Held,
        m: &IdpPasskey,
        target: CredentialState,
        kind: DriftKind,
        now: UnixMillis,
    ) -> Result<(), Error> {
        let idp: &dyn Idp = self.idp(&h.connection)?.as_ref();
        let _live = self.live.hold(&key.key_id);
        let mut existing = None;
        for e in self.store.journal_unfinished()? {
            if e.operation != JournalOp::Delete || e.idp != h.connection {
                continue;
            }
            if let Ok(p) = DeletePayload::from_bytes(e.id, &e.payload) {
                if p.method_id == m.method_id {
                    existing = Some(e);
                    break;
                }
            }
        }
        let entry = match existing {
            Some(e) => e,
            None => {
                let payload = DeletePayload {
                    user: h.user_id.clone(),
                    passkey_template: passkey_template.to_owned(),
                    method_id: m.method_id.clone(),
                    credential_id: m.credential_id.as_deref().map(b64).unwrap_or_default(),
                    target: Some(target.as_str().to_owned()),
                    keep_key_state: true,
                };
                self.store.journal_append(
                    &NewJournalEntry {
                        key_id: key.key_id.clone(),
                        idp: h.connection.clone(),
                        operation: JournalOp::Delete,
                        payload: payload.to_bytes(),
                    },
                    now,
                )?
            }
        };
        self.maybe_crash(super::CrashPoint::AfterJournal)?;
        // The claim checks the row's MAC: act on the claimed row only.
        let (entry, fence) = self.claim(entry.id, now)?;
        if let Err(e) = self.replay_delete(&entry, idp, &fence, now) {
            if let Error::Idp(ie) = &e {
                self.close_failed_if_final(entry.id, ie, &fence, now)?;
            }
            let detail = format!(
                "reconcile: deleting {} passkey {} at {} failed: {e}",
                kind.as_str(),
                m.method_id,
                h.connection
            );
            self.store
                .append_audit(&self.reconcile_audit(actor, key, "failure", detail, now))?;
            return Err(e);
        }
        let detail = format!(
            "reconcile: {} passkey {} deleted at {} (journal {})",
            kind.as_str(),
            m.method_id,
            h.connection,
            entry.id
        );
        self.store
            .append_audit(&self.reconcile_audit(actor, key, "success", detail, now))?;
        Ok(())
    }
}
