//! Security keys: listing, opening, getInfo, cancelling a wait.

use std::ffi::c_char;

use keysmith_facade::Device;

use crate::{arg, free_handle, guard, handle, json_op, ks_device, ks_status, open_handle};

/// Lists the FIDO keys on USB and the PC/SC readers: `*out_json` gets
/// `{"devices":[{"device":"usb:/dev/hidraw3",...}],"unavailable":[...]}`.
///
/// # Safety
/// `out_json` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ks_device_list(out_json: *mut *mut c_char) -> ks_status {
    // SAFETY: caller contract, forwarded.
    unsafe { json_op(out_json, "out_json", || Ok(keysmith_facade::list_devices())) }
}

/// Opens a key: `usb:PATH`, `nfc:READER` or `softkey:STATEFILE`; `*out` receives the
/// handle, freed with [`ks_device_free`].
///
/// # Safety
/// `spec` is NULL or NUL-terminated; `out` is NULL or writable.
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
/// # Safety
/// `device` is NULL or a handle from [`ks_device_open`] not freed before, and no other
/// thread is using it.
#[no_mangle]
pub unsafe extern "C" fn ks_device_free(device: *mut ks_device) {
    // SAFETY: caller contract, forwarded.
    unsafe { free_handle(device) }
}

/// What the key says about itself (authenticatorGetInfo), as JSON.
///
/// # Safety
/// `device` is NULL or live; `out_json` is NULL or writable.
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
/// # Safety
/// `device` is NULL or live (it may be in use by another thread's operation).
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
