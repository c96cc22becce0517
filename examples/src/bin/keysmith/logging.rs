//! Diagnostics start-up for the CLI: `--log-level LEVEL`, `--log-file FILE` and the
//! config file's `[log]` section (a [`LogConfig`]). The flags override the section.
//! Without either, nothing is logged.

use std::path::{Path, PathBuf};

use lifecycle::diagnostics::{Diagnostics, FileDestination, LogConfig, LogDestination, LogLevel};
use serde::Deserialize;

/// Only the `[log]` section of the config file; the rest is read by `ops`.
#[derive(Deserialize)]
struct LogSection {
    #[serde(default)]
    log: Option<LogConfig>,
}

/// Takes `--log-level` and `--log-file` (with their values) out of `args`, reads `[log]`
/// from the `--config` file when there is one, and installs diagnostics when anything
/// asks for logging. Returns the remaining arguments; errors are usage errors.
pub fn start(args: Vec<String>) -> Result<Vec<String>, String> {
    let mut rest = Vec::with_capacity(args.len());
    let mut level: Option<LogLevel> = None;
    let mut file: Option<PathBuf> = None;
    let mut config_file: Option<PathBuf> = None;
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--log-level" => {
                let v = it.next().ok_or("--log-level needs a value")?;
                level = Some(v.parse().map_err(|e| format!("--log-level: {e}"))?);
            }
            "--log-file" => {
                file = Some(PathBuf::from(it.next().ok_or("--log-file needs a value")?));
            }
            "--config" => {
                // Kept for `ops`; peeked here for its [log] section.
                rest.push(arg);
                if let Some(v) = it.next() {
                    config_file = Some(PathBuf::from(&v));
                    rest.push(v);
                }
            }
            _ => rest.push(arg),
        }
    }
    let section = match &config_file {
        Some(p) => read_section(p)?,
        None => None,
    };
    if section.is_none() && level.is_none() && file.is_none() {
        return Ok(rest);
    }
    let mut config = section.unwrap_or_default();
    if let Some(l) = level {
        config.level = l;
    }
    if let Some(f) = file {
        config.destination = LogDestination::File(FileDestination::single(&f));
    }
    Diagnostics::install(config).map_err(|e| e.to_string())?;
    Ok(rest)
}

fn read_section(path: &Path) -> Result<Option<LogConfig>, String> {
    // A missing or unreadable config file is reported by `ops` with its own message.
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(None);
    };
    let mut s: LogSection =
        toml::from_str(&text).map_err(|e| format!("config {} [log]: {e}", path.display()))?;
    if let Some(c) = &mut s.log {
        c.validate()
            .map_err(|e| format!("config {}: {e}", path.display()))?;
        // Like the config's other paths, a relative log directory is relative to the file.
        if let LogDestination::File(f) = &mut c.destination {
            if f.directory.is_relative() {
                if let Some(base) = path.parent() {
                    f.directory = base.join(&f.directory);
                }
            }
        }
    }
    Ok(s.log)
}
