//! Keys: the lifecycle of one key (issue to unregister, sign-in, self-service) and the
//! queries on keys.

use std::ffi::c_char;

use keysmith_facade::{IssueParams, KeyFilter, ReissueParams};

use crate::{
    arg, handle, json_arg, ks_device, ks_session, ks_status, opt_arg, opt_json_arg, session_op,
};

/// Central issuance. `params_json`: `{"template":"NAME","user":"UPN or id",
/// "serial":optional,"actor":optional}`; `*out_json` gets the key.
///
/// Ownership: params_json stays the caller's and is only read during the call; session,
/// device are borrowed for the call; the library allocates *out_json (free with
/// ks_string_free()); the caller owns it.
/// NULL: session, device, params_json, out_json may each be NULL only to be refused: the
/// call returns KS_USAGE and does nothing.
/// Blocks: yes: on the security key, including the wait for the holder's touch or PIN
/// (announced through the prompt callback; ks_device_cancel() from another thread ends it),
/// then on the identity provider (HTTPS to Microsoft Graph, with its retries and timeouts)
/// and the repository.
/// Threads: any thread; handles may be shared between threads; one operation that changes a
/// key runs on a ks_device at a time (another started meanwhile gets KS_DEVICE, reason
/// "device_busy").
#[no_mangle]
pub unsafe extern "C" fn ks_key_issue(
    session: *const ks_session,
    device: *const ks_device,
    params_json: *const c_char,
    out_json: *mut *mut c_char,
) -> ks_status {
    // SAFETY: caller contract, forwarded.
    unsafe {
        session_op(session, out_json, "out_json", |s| {
            let d = handle(device, "device")?;
            let params: IssueParams = json_arg(params_json, "params_json")?;
            s.issue(&d.inner, &params)
        })
    }
}

/// Issuance with the holder's PIN (templates that activate at issuance); as
/// ks_key_issue().
///
/// Ownership: params_json, holder_pin stay the caller's and are only read during the call;
/// session, device are borrowed for the call; the library allocates *out_json (free with
/// ks_string_free()); the caller owns it.
/// NULL: session, device, params_json, holder_pin, out_json may each be NULL only to be
/// refused: the call returns KS_USAGE and does nothing.
/// Blocks: yes: on the security key, including the wait for the holder's touch or PIN
/// (announced through the prompt callback; ks_device_cancel() from another thread ends it),
/// then on the identity provider (HTTPS to Microsoft Graph, with its retries and timeouts)
/// and the repository.
/// Threads: any thread; handles may be shared between threads; one operation that changes a
/// key runs on a ks_device at a time (another started meanwhile gets KS_DEVICE, reason
/// "device_busy").
#[no_mangle]
pub unsafe extern "C" fn ks_key_issue_and_activate(
    session: *const ks_session,
    device: *const ks_device,
    params_json: *const c_char,
    holder_pin: *const c_char,
    out_json: *mut *mut c_char,
) -> ks_status {
    // SAFETY: caller contract, forwarded.
    unsafe {
        session_op(session, out_json, "out_json", |s| {
            let d = handle(device, "device")?;
            let params: IssueParams = json_arg(params_json, "params_json")?;
            s.issue_and_activate(&d.inner, &params, arg(holder_pin, "holder_pin")?)
        })
    }
}

/// Activation by the holder with their new PIN; `*out_json` gets the key.
///
/// Ownership: key_id, holder_pin stay the caller's and are only read during the call;
/// session, device are borrowed for the call; the library allocates *out_json (free with
/// ks_string_free()); the caller owns it.
/// NULL: session, device, key_id, holder_pin, out_json may each be NULL only to be refused:
/// the call returns KS_USAGE and does nothing.
/// Blocks: yes: on the security key, including the wait for the holder's touch or PIN
/// (announced through the prompt callback; ks_device_cancel() from another thread ends it),
/// then on the identity provider (HTTPS to Microsoft Graph, with its retries and timeouts)
/// and the repository.
/// Threads: any thread; handles may be shared between threads; one operation that changes a
/// key runs on a ks_device at a time (another started meanwhile gets KS_DEVICE, reason
/// "device_busy").
#[no_mangle]
pub unsafe extern "C" fn ks_key_activate(
    session: *const ks_session,
    device: *const ks_device,
    key_id: *const c_char,
    holder_pin: *const c_char,
    out_json: *mut *mut c_char,
) -> ks_status {
    // SAFETY: caller contract, forwarded.
    unsafe {
        session_op(session, out_json, "out_json", |s| {
            let d = handle(device, "device")?;
            s.activate(
                &d.inner,
                arg(key_id, "key_id")?,
                arg(holder_pin, "holder_pin")?,
            )
        })
    }
}

