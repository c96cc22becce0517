//! Passkeys: a registered FIDO2 method, the creation options and the registration body.

use serde::{Deserialize, Serialize};

use super::{null_as_default, parse_json, parse_utc, WireError};

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
    /// When the passkey last signed in (beta only; `None` on v1.0 and for a passkey
    /// never used), ISO 8601.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used_date_time: Option<String>,
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
