//! # keysmith C ABI
//!
//! The C ABI over [`keysmith_facade`]; the header is `include/keysmith.h`.
//!
//! Conventions (every entry point):
//! - returns a `ks_status`: `KS_OK` (0) or the error kind's code (`KS_USAGE` 2,
//!   `KS_DEVICE` 3, `KS_IDP` 4, `KS_REPOSITORY` 5, `KS_TEMPLATE` 6, `KS_TRANSITION` 7,
//!   `KS_INTERNAL` 9); the `*_free` functions return nothing;
//! - on failure the message is kept per thread for [`ks_last_error`]; a success clears it;
//! - input strings are NUL-terminated UTF-8 and stay the caller's; a NULL or non-UTF-8
//!   input is `KS_USAGE`;
//! - results are written to out pointers (set to NULL / 0 first, so they are NULL after a
//!   failure); strings written there are allocated by the library and freed with
//!   [`ks_string_free`]; handles with [`ks_session_free`] / [`ks_device_free`];
//! - results are JSON (objects or arrays, as the facade's serde structs);
//! - no panic crosses the boundary: it becomes `KS_INTERNAL`;
//! - handles are thread-safe: a session or device may be used from several threads (calls
//!   on one device are serialized).
#![warn(missing_docs)]
#![allow(non_camel_case_types)]

use std::cell::RefCell;
use std::ffi::{c_char, c_void, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

use keysmith_facade::{
    BulkProgress, BulkRow, BulkRunOptions, Device, ExpiringCursor, FacadeError, IssueParams,
    KeyFilter, Prompt, ReconcileRequest, ReissueParams, Session,
};

/// Status of a call: `KS_OK` or an error kind's code.
pub type ks_status = i32;

/// Success.
pub const KS_OK: ks_status = 0;
/// Bad input: NULL or non-UTF-8 argument, malformed JSON, unknown key/template, ...
pub const KS_USAGE: ks_status = 2;
/// The security key or its transport failed.
pub const KS_DEVICE: ks_status = 3;
/// The identity provider refused or failed.
pub const KS_IDP: ks_status = 4;
/// The repository failed or refused.
pub const KS_REPOSITORY: ks_status = 5;
/// A template is invalid or unsupported.
pub const KS_TEMPLATE: ks_status = 6;
/// The action is not allowed in the key's state.
pub const KS_TRANSITION: ks_status = 7;
/// Internal error (a bug, e.g. a caught panic).
pub const KS_INTERNAL: ks_status = 9;

/// Receives prompts as JSON (`{"kind":"touch_key","step":"makeCredential"}`, ...):
/// `ctx` is what was given to [`ks_set_prompt_callback`]; `prompt_json` is valid only
/// during the call. Called on the thread running the operation.
pub type ks_prompt_fn = Option<unsafe extern "C" fn(ctx: *mut c_void, prompt_json: *const c_char)>;

/// Supplies the security key for one row of a bulk issue job: called with `ctx` (as
/// given to [`ks_bulk_run`]) and the row as JSON
/// (`{"job_id":1,"line":2,"user":"kim@contoso.com","serial":"S1"}`, valid only during the
/// call), it returns the device spec to open for that row (`softkey:STATEFILE`,
/// `usb:PATH` or `nfc:READER`), a NUL-terminated UTF-8 string that stays the callback's:
/// the library copies it before the callback is called again or `ks_bulk_run` returns, so
/// a buffer the callback reuses (or a static string) is fine; the library never frees it.
/// Returning NULL fails that row ("no device"); the job goes on with the next row. Called
/// on the thread running `ks_bulk_run`, one row at a time.
pub type ks_bulk_device_fn =
    Option<unsafe extern "C" fn(ctx: *mut c_void, row_json: *const c_char) -> *const c_char>;

/// Receives progress after each bulk row as JSON
/// (`{"job_id","done","failed","total","line","status":"done"|"failed","outcome"}`,
/// valid only during the call); `ctx` as given to [`ks_bulk_run`]. Called on the thread
/// running `ks_bulk_run`.
pub type ks_bulk_progress_fn =
    Option<unsafe extern "C" fn(ctx: *mut c_void, progress_json: *const c_char)>;

/// An open session (opaque).
pub struct ks_session {
    inner: Session,
}

/// An opened security key (opaque).
pub struct ks_device {
    inner: Device,
}

thread_local! {
    static LAST_ERROR: RefCell<Option<(ks_status, String)>> = const { RefCell::new(None) };
}

fn set_last_error(code: ks_status, message: String) {
    LAST_ERROR.with(|l| *l.borrow_mut() = Some((code, message)));
}

fn clear_last_error() {
    LAST_ERROR.with(|l| *l.borrow_mut() = None);
}

/// Runs `f`, records its error and turns panics into `KS_INTERNAL`.
fn guard(f: impl FnOnce() -> Result<(), FacadeError>) -> ks_status {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => {
            clear_last_error();
            KS_OK
        }
        Ok(Err(e)) => {
            let code = e.code();
            set_last_error(code, e.message);
            code
        }
        Err(_) => {
            set_last_error(KS_INTERNAL, "internal error: a panic was caught".into());
            KS_INTERNAL
        }
    }
}

