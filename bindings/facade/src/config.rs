//! The session's configuration: one schema, read from JSON or TOML text or a file.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use entra_graph::auth::{AssertionAlg, CertificateCredential, Credential, Secret};
use entra_graph::{ApiVersion, GraphClient, GraphConfig};
use fido_core::trust::{pem_certificates, MdsBlob, TrustStore};
use lifecycle::diagnostics::{LogConfig, LogDestination};
use lifecycle::idp::EntraIdp;
#[cfg(feature = "sqlite")]
use lifecycle::store::SqliteStore;
#[cfg(feature = "postgres")]
use lifecycle::store::{PgOptions, PgStore};
use lifecycle::store::{PinKey, Store, StoreError};
use serde::Deserialize;
use zeroize::{Zeroize, Zeroizing};

use crate::{FacadeError, Result};

/// The configuration a [`crate::Session`] is opened from, the same fields in JSON and
/// TOML (see [`crate::Session::open`] for the JSON form). Read it with
/// [`SessionConfig::from_json`], [`SessionConfig::from_toml`], [`SessionConfig::parse`]
/// (either, by content) or [`SessionConfig::from_file`] (by extension, relative paths
/// relative to the file). Secrets are moved out into zeroizing holders as soon as the
/// session is opened; it has no `Debug`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionConfig {
    /// `{"sqlite": "path"}` or `{"postgres": "url"}`.
    #[serde(deserialize_with = "repository_table")]
    pub(crate) repository: Repository,
    /// The 32-byte host key sealing transport PINs, as 64 hex digits.
    #[serde(default)]
    pub(crate) pin_key: Option<String>,
    /// Or a file holding it (32 raw bytes or 64 hex digits).
    #[serde(default)]
    pub(crate) pin_key_file: Option<PathBuf>,
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
    /// Credential template set files (TOML or JSON).
    #[serde(default)]
    pub(crate) template_files: Vec<PathBuf>,
    /// Diagnostics, applied process-wide at open.
    #[serde(default)]
    pub(crate) log: Option<LogConfig>,
    /// Accept `softkey:` devices (software authenticators, whose keys can be copied):
    /// for tests and demos only; default `false`.
    #[serde(default)]
    pub(crate) allow_software_keys: bool,
    /// The FIDO Metadata Service (MDS3) BLOB file, the JWS as downloaded by the
    /// operator; checked offline against `mds_root` at open.
    #[serde(default)]
    pub(crate) mds_blob: Option<PathBuf>,
    /// The root certificate(s) the MDS BLOB must chain to (PEM or DER file).
    #[serde(default)]
    pub(crate) mds_root: Option<PathBuf>,
    /// Extra attestation root certificates (PEM files), for models not in MDS or a
    /// private CA.
    #[serde(default)]
    pub(crate) attestation_roots: Vec<PathBuf>,
}

impl Drop for SessionConfig {
    fn drop(&mut self) {
        if let Some(k) = self.pin_key.as_mut() {
            k.zeroize();
        }
    }
}

impl SessionConfig {
    /// Parses JSON text.
    pub fn from_json(text: &str) -> Result<SessionConfig> {
        let cfg: SessionConfig = serde_json::from_str(text)
            .map_err(|e| FacadeError::usage(format!("session config: {e}")))?;
        cfg.check()
    }

    /// Parses TOML text (the same fields; `[repository]`, `[[idp]]`, `[log]` tables).
    pub fn from_toml(text: &str) -> Result<SessionConfig> {
        let cfg: SessionConfig =
            toml::from_str(text).map_err(|e| FacadeError::usage(format!("session config: {e}")))?;
        cfg.check()
    }

    /// Parses JSON (text starting with `{`) or else TOML.
    pub fn parse(text: &str) -> Result<SessionConfig> {
        if text.trim_start().starts_with('{') {
            Self::from_json(text)
        } else {
            Self::from_toml(text)
        }
    }

