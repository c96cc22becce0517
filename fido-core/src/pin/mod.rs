//! PIN/UV auth protocols 1 and 2 (CTAP 2.1 §6.5.6, §6.5.7), PIN rules and permissions.
//!
//! Everything here is sans-IO: randomness comes from a caller-supplied
//! [`rand_core::CryptoRngCore`], so tests are deterministic.
//!
//! - [`PinUvAuthProtocol`]: the two protocols (key agreement, encrypt/decrypt,
//!   authenticate/verify), with [`SharedSecret`] as the agreed key material.
//! - [`AuthenticatorKeyAgreement`]: the authenticator's side of key agreement (used by the
//!   software authenticator).
//! - [`Pin`]: a validated, zeroized PIN (code-point minimum, 63-byte maximum, no NUL).
//! - [`set_pin`], [`change_pin`], [`pin_token_request`]: client-side parameters of the
//!   clientPIN subcommands; [`PinUvAuthToken`] and [`AuthMessage`] for pinUvAuthParam.
//! - [`verify_set_pin`], [`verify_change_pin`], [`decrypt_pin_hash`],
//!   [`PinUvAuthToken::encrypt_for`]: the authenticator-side counterparts.
//! - [`Permissions`]: the permission bits of a CTAP 2.1 pinUvAuthToken.
//!
//! ```
//! use fido_core::pin::{set_pin, verify_set_pin, AuthenticatorKeyAgreement, Pin, PinUvAuthProtocol};
//! use rand_core::OsRng;
//!
//! # fn main() -> Result<(), fido_core::pin::PinError> {
//! // The authenticator publishes its key-agreement key (clientPIN getKeyAgreement).
//! let authenticator = AuthenticatorKeyAgreement::new(&mut OsRng)?;
//! let peer_key = authenticator.public_key();
//!
//! // The platform builds setPIN's parameters from it.
//! let pin = Pin::new("123456")?;
//! let params = set_pin(PinUvAuthProtocol::Two, &peer_key, &pin, &mut OsRng)?;
//!
//! // The authenticator checks them and recovers the PIN.
//! let shared = authenticator.decapsulate(PinUvAuthProtocol::Two, &params.key_agreement)?;
//! let new_pin = verify_set_pin(&shared, &params.new_pin_enc, &params.pin_uv_auth_param, 4)?;
//! assert_eq!(new_pin.as_str(), "123456");
//! # Ok(())
//! # }
//! ```

mod policy;
mod protocol;
mod rules;
mod token;

pub use policy::PinPolicy;
pub use protocol::{AuthenticatorKeyAgreement, PinUvAuthProtocol, SharedSecret};
pub use rules::{Pin, MAX_PIN_BYTES, MIN_PIN_CODE_POINTS, PADDED_PIN_LEN};
pub use token::{
    change_pin, decrypt_pin_hash, pin_token_request, set_pin, verify_change_pin, verify_set_pin,
    AuthMessage, ChangePinParams, PinTokenRequest, PinUvAuthToken, SetPinParams,
};

