//! The keysmith command-line tool, a binding of `keysmith-facade` like the C ABI and the
//! Python module: the same configuration (JSON or TOML), device specs, error kinds (the
//! exit code is [`ErrorKind::cli_exit_code`]) and JSON result objects.
//!
//! `keysmith demo` (cargo feature `demo`), `keysmith template check FILE`, and the
//! operator commands in [`ops`] and [`jobs`].
#![forbid(unsafe_code)]

mod args;
#[cfg(feature = "demo")]
mod demo;
#[cfg(feature = "demo")]
mod demo_self;
#[cfg(feature = "demo")]
mod demo_split;
mod jobs;
mod logging;
mod ops;
#[cfg(feature = "serve")]
mod serve;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use keysmith_facade::{ErrorKind, FacadeError};

const USAGE: &str = "usage:
  keysmith demo [--db FILE]        run the whole lifecycle against the built-in Entra emulator
                                   (builds with --features demo only)
  keysmith demo --split            the same flows through `keysmith serve` and two
                                   `keysmith agent` processes (the split deployment)
  keysmith template check FILE     validate a template (.toml or .json); exit 1 if invalid
  keysmith version                 the keysmith version
  keysmith serve run|init-key|print-key ...
                                   the HTTPS server of a split deployment (docs/server.md)
  keysmith agent run|activate|self-issue|verify|enroll|ui ...
                                   the device half, as the keysmith-agent binary (docs/agent.md)

  keysmith [--config FILE] [--device SPEC] [--json] COMMAND
    device list                    USB HID keys and PC/SC readers
    device info                    the selected key's getInfo
    device reset                   reset the selected key (touch it; replug if asked)
    device set-pin [--pin-stdin]   set (or change) the key's PIN (prompted with echo off)
    show KEY                       a key, its passkeys, pending registrations, audit log
    audit KEY                      the key's audit log
    audit verify                   check the whole audit log's hash chain and MACs;
                                   exit 5 naming the first record that fails
    store adopt-unauthenticated-rows
                                   once, right after upgrading to schema 6: authenticate
                                   the older rows as they are (audited; see
                                   docs/database-trust.md)
    list                           every key, read page by page (--json: one object per line)
    list [--user U] [--state S] [--serial S] [--expiring-before T]
                                   T: unix seconds, +<N>h or +<N>d (pending challenge expiry)
    list --expiring DURATION       pending registrations expiring within DURATION (90m, 2h, 7d)
    templates                      the credential templates the config loads
    issue --template T --user U [--serial S] [--activate [--pin-stdin]]
                                   T: a loaded template's name or a template file;
                                   --activate: the holder's PIN is set at once
    activate KEY [--pin-stdin]     holder PIN prompted with echo off (or the first stdin line)
    sign-in KEY [--pin-stdin]      sign in with each passkey of the key and verify it
    inactivate KEY | retire KEY | unregister KEY
    revoke KEY [--force|--no-force]
    reissue KEY --user U [--serial S]
                                   revoke -> retire -> unregister -> issue, as planned
    self begin                     start a holder's sign-in: prints the nonce for the
                                   OIDC authorization request (good once)
    self set-pin KEY --nonce N --id-token-file F [--pin-stdin]
                                   the holder (OIDC ID token in F) sets their PIN
    self issue --template NAME --nonce N --id-token-file F [--serial S] [--pin-stdin]
                                   the holder issues the key to themself
    journal replay                 finish IdP side effects left by failed or crashed flows
    repository check               the repository's integrity (SQLite: PRAGMA integrity_check);
                                   a damaged or vanished database exits 5
    idp check                      token + one cheap read for every configured IdP connection
    users search PREFIX            directory users whose name or UPN starts with PREFIX
    reconcile [--user U ...] [--all] [--fix] [--delete-unknown]
                                   repository vs IdP drift, one finding per line
    bulk issue|revoke|reconcile FILE.csv [--resume JOB] [--workers N] [--rate PER_SEC]
                                   issue: columns user,serial[,template] (--template T);
                                   revoke: key_id or user[,force]; reconcile: user (--fix).
                                   The same file again resumes its job while it is unfinished
                                   (done rows skipped); once every row has run, the same file
                                   makes a new job. --resume JOB runs a recorded job by id.
                                   Two runners of one job share its rows (each row claimed).

  --device usb:PATH | nfc:READER | softkey:STATEFILE
      default: the first USB HID key, else the first NFC reader with a FIDO applet
  --config FILE: the session configuration the C ABI and Python take, as TOML (.toml) or
      JSON (.json): repository = { sqlite = PATH } or { postgres = URL, schema = S,
      sslrootcert = CA.pem } (TLS verify-full to any non-loopback host; URL sslmode=...),
      pin_key (64 hex digits) or pin_key_file (32 raw bytes or 64 hex digits; mode 0600
      or 0400: a file group or others may read is refused, as a client_secret_file), station,
      actor, templates (TOML/JSON text) and template_files (paths),
      [[idp]] name, tenant, client_id, client_secret | client_secret_env |
      client_secret_file | certificate_pem + private_key_pem, graph_api_version (\"v1.0\"
      or \"beta\"), login_base, graph_base; [log]; mds_blob + mds_root (the FIDO MDS3
      BLOB and its root: attestation checked at issuance), attestation_roots (PEM files);
      allow_software_keys (softkey: devices, tests and demos only; default false).
      Relative paths are relative to FILE.
  --log-level off|error|warn|info|debug|trace, --log-file FILE: diagnostics (also the
      config's [log] section: level, directives, format, destination); default: none.
  --json: the facade's JSON result object on stdout (errors: {\"error\":{\"kind\",
      \"reason\",\"message\",\"exit_code\",...}}); list, bulk print one object per key / row,
      then a summary.
  --id-token-file F: the holder's OIDC ID token (F = - reads the first stdin line); it
      must carry the --nonce of its sign-in (`self begin`), be recent (max_age), show MFA
      and is good once.
  bulk: a progress bar on stderr when it is a terminal; with --device softkey:BASE each
      issue row gets a fresh software key (state file BASE.line<N>).
  \"touch your key\" prompts and PIN prompts go to stderr.

exit codes:
  0  success
  1  template check: the template is invalid
  2  usage, template or transition error: bad flag/operand, bad config, unknown key
     (KEY not in the repository), illegal transition, invalid template
  3  device error (security key or its transport)
  4  IdP error (Entra refused or failed, incl. a cancelled forced deletion)
  5  repository or internal error
  reconcile exits 4 when a check or a fix failed at the IdP, bulk exits 5 when rows
  failed; both after printing every line and the summary.
";

fn main() -> ExitCode {
    let raw: Vec<String> = std::env::args().skip(1).collect();
    if raw.first().map(String::as_str) == Some("serve") {
        #[cfg(feature = "serve")]
        return serve::main(&raw[1..]);
        #[cfg(not(feature = "serve"))]
        {
            eprintln!("keysmith: this build has no server; build with --features serve");
            return ExitCode::from(2);
        }
    }
    if raw.first().map(String::as_str) == Some("agent") {
        // The device half: the same command line as the `keysmith-agent` binary.
        return keysmith_agent::cli::main_with(raw[1..].to_vec());
    }
    let json = raw.iter().any(|a| a == "--json");
    let rest = match logging::start(raw) {
        Ok(rest) => rest,
        // The config file is read here first (for its [log] section): its errors are
        // reported as every other error, a JSON object on stdout with --json.
        Err(e) => return fail(json, &e),
    };
    let words: Vec<&str> = rest
        .iter()
        .map(String::as_str)
        .filter(|w| *w != "--json")
        .collect();
    match words.as_slice() {
        ["demo"] => demo(None),
        ["demo", "--split"] => demo_split(),
        ["demo", "--db", file] => demo(Some(PathBuf::from(file))),
        ["template", "check", file] => template_check(Path::new(file), json),
        ["help"] | ["--help"] | ["-h"] => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        ["version"] | ["--version"] => {
            println!("keysmith {}", keysmith_facade::version());
            ExitCode::SUCCESS
        }
        _ => operator(&rest, json),
    }
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

fn operator(raw: &[String], json: bool) -> ExitCode {
    match args::parse_args(raw).and_then(|a| ops::run(&a)) {
        Ok(out) => {
            if json {
                println!("{}", out.json);
            } else if !out.text.is_empty() {
                println!("{}", out.text);
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(json, &e),
    }
}

/// The exit code of an error: its kind's CLI family.
pub(crate) fn exit_code(e: &FacadeError) -> u8 {
    u8::try_from(e.kind.cli_exit_code()).unwrap_or(5)
}

/// Reports `e` (stderr, or a JSON object on stdout with `--json`) and exits with its
/// code; a usage error also prints the usage.
fn fail(json: bool, e: &FacadeError) -> ExitCode {
    let code = exit_code(e);
    if json {
        println!("{}", error_json(e));
    } else {
        eprintln!("keysmith: {}", e.message);
    }
    if e.kind == ErrorKind::Usage {
        eprintln!("{USAGE}");
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
