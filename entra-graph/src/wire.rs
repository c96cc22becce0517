//! Wire types: the JSON shapes Microsoft Graph sends and accepts for passkeys.
//!
//! Decoding is lenient where Graph is known to vary (unknown fields are ignored, `null`
//! lists read as empty, the creation options may come wrapped in `"value"`) and strict
//! where a missing field would make the data useless (`id`, `challenge`, `rp.id`).
//! [`parse_json`] is the one entry point every response goes through: it bounds the size
//! and turns serde's message into an error naming the shape.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};

/// Largest response body we parse (creation options carry a challenge of a few KB; a
/// page of users or methods stays far below this).
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// A JSON body that could not be read as the expected shape.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The body is larger than [`MAX_BODY_BYTES`].
    #[error("{shape}: body of {len} bytes exceeds the {MAX_BODY_BYTES} allowed")]
    TooLarge {
        /// The shape we expected.
        shape: &'static str,
        /// Its length.
        len: usize,
    },
    /// The body is not JSON of the expected shape.
    #[error("{shape}: {reason}")]
    Shape {
        /// The shape we expected.
        shape: &'static str,
        /// serde's description of the mismatch (field and position).
        reason: String,
    },
}

/// Parses a JSON body as `T`, naming `shape` in any error.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8], shape: &'static str) -> Result<T, WireError> {
    if bytes.len() > MAX_BODY_BYTES {
        return Err(WireError::TooLarge {
            shape,
            len: bytes.len(),
        });
    }
    serde_json::from_slice(bytes).map_err(|e| WireError::Shape {
        shape,
        reason: e.to_string(),
    })
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fraction][Z|+00:00]` (UTC) as Graph writes it.
pub fn parse_utc(s: &str) -> Option<std::time::SystemTime> {
    let s = s.trim();
    let s = s
        .strip_suffix('Z')
        .or_else(|| s.strip_suffix("+00:00"))
        .unwrap_or(s);
    let (date, time) = s.split_once('T')?;
    let mut d = date.split('-');
    let (y, m, day) = (
        d.next()?.parse::<i64>().ok()?,
        d.next()?.parse::<i64>().ok()?,
        d.next()?.parse::<i64>().ok()?,
    );
    if d.next().is_some() || !(1..=12).contains(&m) || !(1..=31).contains(&day) {
        return None;
    }
    let time = time.split('.').next()?;
    let mut t = time.split(':');
    let (hh, mm, ss) = (
        t.next()?.parse::<u64>().ok()?,
        t.next()?.parse::<u64>().ok()?,
        t.next()?.parse::<u64>().ok()?,
    );
    if t.next().is_some() || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = u64::try_from(days).ok()?.checked_mul(86_400)? + hh * 3600 + mm * 60 + ss;
    std::time::UNIX_EPOCH.checked_add(std::time::Duration::from_secs(secs))
}

fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// One page of an OData collection: `value` plus the paging and context annotations.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound(deserialize = "T: Deserialize<'de>", serialize = "T: Serialize"))]
pub struct Page<T> {
    /// `@odata.context`: the metadata URL describing the collection.
    #[serde(
        rename = "@odata.context",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub context: Option<String>,
    /// `@odata.nextLink`: absolute URL of the next page, absent on the last page.
    #[serde(
        rename = "@odata.nextLink",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub next_link: Option<String>,
    /// The items of this page.
    #[serde(default = "Vec::new", deserialize_with = "null_as_default")]
    pub value: Vec<T>,
}

/// How strongly a registered key is attested.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum AttestationLevel {
    /// The attestation was verified.
    Attested,
    /// No (verifiable) attestation.
    NotAttested,
    /// A value this library does not know yet.
    #[serde(other)]
    UnknownFutureValue,
}

/// Whether a passkey is bound to one device or synced (v1.0 only).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum PasskeyType {
    /// Bound to one authenticator (security keys).
    DeviceBound,
    /// Synced between devices by a provider.
    Synced,
    /// A value this library does not know yet.
    #[serde(other)]
    UnknownFutureValue,
}

/// `microsoft.graph.fido2AuthenticationMethod`: one passkey registered for a user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Fido2Method {
    /// `@odata.type` when Graph includes it.
    #[serde(
        rename = "@odata.type",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub odata_type: Option<String>,
    /// Method id: the credential id in base64url with a padding digit. Opaque for URLs.
    pub id: String,
    /// Display name given at registration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// When it was registered (ISO 8601).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_date_time: Option<String>,
    /// The authenticator's AAGUID (lower-case, hyphenated).
    #[serde(rename = "aaGuid", default, skip_serializing_if = "Option::is_none")]
    pub aa_guid: Option<String>,
    /// Manufacturer-assigned model, from metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Attestation certificates (base64 DER).
    #[serde(default, deserialize_with = "null_as_default")]
    pub attestation_certificates: Vec<String>,
    /// Attestation level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attestation_level: Option<AttestationLevel>,
    /// Device-bound or synced (v1.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passkey_type: Option<PasskeyType>,
}

/// `webauthnCredentialCreationOptions`: what `creationOptions` returns.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreationOptions {
    /// When the challenge stops being accepted (ISO 8601 UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub challenge_timeout_date_time: Option<String>,
    /// The WebAuthn `PublicKeyCredentialCreationOptions`.
    pub public_key: PublicKeyCreationOptions,
}

impl CreationOptions {
    /// When the challenge expires, from `challengeTimeoutDateTime` (`None` when absent
    /// or not an ISO 8601 UTC time).
    pub fn challenge_expiry(&self) -> Option<std::time::SystemTime> {
        parse_utc(self.challenge_timeout_date_time.as_deref()?)
    }

    /// True when the challenge has expired at `now` (a registration would be refused:
    /// the key must be reissued). Unknown expiry counts as not expired.
    pub fn is_expired(&self, now: std::time::SystemTime) -> bool {
        self.challenge_expiry().is_some_and(|e| now >= e)
    }

    /// Parses a creation-options response, accepting both the real shape and the
    /// documented one wrapped in `"value"`.
    pub fn from_json(bytes: &[u8]) -> Result<Self, WireError> {
        #[derive(Deserialize)]
        struct Wrapped {
            value: CreationOptions,
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            Plain(CreationOptions),
            Wrapped(Wrapped),
        }
        const SHAPE: &str = "webauthnCredentialCreationOptions";
        // Try the plain shape first so its error (the common case) is the one reported.
        match parse_json::<CreationOptions>(bytes, SHAPE) {
            Ok(v) => Ok(v),
            Err(first) => match parse_json::<Either>(bytes, SHAPE) {
                Ok(Either::Plain(v)) | Ok(Either::Wrapped(Wrapped { value: v })) => Ok(v),
                Err(_) => Err(first),
            },
        }
    }
}

/// WebAuthn `PublicKeyCredentialCreationOptions` as Graph serialises it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PublicKeyCreationOptions {
    /// The challenge, base64url without padding (opaque, several KB).
    pub challenge: String,
    /// Timeout in milliseconds (0 has been seen).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
    /// Attestation conveyance (`direct`, `none`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attestation: Option<String>,
    /// The relying party.
    pub rp: RelyingParty,
    /// The user the credential is for.
    pub user: WebauthnUser,
    /// Acceptable algorithms, in order of preference.
    #[serde(default, deserialize_with = "null_as_default")]
    pub pub_key_cred_params: Vec<CredentialParameter>,
    /// Credentials already registered for the user.
    #[serde(default, deserialize_with = "null_as_default")]
    pub exclude_credentials: Vec<CredentialDescriptor>,
    /// Authenticator requirements.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authenticator_selection: Option<AuthenticatorSelection>,
    /// Requested extensions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extensions: Option<CreationExtensions>,
}

/// `rp` of the creation options.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelyingParty {
    /// RP id (`login.microsoft.com` for workforce tenants).
    pub id: String,
    /// RP name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// `user` of the creation options.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebauthnUser {
    /// User handle, base64url.
    pub id: String,
    /// Account name (UPN).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

/// One entry of `pubKeyCredParams`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialParameter {
    /// Always `public-key`.
    #[serde(rename = "type")]
    pub kind: String,
    /// COSE algorithm identifier.
    pub alg: i64,
}

/// One entry of `excludeCredentials`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialDescriptor {
    /// Credential id (base64url with padding digit, or standard base64: decode leniently).
    pub id: String,
    /// Always `public-key`.
    #[serde(rename = "type", default)]
    pub kind: String,
    /// Transports hint.
    #[serde(default, deserialize_with = "null_as_default")]
    pub transports: Vec<String>,
}

/// `authenticatorSelection` of the creation options.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthenticatorSelection {
    /// `cross-platform` or `platform`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authenticator_attachment: Option<String>,
    /// Discoverable credential required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_resident_key: Option<bool>,
    /// `required`, `preferred` or `discouraged`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_verification: Option<String>,
}

/// `extensions` of the creation options (known members; others are ignored).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreationExtensions {
    /// Ask for the hmac-secret extension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hmac_create_secret: Option<bool>,
    /// Fail if credProtect cannot be honoured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enforce_credential_protection_policy: Option<bool>,
    /// credProtect policy name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_protection_policy: Option<String>,
}

/// The registration body: `POST .../fido2Methods`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegistrationBody {
    /// Display name (1-30 characters).
    pub display_name: String,
    /// The WebAuthn credential.
    pub public_key_credential: PublicKeyCredential,
}

/// `publicKeyCredential` of the registration body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PublicKeyCredential {
    /// Credential id, base64url without padding.
    pub id: String,
    /// The attestation response.
    pub response: AttestationResponse,
    /// Client extension outputs (we send an empty object).
    #[serde(default)]
    pub client_extension_results: ClientExtensionResults,
}

/// Client extension results; always empty in what we send.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientExtensionResults {}

/// `response` of the registration body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttestationResponse {
    /// clientDataJSON, base64url without padding.
    #[serde(rename = "clientDataJSON")]
    pub client_data_json: String,
    /// CBOR attestation object, base64url without padding.
    pub attestation_object: String,
}

/// `microsoft.graph.user` (the members we use).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    /// Object id (GUID).
    pub id: String,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// User principal name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_principal_name: Option<String>,
    /// Mail address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mail: Option<String>,
    /// Given name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    /// Surname.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub surname: Option<String>,
    /// Whether sign-in is enabled (only when selected).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_enabled: Option<bool>,
}

/// A `directoryObject` from a group's `members` (users, groups, devices, ...).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryObject {
    /// `@odata.type`, e.g. `#microsoft.graph.user`.
    #[serde(
        rename = "@odata.type",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub odata_type: Option<String>,
    /// Object id.
    pub id: String,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// UPN (users only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_principal_name: Option<String>,
    /// Mail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mail: Option<String>,
}

