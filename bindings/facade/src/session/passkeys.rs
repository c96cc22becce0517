//! Every passkey a user holds, keys needing reissue (with why), keys not used for a while,
//! and the SMS/voice retirement readiness report (issue 19 items 4–6, issue 13 item 12).

use serde::Serialize;

use lifecycle::model::CredentialState;
use lifecycle::store::KeyQuery;

use super::Session;
use crate::{now_ms, FacadeError, Key, Result};

/// One passkey an IdP connection lists for a user ([`Session::user_passkeys`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UserPasskey {
    /// The IdP connection.
    pub connection: String,
    /// The IdP's method id.
    pub method_id: String,
    /// Its display name.
    pub display_name: Option<String>,
    /// The authenticator's AAGUID, as the IdP reports it.
    pub aaguid: Option<String>,
    /// The model, as the IdP reports it.
    pub model: Option<String>,
    /// `deviceBound` or `synced` (Entra v1.0 only).
    pub passkey_type: Option<String>,
    /// `security_key`, `microsoft_authenticator`, `windows_hello`, `synced_provider` or
    /// `unknown` (from the AAGUID and the passkey type).
    pub kind: String,
    /// When it was registered (ISO 8601), if said.
    pub created: Option<String>,
    /// When it last signed in (ISO 8601; Entra beta only), if said.
    pub last_used: Option<String>,
    /// The key keysmith issued that holds it (`None`: keysmith did not issue it).
    pub key_id: Option<String>,
    /// That key's passkey template.
    pub passkey_template: Option<String>,
    /// That key's state.
    pub key_state: Option<String>,
}

/// A connection that could not be asked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ConnectionFailure {
    /// The IdP connection.
    pub connection: String,
    /// Why.
    pub error: String,
}

/// A user whose methods could not be read (readiness report).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UserFailure {
    /// The user's object id.
    pub user_id: String,
    /// Why.
    pub error: String,
}

/// Every passkey a user holds, beside the keys keysmith issued them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UserPasskeys {
    /// The user as asked for.
    pub user: String,
    /// The user's object id (first connection that resolved them).
    pub user_id: Option<String>,
    /// The user's UPN there.
    pub upn: Option<String>,
    /// Every passkey, connection by connection.
    pub passkeys: Vec<UserPasskey>,
    /// The keys keysmith issued the user (any state).
    pub keys: Vec<Key>,
    /// Connections that could not be asked.
    pub failed: Vec<ConnectionFailure>,
}

/// A key marked as needing reissue, and why ([`Session::keys_needing_reissue`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReissueEntry {
    /// The key.
    #[serde(flatten)]
    pub key: Key,
    /// `user_renamed`, `missing_at_idp`, `challenge_expired`, or `None` when the mark
    /// did not say (a failed activation, a refused registration, marks older than
    /// schema 11).
    pub reason: Option<String>,
}

/// An active key not used for a while ([`Session::stale_keys`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StaleEntry {
    /// The key.
    #[serde(flatten)]
    pub key: Key,
    /// The latest sign-in of its passkeys as last read from the IdP (Unix ms); `None`:
    /// none reported (never used, or an IdP connection that does not say: Entra v1.0).
    pub last_used_ms: Option<u64>,
    /// When its oldest registered passkey was made (Unix ms).
    pub made_ms: u64,
}

/// One user of the readiness report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReadinessUser {
    /// The IdP's object id (the `user` of a bulk issue row).
    pub id: String,
    /// UPN.
    pub upn: Option<String>,
    /// Display name.
    pub display_name: Option<String>,
    /// The user's sign-in method types (`password`, `phone`, `fido2`, ...).
    pub methods: Vec<String>,
}

/// The SMS/voice retirement readiness report ([`Session::sms_readiness`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReadinessReport {
    /// The IdP connection asked.
    pub connection: String,
    /// The group asked for (`None`: the whole directory).
    pub group: Option<String>,
    /// Users checked (guests not included).
    pub checked: usize,
    /// Users with no phishing-resistant method (no FIDO2 passkey, Windows Hello for
    /// Business, platform credential or certificate-based method).
    pub not_ready: Vec<ReadinessUser>,
    /// Guests and B2B users, refused up front.
    pub guests: Vec<ReadinessUser>,
    /// Why guests are refused (the IdP's own limitation).
    pub guest_reason: String,
    /// Users whose methods could not be read.
    pub failed: Vec<UserFailure>,
    /// `not_ready` as bulk issue CSV: `user,serial` (the user by UPN), serials left
    /// empty for the operator to fill in.
    pub issue_csv: String,
}

fn readiness_user(u: lifecycle::idp::ReadinessUser) -> ReadinessUser {
    ReadinessUser {
        id: u.id,
        upn: u.upn,
        display_name: u.display_name,
        methods: u.methods,
    }
}

