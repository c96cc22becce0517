//! # keysmith C ABI
//!
//! The C ABI over [`keysmith_facade`]; the header is `include/keysmith.h`.
//!
//! Names: every entry point is `ks_<noun>_<verb>[_<detail>]`, the noun being what it acts
//! on or returns and the verb what it does to it, so the calls on one thing sort
//! together in the header:
//! - `ks_session_open` / `_free` / `_set_prompt_callback`; `ks_device_list` / `_open` /
//!   `_free` / `_info` / `_cancel`;
//! - `ks_key_<verb>` for one key's lifecycle (`issue`, `issue_and_activate`, `activate`,
//!   `inactivate`, `revoke`, `retire`, `unregister`, `reissue`, `sign_in`, `self_issue`,
//!   `self_set_pin`) and queries (`get`, `list`, `list_page`, `audit`);
//! - `ks_self_service_begin` (the nonce of a holder's sign-in for `self_issue` /
//!   `self_set_pin`);
//! - `ks_template_add` / `_list` / `_check`, `ks_idp_check`, `ks_user_search`,
//!   `ks_user_passkeys`, `ks_user_readiness`, `ks_key_list_needs_reissue`,
//!   `ks_key_list_stale`, `ks_journal_replay`, `ks_audit_verify` (the whole audit log's chain),
//!   `ks_drift_reconcile`, `ks_bulk_create` / `_run`,
//!   `ks_pending_list_expiring_page` (pending registrations);
//! - the split deployment (`docs/split-embedding.md`): `ks_device_half_open` / `_free` /
//!   `_hello` / `_agent` / `_key_take` / `_report` / `_request` / `_ready` /
//!   `_holder_auth` / `_receive` / `_run_job`; `ks_server_half_open` / `_free` /
//!   `_key_take` / `_public_key` / `_agent_add` / `_agent_set` / `_session_open` /
//!   `_session_handle` / `_work_queue` / `_work_get`; `ks_wire_describe`; message buffers
//!   freed with `ks_bytes_free`;
//! - the library itself: `ks_log_configure`, `ks_string_free`, `ks_status_str`; three
//!   getters are nouns alone: `ks_version`, `ks_last_error`, `ks_last_error_json`.
//!
//! Paged listings end in `_page`; handles are `ks_session` / `ks_device`, opened with
//! `_open` and freed with `_free`.
//!
//! Conventions (every entry point):
//! - returns a [`ks_status`]: `KS_OK` (0) or the error kind's code (`KS_USAGE` 2,
//!   `KS_DEVICE` 3, `KS_IDP` 4, `KS_REPOSITORY` 5, `KS_TEMPLATE` 6, `KS_TRANSITION` 7,
//!   `KS_INTERNAL` 9; [`ks_status_str`] names it); the `*_free` functions return nothing;
//! - on failure the error is kept per thread: its message for [`ks_last_error`], the
//!   whole error as JSON for [`ks_last_error_json`]
//!   (`{"kind","reason","message","ctap_status"?,"retries_left"?,"refusal_code"?}`,
//!   `refusal_code` the split protocol's stable code when `reason` is `split_refused`;
//!   `reason` a stable
//!   snake_case word such as `pin_invalid`); a success clears it;
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
// The exported functions' docs become the C header: they state their pointer rules in C
// terms ("Ownership:", "NULL:", "Pointers:" lines) instead of a Rust `# Safety` heading.
#![allow(clippy::missing_safety_doc)]
#![allow(non_camel_case_types)]