impl DirectoryObject {
    /// True when this member is a user.
    pub fn is_user(&self) -> bool {
        self.odata_type.as_deref() == Some("#microsoft.graph.user")
    }
}

/// `state` of an authentication method configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum MethodState {
    /// The method may be used.
    Enabled,
    /// The method is off for the tenant.
    Disabled,
    /// A value this library does not know yet.
    #[serde(other)]
    UnknownFutureValue,
}

/// `enforcementType` of key restrictions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum EnforcementType {
    /// Only the listed AAGUIDs are allowed.
    Allow,
    /// The listed AAGUIDs are blocked.
    Block,
    /// A value this library does not know yet.
    #[serde(other)]
    UnknownFutureValue,
}

/// `fido2KeyRestrictions`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyRestrictions {
    /// Whether the list is enforced.
    #[serde(default)]
    pub is_enforced: bool,
    /// Allow or block list.
    pub enforcement_type: EnforcementType,
    /// The AAGUIDs.
    #[serde(default, deserialize_with = "null_as_default")]
    pub aa_guids: Vec<String>,
}

/// `attestationEnforcement` of a passkey profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum AttestationEnforcement {
    /// Attestation not checked.
    Disabled,
    /// Attestation required at registration.
    RegistrationOnly,
    /// A value this library does not know yet.
    #[serde(other)]
    UnknownFutureValue,
}

