//! The software authenticator: a CTAP 2.1 authenticator in Rust for tests, demos and CI.
//!
//! [`SoftAuthenticator`] takes whole CTAP2 requests (command byte + CBOR) and answers
//! them (status byte + CBOR), using `fido_core::commands` to read and write messages
//! and `fido_core::pin` for the PIN/UV auth protocols. It implements getInfo,
//! makeCredential (resident keys, `packed` attestation with a generated self-signed
//! certificate and a configurable AAGUID), getAssertion / getNextAssertion, clientPIN
//! (protocols 1 and 2, retry counters, PIN_AUTH_BLOCKED after three wrong PINs in a row
//! until [`SoftAuthenticator::power_cycle`], PIN_BLOCKED at zero), reset within ten
//! seconds of power-up, authenticatorConfig (toggleAlwaysUv, setMinPINLength with RP
//! ids and forceChangePin), credential management, large blobs, simulated fingerprint
//! enrolment and selection. Extensions: credProtect, hmac-secret, credBlob,
//! largeBlobKey, minPinLength. Algorithm: ES256 only.
//!
//! User presence follows a [`UserPresence`] policy (approve, deny, time out, delay)
//! that can be changed at run time through a [`PresenceControl`] handle; while it waits
//! the authenticator reports [`Progress`] through the [`Presence`] context of the call.
//!
//! State ([`SoftState`]) can be saved to and loaded from a JSON file. **The file holds
//! the authenticator's private keys in clear**: this is a test authenticator, never a
//! place for real credentials.
//!
//! [`SoftTransport`] runs the authenticator in-process behind the [`crate::Transport`]
//! trait. Both `SoftAuthenticator` and `SoftTransport` are [`crate::nfc::CardApplet`]s, so
//! they can run as a virtual card on vpcd ([`crate::nfc::VpcdCardHandle`]) with any
//! [`fido_core::apdu::CardConfig`] personality (see `examples/softkey.rs`).
//!
//! ```
//! use fido_core::commands::{decode_response, encode_request, GetInfo};
//! use fido_transport::softkey::{NoPresence, SoftAuthenticator, SoftConfig};
//!
//! let mut key = SoftAuthenticator::new(SoftConfig::default())?;
//! let reply = key.handle(&encode_request(&GetInfo), &mut NoPresence);
//! let info = decode_response::<GetInfo>(&reply).expect("getInfo");
//! assert!(info.is_ctap21());
//! # Ok::<(), fido_transport::softkey::SoftError>(())
//! ```

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fido_core::commands::{encode_status, status_for_request_error, Request};
use fido_core::pin::{AuthenticatorKeyAgreement, PinUvAuthToken};
use fido_core::CtapStatus;
use p256::ecdsa::SigningKey;
use rand_core::{CryptoRngCore, OsRng, RngCore};

use crate::Progress;

mod admin;
mod cert;
mod clock;
mod config;
mod info;
mod ops;
mod pin;
mod presence;
mod rng;
mod slot;
mod state;
mod transport;

pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{AttestationMode, SoftConfig};
pub use presence::{NoPresence, Presence, PresenceControl, UserPresence};
pub use rng::SeededRng;
pub use slot::{SoftKeyHands, SoftKeySlot};
pub use state::{ResidentCredential, Secret, SoftState, StoredPin, Template};
pub use transport::SoftTransport;

use rng::SoftRng;
use state::{empty_large_blob_array, STATE_FORMAT};

/// Reset is allowed only this long after power-up by default
/// ([`SoftConfig::reset_window`] changes it).
pub const RESET_WINDOW: Duration = Duration::from_secs(10);
/// PIN retries after a successful PIN entry or setPIN.
pub const MAX_PIN_RETRIES: u8 = 8;
/// Built-in UV retries.
pub const MAX_UV_RETRIES: u8 = 5;
/// Consecutive wrong PINs that block PIN entry until a power cycle.
pub const PIN_ATTEMPTS_BEFORE_POWER_CYCLE: u8 = 3;
/// getNextAssertion / enumeration state expires after this long.
const CONTINUATION_TIMEOUT: Duration = Duration::from_secs(30);

