//! The holder's side as a service: `keysmith-agent holder` waits on the local UI channel;
//! the holder's UI process (`keysmith-agent ui activate|self-issue|verify`) connects and
//! asks for an operation; the agent runs it against the server with the holder's PIN,
//! prompts, the sign-in address and the session code all going through the channel
//! ([`crate::ui::ChannelUi`]). The UI runs unprivileged in the holder's session; the agent
//! (root, or LocalSystem on Windows) is the process that may talk raw CTAP.
//!
//! And the other end: the terminal UI ([`terminal_ui`]), which answers the agent's
//! requests from the holder's terminal (or, for automation, from stdin).

use std::io::{BufRead, Read, Write};
use std::process::ExitCode;

use zeroize::Zeroizing;

use crate::session::Mode;
use crate::ui::{
    ChannelUi, FromUi, HolderOperation, HolderPin, PromptKind, ToUi, UiClient, UiSession,
};
use crate::AgentError;

/// The session [`Mode`] for a holder's request, or why it is refused.
pub fn mode_for(
    operation: HolderOperation,
    key_id: Option<String>,
    template: Option<String>,
) -> Result<Mode, AgentError> {
    let refuse = |what: &str| AgentError::UiProtocol(format!("the request lacks {what}"));
    Ok(match operation {
        HolderOperation::Activate => Mode::Activate { key_id },
        HolderOperation::SelfIssue => Mode::SelfIssue {
            template: template.ok_or_else(|| refuse("a template"))?,
        },
        HolderOperation::Verify => Mode::Verify {
            key_id: key_id.ok_or_else(|| refuse("a key id"))?,
        },
    })
}

/// Serves holders: for each UI connection `accept` gives, reads the holder's request and
/// calls `run_one` with the mode and the channel (which it uses as the holder's UI and
/// for the sign-in notices); tells the UI how it ended. With `once`, returns after the
/// first request.
pub fn serve<S: Read + Write>(
    mut accept: impl FnMut() -> Result<UiSession<S>, AgentError>,
    once: bool,
    mut run_one: impl FnMut(&Mode, &ChannelUi<S>) -> Result<serde_json::Value, AgentError>,
) -> Result<(), AgentError> {
    loop {
        let mut session = accept()?;
        let request = session.recv();
        let mode = match request {
            Ok(FromUi::Request {
                operation,
                key_id,
                template,
            }) => mode_for(operation, key_id, template),
            Ok(_) => Err(AgentError::UiProtocol(
                "the first message must be a request".into(),
            )),
            Err(e) => Err(e),
        };
        let ui = ChannelUi::connected(session);
        match mode.and_then(|mode| run_one(&mode, &ui)) {
            Ok(out) => {
                tracing::info!(%out, "holder operation finished");
                ui.done(true, &out.to_string());
            }
            Err(e) => {
                tracing::warn!(error = %e, "holder operation failed");
                ui.done(false, &e.to_string());
            }
        }
        if once {
            return Ok(());
        }
    }
}

/// How the terminal UI answers PIN requests.
#[derive(Debug, Default)]
pub struct TerminalOptions {
    /// Read the PIN as one line of stdin (automation, tests) instead of from the terminal
    /// without echo.
    pub pin_stdin: bool,
    /// Do not open the system browser; only print the address.
    pub no_browser: bool,
}

fn read_pin(opts: &TerminalOptions, prompt: &str) -> Result<Zeroizing<String>, AgentError> {
    if opts.pin_stdin {
        let mut line = Zeroizing::new(String::new());
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| AgentError::io("reading the PIN", e))?;
        return Ok(Zeroizing::new(
            line.trim_end_matches(['\r', '\n']).to_owned(),
        ));
    }
    Ok(Zeroizing::new(
        rpassword::prompt_password(prompt).map_err(|e| AgentError::io("reading the PIN", e))?,
    ))
}

fn ask_pin(
    opts: &TerminalOptions,
    min_len: u32,
    confirm: bool,
    current: bool,
) -> Result<Option<Zeroizing<String>>, AgentError> {
    loop {
        let pin = if current {
            read_pin(opts, "PIN (empty to cancel): ")?
        } else {
            read_pin(
                opts,
                &format!("New PIN (at least {min_len} characters, empty to cancel): "),
            )?
        };
        if pin.is_empty() {
            return Ok(None);
        }
        if pin.chars().count() < min_len as usize {
            if opts.pin_stdin {
                return Err(AgentError::UiProtocol(
                    "the PIN on stdin is too short".into(),
                ));
            }
            eprintln!("Too short.");
            continue;
        }
        if confirm && !opts.pin_stdin {
            let again = read_pin(opts, "The same PIN again: ")?;
            if again != pin {
                eprintln!("The two PINs differ.");
                continue;
            }
        }
        return Ok(Some(pin));
    }
}

/// The holder's terminal UI on `client`: sends `request` first (to a holder service),
/// then answers the agent until it says `done`.
pub fn terminal_ui<S: Read + Write>(
    mut client: UiClient<S>,
    request: Option<FromUi>,
    opts: &TerminalOptions,
) -> Result<ExitCode, AgentError> {
    if let Some(r) = &request {
        client.send(r)?;
    }
    while let Some(msg) = client.recv()? {
        match msg {
            ToUi::Hello { version, agent } => {
                eprintln!("keysmith agent {agent} (protocol {version})");
            }
            ToUi::Prompt {
                prompt,
                sample,
                of,
                message,
            } => match (prompt, message) {
                (PromptKind::TouchKey, None) => eprintln!("Touch your security key."),
                (PromptKind::HoldKey, None) => {
                    eprintln!("Press and hold your security key until it stops blinking.")
                }
                (PromptKind::InsertKey, None) => eprintln!("Insert your security key."),
                (PromptKind::FingerprintSample, None) => eprintln!(
                    "Place your finger on the key (sample {} of {}).",
                    sample.unwrap_or(0),
                    of.unwrap_or(0)
                ),
                (_, Some(m)) => eprintln!("{m}"),
                (PromptKind::Replug, None) => eprintln!("Remove the key and insert it again."),
            },
            ToUi::NeedPin {
                min_len,
                confirm,
                current,
            } => match ask_pin(opts, min_len, confirm, current)? {
                Some(pin) => client.send(&FromUi::Pin {
                    pin: HolderPin::new(pin),
                })?,
                None => {
                    client.send(&FromUi::Cancel)?;
                    return Err(AgentError::Cancelled);
                }
            },
            ToUi::NeedSignIn { url } => {
                // One line, so scripts (and tests) can take the address.
                eprintln!("sign in at: {url}");
                if !opts.no_browser && crate::oidc::open_system_browser(&url) {
                    eprintln!("Sign in in the browser window that opened.");
                }
            }
            ToUi::SessionCode { code } => {
                eprintln!("Session code: {code} (the sign-in page shows the same code)");
            }
            ToUi::Done { ok, message } => {
                if ok {
                    println!("{message}");
                    return Ok(ExitCode::SUCCESS);
                }
                eprintln!("keysmith-agent: {message}");
                return Ok(ExitCode::from(1));
            }
        }
    }
    eprintln!("keysmith-agent: the agent closed the channel");
    Ok(ExitCode::from(1))
}