/// Borrows a C string argument.
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string valid for `'a`.
unsafe fn arg<'a>(p: *const c_char, name: &str) -> Result<&'a str, FacadeError> {
    if p.is_null() {
        return Err(FacadeError::usage(format!("{name}: NULL pointer")));
    }
    // SAFETY: non-null and, by this function's contract, NUL-terminated and alive for 'a.
    let s = unsafe { CStr::from_ptr(p) };
    s.to_str()
        .map_err(|_| FacadeError::usage(format!("{name}: not valid UTF-8")))
}

/// Like [`arg`], NULL meaning "not given".
///
/// # Safety
/// As [`arg`].
unsafe fn opt_arg<'a>(p: *const c_char, name: &str) -> Result<Option<&'a str>, FacadeError> {
    if p.is_null() {
        Ok(None)
    } else {
        // SAFETY: forwarded contract.
        unsafe { arg(p, name) }.map(Some)
    }
}

/// Borrows a handle.
///
/// # Safety
/// `p` is NULL or a live handle from this library.
unsafe fn handle<'a, T>(p: *const T, name: &str) -> Result<&'a T, FacadeError> {
    // SAFETY: by contract a non-null `p` points to a live handle we allocated.
    unsafe { p.as_ref() }.ok_or_else(|| FacadeError::usage(format!("{name}: NULL handle")))
}

/// Checks an out pointer and sets it to `empty`.
///
/// # Safety
/// `p` is NULL or valid for writes of a `T`.
unsafe fn out<T>(p: *mut T, empty: T, name: &str) -> Result<(), FacadeError> {
    if p.is_null() {
        return Err(FacadeError::usage(format!("{name}: NULL out pointer")));
    }
    // SAFETY: non-null and writable by contract; T is Copy-like (pointers, integers), no
    // old value is dropped.
    unsafe { p.write(empty) };
    Ok(())
}

fn c_string(s: String) -> Result<*mut c_char, FacadeError> {
    CString::new(s)
        .map(CString::into_raw)
        .map_err(|_| FacadeError::internal("result contains a NUL byte"))
}

/// Serializes `v` to JSON into `*dst` (checked by [`out`] before).
///
/// # Safety
/// `dst` is valid for writes.
unsafe fn write_json<T: serde::Serialize>(dst: *mut *mut c_char, v: &T) -> Result<(), FacadeError> {
    let text = serde_json::to_string(v)
        .map_err(|e| FacadeError::internal(format!("serializing the result: {e}")))?;
    let p = c_string(text)?;
    // SAFETY: `dst` was checked non-null and is writable by contract.
    unsafe { dst.write(p) };
    Ok(())
}

fn json_arg<T: serde::de::DeserializeOwned>(text: &str, name: &str) -> Result<T, FacadeError> {
    serde_json::from_str(text).map_err(|e| FacadeError::usage(format!("{name}: {e}")))
}

/// The library version, a static NUL-terminated string (do not free).
#[no_mangle]
pub extern "C" fn ks_version() -> *const c_char {
    static VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");
    VERSION.as_ptr().cast()
}

/// Frees a string the library returned. NULL is ignored.
///
/// # Safety
/// `s` is NULL or a string from this library not freed before.
#[no_mangle]
pub unsafe extern "C" fn ks_string_free(s: *mut c_char) {
    if s.is_null() {
        return;
    }
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: by contract `s` came from CString::into_raw here and is freed once.
        drop(unsafe { CString::from_raw(s) });
    }));
}

/// The last failure on this thread: writes a copy of its message to `*message` (NULL if
/// the last call succeeded; free it with [`ks_string_free`]) and returns its status
/// (`KS_OK` if none). A NULL `message` returns `KS_USAGE` and keeps the stored error.
///
/// # Safety
/// `message` is NULL or valid for writes.
#[no_mangle]
pub unsafe extern "C" fn ks_last_error(message: *mut *mut c_char) -> ks_status {
    if message.is_null() {
        return KS_USAGE;
    }
    let last = LAST_ERROR.with(|l| l.borrow().clone());
    let (code, text) = match last {
        Some((code, text)) => (code, Some(text)),
        None => (KS_OK, None),
    };
    let p = match text.map(c_string) {
        Some(Ok(p)) => p,
        _ => std::ptr::null_mut(),
    };
    // SAFETY: checked non-null; writable by contract.
    unsafe { message.write(p) };
    code
}

/// Configures process-wide logging from JSON (`{"level":"debug","format":"json",
/// "destination":...}`, the CLI's `[log]` keys).
///
/// # Safety
/// `json` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn ks_log_configure(json: *const c_char) -> ks_status {
    guard(|| {
        // SAFETY: caller contract.
        let json = unsafe { arg(json, "json") }?;
        keysmith_facade::configure_logging(json)
    })
}

