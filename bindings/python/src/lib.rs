//! # keysmith (Python)
//!
//! The Python module `keysmith` over [`keysmith_facade`]: `Session(config)`,
//! `Device(spec)`, methods returning dicts/lists, exceptions `KeysmithError` (base) and
//! `UsageError`, `DeviceError`, `IdpError`, `RepositoryError`, `TemplateError`,
//! `TransitionError`, `InternalError` (each with `kind` and `code` attributes, the C
//! ABI's codes). Blocking calls release the GIL; the prompt callback is any callable
//! taking a dict. Built with maturin (`bindings/python/pyproject.toml`).
#![warn(missing_docs)]

use keysmith_facade::{
    BulkProgress, BulkRow, BulkRunOptions, ErrorKind, ExpiringCursor, FacadeError, IssueParams,
    KeyFilter, Prompt, ReissueParams,
};
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::PyString;

create_exception!(
    keysmith,
    KeysmithError,
    PyException,
    "Base of every keysmith error; `kind` and `code` name the kind."
);
create_exception!(
    keysmith,
    UsageError,
    KeysmithError,
    "Bad input: config, unknown key/template/connection, action not allowed."
);
create_exception!(
    keysmith,
    DeviceError,
    KeysmithError,
    "The security key or its transport failed."
);
create_exception!(
    keysmith,
    IdpError,
    KeysmithError,
    "The identity provider refused or failed."
);
create_exception!(
    keysmith,
    RepositoryError,
    KeysmithError,
    "The repository failed or refused."
);
create_exception!(
    keysmith,
    TemplateError,
    KeysmithError,
    "A template is invalid or unsupported."
);
create_exception!(
    keysmith,
    TransitionError,
    KeysmithError,
    "The action is not allowed in the key's state."
);
create_exception!(
    keysmith,
    InternalError,
    KeysmithError,
    "An internal error (a bug)."
);

/// The Python exception for a facade error, with `kind` and `code` attributes.
fn py_err(py: Python<'_>, e: FacadeError) -> PyErr {
    let err = match e.kind {
        ErrorKind::Usage => UsageError::new_err(e.message),
        ErrorKind::Device => DeviceError::new_err(e.message),
        ErrorKind::Idp => IdpError::new_err(e.message),
        ErrorKind::Repository => RepositoryError::new_err(e.message),
        ErrorKind::Template => TemplateError::new_err(e.message),
        ErrorKind::Transition => TransitionError::new_err(e.message),
        _ => InternalError::new_err(e.message),
    };
    let value = err.value(py);
    // Attributes are a convenience: failing to set them must not hide the error.
    let _ = value.setattr("kind", e.kind.as_str());
    let _ = value.setattr("code", e.kind.code());
    err
}

/// Converts a serializable result to Python objects (through JSON: dicts, lists, str,
/// int, bool, None).
fn to_py<T: serde::Serialize>(py: Python<'_>, v: &T) -> PyResult<PyObject> {
    let text = serde_json::to_string(v)
        .map_err(|e| InternalError::new_err(format!("serializing the result: {e}")))?;
    Ok(py.import("json")?.call_method1("loads", (text,))?.unbind())
}

/// The JSON text of a `dict` (or other JSON-able object), or a `str` as is.
fn json_text(value: &Bound<'_, PyAny>) -> PyResult<String> {
    if let Ok(s) = value.downcast::<PyString>() {
        return Ok(s.to_str()?.to_owned());
    }
    value
        .py()
        .import("json")?
        .call_method1("dumps", (value,))?
        .extract()
}

/// Runs `f` without the GIL and converts its result.
fn blocking<T: serde::Serialize + Send>(
    py: Python<'_>,
    f: impl FnOnce() -> keysmith_facade::Result<T> + Send,
) -> PyResult<PyObject> {
    match py.allow_threads(f) {
        Ok(v) => to_py(py, &v),
        Err(e) => Err(py_err(py, e)),
    }
}

/// An opened security key: `Device("usb:/dev/hidraw3")`, `Device("nfc:READER")` or
/// `Device("softkey:/path/state.json")`.
#[pyclass(frozen, module = "keysmith")]
struct Device {
    inner: keysmith_facade::Device,
}

#[pymethods]
impl Device {
    #[new]
    fn new(py: Python<'_>, spec: String) -> PyResult<Self> {
        py.allow_threads(|| keysmith_facade::Device::open(&spec))
            .map(|inner| Device { inner })
            .map_err(|e| py_err(py, e))
    }

    /// What the key says about itself (authenticatorGetInfo), as a dict.
    fn info(&self, py: Python<'_>) -> PyResult<PyObject> {
        let d = self.inner.clone();
        blocking(py, move || d.info())
    }

