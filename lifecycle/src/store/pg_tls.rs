//! How the PostgreSQL store reaches its server: `sslmode` and `sslrootcert` read from the
//! connection string (libpq's names), the loopback rule, and the rustls connector.
//!
//! The rule: a connection to any host that is not loopback (a Unix socket, `localhost`,
//! `127.0.0.0/8`, `::1`) is TLS with the server certificate verified, `verify-full` by
//! default; asking for plaintext to such a host (`disable`, `allow`, `prefer`) is refused
//! with [`StoreError::InsecureConnection`] before anything is sent. A loopback host is
//! plaintext unless `sslmode` asks for TLS. keysmith never accepts an unverified server
//! certificate: `require` verifies like `verify-full`, `verify-ca` checks the chain only.
//! The roots are the `sslrootcert` PEM file, or else the public Web PKI roots
//! (`sslrootcert=system` says so explicitly).

use super::{Result, StoreError};
use postgres::config::{Host, SslMode as PgSslMode};
use postgres::Config;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_postgres_rustls::MakeRustlsConnect;

/// libpq's `sslmode` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SslMode {
    /// Plaintext (loopback only).
    Disable,
    /// Plaintext here (keysmith does not do unverified opportunistic TLS); loopback only.
    Allow,
    /// As `Allow`.
    Prefer,
    /// TLS, verified as `VerifyFull` (keysmith never accepts an unverified certificate).
    Require,
    /// TLS, the chain verified against the roots, the host name not checked.
    VerifyCa,
    /// TLS, the chain and the host name verified (the default for a non-loopback host).
    VerifyFull,
}

impl SslMode {
    fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => {
                return Err(StoreError::Invalid {
                    field: "sslmode",
                    reason: format!(
                        "{other:?}: use disable, allow, prefer, require, verify-ca or verify-full"
                    ),
                })
            }
        })
    }

    /// The libpq name.
    pub const fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    fn plaintext(self) -> bool {
        matches!(self, SslMode::Disable | SslMode::Allow | SslMode::Prefer)
    }
}

/// What [`plan`] decided: the driver's config (without our parameters) and how to wrap
/// the socket.
pub(super) struct Plan {
    pub(super) config: Config,
    pub(super) tls: Tls,
    /// The effective mode (for messages and tests).
    pub(super) mode: SslMode,
}

/// The socket wrapper a connection uses.
#[derive(Clone)]
pub(super) enum Tls {
    /// Plaintext (loopback only).
    Plain,
    /// rustls with a verifying config.
    Rustls(MakeRustlsConnect),
}

/// The connection string without `sslmode`/`sslrootcert`, and their values.
#[derive(Debug, PartialEq, Eq)]
struct Split {
    rest: String,
    sslmode: Option<String>,
    sslrootcert: Option<String>,
}

fn bad_url(why: impl core::fmt::Display) -> StoreError {
    // Never echo the string: it may carry a password.
    StoreError::Backend(format!("postgres: bad connection string: {why}"))
}

/// Takes `sslmode` and `sslrootcert` out of a URL (`postgres[ql]://...?k=v&...`) or a
/// key=value connection string; everything else is left byte for byte for the driver.
fn split_params(url: &str) -> Result<Split> {
    let mut out = Split {
        rest: String::new(),
        sslmode: None,
        sslrootcert: None,
    };
    let mut take = |key: &str, value: String| -> bool {
        match key {
            "sslmode" => out.sslmode = Some(value),
            "sslrootcert" => out.sslrootcert = Some(value),
            _ => return false,
        }
        true
    };
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let Some((base, query)) = url.split_once('?') else {
            return Ok(Split {
                rest: url.to_owned(),
                sslmode: None,
                sslrootcert: None,
            });
        };
        let mut kept = Vec::new();
        for pair in query.split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let decode = |s: &str| {
                percent_encoding::percent_decode_str(s)
                    .decode_utf8()
                    .map(|c| c.into_owned())
                    .map_err(|_| bad_url("a query parameter is not UTF-8"))
            };
            if !take(&decode(k)?, decode(v)?) {
                kept.push(pair);
            }
        }
        let mut rest = base.to_owned();
        if !kept.is_empty() {
            rest.push('?');
            rest.push_str(&kept.join("&"));
        }
        out.rest = rest;
        return Ok(out);
    }
    // key = value pairs: a value is 'quoted' (\' and \\ escapes) or runs to whitespace.
    let bytes = url.as_bytes();
    let mut rest = String::with_capacity(url.len());
    let mut i = 0;
    while i < bytes.len() {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= bytes.len() {
            break;
        }
        let start = i;
        while i < bytes.len() && bytes[i] != b'=' && !bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let key = &url[start..i];
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if bytes.get(i) != Some(&b'=') {
            return Err(bad_url(format!("expected '=' after {key:?}")));
        }
        i += 1;
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let mut value = Vec::new();
        if bytes.get(i) == Some(&b'\'') {
            i += 1;
            loop {
                match bytes.get(i) {
                    None => return Err(bad_url(format!("unterminated quote in {key:?}"))),
                    Some(b'\'') => {
                        i += 1;
                        break;
                    }
                    Some(b'\\') if i + 1 < bytes.len() => {
                        value.push(bytes[i + 1]);
                        i += 2;
                    }
                    Some(&b) => {
                        value.push(b);
                        i += 1;
                    }
                }
            }
        } else {
            while i < bytes.len() && !bytes[i].is_ascii_whitespace() {
                if bytes[i] == b'\\' && i + 1 < bytes.len() {
                    i += 1;
                }
                value.push(bytes[i]);
                i += 1;
            }
        }
        let value = String::from_utf8(value).map_err(|_| bad_url("a value is not UTF-8"))?;
        if !take(key, value) {
            if !rest.is_empty() {
                rest.push(' ');
            }
            rest.push_str(&url[start..i]);
        }
    }
    out.rest = rest;
    Ok(out)
}