/// Inactivates a key; `*out_json` gets the key.
///
/// Ownership: key_id stays the caller's and is only read during the call; session is
/// borrowed for the call; the library allocates *out_json (free with ks_string_free()); the
/// caller owns it.
/// NULL: session, key_id, out_json may each be NULL only to be refused: the call returns
/// KS_USAGE and does nothing.
/// Blocks: yes: on the identity provider (HTTPS to Microsoft Graph, with its retries and
/// timeouts) and the repository.
/// Threads: any thread; handles may be shared between threads.
#[no_mangle]
pub unsafe extern "C" fn ks_key_inactivate(
    session: *const ks_session,
    key_id: *const c_char,
    out_json: *mut *mut c_char,
) -> ks_status {
    // SAFETY: caller contract, forwarded.
    unsafe {
        session_op(session, out_json, "out_json", |s| {
            s.inactivate(arg(key_id, "key_id")?)
        })
    }
}

/// Revokes a key. `force`: negative = the template's setting, 0 = not forced, positive =
/// forced (a failed IdP deletion cancels the revocation). `*out_json` gets the key.
///
/// Ownership: key_id stays the caller's and is only read during the call; session is
/// borrowed for the call; the library allocates *out_json (free with ks_string_free()); the
/// caller owns it.
/// NULL: session, key_id, out_json may each be NULL only to be refused: the call returns
/// KS_USAGE and does nothing.
/// Blocks: yes: on the identity provider (HTTPS to Microsoft Graph, with its retries and
/// timeouts) and the repository.
/// Threads: any thread; handles may be shared between threads.
#[no_mangle]
pub unsafe extern "C" fn ks_key_revoke(
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
        session_op(session, out_json, "out_json", |s| {
            s.revoke(arg(key_id, "key_id")?, force)
        })
    }
}

/// Retires a key; `*out_json` gets the key.
///
/// Ownership: key_id stays the caller's and is only read during the call; session is
/// borrowed for the call; the library allocates *out_json (free with ks_string_free()); the
/// caller owns it.
/// NULL: session, key_id, out_json may each be NULL only to be refused: the call returns
/// KS_USAGE and does nothing.
/// Blocks: yes: on the identity provider (HTTPS to Microsoft Graph, with its retries and
/// timeouts) and the repository.
/// Threads: any thread; handles may be shared between threads.
#[no_mangle]
pub unsafe extern "C" fn ks_key_retire(
    session: *const ks_session,
    key_id: *const c_char,
    out_json: *mut *mut c_char,
) -> ks_status {
    // SAFETY: caller contract, forwarded.
    unsafe {
        session_op(session, out_json, "out_json", |s| {
            s.retire(arg(key_id, "key_id")?)
        })
    }
}

/// Unregisters a key (its records are forgotten, the audit log stays); `*out_json` gets
/// the key.
///
/// Ownership: key_id stays the caller's and is only read during the call; session is
/// borrowed for the call; the library allocates *out_json (free with ks_string_free()); the
/// caller owns it.
/// NULL: session, key_id, out_json may each be NULL only to be refused: the call returns
/// KS_USAGE and does nothing.
/// Blocks: yes: on the identity provider (HTTPS to Microsoft Graph, with its retries and
/// timeouts) and the repository.
/// Threads: any thread; handles may be shared between threads.
#[no_mangle]
pub unsafe extern "C" fn ks_key_unregister(
    session: *const ks_session,
    key_id: *const c_char,
    out_json: *mut *mut c_char,
) -> ks_status {
    // SAFETY: caller contract, forwarded.
    unsafe {
        session_op(session, out_json, "out_json", |s| {
            s.unregister(arg(key_id, "key_id")?)
        })
    }
}

