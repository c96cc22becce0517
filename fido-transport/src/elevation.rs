//! Windows' restriction on direct FIDO access: since Windows 10 1903 only elevated
//! processes can open a HID device of usage page 0xF1D0 (enumeration still works, as
//! hidapi opens devices with no access rights to list them), and SELECT of the FIDO
//! applet over PC/SC is refused the same way. These helpers recognise the OS answers
//! and turn them into [`Error::NeedsElevation`]; the recognisers are plain functions
//! (tested on every OS), the mapping is applied only on Windows.

use crate::Error;

/// True where the restriction exists (Windows).
pub(crate) const ENFORCED: bool = cfg!(windows);

/// `ERROR_ACCESS_DENIED` as an HRESULT (`HRESULT_FROM_WIN32(5)`).
pub(crate) const E_ACCESSDENIED: u32 = 0x8007_0005;
/// `SCARD_E_NO_ACCESS`.
pub(crate) const SCARD_E_NO_ACCESS: u32 = 0x8010_0027;
/// `SCARD_W_SECURITY_VIOLATION`.
pub(crate) const SCARD_W_SECURITY_VIOLATION: u32 = 0x8010_006A;

/// True if a HID open error text is Windows' access-denied answer (hidapi's Windows
/// backend reports `FormatMessage` text, "Access is denied.", sometimes with the
/// code).
pub(crate) fn hid_access_denied(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("access is denied")
        || m.contains("access denied")
        || m.contains("0x80070005")
        || m.contains("(os error 5)")
}

/// True if a PC/SC error code is one of the access-denied answers.
pub(crate) fn pcsc_access_denied(code: u32) -> bool {
    code == SCARD_E_NO_ACCESS || code == SCARD_W_SECURITY_VIOLATION || code == E_ACCESSDENIED
}

/// The typed error for `device`.
pub(crate) fn needs_elevation(device: &str, detail: impl Into<String>) -> Error {
    Error::NeedsElevation {
        device: device.to_owned(),
        detail: detail.into(),
    }
}

/// On Windows, `Some(NeedsElevation)` when a HID open failed with access denied.
pub(crate) fn map_hid_open(device: &str, message: &str) -> Option<Error> {
    map_hid_open_on(ENFORCED, device, message)
}

fn map_hid_open_on(enforced: bool, device: &str, message: &str) -> Option<Error> {
    (enforced && hid_access_denied(message)).then(|| needs_elevation(device, message))
}

/// On Windows, `Some(NeedsElevation)` when a PC/SC call failed with access denied.
pub(crate) fn map_pcsc(reader: &str, code: u32, message: &str) -> Option<Error> {
    map_pcsc_on(ENFORCED, reader, code, message)
}

fn map_pcsc_on(enforced: bool, reader: &str, code: u32, message: &str) -> Option<Error> {
    (enforced && pcsc_access_denied(code)).then(|| {
        needs_elevation(
            &format!("PC/SC reader {reader:?}"),
            format!("{message} (0x{code:08X})"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_windows_access_denied_answers() {
        assert!(hid_access_denied("Access is denied."));
        assert!(hid_access_denied(
            "hid_open_path: (0x80070005) Access is denied."
        ));
        assert!(!hid_access_denied(
            "The system cannot find the file specified."
        ));
        assert!(pcsc_access_denied(0x8010_0027));
        assert!(pcsc_access_denied(0x8010_006A));
        assert!(!pcsc_access_denied(0x8010_000C)); // SCARD_E_NO_SMARTCARD
    }

    #[test]
    fn maps_to_needs_elevation_only_where_enforced() {
        let e = map_hid_open_on(true, r"\\?\hid#vid_1050&pid_0407", "Access is denied.")
            .expect("mapped");
        assert!(matches!(&e, Error::NeedsElevation { device, .. } if device.contains("vid_1050")));
        let text = e.to_string();
        assert!(text.contains("keysmith agent service"), "{text}");
        assert!(text.contains("administrator"), "{text}");
        assert!(map_hid_open_on(false, "/dev/hidraw0", "Access is denied.").is_none());
        assert!(map_hid_open_on(true, "x", "device not found").is_none());
        let e = map_pcsc_on(
            true,
            "ACS ACR1252 1S CL Reader PICC 0",
            0x8010_006A,
            "security violation",
        )
        .expect("mapped");
        assert!(e.to_string().contains("0x8010006A"), "{e}");
        assert!(map_pcsc_on(true, "r", 0x8010_000C, "no card").is_none());
    }

    /// On Windows (run under wine in CI) the mapping is live; elsewhere it never fires.
    #[test]
    fn mapping_follows_the_platform() {
        assert_eq!(ENFORCED, cfg!(windows));
        assert_eq!(
            map_hid_open("d", "Access is denied.").is_some(),
            cfg!(windows)
        );
        assert_eq!(
            map_pcsc("r", SCARD_E_NO_ACCESS, "no access").is_some(),
            cfg!(windows)
        );
    }
}
