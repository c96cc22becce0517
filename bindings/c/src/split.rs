//! The split deployment's two halves (`keysmith_facade::split`, `docs/split-embedding.md`):
//! `ks_device_half_*` (where the key is attached) and `ks_server_half_*` (beside the
//! repository and the IdP), bytes in and bytes out, and `ks_wire_describe`.
//!
//! Messages are byte buffers: inputs are `(const uint8_t *, size_t)` and stay the
//! caller's; outputs are written to `uint8_t **out, size_t *out_len` and freed with
//! [`ks_bytes_free`]. A message a half refuses is `KS_USAGE` with reason `split_refused`
//! and the protocol's stable code as `"refusal_code"` in [`crate::ks_last_error_json`].

use std::ffi::{c_char, c_void};

use keysmith_facade::split::{describe, DeviceHalf, HolderPrompts, ServerHalf};
use keysmith_facade::{FacadeError, Prompt};
use zeroize::{Zeroize, Zeroizing};

use crate::{
    arg, clear_out, free_handle, guard, handle, json_cstring, json_op, ks_device, ks_prompt_fn,
    ks_session, ks_status, open_handle, opt_arg,
};

/// The device half of one split session (opaque).
pub struct ks_device_half {
    inner: DeviceHalf,
}

/// The server half over a session's engine (opaque).
pub struct ks_server_half {
    inner: ServerHalf,
}

/// Asks the holder for a PIN during ks_device_half_run_job(): `kind` is 0 for a new PIN
/// (at least `min_len` characters; `confirm` non-zero: ask twice) and 1 for the holder's
/// current PIN. Write the PIN as UTF-8 (no NUL needed) into `buf` (`buf_len` bytes) and
/// return its length; return a negative value to cancel. The library zeroizes `buf` after
/// use. `user` is what was given to ks_device_half_run_job().
pub type ks_holder_pin_fn = Option<
    unsafe extern "C" fn(
        user: *mut c_void,
        kind: i32,
        min_len: u32,
        confirm: i32,
        buf: *mut c_char,
        buf_len: usize,
    ) -> i64,
>;

/// The largest PIN a ks_holder_pin_fn may write (CTAP PINs are at most 63 bytes).
const PIN_BUF: usize = 256;

/// Writes `bytes` to `*out` / `*out_len` (checked and cleared first).
///
/// # Safety
/// `out` and `out_len` are NULL or writable.
unsafe fn bytes_op(
    out: *mut *mut u8,
    out_len: *mut usize,
    f: impl FnOnce() -> Result<Vec<u8>, FacadeError>,
) -> ks_status {
    guard(|| {
        // SAFETY: caller contract.
        unsafe {
            clear_out(out, std::ptr::null_mut(), "out")?;
            clear_out(out_len, 0, "out_len")?;
        }
        let b = f()?.into_boxed_slice();
        let len = b.len();
        let p = Box::into_raw(b).cast::<u8>();
        // SAFETY: both checked non-null above and writable by contract.
        unsafe {
            out.write(p);
            out_len.write(len);
        }
        Ok(())
    })
}

/// Borrows an input message.
///
/// # Safety
/// `p` is NULL or valid for reads of `len` bytes.
unsafe fn msg<'a>(p: *const u8, len: usize, name: &str) -> Result<&'a [u8], FacadeError> {
    if p.is_null() {
        return Err(FacadeError::usage(format!("{name}: NULL pointer")));
    }
    // SAFETY: non-null and readable for `len` bytes by contract.
    Ok(unsafe { std::slice::from_raw_parts(p, len) })
}

/// Writes a library-allocated C string to `*out` (checked and cleared first).
///
/// # Safety
/// `out` is NULL or writable.
unsafe fn string_op(
    out: *mut *mut c_char,
    f: impl FnOnce() -> Result<String, FacadeError>,
) -> ks_status {
    guard(|| {
        // SAFETY: caller contract.
        unsafe { clear_out(out, std::ptr::null_mut(), "out") }?;
        let s = std::ffi::CString::new(f()?)
            .map_err(|_| FacadeError::internal("result contains a NUL byte"))?;
        // SAFETY: checked non-null above.
        unsafe { out.write(s.into_raw()) };
        Ok(())
    })
}

