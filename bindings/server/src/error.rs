//! Errors: the server's own ([`ServerError`]) and what an HTTP request answers
//! ([`ApiError`], a JSON body `{"error": "<code>", "message": "..."}`).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use keysmith_facade::{ErrorKind, FacadeError};
use lifecycle::store::StoreError;
use serde::Serialize;
use utoipa::ToSchema;

/// Failures starting or running the server.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The configuration is invalid or unreadable.
    #[error("config: {0}")]
    Config(String),
    /// The server key file could not be created, read or parsed.
    #[error("server key: {0}")]
    Key(String),
    /// The TLS certificate or key could not be loaded.
    #[error("tls: {0}")]
    Tls(String),
    /// The keysmith session (repository, IdP, templates) could not be opened.
    #[error("session: {0}")]
    Session(#[from] FacadeError),
    /// Binding or serving the socket failed.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

/// The JSON body of every error answer.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// A stable snake_case code (`unauthorized`, `forbidden`, `not_found`, ...).
    pub error: String,
    /// What went wrong; never a secret.
    pub message: String,
}

/// An HTTP error answer.
#[derive(Clone, Debug)]
pub struct ApiError {
    /// The status.
    pub status: StatusCode,
    /// The code.
    pub code: &'static str,
    /// The message.
    pub message: String,
}

impl ApiError {
    /// An error with `status`, `code` and `message`.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }
    /// 400.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }
    /// 401 (no or an invalid bearer token).
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }
    /// 403 (a valid token without the role needed).
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }
    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }
    /// 409.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }
    /// 429.
    pub fn too_many(message: impl Into<String>) -> Self {
        Self::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message)
    }
    /// 500, with the detail logged, not answered.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(%detail, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error (see the server log)",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (
            self.status,
            axum::Json(ErrorBody {
                error: self.code.to_owned(),
                message: self.message,
            }),
        )
            .into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        r
    }
}

impl From<FacadeError> for ApiError {
    fn from(e: FacadeError) -> Self {
        let (status, code) = match (e.kind, e.reason) {
            (_, "key_not_found") => (StatusCode::NOT_FOUND, "not_found"),
            (ErrorKind::Usage, _) | (ErrorKind::Template, _) => {
                (StatusCode::BAD_REQUEST, "bad_request")
            }
            (ErrorKind::Transition, _) => (StatusCode::CONFLICT, "transition"),
            (ErrorKind::Idp, _) => (StatusCode::BAD_GATEWAY, "idp"),
            (ErrorKind::Device, _) => (StatusCode::CONFLICT, "device"),
            (ErrorKind::Repository, _) => (StatusCode::SERVICE_UNAVAILABLE, "repository"),
            (ErrorKind::Internal, _) => return ApiError::internal(e.message),
        };
        ApiError::new(status, code, e.message)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { what } => ApiError::not_found(format!("{what} not found")),
            StoreError::Invalid { field, reason } => {
                ApiError::bad_request(format!("{field}: {reason}"))
            }
            other => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "repository",
                other.to_string(),
            ),
        }
    }
}

/// Parses a JSON request body after the caller's role was checked (an axum `Json`
/// extractor would run first and answer 422 to a caller without the role). An empty body
/// is `{}`.
pub fn json_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        &b"{}"[..]
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("request body: {e}")))
}
