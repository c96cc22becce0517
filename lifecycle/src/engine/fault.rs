//! Fault injection for crash-recovery tests: where a simulated crash stops a flow and
//! the probe a child process uses to be killed at a known step.

use std::sync::{Arc, PoisonError};

use super::{Engine, EngineError};
use crate::Error;

/// Where a simulated crash stops a flow (for crash-recovery tests).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CrashPoint {
    /// After the journal entry is committed, before the IdP is called.
    AfterJournal,
    /// After the IdP answered, before the journal entry is closed.
    AfterIdpCall,
    /// Before a flow commits the key's state change (e.g. activation's Issued -> Active,
    /// after its registrations are closed).
    BeforeStateChange,
    /// After the flow journalled its state change, before its first IdP side effect is
    /// journalled.
    AfterStateJournal,
    /// A bulk job item was marked running, before its work starts.
    BulkItemStarted,
}

/// A probe called at every [`CrashPoint`] a flow passes (see [`Engine::with_probe`]).
pub type CrashProbe = Arc<dyn Fn(CrashPoint) + Send + Sync>;

impl Engine {
    /// Fault injection for crash-recovery tests: the next journalled IdP call stops at
    /// `point` with [`EngineError::SimulatedCrash`], writing nothing more (as a killed
    /// process would). Cleared when it fires.
    pub fn crash_at(&self, point: Option<CrashPoint>) {
        *self.crash.lock().unwrap_or_else(PoisonError::into_inner) = point;
    }

    /// Test hook for crash-recovery tests with a real process: `probe` is called at
    /// every [`CrashPoint`] a flow reaches, before anything after that point is done. A
    /// child process uses it to announce the step and block there until it is killed
    /// (`kill -9`); the probe must not touch the engine. Not for production use.
    pub fn with_probe(mut self, probe: CrashProbe) -> Self {
        self.probe = Some(probe);
        self
    }

    pub(super) fn maybe_crash(&self, here: CrashPoint) -> Result<(), Error> {
        if let Some(p) = &self.probe {
            p(here);
        }
        let mut c = self.crash.lock().unwrap_or_else(PoisonError::into_inner);
        if *c == Some(here) {
            *c = None;
            return Err(EngineError::SimulatedCrash { point: here }.into());
        }
        Ok(())
    }
}