/// Frees a byte buffer the library returned (`len` as returned with it). NULL is ignored.
///
/// NULL: p may be NULL (nothing is done).
/// Pointers: `p` is NULL or a buffer from this library, with its length, not freed before.
/// Blocks: no.
/// Threads: any thread (not only the one that got the buffer), once per buffer.
#[no_mangle]
pub unsafe extern "C" fn ks_bytes_free(p: *mut u8, len: usize) {
    if p.is_null() {
        return;
    }
    // SAFETY: by contract it came from Box<[u8]>::into_raw with this length.
    drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(p, len)) });
}

/// Starts a device half from its JSON configuration (`agent_key_pem` PKCS#8 or absent to
/// generate one, `server_keys` SPKI PEM or SEC1 hex, `capabilities`, `host`,
/// `agent_version`; docs/split-embedding.md); free it with
/// ks_device_half_free(). Send ks_device_half_hello() first.
///
/// Ownership: config_json stays the caller's and is only read during the call; the library
/// allocates *out (free with ks_device_half_free()); the caller owns it.
/// NULL: config_json, out may each be NULL only to be refused: the call returns KS_USAGE
/// and does nothing.
/// Blocks: no.
/// Threads: any thread; handles may be shared between threads.
#[no_mangle]
pub unsafe extern "C" fn ks_device_half_open(
    config_json: *const c_char,
    out: *mut *mut ks_device_half,
) -> ks_status {
    // SAFETY: caller contract, forwarded.
    unsafe {
        open_handle(out, || {
            Ok(ks_device_half {
                inner: DeviceHalf::new(arg(config_json, "config_json")?)?,
            })
        })
    }
}

/// Frees a device half (its session key and any remembered PIN are zeroized). NULL is
/// ignored.
///
/// NULL: half may be NULL (nothing is done).
/// Pointers: `half` is NULL or a handle from ks_device_half_open() not freed before and not
/// in use.
/// Blocks: no.
/// Threads: any thread, once per handle, when no other call is using the handle.
#[no_mangle]
pub unsafe extern "C" fn ks_device_half_free(half: *mut ks_device_half) {
    // SAFETY: caller contract, forwarded.
    unsafe { free_handle(half) }
}

/// The `AgentHello` to send first.
///
/// Ownership: half is borrowed for the call; the library allocates *out (free with
/// ks_bytes_free() and its length); the caller owns it.
/// NULL: half, out, out_len may each be NULL only to be refused: the call returns KS_USAGE
/// and does nothing.
/// Blocks: no.
/// Threads: any thread; handles may be shared between threads.
#[no_mangle]
pub unsafe extern "C" fn ks_device_half_hello(
    half: *const ks_device_half,
    out: *mut *mut u8,
    out_len: *mut usize,
) -> ks_status {
    // SAFETY: caller contract, forwarded.
    unsafe { bytes_op(out, out_len, || Ok(handle(half, "half")?.inner.hello())) }
}

/// `{"agent_id": hex, "agent_public_key": SEC1 hex}`: what the server enrols.
///
/// Ownership: half is borrowed for the call; the library allocates *out_json (free with
/// ks_string_free()); the caller owns it.
/// NULL: half, out_json may each be NULL only to be refused: the call returns KS_USAGE and
/// does nothing.
/// Blocks: no.
/// Threads: any thread; handles may be shared between threads.
#[no_mangle]
pub unsafe extern "C" fn ks_device_half_agent(
    half: *const ks_device_half,
    out_json: *mut *mut c_char,
) -> ks_status {
    // SAFETY: caller contract, forwarded.
    unsafe {
        json_op(out_json, "out_json", || {
            let h = &handle(half, "half")?.inner;
            Ok(serde_json::json!({
                "agent_id": h.agent_id(),
                "agent_public_key": h.agent_public_key(),
            }))
        })
    }
}

/// The agent key ks_device_half_open() generated (no `agent_key_pem` in the config), as
/// PKCS#8 PEM, once: `*out_pem` is NULL when there is none (given, or taken before). Keep
/// it: the agent id is its key id. ks_string_free() zeroizes it.
///
/// Ownership: half is borrowed for the call; the library allocates *out_pem (free with
/// ks_string_free()); the caller owns it.
/// NULL: half, out_pem may each be NULL only to be refused: the call returns KS_USAGE and
/// does nothing.
/// Blocks: no.
/// Threads: any thread; handles may be shared between threads.
#[no_mangle]
pub unsafe extern "C" fn ks_device_half_key_take(
    half: *const ks_device_half,
    out_pem: *mut *mut c_char,
) -> ks_status {
    // SAFETY: caller contract, forwarded.
    unsafe {
        key_take(out_pem, || {
            Ok(handle(half, "half")?.inner.take_generated_key_pem())
        })
    }
}

