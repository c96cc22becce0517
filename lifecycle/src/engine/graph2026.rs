//! Entra as of 2026 in the engine (issue 19 items 1 and 2):
//!
//! - **v1.0 by default, beta where only beta will do.** A passkey template whose
//!   challenge lives longer than its connection's API version allows (Entra v1.0 fixes
//!   it at 5 minutes; deferred activation needs beta) is refused when it is loaded, and
//!   the pre-flight says which API version the template needs.
//! - **Sign-in under the current policy.** Reconciliation reports issued keys whose
//!   AAGUID or passkey type the IdP's policy now blocks at sign-in
//!   ([`DriftKind::WouldFailAtSignIn`]), with the passkey profile that blocks them.

use super::reconcile::{DriftFinding, DriftKind, Held};
use super::Engine;
use crate::idp::{ChallengeLimit, IdpError, IdpPasskey};
use crate::model::CredentialState;
use crate::store::{KeyRecord, PasskeyRecord};
use crate::template::{PasskeyTemplate, Problem, TemplateError, TemplateSet};
use crate::Error;
use fido_core::aaguid::parse_aaguid;

/// What is wrong with asking `minutes` of a connection with `limit`, in words an
/// operator can act on; `None` when the connection can do it.
fn challenge_problem(t: &PasskeyTemplate, minutes: i64, limit: &ChallengeLimit) -> Option<String> {
    if minutes <= i64::from(limit.max_minutes) {
        return None;
    }
    let needs = limit
        .longer_needs
        .as_deref()
        .map(|v| {
            format!(
                "; it needs a Graph {v} connection (graph_api_version = \"{v}\" on connection {:?}), or a timeout of {} minutes",
                t.idp.connection, limit.max_minutes
            )
        })
        .unwrap_or_default();
    Some(format!(
        "a challenge timeout of {minutes} minutes (deferred activation: issue now, PIN later) is longer than connection {:?} allows: it uses Graph {}, whose creationOptions takes no parameter and whose challenge lives {} minutes{needs}",
        t.idp.connection, limit.api_version, limit.max_minutes
    ))
}

