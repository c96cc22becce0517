//! The emulated tenant: users, groups, policy, registered passkeys, issued challenges,
//! tokens; plus the fixture file format.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::wire::{
    AttestationEnforcement, EnforcementType, Fido2Method, Fido2Policy, KeyRestrictions,
    MethodState, PasskeyProfile, PolicyTarget, User,
};

/// A group in the fixture file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupFixture {
    /// Object id.
    pub id: String,
    /// Display name.
    pub display_name: String,
    /// Member ids: users, or other groups of the fixture (nested groups).
    #[serde(default)]
    pub members: Vec<String>,
}

/// The tenant a fixture file describes (`--fixtures FILE`, JSON).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantFixture {
    /// Tenant id (GUID).
    pub tenant_id: String,
    /// Users.
    #[serde(default)]
    pub users: Vec<User>,
    /// Groups.
    #[serde(default)]
    pub groups: Vec<GroupFixture>,
    /// FIDO2 policy; a fresh tenant's when absent.
    #[serde(default)]
    pub policy: Option<Fido2Policy>,
}

/// Id of the default passkey profile in [`fresh_policy`].
pub const DEFAULT_PASSKEY_PROFILE_ID: &str = "00000000-0000-0000-0000-000000000001";

/// A fresh tenant's FIDO2 policy as every tenant has it since the 2026 migration to
/// passkey profiles (MC1221452): enabled for all users, self-service registration
/// allowed, a default passkey profile (device-bound and synced passkeys, attestation
/// not enforced, no key restrictions) named by `defaultPasskeyProfile`, and the
/// deprecated top-level fields still present. See [`legacy_policy`] for the shape
/// before the migration.
pub fn fresh_policy() -> Fido2Policy {
    let mut p = legacy_policy();
    p.passkey_profiles = vec![PasskeyProfile {
        id: DEFAULT_PASSKEY_PROFILE_ID.into(),
        name: Some("Default passkey profile".into()),
        passkey_types: Some("deviceBound,synced".into()),
        attestation_enforcement: Some(AttestationEnforcement::Disabled),
        key_restrictions: Some(KeyRestrictions {
            is_enforced: false,
            enforcement_type: Some(EnforcementType::Block),
            aa_guids: vec![],
        }),
    }];
    p.default_passkey_profile = Some(DEFAULT_PASSKEY_PROFILE_ID.into());
    p
}

/// A tenant's FIDO2 policy before passkey profiles: enabled for all users, self-service
/// registration allowed, attestation not enforced, no key restrictions.
pub fn legacy_policy() -> Fido2Policy {
    Fido2Policy {
        context: None,
        odata_type: Some("#microsoft.graph.fido2AuthenticationMethodConfiguration".into()),
        id: "Fido2".into(),
        state: MethodState::Enabled,
        is_self_service_registration_allowed: Some(true),
        is_attestation_enforced: Some(false),
        key_restrictions: Some(KeyRestrictions {
            is_enforced: false,
            enforcement_type: Some(EnforcementType::Block),
            aa_guids: vec![],
        }),
        include_targets: vec![PolicyTarget {
            target_type: "group".into(),
            id: "all_users".into(),
            is_registration_required: Some(false),
            allowed_passkey_profiles: vec![],
        }],
        exclude_targets: vec![],
        passkey_profiles: vec![],
        default_passkey_profile: None,
    }
}

fn user(id: &str, given: &str, surname: &str, upn: &str) -> User {
    User {
        id: id.into(),
        display_name: Some(format!("{given} {surname}")),
        user_principal_name: Some(upn.into()),
        mail: Some(upn.into()),
        given_name: Some(given.into()),
        surname: Some(surname.into()),
        account_enabled: Some(true),
        employee_id: Some(format!("E{}", &id[..6])),
        on_premises_immutable_id: None,
        user_type: Some("Member".into()),
    }
}

impl TenantFixture {
    /// The built-in default: a few users and a group in a fresh tenant.
    pub fn fresh() -> Self {
        let users = vec![
            user(
                "6e8a5a4e-5a0d-4e4c-9c8e-2f7c3d8a1b11",
                "Kim",
                "Akers",
                "kim@contoso.onmicrosoft.com",
            ),
            user(
                "87d349ed-44d7-43e1-9a83-5f2406dee5bd",
                "Adele",
                "Vance",
                "adelev@contoso.onmicrosoft.com",
            ),
            user(
                "5bde3e51-d13b-4db1-9948-fe4b109d11a7",
                "Alex",
                "Wilber",
                "alexw@contoso.onmicrosoft.com",
            ),
            user(
                "4782e723-f4f4-4af3-a76e-25e3bab0d896",
                "Megan",
                "Bowen",
                "meganb@contoso.onmicrosoft.com",
            ),
            user(
                "c8a9a3b2-4f5e-4d6c-8b7a-9e0f1a2b3c4d",
                "Lee",
                "Gu",
                "leeg@contoso.onmicrosoft.com",
            ),
        ];
        let members = users.iter().take(4).map(|u| u.id.clone()).collect();
        TenantFixture {
            tenant_id: "0b8e4f1c-2d3a-4b5c-9e6f-7a8b9c0d1e2f".into(),
            users,
            groups: vec![GroupFixture {
                id: "02bd9fd6-8f93-4758-87c3-1fb73740a315".into(),
                display_name: "Security key holders".into(),
                members,
            }],
            policy: None,
        }
    }
}

