//! The holder's own Graph calls (delegated registration): with the delegated token the
//! holder's sign-in gave, the agent fetches creation options from and posts the
//! registration to Graph's `/me`, and relays the answers to the server as they came. The
//! token goes to the configured Graph only (`[oidc] graph_url`), never to the server; the
//! server names only which of the two calls to make (the paths are the agent's own).

use std::io::Read;
use std::time::Duration;

use keysmith_wire::{HolderGraphCall, HolderGraphOp, HolderGraphResult};
use zeroize::Zeroizing;

use crate::http::MAX_BODY_BYTES;
use crate::AgentError;

/// Graph's public base URL: where a holder's delegated token goes unless configured.
pub const DEFAULT_GRAPH_URL: &str = "https://graph.microsoft.com";

/// The largest answer body relayed (the wire's limit).
const MAX_RELAYED: usize = 64 * 1024;

/// What the holder's sign-in gave the agent: the ID token for the server, and a
/// delegated Graph token kept here. Both zeroized on drop; `Debug` shows neither.
pub struct HolderTokens {
    /// The ID token (goes to the server in `HolderAuth`).
    pub id_token: Zeroizing<String>,
    /// The delegated Graph token and the Graph base URL it may go to.
    pub graph: Option<GraphAccess>,
}

impl std::fmt::Debug for HolderTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HolderTokens")
            .field("id_token", &"<redacted>")
            .field("graph", &self.graph)
            .finish()
    }
}

/// A delegated Graph token and where it may be sent.
pub struct GraphAccess {
    /// Graph's base URL (`https://graph.microsoft.com`).
    pub base_url: String,
    /// The access token (never logged, never sent to the server).
    pub token: Zeroizing<String>,
}

impl std::fmt::Debug for GraphAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphAccess")
            .field("base_url", &self.base_url)
            .field("token", &"<redacted>")
            .finish()
    }
}

/// True when `scope` is on the Graph resource `graph_url` (`{graph_url}/Name`).
pub fn is_graph_scope(scope: &str, graph_url: &str) -> bool {
    scope
        .strip_prefix(graph_url.trim_end_matches('/'))
        .and_then(|rest| rest.strip_prefix('/'))
        .is_some_and(|name| !name.is_empty() && !name.contains('/'))
}

/// Makes the server's `call` with `access` (or answers status 0 when there is no token)
/// and returns the result to relay.
pub fn call(access: Option<&GraphAccess>, call: &HolderGraphCall) -> HolderGraphResult {
    let failed = |error: String| HolderGraphResult {
        op: call.op,
        status: 0,
        body: String::new(),
        error: Some(error),
        request_id: None,
    };
    let Some(access) = access else {
        return failed(
            "the holder's sign-in gave no Graph token (the server did not ask for delegated registration, or the identity platform granted no Graph scope)".into(),
        );
    };
    let http = match crate::http::client(None, Duration::from_secs(30)) {
        Ok(h) => h,
        Err(e) => return failed(e.to_string()),
    };
    let url = format!(
        "{}{}",
        access.base_url.trim_end_matches('/'),
        call.op.path()
    );
    let req = match call.op {
        HolderGraphOp::CreationOptions => http.get(&url),
        HolderGraphOp::Register => http
            .post(&url)
            .header("content-type", "application/json")
            .body(call.body.clone().unwrap_or_default()),
    };
    let resp = match req.bearer_auth(access.token.as_str()).send() {
        Ok(r) => r,
        Err(e) => return failed(format!("{url}: {}", e.without_url())),
    };
    let status = resp.status().as_u16();
    let request_id = resp
        .headers()
        .get("request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut body = Vec::new();
    if let Err(e) = resp.take(MAX_BODY_BYTES).read_to_end(&mut body) {
        return failed(format!("{url}: reading the answer: {e}"));
    }
    if body.len() > MAX_RELAYED {
        return failed(format!(
            "{url}: the answer is larger than 64 KiB ({} bytes)",
            body.len()
        ));
    }
    tracing::info!(op = call.op.as_str(), status, "holder Graph call answered");
    HolderGraphResult {
        op: call.op,
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
        error: None,
        request_id,
    }
}

/// Checks the scopes a server asks the holder to grant: `openid`, `profile`, `email`,
/// `offline_access`, and scopes on the configured Graph; anything else is refused (a
/// server cannot have the holder mint tokens for other resources through this agent).
pub fn check_scopes(scopes: &[String], graph_url: &str) -> Result<bool, AgentError> {
    let mut graph = false;
    for s in scopes {
        match s.as_str() {
            "openid" | "profile" | "email" | "offline_access" => {}
            s if is_graph_scope(s, graph_url) => graph = true,
            other => {
                return Err(AgentError::SignIn(format!(
                    "the server asks the holder to grant {other:?}, which is not a scope on this agent's Graph ({graph_url})"
                )))
            }
        }
    }
    Ok(graph)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_scopes_on_the_configured_graph_pass() {
        let g = "https://graph.microsoft.com";
        let ok = |s: &[&str]| check_scopes(&s.iter().map(|s| s.to_string()).collect::<Vec<_>>(), g);
        assert!(!ok(&["openid", "profile"]).unwrap());
        assert!(ok(&[
            "openid",
            "https://graph.microsoft.com/UserAuthMethod-Passkey.ReadWrite"
        ])
        .unwrap());
        assert!(ok(&["https://evil.example/UserAuthMethod-Passkey.ReadWrite"]).is_err());
        assert!(ok(&["https://graph.microsoft.com.evil.example/X"]).is_err());
        assert!(ok(&["https://graph.microsoft.com/a/b"]).is_err());
        assert!(ok(&["api://keysmith/.default"]).is_err());
    }

    #[test]
    fn no_token_answers_status_zero_and_tokens_stay_out_of_debug() {
        let r = call(
            None,
            &HolderGraphCall {
                op: HolderGraphOp::CreationOptions,
                body: None,
            },
        );
        assert_eq!(r.status, 0);
        assert!(r.error.unwrap().contains("no Graph token"));
        let t = HolderTokens {
            id_token: Zeroizing::new("secret-id".into()),
            graph: Some(GraphAccess {
                base_url: DEFAULT_GRAPH_URL.into(),
                token: Zeroizing::new("secret-access".into()),
            }),
        };
        let d = format!("{t:?}");
        assert!(!d.contains("secret"), "{d}");
    }
}
