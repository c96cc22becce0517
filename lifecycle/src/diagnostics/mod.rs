//! Diagnostics: structured logs through `tracing`, with a level, per-target directives and a
//! destination (stderr, nothing, or a rolling file named from a pattern) that can all be
//! switched while the process runs.
//!
//! How it fits: the library crates (`fido-transport`, `entra-graph`, this crate's engine)
//! only emit `tracing` events and spans. This module is the one place that installs a
//! subscriber; the CLI, the C ABI and the Python module all go through [`Diagnostics`].
//!
//! Logs carry request ids and key serials, never PINs, tokens, client secrets or private
//! keys: the emitting code never passes them, and as a second line of defence the writer
//! replaces the value of any field whose name says it is a secret (`pin`, `token`,
//! `client_secret`, …) and masks JWT-shaped strings and `Bearer` credentials in every value.
//!
//! ```no_run
//! use lifecycle::diagnostics::{Diagnostics, LogConfig, LogLevel};
//!
//! let diag = Diagnostics::install(LogConfig::default())?;
//! diag.reconfigure(LogConfig { level: LogLevel::Debug, ..LogConfig::default() })?;
//! # Ok::<(), lifecycle::Error>(())
//! ```
//!
//! A process has one global subscriber. [`Diagnostics::install`] installs ours the first
//! time; a later call does not fail but applies its configuration to the installed one and
//! returns the same handle (hosts such as a C or Python program may initialise twice). It
//! fails only when some other `tracing` subscriber was installed globally first.

mod format;
mod roller;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use serde::{Deserialize, Serialize};
use tracing_subscriber::filter::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::{reload, Registry};

use crate::Error;
use format::OutputLayer;
use roller::RollingFile;

/// Longest accepted `directives` string and file name pattern, in bytes.
const MAX_SETTING_LEN: usize = 1024;

/// How much is logged.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Nothing.
    Off,
    /// Failures only.
    Error,
    /// Failures and warnings (retries, deferred IdP deletions).
    Warn,
    /// One line per flow step and per IdP call outcome (the default).
    #[default]
    Info,
    /// Every Graph call and every authenticator command.
    Debug,
    /// Everything.
    Trace,
}

impl LogLevel {
    /// The level's lowercase name, as accepted in configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Off => "off",
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }
}

impl From<tracing::Level> for LogLevel {
    fn from(level: tracing::Level) -> Self {
        match level {
            tracing::Level::ERROR => LogLevel::Error,
            tracing::Level::WARN => LogLevel::Warn,
            tracing::Level::INFO => LogLevel::Info,
            tracing::Level::DEBUG => LogLevel::Debug,
            _ => LogLevel::Trace,
        }
    }
}

/// One record as a [`LogHook`] receives it: already filtered by the configured level and
/// directives, with secrets already redacted.
#[derive(Clone, Copy, Debug)]
pub struct LogRecord<'a> {
    /// Its level (never [`LogLevel::Off`]).
    pub level: LogLevel,
    /// Where it comes from: the Rust module path (`lifecycle::engine::jobs::runner`).
    pub target: &'a str,
    /// The text form without time, level and target: the enclosing spans
    /// (`name{field=value}: `), the message and the event's fields (`key=value`).
    pub message: &'a str,
}

/// Receives every record besides the configured destination (a host's own logger: the
/// Python module's bridge to `logging`, a C callback). Called on the thread that logs,
/// with no lock of this module held.
pub type LogHook = Arc<dyn Fn(&LogRecord<'_>) + Send + Sync>;

impl std::fmt::Display for LogLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for LogLevel {
    type Err = DiagnosticsError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "off" => Ok(LogLevel::Off),
            "error" => Ok(LogLevel::Error),
            "warn" | "warning" => Ok(LogLevel::Warn),
            "info" => Ok(LogLevel::Info),
            "debug" => Ok(LogLevel::Debug),
            "trace" => Ok(LogLevel::Trace),
            _ => Err(DiagnosticsError::InvalidConfig {
                field: "log.level",
                reason: format!(
                    "unknown level {:?}: use off, error, warn, info, debug or trace",
                    truncate(s)
                ),
            }),
        }
    }
}

/// How each record is written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One human-readable line: time, level, target, spans with their fields, message, fields.
    #[default]
    Text,
    /// One JSON object per line (`timestamp`, `level`, `target`, `message`, `fields`, `spans`).
    Json,
}