/// A passkey as the emulator stores it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct StoredMethod {
    pub method: Fido2Method,
    pub credential_id: Vec<u8>,
    /// When it was stored (real time: replication lag is measured against it).
    pub stored_at: std::time::Instant,
}

/// An issued challenge.
#[derive(Clone, Debug)]
pub(crate) struct IssuedChallenge {
    pub user_id: String,
    pub expires: SystemTime,
}

/// Token bucket modelled on Graph's identity limits.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ThrottleConfig {
    /// Bucket size (requests that may burst).
    pub capacity: f64,
    /// Refill rate in requests per second.
    pub refill_per_sec: f64,
}

impl ThrottleConfig {
    /// Per app and tenant in a small tenant: 3 500 resource units per 10 seconds.
    pub fn documented_small_tenant() -> Self {
        ThrottleConfig {
            capacity: 3500.0,
            refill_per_sec: 350.0,
        }
    }

    /// Per app and tenant in a large tenant: 8 000 resource units per 10 seconds.
    pub fn documented_large_tenant() -> Self {
        ThrottleConfig {
            capacity: 8000.0,
            refill_per_sec: 800.0,
        }
    }

    /// The documented write limit per app and tenant: 3 000 writes per 2.5 minutes.
    pub fn documented_writes() -> Self {
        ThrottleConfig {
            capacity: 3000.0,
            refill_per_sec: 3000.0 / 150.0,
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Bucket {
    pub tokens: f64,
    pub last: std::time::Instant,
}

/// Everything mutable in the emulator.
#[derive(Debug)]
pub(crate) struct State {
    pub tenant: TenantFixture,
    pub policy: Fido2Policy,
    pub methods: BTreeMap<String, Vec<StoredMethod>>,
    pub challenges: HashMap<String, IssuedChallenge>,
    pub tokens: HashMap<String, (String, SystemTime)>,
    pub used_jtis: HashSet<String>,
    pub clock_offset: Duration,
    pub buckets: HashMap<String, Bucket>,
    /// Write buckets (per client), separate from the read buckets.
    pub write_buckets: HashMap<String, Bucket>,
    pub log: Vec<super::RequestRecord>,
    /// Authentication methods other than passkeys, by user id (JSON as Graph lists them).
    pub other_methods: BTreeMap<String, Vec<serde_json::Value>>,
    /// The directory's change counter (`users/delta`): bumped by every user change.
    pub directory_version: u64,
    /// The version at which each user last changed, by user id.
    pub user_versions: HashMap<String, u64>,
    /// Deleted users: object id and the version of the deletion.
    pub removed_users: Vec<(String, u64)>,
    /// Temporary Access Passes by user id (at most one each): the method JSON without
    /// the pass.
    pub taps: BTreeMap<String, serde_json::Value>,
    /// When each user's sign-in sessions were revoked, by user id.
    pub sessions_revoked: BTreeMap<String, Vec<SystemTime>>,
    /// The FIDO metadata the tenant's attestation enforcement checks against, if given.
    pub trust: Option<std::sync::Arc<fido_core::trust::TrustStore>>,
    /// Identity verification events and credential provenance (beta).
    pub provenance: super::provenance::Store,
}

/// Most challenges kept at once (older expired ones are evicted first).
pub(crate) const MAX_CHALLENGES: usize = 100_000;

impl State {
    pub fn new(tenant: TenantFixture) -> Self {
        let policy = tenant.policy.clone().unwrap_or_else(fresh_policy);
        State {
            tenant,
            policy,
            methods: BTreeMap::new(),
            challenges: HashMap::new(),
            other_methods: BTreeMap::new(),
            taps: BTreeMap::new(),
            directory_version: 0,
            user_versions: HashMap::new(),
            removed_users: Vec::new(),
            sessions_revoked: BTreeMap::new(),
            trust: None,
            provenance: Default::default(),
            tokens: HashMap::new(),
            used_jtis: HashSet::new(),
            clock_offset: Duration::ZERO,
            buckets: HashMap::new(),
            write_buckets: HashMap::new(),
            log: Vec::new(),
        }
    }

    pub fn now(&self) -> SystemTime {
        SystemTime::now() + self.clock_offset
    }

    /// A user by object id or UPN (case-insensitive).
    pub fn find_user(&self, key: &str) -> Option<&User> {
        self.tenant.users.iter().find(|u| {
            u.id.eq_ignore_ascii_case(key)
                || u.user_principal_name
                    .as_deref()
                    .is_some_and(|p| p.eq_ignore_ascii_case(key))
        })
    }

    /// Sets a user's `accountEnabled` (by object id); false when there is no such user.
    pub fn set_account_enabled(&mut self, user_id: &str, enabled: bool) -> bool {
        match self.tenant.users.iter_mut().find(|u| u.id == user_id) {
            Some(u) => {
                u.account_enabled = Some(enabled);
                self.directory_version += 1;
                self.user_versions
                    .insert(user_id.to_owned(), self.directory_version);
                true
            }
            None => false,
        }
    }

    /// Deletes a user (by object id): gone from the directory and reported as
    /// `@removed` by `users/delta`; false when there is no such user.
    pub fn delete_user(&mut self, user_id: &str) -> bool {
        let before = self.tenant.users.len();
        self.tenant.users.retain(|u| u.id != user_id);
        if self.tenant.users.len() == before {
            return false;
        }
        self.directory_version += 1;
        self.removed_users
            .push((user_id.to_owned(), self.directory_version));
        true
    }

    /// Ids of the groups `user_id` belongs to, directly or through nested groups (as
    /// Entra evaluates policy targets).
    pub fn groups_of(&self, user_id: &str) -> Vec<String> {
        let groups = &self.tenant.groups;
        let mut found: Vec<String> = Vec::new();
        let mut frontier = vec![user_id.to_owned()];
        // Each round adds the groups that contain something found in the last one;
        // bounded by the number of groups (cycles add nothing new).
        while let Some(member) = frontier.pop() {
            for g in groups {
                if g.members.iter().any(|m| m.eq_ignore_ascii_case(&member))
                    && !found.iter().any(|f| f.eq_ignore_ascii_case(&g.id))
                {
                    found.push(g.id.clone());
                    frontier.push(g.id.clone());
                }
            }
        }
        found
    }

    pub fn evict_challenges(&mut self) {
        if self.challenges.len() >= MAX_CHALLENGES {
            let now = self.now();
            self.challenges.retain(|_, c| c.expires > now);
        }
        if self.challenges.len() >= MAX_CHALLENGES {
            self.challenges.clear();
        }
    }
}

/// ISO 8601 UTC (`2024-08-14T16:29:58Z`, whole seconds) of a time; before 1970 reads as
/// the epoch, past year 9999 as its end.
pub fn iso8601(t: SystemTime) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let t = time::Duration::try_from(since)
        .ok()
        .and_then(|d| time::OffsetDateTime::UNIX_EPOCH.checked_add(d))
        .unwrap_or_else(|| time::PrimitiveDateTime::MAX.assume_utc());
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso8601_known_instants() {
        assert_eq!(iso8601(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(
            iso8601(UNIX_EPOCH + Duration::from_secs(1_723_652_998)),
            "2024-08-14T16:29:58Z"
        );
        assert_eq!(
            iso8601(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00Z"
        );
    }

    #[test]
    fn fresh_tenant_finds_users_by_id_and_upn() {
        let s = State::new(TenantFixture::fresh());
        assert!(s.find_user("KIM@contoso.onmicrosoft.com").is_some());
        assert!(s
            .find_user("6e8a5a4e-5a0d-4e4c-9c8e-2f7c3d8a1b11")
            .is_some());
        assert!(s.find_user("nobody").is_none());
        assert_eq!(s.policy.is_self_service_registration_allowed, Some(true));
    }

    #[test]
    fn nested_group_membership_is_transitive_and_survives_cycles() {
        let mut t = TenantFixture::fresh();
        let kim = t.users[0].id.clone();
        let direct = t.groups[0].id.clone();
        t.groups.push(GroupFixture {
            id: "outer".into(),
            display_name: "Outer".into(),
            members: vec![direct.to_uppercase(), "cycle".into()],
        });
        t.groups.push(GroupFixture {
            id: "cycle".into(),
            display_name: "Cycle".into(),
            members: vec!["outer".into()],
        });
        let s = State::new(t);
        let mut g = s.groups_of(&kim);
        g.sort();
        let mut want = vec![direct, "outer".to_string(), "cycle".to_string()];
        want.sort();
        assert_eq!(g, want);
        // Lee is in no group.
        assert!(s
            .groups_of("c8a9a3b2-4f5e-4d6c-8b7a-9e0f1a2b3c4d")
            .is_empty());
    }
}