/// One `passkeyProfiles` entry of the FIDO2 policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PasskeyProfile {
    /// Profile id.
    pub id: String,
    /// Profile name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Comma-separated passkey types allowed (`deviceBound,synced`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passkey_types: Option<String>,
    /// Attestation enforcement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attestation_enforcement: Option<AttestationEnforcement>,
    /// AAGUID restrictions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_restrictions: Option<KeyRestrictions>,
}

/// One `includeTargets`/`excludeTargets` entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyTarget {
    /// `group` or `user`.
    #[serde(default)]
    pub target_type: String,
    /// Group id or `all_users`.
    pub id: String,
    /// Whether registration is required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_registration_required: Option<bool>,
    /// Ids of the passkey profiles that apply to this target (include targets of a
    /// policy with passkey profiles; empty means the default profile).
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub allowed_passkey_profiles: Vec<String>,
}

/// `fido2AuthenticationMethodConfiguration`: the tenant's FIDO2 method policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Fido2Policy {
    /// `@odata.context` when present.
    #[serde(
        rename = "@odata.context",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub context: Option<String>,
    /// `@odata.type` when present.
    #[serde(
        rename = "@odata.type",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub odata_type: Option<String>,
    /// Always `Fido2`.
    pub id: String,
    /// Enabled or disabled.
    pub state: MethodState,
    /// Self-service registration allowed (required for v1.0 provisioning).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_self_service_registration_allowed: Option<bool>,
    /// Deprecated top-level attestation switch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_attestation_enforced: Option<bool>,
    /// Deprecated top-level key restrictions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_restrictions: Option<KeyRestrictions>,
    /// Who the method is enabled for.
    #[serde(default, deserialize_with = "null_as_default")]
    pub include_targets: Vec<PolicyTarget>,
    /// Who is excluded.
    #[serde(default, deserialize_with = "null_as_default")]
    pub exclude_targets: Vec<PolicyTarget>,
    /// Passkey profiles (newer, group-based).
    #[serde(default, deserialize_with = "null_as_default")]
    pub passkey_profiles: Vec<PasskeyProfile>,
    /// Id of the non-deletable baseline profile among `passkeyProfiles`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_passkey_profile: Option<String>,
}

