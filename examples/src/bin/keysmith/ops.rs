//! The operator commands: configuration, device selection, key lifecycle commands,
//! JSON/human output and exit codes.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use entra_graph::auth::{Credential, Secret};
use entra_graph::{ApiVersion, GraphClient, GraphConfig};
use fido_transport::client::Authenticator;
use fido_transport::softkey::{SoftAuthenticator, SoftConfig, SoftTransport};
use fido_transport::{CancelToken, Progress, Transport, TransportKind};
use lifecycle::engine::{DevicePrompt, Engine, EngineError, IssueRequest};
use lifecycle::idp::EntraIdp;
use lifecycle::model::CredentialState;
use lifecycle::store::{KeyQuery, KeyRecord, PgStore, PinKey, SqliteStore, Store};
use lifecycle::template::{TemplateSet, Transport as KeyTransport};
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// Exit code: success.
pub const EXIT_OK: u8 = 0;
/// Exit code: usage or user error (bad flag, bad config, unknown key, illegal transition).
pub const EXIT_USAGE: u8 = 2;
/// Exit code: the security key or its transport failed.
pub const EXIT_DEVICE: u8 = 3;
/// Exit code: the IdP failed or refused.
pub const EXIT_IDP: u8 = 4;
/// Exit code: repository or any other failure.
pub const EXIT_OTHER: u8 = 5;

/// A failed command: its exit code and message.
#[derive(Debug)]
pub struct CliError {
    /// The process exit code.
    pub code: u8,
    /// What went wrong.
    pub message: String,
}

impl CliError {
    pub(crate) fn usage(m: impl Into<String>) -> Self {
        CliError {
            code: EXIT_USAGE,
            message: m.into(),
        }
    }
    pub(crate) fn device(m: impl Into<String>) -> Self {
        CliError {
            code: EXIT_DEVICE,
            message: m.into(),
        }
    }
    pub(crate) fn other(m: impl Into<String>) -> Self {
        CliError {
            code: EXIT_OTHER,
            message: m.into(),
        }
    }
    /// The error kind's name in JSON output.
    pub fn kind(&self) -> &'static str {
        match self.code {
            EXIT_USAGE => "usage",
            EXIT_DEVICE => "device",
            EXIT_IDP => "idp",
            _ => "repository_or_other",
        }
    }
}

impl From<lifecycle::Error> for CliError {
    fn from(e: lifecycle::Error) -> Self {
        let message = e.to_string();
        let code = match &e {
            lifecycle::Error::Idp(_) => EXIT_IDP,
            lifecycle::Error::Template(_) | lifecycle::Error::Transition(_) => EXIT_USAGE,
            lifecycle::Error::Store(_) => EXIT_OTHER,
            lifecycle::Error::Engine(ee) => match ee {
                EngineError::Device { .. } => EXIT_DEVICE,
                EngineError::IdpDeletionCancelled { .. } => EXIT_IDP,
                EngineError::UnknownKey { .. }
                | EngineError::UnknownConnection { .. }
                | EngineError::UnknownTemplate { .. }
                | EngineError::NotIssued { .. }
                | EngineError::HolderPinRequired => EXIT_USAGE,
                _ => EXIT_OTHER,
            },
            _ => EXIT_OTHER,
        };
        CliError { code, message }
    }
}

impl From<fido_transport::Error> for CliError {
    fn from(e: fido_transport::Error) -> Self {
        CliError::device(format!("security key: {e}"))
    }
}

/// Parsed command line (after the global flags were taken out).
#[derive(Debug, Default)]
pub struct Args {
    /// `--config FILE`.
    pub config: Option<PathBuf>,
    /// `--device SPEC`.
    pub device: Option<String>,
    /// `--json`.
    pub json: bool,
    /// `--pin-stdin`.
    pub pin_stdin: bool,
    /// `--force` (Some(true)) / `--no-force` (Some(false)).
    pub force: Option<bool>,
    /// `--user U` (the last one given).
    pub user: Option<String>,
    /// Every `--user U` given, in order.
    pub users: Vec<String>,
    /// `--all`.
    pub all: bool,
    /// `--fix`.
    pub fix: bool,
    /// `--delete-unknown`.
    pub delete_unknown: bool,
    /// `--resume JOB`.
    pub resume: Option<String>,
    /// `--workers N`.
    pub workers: Option<String>,
    /// `--rate PER_SEC`.
    pub rate: Option<String>,
    /// `--expiring DURATION`.
    pub expiring: Option<String>,
    /// `--state S`.
    pub state: Option<String>,
    /// `--expiring-before T`.
    pub expiring_before: Option<String>,
    /// `--template FILE`.
    pub template: Option<PathBuf>,
    /// `--serial S`.
    pub serial: Option<String>,
    /// The command words and operands.
    pub words: Vec<String>,
}

