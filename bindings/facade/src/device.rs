//! Security keys: listing and opening `usb:PATH`, `nfc:READER`, `softkey:STATEFILE`.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use fido_transport::client::Authenticator;
use fido_transport::softkey::{SoftAuthenticator, SoftConfig, SoftTransport};
use fido_transport::{CancelToken, Transport};
use lifecycle::template::KeyTransport;
use sha2::{Digest, Sha256};

use crate::types::hex;
use crate::{DeviceEntry, DeviceInfo, DeviceList, FacadeError, Result};

/// What an opened device holds (locked for the duration of each operation).
pub(crate) struct DeviceState {
    pub(crate) client: Authenticator<Box<dyn Transport>>,
    pub(crate) transport: KeyTransport,
    pub(crate) can_reset_in_place: bool,
    pub(crate) serial: Option<String>,
    pub(crate) spec: String,
}

/// An opened security key. A clone-able handle: clones share the key, and operations on
/// it are serialized.
#[derive(Clone)]
pub struct Device {
    inner: Arc<Mutex<DeviceState>>,
    /// Cancels the key's transaction in progress (held outside the lock).
    cancel: CancelToken,
}

impl std::fmt::Debug for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let d = self.lock();
        f.debug_struct("Device")
            .field("spec", &d.spec)
            .field("serial", &d.serial)
            .finish()
    }
}

impl Device {
    /// Opens a key: `usb:PATH` (hidraw path from [`list_devices`]), `nfc:READER` (a
    /// PC/SC reader name) or `softkey:STATEFILE` (a persistent software authenticator,
    /// created when the file does not exist; for tests and demos).
    pub fn open(spec: &str) -> Result<Device> {
        let (transport, kind, reset, serial) = open_transport(spec)?;
        Ok(Device::assemble(transport, kind, reset, serial, spec))
    }

    /// A device over a transport the host owns (its own HID or card stack behind
    /// [`fido_transport::Transport`]). `label` names it in results (like a spec);
    /// `usb` says whether it is attached by USB (else NFC); `can_reset_in_place`
    /// whether a CTAP reset works right now without replugging.
    pub fn from_transport(
        transport: Box<dyn Transport>,
        label: &str,
        usb: bool,
        can_reset_in_place: bool,
    ) -> Device {
        let kind = if usb {
            KeyTransport::Usb
        } else {
            KeyTransport::Nfc
        };
        Device::assemble(transport, kind, can_reset_in_place, None, label)
    }

    fn assemble(
        transport: Box<dyn Transport>,
        kind: KeyTransport,
        can_reset_in_place: bool,
        serial: Option<String>,
        spec: &str,
    ) -> Device {
        let cancel = transport.cancel_token();
        Device {
            inner: Arc::new(Mutex::new(DeviceState {
                client: Authenticator::new(transport),
                transport: kind,
                can_reset_in_place,
                serial,
                spec: spec.to_owned(),
            })),
            cancel,
        }
    }

    /// Cancels the operation waiting on this key ("touch your key") from any thread or
    /// from a prompt callback: the key answers CTAP2_ERR_KEEPALIVE_CANCEL and the
    /// operation fails with a device error; nothing is recorded half-done. Without an
    /// operation in progress it cancels the next wait for the user.
    pub fn cancel(&self) {
        self.cancel.cancel();
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, DeviceState> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The spec it was opened with.
    pub fn spec(&self) -> String {
        self.lock().spec.clone()
    }

    /// The key's serial number, if known (USB serial string; softkey: from its
    /// attestation certificate).
    pub fn serial(&self) -> Option<String> {
        self.lock().serial.clone()
    }

    /// What the key says about itself (authenticatorGetInfo).
    pub fn info(&self) -> Result<DeviceInfo> {
        let mut d = self.lock();
        let description = d.client.transport().describe();
        let info = d.client.info()?.clone();
        Ok(DeviceInfo {
            device: d.spec.clone(),
            description,
            serial: d.serial.clone(),
            aaguid: hex(&info.aaguid),
            versions: info.versions,
            extensions: info.extensions.unwrap_or_default(),
            options: info.options.unwrap_or_default().into_iter().collect(),
            min_pin_length: info.min_pin_length,
            firmware_version: info.firmware_version,
            remaining_discoverable_credentials: info.remaining_discoverable_credentials,
        })
    }
}

impl Device {
    /// Resets the key (authenticatorReset): every credential and the PIN are gone. The
    /// key asks for a touch; most keys refuse a reset later than ~10 s after power-up
    /// (a device error with reason `reattach_required`: replug it and try again).
    pub fn reset(&self) -> Result<()> {
        let mut d = self.lock();
        match d.client.reset(&mut |_| {}) {
            Ok(()) => Ok(()),
            Err(fido_transport::Error::ReattachRequired) => Err(FacadeError::device(
                "the key refuses reset this long after power-up: unplug it, plug it back in \
                 and reset it again within 10 seconds",
            )
            .with_reason("reattach_required")),
            Err(e) => Err(e.into()),
        }
    }

