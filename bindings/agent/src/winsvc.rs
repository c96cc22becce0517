//! The Windows service entry point. The service control manager starts
//! `keysmith-agent.exe --config FILE service run --device SPEC` (a station) or
//! `... service holder --device SPEC` (a holder's computer) as LocalSystem, the only kind
//! of process Windows lets talk raw CTAP to a FIDO key. The service reports `Running`,
//! runs the command in a worker thread, and reports `Stopped` when the manager asks it to
//! stop (or the command ends, with its exit code).
//!
//! Compile-checked (`cargo check -p keysmith-agent --target x86_64-pc-windows-gnu`); it
//! cannot be run here (no service control manager under wine's test runs).

use std::ffi::OsString;
use std::sync::mpsc;
use std::sync::OnceLock;
use std::time::Duration;

use windows_service::service::{
    ServiceControl, ServiceControlAccept, ServiceExitCode, ServiceState, ServiceStatus, ServiceType,
};
use windows_service::service_control_handler::{self, ServiceControlHandlerResult};
use windows_service::{define_windows_service, service_dispatcher};

use crate::AgentError;

/// The service's name (`sc.exe create keysmith-agent ...`).
pub const SERVICE_NAME: &str = "keysmith-agent";

/// The command line the service runs (the agent's own arguments, without `service`).
static COMMAND: OnceLock<Vec<String>> = OnceLock::new();

define_windows_service!(ffi_service_main, service_main);

/// Hands the process to the service control manager, which calls back into
/// [`service_main`] on its own thread; returns when the service has stopped.
pub fn start(command: Vec<String>) -> Result<(), AgentError> {
    let _ = COMMAND.set(command);
    service_dispatcher::start(SERVICE_NAME, ffi_service_main).map_err(|e| AgentError::Config {
        setting: "service",
        reason: format!(
            "not started by the service control manager ({e}); run the command without \
             `service` from a console"
        ),
    })
}

fn status(state: ServiceState, accept: ServiceControlAccept, exit: u32) -> ServiceStatus {
    ServiceStatus {
        service_type: ServiceType::OWN_PROCESS,
        current_state: state,
        controls_accepted: accept,
        exit_code: ServiceExitCode::Win32(exit),
        checkpoint: 0,
        wait_hint: Duration::from_secs(10),
        process_id: None,
    }
}

fn service_main(_arguments: Vec<OsString>) {
    let (stop_tx, stop_rx) = mpsc::channel();
    let handler = move |control| match control {
        ServiceControl::Stop | ServiceControl::Shutdown => {
            let _ = stop_tx.send(());
            ServiceControlHandlerResult::NoError
        }
        ServiceControl::Interrogate => ServiceControlHandlerResult::NoError,
        _ => ServiceControlHandlerResult::NotImplemented,
    };
    let handle = match service_control_handler::register(SERVICE_NAME, handler) {
        Ok(h) => h,
        Err(e) => {
            tracing::error!(error = %e, "registering the service control handler");
            return;
        }
    };
    let accept = ServiceControlAccept::STOP | ServiceControlAccept::SHUTDOWN;
    if let Err(e) = handle.set_service_status(status(ServiceState::Running, accept, 0)) {
        tracing::error!(error = %e, "reporting Running");
        return;
    }
    let command = COMMAND.get().cloned().unwrap_or_default();
    let (done_tx, done_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let code = crate::cli::run_code(command);
        let _ = done_tx.send(code);
    });
    // Stopped by the manager, or the command ended on its own.
    let exit = loop {
        if stop_rx.recv_timeout(Duration::from_millis(500)).is_ok() {
            break 0;
        }
        match done_rx.try_recv() {
            Ok(code) => break u32::from(code),
            Err(mpsc::TryRecvError::Empty) => {}
            Err(mpsc::TryRecvError::Disconnected) => break 1,
        }
    };
    let _ = handle.set_service_status(status(
        ServiceState::Stopped,
        ServiceControlAccept::empty(),
        exit,
    ));
}