/// Writes a taken key (or NULL) to `*out`.
///
/// # Safety
/// `out` is NULL or writable.
unsafe fn key_take(
    out: *mut *mut c_char,
    f: impl FnOnce() -> Result<Option<Zeroizing<String>>, FacadeError>,
) -> ks_status {
    guard(|| {
        // SAFETY: caller contract.
        unsafe { clear_out(out, std::ptr::null_mut(), "out_pem") }?;
        if let Some(pem) = f()? {
            let c = std::ffi::CString::new(pem.as_bytes())
                .map_err(|_| FacadeError::internal("key contains a NUL byte"))?;
            // SAFETY: checked non-null above.
            unsafe { out.write(c.into_raw()) };
        }
        Ok(())
    })
}

/// A `DeviceReport` of `device`; `serial_claim` NULL: the device's own serial if known.
///
/// Ownership: serial_claim stays the caller's and is only read during the call; half,
/// device are borrowed for the call; the library allocates *out (free with ks_bytes_free()
/// and its length); the caller owns it.
/// NULL: half, device, out, out_len may each be NULL only to be refused: the call returns
/// KS_USAGE and does nothing; serial_claim may be NULL, with the meaning given above.
/// Blocks: yes: on the security key (getInfo, no touch).
/// Threads: any thread; handles may be shared between threads.
#[no_mangle]
pub unsafe extern "C" fn ks_device_half_report(
    half: *const ks_device_half,
    device: *const ks_device,
    serial_claim: *const c_char,
    out: *mut *mut u8,
    out_len: *mut usize,
) -> ks_status {
    // SAFETY: caller contract, forwarded.
    unsafe {
        bytes_op(out, out_len, || {
            let h = handle(half, "half")?;
            let d = handle(device, "device")?;
            let serial = opt_arg(serial_claim, "serial_claim")?.map(str::to_owned);
            h.inner.report(&d.inner, serial)
        })
    }
}

/// A `Request`: `{"operation":"work"|"activate"|"self_issue"|"verify"|"reset",
/// "template":optional,"key_id":optional}`.
///
/// Ownership: request_json stays the caller's and is only read during the call; half is
/// borrowed for the call; the library allocates *out (free with ks_bytes_free() and its
/// length); the caller owns it.
/// NULL: half, request_json, out, out_len may each be NULL only to be refused: the call
/// returns KS_USAGE and does nothing.
/// Blocks: no.
/// Threads: any thread; handles may be shared between threads.
#[no_mangle]
pub unsafe extern "C" fn ks_device_half_request(
    half: *const ks_device_half,
    request_json: *const c_char,
    out: *mut *mut u8,
    out_len: *mut usize,
) -> ks_status {
    // SAFETY: caller contract, forwarded.
    unsafe {
        bytes_op(out, out_len, || {
            handle(half, "half")?
                .inner
                .request(arg(request_json, "request_json")?)
        })
    }
}

/// A `Ready` poll.
///
/// Ownership: half is borrowed for the call; the library allocates *out (free with
/// ks_bytes_free() and its length); the caller owns it.
/// NULL: half, out, out_len may each be NULL only to be refused: the call returns KS_USAGE
/// and does nothing.
/// Blocks: no.
/// Threads: any thread; handles may be shared between threads.
#[no_mangle]
pub unsafe extern "C" fn ks_device_half_ready(
    half: *const ks_device_half,
    out: *mut *mut u8,
    out_len: *mut usize,
) -> ks_status {
    // SAFETY: caller contract, forwarded.
    unsafe { bytes_op(out, out_len, || handle(half, "half")?.inner.ready()) }
}

/// A `HolderAuth` with the holder's ID token (the caller's string; wipe it after).
///
/// Ownership: id_token stays the caller's and is only read during the call; half is
/// borrowed for the call; the library allocates *out (free with ks_bytes_free() and its
/// length); the caller owns it.
/// NULL: half, id_token, out, out_len may each be NULL only to be refused: the call returns
/// KS_USAGE and does nothing.
/// Blocks: no.
/// Threads: any thread; handles may be shared between threads.
#[no_mangle]
pub unsafe extern "C" fn ks_device_half_holder_auth(
    half: *const ks_device_half,
    id_token: *const c_char,
    out: *mut *mut u8,
    out_len: *mut usize,
) -> ks_status {
    // SAFETY: caller contract, forwarded.
    unsafe {
        bytes_op(out, out_len, || {
            handle(half, "half")?
                .inner
                .holder_auth(arg(id_token, "id_token")?)
        })
    }
}

