//! Security keys: listing, opening, getInfo, cancelling a wait.

use std::ffi::c_char;

use keysmith_facade::Device;

use crate::{arg, free_handle, guard, handle, json_op, ks_device, ks_status, open_handle};

/// Lists the FIDO keys on USB and the PC/SC readers: `*out_json` gets
/// `{"devices":[{"device":"usb:/dev/hidraw3",...}],"unavailable":[...]}`.
///
/// Ownership: the library allocates *out_json (free with ks_string_free()); the caller owns
/// it.
/// NULL: out_json may be NULL only to be refused: the call returns KS_USAGE and does
/// nothing.
/// Blocks: briefly: it enumerates USB HID devices and asks pcscd for its readers.
/// Threads: any thread; handles may be shared between threads.
#[no_mangle]
pub unsafe extern "C" fn ks_device_list(out_json: *mut *mut c_char) -> ks_status {
    // SAFETY: caller contract, forwarded.
    unsafe { json_op(out_json, "out_json", || Ok(keysmith_facade::list_devices())) }
}

/// Opens a key: `usb:PATH`, `nfc:READER` or `softkey:STATEFILE`; `*out` receives the
/// handle, freed with ks_device_free().
///
/// Ownership: spec stays the caller's and is only read during the call; the library
/// allocates *out (free with ks_device_free()); the caller owns it.
/// NULL: spec, out may each be NULL only to be refused: the call returns KS_USAGE and does
/// nothing.
/// Blocks: briefly: it opens the transport (a software key reads its state file).
/// Threads: any thread; handles may be shared between threads.
#[no_mangle]
pub unsafe extern "C" fn ks_device_open(
    spec: *const c_char,
    out: *mut *mut ks_device,
) -> ks_status {
    // SAFETY: caller contract, forwarded.
    unsafe {
        open_handle(out, || {
            Ok(ks_device {
                inner: Device::open(arg(spec, "spec")?)?,
            })
        })
    }
}

/// Frees a device handle. NULL is ignored.
///
/// NULL: device may be NULL (nothing is done).
/// Pointers: `device` is NULL or a handle from ks_device_open() not freed before, and no
/// other thread is using it.
/// Blocks: no.
/// Threads: any thread, once per handle, when no other call is using the handle.
#[no_mangle]
pub unsafe extern "C" fn ks_device_free(device: *mut ks_device) {
    // SAFETY: caller contract, forwarded.
    unsafe { free_handle(device) }
}

/// What the key says about itself (authenticatorGetInfo), as JSON.
///
/// Ownership: device is borrowed for the call; the library allocates *out_json (free with
/// ks_string_free()); the caller owns it.
/// NULL: device, out_json may each be NULL only to be refused: the call returns KS_USAGE
/// and does nothing.
/// Blocks: yes: on the security key (no touch), up to the transport's timeout.
/// Threads: any thread; handles may be shared between threads.
#[no_mangle]
pub unsafe extern "C" fn ks_device_info(
    device: *const ks_device,
    out_json: *mut *mut c_char,
) -> ks_status {
    // SAFETY: caller contract, forwarded.
    unsafe {
        json_op(out_json, "out_json", || {
            handle(device, "device")?.inner.info()
        })
    }
}

/// Cancels the operation waiting on `device` for the user ("touch your key"): call it
/// from another thread, or from the prompt callback. The waiting operation returns
/// `KS_DEVICE` with reason `cancelled`; nothing is recorded half-done. Without an
/// operation in progress it cancels the next wait.
///
/// Ownership: device is borrowed for the call.
/// NULL: device may be NULL only to be refused: the call returns KS_USAGE and does nothing.
/// Pointers: `device` is NULL or live (it may be in use by another thread's operation).
/// Blocks: no.
/// Threads: any thread, typically another than the one waiting, or the prompt callback.
#[no_mangle]
pub unsafe extern "C" fn ks_device_cancel(device: *const ks_device) -> ks_status {
    guard(|| {
        // SAFETY: caller contract; only a shared reference is taken, the cancel flag is
        // atomic and outside the device's lock.
        let d = unsafe { handle(device, "device") }?;
        d.inner.cancel();
        Ok(())
    })
}