use std::cell::RefCell;
use std::ffi::{c_char, c_void, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

use keysmith_facade::{Device, ErrorKind, FacadeError, Session};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// The C ABI's major version, for compile-time checks (`#if KS_VERSION_MAJOR != 0`).
/// The library that is loaded reports its own with ks_version(). The installed shared
/// library's SONAME is libkeysmith.so.MAJOR from 1.0 on and libkeysmith.so.0.MINOR
/// before, so a program built against one ABI never loads an incompatible one.
pub const KS_VERSION_MAJOR: u32 = 0;
/// The C ABI's minor version: raised when functions or values are added and, before
/// 1.0, when they are renamed or removed.
pub const KS_VERSION_MINOR: u32 = 3;
/// The C ABI's patch version: raised for fixes that change no declaration.
pub const KS_VERSION_PATCH: u32 = 0;
/// The same as KS_VERSION_MAJOR (the name used before 0.3; kept for existing code).
pub const KEYSMITH_VERSION_MAJOR: u32 = KS_VERSION_MAJOR;
/// The same as KS_VERSION_MINOR (the name used before 0.3; kept for existing code).
pub const KEYSMITH_VERSION_MINOR: u32 = KS_VERSION_MINOR;
/// The same as KS_VERSION_PATCH (the name used before 0.3; kept for existing code).
pub const KEYSMITH_VERSION_PATCH: u32 = KS_VERSION_PATCH;

/// Status of a call: `KS_OK` or the code of the error's kind (whose name is the error
/// JSON's "kind"); ks_status_str() names it.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ks_status {
    /// Success.
    KS_OK = 0,
    /// Bad input: NULL or non-UTF-8 argument, malformed JSON, unknown key/template, ...
    KS_USAGE = 2,
    /// The security key or its transport failed.
    KS_DEVICE = 3,
    /// The identity provider refused or failed.
    KS_IDP = 4,
    /// The repository failed or refused.
    KS_REPOSITORY = 5,
    /// A template is invalid or unsupported.
    KS_TEMPLATE = 6,
    /// The action is not allowed in the key's state.
    KS_TRANSITION = 7,
    /// Internal error (a bug, e.g. a caught panic).
    KS_INTERNAL = 9,
}

pub use ks_status::*;

impl From<ErrorKind> for ks_status {
    fn from(kind: ErrorKind) -> Self {
        match kind {
            ErrorKind::Usage => KS_USAGE,
            ErrorKind::Device => KS_DEVICE,
            ErrorKind::Idp => KS_IDP,
            ErrorKind::Repository => KS_REPOSITORY,
            ErrorKind::Template => KS_TEMPLATE,
            ErrorKind::Transition => KS_TRANSITION,
            ErrorKind::Internal => KS_INTERNAL,
        }
    }
}

/// Receives prompts as JSON (`{"kind":"touch_key","step":"makeCredential"}`, ...):
/// `ctx` is what was given to ks_session_set_prompt_callback(); `prompt_json` is valid
/// only during the call. Called on the thread running the operation.
pub type ks_prompt_fn = Option<unsafe extern "C" fn(ctx: *mut c_void, prompt_json: *const c_char)>;

/// Supplies the security key for one row of a bulk issue job: called with `ctx` (as
/// given to ks_bulk_run()) and the row as JSON
/// (`{"job_id":1,"line":2,"user":"kim@contoso.com","serial":"S1"}`, valid only during the
/// call), it returns the device spec to open for that row (`softkey:STATEFILE`,
/// `usb:PATH` or `nfc:READER`), a NUL-terminated UTF-8 string that stays the callback's:
/// the library copies it before the callback is called again or ks_bulk_run() returns, so
/// a buffer the callback reuses (or a static string) is fine; the library never frees it.
/// Returning NULL fails that row ("no device"); the job goes on with the next row. Called
/// on the thread running ks_bulk_run(), one row at a time.
pub type ks_bulk_device_fn =
    Option<unsafe extern "C" fn(ctx: *mut c_void, row_json: *const c_char) -> *const c_char>;

/// Receives progress after each bulk row as JSON
/// (`{"job_id","done","failed","total","line","status":"done"|"failed","outcome"}`,
/// valid only during the call); `ctx` as given to ks_bulk_run(). Called on the thread
/// running ks_bulk_run().
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
    static LAST_ERROR: RefCell<Option<FacadeError>> = const { RefCell::new(None) };
}