/// The answer to a `holder_graph` event (delegated registration: the caller made the Graph
/// call with the holder's delegated token), as JSON `{"op","status","body","error"?,
/// "request_id"?}` (`status` 0 with `error` when no answer came); `*out` gets the signed
/// `HolderGraphResult` to send. The holder's token never goes into it.
///
/// Ownership: result_json stays the caller's and is only read during the call; half is
/// borrowed for the call; the library allocates *out (free with ks_bytes_free() and its
/// length); the caller owns it.
/// NULL: half, result_json, out, out_len may each be NULL only to be refused: the call
/// returns KS_USAGE and does nothing.
/// Blocks: no.
/// Threads: any thread; handles may be shared between threads.
#[no_mangle]
pub unsafe extern "C" fn ks_device_half_holder_graph_result(
    half: *const ks_device_half,
    result_json: *const c_char,
    out: *mut *mut u8,
    out_len: *mut usize,
) -> ks_status {
    // SAFETY: caller contract, forwarded.
    unsafe {
        bytes_op(out, out_len, || {
            handle(half, "half")?
                .inner
                .holder_graph_result(arg(result_json, "result_json")?)
        })
    }
}

/// Takes a server message received at monotonic `now_ms`; `*out_event_json` gets the
/// event: `{"event":"established"}`, `{"event":"need_holder_auth","issuer","client_id",
/// "scopes","nonce","login_hint","max_age_s","session_code"}`, `{"event":"job",
/// "operation","steps"}` (run it with ks_device_half_run_job()), `{"event":
/// "job_refused","reason","reply":hex}`, `{"event":"job_ack","key_id","state",
/// "needs_reissue","registered"}`, `{"event":"refused","code","reason",...}`,
/// `{"event":"wait","retry_ms"}`, `{"event":"done",...}`, `{"event":"retransmission",
/// "reply":hex|null}`, `{"event":"holder_graph","op","method","path","body"}` (answer with
/// ks_device_half_holder_graph_result()).
///
/// Ownership: message stays the caller's and is only read during the call; half is borrowed
/// for the call; the library allocates *out_event_json (free with ks_string_free()); the
/// caller owns it.
/// NULL: half, message, out_event_json may each be NULL only to be refused: the call
/// returns KS_USAGE and does nothing.
/// Blocks: no.
/// Threads: any thread; handles may be shared between threads.
#[no_mangle]
pub unsafe extern "C" fn ks_device_half_receive(
    half: *const ks_device_half,
    message: *const u8,
    message_len: usize,
    now_ms: u64,
    out_event_json: *mut *mut c_char,
) -> ks_status {
    // SAFETY: caller contract, forwarded.
    unsafe {
        json_op(out_event_json, "out_event_json", || {
            let h = handle(half, "half")?;
            h.inner
                .receive(msg(message, message_len, "message")?, now_ms)
        })
    }
}

struct CPrompts {
    pin: ks_holder_pin_fn,
    prompt: ks_prompt_fn,
    user: *mut c_void,
}

impl CPrompts {
    fn ask(&self, kind: i32, min_len: u32, confirm: bool) -> Option<Zeroizing<String>> {
        let cb = self.pin?;
        let mut buf = Zeroizing::new(vec![0u8; PIN_BUF]);
        // SAFETY: `cb` is valid by run_job's contract; `buf` is writable for PIN_BUF bytes
        // and outlives the call.
        let n = unsafe {
            cb(
                self.user,
                kind,
                min_len,
                i32::from(confirm),
                buf.as_mut_ptr().cast(),
                PIN_BUF,
            )
        };
        let n = usize::try_from(n).ok().filter(|n| *n <= PIN_BUF)?;
        let pin = std::str::from_utf8(buf.get(..n)?).ok()?.to_owned();
        buf.zeroize();
        Some(Zeroizing::new(pin))
    }
}