/// Parses the arguments; unknown flags and missing flag values are usage errors.
pub fn parse_args(raw: &[String]) -> Result<Args, CliError> {
    let mut a = Args::default();
    let mut it = raw.iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| CliError::usage(format!("{name} needs a value")))
        };
        match arg.as_str() {
            "--config" => a.config = Some(PathBuf::from(value("--config")?)),
            "--device" => a.device = Some(value("--device")?),
            "--json" => a.json = true,
            "--pin-stdin" => a.pin_stdin = true,
            "--force" => a.force = Some(true),
            "--no-force" => a.force = Some(false),
            "--user" => {
                let u = value("--user")?;
                a.users.push(u.clone());
                a.user = Some(u);
            }
            "--all" => a.all = true,
            "--fix" => a.fix = true,
            "--delete-unknown" => a.delete_unknown = true,
            "--resume" => a.resume = Some(value("--resume")?),
            "--workers" => a.workers = Some(value("--workers")?),
            "--rate" => a.rate = Some(value("--rate")?),
            "--expiring" => a.expiring = Some(value("--expiring")?),
            "--state" => a.state = Some(value("--state")?),
            "--expiring-before" => a.expiring_before = Some(value("--expiring-before")?),
            "--template" => a.template = Some(PathBuf::from(value("--template")?)),
            "--serial" => a.serial = Some(value("--serial")?),
            s if s.starts_with('-') => return Err(CliError::usage(format!("unknown flag {s}"))),
            s => a.words.push(s.to_owned()),
        }
    }
    Ok(a)
}

/// The configuration file (TOML).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Station name recorded in the audit log.
    #[serde(default = "default_station")]
    pub station: String,
    /// SQLite file path, or a `postgres://` / `postgresql://` URL.
    pub repository: String,
    /// File with the 32-byte host key encrypting transport PINs (raw 32 bytes or 64 hex).
    pub pin_key_file: PathBuf,
    /// Credential template files loaded into the engine (needed by activate etc.).
    #[serde(default)]
    pub templates: Vec<PathBuf>,
    /// The actor recorded for operator commands (default `operator:<station>`).
    pub actor: Option<String>,
    /// IdP connections by name.
    #[serde(default)]
    pub idp: std::collections::BTreeMap<String, IdpConfig>,
    /// Diagnostics (`[log]`); read and applied at start-up by `logging`.
    #[serde(default)]
    #[allow(dead_code)]
    pub log: Option<lifecycle::diagnostics::LogConfig>,
}

fn default_station() -> String {
    "keysmith-cli".into()
}

/// One Entra connection.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdpConfig {
    /// `entra` (the only kind so far).
    #[serde(default = "default_kind")]
    pub kind: String,
    /// Tenant id or domain.
    pub tenant: String,
    /// App (client) id.
    pub client_id: String,
    /// Environment variable holding the client secret.
    pub secret_env: Option<String>,
    /// File holding the client secret.
    pub secret_file: Option<PathBuf>,
    /// Login authority base (default public cloud).
    pub login_base: Option<String>,
    /// Graph base (default public cloud).
    pub graph_base: Option<String>,
    /// `v1.0` (default) or `beta`.
    pub api_version: Option<String>,
}

fn default_kind() -> String {
    "entra".into()
}

fn resolve(base: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

fn load_config(path: &Path) -> Result<(Config, PathBuf), CliError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::usage(format!("reading config {}: {e}", path.display())))?;
    let cfg: Config = toml::from_str(&text)
        .map_err(|e| CliError::usage(format!("config {}: {e}", path.display())))?;
    let base = path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    Ok((cfg, base))
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok()))
        .collect()
}

fn read_pin_key(path: &Path) -> Result<PinKey, CliError> {
    let bytes = std::fs::read(path)
        .map_err(|e| CliError::usage(format!("reading pin_key_file {}: {e}", path.display())))?;
    let raw = if bytes.len() == 32 {
        bytes
    } else {
        std::str::from_utf8(&bytes)
            .ok()
            .and_then(|s| unhex(s.trim()))
            .ok_or_else(|| {
                CliError::usage(format!(
                    "pin_key_file {}: expected 32 raw bytes or 64 hex digits",
                    path.display()
                ))
            })?
    };
    PinKey::from_slice(&raw)
        .map_err(|e| CliError::usage(format!("pin_key_file {}: {e}", path.display())))
}

