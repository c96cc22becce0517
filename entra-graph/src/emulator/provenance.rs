//! Provenance on beta, as the published pages describe it (`docs/ENTRA.md`, section
//! "Provenance"): identity verification events and `attestProvenance`.
//!
//! - `POST /beta/users/{id}/identityVerificationStatus/verificationEvents`: the client
//!   chooses the event `id`, an idempotency key (the same id and the same body return the
//!   event already recorded, nothing is added; the same id with another body is 409 —
//!   the status is this emulator's reading, the pages do not give it). The facts are
//!   checked as documented: `source` at most 200 characters, `externalCredentialId` a URN
//!   of at most 256, `issuedDateTime` not in the future, `expiresDateTime` after
//!   `verifiedDateTime`. A second event (another id) for an `externalCredentialId`
//!   already recorded for the user returns the first: "repeated presentation of the same
//!   credential produces one event".
//! - `POST /beta/users/{id}/authentication/methods/{id}/attestProvenance` with
//!   `{attestationReason, verificationEventId}` (both required): FIDO2 methods only;
//!   the event must be one of the user's; answers 200 with the `credentialProvenance`
//!   (a `manualAttestation` assertion: the action is an administrative attestation;
//!   attesting the same event again adds nothing).
//! - On v1.0 neither exists (400, as Graph answers a segment it does not know).
//!
//! Permissions (`IdentityVerification.ReadWrite.All`, `CredentialProvenance.ReadWrite.All`)
//! are checked by the router with the other roles.

use std::collections::BTreeMap;

use super::server::{error, json, Resp};
use super::state::iso8601;
use super::{Emulator, Shared};
use crate::provenance::{
    is_urn, DETAILS_PROPERTY, MAX_EXTERNAL_CREDENTIAL_ID_CHARS, MAX_SOURCE_CHARS,
};
use crate::wire::parse_utc;

/// What the emulator keeps: per user (object id), the events by id (the body as posted
/// and the answer), and per FIDO2 method id its provenance assertions.
#[derive(Debug, Default)]
pub(crate) struct Store {
    events: BTreeMap<String, BTreeMap<String, (serde_json::Value, serde_json::Value)>>,
    provenance: BTreeMap<String, Vec<serde_json::Value>>,
}

fn bad(message: &str, rid: &str) -> Resp {
    error(400, "badRequest", message, rid)
}

/// `POST …/identityVerificationStatus/verificationEvents` (beta).
pub(super) fn post_event(shared: &Shared, ver: &str, key: &str, body: &[u8], rid: &str) -> Resp {
    if ver != "beta" {
        return not_on_v1("identityVerificationStatus", rid);
    }
    let Ok(serde_json::Value::Object(posted)) = serde_json::from_slice::<serde_json::Value>(body)
    else {
        return bad(
            "The request body must be an identityVerificationEvent object.",
            rid,
        );
    };
    let Some(id) = posted
        .get("id")
        .and_then(|v| v.as_str())
        .filter(|s| !s.trim().is_empty())
    else {
        return bad(
            "The event id is required: the client supplies it on creation.",
            rid,
        );
    };
    let id = id.to_owned();
    let Some(details) = posted
        .get(DETAILS_PROPERTY)
        .and_then(|v| v.as_object())
        .cloned()
    else {
        return bad(
            &format!("The verification details ({DETAILS_PROPERTY}) are required."),
            rid,
        );
    };
    let text = |k: &str| details.get(k).and_then(|v| v.as_str());
    if let Some(s) = text("source") {
        if s.chars().count() > MAX_SOURCE_CHARS {
            return bad("source exceeds the maximum length of 200 characters.", rid);
        }
    }
    let external = text("externalCredentialId").map(str::to_owned);
    if let Some(u) = external.as_deref() {
        if u.chars().count() > MAX_EXTERNAL_CREDENTIAL_ID_CHARS {
            return bad(
                "externalCredentialId exceeds the maximum length of 256 characters.",
                rid,
            );
        }
        if !is_urn(u) {
            return bad("externalCredentialId must be in URN format.", rid);
        }
    }
    let time = |k: &str| text(k).map(|s| (s, parse_utc(s)));
    let mut st = shared.state();
    let now = st.now();
    let mut times = BTreeMap::new();
    for k in ["issuedDateTime", "verifiedDateTime", "expiresDateTime"] {
        match time(k) {
            Some((_, Some(t))) => {
                times.insert(k, t);
            }
            Some((s, None)) => {
                return bad(&format!("{k} '{s}' is not a valid DateTimeOffset."), rid)
            }
            None => {}
        }
    }
    if times.get("issuedDateTime").is_some_and(|t| *t > now) {
        return bad("issuedDateTime must not be in the future.", rid);
    }
    if let (Some(v), Some(e)) = (times.get("verifiedDateTime"), times.get("expiresDateTime")) {
        if e <= v {
            return bad("expiresDateTime must be after verifiedDateTime.", rid);
        }
    }
    let Some(uid) = st.find_user(key).map(|u| u.id.clone()) else {
        return not_found(key, rid);
    };
    let posted = serde_json::Value::Object(posted);
    let events = st.provenance.events.entry(uid).or_default();
    if let Some((earlier, answer)) = events.get(&id) {
        if *earlier == posted {
            return json(201, answer);
        }
        return error(
            409,
            "conflict",
            &format!("An identity verification event with id '{id}' already exists with different details."),
            rid,
        );
    }
    if let Some(u) = external.as_deref() {
        let same = events
            .values()
            .find(|(b, _)| b[DETAILS_PROPERTY]["externalCredentialId"].as_str() == Some(u));
        if let Some((_, answer)) = same {
            return json(200, answer);
        }
    }
    let answer = serde_json::json!({
        "@odata.context": format!("{}/beta/$metadata#users('{key}')/identityVerificationStatus/verificationEvents/$entity", shared.base_url),
        "@odata.type": "#microsoft.graph.identityVerificationEvent",
        "id": id,
        "lifecycle": { "state": "active", "source": null, "invalidatedDateTime": null },
        DETAILS_PROPERTY: details,
        "createdDateTime": iso8601(now),
    });
    events.insert(id, (posted, answer.clone()));
    json(201, &answer)
}

