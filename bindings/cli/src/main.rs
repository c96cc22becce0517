//! The keysmith command-line tool, a binding of `keysmith-facade` like the C ABI and the
//! Python module: the same configuration (JSON or TOML), device specs, error kinds (the
//! exit code is [`keysmith_facade::ErrorKind::cli_exit_code`]) and JSON result objects.
//!
//! The command line is defined in [`cli`] (clap): `keysmith --help`, `keysmith COMMAND
//! --help`, `keysmith completions SHELL`, `keysmith man`. `keysmith demo` (cargo feature
//! `demo`), `keysmith template check FILE`, `keysmith serve` (feature `serve`),
//! `keysmith agent`, and the operator commands in [`ops`] and [`jobs`].
#![forbid(unsafe_code)]

mod args;
mod cli;
mod config;
#[cfg(feature = "demo")]
mod demo;
#[cfg(feature = "demo")]
mod demo_self;
#[cfg(feature = "demo")]
mod demo_split;
mod jobs;
mod logging;
mod ops;
mod passkeys;
mod progress;
#[cfg(feature = "serve")]
mod serve;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use cli::{Cmd, TemplateCmd};
use keysmith_facade::FacadeError;

fn main() -> ExitCode {
    let raw: Vec<String> = std::env::args().skip(1).collect();
    if raw.first().map(String::as_str) == Some("agent") {
        // The device half: the same command line as the `keysmith-agent` binary, parsed
        // there (`keysmith agent help`).
        return keysmith_agent::cli::main_with(raw[1..].to_vec());
    }
    let cli = match cli::parse(&raw) {
        Ok(cli) => cli,
        Err(code) => return ExitCode::from(code),
    };
    let json = cli.json;
    match &cli.command {
        Cmd::Serve(s) => return serve(s),
        // Reached only after global options (`keysmith --json agent ...`); the agent's
        // own parser takes the rest.
        Cmd::Agent { args } => return keysmith_agent::cli::main_with(args.clone()),
        Cmd::Completions { shell } => {
            cli::completions(*shell);
            return ExitCode::SUCCESS;
        }
        Cmd::Man { dir } => {
            return match cli::man(dir.as_deref()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(json, &e),
            }
        }
        Cmd::Version => {
            println!("keysmith {}", keysmith_facade::version());
            return ExitCode::SUCCESS;
        }
        _ => {}
    }
    let config = config::resolve(cli.config.clone());
    // The config file is read here first (for its [log] section): its errors are
    // reported as every other error, a JSON object on stdout with --json.
    if let Err(e) = logging::start(
        cli.log_level.as_deref(),
        cli.log_file.as_deref(),
        config.as_deref(),
    ) {
        return fail(json, &e);
    }
    match &cli.command {
        Cmd::Demo { split: true, .. } => demo_split(),
        Cmd::Demo { db, .. } => demo(db.clone()),
        Cmd::Template(TemplateCmd::Check { file }) => template_check(file, json),
        _ => operator(&cli::operator_args(&cli, config), json),
    }
}

/// `keysmith serve ...`: the words `crate::serve` takes.
#[cfg(feature = "serve")]
fn serve(cmd: &cli::ServeCmd) -> ExitCode {
    use cli::ServeCmd;
    let path = |p: &Path| p.to_string_lossy().into_owned();
    let words: Vec<String> = match cmd {
        ServeCmd::Run { config } => vec!["run".into(), "--config".into(), path(config)],
        ServeCmd::InitKey { key } => vec!["init-key".into(), "--key".into(), path(key)],
        ServeCmd::PrintKey { key } => vec!["print-key".into(), "--key".into(), path(key)],
        ServeCmd::Other(words) => words.clone(),
    };
    serve::main(&words)
}

#[cfg(not(feature = "serve"))]
fn serve(_cmd: &cli::ServeCmd) -> ExitCode {
    eprintln!("keysmith: this build has no server; build with --features serve");
    ExitCode::from(2)
}

#[cfg(feature = "demo")]
fn demo(db: Option<PathBuf>) -> ExitCode {
    demo::demo(db)
}

#[cfg(feature = "demo")]
fn demo_split() -> ExitCode {
    demo_split::demo_split()
}

#[cfg(not(feature = "demo"))]
fn demo_split() -> ExitCode {
    demo(None)
}

#[cfg(not(feature = "demo"))]
fn demo(_db: Option<PathBuf>) -> ExitCode {
    eprintln!("keysmith: this build has no demo; build with --features demo");
    ExitCode::from(exit_code(&FacadeError::usage("")))
}

fn operator(args: &args::Args, json: bool) -> ExitCode {
    match ops::run(args) {
        Ok(out) => {
            let text = if json { out.json.to_string() } else { out.text };
            if !text.is_empty() {
                print_out(&text);
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(json, &e),
    }
}

/// Writes `text` and a newline to stdout. A reader that went away (`keysmith list | head
/// -1`) is not an error of ours: the rest is dropped quietly instead of panicking as
/// `println!` does.
fn print_out(text: &str) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    if let Err(e) = writeln!(out, "{text}").and_then(|()| out.flush()) {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("keysmith: writing the output: {e}");
        }
    }
}

/// The exit code of an error: its kind's CLI family.
pub(crate) fn exit_code(e: &FacadeError) -> u8 {
    u8::try_from(e.kind.cli_exit_code()).unwrap_or(5)
}

/// Reports `e` (stderr, or a JSON object on stdout with `--json`) and exits with its
/// code; a usage error also points at `--help`.
fn fail(json: bool, e: &FacadeError) -> ExitCode {
    let code = exit_code(e);
    if json {
        print_out(&error_json(e).to_string());
    } else {
        eprintln!("keysmith: {}", e.message);
    }
    if e.kind == keysmith_facade::ErrorKind::Usage {
        eprintln!("For more information, try '--help'.");
    }
    ExitCode::from(code)
}

/// `{"error": {kind, reason, message, ctap_status?, retries_left?, exit_code}}`.
pub(crate) fn error_json(e: &FacadeError) -> serde_json::Value {
    let mut v = serde_json::to_value(e).unwrap_or_default();
    if let serde_json::Value::Object(m) = &mut v {
        m.insert("exit_code".into(), exit_code(e).into());
    }
    serde_json::json!({ "error": v })
}

fn template_check(path: &Path, json: bool) -> ExitCode {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            return fail(
                json,
                &FacadeError::usage(format!("reading {}: {e}", path.display())),
            )
        }
    };
    match keysmith_facade::template_check(&text) {
        Ok(t) => {
            if json {
                println!("{}", serde_json::to_value(&t).unwrap_or_default());
            } else {
                println!(
                    "{}: valid (credential template {:?}, passkey templates: {})",
                    path.display(),
                    t.name,
                    t.passkey_templates.join(", ")
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            if json {
                println!("{}", error_json(&e));
            }
            match e.message.strip_prefix("template invalid: ") {
                Some(list) => {
                    let problems: Vec<&str> = list.split("; ").collect();
                    eprintln!("{}: {} problem(s):", path.display(), problems.len());
                    for p in problems {
                        eprintln!("  {p}");
                    }
                }
                None => eprintln!("{}: {}", path.display(), e.message),
            }
            ExitCode::FAILURE
        }
    }
}