fn read_secret(name: &str, c: &IdpConfig, base: &Path) -> Result<Secret, CliError> {
    match (&c.secret_env, &c.secret_file) {
        (Some(var), None) => std::env::var(var).map(Secret::new).map_err(|_| {
            CliError::usage(format!(
                "idp.{name}.secret_env: environment variable {var} is not set"
            ))
        }),
        (None, Some(f)) => {
            let f = resolve(base, f);
            std::fs::read_to_string(&f)
                .map(|s| Secret::new(s.trim().to_owned()))
                .map_err(|e| {
                    CliError::usage(format!("idp.{name}.secret_file {}: {e}", f.display()))
                })
        }
        _ => Err(CliError::usage(format!(
            "idp.{name}: give exactly one of secret_env and secret_file"
        ))),
    }
}

/// The engine and what else the commands need from the configuration.
pub(crate) struct Setup {
    pub(crate) engine: Engine,
    pub(crate) actor: String,
    pub(crate) idps: Vec<String>,
}

pub(crate) fn setup(args: &Args) -> Result<Setup, CliError> {
    let path = args
        .config
        .as_deref()
        .ok_or_else(|| CliError::usage("this command needs --config FILE"))?;
    let (cfg, base) = load_config(path)?;
    let store: Arc<dyn Store> = if cfg.repository.starts_with("postgres://")
        || cfg.repository.starts_with("postgresql://")
    {
        Arc::new(
            PgStore::connect(&cfg.repository)
                .map_err(|e| CliError::other(format!("repository: {e}")))?,
        )
    } else {
        let p = resolve(&base, Path::new(&cfg.repository));
        Arc::new(
            SqliteStore::open(&p)
                .map_err(|e| CliError::other(format!("repository {}: {e}", p.display())))?,
        )
    };
    let pin_key = read_pin_key(&resolve(&base, &cfg.pin_key_file))?;
    let mut engine =
        Engine::builder(store, pin_key, cfg.station.clone()).prompt(Arc::new(bio_prompt));
    for (name, c) in &cfg.idp {
        if c.kind != "entra" {
            return Err(CliError::usage(format!(
                "idp.{name}.kind: {:?} is not supported (only \"entra\")",
                c.kind
            )));
        }
        let mut g = GraphConfig::new(c.tenant.clone());
        if let Some(b) = &c.login_base {
            g.login_base = b.clone();
        }
        if let Some(b) = &c.graph_base {
            g.graph_base = b.clone();
        }
        g.version = match c.api_version.as_deref() {
            None | Some("v1.0") => ApiVersion::V1,
            Some("beta") => ApiVersion::Beta,
            Some(other) => {
                return Err(CliError::usage(format!(
                    "idp.{name}.api_version: {other:?} is not \"v1.0\" or \"beta\""
                )))
            }
        };
        let client = GraphClient::new(
            g,
            Credential::ClientSecret {
                client_id: c.client_id.clone(),
                secret: read_secret(name, c, &base)?,
            },
        )
        .map_err(|e| CliError::usage(format!("idp.{name}: {e}")))?;
        engine = engine.idp(Arc::new(EntraIdp::new(name.clone(), client)));
    }
    let engine = engine.build()?;
    for t in &cfg.templates {
        let t = resolve(&base, t);
        let set = TemplateSet::load(&t)
            .map_err(|e| CliError::usage(format!("template {}: {e}", t.display())))?;
        engine.add_template(set)?;
    }
    let actor = cfg
        .actor
        .clone()
        .unwrap_or_else(|| format!("operator:{}", cfg.station));
    let idps = cfg.idp.keys().cloned().collect();
    Ok(Setup {
        engine,
        actor,
        idps,
    })
}

/// Fingerprint enrolment prompts on stderr ("touch your key" comes from [`Prompting`]).
fn bio_prompt(p: &DevicePrompt) {
    match p {
        DevicePrompt::EnrollFingerprint { number, of } => {
            eprintln!("fingerprint {number} of {of}: place a finger on the key's sensor");
        }
        DevicePrompt::FingerprintSample {
            last_status,
            remaining,
        } => {
            let quality = if *last_status == 0 {
                "good".to_owned()
            } else {
                format!("status {last_status:#04x}, try again")
            };
            eprintln!("  sample {quality}; {remaining} more to go");
        }
        _ => {}
    }
}

/// A transport that prints "touch your key" (on stderr) when the key waits for the user,
/// once per transaction unless the command already said so.
pub(crate) struct Prompting {
    pub(crate) inner: Box<dyn Transport>,
    pub(crate) already_told: bool,
}