/// Opens a session from its JSON configuration (see `keysmith_facade::Session::open`);
/// `*out` receives the handle, freed with [`ks_session_free`].
///
/// # Safety
/// `config_json` is NULL or NUL-terminated; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ks_session_open(
    config_json: *const c_char,
    out: *mut *mut ks_session,
) -> ks_status {
    guard(|| {
        // SAFETY: caller contract for both pointers.
        unsafe { self::out(out, std::ptr::null_mut(), "out") }?;
        // SAFETY: caller contract.
        let config = unsafe { arg(config_json, "config_json") }?;
        let s = Session::open(config)?;
        let p = Box::into_raw(Box::new(ks_session { inner: s }));
        // SAFETY: checked non-null above.
        unsafe { out.write(p) };
        Ok(())
    })
}

/// Frees a session. NULL is ignored. Devices stay valid.
///
/// # Safety
/// `session` is NULL or a handle from [`ks_session_open`] not freed before, and no other
/// thread is using it.
#[no_mangle]
pub unsafe extern "C" fn ks_session_free(session: *mut ks_session) {
    if session.is_null() {
        return;
    }
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: by contract it came from Box::into_raw here and is freed once.
        drop(unsafe { Box::from_raw(session) });
    }));
}

struct PromptTarget {
    cb: unsafe extern "C" fn(*mut c_void, *const c_char),
    ctx: *mut c_void,
}

// SAFETY: the caller of ks_set_prompt_callback guarantees that `cb` may be called with
// `ctx` from any thread running an operation on the session (documented there).
unsafe impl Send for PromptTarget {}
// SAFETY: as above; the target is only read.
unsafe impl Sync for PromptTarget {}

impl PromptTarget {
    fn call(&self, p: &Prompt) {
        let Ok(text) = serde_json::to_string(p) else {
            return;
        };
        let Ok(text) = CString::new(text) else {
            return;
        };
        // SAFETY: `cb` is a valid function pointer by the setter's contract; the string
        // lives for the call.
        unsafe { (self.cb)(self.ctx, text.as_ptr()) };
    }
}

/// Sends prompts of `session`'s operations to `cb(ctx, prompt_json)`; a NULL `cb` stops
/// them. `cb` is called on the thread running the operation (possibly several threads
/// if the session is shared), so `ctx` must be usable from there and outlive the
/// session or the next call of this function.
///
/// # Safety
/// `session` is NULL or live; `cb` is NULL or a valid function; `ctx` as above.
#[no_mangle]
pub unsafe extern "C" fn ks_set_prompt_callback(
    session: *const ks_session,
    cb: ks_prompt_fn,
    ctx: *mut c_void,
) -> ks_status {
    guard(|| {
        // SAFETY: caller contract.
        let s = unsafe { handle(session, "session") }?;
        match cb {
            Some(cb) => {
                let target = PromptTarget { cb, ctx };
                s.inner.set_prompt(Box::new(move |p| target.call(p)));
            }
            None => s.inner.clear_prompt(),
        }
        Ok(())
    })
}

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

/// Validates a credential template set (TOML or JSON text); `*out_json` gets its summary
/// `{"name":...,"passkey_templates":[...],"connections":[...]}`.
///
/// # Safety
/// `text` is NULL or NUL-terminated; `out_json` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ks_template_check(
    text: *const c_char,
    out_json: *mut *mut c_char,
) -> ks_status {
    guard(|| {
        // SAFETY: caller contract.
        unsafe { out(out_json, std::ptr::null_mut(), "out_json") }?;
        // SAFETY: caller contract.
        let text = unsafe { arg(text, "text") }?;
        let summary = keysmith_facade::template_check(text)?;
        // SAFETY: checked above.
        unsafe { write_json(out_json, &summary) }
    })
}

/// Runs a session operation producing a serializable result: checks and clears the out
/// pointer, borrows the session, writes the JSON.
///
/// # Safety
/// `session` is NULL or live; `out_json` is NULL or writable.
unsafe fn session_op<T: serde::Serialize>(
    session: *const ks_session,
    out_json: *mut *mut c_char,
    f: impl FnOnce(&Session) -> Result<T, FacadeError>,
) -> ks_status {
    // SAFETY: caller contract, forwarded.
    unsafe { session_op_named(session, out_json, "out_json", f) }
}

/// [`session_op`] with the out parameter's name for its error message.
///
/// # Safety
/// As [`session_op`].
unsafe fn session_op_named<T: serde::Serialize>(
    session: *const ks_session,
    out_json: *mut *mut c_char,
    out_name: &str,
    f: impl FnOnce(&Session) -> Result<T, FacadeError>,
) -> ks_status {
    guard(|| {
        // SAFETY: caller contract.
        unsafe { out(out_json, std::ptr::null_mut(), out_name) }?;
        // SAFETY: caller contract.
        let s = unsafe { handle(session, "session") }?;
        let v = f(&s.inner)?;
        // SAFETY: checked above.
        unsafe { write_json(out_json, &v) }
    })
}

