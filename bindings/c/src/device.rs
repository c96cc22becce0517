//! Security keys: listing, opening, getInfo, cancelling a wait.

use std::ffi::c_char;
use std::panic::{catch_unwind, AssertUnwindSafe};

use keysmith_facade::Device;

use crate::{arg, guard, handle, ks_device, ks_status, out, write_json};

/// Lists the FIDO keys on USB and the PC/SC readers: `*out_json` gets
/// `{"devices":[{"device":"usb:/dev/hidraw3",...}],"unavailable":[...]}`.
///
/// # Safety
/// `out_json` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ks_device_list(out_json: *mut *mut c_char) -> ks_status {
    guard(|| {
        // SAFETY: caller contract.
        unsafe { out(out_json, std::ptr::null_mut(), "out_json") }?;
        let list = keysmith_facade::list_devices();
        // SAFETY: checked above.
        unsafe { write_json(out_json, &list) }
    })
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
    guard(|| {
        // SAFETY: caller contract.
        unsafe { self::out(out, std::ptr::null_mut(), "out") }?;
        // SAFETY: caller contract.
        let spec = unsafe { arg(spec, "spec") }?;
        let d = Device::open(spec)?;
        let p = Box::into_raw(Box::new(ks_device { inner: d }));
        // SAFETY: checked non-null above.
        unsafe { out.write(p) };
        Ok(())
    })
}

/// Frees a device handle. NULL is ignored.
///
/// # Safety
/// `device` is NULL or a handle from [`ks_device_open`] not freed before, and no other
/// thread is using it.
#[no_mangle]
pub unsafe extern "C" fn ks_device_free(device: *mut ks_device) {
    if device.is_null() {
        return;
    }
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: by contract it came from Box::into_raw here and is freed once.
        drop(unsafe { Box::from_raw(device) });
    }));
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
    guard(|| {
        // SAFETY: caller contract.
        unsafe { out(out_json, std::ptr::null_mut(), "out_json") }?;
        // SAFETY: caller contract.
        let d = unsafe { handle(device, "device") }?;
        let info = d.inner.info()?;
        // SAFETY: checked above.
        unsafe { write_json(out_json, &info) }
    })
}

/// Cancels the operation waiting on `device` for the user ("touch your key"): call it
/// from another thread, or from the prompt callback. The waiting operation returns
/// `KS_DEVICE` with a message naming the cancellation; nothing is recorded half-done.
/// Without an operation in progress it cancels the next wait.
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
