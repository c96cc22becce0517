//! # keysmith._native (Python)
//!
//! The native half of the Python package `keysmith` (`bindings/python/python/keysmith`),
//! over [`keysmith_facade`]: `Session(config)`, `Device(spec)` and functions whose results
//! are plain dicts and lists (JSON-shaped); the package turns them into frozen
//! dataclasses. Failures raise the package's exceptions (`keysmith.errors`, chosen there
//! from the facade error's `reason` and `kind`). Built with maturin
//! (`bindings/python/pyproject.toml`).
//!
//! Every blocking call runs the facade on a worker thread while the calling thread,
//! without the GIL, waits in 100 ms slices: between slices it runs Python callbacks
//! (prompts, bulk device and progress callbacks, so they run on the calling thread) and
//! checks for signals. On Ctrl-C (an exception raised by a signal handler, whether
//! between slices or inside a callback) it cancels the device operation, waits for the
//! operation to end and raises that exception; the operation's own error, if any, is its
//! `__context__`.
#![warn(missing_docs)]

mod closable;
mod logging;
mod passkeys;
mod split;

use std::cell::RefCell;
use std::panic::AssertUnwindSafe;
use std::sync::{mpsc, Arc};
use std::time::Duration;

use keysmith_facade::{
    BulkProgress, BulkRow, BulkRunOptions, ExpiringCursor, FacadeError, IssueParams, KeyFilter,
    Prompt, ReissueParams,
};
use pyo3::exceptions::{PyException, PyRuntimeError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::PyString;

use closable::Closable;

/// How often a waiting call looks for Ctrl-C and callbacks.
const POLL: Duration = Duration::from_millis(100);

/// The Python exception for a facade error: an instance of the class
/// `keysmith.errors._from_native` picks (`PinInvalid`, `DeviceError`, ...), with the
/// attributes `kind`, `reason`, `message`, `code`, `ctap_status`, `retries_left`.
fn py_err(py: Python<'_>, e: FacadeError) -> PyErr {
    let make = || -> PyResult<PyErr> {
        let value = py
            .import("keysmith.errors")?
            .getattr("_from_native")?
            .call1((
                e.kind.as_str(),
                e.reason,
                e.message.as_str(),
                e.kind.code(),
                e.ctap_status,
                e.retries_left,
                e.refusal_code,
            ))?;
        Ok(PyErr::from_value(value))
    };
    make().unwrap_or_else(|failure| {
        PyRuntimeError::new_err(format!("{e} (keysmith.errors failed: {failure})"))
    })
}

/// A usage error raised from this module (bad arguments caught before the facade).
fn usage(py: Python<'_>, message: String) -> PyErr {
    py_err(py, FacadeError::usage(message))
}

/// Parses JSON text into Python objects (dicts, lists, str, int, float, bool, None).
fn json_loads(py: Python<'_>, text: &str) -> PyResult<Py<PyAny>> {
    Ok(py.import("json")?.call_method1("loads", (text,))?.unbind())
}

/// Converts a serializable result to Python objects (through JSON).
fn to_py<T: serde::Serialize>(py: Python<'_>, v: &T) -> PyResult<Py<PyAny>> {
    let text = serde_json::to_string(v).map_err(|e| {
        py_err(
            py,
            FacadeError::internal(format!("serializing the result: {e}")),
        )
    })?;
    json_loads(py, &text)
}

/// The JSON text of a `dict` (or other JSON-able object), or a `str` as is.
fn json_text(value: &Bound<'_, PyAny>) -> PyResult<String> {
    if let Ok(s) = value.cast::<PyString>() {
        return Ok(s.to_str()?.to_owned());
    }
    value
        .py()
        .import("json")?
        .call_method1("dumps", (value,))?
        .extract()
}

/// A piece of Python work a worker thread hands to the calling thread; it returns the
/// exception that interrupts the call, if one was raised (see [`on_caller`]).
type Job = Box<dyn FnOnce(Python<'_>) -> Option<PyErr> + Send>;

/// What a worker thread tells the calling thread.
enum Msg {
    /// Run this with the GIL.
    Call(Job),
    /// The operation ended.
    Done,
}

thread_local! {
    /// On a worker thread: where its callbacks are sent to run on the calling thread.
    static CALLER: RefCell<Option<mpsc::Sender<Msg>>> = const { RefCell::new(None) };
}

/// Runs `f` with the GIL on the thread of the Python call whose operation this thread
/// runs (see [`blocking`]), or here when this is not such a worker thread. `f` returns
/// `Err` with an exception that must interrupt that call (`KeyboardInterrupt` raised
/// by a signal handler while the callback ran). `None` when the call is interrupted
/// and skips callbacks.
fn on_caller<R: Send + 'static>(
    f: impl FnOnce(Python<'_>) -> PyResult<R> + Send + 'static,
) -> Option<R> {
    let Some(caller) = CALLER.with(|c| c.borrow().clone()) else {
        return Python::attach(|py| match f(py) {
            Ok(r) => Some(r),
            Err(e) => {
                // No caller to interrupt here: report it.
                e.write_unraisable(py, None);
                None
            }
        });
    };
    let (tx, rx) = mpsc::sync_channel(1);
    let job: Job = Box::new(move |py| match f(py) {
        Ok(r) => {
            let _ = tx.send(r);
            None
        }
        Err(interrupt) => Some(interrupt),
    });
    caller.send(Msg::Call(job)).ok()?;
    rx.recv().ok()
}

/// Splits a callback's failure: an ordinary `Exception` is the callback's own
/// (`Ok(Err)`), anything else (`KeyboardInterrupt`, `SystemExit`) interrupts the call.
fn callback_failure(py: Python<'_>, e: PyErr) -> PyResult<PyErr> {
    if e.is_instance_of::<PyException>(py) {
        Ok(e)
    } else {
        Err(e)
    }
}

/// Runs the facade call `f` on a worker thread while this thread waits without the GIL,
/// runs the callbacks it sends (see [`on_caller`]) and checks for signals every
/// [`POLL`]. When a signal handler raises (Ctrl-C: `KeyboardInterrupt`), `device` (if
/// any) is cancelled until the call ends, and that exception is raised (with the call's
/// own error, if any, as its `__context__`).
fn blocking<T: Send>(
    py: Python<'_>,
    device: Option<&keysmith_facade::Device>,
    f: impl FnOnce() -> keysmith_facade::Result<T> + Send,
) -> PyResult<T> {
    blocking_with(
        py,
        &|| {
            if let Some(d) = device {
                d.cancel();
            }
        },
        f,
    )
}

/// [`blocking`] with `on_interrupt` in place of cancelling a device: called after an
/// interrupt at every poll until the call ends.
fn blocking_with<T: Send>(
    py: Python<'_>,
    on_interrupt: &dyn Fn(),
    f: impl FnOnce() -> keysmith_facade::Result<T> + Send,
) -> PyResult<T> {
    let (tx, mut rx) = mpsc::channel::<Msg>();
    let (result, interrupted) = std::thread::scope(|s| {
        let worker = s.spawn(move || {
            CALLER.with(|c| *c.borrow_mut() = Some(tx.clone()));
            let result = std::panic::catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| {
                Err(FacadeError::internal(
                    "the operation panicked (a bug in keysmith)",
                ))
            });
            CALLER.with(|c| *c.borrow_mut() = None);
            let _ = tx.send(Msg::Done);
            result
        });
        let mut interrupted: Option<PyErr> = None;
        loop {
            let (back, msg) = py.detach(move || {
                let msg = rx.recv_timeout(POLL);
                (rx, msg)
            });
            rx = back;
            if let Err(interrupt) = logging::deliver(py) {
                interrupted.get_or_insert(interrupt);
            }
            match msg {
                // After an interrupt the callbacks are skipped (dropping the job).
                Ok(Msg::Call(job)) if interrupted.is_none() => interrupted = job(py),
                Ok(Msg::Call(_)) | Err(mpsc::RecvTimeoutError::Timeout) => {}
                Ok(Msg::Done) | Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
            if interrupted.is_none() {
                interrupted = py.check_signals().err();
            }
            if interrupted.is_some() {
                // Repeated: a transaction clears a cancel made before it started.
                on_interrupt();
            }
        }
        let result = py.detach(move || worker.join()).unwrap_or_else(|_| {
            Err(FacadeError::internal(
                "the operation's thread panicked (a bug in keysmith)",
            ))
        });
        (result, interrupted)
    });
    let (result, interrupted) = match (logging::deliver(py), interrupted) {
        (Err(late), None) => (result, Some(late)),
        (_, interrupted) => (result, interrupted),
    };
    match (result, interrupted) {
        (Ok(v), None) => Ok(v),
        (Err(e), None) => Err(py_err(py, e)),
        (Ok(_), Some(signal)) => Err(signal),
        (Err(e), Some(signal)) => {
            let context = py_err(py, e);
            // Best effort: the interrupt is what is raised either way.
            let _ = signal.value(py).setattr("__context__", context.value(py));
            Err(signal)
        }
    }
}

/// [`blocking`], then the result as Python objects.
fn run<T: serde::Serialize + Send>(
    py: Python<'_>,
    device: Option<&keysmith_facade::Device>,
    f: impl FnOnce() -> keysmith_facade::Result<T> + Send,
) -> PyResult<Py<PyAny>> {
    let v = blocking(py, device, f)?;
    to_py(py, &v)
}

/// `value` if it is callable, else a `TypeError` naming the method and argument (a
/// callback that is not callable would only fail later, as an unraisable error).
fn require_callable(method: &str, name: &str, value: Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
    if value.is_callable() {
        Ok(value.unbind())
    } else {
        let type_name = value
            .get_type()
            .name()
            .map(|n| n.to_string())
            .unwrap_or_else(|_| "?".into());
        Err(PyTypeError::new_err(format!(
            "{method}: {name} must be callable or None, not {type_name}"
        )))
    }
}

/// Calls a Python callback with `value` (as Python objects) on the calling thread;
/// its exception is reported as unraisable.
fn notify<T: serde::Serialize>(callback: &Arc<Py<PyAny>>, value: &T) {
    let text = match serde_json::to_string(value) {
        Ok(text) => text,
        Err(_) => return,
    };
    let callback = callback.clone();
    on_caller(move |py| {
        if let Err(e) = json_loads(py, &text).and_then(|d| callback.call1(py, (d,))) {
            callback_failure(py, e)?.write_unraisable(py, None);
        }
        Ok(())
    });
}

/// An opened security key: `Device("usb:/dev/hidraw3")`, `Device("nfc:READER")` or
/// `Device("softkey:/path/state.json")` (options: `?presence=never`, ...). A context
/// manager: `with Device(spec) as key:` closes it at the end of the block.
#[pyclass(frozen, module = "keysmith._native")]
struct Device {
    inner: Closable<keysmith_facade::Device>,
}

#[pymethods]
impl Device {
    /// Opens the key named by `spec`.
    #[new]
    fn new(py: Python<'_>, spec: String) -> PyResult<Self> {
        blocking(py, None, move || keysmith_facade::Device::open(&spec)).map(|inner| Device {
            inner: Closable::new("device", inner),
        })
    }

    /// Closes the key (an operation running on it finishes first); later calls raise
    /// `keysmith.UsageError` (reason `closed`). Closing again does nothing.
    fn close(&self) {
        drop(self.inner.close());
    }

    /// Returns the device itself (`with Device(spec) as key:`).
    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// Closes the device at the end of a `with` block; exceptions propagate.
    fn __exit__(
        &self,
        exc_type: &Bound<'_, PyAny>,
        exc: &Bound<'_, PyAny>,
        tb: &Bound<'_, PyAny>,
    ) -> bool {
        let _ = (exc_type, exc, tb);
        self.close();
        false
    }

    /// What the key says about itself (authenticatorGetInfo), as a dict.
    fn info(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let d = self.inner.get(py)?;
        run(py, Some(&d.clone()), move || d.info())
    }

    /// Cancels the operation waiting on this key for the user ("touch your key"); call
    /// it from another thread or from the prompt callback. The waiting call raises
    /// `keysmith.Cancelled` (a `DeviceError`).
    fn cancel(&self) {
        // A closed device has nothing to cancel.
        if let Some(d) = self.inner.peek() {
            d.cancel();
        }
    }

    /// The spec it was opened with.
    #[getter]
    fn spec(&self, py: Python<'_>) -> PyResult<String> {
        Ok(self.inner.get(py)?.spec())
    }

    /// Its serial number, if known.
    #[getter]
    fn serial(&self, py: Python<'_>) -> PyResult<Option<String>> {
        Ok(self.inner.get(py)?.serial())
    }

    /// `keysmith._native.Device("SPEC")` (or `Device(closed)`).
    fn __repr__(&self) -> String {
        match self.inner.peek() {
            Some(d) => format!("keysmith._native.Device({:?})", d.spec()),
            None => "keysmith._native.Device(closed)".into(),
        }
    }
}

/// A keysmith session: `Session(config)` with `config` a dict or JSON text (see the
/// facade's `Session::open`: repository, pin_key, station, idp, templates, log, mds_blob,
/// mds_root, attestation_roots, allow_software_keys). A context manager: `with
/// Session(config) as session:` closes it at the end of the block.
#[pyclass(frozen, module = "keysmith._native")]
struct Session {
    inner: Closable<keysmith_facade::Session>,
}

#[pymethods]
impl Session {
    /// Opens the repository, IdP connections and templates `config` names.
    #[new]
    fn new(py: Python<'_>, config: &Bound<'_, PyAny>) -> PyResult<Self> {
        let text = json_text(config)?;
        blocking(py, None, move || keysmith_facade::Session::open(&text)).map(|inner| Session {
            inner: Closable::new("session", inner),
        })
    }

    /// Closes the session (its repository connection closes once the operations
    /// running on it finish); later calls raise `keysmith.UsageError` (reason
    /// `closed`). Closing again does nothing.
    fn close(&self, py: Python<'_>) {
        let session = self.inner.close();
        // Dropping the last handle closes the database: without the GIL.
        py.detach(move || drop(session));
    }

    /// Returns the session itself (`with Session(config) as session:`).
    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// Closes the session at the end of a `with` block; exceptions propagate.
    fn __exit__(
        &self,
        py: Python<'_>,
        exc_type: &Bound<'_, PyAny>,
        exc: &Bound<'_, PyAny>,
        tb: &Bound<'_, PyAny>,
    ) -> bool {
        let _ = (exc_type, exc, tb);
        self.close(py);
        false
    }

    /// Sends prompts (dicts such as `{"kind": "touch_key", "step": "makeCredential"}`) to
    /// `callback`, on the thread that called the operation; `None` stops them.
    /// Exceptions raised by the callback are reported as unraisable and do not stop the
    /// operation. A callback that is not callable raises `TypeError` here.
    #[pyo3(signature = (callback))]
    fn set_prompt(&self, py: Python<'_>, callback: Option<Bound<'_, PyAny>>) -> PyResult<()> {
        let inner = self.inner.get(py)?;
        match callback {
            None => inner.clear_prompt(),
            Some(cb) => {
                let cb = Arc::new(require_callable("set_prompt", "callback", cb)?);
                inner.set_prompt(Box::new(move |p: &Prompt| notify(&cb, p)))
            }
        }
        Ok(())
    }

    /// The actor recorded for operator calls.
    #[getter]
    fn actor(&self, py: Python<'_>) -> PyResult<String> {
        Ok(self.inner.get(py)?.actor())
    }

    /// The names of the loaded credential templates.
    fn templates(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        Ok(self.inner.get(py)?.templates())
    }

    /// Loads (or replaces) a credential template set (TOML or JSON text); returns its
    /// summary.
    fn add_template(&self, py: Python<'_>, text: String) -> PyResult<Py<PyAny>> {
        let s = self.inner.get(py)?;
        run(py, None, move || s.add_template(&text))
    }

    /// Central issuance of the key in `device` to `user` with credential template
    /// `template`; returns the key.
    #[pyo3(signature = (device, template, user, serial=None, actor=None))]
    fn issue(
        &self,
        py: Python<'_>,
        device: PyRef<'_, Device>,
        template: String,
        user: String,
        serial: Option<String>,
        actor: Option<String>,
    ) -> PyResult<Py<PyAny>> {
        let (s, d) = (self.inner.get(py)?, device.inner.get(py)?);
        let params = IssueParams {
            template,
            user,
            serial,
            actor,
        };
        run(py, Some(&d.clone()), move || s.issue(&d, &params))
    }

    /// Issuance with the holder's PIN (templates that activate at issuance).
    #[pyo3(signature = (device, template, user, holder_pin, serial=None, actor=None))]
    #[allow(clippy::too_many_arguments)]
    fn issue_and_activate(
        &self,
        py: Python<'_>,
        device: PyRef<'_, Device>,
        template: String,
        user: String,
        holder_pin: String,
        serial: Option<String>,
        actor: Option<String>,
    ) -> PyResult<Py<PyAny>> {
        let (s, d) = (self.inner.get(py)?, device.inner.get(py)?);
        let params = IssueParams {
            template,
            user,
            serial,
            actor,
        };
        run(py, Some(&d.clone()), move || {
            s.issue_and_activate(&d, &params, &holder_pin)
        })
    }

    /// Activation by the holder with their new PIN; returns the key.
    fn activate(
        &self,
        py: Python<'_>,
        device: PyRef<'_, Device>,
        key_id: String,
        holder_pin: String,
    ) -> PyResult<Py<PyAny>> {
        let (s, d) = (self.inner.get(py)?, device.inner.get(py)?);
        run(py, Some(&d.clone()), move || {
            s.activate(&d, &key_id, &holder_pin)
        })
    }

    /// Inactivate; returns the key.
    fn inactivate(&self, py: Python<'_>, key_id: String) -> PyResult<Py<PyAny>> {
        let s = self.inner.get(py)?;
        run(py, None, move || s.inactivate(&key_id))
    }

    /// Revoke; `force` (None = the template's setting) forces the IdP deletion.
    #[pyo3(signature = (key_id, force=None))]
    fn revoke(&self, py: Python<'_>, key_id: String, force: Option<bool>) -> PyResult<Py<PyAny>> {
        let s = self.inner.get(py)?;
        run(py, None, move || s.revoke(&key_id, force))
    }

    /// Retire; returns the key.
    fn retire(&self, py: Python<'_>, key_id: String) -> PyResult<Py<PyAny>> {
        let s = self.inner.get(py)?;
        run(py, None, move || s.retire(&key_id))
    }

    /// Unregister (records forgotten, audit kept); returns the key.
    fn unregister(&self, py: Python<'_>, key_id: String) -> PyResult<Py<PyAny>> {
        let s = self.inner.get(py)?;
        run(py, None, move || s.unregister(&key_id))
    }

    /// Reissue the key to `user`; returns the key.
    #[pyo3(signature = (device, key_id, user, serial=None, actor=None))]
    fn reissue(
        &self,
        py: Python<'_>,
        device: PyRef<'_, Device>,
        key_id: String,
        user: String,
        serial: Option<String>,
        actor: Option<String>,
    ) -> PyResult<Py<PyAny>> {
        let (s, d) = (self.inner.get(py)?, device.inner.get(py)?);
        let params = ReissueParams {
            user,
            serial,
            actor,
        };
        run(py, Some(&d.clone()), move || {
            s.reissue(&d, &key_id, &params)
        })
    }

    /// Signs in with the key's passkeys; returns a list of verified sign-ins.
    fn sign_in(
        &self,
        py: Python<'_>,
        device: PyRef<'_, Device>,
        key_id: String,
        pin: String,
    ) -> PyResult<Py<PyAny>> {
        let (s, d) = (self.inner.get(py)?, device.inner.get(py)?);
        run(py, Some(&d.clone()), move || s.sign_in(&d, &key_id, &pin))
    }

    /// Everything recorded about a key: `{"key", "passkeys", "pending", "audit"}`.
    fn key(&self, py: Python<'_>, key_id: String) -> PyResult<Py<PyAny>> {
        let s = self.inner.get(py)?;
        run(py, None, move || s.key(&key_id))
    }

    /// Keys matching every given criterion (all keys without any).
    #[pyo3(signature = (user=None, state=None, serial=None))]
    fn list_keys(
        &self,
        py: Python<'_>,
        user: Option<String>,
        state: Option<String>,
        serial: Option<String>,
    ) -> PyResult<Py<PyAny>> {
        let s = self.inner.get(py)?;
        let filter = KeyFilter {
            user,
            state,
            serial,
        };
        run(py, None, move || s.list_keys(&filter))
    }

    /// The audit log of a key, oldest first.
    fn audit(&self, py: Python<'_>, key_id: String) -> PyResult<Py<PyAny>> {
        let s = self.inner.get(py)?;
        run(py, None, move || s.audit(&key_id))
    }

    /// Checks the whole audit log (hash chain and MACs): a dict with `ok`, `records`,
    /// `unchained`, `first_bad_id` and `reason`.
    fn audit_verify(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let s = self.inner.get(py)?;
        run(py, None, move || s.audit_verify())
    }

    /// Replays the IdP side-effect journal.
    fn replay_journal(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let s = self.inner.get(py)?;
        run(py, None, move || s.replay_journal())
    }

    /// Checks an IdP connection; returns how long it took (ms).
    fn check_connection(&self, py: Python<'_>, connection: String) -> PyResult<u64> {
        let s = self.inner.get(py)?;
        blocking(py, None, move || s.check_connection(&connection))
    }

    /// Directory users whose display name or UPN starts with `prefix`.
    #[pyo3(signature = (connection, prefix, top=10))]
    fn search_users(
        &self,
        py: Python<'_>,
        connection: String,
        prefix: String,
        top: u32,
    ) -> PyResult<Py<PyAny>> {
        let s = self.inner.get(py)?;
        run(py, None, move || s.search_users(&connection, &prefix, top))
    }

    /// Starts a self-service sign-in: returns `{"nonce", "expires_at_ms"}`. The nonce
    /// goes in the OpenID Connect authorization request and, with the ID token, to
    /// `self_issue` / `self_set_pin`; it is good once.
    fn self_service_begin(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let s = self.inner.get(py)?;
        run(py, None, move || s.self_service_begin())
    }

    /// Self-service PIN set with the holder's OIDC ID token and the nonce of its sign-in;
    /// returns the key.
    fn self_set_pin(
        &self,
        py: Python<'_>,
        device: PyRef<'_, Device>,
        key_id: String,
        id_token: String,
        nonce: String,
        new_pin: String,
    ) -> PyResult<Py<PyAny>> {
        let (s, d) = (self.inner.get(py)?, device.inner.get(py)?);
        run(py, Some(&d.clone()), move || {
            s.self_set_pin(&d, &key_id, &id_token, &nonce, &new_pin)
        })
    }

    /// Self-issuance with the holder's OIDC ID token and the nonce of its sign-in;
    /// returns the key.
    #[pyo3(signature = (device, id_token, nonce, template, new_pin, serial=None))]
    #[allow(clippy::too_many_arguments)]
    fn self_issue(
        &self,
        py: Python<'_>,
        device: PyRef<'_, Device>,
        id_token: String,
        nonce: String,
        template: String,
        new_pin: String,
        serial: Option<String>,
    ) -> PyResult<Py<PyAny>> {
        let (s, d) = (self.inner.get(py)?, device.inner.get(py)?);
        run(py, Some(&d.clone()), move || {
            s.self_issue(
                &d,
                &id_token,
                &nonce,
                &template,
                serial.as_deref(),
                &new_pin,
            )
        })
    }

    /// Compares the repository with every IdP connection for `users` (object ids or
    /// UPNs; empty: every user holding a key); `fix` repairs the drift, `delete_unknown`
    /// (needs `fix`) also deletes passkeys nobody issued. Returns `{"users_checked",
    /// "clean", "fixed", "errors", "findings": [...]}`.
    #[pyo3(signature = (users, fix=false, delete_unknown=false))]
    fn reconcile(
        &self,
        py: Python<'_>,
        users: Vec<String>,
        fix: bool,
        delete_unknown: bool,
    ) -> PyResult<Py<PyAny>> {
        let s = self.inner.get(py)?;
        run(py, None, move || s.reconcile(&users, fix, delete_unknown))
    }

    /// Records a bulk job (`kind`: `issue`, `revoke` or `reconcile`) from CSV text with
    /// a header row; returns the job (`{"job_id", "kind", "total", ...}`). The same text
    /// for the same kind returns the job already recorded.
    fn bulk_create(&self, py: Python<'_>, kind: String, csv_text: String) -> PyResult<Py<PyAny>> {
        let s = self.inner.get(py)?;
        run(py, None, move || s.bulk_create(&kind, &csv_text))
    }

    /// Runs (or resumes) a bulk job; returns the summary (`{"done", "failed", "items",
    /// ...}`). `device(row)` is called for each issue row (`row` a dict with `job_id`,
    /// `line`, `user`, `serial`) and returns the device spec to open (`"softkey:PATH"`,
    /// `"usb:PATH"`, `"nfc:READER"`); an exception, `None` or a non-str fails that row.
    /// `progress(dict)` is called after each row; its exceptions are reported as
    /// unraisable and do not stop the job. Both run on the calling thread. Ctrl-C stops
    /// the run between rows (a wait for a touch on the row's key is cancelled): the rows
    /// not run stay to do, and `KeyboardInterrupt` is raised once the row in progress
    /// has ended (its `__context__`: a `UsageError`, reason `bulk_stopped`).
    /// `keep_items` false leaves the summary's `items` empty (the rows reach `progress`
    /// only), so that a long job's memory does not grow with the rows it has run.
    #[pyo3(signature = (job_id, device=None, progress=None, workers=1, rate=None,
                        template=None, retry_failed=true, fix=false, delete_unknown=false,
                        keep_items=true))]
    #[allow(clippy::too_many_arguments)]
    fn bulk_run(
        &self,
        py: Python<'_>,
        job_id: i64,
        device: Option<Py<PyAny>>,
        progress: Option<Py<PyAny>>,
        workers: usize,
        rate: Option<f64>,
        template: Option<String>,
        retry_failed: bool,
        fix: bool,
        delete_unknown: bool,
        keep_items: bool,
    ) -> PyResult<Py<PyAny>> {
        let s = self.inner.get(py)?;
        let options = BulkRunOptions {
            workers,
            rate,
            template,
            retry_failed,
            fix,
            delete_unknown,
            keep_items,
        };
        let device = device
            .map(|d| require_callable("bulk_run", "device", d.into_bound(py)))
            .transpose()?
            .map(Arc::new);
        let progress = progress
            .map(|p| require_callable("bulk_run", "progress", p.into_bound(py)))
            .transpose()?
            .map(Arc::new);
        let stop = keysmith_facade::BulkStop::new();
        let stopper = stop.clone();
        let v = blocking_with(py, &|| stopper.stop(), move || {
            let mut on_device = |row: &BulkRow| -> Result<String, String> {
                let Some(cb) = device.clone() else {
                    return Err("no device callback was given".into());
                };
                let text = serde_json::to_string(row).map_err(|e| format!("row: {e}"))?;
                on_caller(move |py| {
                    let spec = match json_loads(py, &text).and_then(|d| cb.call1(py, (d,))) {
                        Ok(spec) => spec,
                        Err(e) => {
                            let e = callback_failure(py, e)?;
                            return Ok(Err(format!("device callback: {e}")));
                        }
                    };
                    Ok(spec
                        .extract::<String>(py)
                        .map_err(|_| "device callback: must return a device spec str".into()))
                })
                .unwrap_or_else(|| Err("interrupted (Ctrl-C)".into()))
            };
            let mut on_progress = |p: &BulkProgress| {
                if let Some(cb) = &progress {
                    notify(cb, p);
                }
            };
            s.bulk_run_stoppable(job_id, &options, &mut on_device, &mut on_progress, &stop)
        })?;
        to_py(py, &v)
    }

    /// One page of every key, sorted by id: `{"keys": [...], "next_after": str | None}`;
    /// pass `next_after` as `after` for the next page until it is `None`.
    #[pyo3(signature = (after=None, limit=100))]
    fn list_keys_page(
        &self,
        py: Python<'_>,
        after: Option<String>,
        limit: u32,
    ) -> PyResult<Py<PyAny>> {
        let s = self.inner.get(py)?;
        run(py, None, move || s.list_keys_page(after.as_deref(), limit))
    }

    /// One page of the pending registrations whose challenge expires within
    /// `within_ms` from now, soonest first: `{"pending": [...], "next_after": dict |
    /// None}`; pass `next_after` as `after` for the next page until it is `None`.
    #[pyo3(signature = (within_ms, after=None, limit=100))]
    fn list_expiring_page(
        &self,
        py: Python<'_>,
        within_ms: u64,
        after: Option<&Bound<'_, PyAny>>,
        limit: u32,
    ) -> PyResult<Py<PyAny>> {
        let after: Option<ExpiringCursor> = match after {
            Some(a) => Some(
                serde_json::from_str(&json_text(a)?)
                    .map_err(|e| usage(py, format!("after: {e}")))?,
            ),
            None => None,
        };
        let s = self.inner.get(py)?;
        run(py, None, move || {
            s.list_expiring_page(within_ms, after.as_ref(), limit)
        })
    }

    /// `keysmith._native.Session(actor="...")` (or `Session(closed)`).
    fn __repr__(&self) -> String {
        match self.inner.peek() {
            Some(s) => format!("keysmith._native.Session(actor={:?})", s.actor()),
            None => "keysmith._native.Session(closed)".into(),
        }
    }
}

