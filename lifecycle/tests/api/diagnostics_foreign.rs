//! A process whose global `tracing` subscriber was installed by someone else: our
//! install refuses with a clear error instead of silently logging nowhere. Its own test
//! binary, because the global subscriber is set once per process.

use lifecycle::diagnostics::{Diagnostics, DiagnosticsError, LogConfig};
use lifecycle::Error;

#[test]
fn install_refuses_when_another_subscriber_is_global() {
    crate::common::in_own_process(
        "diagnostics_foreign::install_refuses_when_another_subscriber_is_global_alone",
    );
}

/// The test itself, run by the one above in a process of its own: the `tracing`
/// subscriber is process-global.
#[test]
#[ignore = "run in its own process by install_refuses_when_another_subscriber_is_global"]
fn install_refuses_when_another_subscriber_is_global_alone() {
    tracing::subscriber::set_global_default(tracing_subscriber::registry())
        .expect("the first global subscriber");
    match Diagnostics::install(LogConfig::default()) {
        Err(Error::Diagnostics(DiagnosticsError::ForeignSubscriber)) => {}
        other => panic!("expected ForeignSubscriber, got {other:?}"),
    }
    assert!(Diagnostics::current().is_none());
    // An invalid configuration is reported as such before anything is installed.
    let bad = LogConfig {
        directives: Some("lifecycle".into()),
        ..LogConfig::default()
    };
    match Diagnostics::install(bad) {
        Err(Error::Diagnostics(DiagnosticsError::InvalidConfig { field, .. })) => {
            assert_eq!(field, "log.directives")
        }
        other => panic!("expected InvalidConfig, got {other:?}"),
    }
}
