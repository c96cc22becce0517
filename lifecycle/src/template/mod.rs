//! Passkey and credential templates, loaded from TOML or JSON and validated as a whole.
//!
//! A template document holds the passkey templates (one per IdP, keyed by name) and one
//! credential template that names the passkey templates to issue to (docs/lifecycle.md §2):
//!
//! ```
//! use lifecycle::template::TemplateSet;
//!
//! let set = TemplateSet::from_toml_str(r#"
//! [passkey.entra]
//! idp = { connection = "contoso", graph_api_version = "beta" }
//! display_name = "{displayName}"
//! challenge_timeout_minutes = 1440
//!
//! [credential]
//! name = "standard"
//! passkey_templates = ["entra"]
//! user_assignment = { directory = "contoso" }
//! "#).unwrap();
//! assert_eq!(set.passkey["entra"].challenge_timeout(), 1440);
//! ```
//!
//! Validation has two stages. [`TemplateSet::validate`] (run by every loader) checks the
//! template on its own and reports every problem at once. [`CredentialTemplate::check_device`]
//! checks it against the facts of the key being issued ([`DeviceFacts`], filled from
//! `getInfo` by the engine). Both name each problem's field as a dotted path.

mod device;
mod display_name;
mod validate;

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

pub use device::{DeviceFacts, DeviceOptions, KeyTransport};
pub use display_name::{render_display_name, DISPLAY_NAME_MAX_CHARS, PLACEHOLDERS};

/// Shortest challenge timeout, in minutes (also the default and Graph v1.0's fixed value).
pub const CHALLENGE_TIMEOUT_MIN_MINUTES: i64 = 5;
/// Longest challenge timeout, in minutes (30 days).
pub const CHALLENGE_TIMEOUT_MAX_MINUTES: i64 = 43_200;

/// The largest `credential.fido2.min_pin_length` a template may ask for. The key is
/// issued with a random transport PIN of this many digits and keeps it until the holder
/// activates it, so a larger minimum makes the key refuse the transport PIN (CTAP 0x37)
/// and issuance impossible, although CTAP itself allows up to 63.
pub const MAX_MIN_PIN_LENGTH: u32 = 16;

/// The largest template document accepted, in bytes.
pub const MAX_TEMPLATE_BYTES: usize = 1 << 20;

/// One validation problem: the field it concerns and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Problem {
    /// Dotted path of the field, e.g. `credential.fido2.min_pin_length_rp_ids`.
    pub field: String,
    /// What is wrong, in words an operator can act on.
    pub message: String,
}

impl Problem {
    /// A problem for `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Problem {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// The serialisation a template document is written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Format {
    /// TOML.
    Toml,
    /// JSON.
    Json,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Toml => "TOML",
            Format::Json => "JSON",
        })
    }
}

/// Why a template could not be loaded or is not acceptable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TemplateError {
    /// The file could not be read.
    #[error("cannot read template file {path}: {message}")]
    Io {
        /// The file.
        path: String,
        /// The operating system's reason.
        message: String,
    },
    /// The document is larger than [`MAX_TEMPLATE_BYTES`].
    #[error("template document is {size} bytes; at most {max} are accepted")]
    TooLarge {
        /// Its size in bytes.
        size: u64,
        /// The limit.
        max: usize,
    },
    /// The file's extension says neither TOML nor JSON.
    #[error("cannot tell the format of template file {path}: use a .toml or .json extension")]
    UnknownFormat {
        /// The file.
        path: String,
    },
    /// The document names a field templates do not have (typos are not ignored).
    #[error("{format} template: unknown field `{path}`{}", position(*line, *column))]
    UnknownField {
        /// The format parsed.
        format: Format,
        /// The unknown field's name.
        field: String,
        /// Its dotted path, e.g. `credential.fido2.colour`.
        path: String,
        /// 1-based line, when the parser tells it.
        line: Option<usize>,
        /// 1-based column, when the parser tells it.
        column: Option<usize>,
    },
    /// The document is not well-formed or a value has the wrong type.
    #[error("{format} template: {message}{}", position(*line, *column))]
    Parse {
        /// The format parsed.
        format: Format,
        /// The parser's message.
        message: String,
        /// 1-based line, when the parser tells it.
        line: Option<usize>,
        /// 1-based column, when the parser tells it.
        column: Option<usize>,
    },
    /// The template parsed but breaks one or more rules; every problem is listed.
    #[error("template invalid: {}", list(.0))]
    Invalid(Vec<Problem>),
}

