//! Diagnostics start-up for the CLI: `--log-level LEVEL`, `--log-file FILE` and the
//! config file's `log` section (the facade's [`LogConfig`]). The flags override the
//! section. Without either, nothing is logged.

use std::path::PathBuf;

use keysmith_facade::{
    FacadeError, FileDestination, LogConfig, LogDestination, LogLevel, SessionConfig,
};

/// Takes `--log-level` and `--log-file` (with their values) out of `args`, reads `log`
/// from the `--config` file when there is one, and installs diagnostics when anything
/// asks for logging. Returns the remaining arguments; errors are usage errors.
pub fn start(args: Vec<String>) -> Result<Vec<String>, FacadeError> {
    let mut rest = Vec::with_capacity(args.len());
    let mut level: Option<LogLevel> = None;
    let mut file: Option<PathBuf> = None;
    let mut config_file: Option<PathBuf> = None;
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--log-level" => {
                let v = it
                    .next()
                    .ok_or_else(|| FacadeError::usage("--log-level needs a value"))?;
                level = Some(
                    v.parse()
                        .map_err(|e| FacadeError::usage(format!("--log-level: {e}")))?,
                );
            }
            "--log-file" => {
                let v = it
                    .next()
                    .ok_or_else(|| FacadeError::usage("--log-file needs a value"))?;
                file = Some(PathBuf::from(v));
            }
            "--config" => {
                // Kept for the commands; peeked here for its log section.
                rest.push(arg);
                if let Some(v) = it.next() {
                    config_file = Some(PathBuf::from(&v));
                    rest.push(v);
                }
            }
            _ => rest.push(arg),
        }
    }
    // A missing or unreadable config file is reported by the command that needs it.
    let section = match &config_file {
        Some(p) if p.is_file() => SessionConfig::from_file(p)?.log().cloned(),
        _ => None,
    };
    if section.is_none() && level.is_none() && file.is_none() {
        return Ok(rest);
    }
    let mut config: LogConfig = section.unwrap_or_default();
    if let Some(l) = level {
        config.level = l;
    }
    if let Some(f) = file {
        config.destination = LogDestination::File(FileDestination::single(&f));
    }
    config
        .validate()
        .map_err(|e| FacadeError::usage(format!("log configuration: {e}")))?;
    keysmith_facade::apply_logging(config)?;
    Ok(rest)
}
