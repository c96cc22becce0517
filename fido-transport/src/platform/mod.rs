//! What the device half of a station can do with keys, and the Windows WebAuthn
//! platform API (`webauthn.dll`) for what an unelevated Windows process can still do.
//!
//! On Windows 10 1903 and later only elevated processes (an administrator, or the
//! keysmith agent service running as LocalSystem) reach keys with raw CTAP; an
//! unelevated one gets [`crate::Error::NeedsElevation`] from HID and PC/SC. It can
//! still make credentials and get assertions through `webauthn.dll` (Windows shows its
//! own PIN and touch dialogs), which covers self-service issuance and sign-in checks but
//! no PIN, config, reset, credential-management or bio step. [`Capabilities::detect`]
//! tells which of the two this process has, so the server refuses up front a template
//! the station cannot carry out (the split protocol's `caps`: `ctap_raw`,
//! `webauthn_platform`).

use std::time::Duration;

use fido_core::commands::{CredentialDescriptor, RpEntity, UserEntity};

use crate::Error;

#[cfg(windows)]
pub mod windows;

/// How this process can reach security keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeviceAccess {
    /// Raw CTAP over HID and PC/SC: every step (Linux, macOS, an elevated Windows
    /// process or the agent service).
    RawCtap,
    /// Only the Windows WebAuthn API: makeCredential and getAssertion, with Windows'
    /// own PIN and touch prompts.
    PlatformOnly,
    /// Neither (an unelevated Windows process without `webauthn.dll`).
    None,
}

impl DeviceAccess {
    /// The wire name (`raw_ctap`, `platform_only`, `none`).
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceAccess::RawCtap => "raw_ctap",
            DeviceAccess::PlatformOnly => "platform_only",
            DeviceAccess::None => "none",
        }
    }
}

/// The device capabilities this process reports (split protocol `caps` 1 and 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capabilities {
    /// HID / PC/SC access with raw CTAP.
    pub ctap_raw: bool,
    /// The Windows WebAuthn API is available (its API version, 0 when absent).
    pub webauthn_api_version: u32,
}

impl Capabilities {
    /// Detects what this process can do: raw CTAP everywhere but on an unelevated
    /// Windows process; `webauthn.dll` on Windows when it loads.
    pub fn detect() -> Self {
        #[cfg(windows)]
        {
            Capabilities {
                ctap_raw: windows::is_elevated(),
                webauthn_api_version: windows::WebAuthnApi::load()
                    .map(|api| api.api_version())
                    .unwrap_or(0),
            }
        }
        #[cfg(not(windows))]
        {
            Capabilities {
                ctap_raw: true,
                webauthn_api_version: 0,
            }
        }
    }

    /// True when `webauthn.dll` is there.
    pub fn webauthn_platform(&self) -> bool {
        self.webauthn_api_version > 0
    }

    /// Raw CTAP wins when both are there.
    pub fn access(&self) -> DeviceAccess {
        match (self.ctap_raw, self.webauthn_platform()) {
            (true, _) => DeviceAccess::RawCtap,
            (false, true) => DeviceAccess::PlatformOnly,
            (false, false) => DeviceAccess::None,
        }
    }

    /// Checks that a plan needing the given device steps can run here: with
    /// platform-only access only makeCredential and getAssertion can. The error names
    /// the first step that cannot run and what to do about it.
    pub fn check_steps<'a>(&self, steps: impl IntoIterator<Item = &'a str>) -> Result<(), String> {
        match self.access() {
            DeviceAccess::RawCtap => Ok(()),
            access => {
                for step in steps {
                    let platform_ok = matches!(step, "make_credential" | "get_assertion");
                    if !(platform_ok && access == DeviceAccess::PlatformOnly) {
                        return Err(format!(
                            "this station cannot run the step {step:?}: it has {} access to \
                             security keys; install the keysmith agent service (or run as \
                             administrator) for PIN, policy, reset and credential-management steps",
                            access.as_str()
                        ));
                    }
                }
                Ok(())
            }
        }
    }
}

/// User verification for a platform ceremony.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum UserVerification {
    /// Windows must verify the user (PIN or biometrics).
    Required,
    /// Verify if the key can.
    Preferred,
    /// Do not verify.
    Discouraged,
}

/// A makeCredential through the platform. The platform hashes `client_data_json`
/// itself, so the caller supplies the JSON (built by the server), not its hash.
#[derive(Clone, Debug, PartialEq)]
pub struct PlatformMakeCredential {
    /// The clientDataJSON (`type` `webauthn.create`, the IdP's challenge, origin).
    pub client_data_json: Vec<u8>,
    /// The relying party.
    pub rp: RpEntity,
    /// The user account (the name is required by Windows).
    pub user: UserEntity,
    /// Acceptable COSE algorithms, preferred first.
    pub algorithms: Vec<i64>,
    /// Credentials that must not be on the key (Windows handles long lists itself).
    pub exclude_list: Vec<CredentialDescriptor>,
    /// Make a discoverable credential.
    pub resident_key: bool,
    /// User verification.
    pub user_verification: UserVerification,
    /// Enterprise attestation (1 vendor-facilitated, 2 platform-managed).
    pub enterprise_attestation: Option<u8>,
    /// How long Windows waits for the user.
    pub timeout: Duration,
}

