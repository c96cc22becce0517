//! A USB port at the station as a [`KeySlot`] for the replug reset.

use super::{list_devices, open, CtapHidTransport, HidDeviceInfo, HidapiPipe};
use crate::client::KeySlot;
use crate::{Error, TransportKind};

/// The USB key of one model (vendor and product id, and serial when it has one) at
/// the station: attached while hidapi lists a matching FIDO device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HidSlot {
    vendor_id: u16,
    product_id: u16,
    serial: Option<String>,
}

impl HidSlot {
    /// The slot of the key `device` (as listed by [`list_devices`]).
    pub fn for_device(device: &HidDeviceInfo) -> Self {
        HidSlot {
            vendor_id: device.vendor_id,
            product_id: device.product_id,
            serial: device.serial.clone().filter(|s| !s.is_empty()),
        }
    }

    fn find(&self) -> Result<Option<HidDeviceInfo>, Error> {
        Ok(list_devices()?.into_iter().find(|d| {
            d.vendor_id == self.vendor_id
                && d.product_id == self.product_id
                && (self.serial.is_none() || d.serial == self.serial)
        }))
    }
}

impl KeySlot for HidSlot {
    type Transport = CtapHidTransport<HidapiPipe>;

    fn is_attached(&mut self) -> Result<bool, Error> {
        Ok(self.find()?.is_some())
    }

    fn open(&mut self) -> Result<Self::Transport, Error> {
        let device = self.find()?.ok_or_else(|| {
            Error::DeviceNotFound(format!(
                "no USB security key {:04x}:{:04x} is attached",
                self.vendor_id, self.product_id
            ))
        })?;
        open(&device.path)
    }

    fn kind(&self) -> TransportKind {
        TransportKind::Usb
    }

    fn serial(&mut self) -> Option<String> {
        self.find()
            .ok()
            .flatten()
            .and_then(|d| d.serial)
            .filter(|s| !s.is_empty())
    }
}
