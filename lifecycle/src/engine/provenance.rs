//! Provenance after a registration (issue 19 item 7), behind the passkey template's
//! `record_provenance` switch (off by default).
//!
//! - **What is recorded.** Central issuance by an operator: the operator's in-person
//!   check (`manualAttestation`, the operator's identity in `source`). Self-service (a
//!   `self:` actor, verified by the holder's OIDC sign-in): `identityVerification`, the
//!   signed-in holder in `source`.
//! - **Idempotent.** The event id, the credential reference and the times are derived
//!   from the registration (key id, passkey template, credential id, the registering
//!   actor and time), so a retried job, or a re-run, sends the same event: Entra records
//!   it once.
//! - **A failure never undoes the registration.** The passkey is registered and stored
//!   before provenance is attempted; a failed provenance call is audited
//!   (`provenance`/`failed`, with the typed IdP error) and the flow goes on. It is
//!   recorded later by [`Engine::record_provenance`] (same event id, so nothing is
//!   recorded twice).
//! - **Beta only.** A template with the switch on whose connection uses Graph v1.0 is
//!   refused when loaded and at the pre-flight, with the reason.

use sha2::{Digest, Sha256};

use super::flow::FlowContext;
use super::{Engine, UnixMillis};
use crate::idp::{IdpError, ProvenanceKind, ProvenanceRequest};
use crate::store::{AuditQuery, NewAuditRecord};
use crate::template::{Problem, TemplateError, TemplateSet};
use crate::Error;

/// Longest `source` Entra takes.
const MAX_SOURCE: usize = 200;

/// What [`Engine::record_provenance`] did for one passkey.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProvenanceOutcome {
    /// The passkey template.
    pub passkey_template: String,
    /// The IdP's method id.
    pub method_id: String,
    /// The event id sent.
    pub event_id: String,
    /// `Ok(assertions on the method)`, or the IdP's refusal.
    pub result: Result<usize, IdpError>,
}

/// The provenance request for a registration: everything derived from the registration,
/// so the same registration always gives the same request.
pub fn provenance_request(
    key_id: &str,
    passkey_template: &str,
    credential_id: &[u8],
    actor: &str,
    registered_ms: UnixMillis,
) -> ProvenanceRequest {
    let digest = Sha256::digest(credential_id);
    let cred = base16ct::lower::encode_string(&digest[..16]);
    let event_id =
        entra_graph::provenance::event_id_for(&[key_id, passkey_template, cred.as_str()]);
    let (kind, source, reason) = match actor.strip_prefix("self:") {
        Some(holder) => (
            ProvenanceKind::OidcSignIn,
            format!("keysmith self-service: OpenID Connect sign-in as {holder}"),
            "holder verified by an OpenID Connect sign-in (self-service)".to_owned(),
        ),
        None => (
            ProvenanceKind::OperatorCheck,
            format!("keysmith central issuance: in-person check by operator {actor}"),
            "holder checked in person by the issuing operator (central issuance)".to_owned(),
        ),
    };
    ProvenanceRequest {
        event_id,
        source: source.chars().take(MAX_SOURCE).collect(),
        external_credential_id: format!("urn:keysmith:credential:{cred}"),
        verified_at_ms: registered_ms,
        kind,
        reason,
    }
}

impl Engine {
    /// The template set against the configured connections: a passkey template with
    /// `record_provenance` needs a connection that can record it (Entra: Graph beta).
    pub(super) fn check_provenance_support(&self, set: &TemplateSet) -> Result<(), Error> {
        let mut problems = Vec::new();
        for t in set.passkey.values().filter(|t| t.record_provenance) {
            let Some(idp) = self.idps.get(&t.idp.connection) else {
                continue;
            };
            if let Err(m) = idp.provenance_support() {
                problems.push(Problem::new(
                    format!("{}.record_provenance", t.field_prefix()),
                    m,
                ));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(TemplateError::Invalid(problems).into())
        }
    }

    /// The pre-flight's provenance check (the same as at load time).
    pub(super) fn preflight_provenance(
        &self,
        set: &TemplateSet,
        passkey_template: &str,
        connection: &str,
    ) -> Result<(), Error> {
        let (Some(t), Ok(idp)) = (set.passkey.get(passkey_template), self.idp(connection)) else {
            return Ok(());
        };
        if !t.record_provenance {
            return Ok(());
        }
        idp.provenance_support().map_err(|message| {
            IdpError::Policy {
                idp: connection.to_owned(),
                message: format!("passkey template {passkey_template:?}: {message}"),
            }
            .into()
        })
    }

    /// After the registration of `credential_id` as `method_id` (already stored): when
    /// the template asks for it, records the provenance and audits the outcome. A failed
    /// call is audited and does not fail the flow.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn provenance_after_registration(
        &self,
        flow: &FlowContext<'_>,
        passkey_template: &str,
        connection: &str,
        idp_user: &str,
        method_id: &str,
        credential_id: &[u8],
        now: UnixMillis,
    ) -> Result<(), Error> {
        let wanted = flow
            .templates
            .passkey
            .get(passkey_template)
            .is_some_and(|t| t.record_provenance);
        if !wanted {
            return Ok(());
        }
        let request = provenance_request(
            &flow.key.key_id,
            passkey_template,
            credential_id,
            flow.actor,
            now,
        );
        let outcome = self.idp(connection).map_err(Error::from).and_then(|idp| {
            idp.record_provenance(idp_user, method_id, &request)
                .map_err(Error::from)
        });
        let rec = flow.audit("provenance", "", None, now);
        self.store.append_audit(&provenance_audit(
            rec,
            passkey_template,
            method_id,
            &request,
            &outcome,
        ))?;
        Ok(())
    }

