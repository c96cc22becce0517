//! The session's JSON configuration.

use std::sync::Arc;

use entra_graph::auth::{AssertionAlg, CertificateCredential, Credential, Secret};
use entra_graph::{ApiVersion, GraphClient, GraphConfig};
use lifecycle::diagnostics::LogConfig;
use lifecycle::idp::EntraIdp;
use lifecycle::store::{PgStore, PinKey, SqliteStore, Store};
use serde::Deserialize;
use zeroize::{Zeroize, Zeroizing};

use crate::{FacadeError, Result};

/// The configuration [`crate::Session::open`] takes. Secrets are moved out into
/// zeroizing holders as soon as it is parsed; it has no `Debug`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SessionConfig {
    /// `{"sqlite": "path"}` or `{"postgres": "url"}`.
    pub(crate) repository: Repository,
    /// The 32-byte host key sealing transport PINs, as 64 hex digits.
    pub(crate) pin_key: String,
    /// The station name recorded in journal claims and the default actor.
    #[serde(default = "default_station")]
    pub(crate) station: String,
    /// The actor recorded for operator calls (default `operator:<station>`).
    #[serde(default)]
    pub(crate) actor: Option<String>,
    /// IdP connections.
    #[serde(default)]
    pub(crate) idp: Vec<IdpConnection>,
    /// Credential template sets, as TOML or JSON text.
    #[serde(default)]
    pub(crate) templates: Vec<String>,
    /// Diagnostics, applied process-wide at open.
    #[serde(default)]
    pub(crate) log: Option<LogConfig>,
}

impl Drop for SessionConfig {
    fn drop(&mut self) {
        self.pin_key.zeroize();
    }
}

fn default_station() -> String {
    "keysmith-facade".into()
}

/// Where the repository is: `{"sqlite": "PATH"}`, `{"postgres": "URL"}` or
/// `{"postgres": "URL", "schema": "NAME"}` (all tables in that schema, created if
/// missing: several repositories in one database).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Repository {
    #[serde(default)]
    sqlite: Option<String>,
    #[serde(default)]
    postgres: Option<String>,
    #[serde(default)]
    schema: Option<String>,
}

/// One Entra connection.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct IdpConnection {
    name: String,
    tenant: String,
    client_id: String,
    #[serde(default)]
    client_secret: Option<String>,
    #[serde(default)]
    certificate_pem: Option<String>,
    #[serde(default)]
    private_key_pem: Option<String>,
    /// `v1.0` (default) or `beta`.
    #[serde(default)]
    graph_api_version: Option<String>,
    #[serde(default)]
    login_base: Option<String>,
    #[serde(default)]
    graph_base: Option<String>,
}

impl Drop for IdpConnection {
    fn drop(&mut self) {
        // Whatever was not moved into a zeroizing holder (e.g. after an error).
        if let Some(s) = self.client_secret.as_mut() {
            s.zeroize();
        }
        if let Some(k) = self.private_key_pem.as_mut() {
            k.zeroize();
        }
    }
}

pub(crate) fn parse(json: &str) -> Result<SessionConfig> {
    serde_json::from_str(json).map_err(|e| FacadeError::usage(format!("session config: {e}")))
}

fn unhex(s: &str) -> Option<Zeroizing<Vec<u8>>> {
    if s.len() % 2 != 0 {
        return None;
    }
    let mut out = Zeroizing::new(Vec::with_capacity(s.len() / 2));
    for i in (0..s.len()).step_by(2) {
        out.push(u8::from_str_radix(s.get(i..i + 2)?, 16).ok()?);
    }
    Some(out)
}

pub(crate) fn pin_key(hex: String) -> Result<PinKey> {
    let hex = Zeroizing::new(hex);
    let bytes = unhex(hex.trim())
        .ok_or_else(|| FacadeError::usage("session config: pin_key: expected 64 hex digits"))?;
    PinKey::from_slice(&bytes).map_err(|_| {
        FacadeError::usage(format!(
            "session config: pin_key: expected 32 bytes (64 hex digits), got {}",
            bytes.len()
        ))
    })
}

