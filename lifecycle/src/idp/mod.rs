//! Identity-provider connectors: the [`Idp`] trait the engine drives and [`EntraIdp`],
//! its Microsoft Entra ID implementation over [`entra_graph::GraphClient`].
//!
//! Every type crossing this API is owned plain data so other IdPs can plug in without
//! the engine knowing their wire formats.

mod delegated;
mod entra;
mod extensions;
mod graph2026;
mod provenance;
mod readiness;

pub use delegated::{DelegatedRegistrar, RelayedAnswer};
pub use entra::EntraIdp;
pub use extensions::{CreationExtensions, CredProtectPolicy, ExtensionError, KeyExtensions};
pub use graph2026::{ChallengeLimit, SignInBlocked};
pub use provenance::{ProvenanceKind, ProvenanceRecorded, ProvenanceRequest};
pub use readiness::{ReadinessReport, ReadinessUser};

/// A creation challenge the IdP issued for one user (owned).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreationChallenge {
    /// The challenge exactly as the IdP sent it (base64url text); it goes verbatim into
    /// clientDataJSON.
    pub challenge: String,
    /// The relying party id the credential is made for.
    pub rp_id: String,
    /// The relying party name, if given.
    pub rp_name: Option<String>,
    /// The origin clientDataJSON names (`https://<rp id>` unless the template pins one).
    pub origin: String,
    /// When the challenge expires (Unix milliseconds), if the IdP said.
    pub expires_at_ms: Option<u64>,
    /// The WebAuthn user handle.
    pub user_handle: Vec<u8>,
    /// The user name for the key's user entity.
    pub user_name: Option<String>,
    /// Credential ids that must not be on the key already.
    pub exclude_ids: Vec<Vec<u8>>,
    /// COSE algorithms the IdP accepts, most preferred first (empty: ES256).
    pub algorithms: Vec<i64>,
    /// The extensions the IdP asks for (credProtect policy, hmac-secret).
    pub extensions: CreationExtensions,
}

impl CreationChallenge {
    /// The clientDataJSON of a registration for this challenge, written the way browsers
    /// write it (`type`, `challenge`, `origin`, `crossOrigin`).
    pub fn client_data_json(&self) -> String {
        let quote = |v: &str| serde_json::Value::from(v).to_string();
        format!(
            r#"{{"type":"webauthn.create","challenge":{},"origin":{},"crossOrigin":false}}"#,
            quote(&self.challenge),
            quote(&self.origin)
        )
    }
}

/// What is sent to the IdP to register a passkey made on the key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegistrationRequest {
    /// The passkey's display name at the IdP.
    pub display_name: String,
    /// The credential id.
    pub credential_id: Vec<u8>,
    /// The clientDataJSON the key signed.
    pub client_data_json: Vec<u8>,
    /// The attestation object (CBOR).
    pub attestation_object: Vec<u8>,
}

/// The result of a registration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdpOutcome {
    /// The IdP's id of the new authentication method.
    pub method_id: String,
    /// The IdP's request id, for the audit log (`None` when found by reconciliation).
    pub request_id: Option<String>,
}

/// The result of a deletion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdpDeletion {
    /// The IdP's request id, for the audit log.
    pub request_id: Option<String>,
    /// The method was already gone.
    pub already_gone: bool,
}

/// A passkey registered at the IdP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdpPasskey {
    /// The IdP's method id.
    pub method_id: String,
    /// The credential id, when the IdP's method id encodes it (its most likely reading).
    pub credential_id: Option<Vec<u8>>,
    /// Other valid readings of the method id as a credential id (Entra's padding-digit
    /// form and plain base64url overlap for some lengths; see `entra_graph::ids`).
    pub other_credential_ids: Vec<Vec<u8>>,
    /// The display name.
    pub display_name: Option<String>,
    /// The authenticator's AAGUID as the IdP reports it.
    pub aaguid: Option<String>,
    /// When the passkey last signed in, as the IdP reports it (ISO 8601; Entra: beta
    /// `lastUsedDateTime` only).
    pub last_used: Option<String>,
    /// `deviceBound` or `synced`, as the IdP reports it (Entra: v1.0 `passkeyType`).
    pub passkey_type: Option<String>,
    /// When it was registered, as the IdP reports it (ISO 8601).
    pub created: Option<String>,
    /// The authenticator model, as the IdP reports it.
    pub model: Option<String>,
}