    /// Records the provenance of the registered passkeys of `key_id` whose template asks
    /// for it, again (for a registration whose provenance call failed). Each request is
    /// rebuilt from the registration's audit record (its actor and time), so the event is
    /// the one the first attempt sent and Entra keeps one. A passkey without such a
    /// record (a registration a journal replay completed) is skipped. Audited per
    /// passkey, by `actor`.
    pub fn record_provenance(
        &self,
        actor: &str,
        key_id: &str,
        now: UnixMillis,
    ) -> Result<Vec<ProvenanceOutcome>, Error> {
        let key = self
            .store
            .get_key(key_id)?
            .ok_or_else(|| super::LookupError::UnknownKey {
                key_id: key_id.to_owned(),
            })?;
        let templates = self.template_for(&key)?;
        let audit = self.store.query_audit(&AuditQuery {
            key_id: Some(key_id.to_owned()),
            ..AuditQuery::default()
        })?;
        let mut out = Vec::new();
        for pk in self.store.list_passkeys(key_id)? {
            let (Some(method_id), Some(t)) = (
                pk.idp_method_id.clone(),
                templates.passkey.get(&pk.passkey_template),
            ) else {
                continue;
            };
            if !t.record_provenance {
                continue;
            }
            let detail = format!("passkey {} registered as {method_id}", pk.passkey_template);
            let Some(reg) = audit.iter().rev().find(|r| {
                r.event.action == "register"
                    && r.event.outcome == "success"
                    && r.event.detail.as_deref() == Some(detail.as_str())
            }) else {
                continue;
            };
            let request = provenance_request(
                key_id,
                &pk.passkey_template,
                &pk.credential_id,
                &reg.event.actor,
                reg.event.time_ms,
            );
            let user = key.user_id.clone().unwrap_or_default();
            let result = self
                .user_at(&templates, &user, None, &t.idp.connection)
                .and_then(|u| {
                    self.idp(&t.idp.connection)
                        .map_err(Error::from)?
                        .record_provenance(&u, &method_id, &request)
                        .map_err(Error::from)
                });
            let rec = NewAuditRecord {
                actor: actor.to_owned(),
                time_ms: now,
                action: String::new(),
                key_id: Some(key_id.to_owned()),
                user_id: key.user_id.clone(),
                template_id: key.template_id.clone(),
                outcome: String::new(),
                idp_request_id: None,
                detail: None,
            };
            self.store.append_audit(&provenance_audit(
                rec,
                &pk.passkey_template,
                &method_id,
                &request,
                &result,
            ))?;
            out.push(ProvenanceOutcome {
                passkey_template: pk.passkey_template.clone(),
                method_id,
                event_id: request.event_id.clone(),
                result: result.map(|r| r.assertions).map_err(|e| match e {
                    Error::Idp(i) => i,
                    other => IdpError::Call {
                        idp: t.idp.connection.clone(),
                        operation: "provenance",
                        status: None,
                        request_id: None,
                        message: other.to_string(),
                    },
                }),
            });
        }
        Ok(out)
    }
}

/// The audit record of one provenance attempt: `provenance`, `success` or `failed`.
fn provenance_audit(
    mut rec: NewAuditRecord,
    passkey_template: &str,
    method_id: &str,
    request: &ProvenanceRequest,
    outcome: &Result<crate::idp::ProvenanceRecorded, Error>,
) -> NewAuditRecord {
    rec.action = "provenance".into();
    let what = format!(
        "passkey {passkey_template} method {method_id}: verification event {} ({}, source {:?})",
        request.event_id,
        request.kind.assertion_type(),
        request.source
    );
    match outcome {
        Ok(r) => {
            rec.outcome = "success".into();
            rec.idp_request_id = r.request_id.clone();
            rec.detail = Some(format!(
                "{what}; attestProvenance: {} assertion(s)",
                r.assertions
            ));
        }
        Err(e) => {
            rec.outcome = "failed".into();
            rec.detail = Some(format!(
                "{what}; not recorded (the registration stands; record it again with record_provenance): {e}"
            ));
        }
    }
    rec
}
