//! Jobs over many keys: reconciliation, bulk jobs, the expiring registrations.

use std::ffi::{c_char, c_void};

use keysmith_facade::{BulkProgress, BulkRow, BulkRunOptions, ExpiringCursor, ReconcileRequest};

use crate::{
    arg, json_cstring, ks_bulk_device_fn, ks_bulk_progress_fn, ks_session, ks_status, opt_arg,
    opt_json_arg, session_op,
};

/// Reconciles the repository with every IdP connection. `request_json`: NULL (every
/// user holding a key, report only) or `{"users":["kim@contoso.com",...],"fix":false,
/// "delete_unknown":false}` (each optional; empty `users`: every user holding a key;
/// `delete_unknown` needs `fix`). `*report_json` gets `{"users_checked","clean","fixed",
/// "errors","findings":[{"user","user_id","key_id","passkey_template","idp_connection",
/// "method_id","credential_id","kind","fixed","error","blocked_by"}]}`; IdP failures for a
/// user are findings (`kind` `check_failed`), not a failed call; `blocked_by` is set for
/// `kind` `would_fail_at_sign_in` (a passkey the IdP's policy now blocks at sign-in).
///
/// Ownership: request_json stays the caller's and is only read during the call; session is
/// borrowed for the call; the library allocates *report_json (free with ks_string_free());
/// the caller owns it.
/// NULL: session, report_json may each be NULL only to be refused: the call returns
/// KS_USAGE and does nothing; request_json may be NULL, with the meaning given above.
/// Blocks: yes: on the identity provider (HTTPS to Microsoft Graph, with its retries and
/// timeouts) and the repository.
/// Threads: any thread; handles may be shared between threads.
#[no_mangle]
pub unsafe extern "C" fn ks_drift_reconcile(
    session: *const ks_session,
    request_json: *const c_char,
    report_json: *mut *mut c_char,
) -> ks_status {
    // SAFETY: caller contract, forwarded.
    unsafe {
        session_op(session, report_json, "report_json", |s| {
            let r: ReconcileRequest =
                opt_json_arg(request_json, "request_json")?.unwrap_or_default();
            s.reconcile(&r.users, r.fix, r.delete_unknown)
        })
    }
}

/// Records a bulk job of `kind` (`issue`: CSV columns `user,serial[,template]`; `revoke`:
/// `key_id` or `user`, optional `force`; `reconcile`: `user`) from the CSV text `csv`
/// (header row first; validated whole, errors name line and column). The same text for
/// the same kind gives the job already recorded while it is unfinished (a row not run
/// yet); once every row has run, the same text makes a new job (a finished job runs
/// again only by its id, with ks_bulk_run()). `*job_json` gets
/// `{"job_id","kind","source_hash","actor","total","created_ms","finished_ms"}`.
///
/// Ownership: kind, csv stay the caller's and are only read during the call; session is
/// borrowed for the call; the library allocates *job_json (free with ks_string_free()); the
/// caller owns it.
/// NULL: session, kind, csv, job_json may each be NULL only to be refused: the call returns
/// KS_USAGE and does nothing.
/// Blocks: yes: on the repository (the SQLite file or the PostgreSQL server).
/// Threads: any thread; handles may be shared between threads.
#[no_mangle]
pub unsafe extern "C" fn ks_bulk_create(
    session: *const ks_session,
    kind: *const c_char,
    csv: *const c_char,
    job_json: *mut *mut c_char,
) -> ks_status {
    // SAFETY: caller contract, forwarded.
    unsafe {
        session_op(session, job_json, "job_json", |s| {
            s.bulk_create(arg(kind, "kind")?, arg(csv, "csv")?)
        })
    }
}