/// An OData error body: `{"error": {...}}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ODataErrorBody {
    /// The error.
    pub error: ODataError,
}

/// The `error` member of an OData error body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ODataError {
    /// Machine-readable code, e.g. `Authorization_RequestDenied`.
    #[serde(default)]
    pub code: String,
    /// Human-readable message (surface verbatim).
    #[serde(default)]
    pub message: String,
    /// Request ids and date.
    #[serde(default, alias = "innererror", skip_serializing_if = "Option::is_none")]
    pub inner_error: Option<InnerError>,
}

/// `innerError` of an OData error.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InnerError {
    /// When it happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    /// Server request id.
    #[serde(
        rename = "request-id",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub request_id: Option<String>,
    /// Echo of our `client-request-id`.
    #[serde(
        rename = "client-request-id",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub client_request_id: Option<String>,
}

/// OAuth 2.0 token response of the Microsoft identity platform.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenResponse {
    /// `Bearer`.
    #[serde(default)]
    pub token_type: String,
    /// Lifetime in seconds.
    pub expires_in: u64,
    /// The access token (secret).
    pub access_token: String,
}

impl Drop for TokenResponse {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.access_token);
    }
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field("access_token", &"<redacted>")
            .finish()
    }
}

/// OAuth 2.0 error response of the token endpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenErrorResponse {
    /// OAuth error, e.g. `invalid_client`.
    pub error: String,
    /// Description, starting with an `AADSTS` code.
    #[serde(default)]
    pub error_description: String,
    /// Numeric AADSTS codes.
    #[serde(default, deserialize_with = "null_as_default")]
    pub error_codes: Vec<u64>,
    /// Trace id (request id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    /// Correlation id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
}

