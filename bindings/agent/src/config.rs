//! The agent's configuration file (TOML).
//!
//! ```toml
//! server_url = "https://keysmith.example.org:8443"
//! # The server's COSE signing key, pinned: hex SHA-256 of its SEC1 uncompressed
//! # P-256 public key, or a PEM "PUBLIC KEY" file (one of the two).
//! server_key = "3b1f...64 hex digits"
//! # server_key_file = "/etc/keysmith-agent/server-key.pem"
//! # An extra CA for the server's TLS certificate (WebPKI roots are trusted too).
//! # server_ca_file = "/etc/keysmith-agent/ca.pem"
//! class = "station"            # or "holder"
//! station = "desk-1"           # stations only
//! key_file = "/var/lib/keysmith-agent/agent-key.pem"
//!
//! [oidc]                        # holders: how they sign in
//! issuer = "https://login.microsoftonline.com/TENANT/v2.0"
//! client_id = "00000000-0000-0000-0000-000000000000"
//! scopes = ["openid", "profile"]
//! max_age_secs = 600
//!
//! [ui]
//! socket = "/run/keysmith-agent/ui.sock"   # Unix
//! pipe = '\\.\pipe\keysmith-agent'           # Windows
//! allowed_uids = [1000]                     # default: the console user (logind seat0)
//! agent_uids = [0]                          # the UI accepts an agent running as these
//! ```
//!
//! Unknown keys are refused, so a misspelt setting is an error, not a silent default.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::AgentError;

/// Largest configuration file read.
const MAX_CONFIG_BYTES: u64 = 64 * 1024;

/// What the agent is enrolled as (review O7).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AgentClass {
    /// An operator station: enrolled with an admin-issued code and approved; runs
    /// operator jobs.
    Station,
    /// A holder's own computer: self-registered; runs only holder-authenticated jobs on
    /// keys the holder owns.
    Holder,
}

impl AgentClass {
    /// `station` or `holder`, as on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            AgentClass::Station => "station",
            AgentClass::Holder => "holder",
        }
    }
}

/// How holders sign in (`[oidc]`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    /// The issuer; discovery is read from `{issuer}/.well-known/openid-configuration`.
    pub issuer: String,
    /// The agent's client id at the issuer (a public client: no secret).
    pub client_id: String,
    /// Scopes asked for; `openid` and `profile` (Entra puts `oid` in the ID token only
    /// with `profile`) are always added.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// `max_age` of the authorize request: the holder re-authenticates when the last
    /// sign-in is older (review G1: 600 s).
    #[serde(default = "default_max_age")]
    pub max_age_secs: u64,
    /// Graph's base URL: the only place the holder's delegated Graph token (delegated
    /// registration) is sent, and the only resource whose scopes a server may ask the
    /// holder to grant. Default `https://graph.microsoft.com`.
    #[serde(default)]
    pub graph_url: Option<String>,
}

impl OidcConfig {
    /// [`OidcConfig::graph_url`] or Graph's public base URL.
    pub fn graph_url(&self) -> &str {
        self.graph_url
            .as_deref()
            .unwrap_or(crate::me::DEFAULT_GRAPH_URL)
    }
}

fn default_max_age() -> u64 {
    600
}

/// The local UI channel (`[ui]`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UiConfig {
    /// The Unix socket path; its directory must be owned by root or the agent's user and
    /// not writable by others.
    pub socket: Option<PathBuf>,
    /// The Windows named pipe (`\\.\pipe\NAME`).
    pub pipe: Option<String>,
    /// Unix users allowed to connect as the UI; empty: the user of the active console
    /// session (`ACTIVE_UID` of logind's seat0).
    #[serde(default)]
    pub allowed_uids: Vec<u32>,
    /// Unix users the UI accepts as the agent end; empty: root only.
    #[serde(default)]
    pub agent_uids: Vec<u32>,
}

