//! The agent's command line, shared by the `keysmith-agent` binary and `keysmith agent`
//! (see the library docs and `docs/agent.md`).
//!
//! ```text
//! keysmith-agent [--config FILE] enroll [--code CODE]   enrol at the server; prints the fingerprint
//! keysmith-agent [--config FILE] status                 the enrolment's status at the server
//! keysmith-agent [--config FILE] fingerprint            this agent's id (creates the key at first run)
//! keysmith-agent [--config FILE] ui [--socket PATH] [--agent-uid UID]... [OPERATION]
//!                                                       the holder's terminal UI
//! keysmith-agent [--config FILE] holder --device SPEC   the holder service (PIN via `ui`)
//! keysmith-agent version
//! ```
//!
//! Exit codes: 0 success, 1 failure, 2 usage or configuration error, 3 cancelled.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::config::AgentConfig;
use crate::enroll::{self, HostInfo};
use crate::key::AgentKey;
use crate::AgentError;
use zeroize::Zeroizing;

const USAGE: &str = "usage:
  keysmith-agent [--config FILE] enroll [--code CODE]   enrol at the server (stations: the code the
                                                        admin issued; '-' or none: prompted)
  keysmith-agent [--config FILE] status                 the enrolment's status at the server
  keysmith-agent [--config FILE] fingerprint            this agent's id (creates the key at first run)
  keysmith-agent [--config FILE] ui [--socket PATH] [--agent-uid UID]... [--pin-stdin] [--no-browser]
          [activate [--key-id ID] | self-issue --template NAME | verify --key-id ID]
                                                        the holder's terminal UI (asks the holder
                                                        service for the operation, or answers a
                                                        station's PIN request at the desk)
  keysmith-agent [--config FILE] run --device SPEC [--once] [--max-wait SECS] [--holder-ui]
                                                        a station: take operator work for the key
                                                        (--holder-ui: the holder at the desk types
                                                        the PIN in `ui`)
  keysmith-agent [--config FILE] holder --device SPEC [--once]
                                                        the holder service: runs what the holder's
                                                        `ui` asks for, PIN and sign-in through it
  keysmith-agent [--config FILE] service run|holder ... the same under the Windows service control
                                                        manager (see docs/agent.md)
  keysmith-agent [--config FILE] activate --device SPEC [--key-id ID] [--pin-stdin] [--no-browser]
  keysmith-agent [--config FILE] self-issue --device SPEC --template NAME [--pin-stdin] [--no-browser]
  keysmith-agent [--config FILE] verify --device SPEC --key-id ID [--pin-stdin] [--no-browser]
                                                        the holder's operations (sign-in, then the PIN
                                                        from the terminal or stdin, never sent anywhere)
  SPEC: usb:PATH, nfc:READER or softkey:STATEFILE
  keysmith-agent version

  FILE defaults to $KEYSMITH_AGENT_CONFIG, else /etc/keysmith-agent/agent.toml";

/// Runs the command line `args` (without the program name) and returns the exit code.
pub fn main_with(args: Vec<String>) -> ExitCode {
    match run(args) {
        Ok(code) => code,
        Err(e) => ExitCode::from(error_code(&e)),
    }
}

/// Prints `e` and gives its exit code: 2 usage or configuration, 3 cancelled, else 1.
fn error_code(e: &AgentError) -> u8 {
    eprintln!("keysmith-agent: {e}");
    match e {
        AgentError::Config { .. } => 2,
        AgentError::Cancelled => 3,
        _ => 1,
    }
}

/// [`main_with`] as a number for the Windows service's exit status (0 success; a
/// command's own non-zero code is reported as 1).
#[cfg_attr(not(windows), allow(dead_code))]
pub(crate) fn run_code(args: Vec<String>) -> u8 {
    match run(args) {
        Ok(code) if code == ExitCode::SUCCESS => 0,
        Ok(_) => 1,
        Err(e) => error_code(&e),
    }
}