/// Whether a host is this machine: a Unix socket, `localhost` or a loopback address.
fn loopback_host(host: &Host) -> bool {
    match host {
        #[cfg(unix)]
        Host::Unix(_) => true,
        Host::Tcp(name) => {
            let name = name.trim_start_matches('[').trim_end_matches(']');
            name.eq_ignore_ascii_case("localhost")
                || name.parse::<IpAddr>().is_ok_and(|a| a.is_loopback())
        }
    }
}

/// The first host that is not loopback, if any. A `hostaddr` does not make a named host
/// loopback: the name is what the certificate is checked against.
fn remote_host(config: &Config) -> Option<String> {
    if config.get_hosts().is_empty() {
        return config
            .get_hostaddrs()
            .iter()
            .find(|a| !a.is_loopback())
            .map(IpAddr::to_string);
    }
    config
        .get_hosts()
        .iter()
        .find(|h| !loopback_host(h))
        .map(|h| match h {
            Host::Tcp(name) => name.clone(),
            #[cfg(unix)]
            Host::Unix(p) => p.display().to_string(),
        })
}

/// Parses the connection string and decides how to connect: see the module docs.
/// `root_cert` (from the session config) is used when the string has no `sslrootcert`.
pub(super) fn plan(url: &str, root_cert: Option<&Path>) -> Result<Plan> {
    let split = split_params(url)?;
    let mut config: Config = split
        .rest
        .parse()
        .map_err(|e| StoreError::Backend(format!("postgres: bad connection string: {e}")))?;
    let remote = remote_host(&config);
    let mode = match split.sslmode.as_deref() {
        Some(m) => SslMode::parse(m)?,
        None if remote.is_some() => SslMode::VerifyFull,
        None => SslMode::Disable,
    };
    if mode.plaintext() {
        if let Some(host) = remote {
            return Err(StoreError::InsecureConnection {
                host,
                reason: format!(
                    "sslmode={} would send the repository in plaintext to a host that is not \
                     loopback; use sslmode=verify-full (the default) with sslrootcert",
                    mode.as_str()
                ),
            });
        }
        config.ssl_mode(PgSslMode::Disable);
        return Ok(Plan {
            config,
            tls: Tls::Plain,
            mode,
        });
    }
    let root_file = match split.sslrootcert {
        Some(s) if s == "system" => None,
        Some(s) => Some(PathBuf::from(s)),
        None => root_cert.map(Path::to_path_buf),
    };
    let client = client_config(mode, root_file.as_deref())?;
    config.ssl_mode(PgSslMode::Require);
    Ok(Plan {
        config,
        tls: Tls::Rustls(MakeRustlsConnect::new(client)),
        mode,
    })
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The trust roots: the PEM certificates in `file`, or the public Web PKI roots.
fn roots(file: Option<&Path>) -> Result<RootCertStore> {
    let mut store = RootCertStore::empty();
    let Some(file) = file else {
        store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        return Ok(store);
    };
    let invalid = |why: String| StoreError::Invalid {
        field: "sslrootcert",
        reason: format!("{}: {why}", file.display()),
    };
    let pem = std::fs::read(file).map_err(|e| invalid(e.to_string()))?;
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| invalid(format!("not a PEM certificate file: {e}")))?;
        store
            .add(cert)
            .map_err(|e| invalid(format!("a certificate is not usable as a root: {e}")))?;
    }
    if store.is_empty() {
        return Err(invalid("holds no certificate".into()));
    }
    Ok(store)
}

fn client_config(mode: SslMode, root_file: Option<&Path>) -> Result<ClientConfig> {
    let tls_err = |e: rustls::Error| StoreError::Tls {
        reason: e.to_string(),
    };
    let roots = Arc::new(roots(root_file)?);
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(tls_err)?;
    Ok(match mode {
        SslMode::VerifyCa => {
            let inner = WebPkiServerVerifier::builder_with_provider(roots, provider())
                .build()
                .map_err(|e| StoreError::Tls {
                    reason: e.to_string(),
                })?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(ChainOnly(inner)))
                .with_no_client_auth()
        }
        _ => builder.with_root_certificates(roots).with_no_client_auth(),
    })
}