impl Transport for Prompting {
    fn transact(
        &mut self,
        request: &[u8],
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Vec<u8>, fido_transport::Error> {
        let mut told = std::mem::take(&mut self.already_told);
        self.inner.transact(request, &mut |p| {
            if p == Progress::UserPresenceNeeded && !told {
                eprintln!("touch your key");
                told = true;
            }
            progress(p);
        })
    }
    fn cancel_token(&self) -> CancelToken {
        self.inner.cancel_token()
    }
    fn kind(&self) -> TransportKind {
        self.inner.kind()
    }
    fn describe(&self) -> String {
        self.inner.describe()
    }
    fn power_cycle(&mut self) -> Result<(), fido_transport::Error> {
        self.inner.power_cycle()
    }
}

/// An opened device and what the CLI knows about it.
struct Device {
    client: Authenticator<Prompting>,
    kind: KeyTransport,
    can_reset_in_place: bool,
    serial: Option<String>,
}

/// A raw transport for `--device` and what the CLI knows about it: (transport, how it
/// is attached, can be reset in place, serial).
pub(crate) type RawDevice = (Box<dyn Transport>, KeyTransport, bool, Option<String>);

fn open_device(spec: Option<&str>) -> Result<Device, CliError> {
    let (transport, kind, reset, serial) = open_raw(spec)?;
    Ok(Device {
        client: Authenticator::new(Prompting {
            inner: transport,
            already_told: false,
        }),
        kind,
        can_reset_in_place: reset,
        serial,
    })
}

/// Opens the transport `--device` names (see [`RawDevice`]).
pub(crate) fn open_raw(spec: Option<&str>) -> Result<RawDevice, CliError> {
    let (transport, kind, reset, serial): RawDevice = match spec {
        Some(s) if s.starts_with("usb:") => {
            let path = s.get(4..).unwrap_or_default();
            let serial = fido_transport::hid::list_devices()
                .ok()
                .and_then(|l| l.into_iter().find(|d| d.path == path))
                .and_then(|d| d.serial);
            (
                Box::new(fido_transport::hid::open(path)?),
                KeyTransport::Usb,
                false,
                serial,
            )
        }
        Some(s) if s.starts_with("nfc:") => {
            let reader = s.get(4..).unwrap_or_default();
            (
                Box::new(fido_transport::nfc::NfcTransport::open(
                    reader,
                    fido_transport::nfc::NfcMode::default(),
                )?),
                KeyTransport::Nfc,
                true,
                None,
            )
        }
        Some(s) if s.starts_with("softkey:") => {
            let path = s.get(8..).unwrap_or_default();
            let soft = SoftAuthenticator::open_persistent(path, SoftConfig::default())
                .map_err(|e| CliError::device(format!("software key {path}: {e}")))?;
            let serial = hex(&Sha256::digest(soft.attestation_certificate())[..4]).to_uppercase();
            (
                Box::new(SoftTransport::new(soft)),
                KeyTransport::Usb,
                true,
                Some(serial),
            )
        }
        Some(other) => {
            return Err(CliError::usage(format!(
                "--device {other:?}: expected usb:PATH, nfc:READER or softkey:STATEFILE"
            )))
        }
        None => {
            let usb = fido_transport::hid::list_devices().unwrap_or_default();
            if let Some(d) = usb.into_iter().next() {
                (
                    Box::new(fido_transport::hid::open(&d.path)?),
                    KeyTransport::Usb,
                    false,
                    d.serial,
                )
            } else {
                let t = fido_transport::nfc::NfcTransport::open_first(
                    fido_transport::nfc::NfcMode::default(),
                )
                .map_err(|e| {
                    CliError::device(format!(
                        "no security key found (no USB FIDO key, no NFC reader with a FIDO applet): {e}"
                    ))
                })?;
                (Box::new(t), KeyTransport::Nfc, true, None)
            }
        }
    };
    Ok((transport, kind, reset, serial))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .and_then(|d| u64::try_from(d.as_millis()).ok())
        .unwrap_or(0)
}

fn read_pin(args: &Args, what: &str) -> Result<Zeroizing<String>, CliError> {
    use std::io::IsTerminal;
    if !args.pin_stdin && std::io::stdin().is_terminal() {
        // At a terminal: prompt on the terminal with echo off.
        let pin = Zeroizing::new(
            rpassword::prompt_password(format!("{what}: "))
                .map_err(|e| CliError::usage(format!("reading {what}: {e}")))?,
        );
        if pin.is_empty() {
            return Err(CliError::usage(format!("{what}: empty")));
        }
        return Ok(pin);
    }
    if !args.pin_stdin {
        eprint!("{what}: ");
    }
    let mut line = Zeroizing::new(String::new());
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| CliError::usage(format!("reading {what}: {e}")))?;
    let pin = Zeroizing::new(line.trim_end_matches(['\r', '\n']).to_owned());
    if pin.is_empty() {
        return Err(CliError::usage(format!("{what}: empty")));
    }
    Ok(pin)
}

