//! Provenance (beta only): recording how a passkey's holder was verified.
//!
//! Two Graph beta calls (`docs/ENTRA.md`, section "Provenance"):
//! - `POST /beta/users/{id}/identityVerificationStatus/verificationEvents` records an
//!   `identityVerificationEvent`; the client chooses the event `id`, which is an
//!   idempotency key, so a retried job records one event.
//! - `POST /beta/users/{id}/authentication/methods/{id}/attestProvenance` with
//!   `{attestationReason, verificationEventId}` ties that event to a FIDO2 method and
//!   returns the method's `credentialProvenance`.
//!
//! What the published pages pin and what is this crate's reading of them is listed in
//! `docs/ENTRA.md`: the name of the event property that carries the verification facts
//! ([`DETAILS_PROPERTY`]) and the answer to an event id reused with other facts (409) are
//! not pinned there.

use std::time::SystemTime;

use reqwest::Method;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{encode_segment, GraphClient};
use crate::config::ApiVersion;
use crate::wire::parse_json;
use crate::GraphError;

/// The permission `verificationEvents` needs (application and delegated).
pub const PERMISSION_IDENTITY_VERIFICATION: &str = "IdentityVerification.ReadWrite.All";
/// The permission `attestProvenance` needs (application and delegated).
pub const PERMISSION_CREDENTIAL_PROVENANCE: &str = "CredentialProvenance.ReadWrite.All";
/// Longest `source` Graph takes.
pub const MAX_SOURCE_CHARS: usize = 200;
/// Longest `externalCredentialId` Graph takes.
pub const MAX_EXTERNAL_CREDENTIAL_ID_CHARS: usize = 256;
/// The `identityVerificationEvent` property that carries the verification facts
/// (`verificationEventDetail`). Not pinned by the pages this crate follows: the
/// resource's property table is alphabetical and starts at `id`, so the name sorts after
/// `overrideDetails`; this is the name chosen (`docs/ENTRA.md`, "Provenance").
pub const DETAILS_PROPERTY: &str = "verificationDetails";

/// Why a provenance call failed.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProvenanceError {
    /// The connection uses a Graph version without these calls (they are beta only).
    #[error("provenance needs a Graph beta connection; this connection uses {version}")]
    NeedsBeta {
        /// The connection's version (`v1.0`).
        version: &'static str,
    },
    /// A value to send breaks Graph's documented limits (names the field); nothing was
    /// sent.
    #[error("provenance: {field}: {reason}")]
    InvalidInput {
        /// Which field (`source`, `externalCredentialId`, `id`, ...).
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// The event id already holds an event with other facts (HTTP 409): event ids are
    /// idempotency keys, so the same id must always carry the same facts.
    #[error("verification event {event_id} already exists with other details (HTTP 409, request id {})", request_id.as_deref().unwrap_or("none"))]
    EventConflict {
        /// The event id.
        event_id: String,
        /// `request-id` of the refused request.
        request_id: Option<String>,
    },
    /// The method is not a FIDO2 method (credential provenance is FIDO2 only) or does
    /// not exist: Graph's answer.
    #[error("attestProvenance refused for method {method_id}: {source}")]
    MethodRefused {
        /// The method id.
        method_id: String,
        /// Graph's answer.
        source: GraphError,
    },
    /// The app lacks the permission the call needs (HTTP 403).
    #[error("provenance: the app lacks {permission}: {source}")]
    PermissionMissing {
        /// The permission needed.
        permission: &'static str,
        /// Graph's answer.
        source: GraphError,
    },
    /// Any other failure talking to Graph (transport, throttling past the budget, 5xx,
    /// a malformed answer).
    #[error("provenance: {0}")]
    Graph(GraphError),
}

/// The verification facts of an event (`verificationEventDetail`). Times are sent as
/// ISO 8601 UTC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerificationDetails {
    /// Who verified the holder (≤ 200 characters): e.g. `keysmith operator alice@contoso.com`.
    pub source: String,
    /// The credential reference, a URN (≤ 256 characters), e.g. `urn:keysmith:key:…`.
    pub external_credential_id: String,
    /// When the underlying credential (the in-person check, the sign-in) was issued; not
    /// in the future.
    pub issued: SystemTime,
    /// When the holder was verified.
    pub verified: SystemTime,
    /// When the verification expires (after `verified`), if it does.
    pub expires: Option<SystemTime>,
}

/// A verification event to record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerificationEvent {
    /// The event id, chosen by the client: an idempotency key ([`event_id_for`]).
    pub id: String,
    /// The facts.
    pub details: VerificationDetails,
}

