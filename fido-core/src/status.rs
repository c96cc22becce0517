//! CTAP status codes, kept losslessly.
//!
//! Every byte an authenticator can send maps to a [`CtapStatus`] and back to the same
//! byte: named variants for the codes of CTAP 2.1 §8.2 (and the CTAP1/HID codes that
//! share the space), [`CtapStatus::Other`] for everything else.

use core::fmt;

macro_rules! statuses {
    ($( $(#[$doc:meta])* $name:ident = $byte:literal => $text:literal, )*) => {
        /// A CTAP status byte (CTAP 2.1 §8.2). Unknown bytes are kept in [`CtapStatus::Other`].
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum CtapStatus {
            $( $(#[$doc])* $name, )*
            /// A status byte without a name in CTAP 2.1 (vendor or future codes), kept as sent.
            Other(u8),
        }

        impl CtapStatus {
            /// The status for a byte; never fails, never loses the byte.
            pub const fn from_u8(byte: u8) -> Self {
                match byte {
                    $( $byte => Self::$name, )*
                    other => Self::Other(other),
                }
            }

            /// The byte on the wire.
            pub const fn to_u8(self) -> u8 {
                match self {
                    $( Self::$name => $byte, )*
                    Self::Other(b) => b,
                }
            }

            /// A sentence a person can act on.
            pub const fn description(self) -> &'static str {
                match self {
                    $( Self::$name => $text, )*
                    Self::Other(_) => "unrecognised status code (vendor-specific or from a newer CTAP version)",
                }
            }
        }
    };
}

statuses! {
    /// 0x00: success.
    Success = 0x00 => "success",
    /// 0x01: the command is not known or not supported.
    InvalidCommand = 0x01 => "the authenticator does not support this command",
    /// 0x02: a command parameter is invalid.
    InvalidParameter = 0x02 => "a parameter of the command is invalid",
    /// 0x03: invalid message or item length.
    InvalidLength = 0x03 => "invalid message or item length",
    /// 0x04: invalid message sequencing.
    InvalidSeq = 0x04 => "invalid message sequencing",
    /// 0x05: message timed out.
    Timeout = 0x05 => "the message timed out",
    /// 0x06: channel busy.
    ChannelBusy = 0x06 => "the channel is busy with another request; retry later",
    /// 0x0A: command requires a channel lock.
    LockRequired = 0x0A => "the command requires a channel lock",
    /// 0x0B: command not allowed on this channel id.
    InvalidChannel = 0x0B => "the command is not allowed on this channel",
    /// 0x11: unexpected CBOR type.
    CborUnexpectedType = 0x11 => "the authenticator found an unexpected CBOR type in the request",
    /// 0x12: error when parsing CBOR.
    InvalidCbor = 0x12 => "the authenticator could not parse the request CBOR",
    /// 0x14: a required parameter is missing.
    MissingParameter = 0x14 => "a required parameter is missing",
    /// 0x15: a limit was exceeded.
    LimitExceeded = 0x15 => "a limit of the authenticator was exceeded",
    /// 0x16: unsupported extension (CTAP 2.0).
    UnsupportedExtension = 0x16 => "unsupported extension",
    /// 0x17: fingerprint database is full.
    FpDatabaseFull = 0x17 => "the fingerprint database is full",
    /// 0x18: large blob storage is full.
    LargeBlobStorageFull = 0x18 => "the large-blob storage is full",
    /// 0x19: a credential in the exclude list is present on the authenticator.
    CredentialExcluded = 0x19 => "a credential from the exclude list is already on this key",
    /// 0x21: the authenticator is processing.
    Processing = 0x21 => "the authenticator is still processing",
    /// 0x22: credential not valid for this authenticator.
    InvalidCredential = 0x22 => "the credential is not valid for this authenticator",
    /// 0x23: authentication is waiting for user interaction.
    UserActionPending = 0x23 => "waiting for the user to act on the key",
    /// 0x24: processing, lengthy operation is in progress.
    OperationPending = 0x24 => "a lengthy operation is in progress",
    /// 0x25: no request is pending.
    NoOperations = 0x25 => "no request is pending",
    /// 0x26: unsupported algorithm.
    UnsupportedAlgorithm = 0x26 => "the authenticator supports none of the requested algorithms",
    /// 0x27: not authorised for the requested operation.
    OperationDenied = 0x27 => "the operation was denied (by the user or by policy)",
    /// 0x28: internal key storage is full.
    KeyStoreFull = 0x28 => "the key's credential storage is full",
    /// 0x2A: no outstanding operations (CTAP 2.0).
    NoOperationPending = 0x2A => "no outstanding operation",
    /// 0x2B: unsupported option.
    UnsupportedOption = 0x2B => "the authenticator does not support a requested option",
    /// 0x2C: not a valid option for the current operation.
    InvalidOption = 0x2C => "an option is not valid for this operation",
    /// 0x2D: pending keep-alive was cancelled.
    KeepaliveCancel = 0x2D => "the request was cancelled",
    /// 0x2E: no valid credentials provided.
    NoCredentials = 0x2E => "no matching credential on this key",
    /// 0x2F: a user action timeout occurred.
    UserActionTimeout = 0x2F => "the user did not touch the key in time",
    /// 0x30: continuation command not allowed, or operation not allowed now.
    NotAllowed = 0x30 => "not allowed now (for reset: only within seconds of power-up; reattach the key and retry)",
    /// 0x31: PIN invalid.
    PinInvalid = 0x31 => "wrong PIN",
    /// 0x32: PIN blocked.
    PinBlocked = 0x32 => "the PIN is blocked: no retries left; the key must be reset",
    /// 0x33: PIN/UV auth parameter failed verification.
    PinAuthInvalid = 0x33 => "the PIN/UV auth parameter failed verification",
    /// 0x34: PIN auth blocked; a power cycle is needed.
    PinAuthBlocked = 0x34 => "too many wrong PINs in a row: remove and reattach the key (power cycle) before trying again",
    /// 0x35: no PIN has been set.
    PinNotSet = 0x35 => "no PIN is set on this key",
    /// 0x36: a PIN/UV auth token is required.
    PuatRequired = 0x36 => "this operation needs PIN/UV authentication",
    /// 0x37: PIN policy violation.
    PinPolicyViolation = 0x37 => "PIN policy violation: the PIN is shorter than the key's minimum PIN length, or the key requires the PIN to be changed (forcePINChange) before use",
    /// 0x38: reserved (formerly PIN token expired).
    PinTokenExpired = 0x38 => "the PIN token expired",
    /// 0x39: authenticator cannot handle this request due to memory constraints.
    RequestTooLarge = 0x39 => "the request is too large for the authenticator",
    /// 0x3A: the current operation has timed out.
    ActionTimeout = 0x3A => "the operation timed out",
    /// 0x3B: user presence is required (CTAP2.0) / UV blocked (2.1).
    UvBlocked = 0x3B => "built-in user verification is blocked; use the PIN",
    /// 0x3C: a check failed (integrity failure, e.g. large-blob hash).
    IntegrityFailure = 0x3C => "integrity check failed",
    /// 0x3D: invalid subcommand.
    InvalidSubcommand = 0x3D => "the authenticator does not support this subcommand",
    /// 0x3E: built-in UV failed (retry possible).
    UvInvalid = 0x3E => "user verification failed (fingerprint not recognised)",
    /// 0x3F: the token lacks the permission for this operation.
    UnauthorizedPermission = 0x3F => "the PIN/UV token lacks the permission for this operation",
    /// 0x7F: other unspecified error.
    Other7F = 0x7F => "unspecified authenticator error",
    /// 0xDF: CTAP2 spec last error (marker).
    SpecLast = 0xDF => "unspecified CTAP error",
    /// 0xE0: extension-specific first error.
    ExtensionFirst = 0xE0 => "extension-specific error",
    /// 0xEF: extension-specific last error.
    ExtensionLast = 0xEF => "extension-specific error",
    /// 0xF0: vendor-specific first error.
    VendorFirst = 0xF0 => "vendor-specific error",
    /// 0xFF: vendor-specific last error.
    VendorLast = 0xFF => "vendor-specific error",
}

impl CtapStatus {
    /// True for [`CtapStatus::Success`].
    pub const fn is_success(self) -> bool {
        matches!(self, Self::Success)
    }
}

impl From<u8> for CtapStatus {
    fn from(b: u8) -> Self {
        Self::from_u8(b)
    }
}

impl From<CtapStatus> for u8 {
    fn from(s: CtapStatus) -> Self {
        s.to_u8()
    }
}

impl fmt::Display for CtapStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "CTAP status 0x{:02X}: {}",
            self.to_u8(),
            self.description()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_byte_round_trips() {
        for b in 0..=255u8 {
            assert_eq!(CtapStatus::from_u8(b).to_u8(), b);
        }
    }

    #[test]
    fn names_the_common_ones() {
        assert_eq!(CtapStatus::from_u8(0x31), CtapStatus::PinInvalid);
        assert_eq!(CtapStatus::from_u8(0x34), CtapStatus::PinAuthBlocked);
        assert_eq!(
            CtapStatus::from_u8(0x3F),
            CtapStatus::UnauthorizedPermission
        );
        assert_eq!(CtapStatus::from_u8(0x42), CtapStatus::Other(0x42));
        assert!(CtapStatus::from_u8(0x37)
            .to_string()
            .contains("minimum PIN length"));
        assert!(CtapStatus::from_u8(0x37)
            .to_string()
            .contains("forcePINChange"));
    }
}
