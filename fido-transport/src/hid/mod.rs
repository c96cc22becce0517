//! USB HID (CTAPHID) transport: hidapi devices and any 64-byte report pipe.