/// One request inside a JSON `$batch`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchRequestItem {
    /// Caller-chosen id, unique in the batch.
    pub id: String,
    /// HTTP method.
    pub method: String,
    /// URL relative to the version root, e.g. `/users/{id}/authentication/fido2Methods`.
    pub url: String,
}

/// A JSON `$batch` request body (at most 20 requests).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchRequest {
    /// The requests.
    pub requests: Vec<BatchRequestItem>,
}

/// One response inside a `$batch` response.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BatchResponseItem {
    /// The id of the request it answers.
    pub id: String,
    /// Its HTTP status.
    pub status: u16,
    /// Its headers (e.g. `Retry-After`).
    #[serde(default, deserialize_with = "null_as_default")]
    pub headers: std::collections::BTreeMap<String, String>,
    /// Its JSON body, if any, as JSON text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<JsonText>,
}

/// A JSON value kept as its text: the body of one `$batch` response, whose shape depends
/// on the request it answers. Read it with [`JsonText::parse`] (or [`JsonText::as_str`]).
///
/// Deserialising checks that the text is JSON; [`JsonText::new`] does too, so a
/// `JsonText` always holds one well-formed JSON value (serialised as that value, not as
/// a string).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JsonText(String);

impl JsonText {
    /// Wraps `text` after checking that it is one well-formed JSON value.
    pub fn new(text: impl Into<String>) -> Result<Self, WireError> {
        let text = text.into();
        if text.len() > MAX_BODY_BYTES {
            return Err(WireError::TooLarge {
                shape: "JSON text",
                len: text.len(),
            });
        }
        serde_json::from_str::<serde::de::IgnoredAny>(&text).map_err(|e| WireError::Shape {
            shape: "JSON text",
            reason: e.to_string(),
        })?;
        Ok(JsonText(text))
    }

    /// Reads JSON bytes (e.g. an HTTP body); `None` when they are not one JSON value.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        std::str::from_utf8(bytes)
            .ok()
            .and_then(|s| JsonText::new(s).ok())
    }

    /// The JSON text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The JSON text as bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// Parses the text as `T`, naming `shape` in any error (same rules as [`parse_json`]).
    pub fn parse<T: DeserializeOwned>(&self, shape: &'static str) -> Result<T, WireError> {
        parse_json(self.0.as_bytes(), shape)
    }

    /// Takes the text.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl Serialize for JsonText {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // Always well-formed (checked on construction): re-emit it as a JSON value.
        let v: serde_json::Value =
            serde_json::from_str(&self.0).map_err(serde::ser::Error::custom)?;
        v.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for JsonText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(deserializer)?;
        Ok(JsonText(v.to_string()))
    }
}

