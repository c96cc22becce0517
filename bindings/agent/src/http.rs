//! The agent's HTTPS client (reqwest, blocking, rustls): the operating system's trust
//! store (rustls-platform-verifier; the bundled Mozilla roots when the system has none)
//! plus an optional extra CA, no redirects followed, bounded answers, timeouts. Proxies
//! from `HTTPS_PROXY`/`NO_PROXY`.
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
    let mut roots = Vec::new();
    if let Some(path) = extra_ca {
        use rustls::pki_types::pem::PemObject;
        let pem = std::fs::read(path).map_err(|e| {
            AgentError::config("server_ca_file", format!("{}: {e}", path.display()))
        })?;
        roots = rustls::pki_types::CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| {
                AgentError::config("server_ca_file", format!("{}: {e}", path.display()))
            })?;
        if roots.is_empty() {
            return Err(AgentError::config(
                "server_ca_file",
                format!("{}: no certificate in it", path.display()),
            ));
        }
    }
    let tls = tls_config(roots).map_err(|reason| AgentError::Http {
        url: String::new(),
        reason: format!("TLS setup: {reason}"),
    })?;
    let b = reqwest::blocking::Client::builder()
        .use_preconfigured_tls(tls)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout(timeout)
        .user_agent(concat!("keysmith-agent/", env!("CARGO_PKG_VERSION")));
    b.build().map_err(|e| AgentError::Http {
        url: String::new(),
        reason: format!("building the HTTP client: {e}"),
    })
}

/// The OS trust store plus `extra_roots` (ring); the Mozilla roots stand in for an
/// absent system store. The same policy as entra-graph's `net::client_tls_config`, kept
/// here because the agent must not link entra-graph (tests/deps.rs).
fn tls_config(
    extra_roots: Vec<rustls::pki_types::CertificateDer<'static>>,
) -> Result<rustls::ClientConfig, String> {
    use std::sync::Arc;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier: Arc<dyn rustls::client::danger::ServerCertVerifier> =
        match rustls_platform_verifier::Verifier::new_with_extra_roots(
            extra_roots.clone(),
            provider.clone(),
        ) {
            Ok(v) => Arc::new(v),
            Err(e) => {
                tracing::warn!(error = %e, "no usable OS trust store; using the bundled Mozilla roots");
                let mut store = rustls::RootCertStore {
                    roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
                };
                for c in extra_roots {
                    store.add(c).map_err(|e| e.to_string())?;
                }
                rustls::client::WebPkiServerVerifier::builder_with_provider(
                    Arc::new(store),
                    provider.clone(),
                )
                .build()
                .map_err(|e| e.to_string())?
            }
        };
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth())
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