impl IdpPasskey {
    /// True when this passkey is the credential `credential_id` (any reading of the
    /// IdP's method id).
    pub fn holds(&self, credential_id: &[u8]) -> bool {
        self.credential_id.as_deref() == Some(credential_id)
            || self.other_credential_ids.iter().any(|c| c == credential_id)
    }
}

/// One round of the directory's change feed: who left, and where the next round starts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Leavers {
    /// Object ids of users deleted or disabled since the last round.
    pub user_ids: Vec<String>,
    /// Where the next round starts (Entra: the `users/delta` delta link); keep it.
    pub resume: String,
}

/// A temporary sign-in pass the IdP issued (Entra: a Temporary Access Pass).
#[derive(Clone, PartialEq, Eq)]
pub struct TemporaryPass {
    /// The IdP's method id (to delete it early).
    pub method_id: String,
    /// The pass itself: a secret, zeroized on drop and never printed.
    pub pass: zeroize::Zeroizing<String>,
    /// How long it is valid, in minutes.
    pub lifetime_minutes: u32,
}

impl std::fmt::Debug for TemporaryPass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TemporaryPass")
            .field("method_id", &self.method_id)
            .field("pass", &"<redacted>")
            .field("lifetime_minutes", &self.lifetime_minutes)
            .finish()
    }
}

/// A directory user as the IdP knows them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IdpUser {
    /// The IdP's object id.
    pub id: String,
    /// User principal name.
    pub user_principal_name: Option<String>,
    /// Display name.
    pub display_name: Option<String>,
    /// Given name.
    pub given_name: Option<String>,
    /// Surname.
    pub surname: Option<String>,
    /// Mail address.
    pub mail: Option<String>,
    /// Whether the account may sign in (`accountEnabled` at Entra); `None`: not said.
    pub account_enabled: Option<bool>,
}

/// The tenant of a directory connection and the issuer of its users' ID tokens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirectoryTenant {
    /// The tenant id (`tid` in its ID tokens).
    pub tenant_id: String,
    /// The v2.0 issuer of its ID tokens (Entra:
    /// `https://login.microsoftonline.com/{tenant}/v2.0`).
    pub issuer: String,
}

/// IdP failures.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdpError {
    /// The IdP refused or failed the call.
    #[error("{idp}: {operation} failed{}: {message}", status.map(|s| format!(" (HTTP {s})")).unwrap_or_default())]
    Call {
        /// The IdP connection.
        idp: String,
        /// What was attempted (`creationOptions`, `register`, ...).
        operation: &'static str,
        /// The HTTP status, if there was an answer.
        status: Option<u16>,
        /// The IdP's request id, if any.
        request_id: Option<String>,
        /// The IdP's or the client's message.
        message: String,
    },
    /// The IdP refused a registration because its challenge expired (the key must be
    /// reissued).
    #[error("{idp}: the registration's challenge expired at the IdP: {message}")]
    ChallengeExpired {
        /// The IdP connection.
        idp: String,
        /// The IdP's request id, if any.
        request_id: Option<String>,
        /// The IdP's message.
        message: String,
    },
    /// The request could not even be built (a URL longer than HTTP allows, e.g. from a
    /// huge user name; a header value with forbidden characters): it was never sent, and
    /// sending it again cannot succeed. A journalled registration or deletion that fails
    /// so is closed as failed, not replayed.
    #[error("{idp}: {operation} not sent: {message}")]
    Unsendable {
        /// The IdP connection.
        idp: String,
        /// What was attempted (`creationOptions`, `register`, `delete`, ...).
        operation: &'static str,
        /// The client's message (never the URL or a header value).
        message: String,
    },
    /// The IdP's policy does not admit the key.
    #[error("{idp}: policy pre-flight refused the key: {message}")]
    Policy {
        /// The IdP connection.
        idp: String,
        /// Why.
        message: String,
    },
    /// The IdP answered something the connector cannot use.
    #[error("{idp}: bad answer in {field}: {message}")]
    BadAnswer {
        /// The IdP connection.
        idp: String,
        /// The field.
        field: &'static str,
        /// Why.
        message: String,
    },
}

impl IdpError {
    /// The IdP's request id carried by the error, if any.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            IdpError::Call { request_id, .. } | IdpError::ChallengeExpired { request_id, .. } => {
                request_id.as_deref()
            }
            _ => None,
        }
    }
}