/// When a log file is closed and the next one started. Dates and hours are UTC.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rotation {
    /// A new file each UTC day; the pattern must contain `{date}`.
    #[default]
    Daily,
    /// A new file each UTC hour; the pattern must contain `{date}` and `{hour}`.
    Hourly,
    /// One file, appended to.
    Never,
    /// A new file when the current one would grow past this many bytes; the pattern must
    /// contain `{seq}` (numbered from 0).
    SizeBytes(u64),
}

/// A rolling log file.
///
/// The name is made from `file_name_pattern` with these placeholders: `{date}` (UTC,
/// `YYYY-MM-DD`), `{hour}` (UTC, `HH`), `{pid}` (the process id) and `{seq}` (the file's
/// number when rolling by size). Files that match the pattern beyond the newest
/// `max_files` are deleted when a new file is started.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct FileDestination {
    /// The directory the files are written in (created when missing).
    pub directory: PathBuf,
    /// The file name pattern, e.g. `keysmith-{date}.{pid}.log`.
    #[serde(default = "default_pattern")]
    pub file_name_pattern: String,
    /// When to start a new file.
    #[serde(default)]
    pub rotation: Rotation,
    /// How many matching files to keep (the current one included); `None` keeps all.
    #[serde(default)]
    pub max_files: Option<usize>,
}

fn default_pattern() -> String {
    "keysmith-{date}.{pid}.log".to_owned()
}

impl FileDestination {
    /// One file at `path`, never rotated (what `--log-file PATH` means).
    pub fn single(path: &Path) -> FileDestination {
        let directory = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        FileDestination {
            directory,
            file_name_pattern: path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            rotation: Rotation::Never,
            max_files: None,
        }
    }
}

/// Where records go.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum LogDestination {
    /// Standard error (the default).
    #[default]
    Stderr,
    /// Nowhere.
    None,
    /// A rolling file.
    File(FileDestination),
}

/// The whole diagnostics configuration (the `[log]` section of the CLI's config file).
///
/// ```toml
/// [log]
/// level = "debug"
/// directives = "lifecycle=debug,entra_graph=info"
/// format = "json"
/// destination = { kind = "file", directory = "/var/log/keysmith", rotation = "daily", max-files = 7 }
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct LogConfig {
    /// The level for every target not named in `directives`.
    pub level: LogLevel,
    /// Per-target levels, comma-separated `target=level` pairs, e.g.
    /// `lifecycle=debug,entra_graph=info` (a target covers its submodules).
    pub directives: Option<String>,
    /// Where records go.
    pub destination: LogDestination,
    /// How records are written.
    pub format: LogFormat,
}

impl LogConfig {
    /// Checks every setting; the error names the offending field.
    pub fn validate(&self) -> Result<(), DiagnosticsError> {
        self.filter_spec()?;
        if let LogDestination::File(f) = &self.destination {
            roller::Pattern::parse(f)?;
        }
        Ok(())
    }

    /// The `EnvFilter` directive string for this configuration.
    fn filter_spec(&self) -> Result<String, DiagnosticsError> {
        let mut spec = self.level.as_str().to_owned();
        let Some(directives) = &self.directives else {
            return Ok(spec);
        };
        if directives.len() > MAX_SETTING_LEN {
            return Err(DiagnosticsError::InvalidConfig {
                field: "log.directives",
                reason: format!("longer than {MAX_SETTING_LEN} bytes"),
            });
        }
        for part in directives
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            let bad = |reason: String| DiagnosticsError::InvalidConfig {
                field: "log.directives",
                reason,
            };
            let Some((target, level)) = part.split_once('=') else {
                return Err(bad(format!(
                    "{part:?} is not target=level (set the default with log.level)"
                )));
            };
            let target = target.trim();
            let valid_target = !target.is_empty()
                && target
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':');
            if !valid_target {
                return Err(bad(format!(
                    "target {target:?} must be a Rust module path such as lifecycle::engine"
                )));
            }
            let level: LogLevel = level.parse().map_err(|_| {
                bad(format!(
                    "level {:?} for {target} is not off, error, warn, info, debug or trace",
                    level.trim()
                ))
            })?;
            spec.push(',');
            spec.push_str(target);
            spec.push('=');
            spec.push_str(level.as_str());
        }
        Ok(spec)
    }
}