impl HolderPrompts for CPrompts {
    fn new_pin(&mut self, min_len: u32, confirm: bool) -> Option<Zeroizing<String>> {
        self.ask(0, min_len, confirm)
    }
    fn holder_pin(&mut self) -> Option<Zeroizing<String>> {
        self.ask(1, 0, false)
    }
    fn prompt(&mut self, prompt: &Prompt) {
        let (Some(cb), Ok(text)) = (self.prompt, json_cstring(prompt)) else {
            return;
        };
        // SAFETY: `cb` is valid by run_job's contract; the string lives for the call.
        unsafe { cb(self.user, text.as_ptr()) };
    }
}

/// Runs the job ks_device_half_receive() accepted on `device`, at monotonic `now_ms`:
/// `pin_cb` gives the holder's PINs (NULL: no holder here, a job needing one fails),
/// `prompt_cb` receives prompts as JSON (NULL: none); both get `user` and are called on
/// this thread. `*out` gets the `JobResult` (or `Abort`) to send.
///
/// Ownership: half, device are borrowed for the call; the library allocates *out (free with
/// ks_bytes_free() and its length); the caller owns it.
/// NULL: half, device, out, out_len may each be NULL only to be refused: the call returns
/// KS_USAGE and does nothing; user is passed back to the callbacks as given (NULL too).
/// Pointers: the callbacks NULL or valid functions.
/// Blocks: yes: on the security key, including the wait for the holder's touch
/// (ks_device_cancel() from another thread ends it); no network.
/// Threads: any thread; handles may be shared between threads; the callbacks are called on
/// the calling thread, only during this call.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn ks_device_half_run_job(
    half: *const ks_device_half,
    device: *const ks_device,
    now_ms: u64,
    pin_cb: ks_holder_pin_fn,
    prompt_cb: ks_prompt_fn,
    user: *mut c_void,
    out: *mut *mut u8,
    out_len: *mut usize,
) -> ks_status {
    // SAFETY: caller contract, forwarded.
    unsafe {
        bytes_op(out, out_len, || {
            let h = handle(half, "half")?;
            let d = handle(device, "device")?;
            let mut ui = CPrompts {
                pin: pin_cb,
                prompt: prompt_cb,
                user,
            };
            h.inner.run_job(&d.inner, now_ms, &mut ui)
        })
    }
}

/// Opens a server half over `session`'s engine from its JSON configuration
/// (`server_key_pem` PKCS#8 or absent to generate one, `allow_software_keys`,
/// `session_ttl_ms`, `message_ttl_ms`, `poll_ms`); free it with ks_server_half_free().
///
/// Ownership: config_json stays the caller's and is only read during the call; session is
/// borrowed for the call; the library allocates *out (free with ks_server_half_free()); the
/// caller owns it.
/// NULL: session, config_json, out may each be NULL only to be refused: the call returns
/// KS_USAGE and does nothing.
/// Blocks: yes: on the repository (the SQLite file or the PostgreSQL server).
/// Threads: any thread; handles may be shared between threads.
#[no_mangle]
pub unsafe extern "C" fn ks_server_half_open(
    session: *const ks_session,
    config_json: *const c_char,
    out: *mut *mut ks_server_half,
) -> ks_status {
    // SAFETY: caller contract, forwarded.
    unsafe {
        open_handle(out, || {
            let s = handle(session, "session")?;
            Ok(ks_server_half {
                inner: ServerHalf::new(&s.inner, arg(config_json, "config_json")?)?,
            })
        })
    }
}

/// Frees a server half. NULL is ignored.
///
/// NULL: half may be NULL (nothing is done).
/// Pointers: `half` is NULL or a handle from ks_server_half_open() not freed before and not
/// in use.
/// Blocks: no.
/// Threads: any thread, once per handle, when no other call is using the handle.
#[no_mangle]
pub unsafe extern "C" fn ks_server_half_free(half: *mut ks_server_half) {
    // SAFETY: caller contract, forwarded.
    unsafe { free_handle(half) }
}

/// The server's public key (SPKI PEM), what device halves pin; free with
/// ks_string_free().
///
/// Ownership: half is borrowed for the call; the library allocates *out_pem (free with
/// ks_string_free()); the caller owns it.
/// NULL: half, out_pem may each be NULL only to be refused: the call returns KS_USAGE and
/// does nothing.
/// Blocks: no.
/// Threads: any thread; handles may be shared between threads.
#[no_mangle]
pub unsafe extern "C" fn ks_server_half_public_key(
    half: *const ks_server_half,
    out_pem: *mut *mut c_char,
) -> ks_status {
    // SAFETY: caller contract, forwarded.
    unsafe { string_op(out_pem, || handle(half, "half")?.inner.public_key_pem()) }
}