    /// Reads a configuration file: `.json` is JSON, `.toml` TOML, anything else by
    /// content. Relative paths in it (SQLite file, `pin_key_file`, `template_files`,
    /// `client_secret_file`, a log directory) are relative to the file's directory.
    pub fn from_file(path: &Path) -> Result<SessionConfig> {
        let text =
            Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
                FacadeError::usage(format!("reading config {}: {e}", path.display()))
            })?);
        let ext = path.extension().and_then(|e| e.to_str());
        let parsed = match ext {
            Some(e) if e.eq_ignore_ascii_case("json") => Self::from_json(&text),
            Some(e) if e.eq_ignore_ascii_case("toml") => Self::from_toml(&text),
            _ => Self::parse(&text),
        };
        // The file named; the kind and reason (station_invalid, ...) kept.
        let mut cfg = parsed.map_err(|e| FacadeError {
            message: format!("{}: {}", path.display(), e.message),
            ..e
        })?;
        let base = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        cfg.resolve_paths(&base);
        Ok(cfg)
    }

    /// The attestation trust store: the MDS BLOB verified at `now` (Unix seconds) and the
    /// extra roots; empty when neither is configured.
    pub(crate) fn trust_store(&self, now: u64) -> Result<TrustStore> {
        let read = |what: &str, p: &Path| {
            std::fs::read(p).map_err(|e| {
                FacadeError::usage(format!("session config: {what} {}: {e}", p.display()))
            })
        };
        let mds = match (&self.mds_blob, &self.mds_root) {
            (Some(blob), Some(root)) => {
                let root_bytes = read("mds_root", root)?;
                let roots = if root_bytes.starts_with(b"-----BEGIN") {
                    pem_certificates(&root_bytes)
                        .map_err(|e| FacadeError::usage(format!("session config: mds_root: {e}")))?
                } else {
                    vec![root_bytes]
                };
                let blob_bytes = read("mds_blob", blob)?;
                Some(MdsBlob::verify(&blob_bytes, &roots, now).map_err(|e| {
                    FacadeError::usage(format!("session config: mds_blob {}: {e}", blob.display()))
                        .with_reason("mds_blob_invalid")
                })?)
            }
            (None, None) => None,
            _ => {
                return Err(FacadeError::usage(
                    "session config: mds_blob and mds_root go together",
                ))
            }
        };
        let mut extra = Vec::new();
        for p in &self.attestation_roots {
            extra.extend(
                pem_certificates(&read("attestation_roots", p)?).map_err(|e| {
                    FacadeError::usage(format!(
                        "session config: attestation_roots {}: {e}",
                        p.display()
                    ))
                })?,
            );
        }
        TrustStore::new(mds, extra)
            .map_err(|e| FacadeError::usage(format!("session config: attestation roots: {e}")))
    }

    fn check(self) -> Result<SessionConfig> {
        if self.pin_key.is_some() == self.pin_key_file.is_some() {
            return Err(FacadeError::usage(
                "session config: give exactly one of pin_key (64 hex digits) and pin_key_file",
            ));
        }
        // The station names this CMS in journal claims: an empty one would be refused
        // only at the first claim, halfway through an activation.
        if self.station.trim().is_empty() {
            return Err(FacadeError::usage(
                "session config: station: must not be empty (it names this station in journal claims)",
            )
            .with_reason("station_invalid"));
        }
        // Connections are looked up by name: a second one of a name would shadow the
        // first (or be shadowed) without a word.
        let mut names = std::collections::BTreeSet::new();
        if let Some(c) = self.idp.iter().find(|c| !names.insert(c.name.as_str())) {
            return Err(FacadeError::usage(format!(
                "session config: idp: the connection name {:?} is given twice",
                c.name
            ))
            .with_reason("connection_duplicate"));
        }
        if self.station.chars().any(char::is_control) {
            return Err(FacadeError::usage(format!(
                "session config: station {:?}: must not contain control characters",
                self.station
            ))
            .with_reason("station_invalid"));
        }
        Ok(self)
    }

    fn resolve_paths(&mut self, base: &Path) {
        let join = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        if let Some(f) = self.pin_key_file.as_mut() {
            join(f);
        }
        self.template_files.iter_mut().for_each(join);
        self.attestation_roots.iter_mut().for_each(join);
        if let Some(f) = self.mds_blob.as_mut() {
            join(f);
        }
        if let Some(f) = self.mds_root.as_mut() {
            join(f);
        }
        for c in &mut self.idp {
            if let Some(f) = c.client_secret_file.as_mut() {
                join(f);
            }
            if let Some(f) = c.ca_file.as_mut() {
                join(f);
            }
        }
        if let Some(LogDestination::File(f)) = self.log.as_mut().map(|l| &mut l.destination) {
            join(&mut f.directory);
        }
        if let Some(f) = self.repository.sslrootcert.as_mut() {
            join(f);
        }
        if let Some(db) = self.repository.sqlite.as_mut() {
            if db != ":memory:" && Path::new(db.as_str()).is_relative() {
                *db = base.join(&*db).to_string_lossy().into_owned();
            }
        }
    }

    /// The diagnostics configuration (`log`), if any.
    pub fn log(&self) -> Option<&LogConfig> {
        self.log.as_ref()
    }

    /// Replaces the diagnostics configuration applied at open (`None`: leave the
    /// process's diagnostics as they are).
    pub fn set_log(&mut self, log: Option<LogConfig>) {
        self.log = log;
    }

    /// The credential template set texts: `templates`, then each of `template_files`.
    pub(crate) fn template_texts(&self) -> Result<Vec<(String, String)>> {
        let mut out: Vec<(String, String)> = self
            .templates
            .iter()
            .enumerate()
            .map(|(i, t)| (format!("templates[{i}]"), t.clone()))
            .collect();
        for f in &self.template_files {
            let text = std::fs::read_to_string(f).map_err(|e| {
                FacadeError::usage(format!(
                    "session config: template_files: {}: {e}",
                    f.display()
                ))
            })?;
            out.push((format!("template_files: {}", f.display()), text));
        }
        Ok(out)
    }

    /// The host key, from `pin_key` or `pin_key_file` (refused when group or others may
    /// read the file: reason `insecure_file`).
    pub(crate) fn take_pin_key(&mut self) -> Result<PinKey> {
        if let Some(hex) = self.pin_key.take() {
            return pin_key(hex);
        }
        let path = self.pin_key_file.clone().unwrap_or_default();
        PinKey::from_file(&path).map_err(|e| secret_file_error("pin_key_file", e))
    }
}

