//! The split deployment's two halves (`keysmith_facade::split`): `DeviceHalf` and
//! `ServerHalf`, bytes in and bytes out, and `describe`. Events and results are dicts
//! (JSON-shaped, byte strings as hex); the package (`keysmith.split`) types them.

use std::sync::Arc;

use keysmith_facade::split::{self as facade, HolderPrompts};
use keysmith_facade::Prompt;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use zeroize::Zeroizing;

use crate::{blocking, callback_failure, json_text, notify, on_caller, require_callable, to_py};

fn bytes(py: Python<'_>, b: &[u8]) -> Py<PyBytes> {
    PyBytes::new(py, b).unbind()
}

fn wall_clock() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .and_then(|d| u64::try_from(d.as_millis()).ok())
        .unwrap_or(0)
}

/// The holder's side given as Python callables: PINs are asked on the calling thread.
struct PyPrompts {
    new_pin: Option<Arc<Py<PyAny>>>,
    holder_pin: Option<Arc<Py<PyAny>>>,
    prompt: Option<Arc<Py<PyAny>>>,
}

/// Calls a PIN callback on the calling thread; a `str` is the PIN, `None` (or a failure
/// of the callback, reported as unraisable) cancels.
fn ask(cb: &Option<Arc<Py<PyAny>>>, args: Option<(u32, bool)>) -> Option<Zeroizing<String>> {
    let cb = cb.clone()?;
    on_caller(move |py| {
        let result = match args {
            Some(a) => cb.call1(py, a),
            None => cb.call0(py),
        };
        match result.and_then(|v| v.extract::<Option<String>>(py)) {
            Ok(pin) => Ok(pin.map(Zeroizing::new)),
            Err(e) => {
                callback_failure(py, e)?.write_unraisable(py, None);
                Ok(None)
            }
        }
    })
    .flatten()
}

impl HolderPrompts for PyPrompts {
    fn new_pin(&mut self, min_len: u32, confirm: bool) -> Option<Zeroizing<String>> {
        ask(&self.new_pin, Some((min_len, confirm)))
    }
    fn holder_pin(&mut self) -> Option<Zeroizing<String>> {
        ask(&self.holder_pin, None)
    }
    fn prompt(&mut self, prompt: &Prompt) {
        if let Some(cb) = &self.prompt {
            notify(cb, prompt);
        }
    }
}

fn callable(
    method: &str,
    name: &str,
    v: Option<Bound<'_, PyAny>>,
) -> PyResult<Option<Arc<Py<PyAny>>>> {
    v.map(|v| require_callable(method, name, v).map(Arc::new))
        .transpose()
}

/// The device half of one split session: `DeviceHalf(config)` (dict or JSON text: see
/// the facade's `DeviceHalf::new`). Send `hello` first.
#[pyclass(frozen, module = "keysmith._native")]
pub(crate) struct DeviceHalf {
    inner: Arc<facade::DeviceHalf>,
}

#[pymethods]
impl DeviceHalf {
    /// A device half from `config` (dict or JSON text).
    #[new]
    fn new(py: Python<'_>, config: &Bound<'_, PyAny>) -> PyResult<Self> {
        let text = json_text(config)?;
        blocking(py, None, move || facade::DeviceHalf::new(&text))
            .map(|h| DeviceHalf { inner: Arc::new(h) })
    }

    /// The `AgentHello` to send first.
    #[getter]
    fn hello(&self, py: Python<'_>) -> Py<PyBytes> {
        bytes(py, &self.inner.hello())
    }

    /// The agent id (hex).
    #[getter]
    fn agent_id(&self) -> String {
        self.inner.agent_id()
    }

    /// The agent's public key (SEC1 hex), what the server enrols.
    #[getter]
    fn agent_public_key(&self) -> String {
        self.inner.agent_public_key()
    }

    /// The generated agent key (PKCS#8 PEM), once.
    fn take_generated_key_pem(&self) -> Option<String> {
        self.inner
            .take_generated_key_pem()
            .map(|p| p.as_str().to_owned())
    }

    /// A `DeviceReport` of `device`.
    #[pyo3(signature = (device, serial_claim=None))]
    fn report(
        &self,
        py: Python<'_>,
        device: PyRef<'_, crate::Device>,
        serial_claim: Option<String>,
    ) -> PyResult<Py<PyBytes>> {
        let (h, d) = (self.inner.clone(), device.inner.get(py)?);
        let b = blocking(py, Some(&d.clone()), move || h.report(&d, serial_claim))?;
        Ok(bytes(py, &b))
    }

