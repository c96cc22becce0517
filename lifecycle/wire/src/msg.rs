//! The messages of `docs/split-protocol.md` §3–§5 as plain data. Field order and names follow
//! the tables there; the integer CBOR keys are given in each doc comment.

use zeroize::Zeroizing;

/// A session id, chosen by the server (16 random bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub [u8; 16]);

/// A job id, chosen by the server (16 random bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobId(pub [u8; 16]);

/// A signer's key id: SHA-256 of its P-256 public key in SEC1 uncompressed form. An agent's
/// key id is its agent id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub [u8; 32]);

/// Which way a message travels; part of what is signed (`external_aad`, `typ`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Server → device (`"keysmith/v1 s2a"`, `application/keysmith-server+cose`).
    ServerToAgent,
    /// Device → server (`"keysmith/v1 a2s"`, `application/keysmith-agent+cose`).
    AgentToServer,
}

/// The envelope payload around a message (split-protocol.md §1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope<M> {
    /// Key 2: the session; `None` only in `AgentHello`.
    pub session: Option<SessionId>,
    /// Key 3: per-direction sequence number (hellos are 0).
    pub seq: u64,
    /// Key 4: the job the message belongs to.
    pub job: Option<JobId>,
    /// Key 5: server messages only: how long the device may act on it, from receipt.
    pub ttl_ms: Option<u64>,
    /// Keys 1 (kind) and 6 (body).
    pub msg: M,
}

/// A message from the device half (kinds 1–9).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AgentMessage {
    /// Kind 1.
    Hello(AgentHello),
    /// Kind 2.
    DeviceReport(DeviceReport),
    /// Kind 3.
    Request(Request),
    /// Kind 4.
    HolderAuth(HolderAuth),
    /// Kind 5.
    Progress(ProgressNote),
    /// Kind 6.
    JobResult(JobResult),
    /// Kind 7.
    Abort(Abort),
    /// Kind 8: "anything for me?".
    Ready,
    /// Kind 9: the answer to a [`ServerMessage::HolderGraph`] call the device half made
    /// with the holder's own Graph token.
    HolderGraphResult(HolderGraphResult),
}

/// A message from the server half (kinds 32–39).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServerMessage {
    /// Kind 32.
    Hello(ServerHello),
    /// Kind 33.
    NeedHolderAuth(NeedHolderAuth),
    /// Kind 34.
    Job(Job),
    /// Kind 35.
    JobAck(JobAck),
    /// Kind 36.
    Refused(Refused),
    /// Kind 37.
    Wait {
        /// Key 1: poll again after this many milliseconds.
        retry_ms: u64,
    },
    /// Kind 39: make one of the holder's own Graph calls (delegated registration) with
    /// the token the holder's sign-in gave the device half, and answer with
    /// [`AgentMessage::HolderGraphResult`].
    HolderGraph(HolderGraphCall),
    /// Kind 38: the session is finished.
    Done {
        /// Key 1.
        key_id: Option<String>,
        /// Key 2: the key's state afterwards.
        state: Option<String>,
    },
}

/// What the device half can do (key 6 of `AgentHello`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Capabilities {
    /// Key 1: raw CTAP over HID/NFC (elevated, a service, or not Windows).
    pub ctap_raw: bool,
    /// Key 2: Windows `webauthn.dll` (makeCredential/getAssertion only).
    pub webauthn_platform: bool,
    /// Key 3: can reset a key in place (power-up window reachable).
    pub can_reset_in_place: bool,
    /// Key 4: a holder UI is attached (PIN entry, sign-in).
    pub interactive_holder_ui: bool,
    /// Key 5: can guide fingerprint enrolment.
    pub bio_ui: bool,
    /// Key 6: the most steps it runs in one job.
    pub max_job_steps: u32,
}

/// The host an agent runs on, as it claims (key 7 of `AgentHello`; unknown keys ignored).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct HostClaim {
    /// Key 1.
    pub name: String,
    /// Key 2.
    pub os: String,
    /// Key 3: the process is elevated / a service.
    pub elevated: bool,
    /// Key 4: the agent runs inside a remote-desktop session.
    pub remote_session: bool,
}

/// Kind 1: opens a session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentHello {
    /// Key 1.
    pub agent_id: KeyId,
    /// Key 2.
    pub agent_version: String,
    /// Key 3: protocol versions spoken (today `[1]`).
    pub versions: Vec<u32>,
    /// Key 4: the session's ephemeral P-256 public key (SEC1 uncompressed, 65 bytes) that
    /// secrets are sealed to.
    pub session_pub: [u8; 65],
    /// Key 5.
    pub nonce: [u8; 16],
    /// Key 6.
    pub caps: Capabilities,
    /// Key 7.
    pub host: HostClaim,
}

