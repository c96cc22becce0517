//! Microsoft Entra ID over Microsoft Graph.

use std::time::UNIX_EPOCH;

use entra_graph::ids::{decode_base64, decode_candidates, decode_lenient, encode_b64url};
use entra_graph::wire::RegistrationBody;
use entra_graph::wire::{AttestationResponse, ClientExtensionResults, PublicKeyCredential};
use entra_graph::{GraphClient, GraphError};

use super::{
    CreationChallenge, DirectoryTenant, Idp, IdpDeletion, IdpError, IdpOutcome, IdpPasskey,
    IdpUser, RegistrationRequest,
};

/// Whether a 400 answer to a registration says its challenge expired.
fn is_expired_challenge(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("challenge") && m.contains("expired")
}

/// Entra's fixed challenge timeout when none is asked for (minutes).
const DEFAULT_TIMEOUT_MINUTES: u32 = 5;

/// Entra ID through a [`GraphClient`] (blocking; the client runs its own runtime).
#[derive(Debug)]
pub struct EntraIdp {
    name: String,
    rp_id: String,
    client: GraphClient,
}

impl EntraIdp {
    /// A connector named `name` (the connection name templates use) over `client`.
    pub fn new(name: impl Into<String>, client: GraphClient) -> Self {
        EntraIdp {
            name: name.into(),
            rp_id: "login.microsoft.com".into(),
            client,
        }
    }

    /// Sets the RP id passkeys are made for when a template pins none.
    pub fn with_rp_id(mut self, rp_id: impl Into<String>) -> Self {
        self.rp_id = rp_id.into();
        self
    }

    /// The Graph client.
    pub fn client(&self) -> &GraphClient {
        &self.client
    }

    pub(super) fn call_error(&self, operation: &'static str, e: GraphError) -> IdpError {
        match e {
            GraphError::Preflight(p) => IdpError::Policy {
                idp: self.name.clone(),
                message: p.to_string(),
            },
            GraphError::Api {
                status: 400,
                ref message,
                ref request_id,
                ..
            } if is_expired_challenge(message) => IdpError::ChallengeExpired {
                idp: self.name.clone(),
                request_id: request_id.clone(),
                message: message.clone(),
            },
            GraphError::Unsendable { .. } => IdpError::Unsendable {
                idp: self.name.clone(),
                operation,
                message: e.to_string(),
            },
            other => IdpError::Call {
                idp: self.name.clone(),
                operation,
                status: other.status(),
                request_id: other.request_id().map(str::to_owned),
                message: other.to_string(),
            },
        }
    }

    /// The connection's name.
    pub(super) fn connection(&self) -> &str {
        &self.name
    }

    /// The Graph base URL of the connection.
    pub(super) fn graph_base(&self) -> String {
        self.client.config().graph_base.clone()
    }

    fn bad(&self, field: &'static str, message: impl Into<String>) -> IdpError {
        IdpError::BadAnswer {
            idp: self.name.clone(),
            field,
            message: message.into(),
        }
    }

    /// The owned challenge of Graph's creation options.
    pub(super) fn challenge_of(
        &self,
        options: &entra_graph::wire::CreationOptions,
        origin: Option<&str>,
    ) -> Result<CreationChallenge, IdpError> {
        let pk = &options.public_key;
        // The user handle is plain base64url (the padding-digit form is only for ids).
        let user_handle = decode_base64(&pk.user.id, "publicKey.user.id")
            .map_err(|e| self.bad("publicKey.user.id", e.to_string()))?;
        let mut exclude_ids = Vec::with_capacity(pk.exclude_credentials.len());
        for c in &pk.exclude_credentials {
            // Plain on v1.0, a padding digit on beta, and the two forms overlap: exclude
            // every reading (an extra id the key does not hold excludes nothing).
            exclude_ids.extend(
                decode_candidates(&c.id, "publicKey.excludeCredentials.id")
                    .map_err(|e| self.bad("publicKey.excludeCredentials.id", e.to_string()))?,
            );
        }
        let expires_at_ms = options.challenge_expiry().and_then(|t| {
            t.duration_since(UNIX_EPOCH)
                .ok()
                .and_then(|d| u64::try_from(d.as_millis()).ok())
        });
        Ok(CreationChallenge {
            challenge: pk.challenge.clone(),
            rp_id: pk.rp.id.clone(),
            rp_name: pk.rp.name.clone(),
            origin: origin
                .map(str::to_owned)
                .unwrap_or_else(|| format!("https://{}", pk.rp.id)),
            expires_at_ms,
            user_handle,
            user_name: pk.user.name.clone(),
            exclude_ids,
            algorithms: pk.pub_key_cred_params.iter().map(|p| p.alg).collect(),
            extensions: creation_extensions(pk.extensions.as_ref()),
        })
    }

