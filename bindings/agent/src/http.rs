//! The agent's HTTPS client (reqwest, blocking, rustls): WebPKI roots plus an optional
//! extra CA, no redirects followed, bounded answers, timeouts.
//!
//! The server's TLS certificate is not pinned (renewals would break agents; review G5):
//! the pin is the server's COSE signing key, checked on every message by the session
//! loop.

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use crate::AgentError;

/// Largest answer body read from the server or the identity provider.
pub const MAX_BODY_BYTES: u64 = 1024 * 1024;

/// A blocking HTTPS client.
pub fn client(
    extra_ca: Option<&Path>,
    timeout: Duration,
) -> Result<reqwest::blocking::Client, AgentError> {
    let mut b = reqwest::blocking::Client::builder()
        .use_rustls_tls()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout(timeout)
        .user_agent(concat!("keysmith-agent/", env!("CARGO_PKG_VERSION")));
    if let Some(path) = extra_ca {
        let pem = std::fs::read(path).map_err(|e| {
            AgentError::config("server_ca_file", format!("{}: {e}", path.display()))
        })?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
            AgentError::config("server_ca_file", format!("{}: {e}", path.display()))
        })?;
        if certs.is_empty() {
            return Err(AgentError::config(
                "server_ca_file",
                format!("{}: no certificate in it", path.display()),
            ));
        }
        for c in certs {
            b = b.add_root_certificate(c);
        }
    }
    b.build().map_err(|e| AgentError::Http {
        url: String::new(),
        reason: format!("building the HTTP client: {e}"),
    })
}

/// Sends `req` and returns the status and the body (at most [`MAX_BODY_BYTES`]) as JSON
/// (`Value::Null` for an empty or non-JSON body).
pub(crate) fn send_json(
    req: reqwest::blocking::RequestBuilder,
    url: &str,
) -> Result<(u16, serde_json::Value), AgentError> {
    let resp = req.send().map_err(|e| AgentError::Http {
        url: url.to_owned(),
        reason: e.without_url().to_string(),
    })?;
    let status = resp.status().as_u16();
    let mut body = Vec::new();
    resp.take(MAX_BODY_BYTES + 1)
        .read_to_end(&mut body)
        .map_err(|e| AgentError::Http {
            url: url.to_owned(),
            reason: format!("reading the answer: {e}"),
        })?;
    if body.len() as u64 > MAX_BODY_BYTES {
        return Err(AgentError::Refused {
            url: url.to_owned(),
            status,
            reason: "answer larger than 1 MiB".into(),
        });
    }
    Ok((
        status,
        serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
    ))
}

/// The error text of an OAuth or API error body (`error`, `error_description`,
/// `message`), or the status alone.
pub(crate) fn error_text(body: &serde_json::Value) -> String {
    let pick = |k: &str| body.get(k).and_then(|v| v.as_str()).map(str::to_owned);
    match (
        pick("error"),
        pick("error_description").or_else(|| pick("message")),
    ) {
        (Some(e), Some(d)) => format!("{e}: {d}"),
        (Some(e), None) => e,
        (None, Some(d)) => d,
        (None, None) => match body.get("error") {
            Some(v) => v.to_string(),
            None => "no error description".into(),
        },
    }
}
