//! Handles `close()` lets go of (`Session`, `Device`).

use std::sync::{PoisonError, RwLock};

use keysmith_facade::FacadeError;
use pyo3::prelude::*;

use crate::py_err;

/// A handle `close()` lets go of: afterwards every use raises `keysmith.UsageError`
/// (reason `closed`).
pub(crate) struct Closable<T> {
    what: &'static str,
    slot: RwLock<Option<T>>,
}

impl<T: Clone> Closable<T> {
    pub(crate) fn new(what: &'static str, value: T) -> Self {
        Closable {
            what,
            slot: RwLock::new(Some(value)),
        }
    }

    /// The handle, or `UsageError` (reason `closed`) once closed.
    pub(crate) fn get(&self, py: Python<'_>) -> PyResult<T> {
        self.peek().ok_or_else(|| {
            let message = format!("the {} is closed", self.what);
            py_err(py, FacadeError::usage(message).with_reason("closed"))
        })
    }

    pub(crate) fn peek(&self) -> Option<T> {
        self.slot
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Lets go of the handle (the resource closes once no operation holds a clone).
    pub(crate) fn close(&self) -> Option<T> {
        self.slot
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}