fn usage(msg: &str) -> Result<ExitCode, AgentError> {
    eprintln!("keysmith-agent: {msg}\n{USAGE}");
    Ok(ExitCode::from(2))
}

fn run(mut args: Vec<String>) -> Result<ExitCode, AgentError> {
    let mut config_path = std::env::var_os("KEYSMITH_AGENT_CONFIG")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/etc/keysmith-agent/agent.toml"));
    if args.first().map(String::as_str) == Some("--config") {
        if args.len() < 2 {
            return usage("--config needs a file");
        }
        config_path = PathBuf::from(args.remove(1));
        args.remove(0);
    }
    let Some(cmd) = args.first().cloned() else {
        return usage("no command");
    };
    let rest = &args[1..];
    match cmd.as_str() {
        "version" | "--version" => {
            println!("keysmith-agent {}", env!("CARGO_PKG_VERSION"));
            Ok(ExitCode::SUCCESS)
        }
        "help" | "--help" | "-h" => {
            println!("{USAGE}");
            Ok(ExitCode::SUCCESS)
        }
        "fingerprint" => {
            let config = AgentConfig::load(&config_path)?;
            let (key, created) = AgentKey::load_or_create(&config.key_file)?;
            if created {
                eprintln!("created the agent key {}", config.key_file.display());
            }
            println!("agent id    {}", key.agent_id());
            println!("fingerprint {}", key.fingerprint());
            Ok(ExitCode::SUCCESS)
        }
        "enroll" => enroll_cmd(&config_path, rest),
        "status" => {
            let config = AgentConfig::load(&config_path)?;
            let key = AgentKey::load(&config.key_file)?;
            let http =
                crate::http::client(config.server_ca_file.as_deref(), Duration::from_secs(30))?;
            let status = enroll::status(&http, &config.server_url, &key.agent_id())?;
            println!("{status}");
            Ok(ExitCode::SUCCESS)
        }
        "ui" => ui_cmd(&config_path, rest),
        "service" => service_cmd(&config_path, rest),
        "run" | "holder" | "activate" | "self-issue" | "verify" => {
            split_cmd(&config_path, &cmd, rest)
        }
        other => usage(&format!("unknown command {other:?}")),
    }
}

/// `service run|holder ...`: the same command under the Windows service control manager.
fn service_cmd(config_path: &std::path::Path, rest: &[String]) -> Result<ExitCode, AgentError> {
    if !matches!(rest.first().map(String::as_str), Some("run" | "holder")) {
        return usage("service: run or holder follows (the command the service runs)");
    }
    #[cfg(windows)]
    {
        let mut command = vec![
            "--config".to_owned(),
            config_path.to_string_lossy().into_owned(),
        ];
        command.extend(rest.iter().cloned());
        crate::winsvc::start(command)?;
        Ok(ExitCode::SUCCESS)
    }
    #[cfg(not(windows))]
    {
        let _ = config_path;
        usage("service: the Windows service entry point; on Linux run the command under systemd (docs/agent.md)")
    }
}

fn enroll_cmd(config_path: &std::path::Path, rest: &[String]) -> Result<ExitCode, AgentError> {
    let config = AgentConfig::load(config_path)?;
    let mut code: Option<Zeroizing<String>> = None;
    let mut i = 0;
    while i < rest.len() {
        match rest[i].as_str() {
            "--code" if i + 1 < rest.len() => {
                code = Some(Zeroizing::new(rest[i + 1].clone()));
                i += 2;
            }
            other => return usage(&format!("enroll: unexpected {other:?}")),
        }
    }
    let station = config.class == crate::config::AgentClass::Station;
    if station && code.as_deref().is_none_or(|c| c.as_str() == "-") {
        // Prompted with echo off, so the code is in no shell history or process list.
        let typed = rpassword::prompt_password("enrolment code: ")
            .map_err(|e| AgentError::io("reading the enrolment code", e))?;
        code = Some(Zeroizing::new(typed));
    }
    let (key, created) = AgentKey::load_or_create(&config.key_file)?;
    if created {
        eprintln!("created the agent key {}", config.key_file.display());
    }
    let http = crate::http::client(config.server_ca_file.as_deref(), Duration::from_secs(30))?;
    let e = enroll::enroll(
        &http,
        &config.server_url,
        &key,
        config.class,
        config.station.as_deref(),
        code.as_ref(),
        &HostInfo::current(),
    )?;
    println!("agent id    {}", e.agent_id);
    println!("fingerprint {}", e.fingerprint);
    println!("status      {}", e.status);
    if e.status == "pending" {
        println!("Compare the fingerprint with the one the admin approves.");
    }
    Ok(ExitCode::SUCCESS)
}

