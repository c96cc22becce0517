//! The holder's sign-in: OpenID Connect authorization code flow with PKCE (RFC 7636,
//! S256 only) for a native app (RFC 8252): the system browser, and a loopback redirect
//! on an ephemeral port of `127.0.0.1` (and the same port on `::1` when the host has
//! it), `http://127.0.0.1:PORT/callback`.
//!
//! The caller gives the `nonce`: in the split protocol it is
//! `b64url(SHA-256(session_pub ‖ server_nonce))`, computed by the wire crate, which binds
//! the ID token to the device session. The authorize request carries `state` (16 random
//! bytes, checked on the redirect), `max_age` and `login_hint`; the endpoints come from
//! `{issuer}/.well-known/openid-configuration` (the document's `issuer` must be the one
//! configured).
//!
//! The agent does not verify the ID token's signature (the server does, review G1); it
//! checks only that the token carries the nonce it asked for, so a token from another
//! sign-in is not sent. The token is zeroized on drop, redacted in `Debug` and never
//! logged.
//!
//! The redirect page shows the session code (review G2) so the holder can see that the
//! browser sign-in belongs to the session their UI shows.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use percent_encoding::{percent_decode_str, utf8_percent_encode, NON_ALPHANUMERIC};
use zeroize::Zeroizing;

use crate::config::check_url;
use crate::http::{error_text, send_json};
use crate::pkce::{random_b64url, Pkce};
use crate::AgentError;

/// Largest redirect request read from the browser.
const MAX_REDIRECT_BYTES: usize = 16 * 1024;
/// The redirect path.
pub const CALLBACK_PATH: &str = "/callback";

/// The endpoints of an issuer (from its discovery document).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Discovery {
    /// `issuer`, equal to the configured one.
    pub issuer: String,
    /// `authorization_endpoint`.
    pub authorization_endpoint: String,
    /// `token_endpoint`.
    pub token_endpoint: String,
}

/// Reads `{issuer}/.well-known/openid-configuration`.
pub fn discover(http: &reqwest::blocking::Client, issuer: &str) -> Result<Discovery, AgentError> {
    check_url(issuer).map_err(|r| AgentError::config("oidc.issuer", r))?;
    let url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let (status, doc) = send_json(http.get(&url), &url)?;
    if status != 200 {
        return Err(AgentError::Refused {
            url,
            status,
            reason: error_text(&doc),
        });
    }
    let field = |k: &str| -> Result<String, AgentError> {
        let v = doc
            .get(k)
            .and_then(|v| v.as_str())
            .ok_or_else(|| AgentError::Refused {
                url: url.clone(),
                status: 0,
                reason: format!("discovery document has no {k}"),
            })?;
        if k != "issuer" {
            check_url(v).map_err(|r| AgentError::Refused {
                url: url.clone(),
                status: 0,
                reason: format!("{k}: {r}"),
            })?;
        }
        Ok(v.to_owned())
    };
    let d = Discovery {
        issuer: field("issuer")?,
        authorization_endpoint: field("authorization_endpoint")?,
        token_endpoint: field("token_endpoint")?,
    };
    if d.issuer != issuer {
        return Err(AgentError::Refused {
            url,
            status: 0,
            reason: format!(
                "the document's issuer {:?} is not the configured {issuer:?}",
                d.issuer
            ),
        });
    }
    Ok(d)
}

/// An ID token, and the access token that came with it. Zeroized on drop; `Debug` shows
/// only the ID token's length.
pub struct IdToken(Zeroizing<String>, Option<Zeroizing<String>>);

impl IdToken {
    /// The compact JWS, to hand to the session (never to a log).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The access token the token endpoint issued with it (for the resource of the
    /// sign-in's non-OIDC scopes: a delegated Graph token when one was asked for).
    pub fn take_access_token(&mut self) -> Option<Zeroizing<String>> {
        self.1.take()
    }
}

impl std::fmt::Debug for IdToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "IdToken(<redacted, {} bytes>)", self.0.len())
    }
}

/// One sign-in.
#[derive(Clone, Debug)]
pub struct SignInRequest {
    /// The issuer (discovery is read from it).
    pub issuer: String,
    /// The agent's client id (public client).
    pub client_id: String,
    /// Scopes (`openid` is added when missing).
    pub scopes: Vec<String>,
    /// The nonce binding the token to the device session.
    pub nonce: String,
    /// `login_hint`: the holder's UPN when known.
    pub login_hint: Option<String>,
    /// `max_age` in seconds (review G1: 600).
    pub max_age: Option<u64>,
    /// The session code the UI shows (review G2), repeated on the redirect page.
    pub session_code: Option<String>,
    /// How long to wait for the browser.
    pub timeout: Duration,
}