impl TemplateError {
    /// The problems of an [`TemplateError::Invalid`] error (empty for other kinds).
    pub fn problems(&self) -> &[Problem] {
        match self {
            TemplateError::Invalid(p) => p,
            _ => &[],
        }
    }
}

fn position(line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!(" at line {l}, column {c}"),
        (Some(l), None) => format!(" at line {l}"),
        _ => String::new(),
    }
}

fn list(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(Problem::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// The Microsoft Graph endpoint version a connection uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum GraphApiVersion {
    /// `v1.0`: the challenge timeout is fixed at 5 minutes.
    #[default]
    #[serde(rename = "v1.0")]
    V1_0,
    /// `beta`: accepts a custom challenge timeout.
    #[serde(rename = "beta")]
    Beta,
}

impl GraphApiVersion {
    /// The name used in templates and URLs.
    pub const fn as_str(self) -> &'static str {
        match self {
            GraphApiVersion::V1_0 => "v1.0",
            GraphApiVersion::Beta => "beta",
        }
    }
}

/// The kind of identity provider a connection talks to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum IdpKind {
    /// Microsoft Entra ID through Microsoft Graph.
    #[default]
    Entra,
}

/// Which IdP connection a passkey template uses.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdpConnectionRef {
    /// Name of the configured IdP connection (credentials live in host configuration).
    pub connection: String,
    /// Kind of IdP (default `entra`).
    #[serde(default)]
    pub kind: IdpKind,
    /// Graph endpoint version (default `v1.0`).
    #[serde(default)]
    pub graph_api_version: GraphApiVersion,
}

/// A passkey template: how to make and register the passkey for one IdP.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasskeyTemplate {
    /// The template's name (its key in the document; filled in on load).
    #[serde(skip)]
    pub name: String,
    /// The IdP connection to use.
    pub idp: IdpConnectionRef,
    /// Static text or a pattern with placeholders such as `{displayName}` (see
    /// [`PLACEHOLDERS`]); `{{` and `}}` are literal braces. At most 30 characters once rendered.
    pub display_name: String,
    /// Cut the rendered display name to 30 characters instead of refusing it.
    #[serde(default)]
    pub truncate_display_name: bool,
    /// Discoverable credential: always on. Shown so operators see it; `false` is refused.
    #[serde(default = "yes")]
    pub force_discoverable: bool,
    /// Pinned relying party id; unset takes what the IdP returns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rp_id: Option<String>,
    /// Pinned origin; unset takes what the IdP returns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    /// Minutes a pending registration stays valid (5-43 200, unset means 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub challenge_timeout_minutes: Option<i64>,
    /// Which keys may be issued, by their attestation (checked right after
    /// makeCredential against the engine's trust store; default `tenant`).
    #[serde(default, skip_serializing_if = "AttestationRequirement::is_default")]
    pub attestation: AttestationRequirement,
    /// After a registration, record at the IdP how the holder was verified (the
    /// operator's in-person check, or the holder's OIDC sign-in): Entra's beta identity
    /// verification event and `attestProvenance`. Off by default; needs a beta
    /// connection (docs/ENTRA.md, "Provenance").
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub record_provenance: bool,
}

