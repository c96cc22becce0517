//! Log records to Python's `logging` (`keysmith.enable_logging()`).
//!
//! The diagnostics hand every record to a hook on the thread that logs, often a worker
//! thread of a call (see [`crate::blocking`]) or a thread of the engine. Taking the GIL
//! there could deadlock against a Python thread that holds it while it waits for a lock
//! that logging thread holds, so the hook only queues the record; the queue is delivered
//! to `logging` on a Python thread: by every blocking call while it waits and before it
//! returns, and by `flush_logging()`.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use keysmith_facade::{LogDestination, LogLevel, LogRecord};
use pyo3::prelude::*;

use crate::{blocking, callback_failure, usage};

/// Most records waiting for delivery; beyond it records are counted and dropped.
const MAX_QUEUED: usize = 10_000;

struct Queued {
    level: LogLevel,
    target: String,
    message: String,
}

static QUEUE: Mutex<VecDeque<Queued>> = Mutex::new(VecDeque::new());
static DROPPED: AtomicU64 = AtomicU64::new(0);

fn push(r: &LogRecord<'_>) {
    let mut q = QUEUE.lock().unwrap_or_else(PoisonError::into_inner);
    if q.len() >= MAX_QUEUED {
        DROPPED.fetch_add(1, Ordering::Relaxed);
        return;
    }
    q.push_back(Queued {
        level: r.level,
        target: r.target.to_owned(),
        message: r.message.to_owned(),
    });
}

/// Python's number for a level (`logging.ERROR` ...; trace is 5, below `DEBUG`).
fn levelno(level: LogLevel) -> u32 {
    match level {
        LogLevel::Off | LogLevel::Error => 40,
        LogLevel::Warn => 30,
        LogLevel::Info => 20,
        LogLevel::Debug => 10,
        LogLevel::Trace => 5,
    }
}

/// `keysmith.<target with :: as .>`: `lifecycle::engine::jobs` logs to
/// `keysmith.lifecycle.engine.jobs`, a child of the `keysmith` logger.
fn logger_name(target: &str) -> String {
    format!("keysmith.{}", target.replace("::", "."))
}

/// Delivers the queued records to `logging`, on this thread. A failing handler is
/// reported as unraisable (as `logging` itself does) and does not fail the call; an
/// interrupt raised meanwhile (Ctrl-C: `KeyboardInterrupt`) is returned, the records not
/// delivered yet stay dropped.
pub(crate) fn deliver(py: Python<'_>) -> PyResult<()> {
    let records: Vec<Queued> = QUEUE
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .drain(..)
        .collect();
    let dropped = DROPPED.swap(0, Ordering::Relaxed);
    if records.is_empty() && dropped == 0 {
        return Ok(());
    }
    let run = || -> PyResult<()> {
        let get_logger = py.import("logging")?.getattr("getLogger")?;
        if dropped > 0 {
            get_logger.call1(("keysmith",))?.call_method1(
                "log",
                (
                    30,
                    "%d log records were dropped (delivery fell behind)",
                    dropped,
                ),
            )?;
        }
        for r in records {
            get_logger
                .call1((logger_name(&r.target),))?
                .call_method1("log", (levelno(r.level), "%s", r.message))?;
        }
        Ok(())
    };
    match run() {
        Ok(()) => Ok(()),
        Err(e) => {
            callback_failure(py, e)?.write_unraisable(py, None);
            Ok(())
        }
    }
}

/// Sends the library's log records to Python's `logging` at `level` (`"error"`,
/// `"warn"`, `"info"`, `"debug"`, `"trace"`) and above: to loggers named
/// `keysmith.<crate>.<module>`, children of `keysmith`. Records stop going to stderr
/// (a log file set by `configure_logging` is kept).
#[pyfunction]
#[pyo3(signature = (level="info"))]
pub(crate) fn enable_logging(py: Python<'_>, level: &str) -> PyResult<()> {
    let level = level
        .parse::<LogLevel>()
        .map_err(|e| usage(py, e.to_string()))?;
    blocking(py, None, move || {
        let mut config = keysmith_facade::logging_config().unwrap_or_default();
        config.level = level;
        if config.destination == LogDestination::Stderr {
            config.destination = LogDestination::None;
        }
        keysmith_facade::apply_logging(config)?;
        keysmith_facade::set_log_hook(Some(Arc::new(push)))
    })?;
    deliver(py)
}

/// Stops sending records to `logging` (after delivering those queued); the level and
/// destination stay as they are.
#[pyfunction]
pub(crate) fn disable_logging(py: Python<'_>) -> PyResult<()> {
    if keysmith_facade::logging_config().is_some() {
        blocking(py, None, || keysmith_facade::set_log_hook(None))?;
    }
    deliver(py)
}

/// Delivers the records logged so far to `logging` now (every call does so while it
/// waits and before it returns; records of background threads wait for the next call).
#[pyfunction]
pub(crate) fn flush_logging(py: Python<'_>) -> PyResult<()> {
    deliver(py)
}