/// Kind 2: the attached key, as the device half reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceReport {
    /// Key 1: `usb`, `nfc`, `software` or `platform`.
    pub transport: String,
    /// Key 2: the raw CBOR getInfo response map (absent for `platform`).
    pub get_info: Option<Vec<u8>>,
    /// Key 3: the serial the device half read or was told (a claim).
    pub serial_claim: Option<String>,
    /// Key 4: where the serial came from.
    pub serial_source: Option<String>,
    /// Key 5.
    pub pin_retries: Option<u32>,
    /// Key 6.
    pub uv_retries: Option<u32>,
    /// Key 7: the reader's name (NFC).
    pub reader: Option<String>,
}

/// What a device half is there for (kind 3, key 1).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RequestOp {
    /// `work`: a station ready for operator work.
    Work,
    /// `activate`: the holder sets their PIN on an issued key.
    Activate,
    /// `self_issue`: the holder issues a blank key to themself.
    SelfIssue,
    /// `verify`: a sign-in check.
    Verify,
    /// `reset`.
    Reset,
}

/// Kind 3.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// Key 1.
    pub operation: RequestOp,
    /// Key 2: the credential template (`self_issue`).
    pub template: Option<String>,
    /// Key 3.
    pub key_id: Option<String>,
}

/// Kind 4: the holder's ID token (never logged, redacted in `Debug`).
#[derive(Clone, PartialEq, Eq)]
pub struct HolderAuth {
    /// Key 1.
    pub id_token: Zeroizing<String>,
}

impl std::fmt::Debug for HolderAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HolderAuth")
            .field("id_token", &"<redacted>")
            .finish()
    }
}

/// Kind 5: a prompt the device half shows, relayed for remote consoles.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProgressNote {
    /// Key 1: step index in the job.
    pub step: u32,
    /// Key 2: `touch`, `fingerprint`, `replug`.
    pub prompt: String,
    /// Key 3.
    pub n: Option<u32>,
    /// Key 4.
    pub of: Option<u32>,
}

/// Kind 6.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobResult {
    /// Key 1: SHA-256 of the `Job` message bytes as received.
    pub job_digest: [u8; 32],
    /// Key 2: one per step run, in order.
    pub outcomes: Vec<Outcome>,
    /// Key 3: raw getInfo after the job.
    pub info_after: Option<Vec<u8>>,
}

/// How a step ended (key 2 of an outcome).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OutcomeStatus {
    /// 0.
    Ok,
    /// 1: the key answered with a CTAP error (see `ctap`).
    Ctap,
    /// 2: the holder or operator cancelled.
    Cancelled,
    /// 3: not run because an earlier step failed.
    Skipped,
    /// 4: the device half cannot run this step.
    Unsupported,
    /// 5: transport or device failure.
    DeviceError,
}

/// One step's outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// Key 1: the step's index in the job.
    pub step: u32,
    /// Key 2.
    pub status: OutcomeStatus,
    /// Key 3: the CTAP status byte.
    pub ctap: Option<u8>,
    /// Key 4: PIN retries left, when the key said.
    pub retries: Option<u32>,
    /// Key 5.
    pub out: Option<StepOutput>,
    /// Key 6: why the step failed, when it did (a claim of the device half).
    pub error: Option<DeviceFailure>,
}

/// Why a step failed, as the device half reports it (key 6 of an outcome):
/// {1 reason, 2 message, 3 power_cycle_required?, 4 timeout_ms?}.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceFailure {
    /// Key 1: the stable reason (`pin_invalid`, `uv_invalid`, `ctap`, `reattach_required`,
    /// `cancelled`, `timeout`, `not_found`, `wrong_key`, `pin_format`, `unsupported`,
    /// `invalid_argument`, `io`, `protocol`, `other`).
    pub reason: String,
    /// Key 2: the device half's message (no secret).
    pub message: String,
    /// Key 3: three wrong PINs in a row: the key needs a power cycle.
    pub power_cycle_required: Option<bool>,
    /// Key 4: the timeout that ran out.
    pub timeout_ms: Option<u64>,
}

