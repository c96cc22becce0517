//! The server's configuration file (TOML; unknown fields are refused).
//!
//! ```toml
//! listen = "0.0.0.0:8443"
//! session_config = "session.toml"          # the keysmith session: repository, IdP, templates
//! server_key = "/etc/keysmith/server-key.pem"   # `keysmith serve init-key`
//!
//! [tls]
//! cert_chain = "/etc/keysmith/tls/fullchain.pem"
//! private_key = "/etc/keysmith/tls/key.pem"
//!
//! [oidc]                                   # operators' access tokens
//! issuer = "https://login.microsoftonline.com/<tenant>/v2.0"
//! audience = "api://keysmith"
//! # jwks_url = "..."                      # default: from the issuer's discovery document
//! # tenant_id = "<tenant>"
//! # roles_claim = "roles"
//! # ca_file = "issuer-ca.pem"             # extra roots beside the OS trust store
//! # proxy = "http://proxy.contoso.com:3128"   # default: HTTPS_PROXY/NO_PROXY; "direct": none
//! # no_proxy = "login.contoso.com"       # only with proxy
//! [oidc.roles]                             # role value in the token -> keysmith role
//! "Keysmith.Admin" = "admin"
//! "Keysmith.Operator" = "operator"
//!
//! [limits]
//! request_timeout_s = 30
//! enrolments_per_minute_per_source = 10
//! sessions_per_minute_per_agent = 30
//! ```
//!
//! Relative paths are relative to the configuration file. `insecure_loopback_http = true`
//! (tests only) serves plain HTTP instead of `[tls]` and is refused unless `listen` is a
//! loopback address.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::auth::Role;
use crate::ServerError;

/// The whole configuration.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address and port to listen on (port 0: any free port, printed at start).
    pub listen: SocketAddr,
    /// The TLS certificate chain and key; required unless `insecure_loopback_http`.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// Serve plain HTTP on a loopback address: tests only.
    #[serde(default)]
    pub insecure_loopback_http: bool,
    /// The keysmith session configuration file (JSON or TOML, as `keysmith --config`):
    /// repository (SQLite path, or a PostgreSQL URL for several server nodes), PIN key,
    /// IdP connections, templates.
    pub session_config: PathBuf,
    /// The server's signing key (P-256, PKCS#8 PEM, mode 0600): agents pin its public key.
    pub server_key: PathBuf,
    /// How operators' access tokens are verified and their roles mapped.
    pub oidc: OidcConfig,
    /// Abuse limits.
    #[serde(default)]
    pub limits: Limits,
    /// Seconds between journal replays (default 60; 0: only at start). A replay finishes
    /// the IdP side effects a crashed node left journalled: the registration whose job
    /// result arrived before the crash is made (or found at the IdP) exactly once. Every
    /// node replays; a dead node's entries are taken over when their lease ends (15
    /// minutes), or at once by a node restarted with the same `station`.
    #[serde(default = "default_replay_interval")]
    pub journal_replay_interval_s: u64,
}

/// TLS files.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain, leaf first.
    pub cert_chain: PathBuf,
    /// PEM private key of the leaf (PKCS#8, PKCS#1 or SEC1).
    pub private_key: PathBuf,
}

/// The operators' identity provider.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    /// Expected `iss` of access tokens.
    pub issuer: String,
    /// Expected `aud`: the keysmith API's app id URI or client id.
    pub audience: String,
    /// The issuer's JWKS URL; default: read from its discovery document.
    #[serde(default)]
    pub jwks_url: Option<String>,
    /// Extra CA certificates (PEM, several allowed) trusted for the issuer's HTTPS
    /// endpoints, beside the operating system's store: a private CA in front of the
    /// issuer, or the root of a TLS-inspecting proxy.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// A proxy for the discovery and JWKS requests (`http://host:port`, or `https://…`;
    /// user and password in the URL allowed), in place of the environment's
    /// `HTTPS_PROXY`/`NO_PROXY`; `"direct"` for no proxy at all. The same setting as the
    /// session configuration's `[[idp]] proxy` (docs/ENTRA.md).
    #[serde(default)]
    pub proxy: Option<String>,
    /// Hosts that bypass `proxy`, in `NO_PROXY` syntax; only with `proxy`.
    #[serde(default)]
    pub no_proxy: Option<String>,
    /// When set, `tid` must equal it.
    #[serde(default)]
    pub tenant_id: Option<String>,
    /// The claim carrying role values (default `roles`).
    #[serde(default = "default_roles_claim")]
    pub roles_claim: String,
    /// Clock skew tolerated, seconds (default 60).
    #[serde(default = "default_leeway")]
    pub leeway_s: u64,
    /// Role value in the token → keysmith role. Default: `admin`, `operator`, `helpdesk`,
    /// `auditor` map to themselves.
    #[serde(default = "default_role_map")]
    pub roles: BTreeMap<String, Role>,
}