/// A secret file's refusal: a usage error naming the field; one that group or others
/// may read has the reason `insecure_file`.
fn secret_file_error(field: &str, e: StoreError) -> FacadeError {
    match e {
        StoreError::InsecureFile { .. } => {
            FacadeError::usage(format!("session config: {field}: {e}")).with_reason("insecure_file")
        }
        StoreError::Invalid { reason, .. } => {
            FacadeError::usage(format!("session config: {field} {reason}"))
        }
        other => FacadeError::usage(format!("session config: {field}: {other}")),
    }
}

fn default_station() -> String {
    "keysmith-facade".into()
}

/// Where the repository is: `{"sqlite": "PATH"}`, `{"postgres": "URL"}` or
/// `{"postgres": "URL", "schema": "NAME"}` (all tables in that schema, created if
/// missing: several repositories in one database), optionally with
/// `"sslrootcert": "PEM FILE"` (the roots the server certificate must chain to, when the
/// URL names none). PostgreSQL is TLS with `verify-full` to any host that is not
/// loopback; see [`PgStore`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Repository {
    #[serde(default)]
    sqlite: Option<String>,
    #[serde(default)]
    postgres: Option<String>,
    #[serde(default)]
    schema: Option<String>,
    #[serde(default)]
    sslrootcert: Option<PathBuf>,
}

/// `repository` as a table only: serde would also read the struct from an array, by
/// position (`["x.db"]` silently opening SQLite `x.db`).
fn repository_table<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Repository, D::Error> {
    struct Table;
    impl<'de> serde::de::Visitor<'de> for Table {
        type Value = Repository;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a repository table ({sqlite = PATH} or {postgres = URL, ...})")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            map: A,
        ) -> std::result::Result<Repository, A::Error> {
            Repository::deserialize(serde::de::value::MapAccessDeserializer::new(map))
        }
    }
    d.deserialize_map(Table)
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
    /// The name of an environment variable holding the client secret.
    #[serde(default)]
    client_secret_env: Option<String>,
    /// A file holding the client secret (trimmed).
    #[serde(default)]
    client_secret_file: Option<PathBuf>,
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
    /// A PEM file of extra trusted root certificates for the login and Graph endpoints
    /// (a TLS-inspecting proxy's private root), beside the operating system's store.
    #[serde(default)]
    ca_file: Option<PathBuf>,
    /// A proxy URL for this connection in place of `HTTPS_PROXY`; `"direct"` for none.
    #[serde(default)]
    proxy: Option<String>,
    /// Hosts that bypass `proxy` (`NO_PROXY` syntax); only with `proxy`.
    #[serde(default)]
    no_proxy: Option<String>,
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