/// Reissues a key. `params_json`: `{"user":"...","serial":optional,"actor":optional}`.
///
/// Ownership: key_id, params_json stay the caller's and are only read during the call;
/// session, device are borrowed for the call; the library allocates *out_json (free with
/// ks_string_free()); the caller owns it.
/// NULL: session, device, key_id, params_json, out_json may each be NULL only to be
/// refused: the call returns KS_USAGE and does nothing.
/// Blocks: yes: on the security key, including the wait for the holder's touch or PIN
/// (announced through the prompt callback; ks_device_cancel() from another thread ends it),
/// then on the identity provider (HTTPS to Microsoft Graph, with its retries and timeouts)
/// and the repository.
/// Threads: any thread; handles may be shared between threads; one operation that changes a
/// key runs on a ks_device at a time (another started meanwhile gets KS_DEVICE, reason
/// "device_busy").
#[no_mangle]
pub unsafe extern "C" fn ks_key_reissue(
    session: *const ks_session,
    device: *const ks_device,
    key_id: *const c_char,
    params_json: *const c_char,
    out_json: *mut *mut c_char,
) -> ks_status {
    // SAFETY: caller contract, forwarded.
    unsafe {
        session_op(session, out_json, "out_json", |s| {
            let d = handle(device, "device")?;
            let params: ReissueParams = json_arg(params_json, "params_json")?;
            s.reissue(&d.inner, arg(key_id, "key_id")?, &params)
        })
    }
}

/// Signs in with the key's passkeys (user verified with `pin`); `*out_json` gets an
/// array of `{"passkey_template","method_id","credential_id","sign_count"}`.
///
/// Ownership: key_id, pin stay the caller's and are only read during the call; session,
/// device are borrowed for the call; the library allocates *out_json (free with
/// ks_string_free()); the caller owns it.
/// NULL: session, device, key_id, pin, out_json may each be NULL only to be refused: the
/// call returns KS_USAGE and does nothing.
/// Blocks: yes: on the security key, including the wait for the holder's touch or PIN
/// (announced through the prompt callback; ks_device_cancel() from another thread ends it),
/// then on the identity provider (HTTPS to Microsoft Graph, with its retries and timeouts)
/// and the repository.
/// Threads: any thread; handles may be shared between threads; one operation that changes a
/// key runs on a ks_device at a time (another started meanwhile gets KS_DEVICE, reason
/// "device_busy").
#[no_mangle]
pub unsafe extern "C" fn ks_key_sign_in(
    session: *const ks_session,
    device: *const ks_device,
    key_id: *const c_char,
    pin: *const c_char,
    out_json: *mut *mut c_char,
) -> ks_status {
    // SAFETY: caller contract, forwarded.
    unsafe {
        session_op(session, out_json, "out_json", |s| {
            let d = handle(device, "device")?;
            s.sign_in(&d.inner, arg(key_id, "key_id")?, arg(pin, "pin")?)
        })
    }
}

/// Starts a self-service sign-in: `*out_json` gets `{"nonce","expires_at_ms"}`. Send
/// `nonce` in the OpenID Connect authorization request; the ID token comes back carrying
/// it, and ks_key_self_issue() / ks_key_self_set_pin() take both. Good once.
///
/// Ownership: session is borrowed for the call; the library allocates *out_json (free with
/// ks_string_free()); the caller owns it.
/// NULL: session, out_json may each be NULL only to be refused: the call returns KS_USAGE
/// and does nothing.
/// Blocks: yes: on the repository (the SQLite file or the PostgreSQL server).
/// Threads: any thread; handles may be shared between threads.
#[no_mangle]
pub unsafe extern "C" fn ks_self_service_begin(
    session: *const ks_session,
    out_json: *mut *mut c_char,
) -> ks_status {
    // SAFETY: caller contract, forwarded.
    unsafe { session_op(session, out_json, "out_json", |s| s.self_service_begin()) }
}