/// Which keys a passkey template issues, by what their attestation proves. Whatever the
/// setting, a statement that does not verify, an authData AAGUID that differs from
/// getInfo's and a credential without user verification are refused.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum AttestationRequirement {
    /// As the tenant enforces: when the IdP's policy enforces attestation, only keys whose
    /// attestation chains to a FIDO MDS root listed for their AAGUID; otherwise any key.
    #[default]
    Tenant,
    /// Only keys whose attestation chains to an MDS root listed for their AAGUID.
    Mds,
    /// Keys whose attestation chains to an MDS root for their AAGUID or to one of the
    /// operator's extra roots (models not in MDS).
    Trusted,
    /// Any key, attested or not (unattested and non-MDS keys may be issued).
    Any,
}

impl AttestationRequirement {
    /// `tenant`, the default.
    pub fn is_default(&self) -> bool {
        *self == AttestationRequirement::Tenant
    }
}

impl PasskeyTemplate {
    /// The effective challenge timeout in minutes (the default when unset).
    pub fn challenge_timeout(&self) -> i64 {
        self.challenge_timeout_minutes
            .unwrap_or(CHALLENGE_TIMEOUT_MIN_MINUTES)
    }

    /// The effective challenge timeout in milliseconds, clamped into the allowed range.
    pub fn challenge_timeout_ms(&self) -> u64 {
        let minutes = self
            .challenge_timeout()
            .clamp(CHALLENGE_TIMEOUT_MIN_MINUTES, CHALLENGE_TIMEOUT_MAX_MINUTES);
        // In range, so the cast and product cannot overflow.
        minutes.unsigned_abs() * 60_000
    }

    /// Dotted path prefix of this template's fields.
    pub fn field_prefix(&self) -> String {
        format!("passkey.{}", self.name)
    }
}

/// Where the user a key is issued to comes from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserAssignment {
    /// The directory (IdP connection name) users are picked from.
    pub directory: String,
    /// Attributes operators search users by (default `displayName`, `userPrincipalName`).
    #[serde(default = "default_search")]
    pub search_by: Vec<String>,
}

/// Attributes a user search may use.
pub const SEARCH_ATTRIBUTES: [&str; 4] = ["displayName", "userPrincipalName", "mail", "employeeId"];

fn default_search() -> Vec<String> {
    vec!["displayName".to_owned(), "userPrincipalName".to_owned()]
}

fn yes() -> bool {
    true
}

/// Fingerprint enrolment at issuance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BioEnrollment {
    /// Fingerprints the holder must enrol at least (1-10).
    pub min_fingerprints: u32,
    /// Timeout for each sample, in milliseconds (1 000-600 000).
    pub timeout_ms: u32,
}

/// FIDO2 options applied to the key at issuance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fido2Options {
    /// Reset the FIDO2 application before issuance (only on keys resettable in place).
    #[serde(default)]
    pub reset_before_issuance: bool,
    /// Turn on CTAP 2.1 always-UV (`toggleAlwaysUv`); only on 2.1 keys.
    #[serde(default)]
    pub always_uv: bool,
    /// Enrol fingerprints; only on keys with `bioEnroll`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bio: Option<BioEnrollment>,
    /// FIDO2 PIN: always required. Shown so operators see it; `false` is refused.
    #[serde(default = "yes")]
    pub pin_required: bool,
    /// Minimum PIN length in Unicode code points (4 to [`MAX_MIN_PIN_LENGTH`], 16: the
    /// transport PIN's length), set with CTAP 2.1 `setMinPINLength`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_pin_length: Option<u32>,
    /// RP ids allowed to read the minimum PIN length (`minPinLength` extension).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub min_pin_length_rp_ids: Vec<String>,
    /// Make the key demand a new PIN on first use (CTAP 2.1 `forceChangePin`).
    #[serde(default)]
    pub force_change_pin: bool,
    /// Ask keys whose getInfo says `ep: true` (enterprise attestation enabled) for an
    /// enterprise attestation at makeCredential: `1` vendor-facilitated (the RP id must
    /// be on the key's list), `2` platform-managed. Its certificate is the key's own, so
    /// its serial is recorded as the key's identity (`attestation_certificate`). Keys
    /// without `ep` are not asked (their batch attestation is kept, as evidence only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enterprise_attestation: Option<u8>,
}