/// A new credential from the platform.
#[derive(Clone, Debug, PartialEq)]
pub struct PlatformCredential {
    /// The attestation object (CBOR), as the RP receives it.
    pub attestation_object: Vec<u8>,
    /// The credential id.
    pub credential_id: Vec<u8>,
    /// The attestation statement format (`packed`, `none`, ...).
    pub format: String,
}

/// A getAssertion through the platform.
#[derive(Clone, Debug, PartialEq)]
pub struct PlatformGetAssertion {
    /// The clientDataJSON (`type` `webauthn.get`, the server's nonce, origin).
    pub client_data_json: Vec<u8>,
    /// The RP id.
    pub rp_id: String,
    /// Acceptable credentials (empty: discoverable ones).
    pub allow_list: Vec<CredentialDescriptor>,
    /// User verification.
    pub user_verification: UserVerification,
    /// How long Windows waits for the user.
    pub timeout: Duration,
}

/// An assertion from the platform.
#[derive(Clone, Debug, PartialEq)]
pub struct PlatformAssertion {
    /// The credential that signed.
    pub credential_id: Vec<u8>,
    /// The authenticator data (signed with SHA-256 of the clientDataJSON).
    pub auth_data: Vec<u8>,
    /// The signature.
    pub signature: Vec<u8>,
    /// The user handle (discoverable credentials).
    pub user_id: Option<Vec<u8>>,
}

/// The crate error for a failed `webauthn.dll` call (HRESULT `hr`, its name `name`).
#[cfg_attr(not(windows), allow(dead_code))]
pub(crate) fn map_hresult(hr: u32, name: String, timeout: Duration) -> Error {
    match hr {
        // NTE_EXISTS: a credential of the exclude list is on the key.
        0x8009_000F => Error::Ctap(fido_core::CtapStatus::CredentialExcluded),
        // NTE_NOT_FOUND: none of the allowed credentials is on the key.
        0x8009_0011 => Error::Ctap(fido_core::CtapStatus::NoCredentials),
        // NTE_USER_CANCELLED, HRESULT_FROM_WIN32(ERROR_CANCELLED).
        0x8009_0036 | 0x8007_04C7 => Error::Cancelled,
        // HRESULT_FROM_WIN32(ERROR_TIMEOUT).
        0x8007_05B4 => Error::Timeout(timeout),
        _ => Error::Platform {
            hresult: hr,
            name: if name.is_empty() {
                "unknown error".to_owned()
            } else {
                name
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_from_capabilities() {
        let raw = Capabilities {
            ctap_raw: true,
            webauthn_api_version: 4,
        };
        assert_eq!(raw.access(), DeviceAccess::RawCtap);
        assert!(raw
            .check_steps(["reset", "set_pin", "make_credential"])
            .is_ok());
        let platform = Capabilities {
            ctap_raw: false,
            webauthn_api_version: 4,
        };
        assert_eq!(platform.access().as_str(), "platform_only");
        assert!(platform
            .check_steps(["make_credential", "get_assertion"])
            .is_ok());
        let e = platform
            .check_steps(["make_credential", "set_min_pin_length"])
            .unwrap_err();
        assert!(
            e.contains("set_min_pin_length") && e.contains("agent service"),
            "{e}"
        );
        let none = Capabilities {
            ctap_raw: false,
            webauthn_api_version: 0,
        };
        assert_eq!(none.access(), DeviceAccess::None);
        assert!(none.check_steps(["get_assertion"]).is_err());
    }

    #[test]
    fn hresults_map_to_typed_errors() {
        let t = Duration::from_secs(5);
        assert!(matches!(
            map_hresult(0x8009_000F, String::new(), t),
            Error::Ctap(fido_core::CtapStatus::CredentialExcluded)
        ));
        assert!(matches!(
            map_hresult(0x8009_0036, String::new(), t),
            Error::Cancelled
        ));
        assert!(matches!(map_hresult(0x8007_05B4, String::new(), t), Error::Timeout(d) if d == t));
        let e = map_hresult(0x8009_0027, "InvalidParameter".into(), t);
        assert_eq!(
            e.to_string(),
            "Windows WebAuthn (webauthn.dll) failed: InvalidParameter (HRESULT 0x80090027)"
        );
    }

    #[test]
    fn detect_matches_the_platform() {
        let caps = Capabilities::detect();
        if cfg!(not(windows)) {
            assert_eq!(caps.access(), DeviceAccess::RawCtap);
            assert!(!caps.webauthn_platform());
        }
    }
}