/// Self-issuance with the holder's OIDC ID token and the `nonce` of the sign-in
/// (ks_self_service_begin()) it carries; `serial` may be NULL (the device's).
/// `*out_json` gets the key. A refusal's `reason` (ks_last_error_json()) says which
/// check failed (`nonce_missing`, `token_replayed`, `not_an_id_token`, ...).
///
/// Ownership: id_token, nonce, template_name, serial, new_pin stay the caller's and are
/// only read during the call; session, device are borrowed for the call; the library
/// allocates *out_json (free with ks_string_free()); the caller owns it.
/// NULL: session, device, id_token, nonce, template_name, new_pin, out_json may each be
/// NULL only to be refused: the call returns KS_USAGE and does nothing; serial may be NULL,
/// with the meaning given above.
/// Blocks: yes: on the security key, including the wait for the holder's touch or PIN
/// (announced through the prompt callback; ks_device_cancel() from another thread ends it),
/// then on the identity provider (HTTPS to Microsoft Graph, with its retries and timeouts)
/// and the repository.
/// Threads: any thread; handles may be shared between threads; one operation that changes a
/// key runs on a ks_device at a time (another started meanwhile gets KS_DEVICE, reason
/// "device_busy").
#[no_mangle]
pub unsafe extern "C" fn ks_key_self_issue(
    session: *const ks_session,
    device: *const ks_device,
    id_token: *const c_char,
    nonce: *const c_char,
    template_name: *const c_char,
    serial: *const c_char,
    new_pin: *const c_char,
    out_json: *mut *mut c_char,
) -> ks_status {
    // SAFETY: caller contract, forwarded.
    unsafe {
        session_op(session, out_json, "out_json", |s| {
            let d = handle(device, "device")?;
            s.self_issue(
                &d.inner,
                arg(id_token, "id_token")?,
                arg(nonce, "nonce")?,
                arg(template_name, "template_name")?,
                opt_arg(serial, "serial")?,
                arg(new_pin, "new_pin")?,
            )
        })
    }
}

/// Self-service PIN set with the holder's OIDC ID token and the `nonce` of the sign-in
/// (ks_self_service_begin()) it carries; `*out_json` gets the key.
///
/// Ownership: key_id, id_token, nonce, new_pin stay the caller's and are only read during
/// the call; session, device are borrowed for the call; the library allocates *out_json
/// (free with ks_string_free()); the caller owns it.
/// NULL: session, device, key_id, id_token, nonce, new_pin, out_json may each be NULL only
/// to be refused: the call returns KS_USAGE and does nothing.
/// Blocks: yes: on the security key, including the wait for the holder's touch or PIN
/// (announced through the prompt callback; ks_device_cancel() from another thread ends it),
/// then on the identity provider (HTTPS to Microsoft Graph, with its retries and timeouts)
/// and the repository.
/// Threads: any thread; handles may be shared between threads; one operation that changes a
/// key runs on a ks_device at a time (another started meanwhile gets KS_DEVICE, reason
/// "device_busy").
#[no_mangle]
pub unsafe extern "C" fn ks_key_self_set_pin(
    session: *const ks_session,
    device: *const ks_device,
    key_id: *const c_char,
    id_token: *const c_char,
    nonce: *const c_char,
    new_pin: *const c_char,
    out_json: *mut *mut c_char,
) -> ks_status {
    // SAFETY: caller contract, forwarded.
    unsafe {
        session_op(session, out_json, "out_json", |s| {
            let d = handle(device, "device")?;
            s.self_set_pin(
                &d.inner,
                arg(key_id, "key_id")?,
                arg(id_token, "id_token")?,
                arg(nonce, "nonce")?,
                arg(new_pin, "new_pin")?,
            )
        })
    }
}