impl Default for Fido2Options {
    fn default() -> Self {
        Fido2Options {
            reset_before_issuance: false,
            always_uv: false,
            bio: None,
            pin_required: true,
            min_pin_length: None,
            min_pin_length_rp_ids: Vec::new(),
            force_change_pin: false,
            enterprise_attestation: None,
        }
    }
}

/// Per-action switches (docs/lifecycle.md §1: "update credentials at the FIDO2 IdP").
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LifecycleSwitches {
    /// At issuance, fetch creation options and make the passkeys (pending registrations).
    #[serde(default = "yes")]
    pub update_idp_on_issue: bool,
    /// At initiation (activation), send the pending registrations to the IdP.
    #[serde(default = "yes")]
    pub update_idp_on_initiate: bool,
    /// At inactivation, delete the passkeys at the IdP.
    #[serde(default = "yes")]
    pub update_idp_on_inactivate: bool,
    /// At revocation, delete the passkeys at the IdP.
    #[serde(default = "yes")]
    pub update_idp_on_revoke: bool,
    /// A failed IdP deletion cancels the revocation (else it is retried durably).
    #[serde(default)]
    pub force_idp_deletion_on_revoke: bool,
    /// Initiate right after issuance (the holder's PIN is set in the same session).
    #[serde(default)]
    pub auto_initiate_after_issuance: bool,
    /// At revocation (a lost or stolen key), once its passkeys are deleted at the IdP,
    /// sign the user out everywhere (Entra: `revokeSignInSessions`), so sessions the
    /// key opened end too. On by default.
    #[serde(default = "yes")]
    pub revoke_sign_in_sessions_on_revoke: bool,
}

impl Default for LifecycleSwitches {
    fn default() -> Self {
        LifecycleSwitches {
            update_idp_on_issue: true,
            update_idp_on_initiate: true,
            update_idp_on_inactivate: true,
            update_idp_on_revoke: true,
            force_idp_deletion_on_revoke: false,
            auto_initiate_after_issuance: false,
            revoke_sign_in_sessions_on_revoke: true,
        }
    }
}

/// Default [`OidcConfig::max_age_secs`]: 10 minutes.
pub const DEFAULT_MAX_AGE_SECS: u64 = 600;
/// Default [`SelfService::self_issue_limit`].
pub const DEFAULT_SELF_ISSUE_LIMIT: u32 = 2;

fn default_max_age() -> u64 {
    DEFAULT_MAX_AGE_SECS
}

fn default_self_issue_limit() -> u32 {
    DEFAULT_SELF_ISSUE_LIMIT
}

/// How the holder authenticates for self-service (OAuth 2.0 / OIDC).
///
/// For a directory that is an Entra connection, `issuer` must be that connection's
/// tenant's v2.0 issuer (`https://login.microsoftonline.com/{tenant}/v2.0`) and the
/// token's `tid` that tenant; any other issuer needs the explicit mapping `directory`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    /// Expected `iss` of the holder's token.
    pub issuer: String,
    /// Expected `aud` (the client id).
    pub audience: String,
    /// Where the issuer publishes its signing keys.
    pub jwks_url: String,
    /// Longest time, in seconds, since the holder signed in (the token's `auth_time`);
    /// older sign-ins are refused. Default 600 (10 minutes).
    #[serde(default = "default_max_age")]
    pub max_age_secs: u64,
    /// The sign-in must have used multi-factor authentication: `amr` contains `mfa`, or
    /// `acrs` holds one of [`OidcConfig::acrs`]. Default on.
    #[serde(default = "yes")]
    pub require_mfa: bool,
    /// Authentication context class references (Entra `acrs`, e.g. `c1`) that satisfy
    /// the MFA requirement as well.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub acrs: Vec<String>,
    /// Explicit issuer-to-directory mapping: the directory connection (the credential's
    /// `user_assignment.directory`) whose object ids this issuer's `oid` claims are. Needed
    /// for any issuer other than the directory's own Entra tenant issuer; with it the
    /// issuer is not bound to a tenant (`tid` is not checked) and `ver` may be absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory: Option<String>,
}