fn ui_cmd(config_path: &std::path::Path, rest: &[String]) -> Result<ExitCode, AgentError> {
    use crate::ui::{FromUi, HolderOperation};
    let mut socket: Option<PathBuf> = None;
    let mut agent_uids: Vec<u32> = Vec::new();
    let mut opts = crate::holder::TerminalOptions::default();
    let mut operation = None;
    let mut key_id = None;
    let mut template = None;
    let mut i = 0;
    while i < rest.len() {
        let mut step = 2;
        match (rest[i].as_str(), rest.get(i + 1)) {
            ("--socket", Some(p)) => socket = Some(PathBuf::from(p)),
            ("--agent-uid", Some(u)) => match u.parse() {
                Ok(u) => agent_uids.push(u),
                Err(_) => return usage("--agent-uid needs a number"),
            },
            ("--key-id", Some(k)) => key_id = Some(k.clone()),
            ("--template", Some(t)) => template = Some(t.clone()),
            ("--pin-stdin", _) => (opts.pin_stdin, step) = (true, 1),
            ("--no-browser", _) => (opts.no_browser, step) = (true, 1),
            ("activate", _) if operation.is_none() => {
                (operation, step) = (Some(HolderOperation::Activate), 1)
            }
            ("self-issue", _) if operation.is_none() => {
                (operation, step) = (Some(HolderOperation::SelfIssue), 1)
            }
            ("verify", _) if operation.is_none() => {
                (operation, step) = (Some(HolderOperation::Verify), 1)
            }
            (other, _) => return usage(&format!("ui: unexpected {other:?}")),
        }
        i += step;
    }
    let request = match operation {
        Some(op) => {
            // Refused here, before anything is sent, as the service would refuse it.
            crate::holder::mode_for(op, key_id.clone(), template.clone())?;
            Some(FromUi::Request {
                operation: op,
                key_id,
                template,
            })
        }
        None if key_id.is_some() || template.is_some() => {
            return usage("ui: --key-id and --template go with activate, self-issue or verify")
        }
        None => None,
    };
    let config = if socket.is_none() || agent_uids.is_empty() {
        AgentConfig::load(config_path).ok()
    } else {
        None
    };
    if let Some(c) = &config {
        if agent_uids.is_empty() {
            agent_uids = c.ui.agent_uids.clone();
        }
    }
    #[cfg(unix)]
    {
        let path = socket
            .or_else(|| config.as_ref().map(AgentConfig::ui_socket))
            .unwrap_or_else(|| PathBuf::from("/run/keysmith-agent/ui.sock"));
        let client = crate::ui::unix::connect(&path, &agent_uids)?;
        crate::holder::terminal_ui(client, request, &opts)
    }
    #[cfg(windows)]
    {
        let _ = (socket, agent_uids);
        let pipe = config
            .as_ref()
            .and_then(|c| c.ui.pipe.clone())
            .unwrap_or_else(|| crate::ui::windows::DEFAULT_PIPE.to_owned());
        let client = crate::ui::windows::connect(&pipe)?;
        crate::holder::terminal_ui(client, request, &opts)
    }
}

/// The holder's PIN, from stdin (automation, tests) or the terminal; zeroized.
struct TerminalUi {
    from_stdin: bool,
    cached: Option<Zeroizing<String>>,
}

