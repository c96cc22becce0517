//! Diagnostics start-up for the CLI: `--log-level LEVEL`, `--log-file FILE` and the
//! config file's `log` section (the facade's [`LogConfig`]). The flags override the
//! section. Without either, nothing is logged.

use std::path::Path;

use keysmith_facade::{
    FacadeError, FileDestination, LogConfig, LogDestination, LogLevel, SessionConfig,
};

/// Reads `log` from the configuration file when there is one, applies `--log-level`
/// and `--log-file` over it, and installs diagnostics when anything asks for logging.
/// Errors are usage errors.
pub fn start(
    level: Option<&str>,
    file: Option<&Path>,
    config_file: Option<&Path>,
) -> Result<(), FacadeError> {
    let level: Option<LogLevel> = match level {
        Some(v) => Some(
            v.parse()
                .map_err(|e| FacadeError::usage(format!("--log-level: {e}")))?,
        ),
        None => None,
    };
    // A missing or unreadable config file is reported by the command that needs it.
    let section = match config_file {
        Some(p) if p.is_file() => SessionConfig::from_file(p)?.log().cloned(),
        _ => None,
    };
    if section.is_none() && level.is_none() && file.is_none() {
        return Ok(());
    }
    let mut config: LogConfig = section.unwrap_or_default();
    if let Some(l) = level {
        config.level = l;
    }
    if let Some(f) = file {
        config.destination = LogDestination::File(FileDestination::single(f));
    }
    config
        .validate()
        .map_err(|e| FacadeError::usage(format!("log configuration: {e}")))?;
    keysmith_facade::apply_logging(config)?;
    Ok(())
}