/// What went wrong setting up, saving or loading a software authenticator.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SoftError {
    /// Reading or writing the state file failed.
    #[error("state file {path}: {message}")]
    Io {
        /// The file.
        path: String,
        /// What the OS said.
        message: String,
    },
    /// The state file is not valid JSON of the expected shape.
    #[error("state file {path} is malformed: {message}")]
    Format {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// A key in the state is unusable (wrong length, not a valid P-256 scalar).
    #[error("state field `{field}` is invalid: {reason}")]
    InvalidState {
        /// The field.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// Key generation or the attestation certificate failed.
    #[error("crypto failure: {0}")]
    Crypto(String),
    /// The configuration is inconsistent.
    #[error("invalid configuration: {0}")]
    Config(String),
}

/// The token issued by the last successful clientPIN token request.
struct TokenState {
    token: PinUvAuthToken,
    /// When it was issued (tokens expire after `SoftConfig::token_lifetime`).
    issued: Instant,
}

/// A continuation of a previous command (only valid for the next command).
enum Pending {
    None,
    Assertions {
        remaining: Vec<ops::Candidate>,
        client_data_hash: [u8; 32],
        flags: fido_core::authdata::AuthDataFlags,
        rp_id: String,
        extensions: Option<Box<fido_core::commands::GetAssertionExtensions>>,
        uv: bool,
        started: Instant,
    },
    Rps {
        remaining: Vec<(String, Option<String>)>,
        started: Instant,
    },
    Credentials {
        remaining: Vec<ResidentCredential>,
        started: Instant,
    },
}

struct LargeBlobWrite {
    expected_length: usize,
    buffer: Vec<u8>,
}

struct Enrollment {
    template_id: Vec<u8>,
    remaining: u32,
}

/// A CTAP 2.1 authenticator in software. See the [module docs](self).
pub struct SoftAuthenticator {
    config: SoftConfig,
    state: SoftState,
    control: PresenceControl,
    clock: Box<dyn Clock>,
    rng: SoftRng,
    attestation_key: SigningKey,
    attestation_cert: Vec<u8>,
    key_agreement: AuthenticatorKeyAgreement,
    token: Option<TokenState>,
    consecutive_pin_failures: u8,
    power_up: Instant,
    /// The transport the current request came over (`usb`, `nfc`), for
    /// `transportsForReset`.
    via: &'static str,
    /// The persistent PinUvAuthToken (`pcmr`), also the key of `encIdentifier`.
    persistent_token: zeroize::Zeroizing<[u8; 32]>,
    pending: Pending,
    large_blob_write: Option<LargeBlobWrite>,
    enrollment: Option<Enrollment>,
    persist_path: Option<PathBuf>,
    dirty: bool,
}

impl core::fmt::Debug for SoftAuthenticator {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SoftAuthenticator")
            .field("aaguid", &self.config.aaguid)
            .field("pin_set", &self.state.pin.is_some())
            .field("pin_retries", &self.state.pin_retries)
            .field("credentials", &self.state.credentials.len())
            .finish_non_exhaustive()
    }
}

impl SoftAuthenticator {
    /// A fresh authenticator (no PIN, no credentials) drawing from the OS generator.
    pub fn new(config: SoftConfig) -> Result<Self, SoftError> {
        Self::with_rng_and_clock(config, OsRng, SystemClock)
    }

    /// A fresh authenticator with the given randomness and clock (use [`SeededRng`] and
    /// [`ManualClock`] for reproducible tests).
    pub fn with_rng_and_clock(
        config: SoftConfig,
        rng: impl CryptoRngCore + Send + 'static,
        clock: impl Clock + 'static,
    ) -> Result<Self, SoftError> {
        config.validate()?;
        let mut rng = SoftRng(Box::new(rng));
        let state = fresh_state(&config, &mut rng)?;
        Self::assemble(config, state, rng, Box::new(clock))
    }