/// The server key ks_server_half_open() generated (no `server_key_pem` in the config),
/// as PKCS#8 PEM, once: `*out_pem` is NULL when there is none. Keep it: agents pin its
/// public key. ks_string_free() zeroizes it.
///
/// Ownership: half is borrowed for the call; the library allocates *out_pem (free with
/// ks_string_free()); the caller owns it.
/// NULL: half, out_pem may each be NULL only to be refused: the call returns KS_USAGE and
/// does nothing.
/// Blocks: no.
/// Threads: any thread; handles may be shared between threads.
#[no_mangle]
pub unsafe extern "C" fn ks_server_half_key_take(
    half: *const ks_server_half,
    out_pem: *mut *mut c_char,
) -> ks_status {
    // SAFETY: caller contract, forwarded.
    unsafe {
        key_take(out_pem, || {
            Ok(handle(half, "half")?.inner.take_generated_key_pem())
        })
    }
}

/// Enrols an agent from its public key (SPKI PEM or SEC1 hex), `agent_class` `station`
/// or `holder`, approved when `approved` is non-zero; `*out_agent_id` gets its id.
///
/// Ownership: public_key, agent_class stay the caller's and are only read during the call;
/// half is borrowed for the call; the library allocates *out_agent_id (free with
/// ks_string_free()); the caller owns it.
/// NULL: half, public_key, agent_class, out_agent_id may each be NULL only to be refused:
/// the call returns KS_USAGE and does nothing.
/// Blocks: yes: on the repository (the SQLite file or the PostgreSQL server).
/// Threads: any thread; handles may be shared between threads.
#[no_mangle]
pub unsafe extern "C" fn ks_server_half_agent_add(
    half: *const ks_server_half,
    public_key: *const c_char,
    agent_class: *const c_char,
    approved: i32,
    out_agent_id: *mut *mut c_char,
) -> ks_status {
    // SAFETY: caller contract, forwarded.
    unsafe {
        string_op(out_agent_id, || {
            handle(half, "half")?.inner.add_agent(
                arg(public_key, "public_key")?,
                arg(agent_class, "agent_class")?,
                approved != 0,
                None,
            )
        })
    }
}

/// Approves (`approve` non-zero) or revokes (`approve` zero) an enrolled agent.
///
/// Ownership: agent_id stays the caller's and is only read during the call; half is
/// borrowed for the call.
/// NULL: half, agent_id may each be NULL only to be refused: the call returns KS_USAGE and
/// does nothing.
/// Blocks: yes: on the repository (the SQLite file or the PostgreSQL server).
/// Threads: any thread; handles may be shared between threads.
#[no_mangle]
pub unsafe extern "C" fn ks_server_half_agent_set(
    half: *const ks_server_half,
    agent_id: *const c_char,
    approve: i32,
) -> ks_status {
    guard(|| {
        // SAFETY: caller contract.
        let (h, id) = unsafe { (handle(half, "half")?, arg(agent_id, "agent_id")?) };
        if approve != 0 {
            h.inner.approve_agent(id)
        } else {
            h.inner.revoke_agent(id)
        }
    })
}

fn server_now(now_ms: u64) -> u64 {
    if now_ms != 0 {
        return now_ms;
    }
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .and_then(|d| u64::try_from(d.as_millis()).ok())
        .unwrap_or(0)
}