impl Default for OidcConfig {
    /// Empty issuer, audience and keys URL; the documented defaults for the rest.
    fn default() -> Self {
        OidcConfig {
            issuer: String::new(),
            audience: String::new(),
            jwks_url: String::new(),
            max_age_secs: DEFAULT_MAX_AGE_SECS,
            require_mfa: true,
            acrs: Vec::new(),
            directory: None,
        }
    }
}

/// Self-service permissions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SelfService {
    /// The holder may set their PIN (and activate) themself.
    #[serde(default)]
    pub pin_set_allowed: bool,
    /// The holder may unblock their PIN themself.
    #[serde(default)]
    pub pin_unblock_allowed: bool,
    /// The holder may issue a blank key to themself with this template.
    #[serde(default)]
    pub self_issuance_allowed: bool,
    /// Self-issuance binds the key to the authenticated holder (no operator assignment);
    /// needs `self_issuance_allowed`.
    #[serde(default)]
    pub issue_by_user: bool,
    /// Most keys one user may hold from self-issuance at once (keys not revoked or
    /// unregistered, whose issuance was audited as `self_issue`). Default 2.
    #[serde(default = "default_self_issue_limit")]
    pub self_issue_limit: u32,
    /// How the holder is authenticated; required when any self-service is allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oidc: Option<OidcConfig>,
    /// Who registers a self-issued passkey at the IdP: the server's application
    /// permission (`application`, the default), or the holder's own delegated token
    /// (`delegated`: Graph v1.0 `/me`, fresh MFA; the server half needs only read
    /// permission for it). Applies to self-issuance and to self-service activation; needs
    /// `self_issuance_allowed` or `pin_set_allowed`.
    #[serde(default, skip_serializing_if = "RegistrationMode::is_application")]
    pub registration: RegistrationMode,
}

/// Who registers a self-issued passkey at the IdP ([`SelfService::registration`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegistrationMode {
    /// The server half, with its application permission.
    #[default]
    Application,
    /// The holder, with the delegated token of their sign-in, where their key is
    /// attached (the device half calls Graph's `/me`); the server half builds and checks
    /// the request, verifies the attestation, and confirms the result with a read.
    Delegated,
}

impl RegistrationMode {
    /// True for [`RegistrationMode::Application`].
    pub fn is_application(&self) -> bool {
        *self == RegistrationMode::Application
    }
}

impl Default for SelfService {
    /// Nothing allowed, the default limit, no OIDC configuration.
    fn default() -> Self {
        SelfService {
            pin_set_allowed: false,
            pin_unblock_allowed: false,
            self_issuance_allowed: false,
            issue_by_user: false,
            self_issue_limit: DEFAULT_SELF_ISSUE_LIMIT,
            oidc: None,
            registration: RegistrationMode::Application,
        }
    }
}

impl SelfService {
    /// Whether any self-service is allowed.
    pub fn any_allowed(&self) -> bool {
        self.pin_set_allowed
            || self.pin_unblock_allowed
            || self.self_issuance_allowed
            || self.issue_by_user
    }
}

/// A credential template: what to put on a key and how to run its lifecycle.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialTemplate {
    /// The template's name.
    pub name: String,
    /// Names of the passkey templates (IdPs) to issue to, in order.
    pub passkey_templates: Vec<String>,
    /// Where users are picked from.
    pub user_assignment: UserAssignment,
    /// FIDO2 options.
    #[serde(default)]
    pub fido2: Fido2Options,
    /// Lifecycle switches.
    #[serde(default)]
    pub lifecycle: LifecycleSwitches,
    /// Self-service permissions.
    #[serde(default)]
    pub self_service: SelfService,
}

