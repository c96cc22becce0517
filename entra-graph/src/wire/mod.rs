//! Wire types: the JSON shapes Microsoft Graph sends and accepts for passkeys.
//!
//! Decoding is lenient where Graph is known to vary (unknown fields are ignored, `null`
//! lists read as empty, the creation options may come wrapped in `"value"`) and strict
//! where a missing field would make the data useless (`id`, `challenge`, `rp.id`).
//! [`parse_json`] is the one entry point every response goes through: it bounds the size
//! and turns serde's message into an error naming the shape.

mod batch;
mod cms;
mod directory;
mod error;
mod passkey;
mod policy;
mod token;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};

pub use batch::{BatchRequest, BatchRequestItem, BatchResponse, BatchResponseItem, JsonText};
pub use cms::{
    AuthenticationMethod, TemporaryAccessPass, UsersDeltaPage, PHISHING_RESISTANT_TYPES,
};
pub use directory::{DirectoryObject, User};
pub use error::{InnerError, ODataError, ODataErrorBody};
pub use passkey::{
    AttestationLevel, AttestationResponse, AuthenticatorSelection, ClientExtensionResults,
    CreationExtensions, CreationOptions, CredentialDescriptor, CredentialParameter, Fido2Method,
    PasskeyType, PublicKeyCreationOptions, PublicKeyCredential, RegistrationBody, RelyingParty,
    WebauthnUser,
};
pub use policy::{
    AttestationEnforcement, EnforcementType, Fido2Policy, KeyRestrictions, MethodState,
    PasskeyProfile, PolicyTarget,
};
pub use token::{TokenErrorResponse, TokenResponse};

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

/// Parses an RFC 3339 time (`YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`, any offset) as
/// Graph writes it, or the same without an offset, which Graph means as UTC. Fractions of
/// a second are dropped. `None` when it is not such a time.
pub fn parse_utc(s: &str) -> Option<std::time::SystemTime> {
    use time::format_description::well_known::Rfc3339;
    let s = s.trim();
    let parse = |s: &str| time::OffsetDateTime::parse(s, &Rfc3339).ok();
    // No offset at all (the time ends in a digit): UTC by Graph's convention.
    let no_offset = || {
        s.split_once('T')
            .is_some_and(|(_, t)| !t.contains(['Z', 'z', '+', '-']))
    };
    let t = parse(s).or_else(|| no_offset().then(|| parse(&format!("{s}Z"))).flatten());
    let t = t?.replace_nanosecond(0).ok()?;
    Some(t.into())
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

#[cfg(test)]
mod tests;