/// Opens a session from an `AgentHello` received at `now_ms` (Unix ms; 0 = now):
/// `*out_session_id` gets the session id (free with ks_string_free()), `*out` the
/// `ServerHello` to send back.
///
/// Ownership: hello stays the caller's and is only read during the call; half is borrowed
/// for the call; the library allocates *out_session_id (free with ks_string_free()), *out
/// (free with ks_bytes_free() and its length); the caller owns it.
/// NULL: half, hello, out_session_id, out, out_len may each be NULL only to be refused: the
/// call returns KS_USAGE and does nothing.
/// Blocks: yes: on the repository (the SQLite file or the PostgreSQL server).
/// Threads: any thread; handles may be shared between threads.
#[no_mangle]
pub unsafe extern "C" fn ks_server_half_session_open(
    half: *const ks_server_half,
    hello: *const u8,
    hello_len: usize,
    now_ms: u64,
    out_session_id: *mut *mut c_char,
    out: *mut *mut u8,
    out_len: *mut usize,
) -> ks_status {
    let mut sid: Option<String> = None;
    // SAFETY: caller contract, forwarded.
    let status = unsafe {
        if let Err(e) = clear_out(out_session_id, std::ptr::null_mut(), "out_session_id") {
            return guard(|| Err(e));
        }
        bytes_op(out, out_len, || {
            let h = handle(half, "half")?;
            let o = h
                .inner
                .open(msg(hello, hello_len, "hello")?, server_now(now_ms))?;
            sid = Some(o.session_id);
            Ok(o.reply)
        })
    };
    if let Some(c) = sid.and_then(|s| std::ffi::CString::new(s).ok()) {
        // SAFETY: checked non-null by clear_out above.
        unsafe { out_session_id.write(c.into_raw()) };
    }
    status
}

/// Handles a device message of session `session_id` received at `now_ms` (Unix ms; 0 =
/// now); `*out` gets the reply to send.
///
/// Ownership: session_id, message stay the caller's and are only read during the call; half
/// is borrowed for the call; the library allocates *out (free with ks_bytes_free() and its
/// length); the caller owns it.
/// NULL: half, session_id, message, out, out_len may each be NULL only to be refused: the
/// call returns KS_USAGE and does nothing.
/// Blocks: yes: on the identity provider (HTTPS to Microsoft Graph, with its retries and
/// timeouts) and the repository.
/// Threads: any thread; handles may be shared between threads.
#[no_mangle]
pub unsafe extern "C" fn ks_server_half_session_handle(
    half: *const ks_server_half,
    session_id: *const c_char,
    message: *const u8,
    message_len: usize,
    now_ms: u64,
    out: *mut *mut u8,
    out_len: *mut usize,
) -> ks_status {
    // SAFETY: caller contract, forwarded.
    unsafe {
        bytes_op(out, out_len, || {
            handle(half, "half")?.inner.handle(
                arg(session_id, "session_id")?,
                msg(message, message_len, "message")?,
                server_now(now_ms),
            )
        })
    }
}

/// Queues operator work for the station `agent_id` (`request_json`:
/// `{"operation":"issue","user":"...","template":"..."}`) by `actor`; `*out_work_id`
/// gets the work id.
///
/// Ownership: agent_id, request_json, actor stay the caller's and are only read during the
/// call; half is borrowed for the call; the library allocates *out_work_id (free with
/// ks_string_free()); the caller owns it.
/// NULL: half, agent_id, request_json, actor, out_work_id may each be NULL only to be
/// refused: the call returns KS_USAGE and does nothing.
/// Blocks: yes: on the repository (the SQLite file or the PostgreSQL server).
/// Threads: any thread; handles may be shared between threads.
#[no_mangle]
pub unsafe extern "C" fn ks_server_half_work_queue(
    half: *const ks_server_half,
    agent_id: *const c_char,
    request_json: *const c_char,
    actor: *const c_char,
    out_work_id: *mut *mut c_char,
) -> ks_status {
    // SAFETY: caller contract, forwarded.
    unsafe {
        string_op(out_work_id, || {
            handle(half, "half")?.inner.queue_station_work(
                arg(agent_id, "agent_id")?,
                arg(request_json, "request_json")?,
                arg(actor, "actor")?,
            )
        })
    }
}

/// Where queued work stands: `{"work_id","agent_id","state","actor","session_id",
/// "outcome"}`.
///
/// Ownership: work_id stays the caller's and is only read during the call; half is borrowed
/// for the call; the library allocates *out_json (free with ks_string_free()); the caller
/// owns it.
/// NULL: half, work_id, out_json may each be NULL only to be refused: the call returns
/// KS_USAGE and does nothing.
/// Blocks: yes: on the repository (the SQLite file or the PostgreSQL server).
/// Threads: any thread; handles may be shared between threads.
#[no_mangle]
pub unsafe extern "C" fn ks_server_half_work_get(
    half: *const ks_server_half,
    work_id: *const c_char,
    out_json: *mut *mut c_char,
) -> ks_status {
    // SAFETY: caller contract, forwarded.
    unsafe {
        json_op(out_json, "out_json", || {
            handle(half, "half")?
                .inner
                .station_work(arg(work_id, "work_id")?)
        })
    }
}