    /// An authenticator resuming `state` (as saved by [`save`](Self::save)).
    pub fn from_state(
        config: SoftConfig,
        state: SoftState,
        rng: impl CryptoRngCore + Send + 'static,
        clock: impl Clock + 'static,
    ) -> Result<Self, SoftError> {
        config.validate()?;
        if state.format != STATE_FORMAT {
            return Err(SoftError::InvalidState {
                field: "format",
                reason: format!(
                    "version {} is not supported (expected {STATE_FORMAT})",
                    state.format
                ),
            });
        }
        if state.master_key.expose().len() != 32 {
            return Err(SoftError::InvalidState {
                field: "master_key",
                reason: "must be 32 bytes".into(),
            });
        }
        Self::assemble(config, state, SoftRng(Box::new(rng)), Box::new(clock))
    }

    /// Loads the state saved at `path` (OS randomness, real clock).
    pub fn load(path: impl AsRef<Path>, config: SoftConfig) -> Result<Self, SoftError> {
        let path = path.as_ref();
        let text =
            zeroize::Zeroizing::new(std::fs::read_to_string(path).map_err(|e| io_error(path, &e))?);
        let state: SoftState = serde_json::from_str(&text).map_err(|e| SoftError::Format {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        Self::from_state(config, state, OsRng, SystemClock)
    }

    /// Loads `path` if it exists, else creates a fresh authenticator; either way the
    /// state is saved back to `path` after every change.
    pub fn open_persistent(path: impl AsRef<Path>, config: SoftConfig) -> Result<Self, SoftError> {
        let path = path.as_ref();
        let mut auth = if path.exists() {
            Self::load(path, config)?
        } else {
            let a = Self::new(config)?;
            a.save(path)?;
            a
        };
        auth.persist_path = Some(path.to_path_buf());
        Ok(auth)
    }

    /// Saves the state to `path` as JSON, atomically: a new temporary file (`0600`,
    /// created exclusively with a random name beside `path`, so a symlink planted there
    /// is never followed), synced, then renamed over `path`. The file holds private keys
    /// in clear: only its owner may read it.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), SoftError> {
        let path = path.as_ref();
        let json =
            zeroize::Zeroizing::new(serde_json::to_vec_pretty(&self.state).map_err(|e| {
                SoftError::Format {
                    path: path.display().to_string(),
                    message: e.to_string(),
                }
            })?);
        write_private(path, &json)
    }

    /// Saves the state to `path` after every command that changed it.
    pub fn persist_to(&mut self, path: impl Into<PathBuf>) {
        self.persist_path = Some(path.into());
    }

    /// The persistent state.
    pub fn state(&self) -> &SoftState {
        &self.state
    }

    /// The configuration.
    pub fn config(&self) -> &SoftConfig {
        &self.config
    }

    /// The handle that changes the simulated user's behaviour at run time.
    pub fn control(&self) -> PresenceControl {
        self.control.clone()
    }

    /// The DER attestation certificate.
    pub fn attestation_certificate(&self) -> &[u8] {
        &self.attestation_cert
    }

    /// Sets the PIN directly, as a provisioning step outside CTAP (for demos and tests).
    /// Fails if a PIN is already set or `pin` breaks the current minimum length.
    pub fn preset_pin(&mut self, pin: &str) -> Result<(), SoftError> {
        if self.state.pin.is_some() {
            return Err(SoftError::Config("a PIN is already set".into()));
        }
        let pin = fido_core::pin::Pin::with_min_length(pin, usize::from(self.state.min_pin_length))
            .map_err(|e| SoftError::Config(format!("PIN rejected: {e}")))?;
        self.state.pin = Some(StoredPin {
            hash: Secret::new(pin.pin_hash().to_vec()),
            code_points: pin.code_points(),
        });
        self.state.pin_retries = MAX_PIN_RETRIES;
        self.dirty = false;
        if let Some(path) = self.persist_path.clone() {
            self.save(path)?;
        }
        Ok(())
    }

    /// Simulates removing and reattaching the key: clears PIN_AUTH_BLOCKED, forgets
    /// tokens and pending operations, makes a new key-agreement key and opens the
    /// reset window ([`SoftConfig::reset_window`]).
    pub fn power_cycle(&mut self) {
        self.power_up = self.clock.now();
        self.consecutive_pin_failures = 0;
        self.token = None;
        self.pending = Pending::None;
        self.large_blob_write = None;
        self.enrollment = None;
        self.regenerate_key_agreement();
    }

    /// Answers one CTAP2 request (command byte + CBOR) with status byte + CBOR. Never
    /// panics on malformed input: it answers with the matching CTAP status.
    pub fn handle(&mut self, request: &[u8], ctx: &mut dyn Presence) -> Vec<u8> {
        self.handle_over("usb", request, ctx)
    }

    /// [`handle`](Self::handle) for a request that came over `transport` (`usb`, `nfc`):
    /// reset is refused with OPERATION_DENIED (0x27) over transports missing from
    /// [`SoftConfig::transports_for_reset`].
    pub fn handle_over(
        &mut self,
        transport: &'static str,
        request: &[u8],
        ctx: &mut dyn Presence,
    ) -> Vec<u8> {
        self.via = transport;
        let out = self.dispatch(request, ctx);
        if self.dirty {
            self.dirty = false;
            if let Some(path) = self.persist_path.clone() {
                // A failed save cannot be reported through CTAP; the in-memory state stays
                // authoritative and the next change retries.
                if self.save(&path).is_err() {
                    self.dirty = true;
                }
            }
        }
        out
    }

    fn dispatch(&mut self, request: &[u8], ctx: &mut dyn Presence) -> Vec<u8> {
        if request.len() > self.config.max_msg_size {
            self.pending = Pending::None;
            return encode_status(CtapStatus::InvalidLength);
        }
        let req = match Request::decode(request) {
            Ok(r) => r,
            Err(e) => {
                self.pending = Pending::None;
                return encode_status(status_for_request_error(&e));
            }
        };
        let pending = std::mem::replace(&mut self.pending, Pending::None);
        ctx.progress(Progress::Processing);
        let result = match req {
            Request::GetInfo(_) => Ok(self.get_info()),
            Request::MakeCredential(r) => self.make_credential(r, ctx),
            Request::GetAssertion(r) => self.get_assertion(r, ctx),
            Request::GetNextAssertion(_) => self.get_next_assertion(pending),
            Request::ClientPin(r) => self.client_pin(r, ctx),
            Request::Reset(_) => self.reset(ctx),
            Request::Selection(_) => self.selection(ctx),
            Request::CredentialManagement(r) => self.credential_management(r, pending),
            Request::LargeBlobs(r) => self.large_blobs(r),
            Request::Config(r) => self.authenticator_config(r),
            Request::BioEnrollment(r) => self.bio_enrollment(r, ctx),
            _ => Err(CtapStatus::InvalidCommand),
        };
        match result {
            Ok(bytes) => bytes,
            Err(status) => encode_status(status),
        }
    }

    /// The persistent token (`pcmr`) and the encrypted identifier of getInfo 0x19:
    /// IV ‖ AES-128-CBC(HKDF-SHA-256(zero salt, token, "encIdentifier"), id). The IV is
    /// derived from the token and the identifier (a test key; real keys draw it at
    /// random).
    fn enc_identifier(&self, id: &[u8; 16]) -> Option<Vec<u8>> {
        use sha2::Digest;
        let digest = sha2::Sha256::new()
            .chain_update(b"keysmith softkey encIdentifier IV")
            .chain_update(self.persistent_token.as_ref())
            .chain_update(id)
            .finalize();
        let mut iv = [0u8; 16];
        iv.copy_from_slice(&digest[..16]);
        fido_core::commands::encrypt_info_field(
            self.persistent_token.as_ref(),
            "encIdentifier",
            iv,
            id,
        )
        .ok()
    }

    /// A fresh persistent token (at start-up, reset and PIN change).
    fn regenerate_persistent_token(&mut self) {
        let _ = self.rng.try_fill_bytes(self.persistent_token.as_mut());
    }

    fn assemble(
        config: SoftConfig,
        state: SoftState,
        mut rng: SoftRng,
        clock: Box<dyn Clock>,
    ) -> Result<Self, SoftError> {
        let key_bytes: [u8; 32] =
            state
                .attestation_key
                .expose()
                .try_into()
                .map_err(|_| SoftError::InvalidState {
                    field: "attestation_key",
                    reason: "must be 32 bytes".into(),
                })?;
        let attestation_key =
            SigningKey::from_bytes(&key_bytes.into()).map_err(|_| SoftError::InvalidState {
                field: "attestation_key",
                reason: "not a valid P-256 scalar".into(),
            })?;
        let attestation_cert = cert::attestation_certificate(&attestation_key, config.aaguid)
            .map_err(SoftError::Crypto)?;
        let key_agreement = AuthenticatorKeyAgreement::new(&mut rng)
            .map_err(|e| SoftError::Crypto(e.to_string()))?;
        let now = clock.now();
        let mut persistent_token = zeroize::Zeroizing::new([0u8; 32]);
        rng.try_fill_bytes(persistent_token.as_mut())
            .map_err(|e| SoftError::Crypto(e.to_string()))?;
        Ok(SoftAuthenticator {
            persistent_token,
            via: "usb",
            control: PresenceControl::new(config.presence),
            config,
            state,
            clock,
            rng,
            attestation_key,
            attestation_cert,
            key_agreement,
            token: None,
            consecutive_pin_failures: 0,
            power_up: now,
            pending: Pending::None,
            large_blob_write: None,
            enrollment: None,
            persist_path: None,
            dirty: false,
        })
    }

    /// A new key-agreement key (after a wrong PIN, a PIN change, power-up).
    fn regenerate_key_agreement(&mut self) {
        // With a failing RNG the old key stays; every later draw would fail anyway.
        let _ = self.key_agreement.regenerate(&mut self.rng);
    }

    /// Waits for the simulated user according to the presence policy.
    fn user_presence(&mut self, ctx: &mut dyn Presence) -> Result<(), CtapStatus> {
        ctx.progress(Progress::UserPresenceNeeded);
        match self.control.presence() {
            UserPresence::Approve => Ok(()),
            UserPresence::Deny => Err(CtapStatus::OperationDenied),
            UserPresence::TimeOut => Err(CtapStatus::UserActionTimeout),
            UserPresence::Delay(d) => {
                let end = Instant::now() + d;
                loop {
                    if ctx.is_cancelled() {
                        return Err(CtapStatus::KeepaliveCancel);
                    }
                    let now = Instant::now();
                    if now >= end {
                        return Ok(());
                    }
                    std::thread::sleep((end - now).min(Duration::from_millis(50)));
                    ctx.progress(Progress::UserPresenceNeeded);
                }
            }
        }
    }

    fn random_bytes<const N: usize>(&mut self) -> Result<[u8; N], CtapStatus> {
        let mut b = [0u8; N];
        self.rng
            .try_fill_bytes(&mut b)
            .map_err(|_| CtapStatus::Other7F)?;
        Ok(b)
    }

    fn next_serial(&mut self) -> u64 {
        self.state.next_serial = self.state.next_serial.wrapping_add(1);
        self.state.next_serial
    }
}

/// Writes `bytes` to `path` through a fresh private temporary file and a rename:
/// tempfile's `NamedTempFile` beside `path` (mode 0600, an unpredictable name, removed on
/// failure), synced, then persisted over `path`; the directory is synced after the rename.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), SoftError> {
    use std::io::Write;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| io_error(dir, &e))?;
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(|e| io_error(tmp.path(), &e))?;
    tmp.persist(path).map_err(|e| io_error(path, &e.error))?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

