//! `ks_log_set_callback`: the library's log records handed to a C function (as rustls-ffi's
//! `rustls_log_callback`; named `ks_<noun>_<verb>` like the rest of the ABI), fed by the
//! same records the configured destination gets.

use std::ffi::{c_char, c_void, CString};
use std::sync::Arc;

use keysmith_facade::{LogLevel, LogRecord};

use crate::{guard, ks_status};

/// The level of a log record (the numbers of the `log` crate and rustls-ffi).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ks_log_level {
    /// A failure the host should see.
    KS_LOG_ERROR = 1,
    /// Something unexpected that keysmith handled (a retry, a refused request).
    KS_LOG_WARN = 2,
    /// The steps of an operation (issued, activated, revoked, ...).
    KS_LOG_INFO = 3,
    /// Detail for diagnosing a problem (requests, device messages, without secrets).
    KS_LOG_DEBUG = 4,
    /// Everything, including protocol traces (still without secrets).
    KS_LOG_TRACE = 5,
}

pub use ks_log_level::*;

/// One log record, as the log callback receives it. The strings are NUL-terminated UTF-8,
/// owned by the library and valid only during the callback: copy what you keep.
#[repr(C)]
pub struct ks_log_params {
    /// The record's level.
    pub level: ks_log_level,
    /// Where it comes from: the library module that logged it ("lifecycle::engine").
    pub target: *const c_char,
    /// The text without time, level and target: the enclosing operations
    /// ("issue{serial=AB12}: "), the message and its fields ("key=value"). Secrets (PINs,
    /// tokens, keys) are already left out.
    pub message: *const c_char,
}

/// Receives the library's log records: `user_data` is what was given to
/// ks_log_set_callback(), `params` valid only during the call. It is called on the thread
/// that logs, which may be any thread the library runs an operation on, and from several
/// threads at once: it must be thread-safe. It must not call ks_log_set_callback().
pub type ks_log_fn =
    Option<unsafe extern "C" fn(user_data: *mut c_void, params: *const ks_log_params)>;

/// The host's callback and its `user_data`, which the host declared usable from any thread.
struct Callback {
    f: unsafe extern "C" fn(*mut c_void, *const ks_log_params),
    user_data: *mut c_void,
}

// SAFETY: ks_log_set_callback's contract: the callback and its user_data may be used from
// any thread, at the same time.
unsafe impl Send for Callback {}
// SAFETY: as above.
unsafe impl Sync for Callback {}

impl Callback {
    /// Calls the host's function (a method, so closures capture the whole `Callback`).
    fn call(&self, params: &ks_log_params) {
        // SAFETY: the host's callback and user_data, valid per ks_log_set_callback's
        // contract; params and its strings live until it returns.
        unsafe { (self.f)(self.user_data, params) };
    }
}

fn level(l: LogLevel) -> ks_log_level {
    match l {
        LogLevel::Error => KS_LOG_ERROR,
        LogLevel::Warn => KS_LOG_WARN,
        LogLevel::Info => KS_LOG_INFO,
        LogLevel::Debug => KS_LOG_DEBUG,
        _ => KS_LOG_TRACE,
    }
}

/// A C string of `s`, NUL bytes (never in keysmith's records) replaced.
fn c_string(s: &str) -> CString {
    CString::new(s.replace('\0', "\u{fffd}")).unwrap_or_default()
}

/// Sends every log record to `cb` too, besides the configured destination (stderr unless
/// ks_log_configure() says otherwise; `{"destination":{"kind":"none"}}` sends records to
/// the callback only). Which records there are is still decided by the configured level
/// and directives (default: info). `cb` NULL stops the callback. Calling it again
/// replaces the callback; the previous one may still receive records that other threads
/// were logging while it was replaced.
///
/// Ownership: user_data stays the caller's; the library keeps the pointer until the
/// callback is replaced or the process ends, and only passes it back.
/// NULL: cb may be NULL (no callback); user_data is passed back as given (NULL too).
/// Pointers: cb, if not NULL, and user_data stay valid until the callback is replaced,
/// and may be used from any thread at once.
/// Blocks: no (the first call sets up the library's logging with the default settings
/// when ks_log_configure() was not called).
/// Threads: any thread; the setting is process-wide. Not from inside the callback.
#[no_mangle]
pub unsafe extern "C" fn ks_log_set_callback(cb: ks_log_fn, user_data: *mut c_void) -> ks_status {
    guard(|| {
        let hook = cb.map(|f| {
            let callback = Callback { f, user_data };
            Arc::new(move |r: &LogRecord<'_>| {
                let target = c_string(r.target);
                let message = c_string(r.message);
                let params = ks_log_params {
                    level: level(r.level),
                    target: target.as_ptr(),
                    message: message.as_ptr(),
                };
                callback.call(&params);
            }) as keysmith_facade::LogHook
        });
        keysmith_facade::set_log_hook(hook)
    })
}