/// An identity provider the engine registers passkeys with.
pub trait Idp: Send + Sync {
    /// The connection name templates refer to.
    fn name(&self) -> &str;
    /// The RP id passkeys are made for when a template pins none.
    fn default_rp_id(&self) -> String;
    /// Looks a user up by id or UPN.
    fn user(&self, user: &str) -> Result<IdpUser, IdpError>;
    /// The tenant this connection's directory is and the issuer of its users' ID tokens
    /// (self-service binds the holder's token to it); `None` for an IdP without one.
    fn directory_tenant(&self) -> Option<DirectoryTenant> {
        None
    }
    /// How this connection reaches its endpoints (trust and proxy), which self-service
    /// also uses for the directory's OpenID Connect issuer; `None`: the defaults.
    fn network(&self) -> Option<entra_graph::net::NetworkOptions> {
        None
    }
    /// How many phishing-resistant sign-in methods the user keeps once the passkey
    /// `method_id` is deleted (0: deleting it leaves none); `None` when the IdP cannot
    /// tell (no such call, or no permission for it).
    fn phishing_resistant_left(
        &self,
        _user: &str,
        _method_id: &str,
    ) -> Result<Option<usize>, IdpError> {
        Ok(None)
    }
    /// The one directory user whose `property` (`employeeId`, `userPrincipalName`,
    /// `onPremisesImmutableId`) equals `value`; `None` when there is none or the IdP
    /// cannot look users up that way.
    fn find_user_by(&self, _property: &str, _value: &str) -> Result<Option<IdpUser>, IdpError> {
        Ok(None)
    }
    /// Issues a temporary sign-in pass for `user`, valid `lifetime_minutes`, usable
    /// once or not; `None` when the IdP has no such thing.
    fn temporary_pass(
        &self,
        _user: &str,
        _lifetime_minutes: u32,
        _usable_once: bool,
    ) -> Result<Option<TemporaryPass>, IdpError> {
        Ok(None)
    }
    /// The users who left (deleted or disabled) since the round `resume` came from, or
    /// every disabled user when `resume` is `None`; `None` when the IdP has no change
    /// feed.
    fn leavers(&self, _resume: Option<&str>) -> Result<Option<Leavers>, IdpError> {
        Ok(None)
    }
    /// Whether the user holds the passkey `method_id`, by a read of that one method
    /// (Entra: `GET …/fido2Methods/{id}`): `Some(false)` when the IdP says it is not
    /// there, `None` when the IdP has no such read. Reconciliation asks it before calling
    /// a passkey a listing did not show missing (listings may lag behind a registration).
    fn has_passkey(&self, _user: &str, _method_id: &str) -> Result<Option<bool>, IdpError> {
        Ok(None)
    }
    /// The SMS/voice retirement readiness of the users of `group` (object id; `None`:
    /// the whole directory): who has no phishing-resistant method, guests set apart.
    /// `None` when the IdP cannot tell.
    fn sms_readiness(&self, _group: Option<&str>) -> Result<Option<ReadinessReport>, IdpError> {
        Ok(None)
    }
    /// A bulk job starts using this connection: until [`Idp::bulk_ended`] the connector
    /// may reuse the directory reads the job repeats per row (Entra: the FIDO2 policy, a
    /// user read moments ago) for a short time. Every check is still made.
    fn bulk_started(&self) {}
    /// The bulk job of [`Idp::bulk_started`] ended.
    fn bulk_ended(&self) {}
    /// The users (ids or UPNs) the running bulk job's rows will look up next, in row
    /// order: the connector may read them ahead in batches (Entra: 15 a request) and
    /// answer [`Idp::user`] from those reads. A user not found that way is read on its
    /// own (its not-found stays the typed refusal).
    fn bulk_users(&self, _users: &[String]) {}
    /// Signs the user out everywhere (refresh tokens and session cookies); `false` when
    /// the IdP has no such call.
    fn revoke_sign_in_sessions(&self, _user: &str) -> Result<bool, IdpError> {
        Ok(false)
    }
    /// The longest registration challenge this connection can ask for (Entra: v1.0
    /// fixes it at 5 minutes, beta allows 43 200); `None` when the IdP sets no limit.
    fn challenge_limit(&self) -> Option<ChallengeLimit> {
        None
    }
    /// Whether this connection can record provenance after a registration
    /// ([`Idp::record_provenance`]); `Err` says why not, in words an operator can act on.
    fn provenance_support(&self) -> Result<(), String> {
        Err(format!(
            "connection {:?} cannot record provenance",
            self.name()
        ))
    }
    /// Records how the holder of the registered passkey `method_id` of `user` was
    /// verified (idempotent by `request.event_id`).
    fn record_provenance(
        &self,
        _user: &str,
        _method_id: &str,
        _request: &ProvenanceRequest,
    ) -> Result<ProvenanceRecorded, IdpError> {
        Err(IdpError::Call {
            idp: self.name().to_owned(),
            operation: "provenance",
            status: None,
            request_id: None,
            message: "this connection cannot record provenance".into(),
        })
    }
    /// For each AAGUID (16 bytes) of a device-bound passkey the user `user_id` (the
    /// IdP's object id) holds, whether the IdP's policy would now refuse it at sign-in
    /// (`Some`: blocked, and by what); `None` when the IdP has no such check or lacks the
    /// permission to make it.
    fn sign_in_blocks(
        &self,
        _user_id: &str,
        _aaguids: &[[u8; 16]],
    ) -> Result<Option<Vec<Option<SignInBlocked>>>, IdpError> {
        Ok(None)
    }
    /// Checks the IdP's policy admits a key of this AAGUID (16 bytes) for this user (the
    /// policy's include/exclude targets apply).
    fn preflight(&self, user: &str, aaguid: &[u8; 16], attested: bool) -> Result<(), IdpError>;
    /// Creation options for a user; `timeout_minutes` as the template asks; `origin`
    /// overrides the default `https://<rp id>`.
    fn creation_challenge(
        &self,
        user: &str,
        timeout_minutes: Option<u32>,
        origin: Option<&str>,
    ) -> Result<CreationChallenge, IdpError>;
    /// Registers a passkey. An unknown outcome is reconciled by the connector (never two
    /// registrations for one credential).
    fn register(&self, user: &str, request: &RegistrationRequest) -> Result<IdpOutcome, IdpError>;
    /// Deletes a passkey; a method already gone counts as deleted, but only when the
    /// user resolved (an unknown user, or one the app may not see, is an error).
    fn delete(&self, user: &str, method_id: &str) -> Result<IdpDeletion, IdpError>;
    /// The user's passkeys.
    fn list(&self, user: &str) -> Result<Vec<IdpPasskey>, IdpError>;
    /// Connectivity check: acquires a token and makes one cheap read; returns how long
    /// that took in milliseconds.
    fn check_connection(&self) -> Result<u64, IdpError>;
    /// Directory search for operators picking a user: users whose display name or UPN
    /// starts with `prefix`, at most `top`.
    fn search_users(&self, prefix: &str, top: u32) -> Result<Vec<IdpUser>, IdpError>;