fn io_error(path: &Path, e: &std::io::Error) -> SoftError {
    SoftError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// A fresh state: new master and attestation keys, no PIN, no credentials.
fn fresh_state(config: &SoftConfig, rng: &mut SoftRng) -> Result<SoftState, SoftError> {
    let mut master = vec![0u8; 32];
    rng.try_fill_bytes(&mut master)
        .map_err(|e| SoftError::Crypto(format!("random number generator: {e}")))?;
    let attestation = SigningKey::random(rng);
    Ok(SoftState {
        format: STATE_FORMAT,
        master_key: Secret::new(master),
        attestation_key: Secret::new(attestation.to_bytes().to_vec()),
        pin: None,
        pin_retries: MAX_PIN_RETRIES,
        uv_retries: MAX_UV_RETRIES,
        min_pin_length: config.min_pin_length,
        min_pin_length_rpids: config.min_pin_length_rpids.clone(),
        force_pin_change: false,
        always_uv: config.always_uv,
        enterprise_attestation: false,
        sign_count: 0,
        credentials: Vec::new(),
        large_blob_array: empty_large_blob_array(),
        templates: Vec::new(),
        next_serial: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_private_replaces_the_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("state.json");
        write_private(&path, b"one").expect("first write");
        write_private(&path, b"two").expect("replace");
        assert_eq!(std::fs::read(&path).expect("read"), b"two");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("state.json")]);
        // A missing directory is a typed IO error naming it.
        let missing = dir.path().join("no/such/dir/state.json");
        assert!(matches!(
            write_private(&missing, b"x"),
            Err(SoftError::Io { path, .. }) if path.contains("no/such/dir")
        ));
    }

    #[test]
    fn config_validation_names_the_problem() {
        let bad = |c: SoftConfig| match SoftAuthenticator::new(c) {
            Err(SoftError::Config(msg)) => msg,
            other => panic!("expected a config error, got {other:?}"),
        };
        assert!(bad(SoftConfig {
            pin_protocols: vec![3],
            ..SoftConfig::default()
        })
        .contains("pin_protocols"));
        assert!(bad(SoftConfig {
            min_pin_length: 3,
            ..SoftConfig::default()
        })
        .contains("min_pin_length"));
        assert!(bad(SoftConfig {
            max_msg_size: 10,
            ..SoftConfig::default()
        })
        .contains("max_msg_size"));
        assert!(SoftAuthenticator::new(SoftConfig::ctap20()).is_ok());
    }

    #[test]
    fn from_state_rejects_bad_keys() {
        let a = SoftAuthenticator::with_rng_and_clock(
            SoftConfig::default(),
            SeededRng::new(1),
            ManualClock::new(),
        )
        .expect("authenticator");
        let mut s = a.state().clone();
        s.attestation_key = Secret::new(vec![0; 32]);
        let err =
            SoftAuthenticator::from_state(SoftConfig::default(), s, SeededRng::new(1), SystemClock)
                .err();
        assert!(matches!(
            err,
            Some(SoftError::InvalidState {
                field: "attestation_key",
                ..
            })
        ));
        let mut s = a.state().clone();
        s.format = 99;
        assert!(matches!(
            SoftAuthenticator::from_state(SoftConfig::default(), s, SeededRng::new(1), SystemClock),
            Err(SoftError::InvalidState {
                field: "format",
                ..
            })
        ));
    }

    #[test]
    fn debug_does_not_show_secrets() {
        let a = SoftAuthenticator::with_rng_and_clock(
            SoftConfig::default(),
            SeededRng::new(1),
            ManualClock::new(),
        )
        .expect("authenticator");
        let master = state::hex_encode(a.state().master_key.expose());
        assert!(!format!("{a:?}").contains(&master));
        assert!(!format!("{:?}", a.state()).contains(&master));
    }
}