    /// Whether the key has a PIN set (getInfo option `clientPin`).
    pub fn has_pin(&self) -> Result<bool> {
        let mut d = self.lock();
        let info = d.client.info()?;
        Ok(info
            .options
            .as_ref()
            .and_then(|o| o.iter().find(|(k, _)| k == "clientPin").map(|(_, v)| *v))
            .unwrap_or(false))
    }

    /// Sets the key's PIN (`current` is `None`: the key has none yet) or changes it.
    pub fn set_pin(&self, current: Option<&str>, new_pin: &str) -> Result<()> {
        let mut d = self.lock();
        match current {
            Some(c) => d.client.change_pin(c, new_pin)?,
            None => d.client.set_pin(new_pin)?,
        }
        Ok(())
    }
}

/// The FIDO keys on USB HID and the PC/SC readers. A subsystem that cannot be listed
/// (no hidraw access, no PC/SC daemon) is named in [`DeviceList::unavailable`].
pub fn list_devices() -> DeviceList {
    let mut out = DeviceList::default();
    match fido_transport::hid::list_devices() {
        Ok(list) => out.devices.extend(list.into_iter().map(|d| DeviceEntry {
            device: format!("usb:{}", d.path),
            transport: "usb".into(),
            vendor_id: Some(d.vendor_id),
            product_id: Some(d.product_id),
            manufacturer: d.manufacturer,
            product: d.product,
            serial: d.serial,
            card_present: None,
            fido_applet: None,
        })),
        Err(e) => out.unavailable.push(format!("USB HID: {e}")),
    }
    match fido_transport::nfc::list_readers() {
        Ok(list) => out.devices.extend(list.into_iter().map(|r| DeviceEntry {
            fido_applet: Some(r.has_fido_applet()),
            device: format!("nfc:{}", r.name),
            transport: "nfc".into(),
            vendor_id: None,
            product_id: None,
            manufacturer: None,
            product: None,
            serial: None,
            card_present: Some(r.card_present),
        })),
        Err(e) => out.unavailable.push(format!("PC/SC: {e}")),
    }
    out
}

/// What opening a device spec gives: the transport, how it is attached, whether it can
/// be reset in place, and its serial if known.
pub(crate) type Opened = (Box<dyn Transport>, KeyTransport, bool, Option<String>);

/// Opens the transport of a device spec (see [`Device::open`]).
pub(crate) fn open_transport(spec: &str) -> Result<Opened> {
    let opened: Opened = if let Some(path) = spec.strip_prefix("usb:") {
        let serial = fido_transport::hid::list_devices()
            .ok()
            .and_then(|l| l.into_iter().find(|d| d.path == path))
            .and_then(|d| d.serial);
        (
            Box::new(fido_transport::hid::open(path)?),
            KeyTransport::Usb,
            false,
            serial,
        )
    } else if let Some(reader) = spec.strip_prefix("nfc:") {
        (
            Box::new(fido_transport::nfc::NfcTransport::open(
                reader,
                fido_transport::nfc::NfcMode::default(),
            )?),
            KeyTransport::Nfc,
            true,
            None,
        )
    } else if let Some(path) = spec.strip_prefix("softkey:") {
        if path.is_empty() {
            return Err(FacadeError::usage(
                "device: softkey: needs a state file path",
            ));
        }
        let soft =
            SoftAuthenticator::open_persistent(path, SoftConfig::default()).map_err(|e| {
                FacadeError::device(format!("software key {path}: {e}")).with_reason("device_io")
            })?;
        let serial = hex(Sha256::digest(soft.attestation_certificate())
            .get(..4)
            .unwrap_or(&[]))
        .to_uppercase();
        (
            Box::new(SoftTransport::new(soft)),
            KeyTransport::Usb,
            true,
            Some(serial),
        )
    } else {
        return Err(FacadeError::usage(format!(
            "device {spec:?}: expected usb:PATH, nfc:READER or softkey:STATEFILE"
        )));
    };
    Ok(opened)
}
