//! The agent's command line, shared by the `keysmith-agent` binary and `keysmith agent`
//! (see the library docs and `docs/agent.md`).
//!
//! ```text
//! keysmith-agent [--config FILE] enroll [--code CODE]   enrol at the server; prints the fingerprint
//! keysmith-agent [--config FILE] status                 the enrolment's status at the server
//! keysmith-agent [--config FILE] fingerprint            this agent's id (creates the key at first run)
//! keysmith-agent [--config FILE] ui [--socket PATH] [--agent-uid UID]...
//!                                                       the holder's terminal UI
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
  keysmith-agent [--config FILE] ui [--socket PATH] [--agent-uid UID]...
                                                        the holder's terminal UI
  keysmith-agent [--config FILE] run --device SPEC [--once] [--max-wait SECS]
                                                        a station: take operator work for the key
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
        Err(e) => {
            eprintln!("keysmith-agent: {e}");
            match e {
                AgentError::Config { .. } => ExitCode::from(2),
                AgentError::Cancelled => ExitCode::from(3),
                _ => ExitCode::from(1),
            }
        }
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
        "run" | "activate" | "self-issue" | "verify" => split_cmd(&config_path, &cmd, rest),
        other => usage(&format!("unknown command {other:?}")),
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
    let mut socket: Option<PathBuf> = None;
    let mut agent_uids: Vec<u32> = Vec::new();
    let mut i = 0;
    while i < rest.len() {
        match (rest[i].as_str(), rest.get(i + 1)) {
            ("--socket", Some(p)) => socket = Some(PathBuf::from(p)),
            ("--agent-uid", Some(u)) => match u.parse() {
                Ok(u) => agent_uids.push(u),
                Err(_) => return usage("--agent-uid needs a number"),
            },
            (other, _) => return usage(&format!("ui: unexpected {other:?}")),
        }
        i += 2;
    }
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
        terminal_ui(client)
    }
    #[cfg(windows)]
    {
        let _ = (socket, agent_uids);
        let pipe = config
            .as_ref()
            .and_then(|c| c.ui.pipe.clone())
            .unwrap_or_else(|| crate::ui::windows::DEFAULT_PIPE.to_owned());
        let client = crate::ui::windows::connect(&pipe)?;
        terminal_ui(client)
    }
}

fn terminal_ui<S: std::io::Read + std::io::Write>(
    mut client: crate::ui::UiClient<S>,
) -> Result<ExitCode, AgentError> {
    use crate::ui::{FromUi, HolderPin, PromptKind, ToUi};
    while let Some(msg) = client.recv()? {
        match msg {
            ToUi::Hello { version, agent } => {
                eprintln!("keysmith agent {agent} (protocol {version})");
            }
            ToUi::Prompt { prompt, sample, of } => match prompt {
                PromptKind::TouchKey => eprintln!("Touch your security key."),
                PromptKind::InsertKey => eprintln!("Insert your security key."),
                PromptKind::FingerprintSample => eprintln!(
                    "Place your finger on the key (sample {} of {}).",
                    sample.unwrap_or(0),
                    of.unwrap_or(0)
                ),
            },
            ToUi::NeedPin { min_len, confirm } => {
                let pin = loop {
                    let pin = Zeroizing::new(
                        rpassword::prompt_password(format!(
                            "New PIN (at least {min_len} characters, empty to cancel): "
                        ))
                        .map_err(|e| AgentError::io("reading the PIN", e))?,
                    );
                    if pin.is_empty() {
                        client.send(&FromUi::Cancel)?;
                        return Err(AgentError::Cancelled);
                    }
                    if pin.chars().count() < min_len as usize {
                        eprintln!("Too short.");
                        continue;
                    }
                    if confirm {
                        let again = Zeroizing::new(
                            rpassword::prompt_password("The same PIN again: ")
                                .map_err(|e| AgentError::io("reading the PIN", e))?,
                        );
                        if again != pin {
                            eprintln!("The two PINs differ.");
                            continue;
                        }
                    }
                    break pin;
                };
                client.send(&FromUi::Pin {
                    pin: HolderPin::new(pin),
                })?;
            }
            ToUi::NeedSignIn { url } => {
                if crate::oidc::open_system_browser(&url) {
                    eprintln!("Sign in in the browser window that opened.");
                } else {
                    eprintln!("Open this address in a browser and sign in:\n{url}");
                }
            }
            ToUi::SessionCode { code } => {
                eprintln!("Session code: {code} (the sign-in page shows the same code)");
            }
            ToUi::Done { ok, message } => {
                eprintln!("{message}");
                return Ok(if ok {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(1)
                });
            }
        }
    }
    eprintln!("keysmith-agent: the agent closed the channel");
    Ok(ExitCode::from(1))
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
    let mut i = 0;
    while i < rest.len() {
        let value = rest.get(i + 1).cloned();
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
            ("--once", _) => {
                once = true;
                i += 1;
                continue;
            }
            ("--pin-stdin", _) => {
                pin_stdin = true;
                i += 1;
                continue;
            }
            ("--no-browser", _) => {
                browser = false;
                i += 1;
                continue;
            }
            (other, _) => return usage(&format!("{cmd}: unexpected {other:?}")),
        }
        i += 2;
    }
    let Some(spec) = device else {
        return usage(&format!("{cmd}: --device SPEC is required"));
    };
    let mode = match cmd {
        "run" => Mode::Station { once, max_wait },
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
    let config = AgentConfig::load(config_path)?;
    let key = AgentKey::load(&config.key_file)?;
    let http = crate::http::client(config.server_ca_file.as_deref(), Duration::from_secs(330))?;
    let pin = config.server_key_fingerprint()?;
    let server_key = session::server_key(&http, &config.server_url, &pin)?;
    let mut opened = crate::device::open(&spec)?;
    let mut ui = TerminalUi {
        from_stdin: pin_stdin,
        cached: None,
    };
    let oidc = config.oidc.clone();
    let sign_http = crate::http::client(None, Duration::from_secs(30))?;
    let mut sign_in =
        |need: &keysmith_wire::NeedHolderAuth| -> Result<Zeroizing<String>, AgentError> {
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
            eprintln!("session code {}", need.session_code);
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
                eprintln!("sign in at: {url}");
                if browser {
                    crate::oidc::open_system_browser(url);
                }
                Ok(())
            };
            let token = crate::oidc::sign_in(&sign_http, &req, &mut open)?;
            Ok(Zeroizing::new(token.expose().to_owned()))
        };
    let out = session::run(
        &http,
        &config.server_url,
        server_key,
        &key,
        &mut opened,
        &mode,
        &mut ui,
        &mut sign_in,
    )?;
    println!("{out}");
    Ok(ExitCode::SUCCESS)
}
