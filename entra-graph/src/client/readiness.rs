//! The SMS/voice retirement readiness report (issue 19 item 6): which users of a group
//! (or of the whole directory) have no phishing-resistant method, so will meet a blocking
//! passkey registration prompt when Microsoft-provided SMS/voice sign-in retires
//! (2027-02-01; docs/ENTRA.md, "2026").
//!
//! Users come from `GET /users` or the group's members (nested groups followed), paged;
//! their methods from `GET /users/{id}/authentication/methods` through `$batch` (20 users
//! per request). Guests and B2B users are set apart first: Entra does not support passkeys
//! for them yet, so no key can be issued to them.

use std::collections::BTreeSet;

use reqwest::Method;

use super::{encode_segment, GraphClient};
use crate::wire::{parse_json, AuthenticationMethod, DirectoryObject, Page, User};
use crate::GraphError;

/// The method types that make a user ready: FIDO2 passkeys (security keys, Authenticator,
/// synced), Windows Hello for Business, platform credentials (macOS) and certificate-based
/// authentication.
pub const READINESS_METHOD_TYPES: &[&str] = &[
    "#microsoft.graph.fido2AuthenticationMethod",
    "#microsoft.graph.windowsHelloForBusinessAuthenticationMethod",
    "#microsoft.graph.platformCredentialAuthenticationMethod",
    "#microsoft.graph.x509CertificateAuthenticationMethod",
];

/// Why a guest or B2B user is refused up front (Entra's own limitation).
pub const GUEST_REFUSAL: &str =
    "Microsoft Entra ID does not support passkeys for guest and B2B collaboration users yet";

/// The properties the report reads of each user.
const SELECT: &str = "id,displayName,userPrincipalName,userType,accountEnabled";

/// Most groups followed inside the asked group (guards against very wide nesting).
const MAX_GROUPS: usize = 10_000;

/// One user of the readiness report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadinessUser {
    /// Object id.
    pub id: String,
    /// UPN.
    pub user_principal_name: Option<String>,
    /// Display name.
    pub display_name: Option<String>,
    /// The user's method types, short (`fido2`, `phone`, `password`, ...).
    pub methods: Vec<String>,
}

/// What the readiness report found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Readiness {
    /// Users checked (guests not included).
    pub checked: usize,
    /// Users with no phishing-resistant method: the ones to issue a key to.
    pub not_ready: Vec<ReadinessUser>,
    /// Guests and B2B users, refused up front with [`GUEST_REFUSAL`].
    pub guests: Vec<ReadinessUser>,
    /// Users whose methods could not be read: (object id, why).
    pub failed: Vec<(String, String)>,
}

/// `#microsoft.graph.fido2AuthenticationMethod` → `fido2`.
fn short_type(t: &str) -> String {
    t.trim_start_matches("#microsoft.graph.")
        .trim_end_matches("AuthenticationMethod")
        .to_owned()
}

impl GraphClient {
    /// Every user of the group `group` (object id; members of nested groups too), or of
    /// the whole directory when `None`, paged.
    pub fn report_users(&self, group: Option<&str>) -> Result<Vec<User>, GraphError> {
        let Some(group) = group else {
            return self.get_all(
                format!("{}/users?$select={SELECT}&$top=999", self.root()),
                "users page",
            );
        };
        let mut users: Vec<User> = Vec::new();
        let mut seen_users = BTreeSet::new();
        let mut seen_groups = BTreeSet::new();
        let mut todo = vec![group.to_owned()];
        while let Some(g) = todo.pop() {
            if !seen_groups.insert(g.to_ascii_lowercase()) || seen_groups.len() > MAX_GROUPS {
                continue;
            }
            let members: Vec<DirectoryObject> = self.group_members(&g)?;
            for m in members {
                match m.odata_type.as_deref() {
                    Some("#microsoft.graph.group") => todo.push(m.id),
                    Some("#microsoft.graph.user") if seen_users.insert(m.id.clone()) => {
                        users.push(self.user_for_report(&m.id)?);
                    }
                    _ => {}
                }
            }
        }
        Ok(users)
    }

    fn user_for_report(&self, id: &str) -> Result<User, GraphError> {
        self.get_json(
            &format!(
                "{}/users/{}?$select={SELECT}",
                self.root(),
                encode_segment(id)
            ),
            "user",
        )
    }

    /// The SMS/voice retirement readiness of the users of `group` (or the whole
    /// directory): who has none of [`READINESS_METHOD_TYPES`]. Needs `User.Read.All`,
    /// `GroupMember.Read.All` (for a group) and `UserAuthenticationMethod.Read.All`.
    pub fn sms_readiness(&self, group: Option<&str>) -> Result<Readiness, GraphError> {
        let mut out = Readiness::default();
        let mut members = Vec::new();
        for u in self.report_users(group)? {
            let entry = ReadinessUser {
                id: u.id.clone(),
                user_principal_name: u.user_principal_name.clone(),
                display_name: u.display_name.clone(),
                methods: Vec::new(),
            };
            if u.is_guest() {
                out.guests.push(entry);
            } else {
                members.push(entry);
            }
        }
        out.checked = members.len();
        let reqs = members
            .iter()
            .map(|u| {
                (
                    Method::GET,
                    format!("/users/{}/authentication/methods", encode_segment(&u.id)),
                )
            })
            .collect();
        for (mut u, r) in members.into_iter().zip(self.batch(reqs)) {
            let methods = r.and_then(|o| {
                let page: Page<AuthenticationMethod> =
                    parse_json(&o.body, "authenticationMethods page")?;
                let mut all = page.value;
                if let Some(next) = page.next_link {
                    all.extend(
                        self.get_all::<AuthenticationMethod>(next, "authenticationMethods page")?,
                    );
                }
                Ok(all)
            });
            match methods {
                Ok(ms) => {
                    let ready = ms.iter().any(|m| {
                        m.odata_type
                            .as_deref()
                            .is_some_and(|t| READINESS_METHOD_TYPES.contains(&t))
                    });
                    u.methods = ms
                        .iter()
                        .filter_map(|m| m.odata_type.as_deref().map(short_type))
                        .collect();
                    if !ready {
                        out.not_ready.push(u);
                    }
                }
                Err(e) => out.failed.push((u.id, e.to_string())),
            }
        }
        Ok(out)
    }
}