impl Engine {
    /// The template set against the configured connections: every passkey template's
    /// challenge timeout must be one its connection's API version can ask for. A
    /// connection the engine does not have is not judged here.
    pub(super) fn check_connection_versions(&self, set: &TemplateSet) -> Result<(), Error> {
        let mut problems = Vec::new();
        for t in set.passkey.values() {
            let Some(idp) = self.idps.get(&t.idp.connection) else {
                continue;
            };
            let Some(limit) = idp.challenge_limit() else {
                continue;
            };
            if let Some(m) = challenge_problem(t, t.challenge_timeout(), &limit) {
                problems.push(Problem::new(
                    format!("{}.challenge_timeout_minutes", t.field_prefix()),
                    m,
                ));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            problems.sort_by(|a, b| a.field.cmp(&b.field));
            Err(TemplateError::Invalid(problems).into())
        }
    }

    /// The pre-flight's version check: refused (naming the API version the template
    /// needs) when the template's challenge timeout is longer than its connection allows.
    pub(super) fn preflight_challenge(
        &self,
        set: &TemplateSet,
        passkey_template: &str,
        connection: &str,
    ) -> Result<(), Error> {
        let (Some(t), Ok(idp)) = (set.passkey.get(passkey_template), self.idp(connection)) else {
            return Ok(());
        };
        let Some(limit) = idp.challenge_limit() else {
            return Ok(());
        };
        match challenge_problem(t, t.challenge_timeout(), &limit) {
            None => Ok(()),
            Some(message) => Err(IdpError::Policy {
                idp: connection.to_owned(),
                message: format!("passkey template {passkey_template:?}: {message}"),
            }
            .into()),
        }
    }

    /// Findings for the registered passkeys of active keys that their IdP still holds
    /// but whose AAGUID or type its policy now blocks at sign-in. Report only: a policy
    /// can be changed back, so nothing is repaired. A failed check is a
    /// [`DriftKind::CheckFailed`] finding; a connection that cannot tell (no such check,
    /// no permission) adds nothing.
    pub(super) fn sign_in_findings(
        &self,
        user: &str,
        held: &[Held],
        passkeys: &[(KeyRecord, PasskeyRecord)],
        out: &mut Vec<DriftFinding>,
    ) {
        for Held {
            connection,
            user_id,
            methods,
            ..
        } in held
        {
            let Ok(idp) = self.idp(connection) else {
                continue;
            };
            // The registered passkeys of active keys this connection holds.
            let live: Vec<(&KeyRecord, &PasskeyRecord, &IdpPasskey)> = passkeys
                .iter()
                .filter(|(k, pk)| {
                    k.state == CredentialState::Active
                        && pk.state == CredentialState::Active
                        && pk.idp_method_id.is_some()
                })
                .filter_map(|(k, pk)| {
                    methods
                        .iter()
                        .find(|m| super::reconcile::matches(m, pk))
                        .map(|m| (k, pk, m))
                })
                .collect();
            if live.is_empty() {
                continue;
            }
            // The AAGUID the IdP reports (what it judges), else the key's model.
            let aaguids: Vec<[u8; 16]> = live
                .iter()
                .map(|(k, _, m)| {
                    m.aaguid
                        .as_deref()
                        .and_then(parse_aaguid)
                        .unwrap_or(k.aaguid)
                })
                .collect();
            let base = |k: &KeyRecord, pk: &PasskeyRecord, m: &IdpPasskey| DriftFinding {
                user: user.to_owned(),
                user_id: Some(user_id.clone()),
                key_id: Some(k.key_id.clone()),
                passkey_template: Some(pk.passkey_template.clone()),
                idp_connection: connection.clone(),
                method_id: Some(m.method_id.clone()),
                credential_id: Some(super::b64(&pk.credential_id)),
                kind: DriftKind::WouldFailAtSignIn,
                fixed: false,
                error: None,
                blocked_by: None,
            };
            match idp.sign_in_blocks(user_id, &aaguids) {
                Ok(None) => {}
                Ok(Some(verdicts)) => {
                    for ((k, pk, m), v) in live.iter().zip(verdicts) {
                        if let Some(b) = v {
                            out.push(DriftFinding {
                                blocked_by: Some(b),
                                ..base(k, pk, m)
                            });
                        }
                    }
                }
                Err(e) => {
                    let (k, pk, m) = live[0];
                    out.push(DriftFinding {
                        kind: DriftKind::CheckFailed,
                        key_id: None,
                        method_id: None,
                        credential_id: None,
                        passkey_template: None,
                        error: Some(e.to_string()),
                        ..base(k, pk, m)
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v1() -> ChallengeLimit {
        ChallengeLimit {
            api_version: "v1.0".into(),
            max_minutes: 5,
            longer_needs: Some("beta".into()),
        }
    }

    fn passkey_template(minutes: u32) -> PasskeyTemplate {
        let text = format!(
            "[passkey.entra]\nidp = {{ connection = \"contoso\", graph_api_version = \"beta\" }}\n\
             display_name = \"{{displayName}}\"\nchallenge_timeout_minutes = {minutes}\n\n\
             [credential]\nname = \"t\"\npasskey_templates = [\"entra\"]\n\
             user_assignment = {{ directory = \"contoso\" }}\n"
        );
        let set = TemplateSet::from_toml_str(&text).expect("template");
        set.passkey["entra"].clone()
    }

    /// What the pre-flight (and the load-time check) says: the version in use, the
    /// challenge it allows, and the version the template needs.
    #[test]
    fn the_preflight_says_which_version_is_needed() {
        let t = passkey_template(1440);
        let m = challenge_problem(&t, t.challenge_timeout(), &v1()).expect("refused");
        assert!(m.contains("1440 minutes"), "{m}");
        assert!(m.contains("connection \"contoso\""), "{m}");
        assert!(m.contains("uses Graph v1.0"), "{m}");
        assert!(m.contains("needs a Graph beta connection"), "{m}");
        let t = passkey_template(5);
        assert_eq!(challenge_problem(&t, t.challenge_timeout(), &v1()), None);
        let beta = ChallengeLimit {
            api_version: "beta".into(),
            max_minutes: 43_200,
            longer_needs: None,
        };
        let t = passkey_template(43_200);
        assert_eq!(challenge_problem(&t, t.challenge_timeout(), &beta), None);
    }

    #[test]
    fn aaguids_parse() {
        let a = parse_aaguid("CB69481E-8FF7-4039-93EC-0A2729A154A8").unwrap();
        assert_eq!(a[0], 0xcb);
        assert_eq!(a[15], 0xa8);
        assert_eq!(parse_aaguid("cb69481e"), None);
        assert_eq!(parse_aaguid("zz69481e-8ff7-4039-93ec-0a2729a154a8"), None);
    }
}