/// What went wrong in a PIN/UV auth protocol operation or with a PIN.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PinError {
    /// The PIN has fewer Unicode code points than the minimum (4, or the key's
    /// current minPINLength if larger).
    #[error("PIN is too short: {actual} code points, at least {min} required")]
    TooShort {
        /// The minimum number of code points.
        min: usize,
        /// The PIN's number of code points.
        actual: usize,
    },
    /// The PIN is longer than 63 bytes in UTF-8.
    #[error("PIN is too long: {actual} bytes in UTF-8, at most {max} allowed")]
    TooLong {
        /// The maximum length in bytes (63).
        max: usize,
        /// The PIN's length in bytes.
        actual: usize,
    },
    /// The PIN contains a NUL character, which would end it early once padded.
    #[error("PIN contains a NUL character")]
    ContainsNul,
    /// A decrypted PIN is not valid UTF-8.
    #[error("PIN is not valid UTF-8")]
    NotUtf8,
    /// A decrypted padded PIN (`paddedNewPin`) is not exactly 64 bytes.
    #[error("padded PIN is {len} bytes, expected 64")]
    PaddedPinLength {
        /// The decrypted length.
        len: usize,
    },
    /// The PIN/UV auth protocol number is not 1 or 2.
    #[error("PIN/UV auth protocol {0} is not supported (only 1 and 2)")]
    UnsupportedProtocol(u64),
    /// A shared secret made with one protocol was used with the other.
    #[error("shared secret belongs to PIN/UV auth protocol {found}, not {expected}")]
    ProtocolMismatch {
        /// The protocol of the operation.
        expected: u8,
        /// The protocol the shared secret was made with.
        found: u8,
    },
    /// The peer's key-agreement key is not an EC2 P-256 key.
    #[error("keyAgreement key is not an EC2 P-256 key")]
    UnsupportedKeyAgreementKey,
    /// The peer's key-agreement key is not a valid point on P-256 (or is the identity).
    #[error("keyAgreement key is not a valid P-256 point")]
    InvalidPoint,
    /// Raw shared-secret bytes have the wrong length for the protocol (32 bytes for
    /// protocol 1, 64 for protocol 2).
    #[error("shared secret of {len} bytes is invalid for PIN/UV auth protocol {protocol}")]
    SharedSecretLength {
        /// The given length.
        len: usize,
        /// The protocol number.
        protocol: u8,
    },
    /// A key-agreement private key is not a valid P-256 scalar (zero or not below the
    /// group order).
    #[error("key-agreement private key is not a valid P-256 scalar")]
    InvalidPrivateKey,
    /// The random number generator failed or kept producing unusable output.
    #[error("random number generator failed")]
    Rng,
    /// A plaintext to encrypt is not a whole number of 16-byte AES blocks.
    #[error("plaintext of {len} bytes is not a multiple of the 16-byte AES block")]
    UnalignedPlaintext {
        /// The plaintext length.
        len: usize,
    },
    /// A ciphertext has an impossible length for the protocol (not whole AES blocks,
    /// or for protocol 2 shorter than its 16-byte IV).
    #[error("ciphertext `{field}` of {len} bytes has an invalid length for PIN/UV auth protocol {protocol}")]
    CiphertextLength {
        /// The field holding the ciphertext (e.g. `pinUvAuthToken`).
        field: &'static str,
        /// The ciphertext length.
        len: usize,
        /// The protocol number.
        protocol: u8,
    },
    /// A pinUvAuthParam has the wrong length for the protocol (16 bytes for protocol 1,
    /// 32 for protocol 2).
    #[error("pinUvAuthParam is {actual} bytes, expected {expected}")]
    AuthParamLength {
        /// The expected length.
        expected: usize,
        /// The received length.
        actual: usize,
    },
    /// A pinUvAuthParam does not verify (CTAP2_ERR_PIN_AUTH_INVALID on an authenticator).
    #[error("pinUvAuthParam does not verify")]
    AuthParamInvalid,
    /// A decrypted pinUvAuthToken has an invalid length (16 or 32 bytes for protocol 1,
    /// 32 for protocol 2).
    #[error("pinUvAuthToken is {len} bytes, invalid for PIN/UV auth protocol {protocol}")]
    TokenLength {
        /// The decrypted length.
        len: usize,
        /// The protocol number.
        protocol: u8,
    },
    /// A decrypted pinHash is not 16 bytes.
    #[error("pinHash is {len} bytes, expected 16")]
    PinHashLength {
        /// The decrypted length.
        len: usize,
    },
    /// The token lacks a permission the operation needs.
    #[error("pinUvAuthToken lacks permission(s) 0x{required:02x} (has 0x{granted:02x})")]
    MissingPermission {
        /// The permission bits required.
        required: u8,
        /// The permission bits the token has.
        granted: u8,
    },
    /// The token is bound to another RP id than the operation's.
    #[error("pinUvAuthToken is bound to another RP id")]
    RpIdMismatch,
}

/// PIN/UV auth token permissions (CTAP 2.1 §6.5.5.7).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Permissions(u8);

impl Permissions {
    /// makeCredential (`mc`).
    pub const MAKE_CREDENTIAL: Permissions = Permissions(0x01);
    /// getAssertion (`ga`).
    pub const GET_ASSERTION: Permissions = Permissions(0x02);
    /// credentialManagement (`cm`).
    pub const CREDENTIAL_MANAGEMENT: Permissions = Permissions(0x04);
    /// bioEnrollment (`be`).
    pub const BIO_ENROLLMENT: Permissions = Permissions(0x08);
    /// largeBlobWrite (`lbw`).
    pub const LARGE_BLOB_WRITE: Permissions = Permissions(0x10);
    /// authenticatorConfig (`acfg`).
    pub const AUTHENTICATOR_CONFIG: Permissions = Permissions(0x20);
    /// persistentCredentialManagementReadOnly (`pcmr`, CTAP 2.2): a persistent token
    /// that survives power cycles, for read-only credential management and for
    /// decrypting getInfo `encIdentifier` / `encCredStoreState`. Gated by the getInfo
    /// option `perCredMgmtRO`.
    pub const PERSISTENT_CREDENTIAL_MANAGEMENT_READ_ONLY: Permissions = Permissions(0x40);

    /// No permissions.
    pub const fn empty() -> Self {
        Permissions(0)
    }
    /// From the wire byte (unknown bits kept).
    pub const fn from_bits(bits: u8) -> Self {
        Permissions(bits)
    }
    /// The wire byte.
    pub const fn bits(self) -> u8 {
        self.0
    }
    /// True if every permission of `other` is in `self`.
    pub const fn contains(self, other: Permissions) -> bool {
        self.0 & other.0 == other.0
    }
    /// True if none is set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
    /// True if the set includes a permission that needs an RP id binding (mc or ga).
    pub const fn needs_rp_id(self) -> bool {
        self.0 & 0x03 != 0
    }
}

impl core::ops::BitOr for Permissions {
    type Output = Permissions;
    fn bitor(self, rhs: Permissions) -> Permissions {
        Permissions(self.0 | rhs.0)
    }
}

impl core::ops::BitOrAssign for Permissions {
    fn bitor_assign(&mut self, rhs: Permissions) {
        self.0 |= rhs.0;
    }
}