    /// Delegated registration with the holder's own token ([`DelegatedRegistrar`]), if
    /// this IdP supports it. Default: not supported.
    fn delegated(&self) -> Option<&dyn DelegatedRegistrar> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_data_json_carries_challenge_verbatim_and_escapes_origin() {
        let c = CreationChallenge {
            challenge: "abc_-".into(),
            rp_id: "login.microsoft.com".into(),
            rp_name: None,
            origin: "https://a\"b".into(),
            expires_at_ms: None,
            user_handle: vec![1],
            user_name: None,
            exclude_ids: vec![],
            algorithms: vec![],
            extensions: CreationExtensions::default(),
        };
        let json = c.client_data_json();
        assert_eq!(
            json,
            r#"{"type":"webauthn.create","challenge":"abc_-","origin":"https://a\"b","crossOrigin":false}"#
        );
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["origin"], "https://a\"b");
    }

    #[test]
    fn request_id_only_on_call_errors() {
        let e = IdpError::Call {
            idp: "x".into(),
            operation: "delete",
            status: Some(403),
            request_id: Some("rid".into()),
            message: "no".into(),
        };
        assert_eq!(e.request_id(), Some("rid"));
        assert!(e.to_string().contains("HTTP 403"));
        let p = IdpError::Policy {
            idp: "x".into(),
            message: "blocked".into(),
        };
        assert_eq!(p.request_id(), None);
    }
}
