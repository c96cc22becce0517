//! OData error bodies.

use serde::{Deserialize, Serialize};

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