/// `verify-ca`: the WebPKI verifier, with a name mismatch (only) forgiven.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> core::result::Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> core::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> core::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// The TLS failure behind a driver error, if it is one (handshake refused, certificate
/// not trusted, server without TLS).
pub(super) fn tls_failure(e: &postgres::Error) -> Option<String> {
    let mut src: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = src {
        if let Some(r) = s.downcast_ref::<rustls::Error>() {
            return Some(r.to_string());
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            if let Some(r) = io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                return Some(r.to_string());
            }
        }
        src = s.source();
    }
    let text = e.to_string();
    text.contains("TLS").then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(url: &str) -> StoreError {
        match plan(url, None) {
            Err(e) => e,
            Ok(p) => panic!("{url}: planned {:?}", p.mode),
        }
    }

    #[test]
    fn plaintext_to_a_non_loopback_host_is_refused_before_connecting() {
        for url in [
            "postgresql://u:pw@db.example.com/ks?sslmode=disable",
            "postgresql://u:pw@10.1.2.3:5432/ks?sslmode=prefer",
            "postgresql://u:pw@db.example.com/ks?sslmode=allow",
            "host=db.example.com user=u password='p w' sslmode=disable",
            "host=localhost,db.example.com user=u sslmode=prefer",
            "host=db.example.com hostaddr=127.0.0.1 user=u sslmode=disable",
        ] {
            match refused(url) {
                StoreError::InsecureConnection { host, reason } => {
                    assert!(
                        host.contains("db.example.com") || host == "10.1.2.3",
                        "{host}"
                    );
                    assert!(reason.contains("plaintext"), "{reason}");
                    assert!(!reason.contains("pw"), "{reason}");
                }
                other => panic!("{url}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_non_loopback_host_defaults_to_verify_full_and_loopback_to_plaintext() {
        for url in [
            "postgresql://u@db.example.com/ks",
            "host=db.example.com user=u",
            "postgresql://u@db.example.com/ks?sslmode=require",
        ] {
            let p = plan(url, None).unwrap();
            assert!(matches!(p.tls, Tls::Rustls(_)), "{url}");
            assert_eq!(p.config.get_ssl_mode(), PgSslMode::Require, "{url}");
        }
        assert_eq!(
            plan("postgresql://u@db.example.com/ks", None).unwrap().mode,
            SslMode::VerifyFull
        );
        for url in [
            "postgresql://u@127.0.0.1:5432/ks",
            "postgresql://u@localhost/ks?sslmode=disable",
            "postgresql://u@[::1]:5432/ks",
            "host=/var/run/postgresql user=u",
            "host=127.0.0.2 user=u sslmode=prefer",
        ] {
            let p = plan(url, None).unwrap();
            assert!(matches!(p.tls, Tls::Plain), "{url}");
            assert_eq!(p.config.get_ssl_mode(), PgSslMode::Disable, "{url}");
        }
        let p = plan("postgresql://u@127.0.0.1/ks?sslmode=verify-ca", None).unwrap();
        assert_eq!(p.mode, SslMode::VerifyCa);
        assert!(matches!(p.tls, Tls::Rustls(_)));
    }

    #[test]
    fn our_parameters_are_taken_out_and_the_rest_left_alone() {
        let s = split_params(
            "postgresql://u:p%3Fw@h:1/db?application_name=x&sslmode=verify-ca&sslrootcert=%2Ftmp%2Fca.pem",
        )
        .unwrap();
        assert_eq!(s.rest, "postgresql://u:p%3Fw@h:1/db?application_name=x");
        assert_eq!(s.sslmode.as_deref(), Some("verify-ca"));
        assert_eq!(s.sslrootcert.as_deref(), Some("/tmp/ca.pem"));
        let s = split_params(
            "host=h  sslrootcert = '/a b/c\\'a.pem' password='x y' sslmode=require dbname=d",
        )
        .unwrap();
        assert_eq!(s.rest, "host=h password='x y' dbname=d");
        assert_eq!(s.sslrootcert.as_deref(), Some("/a b/c'a.pem"));
        assert_eq!(s.sslmode.as_deref(), Some("require"));
        assert!(split_params("host=h password='open").is_err());
        assert!(split_params("host").is_err());
        assert!(matches!(
            plan("postgresql://u@h/db?sslmode=sometimes", None),
            Err(StoreError::Invalid {
                field: "sslmode",
                ..
            })
        ));
    }

    #[test]
    fn a_root_file_without_certificates_is_refused() {
        let dir = std::env::temp_dir().join(format!("ks-pgtls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("empty.pem");
        std::fs::write(&f, "not a certificate\n").unwrap();
        let e = plan("postgresql://u@db.example.com/ks", Some(&f))
            .err()
            .unwrap();
        assert!(
            matches!(&e, StoreError::Invalid { field: "sslrootcert", reason } if reason.contains("no certificate")),
            "{e:?}"
        );
        let e = plan(
            "postgresql://u@db.example.com/ks?sslrootcert=/nonexistent/ca.pem",
            None,
        )
        .err()
        .unwrap();
        assert!(matches!(
            e,
            StoreError::Invalid {
                field: "sslrootcert",
                ..
            }
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
