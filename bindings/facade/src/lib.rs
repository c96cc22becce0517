//! # keysmith-facade
//!
//! One blocking, handle-based facade over the keysmith lifecycle engine, for the C ABI
//! (`bindings/c`) and the Python module (`bindings/python`): a [`Session`] (engine,
//! repository, IdP connections, templates) opened from a JSON configuration, [`Device`]s
//! (`usb:PATH`, `nfc:READER`, `softkey:STATEFILE`), owned serde-serializable results,
//! and one error type with stable numeric codes ([`FacadeError`], [`ErrorKind`]).
//!
//! Everything here is `Send + Sync`, owns its data and has no lifetimes. Calls block.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod config;
mod device;
mod error;
#[cfg(feature = "fault-injection")]
mod fault;
mod session;
pub mod split;
mod types;

pub use config::SessionConfig;
pub use device::{list_devices, Device};
pub use error::{ErrorKind, FacadeError};
pub use session::{
    BulkStop, ConnectionFailure, PromptCallback, ReadinessReport, ReadinessUser, ReissueEntry,
    Session, StaleEntry, UserFailure, UserPasskey, UserPasskeys, MAX_BULK_CSV_BYTES, MAX_PAGE,
    MAX_WORKERS, MIN_RATE,
};
pub use types::{
    AdoptedRows, AuditCheck, AuditEntry, BulkItemResult, BulkJob, BulkProgress, BulkRow,
    BulkRunOptions, BulkSummary, DeviceEntry, DeviceInfo, DeviceList, DriftFinding, ExpiringCursor,
    ExpiringPage, ExpiringPending, IssueParams, Key, KeyDetails, KeyFilter, KeyPage, Passkey,
    Pending, Prompt, ReconcileReport, ReconcileRequest, ReissueParams, ReplayedEntry,
    SelfServiceStart, SignInResult, TemplateSummary, User,
};

use lifecycle::diagnostics::Diagnostics;
pub use lifecycle::diagnostics::{
    FileDestination, LogConfig, LogDestination, LogHook, LogLevel, LogRecord,
};
use lifecycle::template::TemplateSet;

/// The facade's result type.
pub type Result<T> = std::result::Result<T, FacadeError>;

/// Opens a security key (the same as [`Device::open`]): `usb:PATH`, `nfc:READER` or
/// `softkey:STATEFILE`.
pub fn open_device(spec: &str) -> Result<Device> {
    Device::open(spec)
}

/// The library version (the workspace's).
pub fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

/// Parses a credential template set from TOML or JSON text (JSON when it starts with
/// `{`) and validates it; every problem is named with its field.
pub fn template_check(text: &str) -> Result<TemplateSummary> {
    let set = parse_template(text)?;
    Ok(TemplateSummary::from(&set))
}

pub(crate) fn parse_template(text: &str) -> Result<TemplateSet> {
    let set = if text.trim_start().starts_with('{') {
        TemplateSet::from_json_str(text)
    } else {
        TemplateSet::from_toml_str(text)
    }
    .and_then(|t| t.validate().map(|()| t))
    .map_err(|e| FacadeError::from(lifecycle::Error::from(e)))?;
    Ok(set)
}

/// Sets up (the first time) or switches (later) the process-wide diagnostics from a JSON
/// [`LogConfig`] (`{"level": "debug", "destination": ..., "format": "json"}`; the same
/// keys as the CLI's `[log]` table). On error the previous configuration stays.
pub fn configure_logging(json: &str) -> Result<()> {
    let config: LogConfig = serde_json::from_str(json)
        .map_err(|e| FacadeError::usage(format!("log configuration: {e}")))?;
    apply_logging(config)
}

/// Sets up or switches the process-wide diagnostics from a [`LogConfig`] (as
/// [`configure_logging`] does from JSON). On error the previous configuration stays.
pub fn apply_logging(config: LogConfig) -> Result<()> {
    Diagnostics::install(config)
        .map(|_| ())
        .map_err(|e| FacadeError {
            message: format!("log configuration: {e}"),
            ..e.into()
        })
}

/// The logging configuration in force: `None` until [`configure_logging`],
/// [`apply_logging`] or [`set_log_hook`] first runs.
pub fn logging_config() -> Option<LogConfig> {
    Diagnostics::current().map(|d| d.config())
}

/// Hands every log record to `hook` too (a host's own logger; see [`LogHook`] for the
/// thread it is called on); `None` stops. Installs the diagnostics with the default
/// configuration (level `info`, stderr) when no configuration was applied yet.
pub fn set_log_hook(hook: Option<LogHook>) -> Result<()> {
    let diagnostics = match Diagnostics::current() {
        Some(d) => d,
        None => Diagnostics::install(LogConfig::default()).map_err(|e| FacadeError {
            message: format!("log configuration: {e}"),
            ..e.into()
        })?,
    };
    diagnostics.set_hook(hook);
    Ok(())
}

pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .and_then(|d| u64::try_from(d.as_millis()).ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn handles_are_send_and_sync() {
        assert_send_sync::<Session>();
        assert_send_sync::<Device>();
        assert_send_sync::<FacadeError>();
    }

    #[test]
    fn bad_templates_are_template_errors() {
        let e = template_check("[credential]\nname = 3\n").unwrap_err();
        assert_eq!(e.kind, ErrorKind::Template);
        let e = template_check("{\"credential\": 1}").unwrap_err();
        assert_eq!(e.kind, ErrorKind::Template);
    }

    #[test]
    fn bad_log_config_is_a_usage_error() {
        let e = configure_logging("{\"level\": \"loud\"}").unwrap_err();
        assert_eq!(e.kind, ErrorKind::Usage);
        assert!(e.message.contains("log configuration"));
    }
}