/// A template document: passkey templates by name plus the credential template using them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateSet {
    /// Passkey templates, keyed by name.
    pub passkey: BTreeMap<String, PasskeyTemplate>,
    /// The credential template.
    pub credential: CredentialTemplate,
}

impl TemplateSet {
    /// Parse a TOML document and validate it.
    pub fn from_toml_str(text: &str) -> Result<Self, TemplateError> {
        check_size(text.len() as u64)?;
        let toml_error = |e: &toml::de::Error, path: Option<String>| {
            let (line, column) = match e.span() {
                Some(span) => {
                    let (l, c) = line_col(text, span.start);
                    (Some(l), Some(c))
                }
                None => (None, None),
            };
            parse_error(Format::Toml, e.message().trim(), path, line, column)
        };
        let de = toml::Deserializer::parse(text).map_err(|e| toml_error(&e, None))?;
        let set: TemplateSet = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            toml_error(e.inner(), Some(path))
        })?;
        set.finish()
    }

    /// Parse a JSON document and validate it.
    pub fn from_json_str(text: &str) -> Result<Self, TemplateError> {
        check_size(text.len() as u64)?;
        let json_error = |e: &serde_json::Error, path: Option<String>| {
            let (line, column) = if e.line() == 0 {
                (None, None)
            } else {
                (Some(e.line()), Some(e.column()))
            };
            // serde_json appends " at line L column C" to its Display; strip it.
            let full = e.to_string();
            let message = match full.rfind(" at line ") {
                Some(i) => full.get(..i).unwrap_or(&full).to_owned(),
                None => full,
            };
            parse_error(Format::Json, &message, path, line, column)
        };
        let mut de = serde_json::Deserializer::from_str(text);
        let set: TemplateSet = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let path = e.path().to_string();
            json_error(e.inner(), Some(path))
        })?;
        de.end().map_err(|e| json_error(&e, None))?;
        set.finish()
    }

    /// Parse a document in `format` and validate it.
    pub fn from_str_as(format: Format, text: &str) -> Result<Self, TemplateError> {
        match format {
            Format::Toml => Self::from_toml_str(text),
            Format::Json => Self::from_json_str(text),
        }
    }

    /// Read a `.toml` or `.json` file and validate it.
    pub fn load(path: &Path) -> Result<Self, TemplateError> {
        let shown = path.display().to_string();
        let format = match path.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("toml") => Format::Toml,
            Some(e) if e.eq_ignore_ascii_case("json") => Format::Json,
            _ => return Err(TemplateError::UnknownFormat { path: shown }),
        };
        let io = |e: std::io::Error| TemplateError::Io {
            path: shown.clone(),
            message: e.to_string(),
        };
        // Refuse oversized files before reading them.
        check_size(std::fs::metadata(path).map_err(io)?.len())?;
        let text = std::fs::read_to_string(path).map_err(io)?;
        Self::from_str_as(format, &text)
    }

    /// Serialise to pretty JSON.
    pub fn to_json_string(&self) -> String {
        // Plain data with string keys: serialisation cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// The passkey templates the credential template names, in its order (unknown names skipped).
    pub fn passkey_templates(&self) -> Vec<&PasskeyTemplate> {
        self.credential
            .passkey_templates
            .iter()
            .filter_map(|n| self.passkey.get(n))
            .collect()
    }

    /// Check the whole document on its own; every problem at once, sorted by field.
    pub fn validate(&self) -> Result<(), TemplateError> {
        let problems = validate::static_problems(self);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(TemplateError::Invalid(problems))
        }
    }

    /// Check the credential template against the key being issued.
    pub fn check_device(&self, device: &DeviceFacts) -> Result<(), TemplateError> {
        self.credential.check_device(device)
    }

    /// Copy each passkey template's key into its `name` (loaders do this; call it after
    /// building a set in code).
    pub fn fill_names(&mut self) {
        for (name, t) in self.passkey.iter_mut() {
            t.name.clone_from(name);
        }
    }

    fn finish(mut self) -> Result<Self, TemplateError> {
        self.fill_names();
        self.validate()?;
        Ok(self)
    }
}

