//! Thin safe wrappers over the C ABI for the schema test: every call goes through the
//! `extern "C"` functions exactly as a C program makes it, and every JSON document in or
//! out is recorded.

use std::ffi::{c_char, c_void, CStr, CString};
use std::ptr::null_mut;
use std::sync::Mutex;

use keysmith::*;

/// The recorded documents: `(schema name, JSON on one line)`.
#[derive(Default)]
pub struct Docs {
    pub lines: Vec<(String, String)>,
}

/// Documents handed to callbacks (prompts, bulk rows and progress), collected here while a
/// call runs and moved into [`Docs`] by [`Docs::take_callbacks`].
static CALLBACK_DOCS: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());

impl Docs {
    /// Records `json` (checked to be JSON) as a document of schema `name`.
    pub fn add(&mut self, name: &str, json: &str) -> serde_json::Value {
        let v: serde_json::Value =
            serde_json::from_str(json).unwrap_or_else(|e| panic!("{name}: not JSON ({e}): {json}"));
        self.lines.push((name.to_owned(), v.to_string()));
        v
    }

    /// Moves what the callbacks received into the record.
    pub fn take_callbacks(&mut self) {
        let mut cb = CALLBACK_DOCS.lock().unwrap();
        self.lines.append(&mut cb);
    }
}

fn c(s: &str) -> CString {
    CString::new(s).expect("no NUL")
}

/// Copies and frees a library string.
pub fn take(p: *mut c_char) -> String {
    assert!(!p.is_null(), "the library returned NULL");
    // SAFETY: a NUL-terminated string from the library.
    let s = unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned();
    // SAFETY: from the library, freed once.
    unsafe { ks_string_free(p) };
    s
}

/// The calling thread's last error as JSON.
pub fn last_error_json() -> String {
    let mut p = null_mut();
    // SAFETY: valid out pointer.
    unsafe { ks_last_error_json(&mut p) };
    if p.is_null() {
        return String::new();
    }
    take(p)
}

/// Asserts success, naming the error otherwise.
pub fn ok(st: ks_status, what: &str) {
    assert_eq!(st, KS_OK, "{what}: {}", last_error_json());
}

/// Out pointer for a library string.
pub type Out = *mut *mut c_char;

/// `ks_log_configure` with `json`, recorded.
pub fn configure_logging(docs: &mut Docs, json: &str) {
    docs.add("log-config", json);
    let j = c(json);
    // SAFETY: a valid string.
    ok(unsafe { ks_log_configure(j.as_ptr()) }, "ks_log_configure");
}

/// `ks_template_check`.
pub fn template_check(text: &str, o: Out) -> ks_status {
    let t = c(text);
    // SAFETY: valid string and out pointer.
    unsafe { ks_template_check(t.as_ptr(), o) }
}

/// `ks_device_list`.
pub fn device_list(o: Out) -> ks_status {
    // SAFETY: valid out pointer.
    unsafe { ks_device_list(o) }
}

unsafe extern "C" fn on_prompt(_ctx: *mut c_void, json: *const c_char) {
    record_callback("prompt", json);
}

unsafe extern "C" fn on_row(ctx: *mut c_void, json: *const c_char) -> *const c_char {
    record_callback("bulk-row", json);
    // ctx is the device spec the test keeps alive for the whole ks_bulk_run().
    ctx.cast_const().cast()
}

unsafe extern "C" fn on_progress(_ctx: *mut c_void, json: *const c_char) {
    record_callback("bulk-progress", json);
}

fn record_callback(name: &str, json: *const c_char) {
    // SAFETY: the library passes a NUL-terminated string valid during the call.
    let text = unsafe { CStr::from_ptr(json) }
        .to_string_lossy()
        .into_owned();
    let v: serde_json::Value = serde_json::from_str(&text).expect("callback JSON");
    CALLBACK_DOCS
        .lock()
        .unwrap()
        .push((name.to_owned(), v.to_string()));
}

/// A `ks_device`.
pub struct Device(pub *mut ks_device);

impl Device {
    /// `ks_device_open`.
    pub fn open(spec: &str) -> Device {
        let s = c(spec);
        let mut d = null_mut();
        // SAFETY: valid string and out pointer.
        ok(
            unsafe { ks_device_open(s.as_ptr(), &mut d) },
            "ks_device_open",
        );
        Device(d)
    }

    /// `ks_device_info`.
    pub fn info(&self, o: Out) -> ks_status {
        // SAFETY: live handle, valid out pointer.
        unsafe { ks_device_info(self.0, o) }
    }
}

impl Drop for Device {
    fn drop(&mut self) {
        // SAFETY: a handle from ks_device_open, freed once.
        unsafe { ks_device_free(self.0) };
    }
}

