//! How the HTTPS clients reach Graph, the login endpoint and an issuer's discovery/JWKS
//! endpoints: whom they trust and which proxy they go through.
//!
//! Trust is the operating system's store (rustls-platform-verifier: the system CA bundle
//! on Linux, the platform verifier on macOS and Windows) plus, per connection, an
//! optional extra CA file, so that a TLS-inspecting corporate proxy with a private root
//! works without touching the system. When the system has no CA store at all (a minimal
//! container), the bundled Mozilla roots are used instead, with a warning.
//!
//! Proxy: by default the environment's `HTTPS_PROXY`/`https_proxy` (and `ALL_PROXY`,
//! `HTTP_PROXY` for plain-HTTP loopback URLs) are honoured with `NO_PROXY`/`no_proxy`;
//! [`NetworkOptions::proxy`] sets one explicitly instead (or `"direct"` for none).

use std::path::PathBuf;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

use crate::GraphError;

/// The explicit [`NetworkOptions::proxy`] value that turns every proxy off, the
/// environment's included.
pub const DIRECT: &str = "direct";

/// Trust and proxy settings of one connection. The default trusts the operating
/// system's store and follows the environment's proxy variables.
/// `Debug` shows the proxy without its password.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NetworkOptions {
    /// A PEM file of extra trusted root certificates (it may hold several), added to the
    /// operating system's store: the private root of a TLS-inspecting proxy, or a private
    /// CA in front of an issuer. Read when the client is built.
    pub ca_file: Option<PathBuf>,
    /// A proxy for every request of this connection (`http://host:port`, or
    /// `https://…`; user and password in the URL are allowed), in place of the
    /// environment's `HTTPS_PROXY`/`NO_PROXY`; [`DIRECT`] for no proxy at all.
    pub proxy: Option<String>,
    /// Hosts that bypass [`NetworkOptions::proxy`], in `NO_PROXY` syntax (comma-separated
    /// host names, domain suffixes, IP addresses or CIDR blocks). Only with `proxy`; without
    /// it the environment's `NO_PROXY` applies to the environment's proxy.
    pub no_proxy: Option<String>,
}

impl std::fmt::Debug for NetworkOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetworkOptions")
            .field("ca_file", &self.ca_file)
            .field("proxy", &self.proxy.as_deref().map(redact_proxy))
            .field("no_proxy", &self.no_proxy)
            .finish()
    }
}

impl NetworkOptions {
    /// Checks the settings without reading the CA file.
    pub fn validate(&self) -> Result<(), GraphError> {
        if let Some(p) = self.proxy.as_deref().filter(|p| *p != DIRECT) {
            // keysmith's URL policy for proxies: http or https to any host, proxy
            // credentials allowed, no whitespace; its messages hide the password.
            keysmith_url::check_proxy(p).map_err(|e| GraphError::Config {
                setting: "proxy",
                reason: e.to_string(),
            })?;
        }
        if self.no_proxy.is_some() && self.proxy.is_none() {
            return Err(GraphError::Config {
                setting: "no_proxy",
                reason: "needs `proxy`; without it the environment's NO_PROXY applies".into(),
            });
        }
        Ok(())
    }

    /// Reads [`NetworkOptions::ca_file`] (`None` when unset).
    pub fn read_ca_file(&self) -> Result<Option<Vec<u8>>, GraphError> {
        let Some(path) = &self.ca_file else {
            return Ok(None);
        };
        std::fs::read(path)
            .map(Some)
            .map_err(|e| GraphError::Config {
                setting: "ca_file",
                reason: format!("{}: {e}", path.display()),
            })
    }

    /// An async client builder with these settings: TLS from [`client_tls_config`] (the
    /// CA file's roots and `extra_pem`'s added to the OS store), the proxy, no redirects
    /// followed. The caller adds timeouts.
    pub(crate) fn client_builder(
        &self,
        extra_pem: Option<&[u8]>,
    ) -> Result<reqwest::ClientBuilder, GraphError> {
        self.validate()?;
        let mut roots = Vec::new();
        if let Some(pem) = self.read_ca_file()? {
            roots.extend(pem_roots(&pem).map_err(|reason| GraphError::Config {
                setting: "ca_file",
                reason: format!("{}: {reason}", display_path(&self.ca_file)),
            })?);
        }
        if let Some(pem) = extra_pem {
            roots.extend(pem_roots(pem).map_err(|reason| GraphError::Config {
                setting: "ca",
                reason,
            })?);
        }
        let tls = client_tls_config(roots).map_err(|reason| GraphError::Config {
            setting: "tls",
            reason,
        })?;
        let mut b = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .redirect(reqwest::redirect::Policy::none());
        match self.proxy.as_deref() {
            None => {}
            Some(DIRECT) => b = b.no_proxy(),
            Some(url) => {
                let proxy = reqwest::Proxy::all(url).map_err(|e| GraphError::Config {
                    setting: "proxy",
                    reason: format!("{}: {e}", redact_proxy(url)),
                })?;
                let no = self
                    .no_proxy
                    .as_deref()
                    .and_then(reqwest::NoProxy::from_string);
                b = b.proxy(proxy.no_proxy(no));
            }
        }
        Ok(b)
    }
}