/// Loads (or replaces) a credential template set into the session; `*out_json` gets its
/// summary.
///
/// # Safety
/// Pointers NULL or valid as documented in the crate conventions.
#[no_mangle]
pub unsafe extern "C" fn ks_add_template(
    session: *const ks_session,
    text: *const c_char,
    out_json: *mut *mut c_char,
) -> ks_status {
    // SAFETY: caller contract, forwarded.
    unsafe {
        session_op(session, out_json, |s| {
            // SAFETY: caller contract.
            let text = arg(text, "text")?;
            s.add_template(text)
        })
    }
}

/// The names of the session's loaded credential templates, as a JSON array.
///
/// # Safety
/// Pointers NULL or valid as documented in the crate conventions.
#[no_mangle]
pub unsafe extern "C" fn ks_templates(
    session: *const ks_session,
    out_json: *mut *mut c_char,
) -> ks_status {
    // SAFETY: caller contract, forwarded.
    unsafe { session_op(session, out_json, |s| Ok(s.templates())) }
}

/// Central issuance. `params_json`: `{"template":"NAME","user":"UPN or id",
/// "serial":optional,"actor":optional}`; `*out_json` gets the key.
///
/// # Safety
/// Pointers NULL or valid as documented in the crate conventions.
#[no_mangle]
pub unsafe extern "C" fn ks_issue(
    session: *const ks_session,
    device: *const ks_device,
    params_json: *const c_char,
    out_json: *mut *mut c_char,
) -> ks_status {
    // SAFETY: caller contract, forwarded.
    unsafe {
        session_op(session, out_json, |s| {
            let d = handle(device, "device")?;
            let params: IssueParams = json_arg(arg(params_json, "params_json")?, "params_json")?;
            s.issue(&d.inner, &params)
        })
    }
}

/// Issuance with the holder's PIN (templates that activate at issuance); as [`ks_issue`].
///
/// # Safety
/// Pointers NULL or valid as documented in the crate conventions.
#[no_mangle]
pub unsafe extern "C" fn ks_issue_and_activate(
    session: *const ks_session,
    device: *const ks_device,
    params_json: *const c_char,
    holder_pin: *const c_char,
    out_json: *mut *mut c_char,
) -> ks_status {
    // SAFETY: caller contract, forwarded.
    unsafe {
        session_op(session, out_json, |s| {
            let d = handle(device, "device")?;
            let params: IssueParams = json_arg(arg(params_json, "params_json")?, "params_json")?;
            let pin = arg(holder_pin, "holder_pin")?;
            s.issue_and_activate(&d.inner, &params, pin)
        })
    }
}

/// Activation by the holder with their new PIN; `*out_json` gets the key.
///
/// # Safety
/// Pointers NULL or valid as documented in the crate conventions.
#[no_mangle]
pub unsafe extern "C" fn ks_activate(
    session: *const ks_session,
    device: *const ks_device,
    key_id: *const c_char,
    holder_pin: *const c_char,
    out_json: *mut *mut c_char,
) -> ks_status {
    // SAFETY: caller contract, forwarded.
    unsafe {
        session_op(session, out_json, |s| {
            let d = handle(device, "device")?;
            s.activate(
                &d.inner,
                arg(key_id, "key_id")?,
                arg(holder_pin, "holder_pin")?,
            )
        })
    }
}

/// Inactivate a key; `*out_json` gets the key.
///
/// # Safety
/// Pointers NULL or valid as documented in the crate conventions.
#[no_mangle]
pub unsafe extern "C" fn ks_inactivate(
    session: *const ks_session,
    key_id: *const c_char,
    out_json: *mut *mut c_char,
) -> ks_status {
    // SAFETY: caller contract, forwarded.
    unsafe { session_op(session, out_json, |s| s.inactivate(arg(key_id, "key_id")?)) }
}

/// Revoke a key. `force`: negative = the template's setting, 0 = not forced, positive =
/// forced (a failed IdP deletion cancels the revocation). `*out_json` gets the key.
///
/// # Safety
/// Pointers NULL or valid as documented in the crate conventions.
#[no_mangle]
pub unsafe extern "C" fn ks_revoke(
    session: *const ks_session,
    key_id: *const c_char,
    force: i32,
    out_json: *mut *mut c_char,
) -> ks_status {
    let force = match force {
        f if f < 0 => None,
        0 => Some(false),
        _ => Some(true),
    };
    // SAFETY: caller contract, forwarded.
    unsafe {
        session_op(session, out_json, |s| {
            s.revoke(arg(key_id, "key_id")?, force)
        })
    }
}

/// Retire a key; `*out_json` gets the key.
///
/// # Safety
/// Pointers NULL or valid as documented in the crate conventions.
#[no_mangle]
pub unsafe extern "C" fn ks_retire(
    session: *const ks_session,
    key_id: *const c_char,
    out_json: *mut *mut c_char,
) -> ks_status {
    // SAFETY: caller contract, forwarded.
    unsafe { session_op(session, out_json, |s| s.retire(arg(key_id, "key_id")?)) }
}

