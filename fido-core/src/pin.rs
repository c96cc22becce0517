//! PIN/UV auth protocols 1 and 2, PIN rules and permissions.

/// Errors of this module.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PinError {
    /// Placeholder until the module lands.
    #[error("not yet implemented")]
    NotImplemented,
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