/// The loopback listeners of one sign-in.
struct Loopback {
    listeners: Vec<TcpListener>,
    redirect_uri: String,
}

impl Loopback {
    fn bind() -> Result<Self, AgentError> {
        let bind = |a: SocketAddr| {
            let l = TcpListener::bind(a)?;
            l.set_nonblocking(true)?;
            Ok::<_, std::io::Error>(l)
        };
        let (first, host) = match bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))) {
            Ok(l) => (l, "127.0.0.1"),
            Err(_) => (
                bind(SocketAddr::from((Ipv6Addr::LOCALHOST, 0)))
                    .map_err(|e| AgentError::io("binding the loopback redirect listener", e))?,
                "[::1]",
            ),
        };
        let port = first
            .local_addr()
            .map_err(|e| AgentError::io("loopback listener", e))?
            .port();
        let mut listeners = vec![first];
        if host == "127.0.0.1" {
            // Same port on ::1 when the host has IPv6 loopback (RFC 8252 §7.3).
            if let Ok(l) = bind(SocketAddr::from((Ipv6Addr::LOCALHOST, port))) {
                listeners.push(l);
            }
        }
        Ok(Loopback {
            listeners,
            redirect_uri: format!("http://{host}:{port}{CALLBACK_PATH}"),
        })
    }

    /// Waits for the redirect carrying `state`; answers the browser; returns the code.
    fn wait(
        &self,
        state: &str,
        session_code: Option<&str>,
        timeout: Duration,
    ) -> Result<Zeroizing<String>, AgentError> {
        let deadline = Instant::now() + timeout;
        loop {
            for l in &self.listeners {
                match l.accept() {
                    Ok((stream, _)) => {
                        if let Some(done) = handle_redirect(stream, state, session_code) {
                            return done;
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(AgentError::io("loopback listener", e)),
                }
            }
            if Instant::now() >= deadline {
                return Err(AgentError::SignInTimeout(timeout.as_secs()));
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }
}

fn query_param(query: &str, name: &str) -> Option<Zeroizing<String>> {
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (k == name).then(|| {
            Zeroizing::new(
                percent_decode_str(&v.replace('+', " "))
                    .decode_utf8_lossy()
                    .into_owned(),
            )
        })
    })
}

fn respond(mut stream: TcpStream, status: &str, text: &str) {
    let body = format!(
        "<!doctype html><meta charset=utf-8><title>keysmith</title><p>{}</p>",
        text.replace('&', "&amp;").replace('<', "&lt;")
    );
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nCache-Control: no-store\r\nReferrer-Policy: no-referrer\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.flush();
}

/// `None`: not the redirect for this sign-in (another path, another `state`): keep
/// waiting. `Some`: the sign-in's outcome.
fn handle_redirect(
    mut stream: TcpStream,
    state: &str,
    session_code: Option<&str>,
) -> Option<Result<Zeroizing<String>, AgentError>> {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut buf = Zeroizing::new(Vec::with_capacity(1024));
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < MAX_REDIRECT_BYTES {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let text = String::from_utf8_lossy(&buf);
    let target = text
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("GET "))
        .and_then(|l| l.split(' ').next())
        .unwrap_or("");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    if path != CALLBACK_PATH {
        respond(stream, "404 Not Found", "Not found.");
        return None;
    }
    let got_state = query_param(query, "state");
    if got_state.as_deref().map(String::as_str) != Some(state) {
        respond(
            stream,
            "400 Bad Request",
            "This sign-in does not belong to the keysmith session waiting here.",
        );
        return None;
    }
    if let Some(err) = query_param(query, "error") {
        let desc = query_param(query, "error_description");
        respond(
            stream,
            "200 OK",
            "The sign-in failed. You can close this window.",
        );
        return Some(Err(AgentError::SignIn(format!(
            "the identity provider answered {}: {}",
            err.as_str(),
            desc.as_deref().map_or("", String::as_str)
        ))));
    }
    match query_param(query, "code").filter(|c| !c.is_empty()) {
        Some(code) => {
            let msg = match session_code {
                Some(c) => format!(
                    "Signed in for keysmith session {c}. Check that your keysmith window shows the same code, then close this window."
                ),
                None => "Signed in. You can close this window.".to_owned(),
            };
            respond(stream, "200 OK", &msg);
            Some(Ok(code))
        }
        None => {
            respond(stream, "400 Bad Request", "No authorization code.");
            Some(Err(AgentError::SignIn(
                "the redirect carried no code".into(),
            )))
        }
    }
}

fn enc(s: &str) -> String {
    utf8_percent_encode(s, NON_ALPHANUMERIC).to_string()
}

/// Runs one sign-in. `open` shows the authorize URL to the holder: it opens the system
/// browser ([`open_system_browser`]), or sends `need_sign_in` to the UI, or prints it.
pub fn sign_in(
    http: &reqwest::blocking::Client,
    req: &SignInRequest,
    open: &mut dyn FnMut(&str) -> Result<(), AgentError>,
) -> Result<IdToken, AgentError> {
    if req.nonce.is_empty() {
        return Err(AgentError::SignIn("a nonce is required".into()));
    }
    let d = discover(http, &req.issuer)?;
    let loopback = Loopback::bind()?;
    let pkce = Pkce::generate();
    let state = random_b64url(16);
    let mut scopes = req.scopes.clone();
    if !scopes.iter().any(|s| s == "openid") {
        scopes.insert(0, "openid".into());
    }
    let mut url = format!(
        "{}?client_id={}&response_type=code&response_mode=query&redirect_uri={}&scope={}&state={}&nonce={}&code_challenge={}&code_challenge_method=S256",
        d.authorization_endpoint,
        enc(&req.client_id),
        enc(&loopback.redirect_uri),
        enc(&scopes.join(" ")),
        state,
        enc(&req.nonce),
        pkce.challenge(),
    );
    if let Some(m) = req.max_age {
        url.push_str(&format!("&max_age={m}"));
    }
    if let Some(h) = &req.login_hint {
        url.push_str(&format!("&login_hint={}", enc(h)));
    }
    open(&url)?;
    let code = loopback.wait(&state, req.session_code.as_deref(), req.timeout)?;
    let form: [(&str, &str); 5] = [
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", &loopback.redirect_uri),
        ("client_id", &req.client_id),
        ("code_verifier", pkce.verifier()),
    ];
    let (status, answer) = send_json(http.post(&d.token_endpoint).form(&form), &d.token_endpoint)?;
    if status != 200 {
        return Err(AgentError::SignIn(format!(
            "the token endpoint answered {status}: {}",
            error_text(&answer)
        )));
    }
    let token = IdToken(
        Zeroizing::new(
            answer
                .get("id_token")
                .and_then(|v| v.as_str())
                .ok_or_else(|| AgentError::SignIn("the token answer has no id_token".into()))?
                .to_owned(),
        ),
        answer
            .get("access_token")
            .and_then(|v| v.as_str())
            .map(|t| Zeroizing::new(t.to_owned())),
    );
    drop(answer);
    if token_nonce(token.expose()).as_deref() != Some(req.nonce.as_str()) {
        return Err(AgentError::SignIn(
            "the ID token does not carry this session's nonce".into(),
        ));
    }
    Ok(token)
}

/// The unverified `nonce` claim of a compact JWS.
fn token_nonce(jwt: &str) -> Option<String> {
    let payload = jwt.split('.').nth(1)?;
    let bytes = Zeroizing::new(URL_SAFE_NO_PAD.decode(payload).ok()?);
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    v.get("nonce")?.as_str().map(str::to_owned)
}

/// Opens `url` in the system browser (`xdg-open`, `open`, or `cmd /c start`); false when
/// none could be started (then show the URL instead).
pub fn open_system_browser(url: &str) -> bool {
    use std::process::{Command, Stdio};
    let mut cmd;
    #[cfg(windows)]
    {
        use std::os::windows::process::CommandExt;
        cmd = Command::new("cmd");
        // `start` takes a window title first; the URL is quoted so `&` stays literal.
        cmd.raw_arg(format!("/c start \"\" \"{url}\""));
    }
    #[cfg(target_os = "macos")]
    {
        cmd = Command::new("open");
        cmd.arg(url);
    }
    #[cfg(all(unix, not(target_os = "macos")))]
    {
        cmd = Command::new("xdg-open");
        cmd.arg(url);
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_params_decode_and_tokens_hide() {
        assert_eq!(
            query_param("a=1&code=x%2By+z&state=s", "code")
                .unwrap()
                .as_str(),
            "x+y z"
        );
        assert!(query_param("a=1", "code").is_none());
        let t = IdToken(Zeroizing::new("eyJhbGciOi.secret.sig".into()), None);
        assert!(!format!("{t:?}").contains("secret"));
        let jwt = format!("x.{}.y", URL_SAFE_NO_PAD.encode(br#"{"nonce":"n1"}"#));
        assert_eq!(token_nonce(&jwt).as_deref(), Some("n1"));
        assert_eq!(token_nonce("garbage"), None);
    }
}
