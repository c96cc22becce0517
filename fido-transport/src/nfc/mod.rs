//! NFC and contact cards through PC/SC, and the virtual card on vpcd.
