//! Bulk runs that the caller can stop between rows ([`BulkStop`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use fido_transport::CancelToken;
use lifecycle::engine::{BulkDevice, BulkDeviceRequest, BulkOptions};

use super::{refuse_software, Session, MAX_WORKERS, MIN_RATE};
use crate::device::open_transport;
use crate::{now_ms, BulkProgress, BulkRow, BulkRunOptions, BulkSummary, FacadeError, Result};

/// Stops a bulk run ([`Session::bulk_run_stoppable`]) from another thread: no further
/// row starts, and the key of the issue row in progress has its wait for the user
/// ("touch your key") cancelled. A clone-able handle; clones share the request.
#[derive(Clone, Debug, Default)]
pub struct BulkStop {
    stopped: Arc<AtomicBool>,
    /// The cancel token of the key opened for the issue row in progress.
    current: Arc<Mutex<Option<CancelToken>>>,
}

impl BulkStop {
    /// A request not made yet.
    pub fn new() -> BulkStop {
        BulkStop::default()
    }

    /// Asks the run to stop. Call it again while the run lasts (as a Ctrl-C handler
    /// polling does): a key clears a cancel made before its next transaction starts.
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        if let Some(token) = self
            .current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
        {
            token.cancel();
        }
    }

    /// True once [`BulkStop::stop`] was called.
    pub fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }

    /// Remembers the key opened for the row starting now (cancelled at once if the
    /// run is already stopped).
    fn watch(&self, token: CancelToken) {
        if self.is_stopped() {
            token.cancel();
        }
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) = Some(token);
    }
}

impl Session {
    /// [`Session::bulk_run`] that `stop` can end between rows: once
    /// [`BulkStop::stop`] is called no further row starts (the row in progress ends,
    /// its key's wait for the user cancelled) and the run fails with a usage error,
    /// reason `bulk_stopped`. The rows not run stay to do and the job unfinished: a
    /// later run resumes it.
    pub fn bulk_run_stoppable(
        &self,
        job_id: i64,
        options: &BulkRunOptions,
        device: &mut dyn FnMut(&BulkRow) -> std::result::Result<String, String>,
        progress: &mut dyn FnMut(&BulkProgress),
        stop: &BulkStop,
    ) -> Result<BulkSummary> {
        if !(1..=MAX_WORKERS).contains(&options.workers) {
            return Err(FacadeError::usage(format!(
                "workers: {}: expected 1 to {}",
                options.workers, MAX_WORKERS
            )));
        }
        if let Some(r) = options.rate {
            if !(r.is_finite() && r >= MIN_RATE) {
                return Err(FacadeError::usage(format!(
                    "rate: {r}: expected at least {MIN_RATE} IdP calls per second (a finite number)"
                ))
                .with_reason("rate_invalid"));
            }
        }
        if options.delete_unknown && !options.fix {
            return Err(FacadeError::usage("delete_unknown: needs fix"));
        }
        if let Some(t) = &options.template {
            self.template(t)?;
        }
        let engine_options = BulkOptions {
            workers: options.workers,
            max_idp_calls_per_sec: options.rate,
            default_template: options.template.clone(),
            retry_failed: options.retry_failed,
            fix: options.fix,
            delete_unknown: options.delete_unknown,
            keep_items: options.keep_items,
            ..BulkOptions::default()
        };
        let allow_software_keys = self.inner.allow_software_keys;
        let mut devices = |r: &BulkDeviceRequest| -> std::result::Result<BulkDevice, String> {
            let row = BulkRow {
                job_id: r.job_id,
                line: r.line,
                user: r.user.clone(),
                serial: r.serial.clone(),
            };
            let spec = device(&row)?;
            let opened =
                open_transport(&spec).map_err(|e| format!("device {spec:?}: {}", e.message))?;
            refuse_software(opened.attachment, allow_software_keys)
                .map_err(|e| format!("device {spec:?}: {}", e.message))?;
            stop.watch(opened.transport.cancel_token());
            let (transport, can_reset_in_place) = (opened.attachment, opened.can_reset_in_place);
            let evidence = opened.evidence.clone();
            Ok(BulkDevice {
                authenticator: opened.into_client(),
                transport,
                can_reset_in_place,
                evidence,
            })
        };
        let mut on_progress =
            |p: &lifecycle::engine::BulkProgress| progress(&BulkProgress::from(p));
        Ok(self
            .inner
            .engine
            .bulk_run_stoppable(
                job_id,
                &engine_options,
                &now_ms,
                &mut devices,
                &mut on_progress,
                &|| stop.is_stopped(),
            )?
            .into())
    }
}