impl TerminalUi {
    fn read(&mut self, prompt: &str) -> Result<Zeroizing<String>, keysmith_device::HolderUiError> {
        if let Some(p) = &self.cached {
            return Ok(p.clone());
        }
        let pin = if self.from_stdin {
            let mut line = Zeroizing::new(String::new());
            std::io::stdin()
                .read_line(&mut line)
                .map_err(|_| keysmith_device::HolderUiError::Unavailable)?;
            Zeroizing::new(line.trim_end_matches(['\r', '\n']).to_owned())
        } else {
            Zeroizing::new(
                rpassword::prompt_password(prompt)
                    .map_err(|_| keysmith_device::HolderUiError::Unavailable)?,
            )
        };
        if pin.is_empty() {
            return Err(keysmith_device::HolderUiError::Cancelled);
        }
        self.cached = Some(pin.clone());
        Ok(pin)
    }
}

impl keysmith_device::HolderUi for TerminalUi {
    fn new_pin(
        &mut self,
        min_len: u32,
        _confirm: bool,
    ) -> Result<Zeroizing<String>, keysmith_device::HolderUiError> {
        self.read(&format!("new PIN (at least {min_len} characters): "))
    }
    fn holder_pin(&mut self) -> Result<Zeroizing<String>, keysmith_device::HolderUiError> {
        self.read("PIN: ")
    }
    fn prompt(&self, p: &keysmith_device::Prompt) {
        eprintln!("{p:?}");
    }
}

/// What the split commands share once parsed.
struct Connected {
    config: AgentConfig,
    key: AgentKey,
    http: reqwest::blocking::Client,
    server_key: keysmith_wire::PublicKey,
}

fn connect(config_path: &std::path::Path) -> Result<Connected, AgentError> {
    let config = AgentConfig::load(config_path)?;
    let key = AgentKey::load(&config.key_file)?;
    let http = crate::http::client(config.server_ca_file.as_deref(), Duration::from_secs(330))?;
    let pin = config.server_key_fingerprint()?;
    let server_key = crate::session::server_key(&http, &config.server_url, &pin)?;
    Ok(Connected {
        config,
        key,
        http,
        server_key,
    })
}

/// The holder's sign-in for the server's `NeedHolderAuth`, at the configured issuer
/// only; `show` gets the session code and the address to open (the terminal, or the
/// holder's UI over the channel).
fn sign_in_with<'a>(
    oidc: Option<crate::config::OidcConfig>,
    show: impl Fn(crate::ui::ToUi) + 'a,
) -> Result<
    impl FnMut(&keysmith_wire::NeedHolderAuth) -> Result<crate::me::HolderTokens, AgentError> + 'a,
    AgentError,
> {
    let sign_http = crate::http::client(None, Duration::from_secs(30))?;
    Ok(move |need: &keysmith_wire::NeedHolderAuth| {
        let o = oidc.as_ref().ok_or_else(|| {
            AgentError::config("oidc", "holders sign in: configure [oidc]".to_owned())
        })?;
        // The agent signs in only where it was configured to: a server asking for another
        // issuer or client is refused.
        if o.issuer != need.issuer || o.client_id != need.client_id {
            return Err(AgentError::SignIn(format!(
                "the server asks for a sign-in at {} for {}, this agent is configured for {} / {}",
                need.issuer, need.client_id, o.issuer, o.client_id
            )));
        }
        // Scopes on other resources are refused: the holder grants only the sign-in
        // and, for delegated registration, the configured Graph.
        let wants_graph = crate::me::check_scopes(&need.scopes, o.graph_url())?;
        show(crate::ui::ToUi::SessionCode {
            code: need.session_code.clone(),
        });
        let req = crate::oidc::SignInRequest {
            issuer: o.issuer.clone(),
            client_id: o.client_id.clone(),
            scopes: need.scopes.clone(),
            nonce: need.nonce.clone(),
            login_hint: need.login_hint.clone(),
            max_age: Some(u64::from(need.max_age_s)),
            session_code: Some(need.session_code.clone()),
            timeout: Duration::from_secs(300),
        };
        let mut open = |url: &str| -> Result<(), AgentError> {
            show(crate::ui::ToUi::NeedSignIn {
                url: url.to_owned(),
            });
            Ok(())
        };
        let mut token = crate::oidc::sign_in(&sign_http, &req, &mut open)?;
        let graph = if wants_graph {
            token.take_access_token().map(|t| crate::me::GraphAccess {
                base_url: o.graph_url().to_owned(),
                token: t,
            })
        } else {
            None
        };
        Ok(crate::me::HolderTokens {
            id_token: Zeroizing::new(token.expose().to_owned()),
            graph,
        })
    })
}