fn set_last_error(e: FacadeError) -> ks_status {
    let status = e.kind.into();
    LAST_ERROR.with(|l| *l.borrow_mut() = Some(e));
    status
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
        Ok(Err(e)) => set_last_error(e),
        Err(_) => set_last_error(FacadeError::internal("internal error: a panic was caught")),
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

/// Like arg, NULL meaning "not given".
///
/// # Safety
/// As arg.
unsafe fn opt_arg<'a>(p: *const c_char, name: &str) -> Result<Option<&'a str>, FacadeError> {
    if p.is_null() {
        Ok(None)
    } else {
        // SAFETY: forwarded contract.
        unsafe { arg(p, name) }.map(Some)
    }
}

/// Parses a JSON string argument.
///
/// # Safety
/// As arg.
unsafe fn json_arg<T: DeserializeOwned>(p: *const c_char, name: &str) -> Result<T, FacadeError> {
    // SAFETY: forwarded contract.
    let text = unsafe { arg(p, name) }?;
    serde_json::from_str(text).map_err(|e| FacadeError::usage(format!("{name}: {e}")))
}

/// Like json_arg, NULL meaning "not given".
///
/// # Safety
/// As arg.
unsafe fn opt_json_arg<T: DeserializeOwned>(
    p: *const c_char,
    name: &str,
) -> Result<Option<T>, FacadeError> {
    if p.is_null() {
        Ok(None)
    } else {
        // SAFETY: forwarded contract.
        unsafe { json_arg(p, name) }.map(Some)
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

/// Checks an out pointer and sets it to `empty`, so it holds no stale value after a
/// failure.
///
/// # Safety
/// `p` is NULL or valid for writes of a `T`.
unsafe fn clear_out<T>(p: *mut T, empty: T, name: &str) -> Result<(), FacadeError> {
    if p.is_null() {
        return Err(FacadeError::usage(format!("{name}: NULL out pointer")));
    }
    // SAFETY: non-null and writable by contract; T is Copy-like (pointers, integers), no
    // old value is dropped.
    unsafe { p.write(empty) };
    Ok(())
}

/// `v` as JSON in a C string (for out pointers and callbacks).
fn json_cstring<T: Serialize>(v: &T) -> Result<CString, FacadeError> {
    let text = serde_json::to_string(v)
        .map_err(|e| FacadeError::internal(format!("serializing the result: {e}")))?;
    CString::new(text).map_err(|_| FacadeError::internal("result contains a NUL byte"))
}

/// Runs `f` inside guard and writes its result as JSON to `*out_json` (checked and
/// cleared before `f` runs; `out_name` names it in the error).
///
/// # Safety
/// `out_json` is NULL or writable.
unsafe fn json_op<T: Serialize>(
    out_json: *mut *mut c_char,
    out_name: &str,
    f: impl FnOnce() -> Result<T, FacadeError>,
) -> ks_status {
    guard(|| {
        // SAFETY: caller contract.
        unsafe { clear_out(out_json, std::ptr::null_mut(), out_name) }?;
        let p = json_cstring(&f()?)?.into_raw();
        // SAFETY: checked non-null above; writable by contract.
        unsafe { out_json.write(p) };
        Ok(())
    })
}

/// json_op on a session's operation: borrows the session (after the out pointer is
/// cleared) and hands it to `f`.
///
/// # Safety
/// `session` is NULL or live; `out_json` is NULL or writable.
unsafe fn session_op<T: Serialize>(
    session: *const ks_session,
    out_json: *mut *mut c_char,
    out_name: &str,
    f: impl FnOnce(&Session) -> Result<T, FacadeError>,
) -> ks_status {
    // SAFETY: caller contract, forwarded.
    unsafe { json_op(out_json, out_name, || f(&handle(session, "session")?.inner)) }
}

/// Opens a handle: `*out` (checked and cleared first) receives `open()`'s value boxed,
/// freed with free_handle.
///
/// # Safety
/// `out` is NULL or writable.
unsafe fn open_handle<T>(
    out: *mut *mut T,
    open: impl FnOnce() -> Result<T, FacadeError>,
) -> ks_status {
    guard(|| {
        // SAFETY: caller contract.
        unsafe { clear_out(out, std::ptr::null_mut(), "out") }?;
        let p = Box::into_raw(Box::new(open()?));
        // SAFETY: checked non-null above; writable by contract.
        unsafe { out.write(p) };
        Ok(())
    })
}

/// Frees a handle from open_handle. NULL is ignored; a panic while dropping is
/// swallowed (nothing can be reported from a `*_free`).
///
/// # Safety
/// `p` is NULL or a handle from open_handle not freed before and not in use.
unsafe fn free_handle<T>(p: *mut T) {
    if p.is_null() {
        return;
    }
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: by contract it came from Box::into_raw in open_handle and is freed once.
        drop(unsafe { Box::from_raw(p) });
    }));
}

/// Writes the thread's last error, rendered by `render`, to `*dst` (NULL if the last
/// call succeeded) and returns its status; a NULL `dst` is `KS_USAGE`, keeping the error.
///
/// # Safety
/// `dst` is NULL or valid for writes.
unsafe fn last_error_into(
    dst: *mut *mut c_char,
    render: impl FnOnce(FacadeError) -> Option<String>,
) -> ks_status {
    if dst.is_null() {
        return KS_USAGE;
    }
    let last = LAST_ERROR.with(|l| l.borrow().clone());
    let (status, text) = match last {
        Some(e) => (e.kind.into(), render(e)),
        None => (KS_OK, None),
    };
    let p = text
        .and_then(|t| CString::new(t).ok())
        .map_or(std::ptr::null_mut(), CString::into_raw);
    // SAFETY: checked non-null; writable by contract.
    unsafe { dst.write(p) };
    status
}