    /// Cancels the operation waiting on this key for the user ("touch your key"); call
    /// it from another thread or from the prompt callback. The waiting call raises
    /// `DeviceError`.
    fn cancel(&self) {
        self.inner.cancel();
    }

    /// The spec it was opened with.
    #[getter]
    fn spec(&self) -> String {
        self.inner.spec()
    }

    /// Its serial number, if known.
    #[getter]
    fn serial(&self) -> Option<String> {
        self.inner.serial()
    }

    fn __repr__(&self) -> String {
        format!("keysmith.Device({:?})", self.inner.spec())
    }
}

/// A keysmith session: `Session(config)` with `config` a dict or JSON text (see the
/// facade's `Session::open`: repository, pin_key, station, idp, templates, log).
#[pyclass(frozen, module = "keysmith")]
struct Session {
    inner: keysmith_facade::Session,
}

#[pymethods]
impl Session {
    #[new]
    fn new(py: Python<'_>, config: &Bound<'_, PyAny>) -> PyResult<Self> {
        let text = json_text(config)?;
        py.allow_threads(|| keysmith_facade::Session::open(&text))
            .map(|inner| Session { inner })
            .map_err(|e| py_err(py, e))
    }

    /// Sends prompts (dicts such as `{"kind": "touch_key", "step": "makeCredential"}`) to
    /// `callback`; `None` stops them. Exceptions raised by the callback are reported as
    /// unraisable and do not stop the operation.
    #[pyo3(signature = (callback))]
    fn set_prompt(&self, callback: Option<PyObject>) {
        match callback {
            None => self.inner.clear_prompt(),
            Some(cb) => self.inner.set_prompt(Box::new(move |p: &Prompt| {
                Python::with_gil(|py| {
                    let result = to_py(py, p).and_then(|d| cb.call1(py, (d,)));
                    if let Err(e) = result {
                        e.write_unraisable(py, None);
                    }
                })
            })),
        }
    }

    /// The actor recorded for operator calls.
    #[getter]
    fn actor(&self) -> String {
        self.inner.actor()
    }

    /// The names of the loaded credential templates.
    fn templates(&self) -> Vec<String> {
        self.inner.templates()
    }

    /// Loads (or replaces) a credential template set (TOML or JSON text); returns its
    /// summary.
    fn add_template(&self, py: Python<'_>, text: String) -> PyResult<PyObject> {
        let s = self.inner.clone();
        blocking(py, move || s.add_template(&text))
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
    ) -> PyResult<PyObject> {
        let (s, d) = (self.inner.clone(), device.inner.clone());
        let params = IssueParams {
            template,
            user,
            serial,
            actor,
        };
        blocking(py, move || s.issue(&d, &params))
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
    ) -> PyResult<PyObject> {
        let (s, d) = (self.inner.clone(), device.inner.clone());
        let params = IssueParams {
            template,
            user,
            serial,
            actor,
        };
        blocking(py, move || s.issue_and_activate(&d, &params, &holder_pin))
    }

    /// Activation by the holder with their new PIN; returns the key.
    fn activate(
        &self,
        py: Python<'_>,
        device: PyRef<'_, Device>,
        key_id: String,
        holder_pin: String,
    ) -> PyResult<PyObject> {
        let (s, d) = (self.inner.clone(), device.inner.clone());
        blocking(py, move || s.activate(&d, &key_id, &holder_pin))
    }

    /// Inactivate; returns the key.
    fn inactivate(&self, py: Python<'_>, key_id: String) -> PyResult<PyObject> {
        let s = self.inner.clone();
        blocking(py, move || s.inactivate(&key_id))
    }

    /// Revoke; `force` (None = the template's setting) forces the IdP deletion.
    #[pyo3(signature = (key_id, force=None))]
    fn revoke(&self, py: Python<'_>, key_id: String, force: Option<bool>) -> PyResult<PyObject> {
        let s = self.inner.clone();
        blocking(py, move || s.revoke(&key_id, force))
    }

    /// Retire; returns the key.
    fn retire(&self, py: Python<'_>, key_id: String) -> PyResult<PyObject> {
        let s = self.inner.clone();
        blocking(py, move || s.retire(&key_id))
    }

    /// Unregister (records forgotten, audit kept); returns the key.
    fn unregister(&self, py: Python<'_>, key_id: String) -> PyResult<PyObject> {
        let s = self.inner.clone();
        blocking(py, move || s.unregister(&key_id))
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
    ) -> PyResult<PyObject> {
        let (s, d) = (self.inner.clone(), device.inner.clone());
        let params = ReissueParams {
            user,
            serial,
            actor,
        };
        blocking(py, move || s.reissue(&d, &key_id, &params))
    }