/// A `ks_session`.
pub struct Session(pub *mut ks_session);

impl Drop for Session {
    fn drop(&mut self) {
        // SAFETY: a handle from ks_session_open, freed once.
        unsafe { ks_session_free(self.0) };
    }
}

// Every method passes live handles, valid strings and the caller's out pointer.
#[allow(clippy::undocumented_unsafe_blocks)]
impl Session {
    /// `ks_session_open` with `config` (recorded), prompts recorded.
    pub fn open(docs: &mut Docs, config: &str) -> Session {
        docs.add("session-config", config);
        let cfg = c(config);
        let mut s = null_mut();
        ok(
            unsafe { ks_session_open(cfg.as_ptr(), &mut s) },
            "ks_session_open",
        );
        unsafe { ks_session_set_prompt_callback(s, Some(on_prompt), null_mut()) };
        Session(s)
    }

    /// Runs `f` with an out pointer, asserts success, records the string as `name`.
    pub fn json(
        &self,
        docs: &mut Docs,
        name: &str,
        f: impl FnOnce(Out) -> ks_status,
    ) -> serde_json::Value {
        let mut p = null_mut();
        ok(f(&mut p), name);
        docs.add(name, &take(p))
    }

    /// Runs `f`, asserts it fails, records `ks_last_error_json` as `error`.
    pub fn expect_error(&self, docs: &mut Docs, f: impl FnOnce(Out) -> ks_status) {
        let mut p = null_mut();
        assert_ne!(f(&mut p), KS_OK, "expected a failure");
        assert!(p.is_null(), "out pointer set on failure");
        docs.add("error", &last_error_json());
    }