fn split_cmd(
    config_path: &std::path::Path,
    cmd: &str,
    rest: &[String],
) -> Result<ExitCode, AgentError> {
    use crate::session::{self, Mode};
    let mut device = None;
    let mut key_id = None;
    let mut template = None;
    let mut once = false;
    let mut max_wait = Duration::from_secs(60);
    let mut pin_stdin = false;
    let mut browser = true;
    let mut holder_ui = false;
    let mut i = 0;
    while i < rest.len() {
        let value = rest.get(i + 1).cloned();
        let mut step = 2;
        match (rest[i].as_str(), value) {
            ("--device", Some(v)) => device = Some(v),
            ("--key-id", Some(v)) => key_id = Some(v),
            ("--template", Some(v)) => template = Some(v),
            ("--max-wait", Some(v)) => {
                let secs: u64 = v.parse().map_err(|_| {
                    AgentError::config("--max-wait", "a number of seconds".to_owned())
                })?;
                max_wait = Duration::from_secs(secs);
            }
            ("--once", _) => (once, step) = (true, 1),
            ("--pin-stdin", _) => (pin_stdin, step) = (true, 1),
            ("--no-browser", _) => (browser, step) = (false, 1),
            ("--holder-ui", _) if cmd == "run" => (holder_ui, step) = (true, 1),
            (other, _) => return usage(&format!("{cmd}: unexpected {other:?}")),
        }
        i += step;
    }
    let Some(spec) = device else {
        return usage(&format!("{cmd}: --device SPEC is required"));
    };
    let mode = match cmd {
        "run" | "holder" => Mode::Station {
            once,
            max_wait,
            holder_at_desk: holder_ui,
        },
        "activate" => Mode::Activate { key_id },
        "self-issue" => match template {
            Some(template) => Mode::SelfIssue { template },
            None => return usage("self-issue: --template NAME is required"),
        },
        _ => match key_id {
            Some(key_id) => Mode::Verify { key_id },
            None => return usage("verify: --key-id ID is required"),
        },
    };
    let c = connect(config_path)?;
    if cmd == "holder" {
        return holder_service(&c, &spec, once);
    }
    if cmd == "run" && holder_ui {
        return station_with_holder_ui(&c, &spec, &mode);
    }
    let mut opened = crate::device::open(&spec)?;
    let mut ui = TerminalUi {
        from_stdin: pin_stdin,
        cached: None,
    };
    let mut sign_in = sign_in_with(c.config.oidc.clone(), |m| match m {
        crate::ui::ToUi::SessionCode { code } => eprintln!("session code {code}"),
        crate::ui::ToUi::NeedSignIn { url } => {
            eprintln!("sign in at: {url}");
            if browser {
                crate::oidc::open_system_browser(&url);
            }
        }
        _ => {}
    })?;
    let out = session::run(
        &c.http,
        &c.config.server_url,
        c.server_key,
        &c.key,
        &mut opened,
        &mode,
        &mut ui,
        &mut sign_in,
    )?;
    println!("{out}");
    Ok(ExitCode::SUCCESS)
}

/// The UI channel's listener, as configured (`[ui]`).
#[cfg(unix)]
fn ui_listener(
    c: &Connected,
) -> Result<
    impl FnMut() -> Result<crate::ui::UiSession<std::os::unix::net::UnixStream>, AgentError>,
    AgentError,
