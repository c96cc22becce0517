//! The policy for proxy URLs (`proxy` settings; see [`check_proxy`]).

use url::Url;

use crate::{CheckedUrl, UrlError};

/// Checks a proxy URL: `http://` or `https://` to any host (a corporate proxy is usually
/// plain HTTP on the local network: the TLS to the real server goes inside its CONNECT
/// tunnel), a host required, a user name and password allowed (proxy authentication), no
/// whitespace or control characters, no query or fragment. Error messages quote the URL
/// with its password replaced by `***`.
///
/// ```
/// assert!(keysmith_url::check_proxy("http://proxy.contoso.com:3128").is_ok());
/// assert!(keysmith_url::check_proxy("http://user:pw@10.0.0.1:8080").is_ok());
/// let e = keysmith_url::check_proxy("socks5://user:secret@h:1").unwrap_err();
/// assert!(!e.to_string().contains("secret"));
/// ```
pub fn check_proxy(url: &str) -> Result<CheckedUrl, UrlError> {
    let shown = || redact_password(url);
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(UrlError::Whitespace { url: shown() });
    }
    let parsed = match Url::parse(url) {
        Ok(u) => u,
        Err(url::ParseError::RelativeUrlWithoutBase) => {
            return Err(UrlError::NotProxy { url: shown() })
        }
        Err(url::ParseError::EmptyHost) => return Err(UrlError::NoHost { url: shown() }),
        Err(e) => {
            return Err(UrlError::Invalid {
                url: shown(),
                reason: e.to_string(),
            })
        }
    };
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(UrlError::NotProxy { url: shown() });
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(UrlError::Invalid {
            url: shown(),
            reason: "a proxy URL has no query or fragment".into(),
        });
    }
    match parsed.host_str() {
        None | Some("") => Err(UrlError::NoHost { url: shown() }),
        Some(host) => Ok(CheckedUrl {
            host: host.to_owned(),
            loopback: crate::is_loopback(&parsed),
        }),
    }
}

/// `url` with the password of its user info replaced by `***` (the whole user info when
/// it does not parse), for messages and logs.
pub fn redact_password(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        Ok(_) => url.to_owned(),
        // Not parseable: cut anything between the scheme and the last `@` before the host.
        Err(_) => match (url.find("://"), url.rfind('@')) {
            (Some(s), Some(at)) if at > s => format!("{}***{}", &url[..s + 3], &url[at..]),
            _ => url.to_owned(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxies_are_http_or_https_anywhere_with_credentials_allowed() {
        for ok in [
            "http://proxy.contoso.com:3128",
            "http://10.0.0.1:8080/",
            "https://proxy.contoso.com",
            "http://user:pw@proxy:3128",
            "http://127.0.0.1:9",
        ] {
            assert!(check_proxy(ok).is_ok(), "{ok}");
        }
        assert_eq!(
            check_proxy("http://P.Example:1").unwrap().host(),
            "p.example"
        );
        assert!(check_proxy("http://127.0.0.1:9").unwrap().is_loopback());
        for (bad, want) in [
            ("socks5://h:1", "not an http or https proxy URL"),
            ("proxy.contoso.com:3128", "not an http or https proxy URL"),
            ("direct", "not an http or https proxy URL"),
            ("http://", "has no host"),
            ("http://h:1/?x=1", "no query"),
            ("http://h\t:1", "whitespace"),
            ("http://h:99999", "not a valid URL"),
        ] {
            let e = check_proxy(bad).unwrap_err().to_string();
            assert!(e.contains(want), "{bad}: {e}");
        }
    }

    #[test]
    fn messages_never_show_the_password() {
        for bad in [
            "socks5://kim:s3cret@h:1",
            "http://kim:s3cret@h:99999",
            "http://kim:s3cret@h:1/?q",
            "http://kim:s3cret@h :1",
        ] {
            let e = check_proxy(bad).unwrap_err().to_string();
            assert!(!e.contains("s3cret"), "{e}");
            assert!(e.contains("***"), "{e}");
        }
    }
}