/// Unregister a key (its records are forgotten, the audit log stays); `*out_json` gets
/// the key.
///
/// # Safety
/// Pointers NULL or valid as documented in the crate conventions.
#[no_mangle]
pub unsafe extern "C" fn ks_unregister(
    session: *const ks_session,
    key_id: *const c_char,
    out_json: *mut *mut c_char,
) -> ks_status {
    // SAFETY: caller contract, forwarded.
    unsafe { session_op(session, out_json, |s| s.unregister(arg(key_id, "key_id")?)) }
}

/// Reissue a key. `params_json`: `{"user":"...","serial":optional,"actor":optional}`.
///
/// # Safety
/// Pointers NULL or valid as documented in the crate conventions.
#[no_mangle]
pub unsafe extern "C" fn ks_reissue(
    session: *const ks_session,
    device: *const ks_device,
    key_id: *const c_char,
    params_json: *const c_char,
    out_json: *mut *mut c_char,
) -> ks_status {
    // SAFETY: caller contract, forwarded.
    unsafe {
        session_op(session, out_json, |s| {
            let d = handle(device, "device")?;
            let params: ReissueParams = json_arg(arg(params_json, "params_json")?, "params_json")?;
            s.reissue(&d.inner, arg(key_id, "key_id")?, &params)
        })
    }
}

/// Signs in with the key's passkeys (user verified with `pin`); `*out_json` gets an
/// array of `{"passkey_template","method_id","credential_id","sign_count"}`.
///
/// # Safety
/// Pointers NULL or valid as documented in the crate conventions.
#[no_mangle]
pub unsafe extern "C" fn ks_sign_in(
    session: *const ks_session,
    device: *const ks_device,
    key_id: *const c_char,
    pin: *const c_char,
    out_json: *mut *mut c_char,
) -> ks_status {
    // SAFETY: caller contract, forwarded.
    unsafe {
        session_op(session, out_json, |s| {
            let d = handle(device, "device")?;
            s.sign_in(&d.inner, arg(key_id, "key_id")?, arg(pin, "pin")?)
        })
    }
}

/// Everything recorded about a key: `{"key","passkeys","pending","audit"}`.
///
/// # Safety
/// Pointers NULL or valid as documented in the crate conventions.
#[no_mangle]
pub unsafe extern "C" fn ks_key_show(
    session: *const ks_session,
    key_id: *const c_char,
    out_json: *mut *mut c_char,
) -> ks_status {
    // SAFETY: caller contract, forwarded.
    unsafe { session_op(session, out_json, |s| s.key(arg(key_id, "key_id")?)) }
}

/// Lists keys. `filter_json`: NULL (all keys) or `{"user":..,"state":..,"serial":..}`
/// (each optional; all given must match). `*out_json` gets an array of keys.
///
/// # Safety
/// Pointers NULL or valid as documented in the crate conventions.
#[no_mangle]
pub unsafe extern "C" fn ks_key_list(
    session: *const ks_session,
    filter_json: *const c_char,
    out_json: *mut *mut c_char,
) -> ks_status {
    // SAFETY: caller contract, forwarded.
    unsafe {
        session_op(session, out_json, |s| {
            let filter: KeyFilter = match opt_arg(filter_json, "filter_json")? {
                Some(t) => json_arg(t, "filter_json")?,
                None => KeyFilter::default(),
            };
            s.list_keys(&filter)
        })
    }
}

/// The audit log of a key, oldest first (JSON array).
///
/// # Safety
/// Pointers NULL or valid as documented in the crate conventions.
#[no_mangle]
pub unsafe extern "C" fn ks_audit(
    session: *const ks_session,
    key_id: *const c_char,
    out_json: *mut *mut c_char,
) -> ks_status {
    // SAFETY: caller contract, forwarded.
    unsafe { session_op(session, out_json, |s| s.audit(arg(key_id, "key_id")?)) }
}

/// Replays the IdP side-effect journal; `*out_json` gets an array of
/// `{"id","key_id","operation","outcome"}`.
///
/// # Safety
/// Pointers NULL or valid as documented in the crate conventions.
#[no_mangle]
pub unsafe extern "C" fn ks_replay_journal(
    session: *const ks_session,
    out_json: *mut *mut c_char,
) -> ks_status {
    // SAFETY: caller contract, forwarded.
    unsafe { session_op(session, out_json, Session::replay_journal) }
}