    /// Signs in with the key's passkeys; returns a list of verified sign-ins.
    fn sign_in(
        &self,
        py: Python<'_>,
        device: PyRef<'_, Device>,
        key_id: String,
        pin: String,
    ) -> PyResult<PyObject> {
        let (s, d) = (self.inner.clone(), device.inner.clone());
        blocking(py, move || s.sign_in(&d, &key_id, &pin))
    }

    /// Everything recorded about a key: `{"key", "passkeys", "pending", "audit"}`.
    fn key(&self, py: Python<'_>, key_id: String) -> PyResult<PyObject> {
        let s = self.inner.clone();
        blocking(py, move || s.key(&key_id))
    }

    /// Keys matching every given criterion (all keys without any).
    #[pyo3(signature = (user=None, state=None, serial=None))]
    fn list_keys(
        &self,
        py: Python<'_>,
        user: Option<String>,
        state: Option<String>,
        serial: Option<String>,
    ) -> PyResult<PyObject> {
        let s = self.inner.clone();
        let filter = KeyFilter {
            user,
            state,
            serial,
        };
        blocking(py, move || s.list_keys(&filter))
    }

    /// The audit log of a key, oldest first.
    fn audit(&self, py: Python<'_>, key_id: String) -> PyResult<PyObject> {
        let s = self.inner.clone();
        blocking(py, move || s.audit(&key_id))
    }

    /// Replays the IdP side-effect journal.
    fn replay_journal(&self, py: Python<'_>) -> PyResult<PyObject> {
        let s = self.inner.clone();
        blocking(py, move || s.replay_journal())
    }

    /// Checks an IdP connection; returns how long it took (ms).
    fn check_connection(&self, py: Python<'_>, connection: String) -> PyResult<PyObject> {
        let s = self.inner.clone();
        blocking(py, move || s.check_connection(&connection))
    }

    /// Directory users whose display name or UPN starts with `prefix`.
    #[pyo3(signature = (connection, prefix, top=10))]
    fn search_users(
        &self,
        py: Python<'_>,
        connection: String,
        prefix: String,
        top: u32,
    ) -> PyResult<PyObject> {
        let s = self.inner.clone();
        blocking(py, move || s.search_users(&connection, &prefix, top))
    }

    /// Self-service PIN set with the holder's OIDC ID token; returns the key.
    fn self_set_pin(
        &self,
        py: Python<'_>,
        device: PyRef<'_, Device>,
        key_id: String,
        id_token: String,
        new_pin: String,
    ) -> PyResult<PyObject> {
        let (s, d) = (self.inner.clone(), device.inner.clone());
        blocking(py, move || s.self_set_pin(&d, &key_id, &id_token, &new_pin))
    }

