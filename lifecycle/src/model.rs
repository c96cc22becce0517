//! Identifiers and states shared by the engine, the templates and the repository.

use core::fmt;
use core::str::FromStr;

/// The lifecycle state of a managed key and of each passkey on it (docs/lifecycle.md §1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum CredentialState {
    /// Known to the CMS, not issued.
    Blank,
    /// Assigned to a user; passkey made; registration pending at the IdP.
    Issued,
    /// PIN set by its holder; passkey registered at the IdP.
    Active,
    /// Passkey removed at the IdP; the key must be reissued to be used again.
    Inactive,
    /// Passkey removed at the IdP; key no longer trusted.
    Revoked,
    /// Key taken out of service.
    Retired,
    /// The CMS forgot the key; it may be issued again from `Blank`.
    Unregistered,
}

impl CredentialState {
    /// Every state, in lifecycle order.
    pub const ALL: [CredentialState; 7] = [
        CredentialState::Blank,
        CredentialState::Issued,
        CredentialState::Active,
        CredentialState::Inactive,
        CredentialState::Revoked,
        CredentialState::Retired,
        CredentialState::Unregistered,
    ];

    /// The stable lower-case name used in storage, JSON and logs.
    pub const fn as_str(self) -> &'static str {
        match self {
            CredentialState::Blank => "blank",
            CredentialState::Issued => "issued",
            CredentialState::Active => "active",
            CredentialState::Inactive => "inactive",
            CredentialState::Revoked => "revoked",
            CredentialState::Retired => "retired",
            CredentialState::Unregistered => "unregistered",
        }
    }
}

impl fmt::Display for CredentialState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A state name that is not one of [`CredentialState::ALL`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown credential state {0:?}")]
pub struct UnknownState(pub String);

impl FromStr for CredentialState {
    type Err = UnknownState;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CredentialState::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| UnknownState(s.to_owned()))
    }
}

/// A lifecycle action an operator, the holder or the engine takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Action {
    /// Issue a blank key to a user.
    Issue,
    /// Activate (initiate): the holder's PIN replaces the transport PIN, registration sent.
    Activate,
    /// Remove the passkey at the IdP; the key needs reissue.
    Inactivate,
    /// Remove the passkey at the IdP; the key is no longer trusted.
    Revoke,
    /// Take the key out of service.
    Retire,
    /// Forget the key.
    Unregister,
}

impl Action {
    /// The stable lower-case name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Action::Issue => "issue",
            Action::Activate => "activate",
            Action::Inactivate => "inactivate",
            Action::Revoke => "revoke",
            Action::Retire => "retire",
            Action::Unregister => "unregister",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Longest serial number accepted, in characters (a key id is the AAGUID, `-` and the
/// serial).
pub const MAX_SERIAL_CHARS: usize = 128;

/// Checks a key's serial number before it becomes part of a key id: 1 to
/// [`MAX_SERIAL_CHARS`] characters, no control characters (NUL, line breaks, tabs, ...:
/// a key id must survive a C string and one-line-per-key output) and no white space
/// around it. Every boundary that takes a serial (bulk CSV, the facade's issue, reissue
/// and self-issue) calls it; the error is why, for a message that names the field.
pub fn check_serial(serial: &str) -> Result<(), String> {
    if serial.is_empty() {
        return Err("is empty".into());
    }
    if let Some(c) = serial.chars().find(|c| c.is_control()) {
        return Err(format!(
            "contains the control character {c:?} (NUL, line breaks and tabs cannot be part of a key id)"
        ));
    }
    if serial.trim() != serial {
        return Err("starts or ends with white space".into());
    }
    let n = serial.chars().count();
    if n > MAX_SERIAL_CHARS {
        return Err(format!("is {n} characters; at most {MAX_SERIAL_CHARS}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_names_round_trip() {
        for s in CredentialState::ALL {
            assert_eq!(s.as_str().parse::<CredentialState>(), Ok(s));
        }
        assert!("Active".parse::<CredentialState>().is_err());
    }

    #[test]
    fn serials_with_control_characters_are_refused() {
        assert_eq!(check_serial("SN-0001"), Ok(()));
        assert_eq!(check_serial("Seriennummer \u{e9}"), Ok(()));
        for bad in [
            "",
            "NUL\0X",
            "two\nlines",
            "cr\r",
            "tab\there",
            " pad",
            "pad ",
        ] {
            assert!(check_serial(bad).is_err(), "{bad:?} accepted");
        }
        assert!(check_serial(&"x".repeat(MAX_SERIAL_CHARS)).is_ok());
        assert!(check_serial(&"x".repeat(MAX_SERIAL_CHARS + 1)).is_err());
    }
}
