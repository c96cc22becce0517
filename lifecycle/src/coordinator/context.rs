//! What the coordinator keeps about a session between messages (the `context` column of
//! its row, JSON, MACed with the row).

use serde::{Deserialize, Serialize};

use keysmith_wire::{Capabilities, DeviceReport, HostClaim};

/// The coordinator's state of one session.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SessionContext {
    /// `station` or `holder`, as enrolled when the session opened.
    pub agent_class: String,
    /// The capabilities the device half claimed.
    pub caps: CapsJson,
    /// The host it claimed (kept as evidence, review G7).
    pub host: HostJson,
    /// The last device report.
    pub report: Option<ReportJson>,
    /// Set while a node processes a message (ms): a second node answers `Busy`, and a
    /// processing older than the stall limit closes the session.
    pub processing_since: Option<u64>,
    /// What the session is doing.
    pub phase: Phase,
    /// A flow running for this session (on the node that started it).
    pub flow: Option<FlowJson>,
    /// A device message for the flow (hex), put here by the node that received it.
    pub inbox: Option<String>,
}

/// A flow in progress.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FlowJson {
    /// `issue`, `self_issue`, `activate`, `verify`.
    pub operation: String,
    /// The station work it carries out.
    pub work_id: Option<String>,
    /// When it started (the caller's time).
    pub started_ms: u64,
}

/// Where the session's dialogue stands.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case", deny_unknown_fields)]
pub(super) enum Phase {
    /// Hello exchanged; waiting for a report or a request.
    #[default]
    Open,
    /// The holder is asked to sign in for `operation`.
    AwaitHolder {
        /// `activate`, `self_issue` or `verify`.
        operation: String,
        /// The credential template (self-issuance).
        template: Option<String>,
        /// The key (activation, sign-in check).
        key_id: Option<String>,
    },
    /// The session is over.
    Finished,
}

/// [`Capabilities`] as stored.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CapsJson {
    pub ctap_raw: bool,
    pub webauthn_platform: bool,
    pub can_reset_in_place: bool,
    pub interactive_holder_ui: bool,
    pub bio_ui: bool,
    pub max_job_steps: u32,
}

impl From<&Capabilities> for CapsJson {
    fn from(c: &Capabilities) -> Self {
        CapsJson {
            ctap_raw: c.ctap_raw,
            webauthn_platform: c.webauthn_platform,
            can_reset_in_place: c.can_reset_in_place,
            interactive_holder_ui: c.interactive_holder_ui,
            bio_ui: c.bio_ui,
            max_job_steps: c.max_job_steps,
        }
    }
}

/// [`HostClaim`] as stored.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct HostJson {
    pub name: String,
    pub os: String,
    pub elevated: bool,
    pub remote_session: bool,
}

impl From<&HostClaim> for HostJson {
    fn from(h: &HostClaim) -> Self {
        HostJson {
            name: h.name.clone(),
            os: h.os.clone(),
            elevated: h.elevated,
            remote_session: h.remote_session,
        }
    }
}

/// [`DeviceReport`] as stored (getInfo as hex).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ReportJson {
    pub transport: String,
    pub get_info_hex: Option<String>,
    pub serial_claim: Option<String>,
    pub serial_source: Option<String>,
    pub pin_retries: Option<u32>,
    pub reader: Option<String>,
}

impl From<&DeviceReport> for ReportJson {
    fn from(r: &DeviceReport) -> Self {
        ReportJson {
            transport: r.transport.clone(),
            get_info_hex: r.get_info.as_deref().map(hex),
            serial_claim: r.serial_claim.clone(),
            serial_source: r.serial_source.clone(),
            pin_retries: r.pin_retries,
            reader: r.reader.clone(),
        }
    }
}

/// Bytes from lower-case or upper-case hex, through base16ct (constant-time: the inbox
/// holds a device message; and no sign characters, which `from_str_radix` took).
pub(super) fn unhex(s: &str) -> Option<Vec<u8>> {
    base16ct::mixed::decode_vec(s).ok()
}

/// Lower-case hex, through base16ct.
pub(super) fn hex(bytes: &[u8]) -> String {
    base16ct::lower::encode_string(bytes)
}

impl SessionContext {
    pub(super) fn to_json(&self) -> String {
        // A struct of strings, numbers and options always serialises.
        serde_json::to_string(self).unwrap_or_default()
    }

    pub(super) fn from_json(s: &str) -> Result<Self, String> {
        serde_json::from_str(s).map_err(|e| e.to_string())
    }
}
