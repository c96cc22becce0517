//! The hidapi backend: discovery of FIDO HID devices and a [`ReportPipe`] over one.
//!
//! On Linux hidapi is built with its pure-Rust `linux-native-basic-udev` backend
//! (hidraw through sysfs), so no libudev or libusb development packages are needed.

use std::ffi::CString;
use std::time::Duration;

use super::REPORT_LEN;
use super::{CtapHidTransport, HidConfig, ReportPipe, FIDO_USAGE_CTAPHID, FIDO_USAGE_PAGE};
use crate::Error;

/// One FIDO authenticator found on USB HID (owned data, no hidapi types).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HidDeviceInfo {
    /// The OS device path (Linux: `/dev/hidrawN`); pass it to [`open`].
    pub path: String,
    /// USB vendor id.
    pub vendor_id: u16,
    /// USB product id.
    pub product_id: u16,
    /// Product string, if the device has one.
    pub product: Option<String>,
    /// Manufacturer string, if the device has one.
    pub manufacturer: Option<String>,
    /// Serial number string, if the device has one.
    pub serial: Option<String>,
}

fn api_error(device: &str, e: hidapi::HidError) -> Error {
    Error::Hid {
        device: device.to_string(),
        message: e.to_string(),
    }
}

/// Lists the FIDO authenticators attached (HID usage page 0xF1D0, usage 0x01).
///
/// An empty list is not an error: it means no key is attached (or none is readable by
/// this user; on Linux check the udev rules for `/dev/hidraw*`).
pub fn list_devices() -> Result<Vec<HidDeviceInfo>, Error> {
    let api = hidapi::HidApi::new().map_err(|e| api_error("hidapi", e))?;
    let mut out: Vec<HidDeviceInfo> = Vec::new();
    for d in api.device_list() {
        if d.usage_page() != FIDO_USAGE_PAGE || d.usage() != FIDO_USAGE_CTAPHID {
            continue;
        }
        let info = HidDeviceInfo {
            path: d.path().to_string_lossy().into_owned(),
            vendor_id: d.vendor_id(),
            product_id: d.product_id(),
            product: d.product_string().map(str::to_owned),
            manufacturer: d.manufacturer_string().map(str::to_owned),
            serial: d.serial_number().map(str::to_owned),
        };
        if !out.iter().any(|o| o.path == info.path) {
            out.push(info);
        }
    }
    Ok(out)
}

/// Opens the authenticator at `path` (from [`list_devices`]) and allocates a channel,
/// with the default [`HidConfig`].
pub fn open(path: &str) -> Result<CtapHidTransport<HidapiPipe>, Error> {
    open_with(path, HidConfig::default())
}

/// Opens the authenticator at `path` with the given policy.
pub fn open_with(path: &str, config: HidConfig) -> Result<CtapHidTransport<HidapiPipe>, Error> {
    CtapHidTransport::with_config(HidapiPipe::open(path)?, config)
}

/// A [`ReportPipe`] over one hidapi device. Writes prepend report id 0 (65 bytes).
pub struct HidapiPipe {
    device: hidapi::HidDevice,
    path: String,
}

impl std::fmt::Debug for HidapiPipe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HidapiPipe")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl HidapiPipe {
    /// Opens the HID device at `path` without talking to it.
    pub fn open(path: &str) -> Result<Self, Error> {
        let c_path = CString::new(path).map_err(|_| {
            Error::InvalidArgument(format!("device path {path:?} contains a NUL byte"))
        })?;
        let api = hidapi::HidApi::new().map_err(|e| api_error(path, e))?;
        let device = api.open_path(&c_path).map_err(|e| {
            // hidapi reports a missing device as a generic error; on systems whose
            // device paths are files (Linux /dev/hidrawN) tell "gone" apart.
            let missing = path.starts_with('/') && !std::path::Path::new(path).exists();
            match e {
                hidapi::HidError::IoError { error }
                    if error.kind() == std::io::ErrorKind::NotFound =>
                {
                    Error::DeviceNotFound(path.to_string())
                }
                _ if missing => Error::DeviceNotFound(path.to_string()),
                e => crate::elevation::map_hid_open(path, &e.to_string())
                    .unwrap_or_else(|| api_error(path, e)),
            }
        })?;
        Ok(HidapiPipe {
            device,
            path: path.to_string(),
        })
    }
}

impl ReportPipe for HidapiPipe {
    fn write_report(&mut self, report: &[u8; REPORT_LEN]) -> Result<(), Error> {
        let mut buf = [0u8; REPORT_LEN + 1];
        buf[1..].copy_from_slice(report);
        let written = self
            .device
            .write(&buf)
            .map_err(|e| api_error(&self.path, e))?;
        if written < REPORT_LEN {
            return Err(Error::Hid {
                device: self.path.clone(),
                message: format!("short write: {written} of {} bytes", REPORT_LEN + 1),
            });
        }
        Ok(())
    }

    fn read_report(&mut self, timeout: Duration) -> Result<Option<Vec<u8>>, Error> {
        // One spare byte: a read longer than 64 bytes is reported as such, not cut.
        let mut buf = [0u8; REPORT_LEN + 1];
        let ms = i32::try_from(timeout.as_millis())
            .unwrap_or(i32::MAX)
            .max(1);
        let n = self
            .device
            .read_timeout(&mut buf, ms)
            .map_err(|e| api_error(&self.path, e))?;
        if n == 0 {
            return Ok(None);
        }
        Ok(Some(buf.get(..n).unwrap_or(&buf).to_vec()))
    }

    fn describe(&self) -> String {
        self.path.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_in_path_is_an_invalid_argument() {
        assert!(matches!(
            HidapiPipe::open("/dev/hid\0raw0"),
            Err(Error::InvalidArgument(_))
        ));
    }

    #[test]
    fn missing_device_is_an_error_not_a_panic() {
        let err = open("/dev/keysmith-missing-hidraw").unwrap_err();
        assert!(
            matches!(&err, Error::DeviceNotFound(p) if p == "/dev/keysmith-missing-hidraw"),
            "{err:?}"
        );
    }
}