/// What a step produced (key 5 of an outcome; its shape follows the step's type).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StepOutput {
    /// `MakeCredential`: {1 credential_id, 2 attestation_object}.
    Made {
        /// Key 1.
        credential_id: Vec<u8>,
        /// Key 2.
        attestation_object: Vec<u8>,
    },
    /// `GetAssertion` / `Probe`: {1 credential_id, 2 auth_data, 3 signature, 4 user_handle?}.
    Asserted {
        /// Key 1.
        credential_id: Vec<u8>,
        /// Key 2.
        auth_data: Vec<u8>,
        /// Key 3.
        signature: Vec<u8>,
        /// Key 4.
        user_handle: Option<Vec<u8>>,
    },
    /// `ReadInfo`: {1 get_info}.
    Info {
        /// Key 1: raw getInfo.
        get_info: Vec<u8>,
    },
    /// `EnrollFingerprints`: {1 enrolled}.
    Enrolled {
        /// Key 1: fingerprints enrolled afterwards.
        enrolled: u32,
    },
    /// `ReadIdentifier`: {5 identifier}.
    Identifier {
        /// Key 5: the decrypted device identifier.
        identifier: Vec<u8>,
    },
}

/// Kind 7.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Abort {
    /// Key 1: `cancelled`, `key_removed`, `wrong_key`, `ttl_expired`, `unsupported`.
    pub reason: String,
    /// Key 2.
    pub detail: Option<String>,
}

/// Kind 32.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerHello {
    /// Key 1.
    pub server_nonce: [u8; 16],
    /// Key 2: the version chosen.
    pub version: u32,
    /// Key 3: for logs only.
    pub server_time_ms: u64,
    /// Key 4: SHA-256 of the `AgentHello` bytes as received.
    pub hello_digest: [u8; 32],
    /// Key 5: the server's next signing key (SEC1 uncompressed), announced before a roll.
    pub next_server_key: Option<[u8; 65]>,
}

/// Kind 33: the holder must sign in (authorization code + PKCE in the agent's UI).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NeedHolderAuth {
    /// Key 1.
    pub issuer: String,
    /// Key 2.
    pub client_id: String,
    /// Key 3.
    pub scopes: Vec<String>,
    /// Key 4: base64url(SHA-256(session_pub ‖ server_nonce)).
    pub nonce: String,
    /// Key 5.
    pub login_hint: Option<String>,
    /// Key 6.
    pub max_age_s: u32,
    /// Key 7: a short code the agent UI and the sign-in page both show.
    pub session_code: String,
}

/// What a job may touch (key 3 of `Job`; unknown keys refused).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Expect {
    /// Key 1: the key must have this AAGUID.
    pub aaguid: Option<[u8; 16]>,
    /// Key 2: the key must claim this serial.
    pub serial: Option<String>,
    /// Key 3: credentials the key is expected to hold.
    pub credential_ids: Option<Vec<Vec<u8>>>,
}

/// A sealed secret (HPKE base mode, split-protocol.md §6).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealedSecret {
    /// Key 1: referenced by `PinSource::Secret`.
    pub id: u32,
    /// Key 2: the encapsulated key (65 bytes).
    pub enc: [u8; 65],
    /// Key 3: ciphertext with tag.
    pub ct: Vec<u8>,
}

/// Kind 34: device steps the server signed, run as one unit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Job {
    /// Key 1: `issue`, `activate`, `self_issue`, `reset`, `verify`, `cleanup`.
    pub operation: String,
    /// Key 2.
    pub key_id: Option<String>,
    /// Key 3.
    pub expect: Expect,
    /// Key 4: relative deadline (ms from receipt).
    pub deadline_ms: u64,
    /// Key 5.
    pub steps: Vec<DeviceStep>,
    /// Key 6.
    pub secrets: Vec<SealedSecret>,
}

/// Where a PIN comes from (split-protocol.md §4). There is no variant for "the server sends
/// the holder's PIN".
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PinSource {
    /// `{1: id}`: a transport PIN sealed in this job.
    Secret(u32),
    /// `{2: {1 min_len, 2 confirm}}`: ask the holder's UI for a new PIN.
    NewHolderPin {
        /// The key's (or template's) minimum length.
        min_len: u32,
        /// Ask twice.
        confirm: bool,
    },
    /// `{3: true}`: the PIN an earlier step of this session set, changed or verified.
    Current,
    /// `{4: true}`: the holder types their existing PIN.
    HolderPin,
}

/// A relying party (`rp` of `MakeCredential`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RpInfo {
    /// Key 1.
    pub id: String,
    /// Key 2.
    pub name: String,
}

/// A user (`user` of `MakeCredential`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserInfo {
    /// Key 1: the user handle.
    pub id: Vec<u8>,
    /// Key 2.
    pub name: String,
    /// Key 3.
    pub display_name: String,
}

