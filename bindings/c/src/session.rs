//! Sessions and their lifecycle operations: open, prompts, templates, issue to
//! self-service.

use std::ffi::{c_char, c_void, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

use keysmith_facade::{IssueParams, KeyFilter, Prompt, ReissueParams, Session};

use crate::{
    arg, guard, handle, json_arg, ks_device, ks_prompt_fn, ks_session, ks_status, opt_arg, out,
    session_op, write_json,
};

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