> {
    let listener = crate::ui::unix::UiListener::bind(
        &c.config.ui_socket(),
        &c.config.ui.allowed_uids,
        &c.key.fingerprint(),
    )?;
    eprintln!(
        "the holder's UI connects at {}",
        c.config.ui_socket().display()
    );
    Ok(move || listener.accept())
}

/// The UI channel's listener, as configured (`[ui]`).
#[cfg(windows)]
fn ui_listener(
    c: &Connected,
) -> Result<impl FnMut() -> Result<crate::ui::UiSession<std::fs::File>, AgentError>, AgentError> {
    let pipe = c
        .config
        .ui
        .pipe
        .clone()
        .unwrap_or_else(|| crate::ui::windows::DEFAULT_PIPE.to_owned());
    let server = crate::ui::windows::PipeServer::new(&pipe, None, &c.key.fingerprint());
    Ok(move || server.accept())
}

/// `holder`: serves the holder's UI (see [`crate::holder`]).
fn holder_service(c: &Connected, spec: &str, once: bool) -> Result<ExitCode, AgentError> {
    let accept = ui_listener(c)?;
    crate::holder::serve(accept, once, |mode, ui| {
        // The key is opened per request: the holder may change keys between two.
        let mut opened = crate::device::open(spec)?;
        let mut sign_in = sign_in_with(c.config.oidc.clone(), |m| {
            if let Err(e) = ui.notify(&m) {
                tracing::warn!(error = %e, "the holder's UI went away");
            }
        })?;
        let mut holder_ui = ui;
        crate::session::run(
            &c.http,
            &c.config.server_url,
            c.server_key.clone(),
            &c.key,
            &mut opened,
            mode,
            &mut holder_ui,
            &mut sign_in,
        )
    })?;
    Ok(ExitCode::SUCCESS)
}

/// `run --holder-ui`: a station where the holder is at the desk and types their PIN in
/// the UI (issuance with activation at the desk); the UI is awaited at the first PIN
/// request of each work.
fn station_with_holder_ui(
    c: &Connected,
    spec: &str,
    mode: &crate::session::Mode,
) -> Result<ExitCode, AgentError> {
    let ui = ChannelUiFor::on_demand(ui_listener(c)?);
    let once = matches!(mode, crate::session::Mode::Station { once: true, .. });
    loop {
        let mut opened = crate::device::open(spec)?;
        let mut no_sign_in = |_: &keysmith_wire::NeedHolderAuth| {
            Err(AgentError::Session(
                "a station does not sign holders in".into(),
            ))
        };
        let mut holder_ui = &ui;
        let out = crate::session::run(
            &c.http,
            &c.config.server_url,
            c.server_key.clone(),
            &c.key,
            &mut opened,
            mode,
            &mut holder_ui,
            &mut no_sign_in,
        );
        match &out {
            Ok(v) => ui.done(true, &v.to_string()),
            Err(e) => ui.done(false, &e.to_string()),
        }
        let out = out?;
        println!("{out}");
        if once || out.get("outcome").and_then(|o| o.as_str()) == Some("no_work") {
            return Ok(ExitCode::SUCCESS);
        }
    }
}

#[cfg(unix)]
type ChannelUiFor = crate::ui::ChannelUi<std::os::unix::net::UnixStream>;
#[cfg(windows)]
type ChannelUiFor = crate::ui::ChannelUi<std::fs::File>;

#[cfg(test)]
mod tests {
    use std::process::ExitCode;

    fn code(args: &[&str]) -> ExitCode {
        super::main_with(args.iter().map(|a| a.to_string()).collect())
    }

    #[test]
    fn the_service_entry_point_needs_a_command_and_is_windows_only() {
        let usage = ExitCode::from(2);
        assert_eq!(code(&["service"]), usage);
        assert_eq!(code(&["service", "enroll"]), usage);
        #[cfg(not(windows))]
        assert_eq!(code(&["service", "run", "--device", "softkey:/x"]), usage);
        assert_eq!(code(&["version"]), ExitCode::SUCCESS);
    }
}
