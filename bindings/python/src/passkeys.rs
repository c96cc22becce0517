//! Every passkey a user holds, keys needing reissue, keys not used for a while and the
//! SMS/voice retirement readiness report (issue 19 items 4–6, issue 13 item 12), as
//! module functions over a [`crate::Session`] (the class's methods stay in `lib.rs`).

use pyo3::prelude::*;

use crate::{run, Session};

/// Every passkey `user` (object id or UPN) holds at every IdP connection, beside the keys
/// keysmith issued them: `{"user", "user_id", "upn", "passkeys": [...], "keys": [...],
/// "failed": [...]}`.
#[pyfunction]
pub(crate) fn user_passkeys(
    py: Python<'_>,
    session: PyRef<'_, Session>,
    user: String,
) -> PyResult<Py<PyAny>> {
    let s = session.inner.get(py)?;
    run(py, None, move || s.user_passkeys(&user))
}

/// Keys marked as needing reissue, each key's fields with `"reason"`.
#[pyfunction]
pub(crate) fn keys_needing_reissue(
    py: Python<'_>,
    session: PyRef<'_, Session>,
) -> PyResult<Py<PyAny>> {
    let s = session.inner.get(py)?;
    run(py, None, move || s.keys_needing_reissue())
}

/// Active keys not used during the last `days` days, each key's fields with
/// `"last_used_ms"` and `"made_ms"`.
#[pyfunction]
pub(crate) fn stale_keys(
    py: Python<'_>,
    session: PyRef<'_, Session>,
    days: u32,
) -> PyResult<Py<PyAny>> {
    let s = session.inner.get(py)?;
    run(py, None, move || s.stale_keys(days))
}

/// The SMS/voice retirement readiness of `group`'s users (None: the whole directory) at
/// `connection` (None: the first configured).
#[pyfunction]
#[pyo3(signature = (session, connection=None, group=None))]
pub(crate) fn sms_readiness(
    py: Python<'_>,
    session: PyRef<'_, Session>,
    connection: Option<String>,
    group: Option<String>,
) -> PyResult<Py<PyAny>> {
    let s = session.inner.get(py)?;
    run(py, None, move || {
        s.sms_readiness(connection.as_deref(), group.as_deref())
    })
}