impl OidcConfig {
    /// The trust and proxy settings of the issuer's discovery and JWKS requests, the
    /// same type (and code path) as an IdP connection's.
    pub fn network(&self) -> entra_graph::net::NetworkOptions {
        entra_graph::net::NetworkOptions {
            ca_file: self.ca_file.clone(),
            proxy: self.proxy.clone(),
            no_proxy: self.no_proxy.clone(),
        }
    }
}

/// Abuse limits (review G12). Counted per server node.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Whole-request timeout, seconds (default 30).
    #[serde(default = "default_timeout")]
    pub request_timeout_s: u64,
    /// Enrolment attempts per source address per minute (default 10).
    #[serde(default = "default_enrolments")]
    pub enrolments_per_minute_per_source: u32,
    /// Sessions an agent may open per minute (default 30).
    #[serde(default = "default_sessions")]
    pub sessions_per_minute_per_agent: u32,
    /// Session messages per source address per minute (default 600).
    #[serde(default = "default_messages")]
    pub session_messages_per_minute_per_source: u32,
    /// Device operations (flows) this node runs at once (default 256): at the limit a
    /// station's poll waits and a holder's sign-in is refused as busy.
    #[serde(default = "default_flows")]
    pub max_flows: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            request_timeout_s: default_timeout(),
            enrolments_per_minute_per_source: default_enrolments(),
            sessions_per_minute_per_agent: default_sessions(),
            session_messages_per_minute_per_source: default_messages(),
            max_flows: default_flows(),
        }
    }
}

fn default_replay_interval() -> u64 {
    60
}
fn default_roles_claim() -> String {
    "roles".into()
}
fn default_leeway() -> u64 {
    60
}
fn default_timeout() -> u64 {
    30
}
fn default_enrolments() -> u32 {
    10
}
fn default_sessions() -> u32 {
    30
}
fn default_flows() -> usize {
    256
}
fn default_messages() -> u32 {
    600
}
fn default_role_map() -> BTreeMap<String, Role> {
    Role::ALL
        .iter()
        .map(|r| (r.as_str().to_owned(), *r))
        .collect()
}

impl ServerConfig {
    /// Parses TOML text (paths stay as written).
    pub fn from_toml(text: &str) -> Result<ServerConfig, ServerError> {
        let cfg: ServerConfig =
            toml::from_str(text).map_err(|e| ServerError::Config(e.to_string()))?;
        cfg.check()?;
        Ok(cfg)
    }

    /// Reads a configuration file; relative paths become relative to its directory.
    pub fn from_file(path: &Path) -> Result<ServerConfig, ServerError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ServerError::Config(format!("{}: {e}", path.display())))?;
        let mut cfg = Self::from_toml(&text)
            .map_err(|e| ServerError::Config(format!("{}: {e}", path.display())))?;
        let base = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        fix(&mut cfg.session_config);
        fix(&mut cfg.server_key);
        if let Some(t) = cfg.tls.as_mut() {
            fix(&mut t.cert_chain);
            fix(&mut t.private_key);
        }
        if let Some(ca) = cfg.oidc.ca_file.as_mut() {
            fix(ca);
        }
        Ok(cfg)
    }

    fn check(&self) -> Result<(), ServerError> {
        match (&self.tls, self.insecure_loopback_http) {
            (Some(_), true) => Err(ServerError::Config(
                "tls and insecure_loopback_http: choose one".into(),
            )),
            (None, false) => Err(ServerError::Config(
                "tls: required (cert_chain, private_key)".into(),
            )),
            (None, true) if !self.listen.ip().is_loopback() => Err(ServerError::Config(format!(
                "insecure_loopback_http: {} is not a loopback address",
                self.listen.ip()
            ))),
            _ => Ok(()),
        }?;
        if self.limits.request_timeout_s == 0
            || self.limits.enrolments_per_minute_per_source == 0
            || self.limits.sessions_per_minute_per_agent == 0
            || self.limits.session_messages_per_minute_per_source == 0
        {
            return Err(ServerError::Config(
                "limits: every limit must be above 0".into(),
            ));
        }
        self.oidc
            .network()
            .validate()
            .map_err(|e| ServerError::Config(format!("oidc: {e}")))?;
        if self.oidc.roles.is_empty() {
            return Err(ServerError::Config("oidc.roles: maps no role".into()));
        }
        Ok(())
    }
}