/// One device step (split-protocol.md §4); key 0 of its map is the type number.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeviceStep {
    /// Type 1.
    ReadInfo,
    /// Type 2: a silent (`up=false`) assertion proving the key holds one of `allow`.
    Probe {
        /// Key 1.
        rp_id: String,
        /// Key 2.
        allow: Vec<Vec<u8>>,
        /// Key 3.
        client_data_json: Vec<u8>,
    },
    /// Type 3.
    Reset {
        /// Key 1: ask for a replug (USB) / re-tap (NFC) first.
        require_replug: bool,
        /// Key 2: only reset a key with this AAGUID.
        only_if_aaguid: Option<[u8; 16]>,
    },
    /// Type 4.
    SetPin {
        /// Key 1.
        pin: PinSource,
    },
    /// Type 5.
    ChangePin {
        /// Key 1.
        current: PinSource,
        /// Key 2.
        new: PinSource,
    },
    /// Type 6: check a PIN by getting a token (rp `keysmith.invalid`).
    VerifyPin {
        /// Key 1.
        pin: PinSource,
    },
    /// Type 7.
    SetMinPinLength {
        /// Key 1.
        min: Option<u32>,
        /// Key 2.
        rp_ids: Vec<String>,
        /// Key 3.
        force_change: bool,
        /// Key 4: for the acfg token; none when the key has no PIN yet.
        pin: Option<PinSource>,
    },
    /// Type 8.
    EnableAlwaysUv {
        /// Key 1.
        pin: Option<PinSource>,
    },
    /// Type 9.
    EnrollFingerprints {
        /// Key 1.
        min: u32,
        /// Key 2.
        timeout_ms: u32,
        /// Key 3.
        pin: PinSource,
    },
    /// Type 10.
    MakeCredential {
        /// Key 1.
        passkey_template: String,
        /// Key 2.
        rp: RpInfo,
        /// Key 3.
        user: UserInfo,
        /// Key 4: built by the server; the device half hashes it.
        client_data_json: Vec<u8>,
        /// Key 5: COSE algorithm ids.
        algs: Vec<i64>,
        /// Key 6.
        exclude: Vec<Vec<u8>>,
        /// Key 7.
        cred_protect: Option<u8>,
        /// Key 8: request the minPinLength extension.
        min_pin_length: bool,
        /// Key 9.
        hmac_secret: bool,
        /// Key 10.
        pin: PinSource,
        /// Key 11 (optional): ask for an enterprise attestation (CTAP
        /// `enterpriseAttestation`: 1 vendor-facilitated, 2 platform-managed).
        enterprise_attestation: Option<u8>,
    },
    /// Type 11.
    GetAssertion {
        /// Key 1.
        rp_id: String,
        /// Key 2.
        allow: Vec<Vec<u8>>,
        /// Key 3.
        client_data_json: Vec<u8>,
        /// Key 4: for a ga token (UV); `None` runs without UV.
        pin: Option<PinSource>,
    },
    /// Type 12.
    CredMgmtDelete {
        /// Key 1.
        rp_id: String,
        /// Key 2.
        credential_id: Vec<u8>,
        /// Key 3.
        pin: PinSource,
    },
    /// Type 13: the key's CTAP 2.2 device identifier (`encIdentifier`, decrypted with a
    /// persistent read-only credential-management token made from `pin`): the key's
    /// proof of which key it is. A key without one answers ok with no output.
    ReadIdentifier {
        /// Key 1.
        pin: PinSource,
    },
}

/// The Graph calls a device half makes for the holder with the holder's own delegated
/// token (`/me`, Graph v1.0). The device half knows the paths itself: the server names
/// only which call, so a server cannot point the holder's token at anything else.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HolderGraphOp {
    /// `GET /v1.0/me/authentication/fido2Methods/creationOptions` (wire name
    /// `creation_options`).
    CreationOptions,
    /// `POST /v1.0/me/authentication/fido2Methods` with the call's body (wire name
    /// `register`).
    Register,
}

impl HolderGraphOp {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            HolderGraphOp::CreationOptions => "creation_options",
            HolderGraphOp::Register => "register",
        }
    }

    /// The wire name read back.
    pub fn parse(s: &str) -> Option<HolderGraphOp> {
        match s {
            "creation_options" => Some(HolderGraphOp::CreationOptions),
            "register" => Some(HolderGraphOp::Register),
            _ => None,
        }
    }

    /// The HTTP method of the call.
    pub fn method(self) -> &'static str {
        match self {
            HolderGraphOp::CreationOptions => "GET",
            HolderGraphOp::Register => "POST",
        }
    }

    /// The path under the Graph base URL.
    pub fn path(self) -> &'static str {
        match self {
            HolderGraphOp::CreationOptions => {
                "/v1.0/me/authentication/fido2Methods/creationOptions"
            }
            HolderGraphOp::Register => "/v1.0/me/authentication/fido2Methods",
        }
    }
}