/// Why diagnostics could not be set up or switched.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DiagnosticsError {
    /// A setting is invalid.
    #[error("invalid log setting {field}: {reason}")]
    InvalidConfig {
        /// The setting, e.g. `log.destination.file-name-pattern`.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// Another `tracing` subscriber was installed globally before ours.
    #[error("another tracing subscriber is already installed in this process")]
    ForeignSubscriber,
    /// The log file or its directory could not be opened or created.
    #[error("log file {path}: {reason}")]
    File {
        /// The file or directory.
        path: PathBuf,
        /// The operating system's reason.
        reason: String,
    },
    /// The installed subscriber refused the new filter.
    #[error("switching the log filter failed: {reason}")]
    Reload {
        /// Why.
        reason: String,
    },
}

/// The opened destination the writer layer holds.
pub(crate) enum Sink {
    Stderr,
    Discard,
    File(Box<RollingFile>),
}

/// What the writer layer shares with the handle.
pub(crate) struct Output {
    pub(crate) state: Mutex<OutputState>,
}

pub(crate) struct OutputState {
    pub(crate) sink: Sink,
    pub(crate) format: LogFormat,
    /// Also receives every record ([`Diagnostics::set_hook`]).
    pub(crate) hook: Option<LogHook>,
}

impl Output {
    pub(crate) fn lock(&self) -> MutexGuard<'_, OutputState> {
        // A panic while writing leaves nothing half-updated that matters: keep logging.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

struct Inner {
    filter: reload::Handle<EnvFilter, Registry>,
    output: Arc<Output>,
    config: Mutex<LogConfig>,
}

/// The handle on the process's diagnostics: switch level, format and destination at run
/// time. Cheap to clone; `Send + Sync`.
#[derive(Clone)]
pub struct Diagnostics {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Diagnostics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Diagnostics")
            .field("config", &self.config())
            .finish()
    }
}

static INSTALLED: OnceLock<Diagnostics> = OnceLock::new();
static INSTALL_LOCK: Mutex<()> = Mutex::new(());

fn build_filter(config: &LogConfig) -> Result<EnvFilter, DiagnosticsError> {
    let spec = config.filter_spec()?;
    EnvFilter::builder()
        .parse(&spec)
        .map_err(|e| DiagnosticsError::InvalidConfig {
            field: "log.directives",
            reason: e.to_string(),
        })
}

fn open_sink(config: &LogConfig) -> Result<Sink, DiagnosticsError> {
    Ok(match &config.destination {
        LogDestination::Stderr => Sink::Stderr,
        LogDestination::None => Sink::Discard,
        LogDestination::File(f) => Sink::File(Box::new(RollingFile::open(f)?)),
    })
}

impl Diagnostics {
    /// Installs the global subscriber with `config` the first time it is called in a
    /// process. Later calls apply `config` to the installed subscriber (as
    /// [`Diagnostics::reconfigure`]) and return the same handle.
    ///
    /// Fails when `config` is invalid, the log file cannot be opened, or another
    /// `tracing` subscriber was installed globally first.
    pub fn install(config: LogConfig) -> Result<Diagnostics, Error> {
        let _serial = INSTALL_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(existing) = INSTALLED.get() {
            existing.reconfigure(config)?;
            return Ok(existing.clone());
        }
        let filter = build_filter(&config)?;
        let sink = open_sink(&config)?;
        let output = Arc::new(Output {
            state: Mutex::new(OutputState {
                sink,
                format: config.format,
                hook: None,
            }),
        });
        let (filter_layer, handle) = reload::Layer::new(filter);
        let subscriber = Registry::default()
            .with(filter_layer)
            .with(OutputLayer::new(output.clone()));
        tracing::subscriber::set_global_default(subscriber)
            .map_err(|_| DiagnosticsError::ForeignSubscriber)?;
        let diag = Diagnostics {
            inner: Arc::new(Inner {
                filter: handle,
                output,
                config: Mutex::new(config),
            }),
        };
        // Only this function sets INSTALLED, under INSTALL_LOCK: the set cannot race.
        let _ = INSTALLED.set(diag.clone());
        Ok(diag)
    }

    /// The installed handle, if [`Diagnostics::install`] has run in this process.
    pub fn current() -> Option<Diagnostics> {
        INSTALLED.get().cloned()
    }