/// Output of a command: a JSON object and its human rendering.
pub struct Output {
    /// For `--json`.
    pub json: Value,
    /// For humans.
    pub text: String,
}

pub(crate) fn key_json(k: &KeyRecord) -> Value {
    serde_json::to_value(k).unwrap_or(Value::Null)
}

pub(crate) fn key_line(k: &KeyRecord) -> String {
    format!(
        "key {}  state={}  user={}  template={}  serial={}{}",
        k.key_id,
        k.state,
        k.user_id.as_deref().unwrap_or("-"),
        k.template_id.as_deref().unwrap_or("-"),
        k.serial,
        if k.needs_reissue {
            "  NEEDS REISSUE"
        } else {
            ""
        }
    )
}

fn one_key(args: &Args) -> Result<&str, CliError> {
    match args.words.as_slice() {
        [_, key] => Ok(key.as_str()),
        _ => Err(CliError::usage(format!(
            "{} needs exactly one KEY",
            args.words.first().map(String::as_str).unwrap_or("command")
        ))),
    }
}

fn key_result(verb: &str, k: &KeyRecord) -> Output {
    Output {
        json: json!({ "command": verb, "key": key_json(k) }),
        text: format!("{verb}: {}", key_line(k)),
    }
}

/// Runs an operator command (everything but `demo` and `template check`).
pub fn run(args: &Args) -> Result<Output, CliError> {
    let words: Vec<&str> = args.words.iter().map(String::as_str).collect();
    match words.as_slice() {
        ["device", "list"] => device_list(),
        ["device", "info"] => device_info(args),
        ["device", "reset"] => device_reset(args),
        ["device", "set-pin"] => device_set_pin(args),
        ["show", _] => show(args),
        ["list"] if args.expiring.is_some() => crate::jobs::list_expiring(args),
        ["list"]
            if args.user.is_none() && args.state.is_none() && args.expiring_before.is_none() =>
        {
            crate::jobs::list_all(args)
        }
        ["list"] => list(args),
        ["reconcile"] => crate::jobs::reconcile(args),
        ["bulk", kind, rest @ ..] if rest.len() <= 1 => {
            crate::jobs::bulk(args, kind, rest.first().copied())
        }
        ["issue"] => issue(args),
        ["idp", "check"] => idp_check(args),
        ["users", "search", prefix] => users_search(args, prefix),
        ["activate", _] => {
            let s = setup(args)?;
            let key = one_key(args)?;
            let pin = read_pin(args, "holder PIN")?;
            let mut dev = open_device(args.device.as_deref())?;
            let k = s
                .engine
                .activate(&s.actor, key, &pin, &mut dev.client, now_ms())?;
            Ok(key_result("activate", &k))
        }
        ["inactivate", _] => {
            let s = setup(args)?;
            let k = s.engine.inactivate(&s.actor, one_key(args)?, now_ms())?;
            Ok(key_result("inactivate", &k))
        }
        ["revoke", _] => {
            let s = setup(args)?;
            let k = s
                .engine
                .revoke(&s.actor, one_key(args)?, args.force, now_ms())?;
            Ok(key_result("revoke", &k))
        }
        ["retire", _] => {
            let s = setup(args)?;
            let k = s.engine.retire(&s.actor, one_key(args)?, now_ms())?;
            Ok(key_result("retire", &k))
        }
        ["unregister", _] => {
            let s = setup(args)?;
            let k = s.engine.unregister(&s.actor, one_key(args)?, now_ms())?;
            Ok(key_result("unregister", &k))
        }
        [] => Err(CliError::usage("no command given")),
        _ => Err(CliError::usage(format!(
            "unknown command or wrong operands: {}",
            args.words.join(" ")
        ))),
    }
}