#[cfg(test)]
pub(crate) fn parse(json: &str) -> Result<SessionConfig> {
    SessionConfig::from_json(json)
}

/// Hex of either case into a zeroized buffer, through base16ct: constant-time, because the
/// host key (`pin_key`) is a secret.
fn unhex(s: &str) -> Option<Zeroizing<Vec<u8>>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let mut out = Zeroizing::new(vec![0u8; s.len() / 2]);
    base16ct::mixed::decode(s, &mut out[..]).ok()?;
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
    // A PostgreSQL URL may carry a password: it is never put in a message.
    match (&repo.sqlite, &repo.postgres) {
        (Some(path), None) if repo.schema.is_none() && repo.sslrootcert.is_none() => {
            sqlite_store(path)
        }
        (None, Some(url)) => postgres_store(repo, url),
        _ => Err(FacadeError::usage(
            "session config: repository: give {\"sqlite\": PATH} or {\"postgres\": URL} \
             (with an optional \"schema\" and \"sslrootcert\")",
        )),
    }
}

/// A store error as a facade error naming the repository (`what`).
#[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
fn repo_err(what: &str, e: StoreError) -> FacadeError {
    let mut f = FacadeError::from(lifecycle::Error::from(e));
    f.message = format!("repository {what}: {}", f.message);
    f
}

/// Opens a SQLite repository (`:memory:` for one in memory).
#[cfg(feature = "sqlite")]
fn sqlite_store(path: &str) -> Result<Arc<dyn Store>> {
    Ok(if path == ":memory:" {
        Arc::new(SqliteStore::open_in_memory().map_err(|e| repo_err(path, e))?)
    } else {
        Arc::new(SqliteStore::open(path).map_err(|e| repo_err(path, e))?)
    })
}

/// Without the `sqlite` feature: a usage error naming the feature.
#[cfg(not(feature = "sqlite"))]
fn sqlite_store(_path: &str) -> Result<Arc<dyn Store>> {
    Err(FacadeError::usage(
        "session config: repository: SQLite is not in this build (cargo feature `sqlite`)",
    ))
}

/// Connects to a PostgreSQL repository.
#[cfg(feature = "postgres")]
fn postgres_store(repo: &Repository, url: &str) -> Result<Arc<dyn Store>> {
    let options = PgOptions {
        schema: repo.schema.clone(),
        root_cert: repo.sslrootcert.clone(),
    };
    let what = match &repo.schema {
        Some(schema) => format!("(postgres, schema {schema:?})"),
        None => "(postgres)".to_owned(),
    };
    Ok(Arc::new(
        PgStore::connect_with(url, &options).map_err(|e| repo_err(&what, e))?,
    ))
}