/// Kind 39: one of the holder's own Graph calls.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HolderGraphCall {
    /// Key 1: which call (`creation_options`, `register`).
    pub op: HolderGraphOp,
    /// Key 2: the JSON request body (`register` only), built and checked by the server.
    pub body: Option<String>,
}

/// Kind 9: what Graph answered the device half's call (a claim: the server parses and
/// checks it, and confirms a registration with a read of its own).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HolderGraphResult {
    /// Key 1: which call this answers.
    pub op: HolderGraphOp,
    /// Key 2: the HTTP status; 0 when no answer came (see key 4).
    pub status: u16,
    /// Key 3: the response body as Graph sent it (JSON text, at most 64 KiB).
    pub body: String,
    /// Key 4: why no call was made or no answer came (status 0): no Graph token from the
    /// sign-in, a network error.
    pub error: Option<String>,
    /// Key 5: Graph's `request-id` header.
    pub request_id: Option<String>,
}

/// Kind 35.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobAck {
    /// Key 1.
    pub key_id: String,
    /// Key 2.
    pub state: String,
    /// Key 3.
    pub needs_reissue: bool,
    /// Key 4: passkeys registered at the IdP by this job.
    pub registered: u32,
}

/// Stable refusal codes (split-protocol.md §7).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RefusalCode {
    /// The signature does not verify.
    BadSignature,
    /// The signer's key is not pinned / the agent is not enrolled.
    UnknownKey,
    /// The agent is enrolled but not approved.
    AgentNotApproved,
    /// The agent was revoked.
    AgentRevoked,
    /// No such session.
    SessionUnknown,
    /// Sequence gap, repeat or reorder: the session is closed.
    SessionBroken,
    /// The session outlived its cap.
    SessionExpired,
    /// A server message arrived after its ttl.
    TtlExpired,
    /// An unknown step type.
    UnknownStep,
    /// An unknown key where none is allowed.
    UnknownField,
    /// No common protocol version.
    VersionUnsupported,
    /// The station cannot run a step the plan needs.
    CapabilityMissing,
    /// The holder does not own the key.
    NotKeyOwner,
    /// The holder's ID token was refused.
    HolderAuthFailed,
    /// The IdP challenge expired (the key needs reissue).
    ChallengeExpired,
    /// Not the key the job expects.
    WrongKey,
    /// The template or the agent's class forbids it.
    NotAllowed,
    /// Attestation or assertion verification failed.
    VerificationFailed,
    /// Another operation holds the key or session.
    Busy,
    /// A server-side failure (details in the server's log).
    Internal,
}

impl RefusalCode {
    /// The stable name carried on the wire (key 1 of `Refused`).
    pub const fn as_str(self) -> &'static str {
        match self {
            RefusalCode::BadSignature => "BadSignature",
            RefusalCode::UnknownKey => "UnknownKey",
            RefusalCode::AgentNotApproved => "AgentNotApproved",
            RefusalCode::AgentRevoked => "AgentRevoked",
            RefusalCode::SessionUnknown => "SessionUnknown",
            RefusalCode::SessionBroken => "SessionBroken",
            RefusalCode::SessionExpired => "SessionExpired",
            RefusalCode::TtlExpired => "TtlExpired",
            RefusalCode::UnknownStep => "UnknownStep",
            RefusalCode::UnknownField => "UnknownField",
            RefusalCode::VersionUnsupported => "VersionUnsupported",
            RefusalCode::CapabilityMissing => "CapabilityMissing",
            RefusalCode::NotKeyOwner => "NotKeyOwner",
            RefusalCode::HolderAuthFailed => "HolderAuthFailed",
            RefusalCode::ChallengeExpired => "ChallengeExpired",
            RefusalCode::WrongKey => "WrongKey",
            RefusalCode::NotAllowed => "NotAllowed",
            RefusalCode::VerificationFailed => "VerificationFailed",
            RefusalCode::Busy => "Busy",
            RefusalCode::Internal => "Internal",
        }
    }
}

/// Kind 36.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused {
    /// Key 1.
    pub code: RefusalCode,
    /// Key 2: human-readable, never a secret.
    pub reason: String,
    /// Key 3.
    pub needs_reissue: Option<bool>,
    /// Key 4: the step concerned.
    pub step: Option<String>,
}
