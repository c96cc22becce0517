//! Operators: OIDC bearer access tokens and keysmith roles.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::SystemTime;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use entra_graph::oidc::{AccessTokenVerifier, VerifiedAccessToken};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::state::AppState;

/// A keysmith role, granted by a role value in the operator's access token.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Agents and enrolment codes.
    Admin,
    /// Every lifecycle operation.
    Operator,
    /// Search, details, inactivate, revoke.
    Helpdesk,
    /// Search, details, audit trail, audit verify (read-only).
    Auditor,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 4] = [Role::Admin, Role::Operator, Role::Helpdesk, Role::Auditor];

    /// The role's name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Helpdesk => "helpdesk",
            Role::Auditor => "auditor",
        }
    }
}

/// An authenticated operator.
#[derive(Clone, Debug)]
pub struct Caller {
    /// Who, as recorded in the audit log: `oidc:<username or oid or sub>`.
    pub actor: String,
    /// The keysmith roles the token grants.
    pub roles: BTreeSet<Role>,
}

impl Caller {
    /// Ok when the caller holds one of `any_of`; 403 otherwise.
    pub fn require(&self, any_of: &[Role]) -> Result<(), ApiError> {
        if any_of.iter().any(|r| self.roles.contains(r)) {
            Ok(())
        } else {
            let names: Vec<&str> = any_of.iter().map(|r| r.as_str()).collect();
            Err(ApiError::forbidden(format!(
                "this needs one of the roles {}",
                names.join(", ")
            )))
        }
    }
}

/// Verifies bearer tokens and maps their role values.
pub struct Authenticator {
    verifier: AccessTokenVerifier,
    role_map: BTreeMap<String, Role>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("role_map", &self.role_map)
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    /// An authenticator over `verifier` with `role_map` (token role value → role).
    pub fn new(verifier: AccessTokenVerifier, role_map: BTreeMap<String, Role>) -> Self {
        Authenticator { verifier, role_map }
    }

    /// The caller of a request with this `Authorization` header value.
    pub async fn authenticate(&self, header: Option<&str>) -> Result<Caller, ApiError> {
        let token = header
            .and_then(|h| {
                h.strip_prefix("Bearer ")
                    .or_else(|| h.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ApiError::unauthorized("a bearer access token is required"))?;
        let v: VerifiedAccessToken = match self.verifier.verify(token, SystemTime::now()).await {
            Ok(v) => v,
            Err(entra_graph::GraphError::Oidc { claim, reason }) => {
                return Err(ApiError::unauthorized(format!(
                    "access token refused ({claim}: {reason})"
                )))
            }
            Err(e) => {
                tracing::warn!(error = %e, "issuer keys unavailable");
                return Err(ApiError::new(
                    axum::http::StatusCode::SERVICE_UNAVAILABLE,
                    "issuer_unavailable",
                    "the token issuer's keys could not be fetched",
                ));
            }
        };
        let roles = v
            .roles
            .iter()
            .filter_map(|r| self.role_map.get(r).copied())
            .collect();
        let who = v
            .username
            .clone()
            .or_else(|| v.object_id.clone())
            .unwrap_or_else(|| v.subject.clone());
        Ok(Caller {
            actor: format!("oidc:{who}"),
            roles,
        })
    }
}

impl FromRequestParts<Arc<AppState>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        state.auth.authenticate(header).await
    }
}