fn device_list() -> Result<Output, CliError> {
    let mut text = String::new();
    let mut usb = Vec::new();
    match fido_transport::hid::list_devices() {
        Ok(list) => {
            for d in list {
                text.push_str(&format!(
                    "usb:{}  {:04x}:{:04x}  {} {}\n",
                    d.path,
                    d.vendor_id,
                    d.product_id,
                    d.manufacturer.as_deref().unwrap_or(""),
                    d.product.as_deref().unwrap_or("")
                ));
                usb.push(json!({
                    "device": format!("usb:{}", d.path),
                    "vendor_id": d.vendor_id,
                    "product_id": d.product_id,
                    "manufacturer": d.manufacturer,
                    "product": d.product,
                    "serial": d.serial,
                }));
            }
        }
        Err(e) => text.push_str(&format!("USB HID: not available ({e})\n")),
    }
    let mut nfc = Vec::new();
    match fido_transport::nfc::list_readers() {
        Ok(list) => {
            for r in list {
                let fido = r.has_fido_applet();
                text.push_str(&format!(
                    "nfc:{}  card={}  fido={}\n",
                    r.name, r.card_present, fido
                ));
                nfc.push(json!({
                    "device": format!("nfc:{}", r.name),
                    "card_present": r.card_present,
                    "fido_applet": fido,
                }));
            }
        }
        Err(e) => text.push_str(&format!("PC/SC: not available ({e})\n")),
    }
    if usb.is_empty() && nfc.is_empty() {
        text.push_str("no security keys or readers found\n");
    }
    Ok(Output {
        json: json!({ "command": "device list", "usb": usb, "nfc": nfc }),
        text: text.trim_end().to_owned(),
    })
}

fn device_info(args: &Args) -> Result<Output, CliError> {
    let mut dev = open_device(args.device.as_deref())?;
    let describe = dev.client.transport().describe();
    let info = dev.client.info()?.clone();
    let options: serde_json::Map<String, Value> = info
        .options
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, Value::Bool(v)))
        .collect();
    let j = json!({
        "command": "device info",
        "device": describe,
        "serial": dev.serial,
        "aaguid": hex(&info.aaguid),
        "versions": info.versions,
        "extensions": info.extensions,
        "options": options,
        "min_pin_length": info.min_pin_length,
        "firmware_version": info.firmware_version,
        "remaining_discoverable_credentials": info.remaining_discoverable_credentials,
    });
    let text = format!(
        "device: {describe}\nserial: {}\naaguid: {}\nversions: {}\nextensions: {}\noptions: {}",
        dev.serial.as_deref().unwrap_or("-"),
        hex(&info.aaguid),
        info.versions.join(", "),
        info.extensions.unwrap_or_default().join(", "),
        info.options
            .unwrap_or_default()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    Ok(Output { json: j, text })
}

fn device_reset(args: &Args) -> Result<Output, CliError> {
    let mut dev = open_device(args.device.as_deref())?;
    eprintln!(
        "resetting {}: touch your key",
        dev.client.transport().describe()
    );
    match dev.client.reset(&mut |_| {}) {
        Ok(()) => Ok(Output {
            json: json!({ "command": "device reset", "reset": true }),
            text: "the key is reset: every credential and the PIN are gone".into(),
        }),
        Err(fido_transport::Error::ReattachRequired) => Err(CliError::device(
            "the key refuses reset this long after power-up: unplug it, plug it back in and run \
             `keysmith device reset` again within 10 seconds",
        )),
        Err(e) => Err(e.into()),
    }
}

fn device_set_pin(args: &Args) -> Result<Output, CliError> {
    let mut dev = open_device(args.device.as_deref())?;
    let has_pin = dev
        .client
        .info()?
        .options
        .as_ref()
        .and_then(|o| o.iter().find(|(k, _)| k == "clientPin").map(|(_, v)| *v))
        .unwrap_or(false);
    if has_pin {
        let current = read_pin(args, "current PIN")?;
        let new = read_pin(args, "new PIN")?;
        dev.client.change_pin(&current, &new)?;
    } else {
        let new = read_pin(args, "new PIN")?;
        dev.client.set_pin(&new)?;
    }
    Ok(Output {
        json: json!({ "command": "device set-pin", "changed": has_pin, "set": true }),
        text: if has_pin {
            "PIN changed".into()
        } else {
            "PIN set".into()
        },
    })
}

/// Connectivity check of every configured IdP connection (token + one cheap read).
fn idp_check(args: &Args) -> Result<Output, CliError> {
    let s = setup(args)?;
    let mut text = String::new();
    let mut rows = Vec::new();
    for name in &s.idps {
        let ms = s.engine.check_connection(name)?;
        text.push_str(&format!("{name}: ok ({ms} ms: token + one read)\n"));
        rows.push(json!({ "connection": name, "ok": true, "elapsed_ms": ms }));
    }
    if rows.is_empty() {
        return Err(CliError::usage("the config names no IdP connection"));
    }
    Ok(Output {
        json: json!({ "command": "idp check", "connections": rows }),
        text: text.trim_end().to_owned(),
    })
}