    /// Switches level, directives, format and destination. The new configuration is
    /// validated and its file opened first: on error the old configuration stays in force.
    pub fn reconfigure(&self, config: LogConfig) -> Result<(), Error> {
        let filter = build_filter(&config)?;
        let sink = open_sink(&config)?;
        let mut current = self.inner.config.lock().unwrap_or_else(|p| p.into_inner());
        {
            let mut out = self.inner.output.lock();
            out.flush();
            out.sink = sink;
            out.format = config.format;
        }
        self.inner
            .filter
            .reload(filter)
            .map_err(|e| DiagnosticsError::Reload {
                reason: e.to_string(),
            })?;
        *current = config;
        Ok(())
    }

    /// The configuration in force.
    pub fn config(&self) -> LogConfig {
        self.inner
            .config
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The file records are being written to, when the destination is a file.
    pub fn current_file(&self) -> Option<PathBuf> {
        match &self.inner.output.lock().sink {
            Sink::File(f) => f.current_path().map(Path::to_path_buf),
            _ => None,
        }
    }

    /// Hands every record to `hook` too, besides the destination (`None`: stop). The
    /// level and directives still decide which records there are; a destination of
    /// [`LogDestination::None`] sends records to the hook only.
    pub fn set_hook(&self, hook: Option<LogHook>) {
        self.inner.output.lock().hook = hook;
    }

    /// Flushes buffered records to the destination.
    pub fn flush(&self) {
        self.inner.output.lock().flush();
    }
}

impl OutputState {
    pub(crate) fn write_record(&mut self, line: &[u8]) {
        // A logger has nowhere to report its own write failures; records are dropped.
        match &mut self.sink {
            Sink::Stderr => {
                use std::io::Write;
                let _ = std::io::stderr().lock().write_all(line);
            }
            Sink::Discard => {}
            Sink::File(f) => {
                let _ = f.write_record(line);
            }
        }
    }

    fn flush(&mut self) {
        if let Sink::File(f) = &mut self.sink {
            let _ = f.flush();
        }
    }
}

/// Cuts a user-supplied string for an error message.
fn truncate(s: &str) -> &str {
    match s.char_indices().nth(64) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_config(pattern: &str, rotation: Rotation, max_files: Option<usize>) -> LogConfig {
        LogConfig {
            destination: LogDestination::File(FileDestination {
                directory: PathBuf::from("/tmp/x"),
                file_name_pattern: pattern.into(),
                rotation,
                max_files,
            }),
            ..LogConfig::default()
        }
    }

    fn field_of(e: DiagnosticsError) -> &'static str {
        match e {
            DiagnosticsError::InvalidConfig { field, .. } => field,
            other => panic!("not a config error: {other}"),
        }
    }

    #[test]
    fn handle_is_send_sync() {
        fn check<T: Send + Sync>() {}
        check::<Diagnostics>();
        check::<LogConfig>();
        check::<DiagnosticsError>();
    }

    #[test]
    fn directives_become_a_filter_spec() {
        let c = LogConfig {
            level: LogLevel::Warn,
            directives: Some(" lifecycle=debug, entra_graph::http=TRACE ,".into()),
            ..LogConfig::default()
        };
        assert_eq!(
            c.filter_spec().unwrap(),
            "warn,lifecycle=debug,entra_graph::http=trace"
        );
        assert!(build_filter(&c).is_ok());
    }

    #[test]
    fn bad_directives_are_refused_with_the_field() {
        for bad in [
            "lifecycle",
            "lifecycle=loud",
            "=debug",
            "life cycle=debug",
            "a[b]=debug",
        ] {
            let c = LogConfig {
                directives: Some(bad.into()),
                ..LogConfig::default()
            };
            let e = c.validate().unwrap_err();
            assert!(e.to_string().contains("log.directives"), "{bad}: {e}");
        }
        let long = LogConfig {
            directives: Some("a=debug,".repeat(200)),
            ..LogConfig::default()
        };
        assert_eq!(field_of(long.validate().unwrap_err()), "log.directives");
    }

    #[test]
    fn levels_parse_case_insensitively_and_refuse_unknown() {
        assert_eq!("DEBUG".parse::<LogLevel>().unwrap(), LogLevel::Debug);
        assert_eq!("warning".parse::<LogLevel>().unwrap(), LogLevel::Warn);
        let e = "verbose".parse::<LogLevel>().unwrap_err();
        assert!(e.to_string().contains("log.level"), "{e}");
        assert!(e.to_string().contains("verbose"), "{e}");
    }

