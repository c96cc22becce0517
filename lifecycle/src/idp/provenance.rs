//! Provenance at the IdP (issue 19 item 7): after a registration, record how the holder
//! was verified. For Entra these are Graph beta calls (`docs/ENTRA.md`, "Provenance"):
//! an identity verification event whose client-chosen id is an idempotency key, then
//! `attestProvenance` tying it to the FIDO2 method.

use std::time::{Duration, SystemTime};

use entra_graph::provenance::{ProvenanceError, VerificationDetails, VerificationEvent};
use entra_graph::ApiVersion;

use super::entra::EntraIdp;
use super::IdpError;

/// How the holder was verified, which decides the assertion keysmith makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProvenanceKind {
    /// Central issuance: an operator checked the holder in person
    /// (`manualAttestation`).
    OperatorCheck,
    /// Self-service: the holder signed in with OpenID Connect (`identityVerification`).
    OidcSignIn,
}

impl ProvenanceKind {
    /// Graph's `provenanceAssertionType` name for it.
    pub fn assertion_type(self) -> &'static str {
        match self {
            ProvenanceKind::OperatorCheck => "manualAttestation",
            ProvenanceKind::OidcSignIn => "identityVerification",
        }
    }
}

/// What to record for one registered passkey. Every field is derived from the
/// registration (key, template, credential, actor, time), so recording it again (a
/// re-run) sends the same event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProvenanceRequest {
    /// The event id (an idempotency key).
    pub event_id: String,
    /// Who verified the holder (at most 200 characters).
    pub source: String,
    /// The credential reference, a URN.
    pub external_credential_id: String,
    /// When the holder was verified (Unix milliseconds).
    pub verified_at_ms: u64,
    /// How.
    pub kind: ProvenanceKind,
    /// The reason given to `attestProvenance`.
    pub reason: String,
}

/// What the IdP recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProvenanceRecorded {
    /// The event the IdP holds (the one asked for, or an earlier one for the same
    /// credential reference).
    pub event_id: String,
    /// How many provenance assertions the method now carries.
    pub assertions: usize,
    /// The request id of the last call.
    pub request_id: Option<String>,
}

/// Why provenance needs a beta connection, in words an operator can act on.
pub(super) fn entra_support(name: &str, version: ApiVersion) -> Result<(), String> {
    match version {
        ApiVersion::Beta => Ok(()),
        v => Err(format!(
            "record_provenance needs a Graph beta connection: connection {name:?} uses Graph {}, and the identity verification and attestProvenance calls exist on beta only (graph_api_version = \"beta\" on connection {name:?}, or record_provenance = false)",
            v.segment()
        )),
    }
}

fn call_error(idp: &str, e: ProvenanceError) -> IdpError {
    let (status, request_id) = match &e {
        ProvenanceError::EventConflict { request_id, .. } => (Some(409), request_id.clone()),
        ProvenanceError::MethodRefused { source, .. }
        | ProvenanceError::PermissionMissing { source, .. }
        | ProvenanceError::Graph(source) => {
            (source.status(), source.request_id().map(str::to_owned))
        }
        _ => (None, None),
    };
    IdpError::Call {
        idp: idp.to_owned(),
        operation: "provenance",
        status,
        request_id,
        message: e.to_string(),
    }
}

impl EntraIdp {
    /// Records the event, then attests the method's provenance with it.
    pub(super) fn entra_record_provenance(
        &self,
        user: &str,
        method_id: &str,
        p: &ProvenanceRequest,
    ) -> Result<ProvenanceRecorded, IdpError> {
        let at = SystemTime::UNIX_EPOCH + Duration::from_millis(p.verified_at_ms);
        let event = VerificationEvent {
            id: p.event_id.clone(),
            details: VerificationDetails {
                source: p.source.clone(),
                external_credential_id: p.external_credential_id.clone(),
                issued: at,
                verified: at,
                expires: None,
            },
        };
        let client = self.client();
        let recorded = client
            .record_verification_event(user, &event)
            .map_err(|e| call_error(super::Idp::name(self), e))?;
        let prov = client
            .attest_provenance(user, method_id, &p.reason, &recorded.id)
            .map_err(|e| call_error(super::Idp::name(self), e))?;
        Ok(ProvenanceRecorded {
            event_id: recorded.id,
            assertions: prov.assertions.len(),
            request_id: prov.request_id,
        })
    }
}
