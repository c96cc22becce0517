//! Enrolment at `keysmith serve` (review G4, O7).
//!
//! `POST /v1/agents/enroll` with
//! `{"class", "station" (stations), "public_key": b64url(SEC1 65 bytes),
//!   "proof": b64url(HMAC-SHA256(key = code, msg = public_key)) (stations), "host"}`
//! → `202 {"agent_id", "status": "pending"|"approved", "fingerprint"}`; the answer is
//! checked against this agent's own key (the id and fingerprint are recomputed here, so
//! the fingerprint printed for the operator is never one the network chose). Then
//! `GET /v1/agents/{agent_id}` → `{"status"}`.
//!
//! The enrolment code is a secret: it is held zeroized, never logged and never sent; only
//! the HMAC proves it. Holder agents send no code and no proof: they self-register and
//! may only run holder-authenticated jobs.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::config::{check_url, AgentClass};
use crate::http::{error_text, send_json};
use crate::key::{fingerprint, AgentKey};
use crate::AgentError;

/// What the agent tells the server about its host (claims, for the admin's eyes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostInfo {
    /// The host name.
    pub name: String,
    /// The operating system (`linux`, `windows`, `macos`).
    pub os: String,
}

impl HostInfo {
    /// This host: the name from `HOSTNAME`/`COMPUTERNAME` or the kernel, and the OS.
    pub fn current() -> Self {
        let name = std::env::var("COMPUTERNAME")
            .ok()
            .or_else(|| {
                std::fs::read_to_string("/proc/sys/kernel/hostname")
                    .ok()
                    .map(|s| s.trim().to_owned())
            })
            .or_else(|| std::env::var("HOSTNAME").ok())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "unknown".into());
        HostInfo {
            name,
            os: std::env::consts::OS.to_owned(),
        }
    }
}

/// The server's view of an enrolment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Enrollment {
    /// The agent id (checked to be this key's).
    pub agent_id: String,
    /// `pending` (waiting for an admin) or `approved`.
    pub status: String,
    /// The fingerprint to compare with the one the admin approves, computed locally.
    pub fingerprint: String,
}

/// The station's proof of the code: HMAC-SHA256 with the code's bytes as the key over
/// the public key's bytes.
pub fn proof(code: &str, public_sec1: &[u8]) -> Result<[u8; 32], AgentError> {
    // Hmac<Sha256> takes keys of any length; the error cannot happen but is not hidden.
    let mut mac = Hmac::<Sha256>::new_from_slice(code.as_bytes())
        .map_err(|e| AgentError::config("code", e.to_string()))?;
    mac.update(public_sec1);
    Ok(mac.finalize().into_bytes().into())
}

fn base(server_url: &str) -> &str {
    server_url.trim_end_matches('/')
}

/// Enrols `key` at the server. `code` is required for stations and refused for
/// holders (holder agents self-register).
pub fn enroll(
    http: &reqwest::blocking::Client,
    server_url: &str,
    key: &AgentKey,
    class: AgentClass,
    station: Option<&str>,
    code: Option<&Zeroizing<String>>,
    host: &HostInfo,
) -> Result<Enrollment, AgentError> {
    check_url(server_url).map_err(|r| AgentError::config("server_url", r))?;
    let public = key.public_sec1();
    let mut body = json!({
        "class": class.as_str(),
        "public_key": URL_SAFE_NO_PAD.encode(public),
        "host": {"name": host.name, "os": host.os},
    });
    match class {
        AgentClass::Station => {
            let code = code
                .filter(|c| !c.trim().is_empty())
                .ok_or_else(|| AgentError::config("code", "a station enrols with --code CODE"))?;
            let station = station.ok_or_else(|| AgentError::config("station", "missing"))?;
            body["station"] = json!(station);
            body["proof"] = json!(URL_SAFE_NO_PAD.encode(proof(code.trim(), public)?));
        }
        AgentClass::Holder => {
            if code.is_some() {
                return Err(AgentError::config(
                    "code",
                    "holder agents self-register without a code",
                ));
            }
        }
    }
    let url = format!("{}/v1/agents/enroll", base(server_url));
    let (status, answer) = send_json(http.post(&url).json(&body), &url)?;
    if status != 202 && status != 200 {
        return Err(AgentError::Refused {
            url,
            status,
            reason: error_text(&answer),
        });
    }
    let field = |k: &str| answer.get(k).and_then(|v| v.as_str()).map(str::to_owned);
    let want = key.agent_id();
    let got = field("agent_id").unwrap_or_default();
    if got != want {
        return Err(AgentError::EnrollMismatch(format!(
            "the server answered for agent {got:?}, this key is {want}"
        )));
    }
    let normal = |s: &str| -> String {
        s.chars()
            .filter(char::is_ascii_hexdigit)
            .collect::<String>()
            .to_ascii_lowercase()
    };
    if let Some(fp) = field("fingerprint") {
        if normal(&fp) != want {
            return Err(AgentError::EnrollMismatch(
                "the server's fingerprint is not this key's".into(),
            ));
        }
    }
    let status = field("status").unwrap_or_default();
    if !matches!(status.as_str(), "pending" | "approved") {
        return Err(AgentError::Refused {
            url,
            status: 0,
            reason: format!("unexpected enrolment status {status:?}"),
        });
    }
    Ok(Enrollment {
        fingerprint: fingerprint(&want),
        agent_id: want,
        status,
    })
}

/// The enrolment status of `agent_id` (`pending`, `approved`, `revoked`, ...).
pub fn status(
    http: &reqwest::blocking::Client,
    server_url: &str,
    agent_id: &str,
) -> Result<String, AgentError> {
    check_url(server_url).map_err(|r| AgentError::config("server_url", r))?;
    if agent_id.len() != 64 || !agent_id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(AgentError::config("agent_id", "64 hex digits"));
    }
    let url = format!("{}/v1/agents/{agent_id}", base(server_url));
    let (code, answer) = send_json(http.get(&url), &url)?;
    if code != 200 {
        return Err(AgentError::Refused {
            url,
            status: code,
            reason: error_text(&answer),
        });
    }
    answer
        .get("status")
        .and_then(|v| v.as_str())
        .map(str::to_owned)
        .ok_or_else(|| AgentError::Refused {
            url,
            status: 0,
            reason: "the answer has no status".into(),
        })
}
