//! Opening the security key the agent drives: `usb:PATH`, `nfc:READER`, or
//! `softkey:STATEFILE` (a persistent software authenticator, for tests and demos).

use fido_transport::client::Authenticator;
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
pub fn open(spec: &str) -> Result<OpenedDevice, AgentError> {
    let (transport, kind, serial, reset): (Box<dyn Transport>, _, _, _) =
        if let Some(path) = spec.strip_prefix("usb:") {
            let serial = fido_transport::hid::list_devices()
                .ok()
                .and_then(|l| l.into_iter().find(|d| d.path == path))
                .and_then(|d| d.serial);
            (
                Box::new(fido_transport::hid::open(path).map_err(dev)?),
                "usb",
                serial,
                false,
            )
        } else if let Some(reader) = spec.strip_prefix("nfc:") {
            (
                Box::new(
                    fido_transport::nfc::NfcTransport::open(
                        reader,
                        fido_transport::nfc::NfcMode::default(),
                    )
                    .map_err(dev)?,
                ),
                "nfc",
                None,
                true,
            )
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
            (
                Box::new(SoftTransport::new(soft)),
                "software",
                Some(serial),
                true,
            )
        } else {
            return Err(AgentError::Device(format!(
                "{spec:?}: expected usb:PATH, nfc:READER or softkey:STATEFILE"
            )));
        };
    Ok(OpenedDevice {
        authenticator: Authenticator::new(transport),
        transport: kind,
        serial,
        can_reset_in_place: reset,
    })
}