/// Runs (or resumes) bulk job `job_id`; returns when every row not done yet has run
/// (several runners of one job share its rows: each row is claimed by one of them).
/// `options_json`: NULL (defaults) or `{"workers":1,"rate":null,"template":null,
/// "retry_failed":true,"fix":false,"delete_unknown":false,"keep_items":true}` (each
/// optional; `template`: the loaded credential template for issue rows without one;
/// `keep_items` false leaves the summary's `items` empty, so that a caller taking the
/// rows from `progress_cb` holds no memory per row). `device_cb` supplies the
/// device spec for each issue row (see ks_bulk_device_fn; NULL fails issue rows);
/// `progress_cb` (NULL: none) is told after each row; both get `ctx`. Failed rows do not
/// fail the call: `*summary_json` gets `{"job_id","kind","total","done","failed",
/// "skipped","settled","run_elsewhere","items":[{"line","status","outcome"}]}`.
///
/// Ownership: options_json stays the caller's and is only read during the call; session is
/// borrowed for the call; the library allocates *summary_json (free with ks_string_free());
/// the caller owns it.
/// NULL: session, summary_json may each be NULL only to be refused: the call returns
/// KS_USAGE and does nothing; options_json may be NULL, with the meaning given above; ctx
/// is passed back to the callbacks as given (NULL too).
/// Pointers: the callbacks are NULL or valid functions that may be called with `ctx` during
/// this call.
/// Blocks: yes: until every row not done yet has run (each row as the single-key call of
/// its kind: on the security key, the identity provider and the repository).
/// Threads: any thread; device_cb and progress_cb are called on the calling thread, one
/// call at a time, only during this call.
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
    // SAFETY: caller contract, forwarded.
    unsafe {
        session_op(session, summary_json, "summary_json", |s| {
            let options: BulkRunOptions =
                opt_json_arg(options_json, "options_json")?.unwrap_or_default();
            s.bulk_run(
                job_id,
                &options,
                &mut |row| bulk_device(device_cb, ctx, row),
                &mut |p| bulk_progress(progress_cb, ctx, p),
            )
        })
    }
}

/// Asks `cb` for the device spec of a bulk row (see ks_bulk_device_fn).
///
/// # Safety
/// `cb` is NULL or a valid function that may be called with `ctx`.
unsafe fn bulk_device(
    cb: ks_bulk_device_fn,
    ctx: *mut c_void,
    row: &BulkRow,
) -> Result<String, String> {
    let Some(cb) = cb else {
        return Err("no device callback was given".into());
    };
    let text = json_cstring(row).map_err(|e| e.message)?;
    // SAFETY: `cb` is a valid function by the caller's contract; the row string lives for
    // the call.
    let spec = unsafe { cb(ctx, text.as_ptr()) };
    // SAFETY: by the callback's contract the result is NULL or a NUL-terminated string
    // valid until the callback is called again; it is copied here.
    let spec = unsafe { opt_arg(spec, "device callback result") }
        .map_err(|e| e.message)?
        .ok_or_else(|| "the device callback gave no device (NULL)".to_owned())?;
    Ok(spec.to_owned())
}

/// Tells `cb` (if any) a bulk job's progress (see ks_bulk_progress_fn).
///
/// # Safety
/// `cb` is NULL or a valid function that may be called with `ctx`.
unsafe fn bulk_progress(cb: ks_bulk_progress_fn, ctx: *mut c_void, p: &BulkProgress) {
    let Some(cb) = cb else { return };
    let Ok(text) = json_cstring(p) else { return };
    // SAFETY: `cb` is a valid function by the caller's contract; the string lives for the
    // call.
    unsafe { cb(ctx, text.as_ptr()) };
}

/// One page of the pending registrations whose challenge expires within `within_ms`
/// from now (expired ones included), soonest first: after the cursor `after_json` (NULL:
/// from the first; else the `next_after` object of the previous page), at most `limit`
/// (1 to 1000). `*page_json` gets `{"pending":[{"key_id","passkey_template","user_id",
/// "challenge_expires_ms"}],"next_after":{...}|null}`.
///
/// Ownership: after_json stays the caller's and is only read during the call; session is
/// borrowed for the call; the library allocates *page_json (free with ks_string_free());
/// the caller owns it.
/// NULL: session, page_json may each be NULL only to be refused: the call returns KS_USAGE
/// and does nothing; after_json may be NULL, with the meaning given above.
/// Blocks: yes: on the repository (the SQLite file or the PostgreSQL server).
/// Threads: any thread; handles may be shared between threads.
#[no_mangle]
pub unsafe extern "C" fn ks_pending_list_expiring_page(
    session: *const ks_session,
    within_ms: u64,
    after_json: *const c_char,
    limit: u32,
    page_json: *mut *mut c_char,
) -> ks_status {
    // SAFETY: caller contract, forwarded.
    unsafe {
        session_op(session, page_json, "page_json", |s| {
            let after: Option<ExpiringCursor> = opt_json_arg(after_json, "after_json")?;
            s.list_expiring_page(within_ms, after.as_ref(), limit)
        })
    }
}
