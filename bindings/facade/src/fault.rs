//! Crash points for crash-recovery tests with real processes (feature `fault-injection`).
//!
//! With `KEYSMITH_TEST_HANG_AT` set to a step (`after-journal`, `after-idp-call`,
//! `before-state-change`, `after-state-journal`), the first flow of the session that
//! reaches that step creates the file named by `KEYSMITH_TEST_HANG_FILE` and blocks there
//! for good: the test kills the process (`kill -9`) at a known point, as a crash would.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use lifecycle::engine::{CrashPoint, EngineBuilder};

use crate::{ErrorKind, FacadeError, Result};

/// `builder` with the crash probe `KEYSMITH_TEST_HANG_AT` asks for (unchanged without it).
pub(crate) fn arm(builder: EngineBuilder) -> Result<EngineBuilder> {
    let Ok(step) = std::env::var("KEYSMITH_TEST_HANG_AT") else {
        return Ok(builder);
    };
    let target = match step.as_str() {
        "after-journal" => CrashPoint::AfterJournal,
        "after-idp-call" => CrashPoint::AfterIdpCall,
        "before-state-change" => CrashPoint::BeforeStateChange,
        "after-state-journal" => CrashPoint::AfterStateJournal,
        other => {
            return Err(FacadeError::new(
                ErrorKind::Usage,
                format!("KEYSMITH_TEST_HANG_AT: unknown step {other:?}"),
            ))
        }
    };
    let file = std::env::var_os("KEYSMITH_TEST_HANG_FILE").ok_or_else(|| {
        FacadeError::new(
            ErrorKind::Usage,
            "KEYSMITH_TEST_HANG_AT needs KEYSMITH_TEST_HANG_FILE",
        )
    })?;
    eprintln!("keysmith: fault injection armed: a flow will hang at {step}");
    let fired = Arc::new(AtomicBool::new(false));
    Ok(builder.probe(Arc::new(move |here| {
        if here == target && !fired.swap(true, Ordering::SeqCst) {
            let _ = std::fs::write(&file, step.as_bytes());
            loop {
                std::thread::park();
            }
        }
    })))
}