/// The agent's configuration.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// The server's base URL: `https://`, or `http://` to loopback only.
    pub server_url: String,
    /// The pinned server key: hex SHA-256 of its SEC1 uncompressed public key.
    pub server_key: Option<String>,
    /// Or the pinned server key as a PEM `PUBLIC KEY` file.
    pub server_key_file: Option<PathBuf>,
    /// An extra CA certificate (PEM) for the server's TLS.
    pub server_ca_file: Option<PathBuf>,
    /// Station or holder agent.
    pub class: AgentClass,
    /// The station's name (stations only).
    pub station: Option<String>,
    /// The agent key file (PKCS#8 PEM, created at first run).
    pub key_file: PathBuf,
    /// How holders sign in (needed by holder agents and stations doing activation).
    pub oidc: Option<OidcConfig>,
    /// The local UI channel.
    #[serde(default)]
    pub ui: UiConfig,
}

impl AgentConfig {
    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> Result<Self, AgentError> {
        use std::io::Read;
        let mut text = String::new();
        std::fs::File::open(path)
            .and_then(|f| f.take(MAX_CONFIG_BYTES + 1).read_to_string(&mut text))
            .map_err(|e| AgentError::config("file", format!("{}: {e}", path.display())))?;
        if text.len() as u64 > MAX_CONFIG_BYTES {
            return Err(AgentError::config("file", "larger than 64 KiB"));
        }
        Self::parse(&text)
    }

    /// Parses and validates configuration text.
    pub fn parse(text: &str) -> Result<Self, AgentError> {
        let c: AgentConfig =
            toml::from_str(text).map_err(|e| AgentError::config("file", e.to_string()))?;
        c.validate()?;
        Ok(c)
    }

    fn validate(&self) -> Result<(), AgentError> {
        check_url(&self.server_url).map_err(|r| AgentError::config("server_url", r))?;
        match (&self.server_key, &self.server_key_file) {
            (Some(_), Some(_)) => {
                return Err(AgentError::config(
                    "server_key",
                    "give server_key or server_key_file, not both",
                ))
            }
            (None, None) => {
                return Err(AgentError::config(
                    "server_key",
                    "the server key must be pinned (server_key or server_key_file)",
                ))
            }
            (Some(k), None) => {
                parse_fingerprint(k)?;
            }
            (None, Some(_)) => {}
        }
        match (self.class, &self.station) {
            (AgentClass::Station, None) => {
                return Err(AgentError::config("station", "a station needs its name"))
            }
            (AgentClass::Station, Some(s)) if !valid_station(s) => {
                return Err(AgentError::config(
                    "station",
                    "1 to 64 characters: letters, digits, '-', '_', '.'",
                ))
            }
            (AgentClass::Holder, Some(_)) => {
                return Err(AgentError::config("station", "only stations have a name"))
            }
            _ => {}
        }
        if let Some(o) = &self.oidc {
            check_url(&o.issuer).map_err(|r| AgentError::config("oidc.issuer", r))?;
            if o.client_id.trim().is_empty() {
                return Err(AgentError::config("oidc.client_id", "must not be empty"));
            }
            if let Some(g) = &o.graph_url {
                check_url(g).map_err(|r| AgentError::config("oidc.graph_url", r))?;
            }
        } else if self.class == AgentClass::Holder {
            return Err(AgentError::config(
                "oidc",
                "a holder agent needs [oidc] (issuer, client_id)",
            ));
        }
        Ok(())
    }