/// Everything recorded about a key: `{"key","passkeys","pending","audit"}` (the same
/// object as the CLI's `show --json` and Python's `Session.key()`).
///
/// Ownership: key_id stays the caller's and is only read during the call; session is
/// borrowed for the call; the library allocates *out_json (free with ks_string_free()); the
/// caller owns it.
/// NULL: session, key_id, out_json may each be NULL only to be refused: the call returns
/// KS_USAGE and does nothing.
/// Blocks: yes: on the repository (the SQLite file or the PostgreSQL server).
/// Threads: any thread; handles may be shared between threads.
#[no_mangle]
pub unsafe extern "C" fn ks_key_get(
    session: *const ks_session,
    key_id: *const c_char,
    out_json: *mut *mut c_char,
) -> ks_status {
    // SAFETY: caller contract, forwarded.
    unsafe {
        session_op(session, out_json, "out_json", |s| {
            s.key(arg(key_id, "key_id")?)
        })
    }
}

/// Lists keys. `filter_json`: NULL (all keys) or `{"user":..,"state":..,"serial":..}`
/// (each optional; all given must match). `*out_json` gets an array of keys.
///
/// Ownership: filter_json stays the caller's and is only read during the call; session is
/// borrowed for the call; the library allocates *out_json (free with ks_string_free()); the
/// caller owns it.
/// NULL: session, out_json may each be NULL only to be refused: the call returns KS_USAGE
/// and does nothing; filter_json may be NULL, with the meaning given above.
/// Blocks: yes: on the repository (the SQLite file or the PostgreSQL server).
/// Threads: any thread; handles may be shared between threads.
#[no_mangle]
pub unsafe extern "C" fn ks_key_list(
    session: *const ks_session,
    filter_json: *const c_char,
    out_json: *mut *mut c_char,
) -> ks_status {
    // SAFETY: caller contract, forwarded.
    unsafe {
        session_op(session, out_json, "out_json", |s| {
            let filter: Option<KeyFilter> = opt_json_arg(filter_json, "filter_json")?;
            s.list_keys(&filter.unwrap_or_default())
        })
    }
}

/// One page of every key, sorted by id: the keys after key id `after` (NULL: from the
/// first), at most `limit` (1 to 1000). `*page_json` gets
/// `{"keys":[...],"next_after":"<key id>"|null}`; pass `next_after` to get the next page
/// until it is null.
///
/// Ownership: after stays the caller's and is only read during the call; session is
/// borrowed for the call; the library allocates *page_json (free with ks_string_free());
/// the caller owns it.
/// NULL: session, page_json may each be NULL only to be refused: the call returns KS_USAGE
/// and does nothing; after may be NULL, with the meaning given above.
/// Blocks: yes: on the repository (the SQLite file or the PostgreSQL server).
/// Threads: any thread; handles may be shared between threads.
#[no_mangle]
pub unsafe extern "C" fn ks_key_list_page(
    session: *const ks_session,
    after: *const c_char,
    limit: u32,
    page_json: *mut *mut c_char,
) -> ks_status {
    // SAFETY: caller contract, forwarded.
    unsafe {
        session_op(session, page_json, "page_json", |s| {
            s.list_keys_page(opt_arg(after, "after")?, limit)
        })
    }
}

/// The audit log of a key, oldest first (JSON array).
///
/// Ownership: key_id stays the caller's and is only read during the call; session is
/// borrowed for the call; the library allocates *out_json (free with ks_string_free()); the
/// caller owns it.
/// NULL: session, key_id, out_json may each be NULL only to be refused: the call returns
/// KS_USAGE and does nothing.
/// Blocks: yes: on the repository (the SQLite file or the PostgreSQL server).
/// Threads: any thread; handles may be shared between threads.
#[no_mangle]
pub unsafe extern "C" fn ks_key_audit(
    session: *const ks_session,
    key_id: *const c_char,
    out_json: *mut *mut c_char,
) -> ks_status {
    // SAFETY: caller contract, forwarded.
    unsafe {
        session_op(session, out_json, "out_json", |s| {
            s.audit(arg(key_id, "key_id")?)
        })
    }
}
