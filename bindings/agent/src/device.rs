//! Opening the security key the agent drives: `usb:PATH`, `nfc:READER`, or
//! `softkey:STATEFILE` (a persistent software authenticator, for tests and demos).

use fido_transport::client::{Authenticator, BoxedSlot, ReplugTimeouts};
use fido_transport::hid::{HidDeviceInfo, HidSlot};
use fido_transport::softkey::{SoftAuthenticator, SoftConfig, SoftTransport};
use fido_transport::Transport;
use sha2::{Digest, Sha256};

use crate::AgentError;

/// An opened key.
pub struct OpenedDevice {
    /// The CTAP client over the key's transport.
    pub authenticator: Authenticator<Box<dyn Transport>>,
    /// `usb`, `nfc` or `software` (the device report's transport).
    pub transport: &'static str,
    /// The serial the transport knows (USB serial string; a software key's from its
    /// attestation certificate), a claim.
    pub serial: Option<String>,
    /// A CTAP reset works right now without replugging.
    pub can_reset_in_place: bool,
}

impl std::fmt::Debug for OpenedDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenedDevice")
            .field("transport", &self.transport)
            .field("serial", &self.serial)
            .finish_non_exhaustive()
    }
}

fn dev(e: impl std::fmt::Display) -> AgentError {
    AgentError::Device(e.to_string())
}

/// Opens `spec`.
///
/// A USB key whose port hidapi lists, and an NFC key's reader, are attached to the client
/// as its station slot ([`Authenticator::attach_slot`]): a reset before issuance then has
/// the operator replug the key ("remove the key", "insert it again"; over NFC "lift the
/// key and put it back"), checks it is the same key and resets it at once, as the
/// in-process path does, and the device report says `can_reset_in_place`.
pub fn open(spec: &str) -> Result<OpenedDevice, AgentError> {
    if let Some(path) = spec.strip_prefix("usb:") {
        let listed = fido_transport::hid::list_devices()
            .ok()
            .and_then(|l| l.into_iter().find(|d| d.path == path));
        let transport = fido_transport::hid::open(path).map_err(dev)?;
        Ok(usb_device(Box::new(transport), listed.as_ref()))
    } else if let Some(reader) = spec.strip_prefix("nfc:") {
        let mode = fido_transport::nfc::NfcMode::default();
        let transport = fido_transport::nfc::NfcTransport::open(reader, mode).map_err(dev)?;
        let mut authenticator = Authenticator::new(Box::new(transport) as Box<dyn Transport>);
        authenticator.attach_slot(
            BoxedSlot(fido_transport::nfc::NfcSlot::new(reader, mode)),
            ReplugTimeouts::default(),
        );
        Ok(OpenedDevice {
            authenticator,
            transport: "nfc",
            serial: None,
            // An unpowered reconnect restarts the reset window; a reader that keeps the
            // field on gets "lift the key and put it back" through the slot.
            can_reset_in_place: true,
        })
    } else if let Some(path) = spec.strip_prefix("softkey:") {
        if path.is_empty() {
            return Err(AgentError::Device(
                "softkey: needs a state file path".into(),
            ));
        }
        let soft = SoftAuthenticator::open_persistent(path, SoftConfig::default())
            .map_err(|e| AgentError::Device(format!("software key {path}: {e}")))?;
        let digest = Sha256::digest(soft.attestation_certificate());
        let serial = hex::encode_upper(digest.get(..4).unwrap_or(&[]));
        Ok(OpenedDevice {
            authenticator: Authenticator::new(Box::new(SoftTransport::new(soft))),
            transport: "software",
            serial: Some(serial),
            can_reset_in_place: true,
        })
    } else {
        Err(AgentError::Device(format!(
            "{spec:?}: expected usb:PATH, nfc:READER or softkey:STATEFILE"
        )))
    }
}

/// The opened USB key on `transport`. `listed` is its entry in hidapi's listing, when
/// the port is known: then its [`HidSlot`] (model and serial) is attached to the client,
/// so a reset can be made at any time by a replug, and `can_reset_in_place` is true.
/// Without it (the path was not listed) software cannot power-cycle the key and a reset
/// before issuance is refused up front, as before.
fn usb_device(transport: Box<dyn Transport>, listed: Option<&HidDeviceInfo>) -> OpenedDevice {
    let mut authenticator = Authenticator::new(transport);
    if let Some(d) = listed {
        authenticator.attach_slot(BoxedSlot(HidSlot::for_device(d)), ReplugTimeouts::default());
    }
    OpenedDevice {
        can_reset_in_place: authenticator.can_replug(),
        authenticator,
        transport: "usb",
        serial: listed.and_then(|d| d.serial.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fido_transport::TransportKind;

    fn soft() -> Box<dyn Transport> {
        Box::new(SoftTransport::new(
            SoftAuthenticator::new(SoftConfig::default()).expect("a software key"),
        ))
    }

    fn listed(serial: Option<&str>) -> HidDeviceInfo {
        HidDeviceInfo {
            path: "/dev/hidraw7".into(),
            vendor_id: 0x1050,
            product_id: 0x0407,
            product: Some("YubiKey OTP+FIDO+CCID".into()),
            manufacturer: Some("Yubico".into()),
            serial: serial.map(str::to_owned),
        }
    }

    #[test]
    fn a_usb_key_whose_port_is_known_gets_its_slot_and_reports_reset_in_place() {
        let d = usb_device(soft(), Some(&listed(Some("12345678"))));
        assert!(
            d.authenticator.can_replug(),
            "the port is attached as the slot"
        );
        assert!(d.can_reset_in_place, "the device report says so");
        assert_eq!(d.transport, "usb");
        assert_eq!(d.serial.as_deref(), Some("12345678"));
        // The slot is the key's model at the station (no /dev/uhid here: it is not
        // attached, and asking says so instead of failing).
        let mut slot = BoxedSlot(HidSlot::for_device(&listed(None)));
        assert_eq!(
            fido_transport::client::KeySlot::kind(&slot),
            TransportKind::Usb
        );
        let _ = fido_transport::client::KeySlot::is_attached(&mut slot);
    }

    #[test]
    fn a_usb_key_not_listed_has_no_slot_and_no_reset_in_place() {
        let d = usb_device(soft(), None);
        assert!(!d.authenticator.can_replug());
        assert!(!d.can_reset_in_place);
        assert_eq!(d.serial, None);
    }
}