pub(crate) fn store(repo: &Repository) -> Result<Arc<dyn Store>> {
    let repo_err = |what: &str, e: lifecycle::store::StoreError| {
        FacadeError::new(
            crate::ErrorKind::Repository,
            format!("repository {what}: {e}"),
        )
    };
    // A PostgreSQL URL may carry a password: it is never put in a message.
    Ok(match (&repo.sqlite, &repo.postgres, &repo.schema) {
        (Some(path), None, None) => {
            Arc::new(SqliteStore::open(path).map_err(|e| repo_err(path, e))?)
        }
        (None, Some(url), None) => {
            Arc::new(PgStore::connect(url).map_err(|e| repo_err("(postgres)", e))?)
        }
        (None, Some(url), Some(schema)) => Arc::new(
            PgStore::connect_in_schema(url, schema)
                .map_err(|e| repo_err(&format!("(postgres, schema {schema:?})"), e))?,
        ),
        _ => {
            return Err(FacadeError::usage(
                "session config: repository: give {\"sqlite\": PATH} or {\"postgres\": URL} \
                 (with an optional \"schema\")",
            ))
        }
    })
}

pub(crate) fn idp(mut c: IdpConnection) -> Result<EntraIdp> {
    let name = c.name.clone();
    let usage = |field: &str, why: String| {
        FacadeError::usage(format!("session config: idp {name:?}: {field}: {why}"))
    };
    let mut g = GraphConfig::new(c.tenant.clone());
    if let Some(b) = c.login_base.take() {
        g.login_base = b;
    }
    if let Some(b) = c.graph_base.take() {
        g.graph_base = b;
    }
    g.version = match c.graph_api_version.as_deref() {
        None | Some("v1.0") => ApiVersion::V1,
        Some("beta") => ApiVersion::Beta,
        Some(other) => {
            return Err(usage(
                "graph_api_version",
                format!("{other:?} is not \"v1.0\" or \"beta\""),
            ))
        }
    };
    let secret = c.client_secret.take().map(Zeroizing::new);
    let key_pem = c.private_key_pem.take().map(Zeroizing::new);
    let credential = match (secret, c.certificate_pem.take(), key_pem) {
        (Some(s), None, None) => Credential::ClientSecret {
            client_id: c.client_id.clone(),
            secret: Secret::new(s.as_str()),
        },
        (None, Some(cert), Some(key)) => {
            let cc = CertificateCredential::from_pem(&cert, &key, AssertionAlg::Ps256)
                .map_err(|e| usage("certificate_pem/private_key_pem", e.to_string()))?;
            Credential::Certificate {
                client_id: c.client_id.clone(),
                certificate: Box::new(cc),
            }
        }
        _ => {
            return Err(usage(
                "client_secret",
                "give either client_secret, or certificate_pem with private_key_pem".into(),
            ))
        }
    };
    let client = GraphClient::new(g, credential).map_err(|e| usage("connection", e.to_string()))?;
    Ok(EntraIdp::new(name, client))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pin_keys_are_64_hex_digits() {
        assert!(pin_key("07".repeat(32)).is_ok());
        let e = pin_key("07".repeat(31)).err().unwrap();
        assert!(e.message.contains("got 31"), "{}", e.message);
        let e = pin_key("zz".repeat(32)).err().unwrap();
        assert!(e.message.contains("pin_key"));
    }

    #[test]
    fn config_errors_name_the_field_and_hide_secrets() {
        let e = parse(r#"{"repository": {"sqlite": "x"}}"#).err().unwrap();
        assert!(e.message.contains("pin_key"), "{}", e.message);
        let e = parse(r#"{"repository": {"mysql": "x"}, "pin_key": ""}"#)
            .err()
            .unwrap();
        assert!(e.message.contains("mysql"), "{}", e.message);
        let cfg = parse(r#"{"repository": {"sqlite": "a", "postgres": "b"}, "pin_key": ""}"#)
            .ok()
            .unwrap();
        let e = store(&cfg.repository).err().unwrap();
        assert!(e.message.contains("repository"), "{}", e.message);
        let cfg = parse(r#"{"repository": {"sqlite": "a", "schema": "s"}, "pin_key": ""}"#)
            .ok()
            .unwrap();
        assert!(store(&cfg.repository).is_err());
        let cfg = parse(
            r#"{"repository": {"sqlite": "x"}, "pin_key": "",
                "idp": [{"name": "c", "tenant": "t", "client_id": "id",
                         "client_secret": "hunter2", "graph_api_version": "v9"}]}"#,
        )
        .ok()
        .unwrap();
        let mut cfg = cfg;
        let e = idp(cfg.idp.remove(0)).err().unwrap();
        assert!(e.message.contains("graph_api_version"));
        assert!(!e.message.contains("hunter2"));
    }
}