/// Checks an IdP connection; `*out_ms` gets how long it took (ms).
///
/// # Safety
/// Pointers NULL or valid as documented in the crate conventions.
#[no_mangle]
pub unsafe extern "C" fn ks_check_connection(
    session: *const ks_session,
    connection: *const c_char,
    out_ms: *mut u64,
) -> ks_status {
    guard(|| {
        // SAFETY: caller contract.
        unsafe { out(out_ms, 0, "out_ms") }?;
        // SAFETY: caller contract.
        let s = unsafe { handle(session, "session") }?;
        // SAFETY: caller contract.
        let ms = s
            .inner
            .check_connection(unsafe { arg(connection, "connection") }?)?;
        // SAFETY: checked above.
        unsafe { out_ms.write(ms) };
        Ok(())
    })
}

/// Directory users of `connection` whose display name or UPN starts with `prefix` (at
/// most `top`), as a JSON array.
///
/// # Safety
/// Pointers NULL or valid as documented in the crate conventions.
#[no_mangle]
pub unsafe extern "C" fn ks_search_users(
    session: *const ks_session,
    connection: *const c_char,
    prefix: *const c_char,
    top: u32,
    out_json: *mut *mut c_char,
) -> ks_status {
    // SAFETY: caller contract, forwarded.
    unsafe {
        session_op(session, out_json, |s| {
            s.search_users(arg(connection, "connection")?, arg(prefix, "prefix")?, top)
        })
    }
}

/// Self-service PIN set with the holder's OIDC ID token; `*out_json` gets the key.
///
/// # Safety
/// Pointers NULL or valid as documented in the crate conventions.
#[no_mangle]
pub unsafe extern "C" fn ks_self_set_pin(
    session: *const ks_session,
    device: *const ks_device,
    key_id: *const c_char,
    id_token: *const c_char,
    new_pin: *const c_char,
    out_json: *mut *mut c_char,
) -> ks_status {
    // SAFETY: caller contract, forwarded.
    unsafe {
        session_op(session, out_json, |s| {
            let d = handle(device, "device")?;
            s.self_set_pin(
                &d.inner,
                arg(key_id, "key_id")?,
                arg(id_token, "id_token")?,
                arg(new_pin, "new_pin")?,
            )
        })
    }
}

/// Self-issuance with the holder's OIDC ID token; `serial` may be NULL (the device's).
/// `*out_json` gets the key.
///
/// # Safety
/// Pointers NULL or valid as documented in the crate conventions.
#[no_mangle]
pub unsafe extern "C" fn ks_self_issue(
    session: *const ks_session,
    device: *const ks_device,
    id_token: *const c_char,
    template_name: *const c_char,
    serial: *const c_char,
    new_pin: *const c_char,
    out_json: *mut *mut c_char,
) -> ks_status {
    // SAFETY: caller contract, forwarded.
    unsafe {
        session_op(session, out_json, |s| {
            let d = handle(device, "device")?;
            s.self_issue(
                &d.inner,
                arg(id_token, "id_token")?,
                arg(template_name, "template_name")?,
                opt_arg(serial, "serial")?,
                arg(new_pin, "new_pin")?,
            )
        })
    }
}

/// Reconciles the repository with every IdP connection. `request_json`: NULL (every
/// user holding a key, report only) or `{"users":["kim@contoso.com",...],"fix":false,
/// "delete_unknown":false}` (each optional; empty `users`: every user holding a key;
/// `delete_unknown` needs `fix`). `*report_json` gets `{"users_checked","clean","fixed",
/// "errors","findings":[{"user","user_id","key_id","passkey_template","idp_connection",
/// "method_id","credential_id","kind","fixed","error"}]}`; IdP failures for a user are
/// findings (`kind` `check_failed`), not a failed call.
///
/// # Safety
/// Pointers NULL or valid as documented in the crate conventions.
#[no_mangle]
pub unsafe extern "C" fn ks_reconcile(
    session: *const ks_session,
    request_json: *const c_char,
    report_json: *mut *mut c_char,
) -> ks_status {
    // SAFETY: caller contract, forwarded.
    unsafe {
        session_op_named(session, report_json, "report_json", |s| {
            let r: ReconcileRequest = match opt_arg(request_json, "request_json")? {
                Some(t) => json_arg(t, "request_json")?,
                None => ReconcileRequest::default(),
            };
            s.reconcile(&r.users, r.fix, r.delete_unknown)
        })
    }
}

/// Records a bulk job of `kind` (`issue`: CSV columns `user,serial[,template]`; `revoke`:
/// `key_id` or `user`, optional `force`; `reconcile`: `user`) from the CSV text `csv`
/// (header row first; validated whole, errors name line and column). The same text for
/// the same kind gives the job already recorded. `*job_json` gets
/// `{"job_id","kind","source_hash","actor","total","created_ms"}`.
///
/// # Safety
/// Pointers NULL or valid as documented in the crate conventions.
#[no_mangle]
pub unsafe extern "C" fn ks_bulk_create(
    session: *const ks_session,
    kind: *const c_char,
    csv: *const c_char,
    job_json: *mut *mut c_char,
) -> ks_status {
    // SAFETY: caller contract, forwarded.
    unsafe {
        session_op_named(session, job_json, "job_json", |s| {
            s.bulk_create(arg(kind, "kind")?, arg(csv, "csv")?)
        })
    }
}

