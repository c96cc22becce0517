//! Enrolled agents (the device halves of a split deployment) and the single-use
//! enrolment codes an admin issues for stations, shared by every server node.

use serde::{Deserialize, Serialize};

use super::UnixMillis;

/// What an agent may do (review O7 of the split design).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentClass {
    /// An operator station: enrolled with an admin-issued code, approved by an admin;
    /// runs operator jobs.
    Station,
    /// A holder's own computer: self-registered, approved at once, and only ever runs
    /// jobs authenticated by the holder (enforced by the coordinator).
    Holder,
}

impl AgentClass {
    /// The stable storage name.
    pub const fn as_str(self) -> &'static str {
        match self {
            AgentClass::Station => "station",
            AgentClass::Holder => "holder",
        }
    }

    /// Parses a storage name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "station" => Some(AgentClass::Station),
            "holder" => Some(AgentClass::Holder),
            _ => None,
        }
    }
}

/// Where an agent's enrolment stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentStatus {
    /// Enrolled, waiting for an admin's approval.
    Pending,
    /// May open sessions.
    Approved,
    /// Refused for good (a new key must enrol again).
    Revoked,
}

impl AgentStatus {
    /// The stable storage name.
    pub const fn as_str(self) -> &'static str {
        match self {
            AgentStatus::Pending => "pending",
            AgentStatus::Approved => "approved",
            AgentStatus::Revoked => "revoked",
        }
    }

    /// Parses a storage name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(AgentStatus::Pending),
            "approved" => Some(AgentStatus::Approved),
            "revoked" => Some(AgentStatus::Revoked),
            _ => None,
        }
    }
}

/// An enrolled agent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentRecord {
    /// Lowercase hex SHA-256 of [`AgentRecord::public_key`].
    pub agent_id: String,
    /// Station or holder agent.
    pub class: AgentClass,
    /// The station name the enrolment code was issued for (stations only).
    pub station: Option<String>,
    /// The agent's P-256 public key, SEC1 uncompressed (65 bytes).
    pub public_key: Vec<u8>,
    /// Where its enrolment stands.
    pub status: AgentStatus,
    /// The host name the agent reported (a claim).
    pub host_name: Option<String>,
    /// The operating system the agent reported (a claim).
    pub host_os: Option<String>,
    /// When it enrolled.
    pub created_ms: UnixMillis,
    /// When its status last changed.
    pub updated_ms: UnixMillis,
}

/// A single-use enrolment code as stored: never the code itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrolmentCode {
    /// Random id of the code (the server derives the code from it with its own key).
    pub code_id: String,
    /// Lowercase hex SHA-256 of the code.
    pub code_hash: String,
    /// The station the code enrols.
    pub station: String,
    /// The class it enrols (stations only today).
    pub class: AgentClass,
    /// Who issued it.
    pub created_by: String,
    /// When it was issued.
    pub created_ms: UnixMillis,
    /// Not accepted after this.
    pub expires_ms: UnixMillis,
    /// When it was used, if it was.
    pub used_ms: Option<UnixMillis>,
    /// The agent it enrolled, if it was used.
    pub used_by: Option<String>,
}
