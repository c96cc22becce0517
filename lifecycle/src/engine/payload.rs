//! Journal payloads: everything needed to redo an IdP call idempotently (no secrets).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::JournalError;
use crate::idp::RegistrationRequest;

/// A journalled registration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RegisterPayload {
    pub user: String,
    pub passkey_template: String,
    pub display_name: String,
    pub credential_id: String,
    pub client_data_json: String,
    pub attestation_object: String,
    /// The key's record version when the registration was journalled: replay refuses
    /// (closes as superseded) an entry whose key changed since. `None` in entries
    /// journalled before this field existed (then only the state is checked).
    #[serde(default)]
    pub key_version: Option<u64>,
    /// The key state the registration belongs to (`issued`); replay refuses the entry
    /// when the key is in any other state.
    #[serde(default)]
    pub expect_state: Option<String>,
    /// The holder's own token registered it, through the device half (delegated
    /// registration): a replay cannot call again, it only looks for the passkey.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub delegated: bool,
}

/// A journalled deletion. An empty `method_id` names the passkey by `credential_id`
/// alone (a registration whose outcome was in doubt): replay lists the user's passkeys
/// and deletes the one with that credential, if any.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct DeletePayload {
    pub user: String,
    pub passkey_template: String,
    pub method_id: String,
    pub credential_id: String,
    /// The state the journalling operation leads to (`inactive` or `revoked`); replay
    /// finishes that transition if the crash came before it.
    #[serde(default)]
    pub target: Option<String>,
    /// A reconciliation deletion: replay changes no key state.
    #[serde(default)]
    pub keep_key_state: bool,
}

/// A journalled state change: a flow that is about to make IdP side effects records
/// where it is taking the key, so replay can finish the state change if the process dies
/// after the side effects but before the state is committed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StatePayload {
    /// The flow's operation (`activate`, `inactivate`, `revoke`, `reissue`).
    pub operation: String,
    /// The key's state when the flow started.
    pub from: String,
    /// The state the flow commits after its IdP side effects.
    pub to: String,
    /// The key's record version when the flow started (a later change supersedes the entry).
    pub key_version: u64,
    /// For revocations: whether a failed IdP deletion cancels the revocation.
    #[serde(default)]
    pub force: Option<bool>,
}

impl StatePayload {
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub(crate) fn from_bytes(id: i64, bytes: &[u8]) -> Result<Self, JournalError> {
        serde_json::from_slice(bytes).map_err(|e| bad(id, e.to_string()))
    }
}

fn bad(id: i64, reason: impl Into<String>) -> JournalError {
    JournalError::BadJournalPayload {
        id,
        reason: reason.into(),
    }
}

fn unb64(id: i64, field: &str, s: &str) -> Result<Vec<u8>, JournalError> {
    URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|e| bad(id, format!("{field}: {e}")))
}

impl RegisterPayload {
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub(crate) fn from_bytes(id: i64, bytes: &[u8]) -> Result<Self, JournalError> {
        serde_json::from_slice(bytes).map_err(|e| bad(id, e.to_string()))
    }

    pub(crate) fn request(&self, id: i64) -> Result<RegistrationRequest, JournalError> {
        Ok(RegistrationRequest {
            display_name: self.display_name.clone(),
            credential_id: unb64(id, "credential_id", &self.credential_id)?,
            client_data_json: unb64(id, "client_data_json", &self.client_data_json)?,
            attestation_object: unb64(id, "attestation_object", &self.attestation_object)?,
        })
    }
}

impl DeletePayload {
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub(crate) fn from_bytes(id: i64, bytes: &[u8]) -> Result<Self, JournalError> {
        serde_json::from_slice(bytes).map_err(|e| bad(id, e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_payload_round_trips_and_rejects_garbage() {
        let p = RegisterPayload {
            user: "u".into(),
            passkey_template: "entra".into(),
            display_name: "Kim".into(),
            credential_id: "AQID".into(),
            client_data_json: "e30".into(),
            attestation_object: "oA".into(),
            key_version: Some(3),
            expect_state: Some("issued".into()),
            delegated: false,
        };
        let back = RegisterPayload::from_bytes(1, &p.to_bytes()).unwrap();
        assert_eq!(back, p);
        // A delegated registration says so (replay must not call the IdP itself); an
        // application one leaves the field out, as entries written before it did.
        assert!(!String::from_utf8(p.to_bytes())
            .unwrap()
            .contains("delegated"));
        let d = RegisterPayload {
            delegated: true,
            ..p.clone()
        };
        assert!(
            RegisterPayload::from_bytes(1, &d.to_bytes())
                .unwrap()
                .delegated
        );
        assert_eq!(back.request(1).unwrap().credential_id, vec![1, 2, 3]);
        assert!(matches!(
            RegisterPayload::from_bytes(7, b"{"),
            Err(JournalError::BadJournalPayload { id: 7, .. })
        ));
        // Entries journalled before the version existed still read.
        let old = br#"{"user":"u","passkey_template":"entra","display_name":"Kim","credential_id":"AQID","client_data_json":"e30","attestation_object":"oA"}"#;
        let old = RegisterPayload::from_bytes(2, old).unwrap();
        assert_eq!((old.key_version, old.expect_state), (None, None));
        let mut broken = p;
        broken.credential_id = "!!".into();
        assert!(matches!(
            broken.request(3),
            Err(JournalError::BadJournalPayload { id: 3, .. })
        ));
    }
}