/// The FIDO keys on USB and the PC/SC readers: `{"devices": [...], "unavailable": [...]}`.
#[pyfunction]
fn list_devices(py: Python<'_>) -> PyResult<Py<PyAny>> {
    run(py, None, || Ok(keysmith_facade::list_devices()))
}

/// Validates a credential template set (TOML or JSON text); returns its summary.
#[pyfunction]
fn template_check(py: Python<'_>, text: String) -> PyResult<Py<PyAny>> {
    run(py, None, move || keysmith_facade::template_check(&text))
}

/// Configures process-wide logging from a dict or JSON text (the CLI's `[log]` keys).
#[pyfunction]
fn configure_logging(py: Python<'_>, config: &Bound<'_, PyAny>) -> PyResult<()> {
    let text = json_text(config)?;
    blocking(py, None, move || keysmith_facade::configure_logging(&text))
}

/// The library version.
#[pyfunction]
fn version() -> &'static str {
    keysmith_facade::version()
}

/// The `keysmith._native` module.
#[pymodule]
#[pyo3(name = "_native")]
fn native_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Session>()?;
    m.add_class::<Device>()?;
    m.add_class::<split::DeviceHalf>()?;
    m.add_class::<split::ServerHalf>()?;
    m.add_function(wrap_pyfunction!(split::describe, m)?)?;
    m.add_function(wrap_pyfunction!(passkeys::user_passkeys, m)?)?;
    m.add_function(wrap_pyfunction!(passkeys::keys_needing_reissue, m)?)?;
    m.add_function(wrap_pyfunction!(passkeys::stale_keys, m)?)?;
    m.add_function(wrap_pyfunction!(passkeys::sms_readiness, m)?)?;
    m.add_function(wrap_pyfunction!(list_devices, m)?)?;
    m.add_function(wrap_pyfunction!(template_check, m)?)?;
    m.add_function(wrap_pyfunction!(configure_logging, m)?)?;
    m.add_function(wrap_pyfunction!(logging::enable_logging, m)?)?;
    m.add_function(wrap_pyfunction!(logging::disable_logging, m)?)?;
    m.add_function(wrap_pyfunction!(logging::flush_logging, m)?)?;
    m.add_function(wrap_pyfunction!(version, m)?)?;
    m.add("__version__", keysmith_facade::version())?;
    Ok(())
}
