//! Calls a card-management system needs beyond register/list/delete (issue 13 items
//! 9–14): every authentication method of a user, signing a user out, Temporary Access
//! Passes, the users delta and user lookups.

use super::{encode_segment, GraphClient};
use crate::wire::AuthenticationMethod;
use crate::GraphError;

/// The least-privileged application permission that lists every authentication method.
pub const PERMISSION_METHODS_READ: &str = "UserAuthenticationMethod.Read.All";
/// The least-privileged application permission that signs a user out everywhere.
pub const PERMISSION_REVOKE_SESSIONS: &str = "User.RevokeSessions.All";

impl GraphClient {
    /// Every authentication method of a user (`GET /users/{id}/authentication/methods`:
    /// password, passkeys, Windows Hello, Authenticator, phone, TAP, ...). Needs
    /// `UserAuthenticationMethod.Read.All`; the passkey-only permission does not cover it.
    pub fn authentication_methods(
        &self,
        user: &str,
    ) -> Result<Vec<AuthenticationMethod>, GraphError> {
        self.get_all(
            format!(
                "{}/users/{}/authentication/methods",
                self.root(),
                encode_segment(user)
            ),
            "authenticationMethods page",
        )
    }

    /// How many phishing-resistant methods
    /// ([`crate::wire::PHISHING_RESISTANT_TYPES`]) the user keeps once the method
    /// `removing` (a fido2 method id) is gone: 0 means revoking it leaves the user none.
    pub fn phishing_resistant_left(&self, user: &str, removing: &str) -> Result<usize, GraphError> {
        Ok(self
            .authentication_methods(user)?
            .iter()
            .filter(|m| m.is_phishing_resistant() && m.id != removing)
            .count())
    }

    /// Invalidates the user's refresh tokens and session cookies
    /// (`POST /users/{id}/revokeSignInSessions`), e.g. after a lost or stolen key's
    /// passkey is deleted. Idempotent, so retried like a read. Needs
    /// `User.RevokeSessions.All` (or `User.ReadWrite.All` / `Directory.ReadWrite.All`).
    pub fn revoke_sign_in_sessions(&self, user: &str) -> Result<(), GraphError> {
        let url = format!(
            "{}/users/{}/revokeSignInSessions",
            self.root(),
            encode_segment(user)
        );
        let _: serde_json::Value = self.post_json(
            &url,
            &serde_json::json!({}),
            true,
            "revokeSignInSessions result",
        )?;
        Ok(())
    }
}

/// A user property HR-driven issuance looks users up by (`$filter=… eq '…'`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserKey {
    /// `userPrincipalName`.
    UserPrincipalName,
    /// `employeeId` (the HR employee number).
    EmployeeId,
    /// `onPremisesImmutableId` (the synced on-premises `objectGUID`).
    OnPremisesImmutableId,
}

impl UserKey {
    /// The Graph property name.
    pub fn property(self) -> &'static str {
        match self {
            UserKey::UserPrincipalName => "userPrincipalName",
            UserKey::EmployeeId => "employeeId",
            UserKey::OnPremisesImmutableId => "onPremisesImmutableId",
        }
    }
}

/// The properties user lookups select.
const USER_SELECT: &str =
    "id,displayName,userPrincipalName,mail,givenName,surname,accountEnabled,employeeId,onPremisesImmutableId";

fn lookup_path(key: UserKey, value: &str) -> String {
    let filter = format!("{} eq '{}'", key.property(), value.replace('\'', "''"));
    format!(
        "/users?$filter={}&$select={USER_SELECT}",
        encode_segment(&filter)
    )
}

impl GraphClient {
    /// The user whose `key` property equals `value` (`GET /users?$filter=… eq '…'`);
    /// `None` when there is none. More than one match is an error
    /// ([`GraphError::InvalidInput`]): an HR id must name one person.
    pub fn find_user(
        &self,
        key: UserKey,
        value: &str,
    ) -> Result<Option<crate::wire::User>, GraphError> {
        let url = format!("{}{}", self.root(), lookup_path(key, value));
        let page: crate::wire::Page<crate::wire::User> = self.get_json(&url, "users page")?;
        one_user(key, page.value)
    }

    /// [`GraphClient::find_user`] for many values (a CSV of employee ids), through
    /// `$batch`, 20 lookups per request; one result per value, in order.
    pub fn find_users(
        &self,
        key: UserKey,
        values: &[String],
    ) -> Vec<Result<Option<crate::wire::User>, GraphError>> {
        let reqs = values
            .iter()
            .map(|v| (reqwest::Method::GET, lookup_path(key, v)))
            .collect();
        self.batch(reqs)
            .into_iter()
            .map(|r| {
                let o = r?;
                let page: crate::wire::Page<crate::wire::User> =
                    crate::wire::parse_json(&o.body, "users page")?;
                one_user(key, page.value)
            })
            .collect()
    }
}

fn one_user(
    key: UserKey,
    mut users: Vec<crate::wire::User>,
) -> Result<Option<crate::wire::User>, GraphError> {
    match users.len() {
        0 => Ok(None),
        1 => Ok(users.pop()),
        n => Err(GraphError::InvalidInput {
            field: key.property(),
            reason: format!("{n} users have this value; it must name one"),
        }),
    }
}