    /// A `Request` (dict or JSON: operation, template, key_id).
    fn request(&self, py: Python<'_>, request: &Bound<'_, PyAny>) -> PyResult<Py<PyBytes>> {
        let text = json_text(request)?;
        let h = self.inner.clone();
        let b = blocking(py, None, move || h.request(&text))?;
        Ok(bytes(py, &b))
    }

    /// A `Ready` poll.
    fn ready(&self, py: Python<'_>) -> PyResult<Py<PyBytes>> {
        let h = self.inner.clone();
        let b = blocking(py, None, move || h.ready())?;
        Ok(bytes(py, &b))
    }

    /// A `HolderAuth` with the holder's ID token.
    fn holder_auth(&self, py: Python<'_>, id_token: String) -> PyResult<Py<PyBytes>> {
        let h = self.inner.clone();
        let token = Zeroizing::new(id_token);
        let b = blocking(py, None, move || h.holder_auth(&token))?;
        Ok(bytes(py, &b))
    }

    /// The answer to a ``holder_graph`` event (a dict or JSON: op, status, body,
    /// error, request_id): the signed ``HolderGraphResult`` to send.
    fn holder_graph_result(
        &self,
        py: Python<'_>,
        result: &Bound<'_, PyAny>,
    ) -> PyResult<Py<PyBytes>> {
        let text = json_text(result)?;
        let h = self.inner.clone();
        let b = blocking(py, None, move || h.holder_graph_result(&text))?;
        Ok(bytes(py, &b))
    }

    /// An `Abort` (`cancelled`, `key_removed`, ...).
    fn abort(&self, py: Python<'_>, reason: String) -> PyResult<Py<PyBytes>> {
        let h = self.inner.clone();
        let b = blocking(py, None, move || h.abort(&reason))?;
        Ok(bytes(py, &b))
    }

    /// Takes a server message received at monotonic `now_ms`; returns the event dict.
    fn receive(&self, py: Python<'_>, message: &[u8], now_ms: u64) -> PyResult<Py<PyAny>> {
        let message = message.to_vec();
        let h = self.inner.clone();
        let event = blocking(py, None, move || h.receive(&message, now_ms))?;
        to_py(py, &event)
    }

    /// Runs the accepted job on `device`: `new_pin(min_len, confirm)` and `holder_pin()`
    /// return the holder's PIN (or `None` to cancel), `prompt(dict)` shows prompts; all
    /// run on the calling thread. Returns the `JobResult` to send.
    #[pyo3(signature = (device, now_ms, new_pin=None, holder_pin=None, prompt=None))]
    fn run_job(
        &self,
        py: Python<'_>,
        device: PyRef<'_, crate::Device>,
        now_ms: u64,
        new_pin: Option<Bound<'_, PyAny>>,
        holder_pin: Option<Bound<'_, PyAny>>,
        prompt: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyBytes>> {
        let mut ui = PyPrompts {
            new_pin: callable("run_job", "new_pin", new_pin)?,
            holder_pin: callable("run_job", "holder_pin", holder_pin)?,
            prompt: callable("run_job", "prompt", prompt)?,
        };
        let (h, d) = (self.inner.clone(), device.inner.get(py)?);
        let b = blocking(py, Some(&d.clone()), move || h.run_job(&d, now_ms, &mut ui))?;
        Ok(bytes(py, &b))
    }

    /// Ends the session.
    fn close(&self) {
        self.inner.close();
    }

    /// A short description (no secrets).
    fn __repr__(&self) -> String {
        format!(
            "keysmith._native.DeviceHalf(agent_id={:?})",
            self.inner.agent_id()
        )
    }
}

/// The server half over a `Session`'s engine: `ServerHalf(session, config)` (config: dict
/// or JSON: server_key_pem, allow_software_keys, session_ttl_ms, message_ttl_ms,
/// poll_ms).
#[pyclass(frozen, module = "keysmith._native")]
pub(crate) struct ServerHalf {
    inner: Arc<facade::ServerHalf>,
}

#[pymethods]
impl ServerHalf {
    /// A server half over `session` with `config` (dict or JSON text).
    #[new]
    fn new(
        py: Python<'_>,
        session: PyRef<'_, crate::Session>,
        config: &Bound<'_, PyAny>,
    ) -> PyResult<Self> {
        let text = json_text(config)?;
        let s = session.inner.get(py)?;
        blocking(py, None, move || facade::ServerHalf::new(&s, &text))
            .map(|h| ServerHalf { inner: Arc::new(h) })
    }