/// Directory search by display-name or UPN prefix, for picking the user to issue to.
fn users_search(args: &Args, prefix: &str) -> Result<Output, CliError> {
    let s = setup(args)?;
    let connection = s
        .idps
        .first()
        .ok_or_else(|| CliError::usage("the config names no IdP connection"))?;
    let users = s.engine.search_users(connection, prefix, 25)?;
    let mut text = String::new();
    let mut rows = Vec::new();
    for u in &users {
        let upn = u.user_principal_name.as_deref().unwrap_or("-");
        let name = u.display_name.as_deref().unwrap_or("-");
        text.push_str(&format!("{}  {upn}  {name}\n", u.id));
        rows.push(json!({ "id": u.id, "userPrincipalName": upn, "displayName": name }));
    }
    if users.is_empty() {
        text.push_str(&format!("no user of {connection} starts with {prefix:?}"));
    }
    Ok(Output {
        json: json!({ "command": "users search", "connection": connection, "users": rows }),
        text: text.trim_end().to_owned(),
    })
}

fn show(args: &Args) -> Result<Output, CliError> {
    let s = setup(args)?;
    let key = one_key(args)?;
    let k = s.engine.key(key)?;
    let passkeys = s.engine.passkeys(key)?;
    let pending = s
        .engine
        .store()
        .pending_for_key(key)
        .map_err(|e| CliError::other(format!("repository: {e}")))?;
    let audit = s.engine.audit_for(key)?;
    let mut text = key_line(&k);
    for p in &passkeys {
        text.push_str(&format!(
            "\n  passkey {}  state={}  idp method={}",
            p.idp,
            p.state,
            p.idp_method_id.as_deref().unwrap_or("-")
        ));
    }
    for p in &pending {
        text.push_str(&format!(
            "\n  pending registration {}  challenge expires at {} ms",
            p.idp, p.challenge_expires_ms
        ));
    }
    for a in &audit {
        text.push_str(&format!(
            "\n  audit #{} {} {} {}",
            a.id, a.event.actor, a.event.action, a.event.outcome
        ));
    }
    let pending_json: Vec<Value> = pending
        .iter()
        .map(|p| {
            json!({ "idp": p.idp, "user_id": p.user_id,
                    "challenge_expires_ms": p.challenge_expires_ms, "created_ms": p.created_ms })
        })
        .collect();
    Ok(Output {
        json: json!({
            "command": "show",
            "key": key_json(&k),
            "passkeys": serde_json::to_value(&passkeys).unwrap_or(Value::Null),
            "pending": pending_json,
            "audit": serde_json::to_value(&audit).unwrap_or(Value::Null),
        }),
        text,
    })
}

/// `--expiring-before`: unix seconds, or `+<N>h` / `+<N>d` from now; returns unix ms.
fn parse_time(s: &str, now: u64) -> Result<u64, CliError> {
    let bad = || {
        CliError::usage(format!(
            "--expiring-before {s:?}: expected unix seconds, +<N>h or +<N>d"
        ))
    };
    if let Some(rel) = s.strip_prefix('+') {
        let (n, unit) = rel.split_at(rel.len().saturating_sub(1));
        let n: u64 = n.parse().map_err(|_| bad())?;
        let ms = match unit {
            "h" => n.checked_mul(3_600_000),
            "d" => n.checked_mul(86_400_000),
            _ => None,
        }
        .ok_or_else(bad)?;
        return now.checked_add(ms).ok_or_else(bad);
    }
    s.parse::<u64>()
        .ok()
        .and_then(|secs| secs.checked_mul(1000))
        .ok_or_else(bad)
}

const ALL_STATES: [CredentialState; 7] = [
    CredentialState::Blank,
    CredentialState::Issued,
    CredentialState::Active,
    CredentialState::Inactive,
    CredentialState::Revoked,
    CredentialState::Retired,
    CredentialState::Unregistered,
];