/// `POST …/authentication/methods/{id}/attestProvenance` (beta).
pub(super) fn attest(
    shared: &Shared,
    ver: &str,
    key: &str,
    method_id: &str,
    body: &[u8],
    rid: &str,
) -> Resp {
    if ver != "beta" {
        return not_on_v1("attestProvenance", rid);
    }
    let Ok(serde_json::Value::Object(b)) = serde_json::from_slice::<serde_json::Value>(body) else {
        return bad(
            "The request body must carry attestationReason and verificationEventId.",
            rid,
        );
    };
    let field = |k: &str| {
        b.get(k)
            .and_then(|v| v.as_str())
            .filter(|s| !s.trim().is_empty())
    };
    let (Some(reason), Some(event_id)) = (field("attestationReason"), field("verificationEventId"))
    else {
        return bad(
            "attestationReason and verificationEventId are required.",
            rid,
        );
    };
    let mut st = shared.state();
    let Some(uid) = st.find_user(key).map(|u| u.id.clone()) else {
        return not_found(key, rid);
    };
    let fido2 = st
        .methods
        .get(&uid)
        .is_some_and(|ms| ms.iter().any(|m| m.method.id == method_id));
    if !fido2 {
        let other = st
            .other_methods
            .get(&uid)
            .is_some_and(|ms| ms.iter().any(|m| m["id"].as_str() == Some(method_id)));
        return if other {
            bad(
                "Credential provenance is supported only for FIDO2 authentication methods.",
                rid,
            )
        } else {
            not_found(method_id, rid)
        };
    }
    let Some(event_at) = st
        .provenance
        .events
        .get(&uid)
        .and_then(|e| e.get(event_id))
        .map(|(_, a)| a["createdDateTime"].clone())
    else {
        return bad(
            &format!("The identityVerificationEvent '{event_id}' was not found for this user."),
            rid,
        );
    };
    let assertions = st
        .provenance
        .provenance
        .entry(method_id.to_owned())
        .or_default();
    if !assertions
        .iter()
        .any(|a| a["verificationEventId"].as_str() == Some(event_id))
    {
        assertions.push(serde_json::json!({
            "provenanceType": "manualAttestation",
            "attestationReason": reason,
            "verificationEventId": event_id,
            "eventDateTime": event_at,
            "sourceCredentialId": null,
            "sourceCredentialType": null,
        }));
    }
    let answer = serde_json::json!({
        "@odata.context": format!("{}/beta/$metadata#microsoft.graph.credentialProvenance", shared.base_url),
        "@odata.type": "#microsoft.graph.credentialProvenance",
        "assertedBy": { "actorType": "application", "actorId": null },
        "assertions": assertions.clone(),
    });
    json(200, &answer)
}

fn not_on_v1(segment: &str, rid: &str) -> Resp {
    error(
        400,
        "BadRequest",
        &format!("Resource not found for the segment '{segment}'."),
        rid,
    )
}

fn not_found(key: &str, rid: &str) -> Resp {
    error(
        404,
        "Request_ResourceNotFound",
        &format!("Resource '{key}' does not exist or one of its queried reference-property objects are not present."),
        rid,
    )
}

impl Emulator {
    /// The identity verification events recorded for `user` (id or UPN), each as the
    /// body that created it, in id order (empty for an unknown user).
    pub fn verification_events(&self, user: &str) -> Vec<serde_json::Value> {
        let st = self.shared.state();
        let Some(uid) = st.find_user(user).map(|u| u.id.clone()) else {
            return Vec::new();
        };
        st.provenance
            .events
            .get(&uid)
            .map(|e| e.values().map(|(b, _)| b.clone()).collect())
            .unwrap_or_default()
    }

    /// The provenance assertions of the method `method_id` (empty when none).
    pub fn provenance_assertions(&self, method_id: &str) -> Vec<serde_json::Value> {
        self.shared
            .state()
            .provenance
            .provenance
            .get(method_id)
            .cloned()
            .unwrap_or_default()
    }
}
