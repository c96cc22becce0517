//! Sessions: open and free, prompts, credential templates, IdP and directory queries,
//! the IdP journal.

use std::ffi::{c_char, c_void};

use keysmith_facade::{Prompt, Session};

use crate::{
    arg, clear_out, free_handle, guard, handle, json_cstring, json_op, ks_prompt_fn, ks_session,
    ks_status, open_handle, session_op,
};

/// Opens a session from its JSON configuration (the fields are in docs/schemas/session-config.schema.json);
/// `*out` receives the handle, freed with ks_session_free().
///
/// Ownership: config_json stays the caller's and is only read during the call; the library
/// allocates *out (free with ks_session_free()); the caller owns it.
/// NULL: config_json, out may each be NULL only to be refused: the call returns KS_USAGE
/// and does nothing.
/// Blocks: yes: it opens the repository (for PostgreSQL: connect, TLS and schema migration,
/// seconds at worst).
/// Threads: any thread; handles may be shared between threads.
#[no_mangle]
pub unsafe extern "C" fn ks_session_open(
    config_json: *const c_char,
    out: *mut *mut ks_session,
) -> ks_status {
    // SAFETY: caller contract, forwarded.
    unsafe {
        open_handle(out, || {
            let config = arg(config_json, "config_json")?;
            Ok(ks_session {
                inner: Session::open(config)?,
            })
        })
    }
}

/// Frees a session. NULL is ignored. Devices stay valid.
///
/// NULL: session may be NULL (nothing is done).
/// Pointers: `session` is NULL or a handle from ks_session_open() not freed before, and no
/// other thread is using it.
/// Blocks: no.
/// Threads: any thread, once per handle, when no other call is using the handle.
#[no_mangle]
pub unsafe extern "C" fn ks_session_free(session: *mut ks_session) {
    // SAFETY: caller contract, forwarded.
    unsafe { free_handle(session) }
}

struct PromptTarget {
    cb: unsafe extern "C" fn(*mut c_void, *const c_char),
    ctx: *mut c_void,
}

// SAFETY: the caller of ks_session_set_prompt_callback guarantees that `cb` may be called
// with `ctx` from any thread running an operation on the session (documented there).
unsafe impl Send for PromptTarget {}
// SAFETY: as above; the target is only read.
unsafe impl Sync for PromptTarget {}