/// A `$batch` response body.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BatchResponse {
    /// The responses, in any order.
    #[serde(default, deserialize_with = "null_as_default")]
    pub responses: Vec<BatchResponseItem>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_with_null_value_is_empty() {
        let p: Page<User> = parse_json(br#"{"value":null}"#, "page").unwrap();
        assert!(p.value.is_empty());
        assert_eq!(p.next_link, None);
    }

    #[test]
    fn method_requires_id() {
        let e = parse_json::<Fido2Method>(br#"{"displayName":"x"}"#, "fido2Method").unwrap_err();
        match e {
            WireError::Shape { shape, reason } => {
                assert_eq!(shape, "fido2Method");
                assert!(reason.contains("id"), "{reason}");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn unknown_enum_values_are_kept_as_future_value() {
        let m: Fido2Method = parse_json(
            br#"{"id":"a","attestationLevel":"somethingNew","passkeyType":"x"}"#,
            "m",
        )
        .unwrap();
        assert_eq!(
            m.attestation_level,
            Some(AttestationLevel::UnknownFutureValue)
        );
        assert_eq!(m.passkey_type, Some(PasskeyType::UnknownFutureValue));
    }

    #[test]
    fn creation_options_plain_and_wrapped() {
        let plain = br#"{"publicKey":{"challenge":"YQ","rp":{"id":"login.microsoft.com"},"user":{"id":"dQ"}}}"#;
        let wrapped = br#"{"value":{"publicKey":{"challenge":"YQ","rp":{"id":"login.microsoft.com"},"user":{"id":"dQ"}}}}"#;
        let a = CreationOptions::from_json(plain).unwrap();
        let b = CreationOptions::from_json(wrapped).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.public_key.rp.id, "login.microsoft.com");
        let err = CreationOptions::from_json(br#"{"publicKey":{"rp":{"id":"x"}}}"#).unwrap_err();
        assert!(err.to_string().contains("challenge"), "{err}");
    }

    #[test]
    fn utc_times_parse() {
        use std::time::{Duration, UNIX_EPOCH};
        assert_eq!(
            parse_utc("2024-08-14T16:29:58Z"),
            Some(UNIX_EPOCH + Duration::from_secs(1_723_652_998))
        );
        assert_eq!(
            parse_utc("2024-08-14T16:29:58.1234567+00:00"),
            Some(UNIX_EPOCH + Duration::from_secs(1_723_652_998))
        );
        assert_eq!(
            parse_utc("2000-02-29T00:00:00"),
            Some(UNIX_EPOCH + Duration::from_secs(951_782_400))
        );
        for bad in [
            "",
            "2024-13-01T00:00:00Z",
            "2024-08-14",
            "x-y-zTa:b:c",
            "1960-01-01T00:00:00Z",
        ] {
            assert_eq!(parse_utc(bad), None, "{bad}");
        }
        let mut o = CreationOptions::from_json(
            br#"{"challengeTimeoutDateTime":"2024-08-14T16:29:58Z","publicKey":{"challenge":"YQ","rp":{"id":"r"},"user":{"id":"dQ"}}}"#,
        )
        .unwrap();
        let exp = o.challenge_expiry().unwrap();
        assert!(!o.is_expired(exp - Duration::from_secs(1)));
        assert!(o.is_expired(exp));
        o.challenge_timeout_date_time = None;
        assert!(!o.is_expired(exp));
    }

    #[test]
    fn batch_body_is_json_text_of_ours() {
        let r: BatchResponse = parse_json(
            br#"{"responses":[{"id":"1","status":200,"body":{"value":[{"id":"a"}]}},{"id":"2","status":204}]}"#,
            "$batch response",
        )
        .unwrap();
        let body: &JsonText = r.responses[0].body.as_ref().unwrap();
        let page: Page<Fido2Method> = body.parse("page").unwrap();
        assert_eq!(page.value[0].id, "a");
        assert_eq!(body.as_str(), r#"{"value":[{"id":"a"}]}"#);
        assert_eq!(r.responses[1].body, None);
        // Serialised back as a JSON value, not as a string holding JSON.
        let out = serde_json::to_string(&r.responses[0]).unwrap();
        assert!(out.contains(r#""body":{"value":[{"id":"a"}]}"#), "{out}");
        assert!(JsonText::new("{not json").is_err());
        assert!(JsonText::new("{} {}").is_err());
        assert_eq!(JsonText::from_slice(b"[1,2]").unwrap().as_bytes(), b"[1,2]");
        assert_eq!(JsonText::from_slice(b"\xff"), None);
    }

    #[test]
    fn too_large_body_is_refused() {
        let big = vec![b' '; MAX_BODY_BYTES + 1];
        assert!(matches!(
            parse_json::<User>(&big, "user"),
            Err(WireError::TooLarge { .. })
        ));
    }

    #[test]
    fn token_response_debug_redacts() {
        let t = TokenResponse {
            token_type: "Bearer".into(),
            expires_in: 3599,
            access_token: "eyJsecret".into(),
        };
        assert!(!format!("{t:?}").contains("eyJsecret"));
    }
}
