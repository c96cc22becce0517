//! Every passkey a user holds, keys needing reissue, keys not used for a while, and the
//! SMS/voice retirement readiness report (issue 19 items 4–6, issue 13 item 12).

use std::ffi::c_char;

use crate::{arg, ks_session, ks_status, opt_arg, session_op};

/// Every passkey `user` (object id or UPN) holds at every IdP connection, beside the keys
/// keysmith issued them. `*out_json` gets `{"user","user_id","upn","passkeys":[{
/// "connection","method_id","display_name","aaguid","model","passkey_type","kind",
/// "created","last_used","key_id","passkey_template","key_state"}],"keys":[...],
/// "failed":[{"connection","error"}]}`; `kind` is `security_key`,
/// `microsoft_authenticator`, `windows_hello`, `synced_provider` or `unknown`, and
/// `key_id` is null for a passkey keysmith did not issue.
///
/// Ownership: user stays the caller's and is only read during the call; session is
/// borrowed for the call; the library allocates *out_json (free with ks_string_free());
/// the caller owns it.
/// NULL: session, user, out_json may each be NULL only to be refused: the call returns
/// KS_USAGE and does nothing.
/// Blocks: yes: on the identity provider (HTTPS to Microsoft Graph, with its retries and
/// timeouts) and the repository.
/// Threads: any thread; handles may be shared between threads.
#[no_mangle]
pub unsafe extern "C" fn ks_user_passkeys(
    session: *const ks_session,
    user: *const c_char,
    out_json: *mut *mut c_char,
) -> ks_status {
    // SAFETY: caller contract, forwarded.
    unsafe {
        session_op(session, out_json, "out_json", |s| {
            s.user_passkeys(arg(user, "user")?)
        })
    }
}

/// Keys marked as needing reissue, by key id: `*out_json` gets an array of key objects
/// with `"reason"` (`user_renamed`, `missing_at_idp`, `challenge_expired` or null).
///
/// Ownership: session is borrowed for the call; the library allocates *out_json (free with
/// ks_string_free()); the caller owns it.
/// NULL: session, out_json may each be NULL only to be refused: the call returns KS_USAGE
/// and does nothing.
/// Blocks: yes: on the repository (the SQLite file or the PostgreSQL server).
/// Threads: any thread; handles may be shared between threads.
#[no_mangle]
pub unsafe extern "C" fn ks_key_list_needs_reissue(
    session: *const ks_session,
    out_json: *mut *mut c_char,
) -> ks_status {
    // SAFETY: caller contract, forwarded.
    unsafe { session_op(session, out_json, "out_json", |s| s.keys_needing_reissue()) }
}

/// Active keys none of whose passkeys signed in during the last `days` days (1 to 36500),
/// as reconciliation last read it: `*out_json` gets an array of key objects with
/// `"last_used_ms"` (null: never reported) and `"made_ms"`.
///
/// Ownership: session is borrowed for the call; the library allocates *out_json (free with
/// ks_string_free()); the caller owns it.
/// NULL: session, out_json may each be NULL only to be refused: the call returns KS_USAGE
/// and does nothing.
/// Blocks: yes: on the repository (the SQLite file or the PostgreSQL server).
/// Threads: any thread; handles may be shared between threads.
#[no_mangle]
pub unsafe extern "C" fn ks_key_list_stale(
    session: *const ks_session,
    days: u32,
    out_json: *mut *mut c_char,
) -> ks_status {
    // SAFETY: caller contract, forwarded.
    unsafe { session_op(session, out_json, "out_json", |s| s.stale_keys(days)) }
}

/// The SMS/voice retirement readiness of the users of `group` (object id) at IdP
/// `connection`: `*out_json` gets `{"connection","group","checked","not_ready":[{"id",
/// "upn","display_name","methods"}],"guests":[...],"guest_reason","failed":[{"user_id",
/// "error"}],"issue_csv"}`; `issue_csv` is bulk issue input with the serials to fill in.
///
/// Ownership: connection, group stay the caller's and are only read during the call;
/// session is borrowed for the call; the library allocates *out_json (free with
/// ks_string_free()); the caller owns it.
/// NULL: session, out_json may each be NULL only to be refused: the call returns KS_USAGE
/// and does nothing; connection may be NULL (the first configured connection) and group
/// may be NULL (the whole directory).
/// Blocks: yes: on the identity provider (HTTPS to Microsoft Graph, with its retries and
/// timeouts).
/// Threads: any thread; handles may be shared between threads.
#[no_mangle]
pub unsafe extern "C" fn ks_user_readiness(
    session: *const ks_session,
    connection: *const c_char,
    group: *const c_char,
    out_json: *mut *mut c_char,
) -> ks_status {
    // SAFETY: caller contract, forwarded.
    unsafe {
        session_op(session, out_json, "out_json", |s| {
            s.sms_readiness(opt_arg(connection, "connection")?, opt_arg(group, "group")?)
        })
    }
}