    pub fn template_add(&self, text: &str, o: Out) -> ks_status {
        let t = c(text);
        unsafe { ks_template_add(self.0, t.as_ptr(), o) }
    }
    pub fn template_list(&self, o: Out) -> ks_status {
        unsafe { ks_template_list(self.0, o) }
    }
    pub fn user_search(&self, conn: &str, prefix: &str, top: u32, o: Out) -> ks_status {
        let (c1, p) = (c(conn), c(prefix));
        unsafe { ks_user_search(self.0, c1.as_ptr(), p.as_ptr(), top, o) }
    }
    pub fn issue(&self, d: &Device, params: &str, o: Out) -> ks_status {
        let p = c(params);
        unsafe { ks_key_issue(self.0, d.0, p.as_ptr(), o) }
    }
    pub fn issue_and_activate(&self, d: &Device, params: &str, pin: &str, o: Out) -> ks_status {
        let (p, pin) = (c(params), c(pin));
        unsafe { ks_key_issue_and_activate(self.0, d.0, p.as_ptr(), pin.as_ptr(), o) }
    }
    pub fn activate(&self, d: &Device, key_id: &str, pin: &str, o: Out) -> ks_status {
        let (k, pin) = (c(key_id), c(pin));
        unsafe { ks_key_activate(self.0, d.0, k.as_ptr(), pin.as_ptr(), o) }
    }
    pub fn sign_in(&self, d: &Device, key_id: &str, pin: &str, o: Out) -> ks_status {
        let (k, pin) = (c(key_id), c(pin));
        unsafe { ks_key_sign_in(self.0, d.0, k.as_ptr(), pin.as_ptr(), o) }
    }
    pub fn inactivate(&self, key_id: &str, o: Out) -> ks_status {
        let k = c(key_id);
        unsafe { ks_key_inactivate(self.0, k.as_ptr(), o) }
    }
    pub fn revoke(&self, key_id: &str, force: bool, o: Out) -> ks_status {
        let k = c(key_id);
        unsafe { ks_key_revoke(self.0, k.as_ptr(), i32::from(force), o) }
    }
    pub fn retire(&self, key_id: &str, o: Out) -> ks_status {
        let k = c(key_id);
        unsafe { ks_key_retire(self.0, k.as_ptr(), o) }
    }
    pub fn unregister(&self, key_id: &str, o: Out) -> ks_status {
        let k = c(key_id);
        unsafe { ks_key_unregister(self.0, k.as_ptr(), o) }
    }
    pub fn reissue(&self, d: &Device, key_id: &str, params: &str, o: Out) -> ks_status {
        let (k, p) = (c(key_id), c(params));
        unsafe { ks_key_reissue(self.0, d.0, k.as_ptr(), p.as_ptr(), o) }
    }
    pub fn key_get(&self, key_id: &str, o: Out) -> ks_status {
        let k = c(key_id);
        unsafe { ks_key_get(self.0, k.as_ptr(), o) }
    }
    pub fn key_list(&self, filter: Option<&str>, o: Out) -> ks_status {
        let f = filter.map(c);
        let fp = f.as_ref().map_or(std::ptr::null(), |f| f.as_ptr());
        unsafe { ks_key_list(self.0, fp, o) }
    }
    pub fn key_list_page(&self, after: Option<&str>, limit: u32, o: Out) -> ks_status {
        let a = after.map(c);
        let ap = a.as_ref().map_or(std::ptr::null(), |a| a.as_ptr());
        unsafe { ks_key_list_page(self.0, ap, limit, o) }
    }
    pub fn key_audit(&self, key_id: &str, o: Out) -> ks_status {
        let k = c(key_id);
        unsafe { ks_key_audit(self.0, k.as_ptr(), o) }
    }
    pub fn audit_verify(&self, o: Out) -> ks_status {
        unsafe { ks_audit_verify(self.0, o) }
    }
    pub fn journal_replay(&self, o: Out) -> ks_status {
        unsafe { ks_journal_replay(self.0, o) }
    }
    pub fn reconcile(&self, request: Option<&str>, o: Out) -> ks_status {
        let r = request.map(c);
        let rp = r.as_ref().map_or(std::ptr::null(), |r| r.as_ptr());
        unsafe { ks_drift_reconcile(self.0, rp, o) }
    }
    pub fn needs_reissue(&self, o: Out) -> ks_status {
        unsafe { ks_key_list_needs_reissue(self.0, o) }
    }
    pub fn stale(&self, days: u32, o: Out) -> ks_status {
        unsafe { ks_key_list_stale(self.0, days, o) }
    }
    pub fn user_passkeys(&self, user: &str, o: Out) -> ks_status {
        let u = c(user);
        unsafe { ks_user_passkeys(self.0, u.as_ptr(), o) }
    }
    pub fn readiness(&self, conn: Option<&str>, group: Option<&str>, o: Out) -> ks_status {
        let (cn, g) = (conn.map(c), group.map(c));
        let cp = cn.as_ref().map_or(std::ptr::null(), |x| x.as_ptr());
        let gp = g.as_ref().map_or(std::ptr::null(), |x| x.as_ptr());
        unsafe { ks_user_readiness(self.0, cp, gp, o) }
    }
    pub fn self_service_begin(&self, o: Out) -> ks_status {
        unsafe { ks_self_service_begin(self.0, o) }
    }
    pub fn self_issue(
        &self,
        d: &Device,
        token: &str,
        nonce: &str,
        template: &str,
        pin: &str,
        o: Out,
    ) -> ks_status {
        let (t, n, tp, p) = (c(token), c(nonce), c(template), c(pin));
        unsafe {
            ks_key_self_issue(
                self.0,
                d.0,
                t.as_ptr(),
                n.as_ptr(),
                tp.as_ptr(),
                std::ptr::null(),
                p.as_ptr(),
                o,
            )
        }
    }
    pub fn self_set_pin(
        &self,
        d: &Device,
        key_id: &str,
        token: &str,
        nonce: &str,
        pin: &str,
        o: Out,
    ) -> ks_status {
        let (k, t, n, p) = (c(key_id), c(token), c(nonce), c(pin));
        unsafe {
            ks_key_self_set_pin(
                self.0,
                d.0,
                k.as_ptr(),
                t.as_ptr(),
                n.as_ptr(),
                p.as_ptr(),
                o,
            )
        }
    }
    pub fn bulk_create(&self, kind: &str, csv: &str, o: Out) -> ks_status {
        let (k, t) = (c(kind), c(csv));
        unsafe { ks_bulk_create(self.0, k.as_ptr(), t.as_ptr(), o) }
    }
    /// `ks_bulk_run` whose device callback answers `spec` for every row.
    pub fn bulk_run(&self, job_id: i64, options: Option<&str>, spec: &str, o: Out) -> ks_status {
        let opts = options.map(c);
        let op = opts.as_ref().map_or(std::ptr::null(), |x| x.as_ptr());
        let spec = c(spec);
        unsafe {
            ks_bulk_run(
                self.0,
                job_id,
                op,
                Some(on_row),
                Some(on_progress),
                spec.as_ptr().cast_mut().cast(),
                o,
            )
        }
    }
    pub fn expiring_page(
        &self,
        within_ms: u64,
        after: Option<&str>,
        limit: u32,
        o: Out,
    ) -> ks_status {
        let a = after.map(c);
        let ap = a.as_ref().map_or(std::ptr::null(), |x| x.as_ptr());
        unsafe { ks_pending_list_expiring_page(self.0, within_ms, ap, limit, o) }
    }
}
