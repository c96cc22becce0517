//! keysmith's one URL policy (issue 17 item 6): every URL that a configuration file, the
//! CLI, the server or the agent accepts (Graph and login bases, OIDC issuers and JWKS URLs,
//! the agent's server URL, template origins) goes through [`check`]; proxy URLs, which may
//! be plain http to any host and may carry proxy credentials, through [`check_proxy`].
//!
//! The rule: `https://`, or plain `http://` to a loopback host only (`localhost`,
//! 127.0.0.0/8, `[::1]`: the emulator and test servers); a host is required; no user name
//! or password in the URL; no whitespace or control characters (the WHATWG parser would
//! silently drop tabs and newlines, so they are refused before parsing). Parsing is the
//! `url` crate's.
//!
//! ```
//! assert!(keysmith_url::check("https://login.microsoftonline.com/t/v2.0").is_ok());
//! assert!(keysmith_url::check("http://127.0.0.1:8080").unwrap().is_loopback());
//! assert!(keysmith_url::check("http://graph.example.com").is_err());
//! ```
#![warn(missing_docs)]

use std::net::IpAddr;

use url::{Host, Url};

mod proxy;
pub use proxy::{check_proxy, redact_password};

/// Why a URL was refused. Each message quotes the URL as given.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UrlError {
    /// Not a URL with a scheme, or a scheme other than `https`/`http`.
    #[error("{url:?} is not an https URL")]
    NotHttps {
        /// The URL as given.
        url: String,
    },
    /// Whitespace or a control character somewhere in the URL.
    #[error("{url:?} contains whitespace")]
    Whitespace {
        /// The URL as given.
        url: String,
    },
    /// A user name or password in the URL.
    #[error("{url:?} carries credentials")]
    Credentials {
        /// The URL as given.
        url: String,
    },
    /// No host.
    #[error("{url:?} has no host")]
    NoHost {
        /// The URL as given.
        url: String,
    },
    /// Plain `http://` to a host that is not loopback.
    #[error("{url:?}: plain http is only allowed to loopback; use https")]
    PlainHttp {
        /// The URL as given.
        url: String,
    },
    /// A proxy URL ([`check_proxy`]) whose scheme is not `http` or `https`.
    #[error("{url:?} is not an http or https proxy URL")]
    NotProxy {
        /// The URL as given, its password replaced by `***`.
        url: String,
    },
    /// Not a valid URL (a bad port, IP address or host name).
    #[error("{url:?} is not a valid URL: {reason}")]
    Invalid {
        /// The URL as given.
        url: String,
        /// What the parser said.
        reason: String,
    },
}

/// A URL that passed [`check`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckedUrl {
    host: String,
    loopback: bool,
}

impl CheckedUrl {
    /// The host, lower-case, without port (an IPv6 address in brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Whether the host is loopback (plain http is allowed only then).
    pub fn is_loopback(&self) -> bool {
        self.loopback
    }
}

/// Checks `url` against the policy (see the crate documentation).
pub fn check(url: &str) -> Result<CheckedUrl, UrlError> {
    let owned = || url.to_owned();
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(UrlError::Whitespace { url: owned() });
    }
    let parsed = match Url::parse(url) {
        Ok(u) => u,
        Err(url::ParseError::RelativeUrlWithoutBase) => {
            return Err(UrlError::NotHttps { url: owned() })
        }
        Err(url::ParseError::EmptyHost) => return Err(UrlError::NoHost { url: owned() }),
        Err(e) => {
            return Err(UrlError::Invalid {
                url: owned(),
                reason: e.to_string(),
            })
        }
    };
    let plain = match parsed.scheme() {
        "https" => false,
        "http" => true,
        _ => return Err(UrlError::NotHttps { url: owned() }),
    };
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(UrlError::Credentials { url: owned() });
    }
    match parsed.host() {
        None | Some(Host::Domain("")) => return Err(UrlError::NoHost { url: owned() }),
        Some(_) => {}
    }
    let loopback = is_loopback(&parsed);
    if plain && !loopback {
        return Err(UrlError::PlainHttp { url: owned() });
    }
    Ok(CheckedUrl {
        host: parsed.host_str().unwrap_or_default().to_owned(),
        loopback,
    })
}

/// Whether `url`'s host is `localhost` or a loopback address.
fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(d)) => d == "localhost",
        Some(Host::Ipv4(a)) => IpAddr::V4(a).is_loopback(),
        Some(Host::Ipv6(a)) => IpAddr::V6(a).is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_anywhere_http_to_loopback_only() {
        for ok in [
            "https://login.microsoftonline.com/t/v2.0",
            "https://a.b:8443/x",
            "http://127.0.0.1:8080/t/v2.0",
            "http://127.0.0.2:9/",
            "http://localhost/",
            "http://[::1]:8443/keys",
        ] {
            assert!(check(ok).is_ok(), "{ok}");
        }
        for (bad, want) in [
            ("http://evil.example/keys", "plain http"),
            ("http://localhost.evil.example/", "plain http"),
            ("http://10.0.0.1/", "plain http"),
            ("file:///etc/passwd", "not an https URL"),
            ("ftp://x", "not an https URL"),
            ("login.example", "not an https URL"),
            ("https://user@h/x", "carries credentials"),
            ("https://:pw@h/x", "carries credentials"),
            ("https://", "has no host"),
            ("https://a.example/\tx", "whitespace"),
            ("https://evil\n.example", "whitespace"),
            ("https://a.example:99999/", "not a valid URL"),
        ] {
            let e = check(bad).unwrap_err().to_string();
            assert!(e.contains(want), "{bad}: {e}");
            assert!(e.contains(&format!("{bad:?}")), "names the URL: {e}");
        }
    }

    #[test]
    fn host_is_lower_case_without_port() {
        assert_eq!(check("https://A.B:8443/x").unwrap().host(), "a.b");
        assert_eq!(
            check("http://127.0.0.1:8080/v2.0").unwrap().host(),
            "127.0.0.1"
        );
        assert_eq!(check("http://[::1]/").unwrap().host(), "[::1]");
        assert!(!check("https://a.b").unwrap().is_loopback());
    }
}
