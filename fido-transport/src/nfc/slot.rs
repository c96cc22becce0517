//! A PC/SC reader at the station as a [`KeySlot`] for the replug reset ("lift the key
//! and put it back").

use super::{list_readers, NfcMode, NfcTransport};
use crate::client::KeySlot;
use crate::{Error, TransportKind};

/// One PC/SC reader: attached while a card is on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NfcSlot {
    reader: String,
    mode: NfcMode,
}

impl NfcSlot {
    /// The slot of reader `reader`, opening keys in `mode`.
    pub fn new(reader: impl Into<String>, mode: NfcMode) -> Self {
        NfcSlot {
            reader: reader.into(),
            mode,
        }
    }
}

impl KeySlot for NfcSlot {
    type Transport = NfcTransport;

    fn is_attached(&mut self) -> Result<bool, Error> {
        Ok(list_readers()?
            .iter()
            .any(|r| r.name == self.reader && r.card_present))
    }

    fn open(&mut self) -> Result<Self::Transport, Error> {
        NfcTransport::open(&self.reader, self.mode)
    }

    fn kind(&self) -> TransportKind {
        TransportKind::Nfc
    }
}