fn list(args: &Args) -> Result<Output, CliError> {
    let s = setup(args)?;
    let state = match &args.state {
        Some(st) => Some(
            st.parse::<CredentialState>()
                .map_err(|e| CliError::usage(format!("--state {st:?}: {e}")))?,
        ),
        None => None,
    };
    let before = match &args.expiring_before {
        Some(t) => Some(parse_time(t, now_ms())?),
        None => None,
    };
    let mut keys = match (&args.user, state) {
        (Some(u), _) => {
            let mut found = s.engine.find_keys(&KeyQuery::ByUser(u.clone()))?;
            // Keys record the IdP's object id: a UPN is resolved through each connection.
            if found.is_empty() && u.contains('@') {
                for name in &s.idps {
                    let idp = s.engine.idp(name).map_err(lifecycle::Error::from)?;
                    let id = idp.user(u).map_err(lifecycle::Error::from)?.id;
                    found.extend(s.engine.find_keys(&KeyQuery::ByUser(id))?);
                }
            }
            found
        }
        (None, Some(st)) => s.engine.find_keys(&KeyQuery::ByState(st))?,
        (None, None) => {
            let mut all = Vec::new();
            for st in ALL_STATES {
                all.extend(s.engine.find_keys(&KeyQuery::ByState(st))?);
            }
            all
        }
    };
    if let Some(st) = state {
        keys.retain(|k| k.state == st);
    }
    if let Some(t) = before {
        let mut kept = Vec::new();
        for k in keys {
            let pending = s
                .engine
                .store()
                .pending_for_key(&k.key_id)
                .map_err(|e| CliError::other(format!("repository: {e}")))?;
            let t = i64::try_from(t).unwrap_or(i64::MAX);
            if pending.iter().any(|p| p.challenge_expires_ms < t) {
                kept.push(k);
            }
        }
        keys = kept;
    }
    keys.sort_by(|a, b| a.key_id.cmp(&b.key_id));
    let text = if keys.is_empty() {
        "no keys match".to_owned()
    } else {
        keys.iter().map(key_line).collect::<Vec<_>>().join("\n")
    };
    Ok(Output {
        json: json!({ "command": "list", "keys": keys.iter().map(key_json).collect::<Vec<_>>() }),
        text,
    })
}

fn issue(args: &Args) -> Result<Output, CliError> {
    let s = setup(args)?;
    let tpath = args
        .template
        .as_deref()
        .ok_or_else(|| CliError::usage("issue needs --template FILE"))?;
    let user = args
        .user
        .clone()
        .ok_or_else(|| CliError::usage("issue needs --user U"))?;
    let templates = TemplateSet::load(tpath)
        .and_then(|t| t.validate().map(|()| t))
        .map_err(|e| CliError::usage(format!("template {}: {e}", tpath.display())))?;
    s.engine.add_template(templates.clone())?;
    let mut dev = open_device(args.device.as_deref())?;
    let serial = match args.serial.clone().or_else(|| dev.serial.clone()) {
        Some(s) => s,
        None => {
            return Err(CliError::usage(
                "the key reports no serial number: give --serial S",
            ))
        }
    };
    let request = IssueRequest {
        actor: s.actor.clone(),
        user,
        serial,
        transport: dev.kind,
        can_reset_in_place: dev.can_reset_in_place,
    };
    let k = s.engine.issue(
        &request,
        &templates.credential.name,
        &mut dev.client,
        now_ms(),
    )?;
    Ok(key_result("issue", &k))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn flags_are_parsed_anywhere_and_unknown_flags_refused() {
        let a = parse_args(&words("--json revoke K1 --no-force --config c.toml")).unwrap();
        assert!(a.json);
        assert_eq!(a.force, Some(false));
        assert_eq!(a.words, ["revoke", "K1"]);
        assert_eq!(a.config.as_deref(), Some(Path::new("c.toml")));
        let e = parse_args(&words("list --bogus")).unwrap_err();
        assert_eq!(e.code, EXIT_USAGE);
        let e = parse_args(&words("list --user")).unwrap_err();
        assert!(e.message.contains("--user needs a value"));
    }

    #[test]
    fn times_are_absolute_seconds_or_relative() {
        assert_eq!(parse_time("1700000000", 0).unwrap(), 1_700_000_000_000);
        assert_eq!(parse_time("+2h", 1000).unwrap(), 1000 + 7_200_000);
        assert_eq!(parse_time("+1d", 0).unwrap(), 86_400_000);
        assert!(parse_time("+3w", 0).is_err());
        assert!(parse_time("soon", 0).is_err());
    }

    #[test]
    fn errors_map_to_documented_exit_codes() {
        let e: CliError =
            lifecycle::Error::Engine(EngineError::UnknownKey { key_id: "k".into() }).into();
        assert_eq!(e.code, EXIT_USAGE);
        let e: CliError = lifecycle::Error::Engine(EngineError::Device {
            step: "getInfo",
            message: "x".into(),
        })
        .into();
        assert_eq!(e.code, EXIT_DEVICE);
        let e: CliError = fido_transport::Error::ReattachRequired.into();
        assert_eq!(e.code, EXIT_DEVICE);
    }

    #[test]
    fn hex_pin_key_files_are_accepted() {
        assert_eq!(unhex("0aff").unwrap(), vec![0x0a, 0xff]);
        assert!(unhex("0g").is_none());
        assert!(unhex("abc").is_none());
    }
}