/// Shortest Temporary Access Pass lifetime Entra accepts, in minutes.
pub const TAP_MIN_MINUTES: u32 = 10;
/// Longest Temporary Access Pass lifetime Entra accepts (30 days), in minutes.
pub const TAP_MAX_MINUTES: u32 = 43_200;

impl GraphClient {
    fn taps_url(&self, user: &str) -> String {
        format!(
            "{}/users/{}/authentication/temporaryAccessPassMethods",
            self.root(),
            encode_segment(user)
        )
    }

    /// Creates a Temporary Access Pass for bootstrap or lost-key recovery
    /// (`POST /users/{id}/authentication/temporaryAccessPassMethods`), usable for
    /// `lifetime_minutes` ([`TAP_MIN_MINUTES`]–[`TAP_MAX_MINUTES`]) and, when
    /// `usable_once`, for one sign-in. The pass is in the answer (a [`crate::auth::Secret`]);
    /// Graph never shows it again. A user holds at most one: delete the old one first.
    /// Not retried after an unknown outcome (a second pass would be refused). Needs
    /// `UserAuthenticationMethod.ReadWrite.All`.
    pub fn create_temporary_access_pass(
        &self,
        user: &str,
        lifetime_minutes: u32,
        usable_once: bool,
    ) -> Result<crate::wire::TemporaryAccessPass, GraphError> {
        if !(TAP_MIN_MINUTES..=TAP_MAX_MINUTES).contains(&lifetime_minutes) {
            return Err(GraphError::InvalidInput {
                field: "lifetimeInMinutes",
                reason: format!(
                    "{lifetime_minutes} is outside {TAP_MIN_MINUTES}–{TAP_MAX_MINUTES} minutes"
                ),
            });
        }
        self.post_json(
            &self.taps_url(user),
            &serde_json::json!({
                "lifetimeInMinutes": lifetime_minutes,
                "isUsableOnce": usable_once,
            }),
            false,
            "temporaryAccessPassAuthenticationMethod",
        )
    }

    /// The user's Temporary Access Passes (without the pass values).
    pub fn list_temporary_access_passes(
        &self,
        user: &str,
    ) -> Result<Vec<crate::wire::TemporaryAccessPass>, GraphError> {
        self.get_all(self.taps_url(user), "temporaryAccessPassMethods page")
    }

    /// Deletes a Temporary Access Pass (204; 404 when it is gone).
    pub fn delete_temporary_access_pass(&self, user: &str, id: &str) -> Result<(), GraphError> {
        let url = format!("{}/{}", self.taps_url(user), encode_segment(id));
        let core = self.core.clone();
        self.block(async move {
            core.request(reqwest::Method::DELETE, &url, None, true)
                .await
        })??;
        Ok(())
    }
}

/// What one round of `users/delta` reported.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UsersDelta {
    /// Users created or changed since the last round (with `accountEnabled`).
    pub changed: Vec<crate::wire::User>,
    /// Object ids of users deleted since the last round (`@removed`).
    pub removed: Vec<String>,
    /// Where the next round starts (store it; it resumes the feed).
    pub delta_link: String,
}

impl UsersDelta {
    /// Object ids of the users who left: deleted, or whose account is disabled.
    pub fn leavers(&self) -> Vec<String> {
        let mut out = self.removed.clone();
        out.extend(
            self.changed
                .iter()
                .filter(|u| u.account_enabled == Some(false))
                .map(|u| u.id.clone()),
        );
        out
    }
}

impl GraphClient {
    /// One round of the users change feed (`GET /users/delta`, pages followed): from the
    /// start when `delta_link` is `None` (every user), else the changes since the round
    /// that returned it. Needs `User.Read.All`.
    pub fn users_delta(&self, delta_link: Option<&str>) -> Result<UsersDelta, GraphError> {
        let mut url = match delta_link {
            Some(l) => l.to_owned(),
            None => format!(
                "{}/users/delta?$select=id,userPrincipalName,displayName,accountEnabled",
                self.root()
            ),
        };
        let mut out = UsersDelta::default();
        for _ in 0..super::MAX_PAGES {
            let page: crate::wire::UsersDeltaPage = self.get_json(&url, "users delta page")?;
            for v in page.value {
                if v.get("@removed").is_some() {
                    if let Some(id) = v.get("id").and_then(|i| i.as_str()) {
                        out.removed.push(id.to_owned());
                    }
                } else {
                    out.changed.push(serde_json::from_value(v).map_err(|e| {
                        crate::wire::WireError::Shape {
                            shape: "users delta entry",
                            reason: e.to_string(),
                        }
                    })?);
                }
            }
            match (page.next_link, page.delta_link) {
                (Some(next), _) => url = next,
                (None, Some(delta)) => {
                    out.delta_link = delta;
                    return Ok(out);
                }
                (None, None) => {
                    return Err(crate::wire::WireError::Shape {
                        shape: "users delta page",
                        reason: "neither @odata.nextLink nor @odata.deltaLink".into(),
                    }
                    .into())
                }
            }
        }
        Err(GraphError::InvalidInput {
            field: "@odata.nextLink",
            reason: format!("more than {} pages", super::MAX_PAGES),
        })
    }
}