impl CredentialTemplate {
    /// Check the FIDO2 options against the facts of the key being issued; every problem at once.
    pub fn check_device(&self, device: &DeviceFacts) -> Result<(), TemplateError> {
        let problems = device::device_problems(&self.fido2, device);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(TemplateError::Invalid(problems))
        }
    }
}

fn check_size(size: u64) -> Result<(), TemplateError> {
    if size > MAX_TEMPLATE_BYTES as u64 {
        return Err(TemplateError::TooLarge {
            size,
            max: MAX_TEMPLATE_BYTES,
        });
    }
    Ok(())
}

fn parse_error(
    format: Format,
    message: &str,
    path: Option<String>,
    line: Option<usize>,
    column: Option<usize>,
) -> TemplateError {
    if let Some(rest) = message.strip_prefix("unknown field `") {
        if let Some(end) = rest.find('`') {
            let field = rest.get(..end).unwrap_or(rest).to_owned();
            let path = match path {
                Some(p) if p != "." && !p.is_empty() => p,
                _ => field.clone(),
            };
            return TemplateError::UnknownField {
                format,
                field,
                path,
                line,
                column,
            };
        }
    }
    // A wrong type or value names its field (`credential.fido2.min_pin_length: invalid
    // type ...`), not only the line and column.
    let message = match path.as_deref() {
        Some(p) if p != "." && !p.is_empty() && p != "?" => format!("{p}: {message}"),
        _ => message.to_owned(),
    };
    TemplateError::Parse {
        format,
        message,
        line,
        column,
    }
}

/// 1-based line and column (in characters) of byte offset `at` in `text`.
fn line_col(text: &str, at: usize) -> (usize, usize) {
    let mut line = 1;
    let mut col = 1;
    for (i, ch) in text.char_indices() {
        if i >= at {
            break;
        }
        if ch == '\n' {
            line += 1;
            col = 1;
        } else {
            col += 1;
        }
    }
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one() {
        assert_eq!(line_col("ab\ncd", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
        assert_eq!(line_col("é\nx", 3), (2, 1));
    }

    #[test]
    fn timeout_defaults_to_five_minutes() {
        let t = PasskeyTemplate {
            name: "p".into(),
            idp: IdpConnectionRef {
                connection: "c".into(),
                kind: IdpKind::Entra,
                graph_api_version: GraphApiVersion::V1_0,
            },
            display_name: "x".into(),
            truncate_display_name: false,
            force_discoverable: true,
            rp_id: None,
            origin: None,
            challenge_timeout_minutes: None,
            attestation: AttestationRequirement::Tenant,
            record_provenance: false,
        };
        assert_eq!(t.challenge_timeout(), 5);
        assert_eq!(t.challenge_timeout_ms(), 300_000);
    }

    #[test]
    fn unknown_field_message_is_recognised() {
        let e = parse_error(
            Format::Json,
            "unknown field `colour`, expected one of",
            Some(".".into()),
            None,
            None,
        );
        assert_eq!(
            e,
            TemplateError::UnknownField {
                format: Format::Json,
                field: "colour".into(),
                path: "colour".into(),
                line: None,
                column: None
            }
        );
        assert_eq!(e.to_string(), "JSON template: unknown field `colour`");
    }

    #[test]
    fn a_wrong_type_names_its_field() {
        let e = TemplateSet::from_json_str(
            r#"{"credential": {"name": "x", "passkey_templates": "entra"}}"#,
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("JSON template: credential.passkey_templates: invalid type"),
            "{e}"
        );
        let e =
            TemplateSet::from_toml_str("[credential.fido2]\nmin_pin_length = -1\n").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("TOML template: credential.fido2.min_pin_length: invalid value"),
            "{e}"
        );
    }
}