/// A JSON view of any split message for logs (direction, kind, session, seq, job, the
/// signer's key id, the body's non-secret fields; ID tokens and sealed secrets left
/// out). Nothing is verified.
///
/// Ownership: message stays the caller's and is only read during the call; the library
/// allocates *out_json (free with ks_string_free()); the caller owns it.
/// NULL: message, out_json may each be NULL only to be refused: the call returns KS_USAGE
/// and does nothing.
/// Blocks: no.
/// Threads: any thread; handles may be shared between threads.
#[no_mangle]
pub unsafe extern "C" fn ks_wire_describe(
    message: *const u8,
    message_len: usize,
    out_json: *mut *mut c_char,
) -> ks_status {
    // SAFETY: caller contract, forwarded.
    unsafe {
        json_op(out_json, "out_json", || {
            describe(msg(message, message_len, "message")?)
        })
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::CStr;

    use super::*;
    use crate::{ks_last_error_json, ks_string_free, KS_OK, KS_USAGE};

    fn last_error() -> String {
        let mut e: *mut c_char = std::ptr::null_mut();
        // SAFETY: valid out pointer.
        unsafe { ks_last_error_json(&mut e) };
        let text = if e.is_null() {
            String::new()
        } else {
            // SAFETY: a library string.
            unsafe { CStr::from_ptr(e) }.to_string_lossy().into_owned()
        };
        // SAFETY: library string, freed once.
        unsafe { ks_string_free(e) };
        text
    }

    #[test]
    fn split_entry_points_refuse_null_and_bad_input_and_describe_messages() {
        let mut half: *mut ks_device_half = std::ptr::dangling_mut();
        // SAFETY: NULL config, valid out pointer.
        assert_eq!(
            unsafe { ks_device_half_open(std::ptr::null(), &mut half) },
            KS_USAGE
        );
        assert!(half.is_null());
        // SAFETY: valid strings and out pointer.
        assert_eq!(
            unsafe { ks_device_half_open(c"{\"server_keys\":[]}".as_ptr(), &mut half) },
            KS_USAGE
        );
        assert!(last_error().contains("server_keys"));

        let mut out: *mut u8 = std::ptr::dangling_mut();
        let mut len: usize = 7;
        // SAFETY: NULL half, valid out pointers.
        assert_eq!(
            unsafe { ks_device_half_ready(std::ptr::null(), &mut out, &mut len) },
            KS_USAGE
        );
        assert!(out.is_null() && len == 0, "out pointers are cleared first");

        // A device half with a generated key: its hello is a message describe reads.
        let config = c"{\"server_keys\":[\"046b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c2964fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5\"]}";
        // SAFETY: valid string and out pointer.
        assert_eq!(
            unsafe { ks_device_half_open(config.as_ptr(), &mut half) },
            KS_OK
        );
        // SAFETY: live handle, valid out pointers.
        assert_eq!(
            unsafe { ks_device_half_hello(half, &mut out, &mut len) },
            KS_OK
        );
        let mut json: *mut c_char = std::ptr::null_mut();
        // SAFETY: a library buffer of `len` bytes, valid out pointer.
        assert_eq!(unsafe { ks_wire_describe(out, len, &mut json) }, KS_OK);
        // SAFETY: library string.
        let view = unsafe { CStr::from_ptr(json) }
            .to_string_lossy()
            .into_owned();
        assert!(view.contains("\"AgentHello\""), "{view}");
        // SAFETY: library string and buffer, each freed once.
        unsafe {
            ks_string_free(json);
            ks_bytes_free(out, len);
        }
        // Sending before the session is established is refused, typed.
        // SAFETY: live handle, valid out pointers.
        assert_eq!(
            unsafe { ks_device_half_ready(half, &mut out, &mut len) },
            KS_USAGE
        );
        assert!(last_error().contains("session_not_established"));
        // Garbage is no message.
        // SAFETY: a valid buffer and out pointer.
        assert_eq!(
            unsafe { ks_wire_describe(b"xx".as_ptr(), 2, &mut json) },
            KS_USAGE
        );
        // SAFETY: handle from ks_device_half_open, freed once; NULLs are ignored.
        unsafe {
            ks_device_half_free(half);
            ks_device_half_free(std::ptr::null_mut());
            ks_server_half_free(std::ptr::null_mut());
            ks_bytes_free(std::ptr::null_mut(), 0);
        }
    }
}
