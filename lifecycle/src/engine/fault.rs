//! Fault injection for crash-recovery tests: where a simulated crash stops a flow and
//! the probe a child process uses to be killed at a known step.

#[cfg(feature = "fault-injection")]
use std::sync::{Arc, Mutex, PoisonError};

use super::Engine;
#[cfg(feature = "fault-injection")]
use super::EngineError;
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

/// A probe called at every [`CrashPoint`] a flow passes (see [`EngineBuilder::probe`](super::EngineBuilder::probe)).
#[cfg(feature = "fault-injection")]
pub type CrashProbe = Arc<dyn Fn(CrashPoint) + Send + Sync>;

/// The engine's fault-injection state; empty (and every [`CrashPoint`] passed freely)
/// unless the crate is built with the `fault-injection` feature.
#[derive(Default)]
pub(super) struct Faults {
    /// The point where the next simulated crash stops a flow.
    #[cfg(feature = "fault-injection")]
    crash: Mutex<Option<CrashPoint>>,
    /// Called at every point passed.
    #[cfg(feature = "fault-injection")]
    probe: Option<CrashProbe>,
}

impl Faults {
    /// These hooks with `probe` called at every point passed.
    #[cfg(feature = "fault-injection")]
    pub(super) fn with_probe(mut self, probe: CrashProbe) -> Faults {
        self.probe = Some(probe);
        self
    }

    /// The state for a view of the engine: the probe is shared and a pending simulated
    /// crash is taken over (it fires in the view, not here).
    pub(super) fn take_over(&self) -> Faults {
        #[cfg(feature = "fault-injection")]
        {
            let crash = self
                .crash
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            Faults {
                crash: Mutex::new(crash),
                probe: self.probe.clone(),
            }
        }
        #[cfg(not(feature = "fault-injection"))]
        Faults::default()
    }
}

#[cfg(feature = "fault-injection")]
impl Engine {
    /// Fault injection for crash-recovery tests: the next journalled IdP call stops at
    /// `point` with [`EngineError::SimulatedCrash`], writing nothing more (as a killed
    /// process would). Cleared when it fires.
    pub fn crash_at(&self, point: Option<CrashPoint>) {
        *self
            .faults
            .crash
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = point;
    }
}

impl Engine {
    /// Passes `here`: calls the probe, and stops the flow with
    /// [`EngineError::SimulatedCrash`] if a simulated crash waits for this point. A
    /// no-op without the `fault-injection` feature.
    #[cfg(feature = "fault-injection")]
    pub(super) fn maybe_crash(&self, here: CrashPoint) -> Result<(), Error> {
        if let Some(p) = &self.faults.probe {
            p(here);
        }
        let mut c = self
            .faults
            .crash
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if *c == Some(here) {
            *c = None;
            return Err(EngineError::SimulatedCrash { point: here }.into());
        }
        Ok(())
    }

    /// Passes `here` (without the `fault-injection` feature nothing stops a flow).
    #[cfg(not(feature = "fault-injection"))]
    #[allow(clippy::unnecessary_wraps, clippy::unused_self)]
    pub(super) fn maybe_crash(&self, _here: CrashPoint) -> Result<(), Error> {
        Ok(())
    }
}