/// Runs (or resumes) bulk job `job_id`; returns when every row not done yet has run.
/// `options_json`: NULL (defaults) or `{"workers":1,"rate":null,"template":null,
/// "retry_failed":true,"fix":false,"delete_unknown":false}` (each optional; `template`:
/// the loaded credential template for issue rows without one). `device_cb` supplies the
/// device spec for each issue row (see [`ks_bulk_device_fn`]; NULL fails issue rows);
/// `progress_cb` (NULL: none) is told after each row; both get `ctx`. Failed rows do not
/// fail the call: `*summary_json` gets `{"job_id","kind","total","done","failed",
/// "skipped","settled","items":[{"line","status","outcome"}]}`.
///
/// # Safety
/// Pointers NULL or valid as documented in the crate conventions; the callbacks are NULL
/// or valid functions that may be called with `ctx` during this call.
#[no_mangle]
pub unsafe extern "C" fn ks_bulk_run(
    session: *const ks_session,
    job_id: i64,
    options_json: *const c_char,
    device_cb: ks_bulk_device_fn,
    progress_cb: ks_bulk_progress_fn,
    ctx: *mut c_void,
    summary_json: *mut *mut c_char,
) -> ks_status {
    guard(|| {
        // SAFETY: caller contract.
        unsafe { out(summary_json, std::ptr::null_mut(), "summary_json") }?;
        // SAFETY: caller contract.
        let s = unsafe { handle(session, "session") }?;
        // SAFETY: caller contract.
        let options: BulkRunOptions = match unsafe { opt_arg(options_json, "options_json") }? {
            Some(t) => json_arg(t, "options_json")?,
            None => BulkRunOptions::default(),
        };
        let mut device = |row: &BulkRow| -> Result<String, String> {
            let Some(cb) = device_cb else {
                return Err("no device callback was given".into());
            };
            let text = serde_json::to_string(row).map_err(|e| e.to_string())?;
            let text = CString::new(text).map_err(|e| e.to_string())?;
            // SAFETY: `cb` is a valid function by the caller's contract; the row string
            // lives for the call.
            let spec = unsafe { cb(ctx, text.as_ptr()) };
            // SAFETY: by the callback's contract the result is NULL or a NUL-terminated
            // string valid until the callback is called again; it is copied here.
            let spec = unsafe { opt_arg(spec, "device callback result") }
                .map_err(|e| e.message)?
                .ok_or_else(|| "the device callback gave no device (NULL)".to_owned())?;
            Ok(spec.to_owned())
        };
        let mut progress = |p: &BulkProgress| {
            let Some(cb) = progress_cb else { return };
            let Ok(text) = serde_json::to_string(p) else {
                return;
            };
            let Ok(text) = CString::new(text) else { return };
            // SAFETY: `cb` is a valid function by the caller's contract; the string lives
            // for the call.
            unsafe { cb(ctx, text.as_ptr()) };
        };
        let summary = s
            .inner
            .bulk_run(job_id, &options, &mut device, &mut progress)?;
        // SAFETY: checked above.
        unsafe { write_json(summary_json, &summary) }
    })
}

/// One page of every key, sorted by id: the keys after key id `after` (NULL: from the
/// first), at most `limit` (1 to 1000). `*page_json` gets
/// `{"keys":[...],"next_after":"<key id>"|null}`; pass `next_after` to get the next page
/// until it is null.
///
/// # Safety
/// Pointers NULL or valid as documented in the crate conventions.
#[no_mangle]
pub unsafe extern "C" fn ks_list_keys_page(
    session: *const ks_session,
    after: *const c_char,
    limit: u32,
    page_json: *mut *mut c_char,
) -> ks_status {
    // SAFETY: caller contract, forwarded.
    unsafe {
        session_op_named(session, page_json, "page_json", |s| {
            s.list_keys_page(opt_arg(after, "after")?, limit)
        })
    }
}

