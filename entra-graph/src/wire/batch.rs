//! JSON `$batch` requests and responses.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};

use super::{null_as_default, parse_json, WireError, MAX_BODY_BYTES};

/// One request inside a JSON `$batch`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchRequestItem {
    /// Caller-chosen id, unique in the batch.
    pub id: String,
    /// HTTP method.
    pub method: String,
    /// URL relative to the version root, e.g. `/users/{id}/authentication/fido2Methods`.
    pub url: String,
    /// Its JSON body (POST, PATCH), if any; Graph then wants a `Content-Type` header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<JsonText>,
    /// Its headers (`Content-Type`, `ConsistencyLevel`, ...).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub headers: std::collections::BTreeMap<String, String>,
    /// Ids of requests in the same batch that must succeed first.
    #[serde(rename = "dependsOn", default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
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