    /// The Graph body registering `request`.
    pub(super) fn registration_body(request: &RegistrationRequest) -> RegistrationBody {
        RegistrationBody {
            display_name: request.display_name.clone(),
            public_key_credential: PublicKeyCredential {
                id: encode_b64url(&request.credential_id),
                response: AttestationResponse {
                    client_data_json: encode_b64url(&request.client_data_json),
                    attestation_object: encode_b64url(&request.attestation_object),
                },
                client_extension_results: ClientExtensionResults::default(),
            },
        }
    }
}

fn idp_user(u: entra_graph::wire::User) -> IdpUser {
    IdpUser {
        id: u.id,
        user_principal_name: u.user_principal_name,
        display_name: u.display_name,
        given_name: u.given_name,
        surname: u.surname,
        mail: u.mail,
        account_enabled: u.account_enabled,
    }
}

impl Idp for EntraIdp {
    fn name(&self) -> &str {
        &self.name
    }

    fn delegated(&self) -> Option<&dyn super::DelegatedRegistrar> {
        Some(self)
    }

    fn default_rp_id(&self) -> String {
        self.rp_id.clone()
    }

    fn network(&self) -> Option<entra_graph::net::NetworkOptions> {
        Some(self.client.config().network.clone())
    }

    fn directory_tenant(&self) -> Option<DirectoryTenant> {
        let c = self.client.config();
        Some(DirectoryTenant {
            tenant_id: c.tenant.clone(),
            issuer: format!("{}/{}/v2.0", c.login_base.trim_end_matches('/'), c.tenant),
        })
    }

    fn bulk_started(&self) {
        self.client.begin_job();
    }

    fn bulk_ended(&self) {
        self.client.end_job();
    }

    fn bulk_users(&self, users: &[String]) {
        self.client.expect_users(users);
    }

    fn user(&self, user: &str) -> Result<IdpUser, IdpError> {
        let u = self
            .client
            .user(user)
            .map_err(|e| self.call_error("user", e))?;
        Ok(idp_user(u))
    }

    fn check_connection(&self) -> Result<u64, IdpError> {
        let report = self
            .client
            .check_connection()
            .map_err(|e| self.call_error("connection check", e))?;
        Ok(u64::try_from(report.elapsed.as_millis()).unwrap_or(u64::MAX))
    }

    fn search_users(&self, prefix: &str, top: u32) -> Result<Vec<IdpUser>, IdpError> {
        Ok(self
            .client
            .search_users(prefix, top)
            .map_err(|e| self.call_error("user search", e))?
            .into_iter()
            .map(idp_user)
            .collect())
    }

    fn preflight(&self, user: &str, aaguid: &[u8; 16], attested: bool) -> Result<(), IdpError> {
        let text = entra_graph::policy::format_aaguid(aaguid);
        self.client
            .preflight(user, &text, attested)
            .map_err(|e| self.call_error("preflight", e))
    }

