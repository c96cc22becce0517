//! Directory reads and the policy pre-flight: users, group membership (transitive, by
//! `checkMemberGroups`), and what a step needs when the app lacks a permission.

use reqwest::Method;

use super::{encode_segment, GraphClient};
use crate::policy::{
    check_key_any_profile, preflight, target_group_ids, PreflightError, PreflightReport,
    SkippedCheck, UserScope, ALL_USERS,
};
use crate::wire::{parse_json, DirectoryObject, Fido2Policy, MethodState, Page, User};
use crate::GraphError;

/// Most group ids one `checkMemberGroups` call takes (Graph's limit).
pub const CHECK_MEMBER_GROUPS_MAX: usize = 20;

/// The least-privileged application permission that reads the FIDO2 method policy.
pub const PERMISSION_POLICY_READ: &str = "Policy.Read.AuthenticationMethod";
/// The least-privileged application permission that reads users.
pub const PERMISSION_USER_READ: &str = "User.Read.All";
/// The permission `checkMemberGroups` needs besides [`PERMISSION_USER_READ`].
pub const PERMISSION_GROUP_MEMBER_READ: &str = "GroupMember.Read.All";

impl GraphClient {
    /// POSTs a JSON body and parses the answer (`idempotent`: safe to resend).
    pub(super) fn post_json<T: serde::de::DeserializeOwned>(
        &self,
        url: &str,
        body: &serde_json::Value,
        idempotent: bool,
        shape: &'static str,
    ) -> Result<T, GraphError> {
        let bytes = serde_json::to_vec(body).map_err(|e| GraphError::InvalidInput {
            field: shape,
            reason: e.to_string(),
        })?;
        let core = self.core.clone();
        let reply = self.block(async move {
            core.request(Method::POST, url, Some(&bytes), idempotent)
                .await
        })??;
        if reply.body.is_empty() {
            return Ok(parse_json(b"null", shape)?);
        }
        Ok(parse_json(&reply.body, shape)?)
    }

    /// Fetches the policy and runs the pre-flight for registering a key with `aaguid`
    /// (`attested`: the key's attestation passes the tenant's checks, i.e. it is in the
    /// FIDO MDS) for `user` (object id or UPN): method enabled, the user in the policy's
    /// include targets and not in its exclude targets, self-service registration
    /// allowed, and the key acceptable to a passkey profile that applies to the user
    /// ([`crate::policy::applicable_profiles`]).
    ///
    /// The policy is read once per [`crate::POLICY_TTL`] (and again after a refusal that
    /// may come from it, see [`GraphClient::register`]); the user is read unless it was
    /// read within [`crate::USER_TTL`].
    ///
    /// A step the app lacks the permission for is skipped, not failed: see
    /// [`GraphClient::preflight_report`]; each skipped step is logged as a warning that
    /// names the permission it needs.
    pub fn preflight(&self, user: &str, aaguid: &str, attested: bool) -> Result<(), GraphError> {
        let report = self.preflight_report(user, aaguid, attested)?;
        for s in &report.skipped {
            tracing::warn!(
                step = s.step,
                permission = s.permission,
                "pre-flight step skipped: the app lacks the permission it needs"
            );
        }
        Ok(())
    }

    /// [`GraphClient::preflight`], returning which steps were skipped because the app
    /// lacks a permission (a 403 to that step's read). A passkey-only app
    /// (`UserAuthMethod-Passkey.ReadWrite.All`) gets a report naming
    /// [`PERMISSION_POLICY_READ`]; without the policy nothing else can be judged. With
    /// the policy but without [`PERMISSION_USER_READ`] or
    /// [`PERMISSION_GROUP_MEMBER_READ`], the targets are not checked and the key must be
    /// acceptable to some passkey profile. A policy whose only target is `all_users`
    /// needs neither.
    pub fn preflight_report(
        &self,
        user: &str,
        aaguid: &str,
        attested: bool,
    ) -> Result<PreflightReport, GraphError> {
        let mut report = PreflightReport::default();
        let read = || {
            let _one = self.cache.policy_read();
            self.cache.policy().map_or_else(
                || self.fido2_policy().inspect(|p| self.cache.put_policy(p)),
                Ok,
            )
        };
        let policy = match self.cache.policy().map_or_else(read, Ok) {
            Ok(p) => p,
            Err(e) if e.status() == Some(403) => {
                report.skipped.push(SkippedCheck {
                    step: "FIDO2 method policy",
                    permission: PERMISSION_POLICY_READ,
                });
                return Ok(report);
            }
            Err(e) => return Err(e),
        };
        if policy.state != MethodState::Enabled {
            return Err(PreflightError::MethodDisabled.into());
        }
        match self.scope_for_preflight(user, &policy, &mut report)? {
            Some(scope) => preflight(&policy, &scope, aaguid, attested)?,
            None => {
                if policy.is_self_service_registration_allowed != Some(true) {
                    return Err(PreflightError::SelfServiceRegistrationNotAllowed.into());
                }
                check_key_any_profile(&policy, aaguid, attested)?;
            }
        }
        Ok(report)
    }