/// The recorded event as Graph returned it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedEvent {
    /// The event id.
    pub id: String,
    /// The lifecycle state Graph gave it (`active`, `issued`, ...), if any.
    pub state: Option<String>,
    /// `request-id` of the POST.
    pub request_id: Option<String>,
}

/// Why a credential's provenance is asserted (`provenanceAssertionType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AssertionType {
    /// The holder's identity was verified (`identityVerification`).
    IdentityVerification,
    /// Derived from another credential (`derivedFromCredential`).
    DerivedFromCredential,
    /// An administrator attests it (`manualAttestation`).
    ManualAttestation,
}

impl AssertionType {
    /// Graph's name.
    pub fn as_str(self) -> &'static str {
        match self {
            AssertionType::IdentityVerification => "identityVerification",
            AssertionType::DerivedFromCredential => "derivedFromCredential",
            AssertionType::ManualAttestation => "manualAttestation",
        }
    }
}

/// One assertion of a `credentialProvenance`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProvenanceAssertion {
    /// `provenanceType` as Graph gave it.
    pub provenance_type: Option<String>,
    /// The event that supports it.
    pub verification_event_id: Option<String>,
    /// The reason supplied.
    pub attestation_reason: Option<String>,
}

/// A method's `credentialProvenance` after `attestProvenance`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CredentialProvenance {
    /// `assertedBy.actorType` (`system`, `user`, `application`), if given.
    pub asserted_by_type: Option<String>,
    /// `assertedBy.actorId`, if given.
    pub asserted_by_id: Option<String>,
    /// The assertions.
    pub assertions: Vec<ProvenanceAssertion>,
    /// `request-id` of the POST.
    pub request_id: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DetailsWire<'a> {
    source: &'a str,
    external_credential_id: &'a str,
    issued_date_time: String,
    verified_date_time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_date_time: Option<String>,
}

#[derive(Deserialize)]
struct EventWire {
    id: String,
    #[serde(default)]
    lifecycle: Option<LifecycleWire>,
}

#[derive(Deserialize)]
struct LifecycleWire {
    #[serde(default)]
    state: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AttestWire<'a> {
    attestation_reason: &'a str,
    verification_event_id: &'a str,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProvenanceWire {
    #[serde(default)]
    asserted_by: Option<AssertedByWire>,
    #[serde(default)]
    assertions: Vec<AssertionWire>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AssertedByWire {
    #[serde(default)]
    actor_id: Option<String>,
    #[serde(default)]
    actor_type: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AssertionWire {
    #[serde(default)]
    provenance_type: Option<String>,
    #[serde(default)]
    verification_event_id: Option<String>,
    #[serde(default)]
    attestation_reason: Option<String>,
}

/// A deterministic event id for the parts given (e.g. the job id and the key id): the
/// same parts always give the same id, so a retried job records one event. A GUID-shaped
/// string from SHA-256 (the variant/version bits of a name-based UUID are set).
pub fn event_id_for(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    h.update(b"keysmith-provenance-event");
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p.as_bytes());
    }
    let mut b: [u8; 16] = h.finalize()[..16].try_into().unwrap_or([0; 16]);
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    crate::policy::format_aaguid(&b)
}

/// Checks the facts against Graph's documented limits: `source` 1..=200 characters,
/// `externalCredentialId` a URN of at most 256 characters, `issuedDateTime` not in the
/// future (`now`), `expiresDateTime` after `verifiedDateTime`, a non-empty event id.
pub fn check_event(event: &VerificationEvent, now: SystemTime) -> Result<(), ProvenanceError> {
    let bad = |field, reason: String| Err(ProvenanceError::InvalidInput { field, reason });
    let d = &event.details;
    if event.id.trim().is_empty() || event.id.len() > 128 {
        return bad("id", "the event id must be 1 to 128 characters".into());
    }
    let n = d.source.chars().count();
    if n == 0 || n > MAX_SOURCE_CHARS {
        return bad(
            "source",
            format!("{n} characters; Graph takes 1 to {MAX_SOURCE_CHARS}"),
        );
    }
    let n = d.external_credential_id.chars().count();
    if n > MAX_EXTERNAL_CREDENTIAL_ID_CHARS {
        return bad(
            "externalCredentialId",
            format!("{n} characters; Graph takes at most {MAX_EXTERNAL_CREDENTIAL_ID_CHARS}"),
        );
    }
    if !is_urn(&d.external_credential_id) {
        return bad(
            "externalCredentialId",
            "not a URN (urn:<namespace>:<specific string>)".into(),
        );
    }
    if d.issued > now {
        return bad("issuedDateTime", "in the future".into());
    }
    if d.expires.is_some_and(|e| e <= d.verified) {
        return bad("expiresDateTime", "must be after verifiedDateTime".into());
    }
    Ok(())
}