/// The library version, a static NUL-terminated string (do not free).
///
/// NULL: never returns NULL.
/// Blocks: no.
/// Threads: any thread; handles may be shared between threads.
#[no_mangle]
pub extern "C" fn ks_version() -> *const c_char {
    static VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");
    VERSION.as_ptr().cast()
}

/// Frees a string the library returned (its bytes are zeroized first). NULL is ignored.
///
/// NULL: s may be NULL (nothing is done).
/// Pointers: `s` is NULL or a string from this library not freed before.
/// Blocks: no.
/// Threads: any thread (not only the one that got the buffer), once per buffer.
#[no_mangle]
pub unsafe extern "C" fn ks_string_free(s: *mut c_char) {
    if s.is_null() {
        return;
    }
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: by contract `s` came from CString::into_raw here and is freed once.
        let mut bytes = unsafe { CString::from_raw(s) }.into_bytes_with_nul();
        // Some strings hold secrets (a generated agent or server key): wiped before free.
        zeroize::Zeroize::zeroize(&mut bytes);
    }));
}

/// The last failure on this thread: writes a copy of its message to `*message` (NULL if
/// the last call succeeded; free it with ks_string_free()) and returns its status
/// (`KS_OK` if none). A NULL `message` returns `KS_USAGE` and keeps the stored error.
///
/// Ownership: the library allocates *message (free with ks_string_free()); the caller owns
/// it.
/// NULL: message may be NULL only to be refused: the call returns KS_USAGE and does
/// nothing.
/// Blocks: no.
/// Threads: the thread whose call failed: the error is kept per thread.
#[no_mangle]
pub unsafe extern "C" fn ks_last_error(message: *mut *mut c_char) -> ks_status {
    // SAFETY: caller contract, forwarded.
    unsafe { last_error_into(message, |e| Some(e.message)) }
}

/// The last failure on this thread as JSON: writes
/// `{"kind":"device","reason":"pin_invalid","message":"...","ctap_status":49,
/// "retries_left":7}` to `*error_json` (`ctap_status` and `retries_left` only where the
/// security key told them; NULL if the last call succeeded; free it with
/// ks_string_free()) and returns its status (`KS_OK` if none). `reason` is a stable
/// snake_case word to branch on (`pin_invalid`, `pin_blocked`, `cancelled`,
/// `device_not_found`, `key_not_found`, `challenge_expired`, ...; the document is
/// described by docs/schemas/error.schema.json). A NULL `error_json` returns `KS_USAGE` and
/// keeps the stored error.
///
/// Ownership: the library allocates *error_json (free with ks_string_free()); the caller
/// owns it.
/// NULL: error_json may be NULL only to be refused: the call returns KS_USAGE and does
/// nothing.
/// Blocks: no.
/// Threads: the thread whose call failed: the error is kept per thread.
#[no_mangle]
pub unsafe extern "C" fn ks_last_error_json(error_json: *mut *mut c_char) -> ks_status {
    // SAFETY: caller contract, forwarded.
    unsafe { last_error_into(error_json, |e| serde_json::to_string(&e).ok()) }
}

/// The name of a status (`"ok"`, `"usage"`, `"device"`, `"idp"`, `"repository"`,
/// `"template"`, `"transition"`, `"internal"`): a static NUL-terminated string (do not
/// free). `status` must be one of the enum's values.
///
/// NULL: never returns NULL.
/// Blocks: no.
/// Threads: any thread; handles may be shared between threads.
#[no_mangle]
pub extern "C" fn ks_status_str(status: ks_status) -> *const c_char {
    let name = match status {
        KS_OK => c"ok",
        KS_USAGE => c"usage",
        KS_DEVICE => c"device",
        KS_IDP => c"idp",
        KS_REPOSITORY => c"repository",
        KS_TEMPLATE => c"template",
        KS_TRANSITION => c"transition",
        KS_INTERNAL => c"internal",
    };
    name.as_ptr()
}