    /// The scope the pre-flight needs; `None` (and the missing permission in `report`)
    /// when a read it needs is refused with 403. A policy whose only target is
    /// `all_users` needs no group read, and no user read either (a refused one is not
    /// reported).
    fn scope_for_preflight(
        &self,
        user: &str,
        policy: &Fido2Policy,
        report: &mut PreflightReport,
    ) -> Result<Option<UserScope>, GraphError> {
        let only_all_users = policy
            .include_targets
            .iter()
            .chain(&policy.exclude_targets)
            .all(|t| t.id == ALL_USERS);
        let u = match self.cache.user(user).map_or_else(|| self.user(user), Ok) {
            Ok(u) => u,
            // The user read only resolves the id targets name; `all_users` needs none.
            Err(e) if e.status() == Some(403) && only_all_users => {
                return Ok(Some(UserScope::new(user, Vec::new())));
            }
            Err(e) if e.status() == Some(403) => {
                report.skipped.push(SkippedCheck {
                    step: "policy targets (user lookup)",
                    permission: PERMISSION_USER_READ,
                });
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        match self.member_groups(&u.id, &target_group_ids(policy)) {
            Ok(groups) => Ok(Some(UserScope::new(u.id, groups))),
            Err(e) if e.status() == Some(403) => {
                report.skipped.push(SkippedCheck {
                    step: "policy targets (group membership)",
                    permission: PERMISSION_GROUP_MEMBER_READ,
                });
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// The user's object id and those of the policy's target groups it is a member of,
    /// directly or through nested groups at any depth (`checkMemberGroups`, transitive).
    /// A target group that no longer exists counts as one the user is not in.
    pub fn user_scope(&self, user: &str, policy: &Fido2Policy) -> Result<UserScope, GraphError> {
        let u = self.user(user)?;
        let groups = self.member_groups(&u.id, &target_group_ids(policy))?;
        Ok(UserScope::new(u.id, groups))
    }

    /// Which of `group_ids` the user (object id) is a member of, directly or
    /// transitively: `POST /users/{id}/checkMemberGroups`, at most
    /// [`CHECK_MEMBER_GROUPS_MAX`] ids per call (one call per 20 groups, whatever their
    /// size). Needs `User.Read.All` and `GroupMember.Read.All` (or `Directory.Read.All`).
    pub fn member_groups(
        &self,
        user_id: &str,
        group_ids: &[String],
    ) -> Result<Vec<String>, GraphError> {
        let url = format!(
            "{}/users/{}/checkMemberGroups",
            self.root(),
            encode_segment(user_id)
        );
        let mut out = Vec::new();
        for chunk in group_ids.chunks(CHECK_MEMBER_GROUPS_MAX) {
            // A read: safe to resend.
            let page: Page<String> = self.post_json(
                &url,
                &serde_json::json!({ "groupIds": chunk }),
                true,
                "checkMemberGroups result",
            )?;
            out.extend(page.value);
        }
        Ok(out)
    }

    /// Every group the user is a member of, directly or transitively
    /// (`GET /users/{id}/transitiveMemberOf`, paged).
    pub fn transitive_member_of(&self, user: &str) -> Result<Vec<DirectoryObject>, GraphError> {
        self.get_all(
            format!(
                "{}/users/{}/transitiveMemberOf",
                self.root(),
                encode_segment(user)
            ),
            "directoryObjects page",
        )
    }

    /// A user by object id or UPN. Outside a bulk job it is always read from Graph;
    /// during one ([`GraphClient::begin_job`]) a user read within [`crate::USER_TTL`] is
    /// reused, and a user the job announced ([`GraphClient::expect_users`]) is read with
    /// the next announced ones in one request (see `client/prefetch.rs`). The answer is
    /// kept for the pre-flight's own look-up of the same user (by id or UPN), so issuing
    /// a key reads the user once.
    pub fn user(&self, id_or_upn: &str) -> Result<User, GraphError> {
        if let Some(u) = self.user_ahead(id_or_upn) {
            return Ok(u);
        }
        let u: User = self.get_json(
            &format!(
                "{}/users/{}?$select={}",
                self.root(),
                encode_segment(id_or_upn),
                super::prefetch::USER_SELECT
            ),
            "user",
        )?;
        self.cache.put_user(id_or_upn, &u);
        Ok(u)
    }

    /// Users whose display name or UPN starts with `prefix` (for an operator picking a
    /// user), at most `top` of them.
    pub fn search_users(&self, prefix: &str, top: u32) -> Result<Vec<User>, GraphError> {
        let q = prefix.replace('\'', "''");
        let filter =
            format!("startswith(displayName,'{q}') or startswith(userPrincipalName,'{q}')");
        let url = format!(
            "{}/users?$filter={}&$top={}&$select=id,displayName,userPrincipalName,mail",
            self.root(),
            encode_segment(&filter),
            top.clamp(1, 999)
        );
        let page: Page<User> = self.get_json(&url, "users page")?;
        Ok(page.value)
    }

    /// All members of a group (paged).
    pub fn group_members(&self, group_id: &str) -> Result<Vec<DirectoryObject>, GraphError> {
        self.get_all(
            format!(
                "{}/groups/{}/members",
                self.root(),
                encode_segment(group_id)
            ),
            "directoryObjects page",
        )
    }
}