/// One page of the pending registrations whose challenge expires within `within_ms`
/// from now (expired ones included), soonest first: after the cursor `after_json` (NULL:
/// from the first; else the `next_after` object of the previous page), at most `limit`
/// (1 to 1000). `*page_json` gets `{"pending":[{"key_id","passkey_template","user_id",
/// "challenge_expires_ms"}],"next_after":{...}|null}`.
///
/// # Safety
/// Pointers NULL or valid as documented in the crate conventions.
#[no_mangle]
pub unsafe extern "C" fn ks_list_expiring_page(
    session: *const ks_session,
    within_ms: u64,
    after_json: *const c_char,
    limit: u32,
    page_json: *mut *mut c_char,
) -> ks_status {
    // SAFETY: caller contract, forwarded.
    unsafe {
        session_op_named(session, page_json, "page_json", |s| {
            let after: Option<ExpiringCursor> = match opt_arg(after_json, "after_json")? {
                Some(t) => Some(json_arg(t, "after_json")?),
                None => None,
            };
            s.list_expiring_page(within_ms, after.as_ref(), limit)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_and_non_utf8_inputs_are_usage_errors() {
        let mut s: *mut ks_session = std::ptr::null_mut();
        // SAFETY: valid out pointer, NULL config.
        assert_eq!(
            unsafe { ks_session_open(std::ptr::null(), &mut s) },
            KS_USAGE
        );
        assert!(s.is_null());
        let mut msg: *mut c_char = std::ptr::null_mut();
        // SAFETY: valid out pointer.
        assert_eq!(unsafe { ks_last_error(&mut msg) }, KS_USAGE);
        // SAFETY: msg is a library string.
        let text = unsafe { CStr::from_ptr(msg) }.to_str().unwrap().to_owned();
        assert!(text.contains("config_json"), "{text}");
        // SAFETY: library string, freed once.
        unsafe { ks_string_free(msg) };

        let bad = b"softkey:\xff\0";
        let mut d: *mut ks_device = std::ptr::null_mut();
        // SAFETY: NUL-terminated input, valid out pointer.
        assert_eq!(
            unsafe { ks_device_open(bad.as_ptr().cast(), &mut d) },
            KS_USAGE
        );
        // SAFETY: NULL out pointer is refused, not written.
        assert_eq!(unsafe { ks_device_list(std::ptr::null_mut()) }, KS_USAGE);
        assert_eq!(unsafe { ks_device_cancel(std::ptr::null()) }, KS_USAGE);
        // SAFETY: valid out pointer.
        assert_eq!(unsafe { ks_last_error(&mut msg) }, KS_USAGE);
        // SAFETY: library string.
        unsafe { ks_string_free(msg) };
    }

    #[test]
    fn job_entry_points_refuse_null_sessions_and_out_pointers() {
        let mut out: *mut c_char = std::ptr::dangling_mut();
        let none = std::ptr::null();
        // SAFETY: NULL session, valid out pointer.
        assert_eq!(
            unsafe { ks_reconcile(none, std::ptr::null(), &mut out) },
            KS_USAGE
        );
        assert!(out.is_null(), "out pointers are cleared first");
        let kind = c"revoke";
        let csv = c"key_id\nk\n";
        // SAFETY: NULL session, valid strings and out pointer.
        assert_eq!(
            unsafe { ks_bulk_create(none, kind.as_ptr(), csv.as_ptr(), &mut out) },
            KS_USAGE
        );
        // SAFETY: NULL session and callbacks, valid out pointer.
        assert_eq!(
            unsafe {
                ks_bulk_run(
                    none,
                    1,
                    std::ptr::null(),
                    None,
                    None,
                    std::ptr::null_mut(),
                    &mut out,
                )
            },
            KS_USAGE
        );
        // SAFETY: NULL session, NULL out pointer (refused, not written).
        assert_eq!(
            unsafe { ks_list_keys_page(none, std::ptr::null(), 10, std::ptr::null_mut()) },
            KS_USAGE
        );
        let mut msg: *mut c_char = std::ptr::null_mut();
        // SAFETY: valid out pointer.
        assert_eq!(unsafe { ks_last_error(&mut msg) }, KS_USAGE);
        // SAFETY: library string.
        let text = unsafe { CStr::from_ptr(msg) }.to_str().unwrap().to_owned();
        assert!(text.contains("page_json"), "{text}");
        // SAFETY: library string, freed once.
        unsafe { ks_string_free(msg) };
    }

    #[test]
    fn success_clears_the_last_error_and_version_is_static() {
        let mut out: *mut c_char = std::ptr::null_mut();
        // SAFETY: valid out pointer.
        assert_eq!(unsafe { ks_device_list(std::ptr::null_mut()) }, KS_USAGE);
        // SAFETY: valid out pointer.
        assert_eq!(unsafe { ks_device_list(&mut out) }, KS_OK);
        // SAFETY: library string.
        unsafe { ks_string_free(out) };
        let mut msg: *mut c_char = std::ptr::null_mut();
        // SAFETY: valid out pointer.
        assert_eq!(unsafe { ks_last_error(&mut msg) }, KS_OK);
        assert!(msg.is_null());
        // SAFETY: static NUL-terminated string.
        let v = unsafe { CStr::from_ptr(ks_version()) };
        assert_eq!(v.to_str().unwrap(), keysmith_facade::version());
    }

    #[test]
    fn codes_match_the_facade() {
        use keysmith_facade::ErrorKind as K;
        assert_eq!(K::Usage.code(), KS_USAGE);
        assert_eq!(K::Device.code(), KS_DEVICE);
        assert_eq!(K::Idp.code(), KS_IDP);
        assert_eq!(K::Repository.code(), KS_REPOSITORY);
        assert_eq!(K::Template.code(), KS_TEMPLATE);
        assert_eq!(K::Transition.code(), KS_TRANSITION);
        assert_eq!(K::Internal.code(), KS_INTERNAL);
    }
}
