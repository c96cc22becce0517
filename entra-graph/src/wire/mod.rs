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

#[cfg(test)]
mod tests;
