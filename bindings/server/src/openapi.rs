//! The OpenAPI 3 document, generated from the handlers' annotations (utoipa) and served
//! at `GET /v1/openapi.json`; `docs/openapi.json` is a committed copy (a test fails when
//! they differ).

use axum::response::IntoResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::{agents, ops, sessions, work};

struct Bearer;

impl Modify for Bearer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "An OIDC access token for the keysmith API; roles in its `roles` claim",
                    ))
                    .build(),
            ),
        );
    }
}

/// The API description.
#[derive(OpenApi)]
#[openapi(
    info(title = "keysmith server", description = "Operator API, agent enrolment and agent \
sessions of `keysmith serve`. Operator endpoints take an OIDC bearer access token whose \
`roles` claim grants keysmith roles (401 without a valid token, 403 without a role named \
here):\n\n\
| endpoint | roles |\n|---|---|\n\
| GET /v1/keys, GET /v1/keys/{key_id} | operator, helpdesk, auditor |\n\
| GET /v1/keys/{key_id}/audit | operator, auditor |\n\
| POST /v1/keys/{key_id}/revoke, /inactivate | operator, helpdesk |\n\
| POST /v1/keys/{key_id}/retire, /unregister | operator |\n\
| POST /v1/reconcile, POST /v1/bulk, POST /v1/bulk/{job_id}/resume | operator |\n\
| GET /v1/bulk/{job_id} | operator, auditor |\n\
| GET /v1/audit/verify | auditor, operator |\n\
| POST /v1/agents/enrolments, GET /v1/agents, POST /v1/agents/{agent_id}/approve, /revoke | admin |\n\
| POST /v1/agents/{agent_id}/work | operator |\n\
| GET /v1/work/{work_id} | operator, helpdesk, auditor |\n\
| POST /v1/agents/enroll, GET /v1/agents/{agent_id}, GET /v1/server-key | none |\n\
| POST /v1/sessions, POST /v1/sessions/{session_id} | none (agent-signed messages) |\n\n\
Operations that need a device run at an agent: an operator queues an issuance for a \
station (`POST /v1/agents/{agent_id}/work`); holders start activation, self-issuance and \
sign-in checks from their own agent. Request bodies are limited to 1 MiB."),
    paths(
        ops::search_keys, ops::key_details, ops::key_audit, ops::revoke, ops::inactivate,
        ops::retire, ops::unregister, ops::reconcile, ops::bulk_submit, ops::bulk_status,
        ops::bulk_resume, ops::audit_verify,
        agents::create_enrolment, agents::enroll, agents::agent_status, agents::list_agents,
        agents::approve_agent, agents::revoke_agent, work::queue_work, work::work_status,
        work::server_key,
        sessions::open_session, sessions::session_message,
    ),
    components(schemas(crate::error::ErrorBody)),
    modifiers(&Bearer),
    tags(
        (name = "keys", description = "Server-only lifecycle operations"),
        (name = "audit", description = "Audit trail and its verification"),
        (name = "bulk", description = "Server-only bulk jobs (revoke, reconcile)"),
        (name = "agents", description = "Agent enrolment (admin approves stations)"),
        (name = "sessions", description = "Agent session messages (opaque COSE bytes)"),
    )
)]
pub struct ApiDoc;

/// The document as pretty JSON (what `docs/openapi.json` holds).
pub fn document() -> String {
    let mut doc = ApiDoc::openapi();
    // Stable across builds: the crate version, not whatever utoipa picks.
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    doc.info.license = None;
    doc.to_pretty_json().unwrap_or_else(|_| "{}".to_owned())
}

/// `GET /v1/openapi.json`.
pub async fn serve() -> impl IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        document(),
    )
}