/// `urn:<NID>:<NSS>` (RFC 8141's shape: NID 2-32 of letters, digits and `-`, not
/// starting or ending with `-`; NSS non-empty, without spaces or control characters).
pub fn is_urn(s: &str) -> bool {
    let mut it = s.splitn(3, ':');
    let (Some(scheme), Some(nid), Some(nss)) = (it.next(), it.next(), it.next()) else {
        return false;
    };
    scheme.eq_ignore_ascii_case("urn")
        && (2..=32).contains(&nid.len())
        && nid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !nid.starts_with('-')
        && !nid.ends_with('-')
        && !nss.is_empty()
        && nss.chars().all(|c| !c.is_whitespace() && !c.is_control())
}

/// ISO 8601 UTC with whole seconds.
fn iso(t: SystemTime) -> String {
    let since = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let t = time::Duration::try_from(since)
        .ok()
        .and_then(|d| time::OffsetDateTime::UNIX_EPOCH.checked_add(d))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
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

/// The JSON body of a verification event, as sent (and as the emulator compares it).
pub fn event_body(event: &VerificationEvent) -> serde_json::Value {
    let d = &event.details;
    let details = DetailsWire {
        source: &d.source,
        external_credential_id: &d.external_credential_id,
        issued_date_time: iso(d.issued),
        verified_date_time: iso(d.verified),
        expires_date_time: d.expires.map(iso),
    };
    let mut body = serde_json::Map::new();
    body.insert("id".into(), serde_json::Value::String(event.id.clone()));
    body.insert(
        DETAILS_PROPERTY.into(),
        serde_json::to_value(details).unwrap_or_default(),
    );
    serde_json::Value::Object(body)
}

fn classify(e: GraphError, permission: &'static str) -> ProvenanceError {
    match e.status() {
        Some(403) => ProvenanceError::PermissionMissing {
            permission,
            source: e,
        },
        _ => ProvenanceError::Graph(e),
    }
}

impl GraphClient {
    fn require_beta(&self) -> Result<(), ProvenanceError> {
        match self.core.config.version {
            ApiVersion::Beta => Ok(()),
            v => Err(ProvenanceError::NeedsBeta {
                version: v.segment(),
            }),
        }
    }

    /// Records a verification event for `user` (object id or UPN). Idempotent by
    /// `event.id`: the same id with the same facts returns the event already recorded;
    /// the same id with other facts is [`ProvenanceError::EventConflict`]. Retried like
    /// any idempotent request. Beta only; needs `IdentityVerification.ReadWrite.All`.
    pub fn record_verification_event(
        &self,
        user: &str,
        event: &VerificationEvent,
    ) -> Result<RecordedEvent, ProvenanceError> {
        self.require_beta()?;
        check_event(event, SystemTime::now())?;
        let body =
            serde_json::to_vec(&event_body(event)).map_err(|e| ProvenanceError::InvalidInput {
                field: "verification event",
                reason: e.to_string(),
            })?;
        let url = format!(
            "{}/users/{}/identityVerificationStatus/verificationEvents",
            self.root(),
            encode_segment(user)
        );
        let core = self.core.clone();
        let reply = self
            .block(async move { core.request(Method::POST, &url, Some(&body), true).await })
            .map_err(ProvenanceError::Graph)?
            .map_err(GraphError::from)
            .map_err(|e| match e {
                GraphError::Api {
                    status: 409,
                    request_id,
                    ..
                } => ProvenanceError::EventConflict {
                    event_id: event.id.clone(),
                    request_id,
                },
                e => classify(e, PERMISSION_IDENTITY_VERIFICATION),
            })?;
        let got: EventWire = parse_json(&reply.body, "identityVerificationEvent")
            .map_err(|e| ProvenanceError::Graph(e.into()))?;
        Ok(RecordedEvent {
            id: got.id,
            state: got.lifecycle.and_then(|l| l.state),
            request_id: reply.request_id,
        })
    }

    /// Ties the verification event `event_id` to the FIDO2 method `method_id` of `user`
    /// (`attestProvenance`) with `reason`, returning the method's provenance. Retried
    /// like an idempotent request (attesting the same event again changes nothing).
    /// Beta only; FIDO2 methods only; needs `CredentialProvenance.ReadWrite.All`.
    pub fn attest_provenance(
        &self,
        user: &str,
        method_id: &str,
        reason: &str,
        event_id: &str,
    ) -> Result<CredentialProvenance, ProvenanceError> {
        self.require_beta()?;
        if reason.trim().is_empty() {
            return Err(ProvenanceError::InvalidInput {
                field: "attestationReason",
                reason: "required".into(),
            });
        }
        let body = serde_json::to_vec(&AttestWire {
            attestation_reason: reason,
            verification_event_id: event_id,
        })
        .map_err(|e| ProvenanceError::InvalidInput {
            field: "attestProvenance body",
            reason: e.to_string(),
        })?;
        let url = format!(
            "{}/users/{}/authentication/methods/{}/attestProvenance",
            self.root(),
            encode_segment(user),
            encode_segment(method_id)
        );
        let core = self.core.clone();
        let reply = self
            .block(async move { core.request(Method::POST, &url, Some(&body), true).await })
            .map_err(ProvenanceError::Graph)?
            .map_err(GraphError::from)
            .map_err(|e| match e.status() {
                Some(400 | 404) => ProvenanceError::MethodRefused {
                    method_id: method_id.to_owned(),
                    source: e,
                },
                _ => classify(e, PERMISSION_CREDENTIAL_PROVENANCE),
            })?;
        let got: ProvenanceWire = parse_json(&reply.body, "credentialProvenance")
            .map_err(|e| ProvenanceError::Graph(e.into()))?;
        let (asserted_by_id, asserted_by_type) = got
            .asserted_by
            .map_or((None, None), |a| (a.actor_id, a.actor_type));
        Ok(CredentialProvenance {
            asserted_by_type,
            asserted_by_id,
            assertions: got
                .assertions
                .into_iter()
                .map(|a| ProvenanceAssertion {
                    provenance_type: a.provenance_type,
                    verification_event_id: a.verification_event_id,
                    attestation_reason: a.attestation_reason,
                })
                .collect(),
            request_id: reply.request_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn event(source: &str, urn: &str) -> VerificationEvent {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        VerificationEvent {
            id: event_id_for(&["job", "key"]),
            details: VerificationDetails {
                source: source.into(),
                external_credential_id: urn.into(),
                issued: t,
                verified: t,
                expires: None,
            },
        }
    }

    #[test]
    fn event_ids_are_deterministic_guids() {
        let a = event_id_for(&["job-1", "key-1"]);
        assert_eq!(a, event_id_for(&["job-1", "key-1"]));
        assert_ne!(a, event_id_for(&["job-1", "key-2"]));
        assert_ne!(event_id_for(&["ab", "c"]), event_id_for(&["a", "bc"]));
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "5");
    }

    #[test]
    fn limits_are_checked_before_sending() {
        let now = SystemTime::now();
        assert_eq!(check_event(&event("op", "urn:keysmith:key:1"), now), Ok(()));
        let long = "x".repeat(201);
        assert!(matches!(
            check_event(&event(&long, "urn:keysmith:key:1"), now),
            Err(ProvenanceError::InvalidInput {
                field: "source",
                ..
            })
        ));
        let urn = format!("urn:keysmith:{}", "k".repeat(250));
        assert!(matches!(
            check_event(&event("op", &urn), now),
            Err(ProvenanceError::InvalidInput {
                field: "externalCredentialId",
                ..
            })
        ));
        for not_urn in [
            "keysmith:key:1",
            "urn:k:x",
            "urn:keysmith:",
            "urn:-a:x",
            "urn:ks:a b",
        ] {
            assert!(!is_urn(not_urn), "{not_urn}");
        }
        let mut e = event("op", "urn:keysmith:key:1");
        e.details.expires = Some(e.details.verified);
        assert!(check_event(&e, now).is_err());
        e.details.expires = None;
        e.details.issued = now + Duration::from_secs(3600);
        assert!(check_event(&e, now).is_err());
    }

    #[test]
    fn the_body_carries_the_details_under_one_property() {
        let b = event_body(&event("op", "urn:keysmith:key:1"));
        assert_eq!(b[DETAILS_PROPERTY]["source"], "op");
        assert_eq!(
            b[DETAILS_PROPERTY]["issuedDateTime"],
            "2023-11-14T22:13:20Z"
        );
        assert!(b[DETAILS_PROPERTY].get("expiresDateTime").is_none());
    }
}
