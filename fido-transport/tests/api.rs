//! fido-transport integration tests: one binary, one module per area. The NFC modules
//! share one virtual card on the PC/SC rig (`rig`) and skip without it.

mod api {
    pub mod client;
    pub mod devices;
    pub mod hid;
    pub mod nfc;
    pub mod nfc_client;
    pub mod rig;
    pub mod softkey;
}