    /// The server's public key (SPKI PEM): what device halves pin.
    fn public_key_pem(&self, py: Python<'_>) -> PyResult<String> {
        let h = self.inner.clone();
        blocking(py, None, move || h.public_key_pem())
    }

    /// The server key generated at construction (PKCS#8 PEM), once.
    fn take_generated_key_pem(&self) -> Option<String> {
        self.inner
            .take_generated_key_pem()
            .map(|p| p.as_str().to_owned())
    }

    /// Enrols an agent (public key as SPKI PEM or SEC1 hex; class `station` or `holder`);
    /// returns its agent id.
    #[pyo3(signature = (public_key, agent_class, approved=true, station=None))]
    fn add_agent(
        &self,
        py: Python<'_>,
        public_key: String,
        agent_class: String,
        approved: bool,
        station: Option<String>,
    ) -> PyResult<String> {
        let h = self.inner.clone();
        blocking(py, None, move || {
            h.add_agent(&public_key, &agent_class, approved, station)
        })
    }

    /// Approves an enrolled agent.
    fn approve_agent(&self, py: Python<'_>, agent_id: String) -> PyResult<()> {
        let h = self.inner.clone();
        blocking(py, None, move || h.approve_agent(&agent_id))
    }

    /// Revokes an agent.
    fn revoke_agent(&self, py: Python<'_>, agent_id: String) -> PyResult<()> {
        let h = self.inner.clone();
        blocking(py, None, move || h.revoke_agent(&agent_id))
    }

    /// Opens a session from an `AgentHello`; returns `(session_id, reply)`.
    #[pyo3(signature = (hello, now_ms=None))]
    fn open(
        &self,
        py: Python<'_>,
        hello: &[u8],
        now_ms: Option<u64>,
    ) -> PyResult<(String, Py<PyBytes>)> {
        let hello = hello.to_vec();
        let h = self.inner.clone();
        let now = now_ms.unwrap_or_else(wall_clock);
        let o = blocking(py, None, move || h.open(&hello, now))?;
        Ok((o.session_id, bytes(py, &o.reply)))
    }

    /// Handles a device message of `session_id`; returns the reply.
    #[pyo3(signature = (session_id, message, now_ms=None))]
    fn handle(
        &self,
        py: Python<'_>,
        session_id: String,
        message: &[u8],
        now_ms: Option<u64>,
    ) -> PyResult<Py<PyBytes>> {
        let message = message.to_vec();
        let h = self.inner.clone();
        let now = now_ms.unwrap_or_else(wall_clock);
        let b = blocking(py, None, move || h.handle(&session_id, &message, now))?;
        Ok(bytes(py, &b))
    }

    /// Queues operator work for a station (request: dict or JSON); returns the work id.
    fn queue_station_work(
        &self,
        py: Python<'_>,
        agent_id: String,
        request: &Bound<'_, PyAny>,
        actor: String,
    ) -> PyResult<String> {
        let text = json_text(request)?;
        let h = self.inner.clone();
        blocking(py, None, move || {
            h.queue_station_work(&agent_id, &text, &actor)
        })
    }

    /// Where queued work stands (dict).
    fn station_work(&self, py: Python<'_>, work_id: String) -> PyResult<Py<PyAny>> {
        let h = self.inner.clone();
        let w = blocking(py, None, move || h.station_work(&work_id))?;
        to_py(py, &w)
    }

    /// A short description (no secrets).
    fn __repr__(&self) -> String {
        "keysmith._native.ServerHalf(...)".to_owned()
    }
}

/// A JSON view (dict) of a split message for logs; secrets left out, nothing verified.
#[pyfunction]
pub(crate) fn describe(py: Python<'_>, message: &[u8]) -> PyResult<Py<PyAny>> {
    let message = message.to_vec();
    let v = blocking(py, None, move || facade::describe(&message))?;
    to_py(py, &v)
}