    fn creation_challenge(
        &self,
        user: &str,
        timeout_minutes: Option<u32>,
        origin: Option<&str>,
    ) -> Result<CreationChallenge, IdpError> {
        let timeout = timeout_minutes.filter(|m| *m != DEFAULT_TIMEOUT_MINUTES);
        let options = self
            .client
            .creation_options(user, timeout)
            .map_err(|e| self.call_error("creationOptions", e))?;
        self.challenge_of(&options, origin)
    }

    fn register(&self, user: &str, request: &RegistrationRequest) -> Result<IdpOutcome, IdpError> {
        let body = Self::registration_body(request);
        let r = self
            .client
            .register(user, &body)
            .map_err(|e| self.call_error("register", e))?;
        Ok(IdpOutcome {
            method_id: r.method.id,
            request_id: r.request_id,
        })
    }

    fn delete(&self, user: &str, method_id: &str) -> Result<IdpDeletion, IdpError> {
        match self.client.delete_method(user, method_id) {
            Ok(d) => Ok(IdpDeletion {
                request_id: d.request_id,
                already_gone: d.already_gone,
            }),
            Err(e) => Err(self.call_error("delete", e)),
        }
    }

    fn phishing_resistant_left(
        &self,
        user: &str,
        method_id: &str,
    ) -> Result<Option<usize>, IdpError> {
        match self.client.phishing_resistant_left(user, method_id) {
            Ok(n) => Ok(Some(n)),
            // Without UserAuthenticationMethod.Read.All the answer is unknown, not an error.
            Err(e) if e.status() == Some(403) => {
                tracing::warn!(
                    permission = entra_graph::PERMISSION_METHODS_READ,
                    "cannot tell whether this is the user's last phishing-resistant method"
                );
                Ok(None)
            }
            Err(e) => Err(self.call_error("authentication methods", e)),
        }
    }

    fn find_user_by(&self, property: &str, value: &str) -> Result<Option<IdpUser>, IdpError> {
        let key = match property {
            "employeeId" => entra_graph::UserKey::EmployeeId,
            "userPrincipalName" => entra_graph::UserKey::UserPrincipalName,
            "onPremisesImmutableId" => entra_graph::UserKey::OnPremisesImmutableId,
            _ => return Ok(None),
        };
        Ok(self
            .client
            .find_user(key, value)
            .map_err(|e| self.call_error("user lookup", e))?
            .map(idp_user))
    }

    fn temporary_pass(
        &self,
        user: &str,
        lifetime_minutes: u32,
        usable_once: bool,
    ) -> Result<Option<super::TemporaryPass>, IdpError> {
        let tap = self
            .client
            .create_temporary_access_pass(user, lifetime_minutes, usable_once)
            .map_err(|e| self.call_error("temporaryAccessPassMethods", e))?;
        let pass = tap
            .temporary_access_pass
            .as_ref()
            .map(|s| zeroize::Zeroizing::new(s.expose().to_owned()))
            .ok_or_else(|| self.bad("temporaryAccessPass", "the answer holds no pass"))?;
        Ok(Some(super::TemporaryPass {
            method_id: tap.id,
            pass,
            lifetime_minutes: tap.lifetime_in_minutes.unwrap_or(lifetime_minutes),
        }))
    }

    fn leavers(&self, resume: Option<&str>) -> Result<Option<super::Leavers>, IdpError> {
        let d = self
            .client
            .users_delta(resume)
            .map_err(|e| self.call_error("users/delta", e))?;
        Ok(Some(super::Leavers {
            user_ids: d.leavers(),
            resume: d.delta_link,
        }))
    }

    fn provenance_support(&self) -> Result<(), String> {
        super::provenance::entra_support(&self.name, self.client.config().version)
    }

    fn record_provenance(
        &self,
        user: &str,
        method_id: &str,
        request: &super::ProvenanceRequest,
    ) -> Result<super::ProvenanceRecorded, IdpError> {
        self.entra_record_provenance(user, method_id, request)
    }

    fn challenge_limit(&self) -> Option<super::ChallengeLimit> {
        Some(super::graph2026::entra_challenge_limit(
            self.client.config().version,
        ))
    }