    #[test]
    fn file_patterns_are_checked_against_the_rotation() {
        let ok = [
            ("keysmith-{date}.{pid}.log", Rotation::Daily),
            ("k-{date}-{hour}.log", Rotation::Hourly),
            ("k.{seq}.log", Rotation::SizeBytes(4096)),
            ("keysmith.log", Rotation::Never),
        ];
        for (p, r) in ok {
            file_config(p, r, Some(3)).validate().unwrap();
        }
        let field = "log.destination.file-name-pattern";
        let bad = [
            ("keysmith.log", Rotation::Daily),
            ("k-{date}.log", Rotation::Hourly),
            ("k-{date}.log", Rotation::SizeBytes(4096)),
            ("../k-{date}.log", Rotation::Daily),
            ("a/k-{date}.log", Rotation::Daily),
            ("k-{date}-{user}.log", Rotation::Daily),
            ("k-{date.log", Rotation::Daily),
            ("k-{date}-{date}.log", Rotation::Daily),
            ("{pid}{seq}.log", Rotation::SizeBytes(4096)),
            ("", Rotation::Never),
        ];
        for (p, r) in bad {
            let e = file_config(p, r, None).validate().unwrap_err();
            assert_eq!(field_of(e), field, "{p} {r:?}");
        }
        let e = file_config("k.{seq}.log", Rotation::SizeBytes(0), None)
            .validate()
            .unwrap_err();
        assert_eq!(field_of(e), "log.destination.rotation");
        let e = file_config("k-{date}.log", Rotation::Daily, Some(0))
            .validate()
            .unwrap_err();
        assert_eq!(field_of(e), "log.destination.max-files");
        let mut empty_dir = file_config("k-{date}.log", Rotation::Daily, None);
        if let LogDestination::File(f) = &mut empty_dir.destination {
            f.directory = PathBuf::new();
        }
        assert_eq!(
            field_of(empty_dir.validate().unwrap_err()),
            "log.destination.directory"
        );
    }

    #[test]
    fn config_reads_from_toml_with_defaults() {
        #[derive(Deserialize)]
        struct Wrapper {
            log: LogConfig,
        }
        let w: Wrapper = toml::from_str(
            r#"
[log]
level = "debug"
directives = "lifecycle=trace"
format = "json"
destination = { kind = "file", directory = "/var/log/keysmith", rotation = { size-bytes = 1048576 }, file-name-pattern = "k.{seq}.log", max-files = 5 }
"#,
        )
        .unwrap();
        assert_eq!(w.log.level, LogLevel::Debug);
        assert_eq!(w.log.format, LogFormat::Json);
        assert_eq!(
            w.log.destination,
            LogDestination::File(FileDestination {
                directory: "/var/log/keysmith".into(),
                file_name_pattern: "k.{seq}.log".into(),
                rotation: Rotation::SizeBytes(1_048_576),
                max_files: Some(5),
            })
        );
        w.log.validate().unwrap();

        let w: Wrapper =
            toml::from_str("[log]\ndestination = { kind = \"file\", directory = \"logs\" }\n")
                .unwrap();
        assert_eq!(w.log.level, LogLevel::Info);
        match &w.log.destination {
            LogDestination::File(f) => {
                assert_eq!(f.file_name_pattern, "keysmith-{date}.{pid}.log");
                assert_eq!(f.rotation, Rotation::Daily);
            }
            other => panic!("{other:?}"),
        }
        assert!(toml::from_str::<Wrapper>("[log]\nlevl = \"debug\"\n").is_err());
        assert!(toml::from_str::<Wrapper>("[log]\nlevel = \"loud\"\n").is_err());
    }

    #[test]
    fn single_file_destination_splits_the_path() {
        let f = FileDestination::single(Path::new("/var/log/ks.log"));
        assert_eq!(f.directory, PathBuf::from("/var/log"));
        assert_eq!(f.file_name_pattern, "ks.log");
        assert_eq!(f.rotation, Rotation::Never);
        let f = FileDestination::single(Path::new("ks.log"));
        assert_eq!(f.directory, PathBuf::from("."));
    }
}