/// Without the `postgres` feature: a usage error naming the feature.
#[cfg(not(feature = "postgres"))]
fn postgres_store(_repo: &Repository, _url: &str) -> Result<Arc<dyn Store>> {
    Err(FacadeError::usage(
        "session config: repository: PostgreSQL is not in this build (cargo feature `postgres`)",
    ))
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
    g.network = entra_graph::net::NetworkOptions {
        ca_file: c.ca_file.take(),
        proxy: c.proxy.take(),
        no_proxy: c.no_proxy.take(),
    };
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
    let secret = match (
        c.client_secret.take(),
        c.client_secret_env.take(),
        c.client_secret_file.take(),
    ) {
        (s, None, None) => s.map(Zeroizing::new),
        (None, Some(var), None) => Some(Zeroizing::new(std::env::var(&var).map_err(|_| {
            usage(
                "client_secret_env",
                format!("environment variable {var} is not set"),
            )
        })?)),
        (None, None, Some(f)) => {
            // Refused when group or others may read it, as the host key file.
            let bytes = lifecycle::files::read_secret_file(&f, "client_secret_file")
                .map_err(|e| secret_file_error(&format!("idp {name:?}: client_secret_file"), e))?;
            let text = std::str::from_utf8(&bytes).map_err(|_| {
                usage(
                    "client_secret_file",
                    format!("{}: not UTF-8 text", f.display()),
                )
            })?;
            Some(Zeroizing::new(text.trim().to_owned()))
        }
        _ => {
            return Err(usage(
                "client_secret",
                "give one of client_secret, client_secret_env and client_secret_file".into(),
            ))
        }
    };
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
                "give either a client secret (client_secret, client_secret_env or \
                 client_secret_file), or certificate_pem with private_key_pem"
                    .into(),
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
        // base16ct: either case, and no sign characters (from_str_radix took "+7").
        assert!(pin_key("aB".repeat(32)).is_ok());
        assert!(pin_key("+7".repeat(32)).is_err());
        assert!(pin_key(format!("{}7", "07".repeat(31))).is_err());
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

    #[test]
    fn idp_network_fields_reach_the_graph_client() {
        let with = |extra: &str| {
            let mut cfg = parse(&format!(
                r#"{{"repository": {{"sqlite": "x"}}, "pin_key": "",
                    "idp": [{{"name": "c", "tenant": "t", "client_id": "id",
                             "client_secret": "s", {extra}}}]}}"#
            ))
            .ok()
            .unwrap();
            idp(cfg.idp.remove(0)).map(|_| ())
        };
        with(r#""proxy": "http://proxy.corp:3128", "no_proxy": "localhost""#).unwrap();
        with(r#""proxy": "direct""#).unwrap();
        let e = with(r#""proxy": "socks9://proxy.corp:1""#).err().unwrap();
        assert!(e.message.contains("proxy"), "{}", e.message);
        let e = with(r#""no_proxy": "localhost""#).err().unwrap();
        assert!(e.message.contains("no_proxy"), "{}", e.message);
        let e = with(r#""ca_file": "/nonexistent/corporate-root.pem""#)
            .err()
            .unwrap();
        assert!(e.message.contains("ca_file"), "{}", e.message);
    }

    #[test]
    fn an_empty_station_is_refused_at_open_naming_the_field() {
        for station in ["", "   ", "a\nb", "nul\u{0}"] {
            let json = serde_json::json!({
                "repository": {"sqlite": "k.db"}, "pin_key_file": "host.key", "station": station,
            })
            .to_string();
            let e = SessionConfig::from_json(&json).err().unwrap();
            assert_eq!(e.kind, crate::ErrorKind::Usage, "{station:?}");
            assert_eq!(e.reason, "station_invalid", "{station:?}");
            assert!(e.message.contains("station"), "{}", e.message);
            let toml = format!(
                "station = {}\npin_key_file = \"host.key\"\nrepository = {{ sqlite = \"k.db\" }}\n",
                serde_json::to_string(station).unwrap()
            );
            let e = SessionConfig::from_toml(&toml).err().unwrap();
            assert_eq!(e.reason, "station_invalid", "{station:?}");
        }
        // The default and ordinary names are fine.
        let ok = r#"{"repository": {"sqlite": "k.db"}, "pin_key_file": "host.key"}"#;
        assert!(SessionConfig::from_json(ok).is_ok());
    }

    #[test]
    fn a_connection_name_given_twice_and_a_repository_array_are_refused() {
        let c = r#"{"name": "c", "tenant": "t", "client_id": "id", "client_secret": "s"}"#;
        let json = format!(
            r#"{{"repository": {{"sqlite": "k.db"}}, "pin_key_file": "k", "idp": [{c}, {c}]}}"#
        );
        let e = SessionConfig::from_json(&json).err().unwrap();
        assert_eq!(e.reason, "connection_duplicate", "{}", e.message);
        assert!(e.message.contains("\"c\""), "{}", e.message);
        // serde reads a struct from an array by position: ["x.db"] was SQLite x.db.
        let e = SessionConfig::from_json(r#"{"repository": ["x.db"], "pin_key_file": "k"}"#)
            .err()
            .unwrap();
        assert!(e.message.contains("repository table"), "{}", e.message);
        let e = SessionConfig::from_toml("repository = [\"x.db\"]\npin_key_file = \"k\"\n")
            .err()
            .unwrap();
        assert!(e.message.contains("repository table"), "{}", e.message);
    }

    #[test]
    fn toml_and_json_have_the_same_fields() {
        let json = r#"{"repository": {"sqlite": "k.db"}, "pin_key_file": "host.key",
            "station": "s1", "template_files": ["t.toml"],
            "idp": [{"name": "c", "tenant": "t", "client_id": "id",
                     "client_secret_env": "SECRET", "graph_api_version": "beta"}],
            "log": {"level": "debug"}}"#;
        let toml = "station = \"s1\"\npin_key_file = \"host.key\"\n\
                    template_files = [\"t.toml\"]\nrepository = { sqlite = \"k.db\" }\n\
                    [[idp]]\nname = \"c\"\ntenant = \"t\"\nclient_id = \"id\"\n\
                    client_secret_env = \"SECRET\"\ngraph_api_version = \"beta\"\n\
                    [log]\nlevel = \"debug\"\n";
        for cfg in [
            SessionConfig::from_json(json).ok().unwrap(),
            SessionConfig::from_toml(toml).ok().unwrap(),
            SessionConfig::parse(toml).ok().unwrap(),
            SessionConfig::parse(json).ok().unwrap(),
        ] {
            assert_eq!(cfg.station, "s1");
            assert_eq!(cfg.repository.sqlite.as_deref(), Some("k.db"));
            assert_eq!(cfg.template_files, [PathBuf::from("t.toml")]);
            assert_eq!(cfg.idp[0].client_secret_env.as_deref(), Some("SECRET"));
            assert_eq!(cfg.log().map(|l| l.level.as_str()), Some("debug"));
        }
        let e = SessionConfig::from_toml(
            "pin_key = \"\"\nrepository = { sqlite = \"x\" }\nbogus = 1\n",
        )
        .err()
        .unwrap();
        assert!(e.message.contains("bogus"), "{}", e.message);
        let e = SessionConfig::from_json(
            r#"{"repository": {"sqlite": "x"}, "pin_key": "", "pin_key_file": "f"}"#,
        )
        .err()
        .unwrap();
        assert!(e.message.contains("exactly one"), "{}", e.message);
    }

    #[test]
    fn config_files_resolve_relative_paths_against_their_directory() {
        let dir = std::env::temp_dir().join(format!("keysmith-facade-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("keysmith.toml");
        std::fs::write(
            &path,
            "pin_key_file = \"host.key\"\nrepository = { sqlite = \"k.db\" }\n\
             [log]\ndestination = { kind = \"file\", directory = \"logs\" }\n",
        )
        .unwrap();
        let cfg = SessionConfig::from_file(&path).ok().unwrap();
        assert_eq!(
            cfg.pin_key_file.as_deref(),
            Some(dir.join("host.key").as_path())
        );
        assert_eq!(
            cfg.repository.sqlite.as_deref(),
            Some(dir.join("k.db").to_str().unwrap())
        );
        let pg = dir.join("pg.toml");
        std::fs::write(
            &pg,
            "pin_key = \"\"\nrepository = { postgres = \"postgresql://db.example.com/ks\", \
             sslrootcert = \"ca.pem\" }\n",
        )
        .unwrap();
        let pg_cfg = SessionConfig::from_file(&pg).ok().unwrap();
        assert_eq!(
            pg_cfg.repository.sslrootcert.as_deref(),
            Some(dir.join("ca.pem").as_path())
        );
        // Plaintext to that host is refused before connecting, naming the host only.
        let plain = parse(
            r#"{"repository": {"postgres": "postgresql://u:hunter2@db.example.com/ks?sslmode=disable"},
                "pin_key": ""}"#,
        )
        .ok()
        .unwrap();
        let e = store(&plain.repository).err().unwrap();
        assert_eq!(e.reason, "insecure_connection", "{}", e.message);
        assert!(e.message.contains("db.example.com"), "{}", e.message);
        assert!(!e.message.contains("hunter2"), "{}", e.message);
        match cfg.log().map(|l| &l.destination) {
            Some(LogDestination::File(f)) => assert_eq!(f.directory, dir.join("logs")),
            _ => panic!("no file destination"),
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
