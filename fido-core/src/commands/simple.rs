//! Commands without parameters and with an empty answer: authenticatorReset (0x07) and
//! authenticatorSelection (0x0B).

use super::{Command, CMD_RESET, CMD_SELECTION};
use crate::cbor::Value;
use crate::Error;

/// authenticatorReset: erase every credential and the PIN (needs user presence, and
/// usually arrives within seconds of power-up).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reset;

impl Command for Reset {
    const CMD: u8 = CMD_RESET;
    type Response = ();

    fn params(&self) -> Option<Value> {
        None
    }
    fn decode_params(_params: Option<&Value>) -> Result<Self, Error> {
        Ok(Reset)
    }
}

/// authenticatorSelection: asks the user to touch this key (to pick one of several).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Selection;

impl Command for Selection {
    const CMD: u8 = CMD_SELECTION;
    type Response = ();

    fn params(&self) -> Option<Value> {
        None
    }
    fn decode_params(_params: Option<&Value>) -> Result<Self, Error> {
        Ok(Selection)
    }
}