impl Session {
    /// Every passkey `user` (object id or UPN) holds at every IdP connection, with its
    /// kind and, for those keysmith issued, the key; and the keys keysmith issued them. A
    /// connection that cannot be asked is listed in `failed`.
    pub fn user_passkeys(&self, user: &str) -> Result<UserPasskeys> {
        if user.trim().is_empty() {
            return Err(FacadeError::usage("user: empty"));
        }
        let up = self.inner.engine.user_passkeys(user)?;
        Ok(UserPasskeys {
            user: up.user,
            user_id: up.user_id,
            upn: up.upn,
            passkeys: up
                .passkeys
                .into_iter()
                .map(|p| UserPasskey {
                    connection: p.connection,
                    method_id: p.method_id,
                    display_name: p.display_name,
                    aaguid: p.aaguid,
                    model: p.model,
                    passkey_type: p.passkey_type,
                    kind: p.kind.as_str().to_owned(),
                    created: p.created,
                    last_used: p.last_used,
                    key_id: p.issued_by.as_ref().map(|i| i.key_id.clone()),
                    passkey_template: p.issued_by.as_ref().map(|i| i.passkey_template.clone()),
                    key_state: p.issued_by.map(|i| i.key_state),
                })
                .collect(),
            keys: up.keys.into_iter().map(Key::from).collect(),
            failed: up
                .failed
                .into_iter()
                .map(|(connection, error)| ConnectionFailure { connection, error })
                .collect(),
        })
    }

    /// Keys marked as needing reissue, by key id, each with why (reconciliation marks a
    /// key `user_renamed` when its holder's UPN changed since issuance).
    pub fn keys_needing_reissue(&self) -> Result<Vec<ReissueEntry>> {
        let e = &self.inner.engine;
        let mut out = Vec::new();
        for st in CredentialState::ALL {
            for k in e.find_keys(&KeyQuery::ByState(st))? {
                if !k.needs_reissue {
                    continue;
                }
                let reason = e.reissue_reason(&k.key_id)?.map(|r| r.as_str().to_owned());
                out.push(ReissueEntry {
                    key: Key::from(k),
                    reason,
                });
            }
        }
        out.sort_by(|a, b| a.key.key_id.cmp(&b.key.key_id));
        Ok(out)
    }

    /// Active keys none of whose passkeys signed in during the last `days` days (1 to
    /// 36 500), as last read by reconciliation (Entra: beta `lastUsedDateTime`); a key
    /// never seen used counts from when its passkey was made. By key id.
    pub fn stale_keys(&self, days: u32) -> Result<Vec<StaleEntry>> {
        if !(1..=36_500).contains(&days) {
            return Err(FacadeError::usage(format!(
                "stale days: {days} is outside 1 to 36500"
            )));
        }
        let e = &self.inner.engine;
        let before = now_ms().saturating_sub(u64::from(days) * 86_400_000);
        let mut out = Vec::new();
        for u in e.unused_keys(before)? {
            out.push(StaleEntry {
                key: Key::from(e.key(&u.key_id)?),
                last_used_ms: u.last_used_ms,
                made_ms: u.made_ms,
            });
        }
        Ok(out)
    }

    /// The SMS/voice retirement readiness of the users of `group` (an object id; `None`:
    /// the whole directory, paged) at IdP `connection` (`None`: the first configured):
    /// who has no phishing-resistant method, as rows and as bulk issue CSV; guests and
    /// B2B users set apart with the IdP's reason.
    pub fn sms_readiness(
        &self,
        connection: Option<&str>,
        group: Option<&str>,
    ) -> Result<ReadinessReport> {
        let name = match connection {
            Some(c) => c.to_owned(),
            None => self
                .inner
                .connections
                .first()
                .cloned()
                .ok_or_else(|| FacadeError::usage("the config names no IdP connection"))?,
        };
        let idp = self.inner.engine.idp(&name)?;
        let r = idp
            .sms_readiness(group)
            .map_err(lifecycle::Error::from)?
            .ok_or_else(|| {
                FacadeError::usage(format!("connection {name:?} has no readiness report"))
            })?;
        let issue_csv = r.issue_csv();
        Ok(ReadinessReport {
            connection: r.connection,
            group: r.group,
            checked: r.checked,
            not_ready: r.not_ready.into_iter().map(readiness_user).collect(),
            guests: r.guests.into_iter().map(readiness_user).collect(),
            guest_reason: r.guest_reason,
            failed: r
                .failed
                .into_iter()
                .map(|(user_id, error)| UserFailure { user_id, error })
                .collect(),
            issue_csv,
        })
    }
}