/// Configures process-wide logging from JSON (`{"level":"debug","format":"json",
/// "destination":...}`, the CLI's `[log]` keys).
///
/// Ownership: json stays the caller's and is only read during the call.
/// NULL: json may be NULL only to be refused: the call returns KS_USAGE and does nothing.
/// Blocks: briefly: it opens the log file when one is configured.
/// Threads: any thread; the settings are process-wide.
#[no_mangle]
pub unsafe extern "C" fn ks_log_configure(json: *const c_char) -> ks_status {
    guard(|| {
        // SAFETY: caller contract.
        let json = unsafe { arg(json, "json") }?;
        keysmith_facade::configure_logging(json)
    })
}

// The header lists the entry points in this order: the library's own above, then
// sessions (templates, IdP and directory queries, the journal), security keys, the
// lifecycle of keys, and jobs over many keys (cbindgen follows the modules as declared).
mod session;

mod passkeys;

mod device;

mod key;
/// The split deployment's halves.
mod split;

mod jobs;
/// ks_log_set_callback: log records to a C function.
mod log;

pub use device::*;
pub use jobs::*;
pub use key::*;
pub use log::*;
pub use passkeys::*;
pub use session::*;
pub use split::*;

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
            unsafe { ks_drift_reconcile(none, std::ptr::null(), &mut out) },
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
            unsafe { ks_key_list_page(none, std::ptr::null(), 10, std::ptr::null_mut()) },
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
        // SAFETY: valid out pointer.
        assert_eq!(unsafe { ks_last_error_json(&mut msg) }, KS_OK);
        assert!(msg.is_null());
        // SAFETY: static NUL-terminated string.
        let v = unsafe { CStr::from_ptr(ks_version()) };
        assert_eq!(v.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
        let header = format!("{KS_VERSION_MAJOR}.{KS_VERSION_MINOR}.{KS_VERSION_PATCH}");
        assert_eq!(
            header,
            env!("CARGO_PKG_VERSION"),
            "header macros = crate version"
        );
    }

    #[test]
    fn last_error_json_has_kind_reason_and_message() {
        let mut out: *mut c_char = std::ptr::null_mut();
        let mut d: *mut ks_device = std::ptr::null_mut();
        // SAFETY: NULL spec (refused), valid out pointer.
        assert_eq!(
            unsafe { ks_device_open(std::ptr::null(), &mut d) },
            KS_USAGE
        );
        // SAFETY: a NULL out pointer is refused and keeps the error.
        assert_eq!(
            unsafe { ks_last_error_json(std::ptr::null_mut()) },
            KS_USAGE
        );
        // SAFETY: valid out pointer.
        assert_eq!(unsafe { ks_last_error_json(&mut out) }, KS_USAGE);
        // SAFETY: library string.
        let text = unsafe { CStr::from_ptr(out) }.to_str().unwrap().to_owned();
        // SAFETY: library string, freed once.
        unsafe { ks_string_free(out) };
        let v: serde_json::Value = serde_json::from_str(&text).expect("JSON");
        assert_eq!(v["kind"], "usage", "{text}");
        assert_eq!(v["reason"], "usage", "{text}");
        assert!(v["message"].as_str().unwrap().contains("spec"), "{text}");
        assert!(v.get("ctap_status").is_none() && v.get("retries_left").is_none());
    }

    #[test]
    fn status_names_are_static_and_match_the_kinds() {
        use keysmith_facade::ErrorKind as K;
        // SAFETY: static NUL-terminated strings.
        let name = |s| {
            unsafe { CStr::from_ptr(ks_status_str(s)) }
                .to_str()
                .unwrap()
        };
        assert_eq!(name(KS_OK), "ok");
        for k in K::ALL {
            assert_eq!(name(ks_status::from(k)), k.as_str());
            assert_eq!(ks_status::from(k) as i32, k.code());
        }
    }

    #[test]
    fn codes_match_the_facade() {
        use keysmith_facade::ErrorKind as K;
        assert_eq!(KS_OK as i32, 0);
        assert_eq!(K::Usage.code(), KS_USAGE as i32);
        assert_eq!(K::Device.code(), KS_DEVICE as i32);
        assert_eq!(K::Idp.code(), KS_IDP as i32);
        assert_eq!(K::Repository.code(), KS_REPOSITORY as i32);
        assert_eq!(K::Template.code(), KS_TEMPLATE as i32);
        assert_eq!(K::Transition.code(), KS_TRANSITION as i32);
        assert_eq!(K::Internal.code(), KS_INTERNAL as i32);
    }
}