    fn sign_in_blocks(
        &self,
        user_id: &str,
        aaguids: &[[u8; 16]],
    ) -> Result<Option<Vec<Option<super::SignInBlocked>>>, IdpError> {
        super::graph2026::entra_sign_in_blocks(self, user_id, aaguids)
    }

    fn has_passkey(&self, user: &str, method_id: &str) -> Result<Option<bool>, IdpError> {
        match self.client.get_method(user, method_id) {
            Ok(_) => Ok(Some(true)),
            // The method is not there (a 404 naming the user is an error: it proves
            // nothing about the passkey).
            Err(GraphError::Api {
                status: 404,
                ref code,
                ..
            }) if code != "Request_ResourceNotFound" => Ok(Some(false)),
            Err(e) => Err(self.call_error("get", e)),
        }
    }

    fn sms_readiness(
        &self,
        group: Option<&str>,
    ) -> Result<Option<super::ReadinessReport>, IdpError> {
        let r = self
            .client
            .sms_readiness(group)
            .map_err(|e| self.call_error("readiness report", e))?;
        let user = |u: entra_graph::ReadinessUser| super::ReadinessUser {
            id: u.id,
            upn: u.user_principal_name,
            display_name: u.display_name,
            methods: u.methods,
        };
        Ok(Some(super::ReadinessReport {
            connection: self.name.clone(),
            group: group.map(str::to_owned),
            checked: r.checked,
            not_ready: r.not_ready.into_iter().map(user).collect(),
            guests: r.guests.into_iter().map(user).collect(),
            guest_reason: entra_graph::GUEST_REFUSAL.to_owned(),
            failed: r.failed,
        }))
    }

    fn revoke_sign_in_sessions(&self, user: &str) -> Result<bool, IdpError> {
        self.client
            .revoke_sign_in_sessions(user)
            .map_err(|e| self.call_error("revokeSignInSessions", e))?;
        Ok(true)
    }

    fn list(&self, user: &str) -> Result<Vec<IdpPasskey>, IdpError> {
        let methods = self
            .client
            .list_methods(user)
            .map_err(|e| self.call_error("list", e))?;
        Ok(methods
            .into_iter()
            .map(|m| {
                // Method ids are written with a padding digit (Entra's form first).
                let primary = decode_lenient(&m.id, "id").ok();
                let other_credential_ids = decode_candidates(&m.id, "id")
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|c| Some(c) != primary.as_ref())
                    .collect();
                IdpPasskey {
                    credential_id: primary,
                    other_credential_ids,
                    method_id: m.id,
                    display_name: m.display_name,
                    aaguid: m.aa_guid,
                    last_used: m.last_used_date_time,
                    passkey_type: m.passkey_type.map(|t| {
                        match t {
                            entra_graph::wire::PasskeyType::DeviceBound => "deviceBound",
                            entra_graph::wire::PasskeyType::Synced => "synced",
                            entra_graph::wire::PasskeyType::UnknownFutureValue => {
                                "unknownFutureValue"
                            }
                        }
                        .to_owned()
                    }),
                    created: m.created_date_time,
                    model: m.model,
                }
            })
            .collect())
    }
}

/// Entra's creation `extensions` as the engine carries them to the key (an unknown
/// credProtect policy name is ignored, as WebAuthn clients do).
fn creation_extensions(
    e: Option<&entra_graph::wire::CreationExtensions>,
) -> super::CreationExtensions {
    let Some(e) = e else {
        return super::CreationExtensions::default();
    };
    let policy = e.credential_protection_policy.as_deref();
    let cred_protect = policy.and_then(super::CredProtectPolicy::from_webauthn);
    if let (Some(name), None) = (policy, cred_protect) {
        tracing::warn!(policy = name, "unknown credentialProtectionPolicy ignored");
    }
    super::CreationExtensions {
        hmac_create_secret: e.hmac_create_secret == Some(true),
        cred_protect,
        enforce_cred_protect: e.enforce_credential_protection_policy == Some(true),
    }
}