fn display_path(p: &Option<PathBuf>) -> String {
    p.as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

/// A proxy URL without its password, for messages.
fn redact_proxy(url: &str) -> String {
    if url == DIRECT {
        return DIRECT.into();
    }
    keysmith_url::redact_password(url)
}

/// The certificates of a PEM text (several allowed); an error when it holds none or one
/// does not parse.
pub fn pem_roots(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not a PEM certificate file: {e}"))?;
    if certs.is_empty() {
        return Err("no certificate in it".into());
    }
    Ok(certs)
}

/// A rustls client configuration that verifies servers with the operating system's trust
/// store plus `extra_roots` (ring provider, TLS 1.2 and 1.3). Without any system roots
/// (a container without a CA bundle) the bundled Mozilla roots stand in for them.
pub fn client_tls_config(
    extra_roots: Vec<CertificateDer<'static>>,
) -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier: Arc<dyn rustls::client::danger::ServerCertVerifier> =
        match rustls_platform_verifier::Verifier::new_with_extra_roots(
            extra_roots.clone(),
            provider.clone(),
        ) {
            Ok(v) => Arc::new(v),
            Err(e) => {
                // Only when neither the system nor `extra_roots` gave a root: fall back to
                // the Mozilla set rather than refusing every server.
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
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(config)
}

/// When `e` (a reqwest error) failed because the server's certificate was refused:
/// rustls's reason.
pub(crate) fn certificate_error(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(r) = as_cert_error(err) {
            return Some(r);
        }
        // `io::Error::source` skips the error it wraps (often another `io::Error`, then
        // rustls's): step into it instead.
        cur = match err.downcast_ref::<std::io::Error>() {
            Some(io) => io.get_ref().map(|inner| inner as _),
            None => err.source(),
        };
    }
    None
}

fn as_cert_error(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    match err.downcast_ref::<rustls::Error>()? {
        e @ (rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented) => {
            Some(e.to_string())
        }
        _ => None,
    }
}

/// The typed error for a refused server certificate, when `e` is one.
pub(crate) fn untrusted(e: &reqwest::Error) -> Option<GraphError> {
    let reason = certificate_error(e)?;
    let host = e
        .url()
        .and_then(|u| {
            u.host_str()
                .map(|h| format!("{h}:{}", u.port_or_known_default().unwrap_or(443)))
        })
        .unwrap_or_default();
    Some(GraphError::UntrustedCertificate { host, reason })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_checked() {
        let mut n = NetworkOptions::default();
        assert_eq!(n.validate(), Ok(()));
        n.no_proxy = Some("localhost".into());
        assert!(matches!(
            n.validate(),
            Err(GraphError::Config {
                setting: "no_proxy",
                ..
            })
        ));
        n.proxy = Some("socks9://p:1".into());
        assert!(matches!(
            n.validate(),
            Err(GraphError::Config {
                setting: "proxy",
                ..
            })
        ));
        n.proxy = Some("http://user:hunter2@proxy.corp:3128".into());
        assert_eq!(n.validate(), Ok(()));
        n.proxy = Some(DIRECT.into());
        assert_eq!(n.validate(), Ok(()));
        assert!(!redact_proxy("http://u:hunter2@p:1").contains("hunter2"));
        n.proxy = Some("http://u:hunter2@p:1".into());
        assert!(!format!("{n:?}").contains("hunter2"));
        // keysmith_url's proxy policy: no whitespace, no query, the password never shown.
        for bad in [
            "socks5://u:hunter2@p:1",
            "http://u:hunter2@p:1/?x",
            "http://u:hunter2@p :1",
        ] {
            n.proxy = Some(bad.into());
            let e = n.validate().unwrap_err().to_string();
            assert!(e.contains("proxy") && !e.contains("hunter2"), "{bad}: {e}");
        }
        assert!(pem_roots(b"not pem").is_err());
    }
}