    /// Self-issuance with the holder's OIDC ID token; returns the key.
    #[pyo3(signature = (device, id_token, template, new_pin, serial=None))]
    fn self_issue(
        &self,
        py: Python<'_>,
        device: PyRef<'_, Device>,
        id_token: String,
        template: String,
        new_pin: String,
        serial: Option<String>,
    ) -> PyResult<PyObject> {
        let (s, d) = (self.inner.clone(), device.inner.clone());
        blocking(py, move || {
            s.self_issue(&d, &id_token, &template, serial.as_deref(), &new_pin)
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
    ) -> PyResult<PyObject> {
        let s = self.inner.clone();
        blocking(py, move || s.reconcile(&users, fix, delete_unknown))
    }

    /// Records a bulk job (`kind`: `issue`, `revoke` or `reconcile`) from CSV text with
    /// a header row; returns the job (`{"job_id", "kind", "total", ...}`). The same text
    /// for the same kind returns the job already recorded.
    fn bulk_create(&self, py: Python<'_>, kind: String, csv_text: String) -> PyResult<PyObject> {
        let s = self.inner.clone();
        blocking(py, move || s.bulk_create(&kind, &csv_text))
    }

    /// Runs (or resumes) a bulk job; returns the summary (`{"done", "failed", "items",
    /// ...}`). `device(row)` is called for each issue row (`row` a dict with `job_id`,
    /// `line`, `user`, `serial`) and returns the device spec to open (`"softkey:PATH"`,
    /// `"usb:PATH"`, `"nfc:READER"`); an exception, `None` or a non-str fails that row.
    /// `progress(dict)` is called after each row; its exceptions are reported as
    /// unraisable and do not stop the job. Both run on the calling thread.
    #[pyo3(signature = (job_id, device=None, progress=None, workers=1, rate=None,
                        template=None, retry_failed=true, fix=false, delete_unknown=false))]
    #[allow(clippy::too_many_arguments)]
    fn bulk_run(
        &self,
        py: Python<'_>,
        job_id: i64,
        device: Option<PyObject>,
        progress: Option<PyObject>,
        workers: usize,
        rate: Option<f64>,
        template: Option<String>,
        retry_failed: bool,
        fix: bool,
        delete_unknown: bool,
    ) -> PyResult<PyObject> {
        let s = self.inner.clone();
        let options = BulkRunOptions {
            workers,
            rate,
            template,
            retry_failed,
            fix,
            delete_unknown,
        };
        blocking(py, move || {
            let mut on_device = |row: &BulkRow| -> Result<String, String> {
                let Some(cb) = &device else {
                    return Err("no device callback was given".into());
                };
                Python::with_gil(|py| {
                    let result = to_py(py, row)
                        .and_then(|d| cb.call1(py, (d,)))
                        .map_err(|e| format!("device callback: {e}"))?;
                    result
                        .extract::<String>(py)
                        .map_err(|_| "device callback: must return a device spec str".into())
                })
            };
            let mut on_progress = |p: &BulkProgress| {
                let Some(cb) = &progress else { return };
                Python::with_gil(|py| {
                    let result = to_py(py, p).and_then(|d| cb.call1(py, (d,)));
                    if let Err(e) = result {
                        e.write_unraisable(py, None);
                    }
                });
            };
            s.bulk_run(job_id, &options, &mut on_device, &mut on_progress)
        })
    }

    /// One page of every key, sorted by id: `{"keys": [...], "next_after": str | None}`;
    /// pass `next_after` as `after` for the next page until it is `None`.
    #[pyo3(signature = (after=None, limit=100))]
    fn list_keys_page(
        &self,
        py: Python<'_>,
        after: Option<String>,
        limit: u32,
    ) -> PyResult<PyObject> {
        let s = self.inner.clone();
        blocking(py, move || s.list_keys_page(after.as_deref(), limit))
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
    ) -> PyResult<PyObject> {
        let after: Option<ExpiringCursor> = match after {
            Some(a) => Some(
                serde_json::from_str(&json_text(a)?)
                    .map_err(|e| py_err(py, FacadeError::usage(format!("after: {e}"))))?,
            ),
            None => None,
        };
        let s = self.inner.clone();
        blocking(py, move || {
            s.list_expiring_page(within_ms, after.as_ref(), limit)
        })
    }

    fn __repr__(&self) -> String {
        format!("keysmith.Session(actor={:?})", self.inner.actor())
    }
}

/// The FIDO keys on USB and the PC/SC readers: `{"devices": [...], "unavailable": [...]}`.
#[pyfunction]
fn list_devices(py: Python<'_>) -> PyResult<PyObject> {
    blocking(py, || Ok(keysmith_facade::list_devices()))
}

/// Validates a credential template set (TOML or JSON text); returns its summary.
#[pyfunction]
fn template_check(py: Python<'_>, text: String) -> PyResult<PyObject> {
    blocking(py, move || keysmith_facade::template_check(&text))
}

/// Configures process-wide logging from a dict or JSON text (the CLI's `[log]` keys).
#[pyfunction]
fn configure_logging(py: Python<'_>, config: &Bound<'_, PyAny>) -> PyResult<()> {
    let text = json_text(config)?;
    py.allow_threads(|| keysmith_facade::configure_logging(&text))
        .map_err(|e| py_err(py, e))
}

/// The library version.
#[pyfunction]
fn version() -> &'static str {
    keysmith_facade::version()
}

/// The `keysmith` Python module.
#[pymodule]
#[pyo3(name = "keysmith")]
fn keysmith_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add_class::<Session>()?;
    m.add_class::<Device>()?;
    m.add_function(wrap_pyfunction!(list_devices, m)?)?;
    m.add_function(wrap_pyfunction!(template_check, m)?)?;
    m.add_function(wrap_pyfunction!(configure_logging, m)?)?;
    m.add_function(wrap_pyfunction!(version, m)?)?;
    m.add("__version__", keysmith_facade::version())?;
    m.add("KeysmithError", py.get_type::<KeysmithError>())?;
    m.add("UsageError", py.get_type::<UsageError>())?;
    m.add("DeviceError", py.get_type::<DeviceError>())?;
    m.add("IdpError", py.get_type::<IdpError>())?;
    m.add("RepositoryError", py.get_type::<RepositoryError>())?;
    m.add("TemplateError", py.get_type::<TemplateError>())?;
    m.add("TransitionError", py.get_type::<TransitionError>())?;
    m.add("InternalError", py.get_type::<InternalError>())?;
    Ok(())
}