    /// The pinned server key's fingerprint (SHA-256 of its SEC1 uncompressed encoding).
    pub fn server_key_fingerprint(&self) -> Result<[u8; 32], AgentError> {
        if let Some(k) = &self.server_key {
            return parse_fingerprint(k);
        }
        let path = self
            .server_key_file
            .as_ref()
            .ok_or_else(|| AgentError::config("server_key", "not pinned"))?;
        let pem = std::fs::read_to_string(path).map_err(|e| {
            AgentError::config("server_key_file", format!("{}: {e}", path.display()))
        })?;
        use p256::pkcs8::DecodePublicKey;
        let key = p256::PublicKey::from_public_key_pem(&pem).map_err(|e| {
            AgentError::config(
                "server_key_file",
                format!("{}: not a P-256 PUBLIC KEY: {e}", path.display()),
            )
        })?;
        use p256::elliptic_curve::sec1::ToEncodedPoint;
        Ok(Sha256::digest(key.to_encoded_point(false).as_bytes()).into())
    }

    /// The UI socket path (default `/run/keysmith-agent/ui.sock`).
    pub fn ui_socket(&self) -> PathBuf {
        self.ui
            .socket
            .clone()
            .unwrap_or_else(|| PathBuf::from("/run/keysmith-agent/ui.sock"))
    }

    /// The OIDC scopes to ask for: `openid profile` plus the configured ones.
    pub fn scopes(&self) -> Vec<String> {
        let mut s = vec!["openid".to_owned(), "profile".to_owned()];
        if let Some(o) = &self.oidc {
            for x in &o.scopes {
                if !s.contains(x) {
                    s.push(x.clone());
                }
            }
        }
        s
    }
}

fn valid_station(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn parse_fingerprint(k: &str) -> Result<[u8; 32], AgentError> {
    let clean: String = k.chars().filter(|c| !matches!(c, ' ' | ':')).collect();
    let bytes = hex::decode(&clean)
        .map_err(|_| AgentError::config("server_key", "not hex (64 hex digits)"))?;
    bytes
        .try_into()
        .map_err(|_| AgentError::config("server_key", "must be 32 bytes (64 hex digits)"))
}

/// `https://...`, or `http://` to a loopback host only; no credentials, no whitespace:
/// keysmith's one URL policy.
pub(crate) fn check_url(url: &str) -> Result<(), String> {
    keysmith_url::check(url)
        .map(drop)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
server_url = "https://ks.example.org"
server_key = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
class = "station"
station = "desk-1"
key_file = "/var/lib/keysmith-agent/agent-key.pem"
"#;

    #[test]
    fn a_station_config_parses() {
        let c = AgentConfig::parse(BASE).unwrap();
        assert_eq!(c.class, AgentClass::Station);
        assert_eq!(c.server_key_fingerprint().unwrap()[1], 0x11);
        assert_eq!(c.scopes(), ["openid", "profile"]);
        assert_eq!(c.ui_socket(), Path::new("/run/keysmith-agent/ui.sock"));
    }

    #[test]
    fn bad_configs_name_the_setting() {
        let setting = |text: &str| match AgentConfig::parse(text) {
            Err(AgentError::Config { setting, .. }) => setting,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            setting(&BASE.replace("https://ks", "http://ks")),
            "server_url"
        );
        assert_eq!(setting(&BASE.replace("00112233", "0011")), "server_key");
        assert_eq!(
            setting(&BASE.replace("station = \"desk-1\"", "")),
            "station"
        );
        assert_eq!(setting(&BASE.replace("desk-1", "desk 1/..")), "station");
        assert_eq!(setting(&format!("{BASE}\nsurprise = 1")), "file");
        assert_eq!(
            setting(&BASE.replace(
                "class = \"station\"\nstation = \"desk-1\"",
                "class = \"holder\""
            )),
            "oidc"
        );
        let holder = BASE.replace("class = \"station\"\nstation = \"desk-1\"", "class = \"holder\"")
            + "[oidc]\nissuer = \"http://127.0.0.1:1/t/v2.0\"\nclient_id = \"c\"\nscopes = [\"email\"]\n";
        let c = AgentConfig::parse(&holder).unwrap();
        assert_eq!(c.scopes(), ["openid", "profile", "email"]);
        assert_eq!(c.oidc.unwrap().max_age_secs, 600);
    }
}