impl PromptTarget {
    fn call(&self, p: &Prompt) {
        let Ok(text) = json_cstring(p) else {
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
/// Ownership: session is borrowed for the call.
/// NULL: session may be NULL only to be refused: the call returns KS_USAGE and does
/// nothing; ctx is passed back to the callbacks as given (NULL too).
/// Pointers: `cb` is NULL or a valid function; `ctx` as above.
/// Blocks: no.
/// Threads: any thread; handles may be shared between threads; the callbacks are called on
/// the calling thread, only during this call.
#[no_mangle]
pub unsafe extern "C" fn ks_session_set_prompt_callback(
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

/// Loads (or replaces) a credential template set (TOML or JSON text) into the session;
/// `*out_json` gets its summary, as ks_template_check().
///
/// Ownership: text stays the caller's and is only read during the call; session is borrowed
/// for the call; the library allocates *out_json (free with ks_string_free()); the caller
/// owns it.
/// NULL: session, text, out_json may each be NULL only to be refused: the call returns
/// KS_USAGE and does nothing.
/// Blocks: briefly: the templates are parsed and validated, nothing is fetched.
/// Threads: any thread; handles may be shared between threads.
#[no_mangle]
pub unsafe extern "C" fn ks_template_add(
    session: *const ks_session,
    text: *const c_char,
    out_json: *mut *mut c_char,
) -> ks_status {
    // SAFETY: caller contract, forwarded.
    unsafe {
        session_op(session, out_json, "out_json", |s| {
            s.add_template(arg(text, "text")?)
        })
    }
}

/// The names of the session's loaded credential templates, as a JSON array.
///
/// Ownership: session is borrowed for the call; the library allocates *out_json (free with
/// ks_string_free()); the caller owns it.
/// NULL: session, out_json may each be NULL only to be refused: the call returns KS_USAGE
/// and does nothing.
/// Blocks: no.
/// Threads: any thread; handles may be shared between threads.
#[no_mangle]
pub unsafe extern "C" fn ks_template_list(
    session: *const ks_session,
    out_json: *mut *mut c_char,
) -> ks_status {
    // SAFETY: caller contract, forwarded.
    unsafe { session_op(session, out_json, "out_json", |s| Ok(s.templates())) }
}

/// Validates a credential template set (TOML or JSON text) without a session; `*out_json`
/// gets its summary `{"name":...,"passkey_templates":[...],"connections":[...]}`.
///
/// Ownership: text stays the caller's and is only read during the call; the library
/// allocates *out_json (free with ks_string_free()); the caller owns it.
/// NULL: text, out_json may each be NULL only to be refused: the call returns KS_USAGE and
/// does nothing.
/// Blocks: no.
/// Threads: any thread; handles may be shared between threads.
#[no_mangle]
pub unsafe extern "C" fn ks_template_check(
    text: *const c_char,
    out_json: *mut *mut c_char,
) -> ks_status {
    // SAFETY: caller contract, forwarded.
    unsafe {
        json_op(out_json, "out_json", || {
            keysmith_facade::template_check(arg(text, "text")?)
        })
    }
}

/// Checks the IdP connection named `connection`; `*out_ms` gets how long it took (ms).
///
/// Ownership: connection stays the caller's and is only read during the call; session is
/// borrowed for the call.
/// NULL: session, connection, out_ms may each be NULL only to be refused: the call returns
/// KS_USAGE and does nothing.
/// Blocks: yes: on the identity provider (HTTPS to Microsoft Graph, with its retries and
/// timeouts).
/// Threads: any thread; handles may be shared between threads.
#[no_mangle]
pub unsafe extern "C" fn ks_idp_check(
    session: *const ks_session,
    connection: *const c_char,
    out_ms: *mut u64,
) -> ks_status {
    guard(|| {
        // SAFETY: caller contract.
        unsafe { clear_out(out_ms, 0, "out_ms") }?;
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
/// Ownership: connection, prefix stay the caller's and are only read during the call;
/// session is borrowed for the call; the library allocates *out_json (free with
/// ks_string_free()); the caller owns it.
/// NULL: session, connection, prefix, out_json may each be NULL only to be refused: the
/// call returns KS_USAGE and does nothing.
/// Blocks: yes: on the identity provider (HTTPS to Microsoft Graph, with its retries and
/// timeouts).
/// Threads: any thread; handles may be shared between threads.
#[no_mangle]
pub unsafe extern "C" fn ks_user_search(
    session: *const ks_session,
    connection: *const c_char,
    prefix: *const c_char,
    top: u32,
    out_json: *mut *mut c_char,
) -> ks_status {
    // SAFETY: caller contract, forwarded.
    unsafe {
        session_op(session, out_json, "out_json", |s| {
            s.search_users(arg(connection, "connection")?, arg(prefix, "prefix")?, top)
        })
    }
}

/// Replays the IdP side-effect journal; `*out_json` gets an array of
/// `{"id","key_id","operation","outcome"}`.
///
/// Ownership: session is borrowed for the call; the library allocates *out_json (free with
/// ks_string_free()); the caller owns it.
/// NULL: session, out_json may each be NULL only to be refused: the call returns KS_USAGE
/// and does nothing.
/// Blocks: yes: on the identity provider (HTTPS to Microsoft Graph, with its retries and
/// timeouts) and the repository.
/// Threads: any thread; handles may be shared between threads.
#[no_mangle]
pub unsafe extern "C" fn ks_journal_replay(
    session: *const ks_session,
    out_json: *mut *mut c_char,
) -> ks_status {
    // SAFETY: caller contract, forwarded.
    unsafe { session_op(session, out_json, "out_json", Session::replay_journal) }
}

/// Checks the whole audit log (hash chain and MACs under the session's PIN key);
/// `*out_json` gets `{"ok","records","unchained","first_bad_id","reason"}`: `ok` false
/// and `first_bad_id` name the first record changed, removed or inserted outside keysmith.
/// The call itself succeeds (`KS_OK`) whether or not the log verifies.
///
/// Ownership: session is borrowed for the call; the library allocates *out_json (free with
/// ks_string_free()); the caller owns it.
/// NULL: session, out_json may each be NULL only to be refused: the call returns KS_USAGE
/// and does nothing.
/// Blocks: yes: on the repository (the SQLite file or the PostgreSQL server), reading the
/// whole audit log.
/// Threads: any thread; handles may be shared between threads.
#[no_mangle]
pub unsafe extern "C" fn ks_audit_verify(
    session: *const ks_session,
    out_json: *mut *mut c_char,
) -> ks_status {
    // SAFETY: caller contract, forwarded.
    unsafe { session_op(session, out_json, "out_json", Session::audit_verify) }
}
