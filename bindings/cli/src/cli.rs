//! The command line's definition (clap derive): every command, subcommand and option,
//! their help, and from the same definition the shell completions and the man page.
//! Parse errors are short (the message, clap's hint, the command's usage line) and exit
//! 2; with `--json` they are also the JSON error object on stdout, as every other error.

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;

use clap::{Args as ClapArgs, CommandFactory, Parser, Subcommand};
use keysmith_facade::FacadeError;

use crate::args::Args;

/// Printed after `keysmith --help`: devices, configuration, output, exit codes.
const AFTER_HELP: &str = "\
Devices (--device SPEC):
  usb:PATH | nfc:READER | softkey:STATEFILE; default: the first USB HID key, else the first
  NFC reader with a FIDO applet.

Configuration (--config FILE): the session configuration the C ABI and Python take, as
  TOML (.toml) or JSON (.json): repository = { sqlite = PATH } or { postgres = URL,
  schema = S, sslrootcert = CA.pem }, pin_key or pin_key_file (mode 0600 or 0400),
  station, actor, templates and template_files, [[idp]] connections, [log], mds_blob +
  mds_root, attestation_roots, allow_software_keys. Relative paths are relative to FILE.
  Which file: --config FILE, else $KEYSMITH_CONFIG, else
  $XDG_CONFIG_HOME/keysmith/config.toml (~/.config/keysmith/config.toml) if it exists.

Times (--expiring-before T): RFC 3339 (2026-12-07T09:30:00Z, 2026-12-07T10:30:00+01:00),
  unix seconds, or +<N>h / +<N>d from now. Durations (--expiring D): 90m, 2h, 7d.

Output: --json prints the facade's JSON result object on stdout (errors: {\"error\":
  {\"kind\",\"reason\",\"message\",\"exit_code\",...}}); list and bulk print one object per key
  or row, then a summary. \"Touch your key\" and PIN prompts go to stderr. bulk draws a
  progress bar (rows, rate, ETA) on stderr when it is a terminal.

Exit codes:
  0  success
  1  template check: the template is invalid
  2  usage, template or transition error: bad flag/operand, bad config, unknown key,
     illegal transition, invalid template
  3  device error (security key or its transport)
  4  IdP error (Entra refused or failed, incl. a cancelled forced deletion)
  5  repository or internal error
  reconcile exits 4 when a check or a fix failed at the IdP, bulk exits 5 when rows
  failed; both after printing every line and the summary.

See docs/cli.md, docs/server.md and docs/agent.md.";

/// The help heading of the options every command takes.
const GLOBAL: &str = "Global options";

/// Manage FIDO2 security keys and their passkeys: issue, activate, revoke and reconcile
/// them with the identity provider.
#[derive(Debug, Parser)]
#[command(
    name = "keysmith",
    version,
    propagate_version = true,
    args_override_self = true,
    subcommand_required = true,
    arg_required_else_help = true,
    after_long_help = AFTER_HELP
)]
pub struct Cli {
    /// The session configuration, TOML or JSON (else $KEYSMITH_CONFIG, else
    /// ~/.config/keysmith/config.toml)
    #[arg(long, global = true, value_name = "FILE", help_heading = GLOBAL)]
    pub config: Option<PathBuf>,
    /// The security key: usb:PATH, nfc:READER or softkey:STATEFILE
    #[arg(long, global = true, value_name = "SPEC", help_heading = GLOBAL)]
    pub device: Option<String>,
    /// JSON on stdout: the result object, or one object per line then a summary
    #[arg(long, global = true, help_heading = GLOBAL)]
    pub json: bool,
    /// Diagnostics level: off, error, warn, info, debug or trace
    #[arg(long, global = true, value_name = "LEVEL", help_heading = GLOBAL)]
    pub log_level: Option<String>,
    /// Write diagnostics to FILE
    #[arg(long, global = true, value_name = "FILE", help_heading = GLOBAL)]
    pub log_file: Option<PathBuf>,
    /// The command.
    #[command(subcommand)]
    pub command: Cmd,
}

/// `--pin-stdin`.
#[derive(Debug, Clone, Copy, ClapArgs)]
pub struct PinArg {
    /// Read the PIN from the first line of standard input (else prompted with echo off)
    #[arg(long)]
    pub pin_stdin: bool,
}

/// A key id operand.
#[derive(Debug, Clone, ClapArgs)]
pub struct KeyArg {
    /// The key id (as `list` prints it)
    pub key: String,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Run the whole lifecycle against the built-in Entra emulator (--features demo)
    Demo {
        /// The SQLite repository file (default: a temporary one)
        #[arg(long, value_name = "FILE")]
        db: Option<PathBuf>,
        /// The same flows through `keysmith serve` and two `keysmith agent` processes
        /// (the split deployment)
        #[arg(long, conflicts_with = "db")]
        split: bool,
    },
    /// Credential templates
    #[command(subcommand)]
    Template(TemplateCmd),
    /// Print the keysmith version
    Version,
    /// Print a shell completion script (bash, zsh, fish, powershell, elvish)
    Completions {
        /// The shell
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), or write one page per command into DIR
    Man {
        /// Write keysmith.1 and keysmith-COMMAND.1 pages into DIR
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// The HTTPS server of a split deployment (docs/server.md)
    #[command(subcommand)]
    Serve(ServeCmd),
    /// The device half, as the keysmith-agent binary (`keysmith agent help`)
    #[command(disable_help_flag = true)]
    Agent {
        /// The keysmith-agent command line
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Security keys: list, info, reset, set-pin
    #[command(subcommand)]
    Device(DeviceCmd),
    /// A key, its passkeys, pending registrations and audit log
    Show(KeyArg),
    /// The key's audit log, or `audit verify`: the whole log's chain and MACs
    ///
    /// `audit KEY` prints the key's audit records; `audit verify` checks the whole audit
    /// log's hash chain and MACs and exits 5 naming the first record that fails.
    Audit {
        /// The key id, or `verify`
        #[arg(value_name = "KEY|verify")]
        key: String,
    },
    /// Repository maintenance
    #[command(subcommand)]
    Store(StoreCmd),
    /// Keys (all, or those a filter selects), or pending registrations expiring soon
    List(ListArgs),
    /// The credential templates the config loads
    Templates,
    /// Issue a key: reset it, create its passkeys and register them at the IdP
    Issue(IssueArgs),
    /// Activate an issued key: set the holder's PIN
    Activate {
        #[command(flatten)]
        key: KeyArg,
        #[command(flatten)]
        pin: PinArg,
    },
    /// Sign in with each passkey of the key and verify it
    SignIn {
        #[command(flatten)]
        key: KeyArg,
        #[command(flatten)]
        pin: PinArg,
    },
    /// Inactivate a key (its passkeys stay registered)
    Inactivate(KeyArg),
    /// Retire a revoked key
    Retire(KeyArg),
    /// Unregister a retired key's passkeys at the IdP
    Unregister(KeyArg),
    /// Revoke a key and delete its passkeys at the IdP
    Revoke {
        #[command(flatten)]
        key: KeyArg,
        /// Force the IdP deletion (override the template)
        #[arg(long, overrides_with = "no_force")]
        force: bool,
        /// Do not force the IdP deletion (override the template)
        #[arg(long, overrides_with = "force")]
        no_force: bool,
    },
    /// Revoke -> retire -> unregister -> issue, as planned
    Reissue {
        #[command(flatten)]
        key: KeyArg,
        /// The user to issue the new key to
        #[arg(long, value_name = "U", required = true)]
        user: String,
        /// The new key's serial
        #[arg(long, value_name = "S")]
        serial: Option<String>,
    },
    /// Holder self-service (OIDC sign-in)
    #[command(name = "self", subcommand)]
    SelfService(SelfCmd),
    /// The IdP journal
    #[command(subcommand)]
    Journal(JournalCmd),
    /// The repository
    #[command(subcommand)]
    Repository(RepositoryCmd),
    /// IdP connections
    #[command(subcommand)]
    Idp(IdpCmd),
    /// Directory users
    #[command(subcommand)]
    Users(UsersCmd),
    /// One directory user: every passkey they hold
    #[command(subcommand)]
    User(UserCmd),
    /// Repository vs IdP drift, one finding per line
    Reconcile(ReconcileArgs),
    /// Run a CSV file of rows as a resumable job
    Bulk(BulkArgs),
}

/// `keysmith template ...`.
#[derive(Debug, Subcommand)]
pub enum TemplateCmd {
    /// Validate a template (.toml or .json); exit 1 if invalid
    Check {
        /// The template file
        file: PathBuf,
    },
}

/// `keysmith serve ...` (run by `crate::serve`).
#[derive(Debug, Subcommand)]
pub enum ServeCmd {
    /// Serve the operator API, agent enrolment and agent sessions
    Run {
        /// The server configuration (docs/server.md)
        #[arg(long, value_name = "SERVER.toml", required = true)]
        config: PathBuf,
    },
    /// Create the server signing key (P-256, PKCS#8 PEM, mode 0600; refused if FILE exists)
    InitKey {
        /// The key file
        #[arg(long, value_name = "FILE", required = true)]
        key: PathBuf,
    },
    /// Print the public key and the SHA-256 fingerprint agents pin
    PrintKey {
        /// The key file
        #[arg(long, value_name = "FILE", required = true)]
        key: PathBuf,
    },
    /// Any other serve command, passed on as it is
    #[command(external_subcommand)]
    // Read by `keysmith serve` only in a build with the server (feature `serve`).
    #[cfg_attr(not(feature = "serve"), allow(dead_code))]
    Other(Vec<String>),
}

/// `keysmith device ...`.
#[derive(Debug, Subcommand)]
pub enum DeviceCmd {
    /// USB HID keys and PC/SC readers
    List,
    /// The selected key's getInfo
    Info,
    /// Reset the selected key (touch it; replug if asked)
    Reset,
    /// Set (or change) the key's PIN (prompted with echo off)
    SetPin(PinArg),
}

/// `keysmith store ...`.
#[derive(Debug, Subcommand)]
pub enum StoreCmd {
    /// Once, right after upgrading to schema 6: authenticate the older rows as they are
    /// (audited; see docs/database-trust.md)
    AdoptUnauthenticatedRows,
}

/// `keysmith list` options.
#[derive(Debug, ClapArgs)]
pub struct ListArgs {
    /// Only this user's keys
    #[arg(long, value_name = "U")]
    pub user: Option<String>,
    /// Only keys in this state
    #[arg(long, value_name = "S")]
    pub state: Option<String>,
    /// Only the key with this serial
    #[arg(long, value_name = "S")]
    pub serial: Option<String>,
    /// Only keys with a pending challenge expiring before T (RFC 3339, unix seconds,
    /// +Nh or +Nd from now)
    #[arg(long, value_name = "T")]
    pub expiring_before: Option<String>,
    /// Pending registrations expiring within DURATION (90m, 2h, 7d)
    #[arg(long, value_name = "DURATION")]
    pub expiring: Option<String>,
    /// Only keys marked as needing reissue, with why (e.g. user_renamed)
    #[arg(long, conflicts_with_all = ["user", "state", "serial", "expiring_before", "expiring"])]
    pub needs_reissue: bool,
    /// Only active keys not used for DAYS days (last use as reconcile last read it)
    #[arg(long, value_name = "DAYS", conflicts_with_all = ["user", "state", "serial", "expiring_before", "expiring"])]
    pub stale: Option<String>,
}

/// `keysmith issue` options.
#[derive(Debug, ClapArgs)]
pub struct IssueArgs {
    /// A loaded template's name or a template file
    #[arg(long, value_name = "T", required = true)]
    pub template: String,
    /// The user to issue the key to
    #[arg(long, value_name = "U", required = true)]
    pub user: String,
    /// The key's serial
    #[arg(long, value_name = "S")]
    pub serial: Option<String>,
    /// Set the holder's PIN at once (the holder is present)
    #[arg(long)]
    pub activate: bool,
    #[command(flatten)]
    pub pin: PinArg,
}

/// `keysmith self ...`.
#[derive(Debug, Subcommand)]
pub enum SelfCmd {
    /// Start a holder's sign-in: prints the nonce for the OIDC authorization request
    /// (good once)
    Begin,
    /// The holder (OIDC ID token in F) sets their PIN
    SetPin {
        #[command(flatten)]
        key: KeyArg,
        #[command(flatten)]
        holder: HolderArgs,
    },
    /// The holder issues the key to themself
    Issue {
        /// A loaded template's name or a template file
        #[arg(long, value_name = "NAME", required = true)]
        template: String,
        /// The key's serial
        #[arg(long, value_name = "S")]
        serial: Option<String>,
        #[command(flatten)]
        holder: HolderArgs,
    },
}

/// The holder's sign-in: `--nonce`, `--id-token-file`, `--pin-stdin`.
#[derive(Debug, ClapArgs)]
pub struct HolderArgs {
    /// The nonce of the holder's sign-in (printed by `self begin`)
    #[arg(long, value_name = "N")]
    pub nonce: Option<String>,
    /// The holder's OIDC ID token (`-`: the first line of standard input)
    #[arg(long, value_name = "F")]
    pub id_token_file: Option<PathBuf>,
    #[command(flatten)]
    pub pin: PinArg,
}

/// `keysmith journal ...`.
#[derive(Debug, Subcommand)]
pub enum JournalCmd {
    /// Finish IdP side effects left by failed or crashed flows
    Replay,
}

/// `keysmith repository ...`.
#[derive(Debug, Subcommand)]
pub enum RepositoryCmd {
    /// The repository's integrity (SQLite: PRAGMA integrity_check); damage exits 5
    Check,
}

/// `keysmith idp ...`.
#[derive(Debug, Subcommand)]
pub enum IdpCmd {
    /// Token + one cheap read for every configured IdP connection
    Check,
}

/// `keysmith users ...`.
#[derive(Debug, Subcommand)]
pub enum UsersCmd {
    /// Directory users whose name or UPN starts with PREFIX
    Search {
        /// The prefix
        prefix: String,
    },
    /// SMS/voice retirement readiness: users with no phishing-resistant method
    Readiness {
        /// Only the members of this group (object id; nested groups followed); default:
        /// the whole directory
        #[arg(long, value_name = "G")]
        group: Option<String>,
        /// Write the users who are not ready as bulk issue CSV (user,serial,...; fill in
        /// the serials)
        #[arg(long, value_name = "FILE")]
        csv: Option<PathBuf>,
    },
}

/// `keysmith user ...`.
#[derive(Debug, Subcommand)]
pub enum UserCmd {
    /// Every passkey the user holds (security keys, Authenticator, Windows Hello, synced),
    /// beside the keys keysmith issued them
    Passkeys {
        /// The user (object id or UPN)
        user: String,
    },
}

/// `--fix` and `--delete-unknown`.
#[derive(Debug, Clone, Copy, ClapArgs)]
pub struct FixArgs {
    /// Fix the drift found
    #[arg(long)]
    pub fix: bool,
    /// With --fix: delete IdP passkeys the repository does not know
    #[arg(long)]
    pub delete_unknown: bool,
}

/// `keysmith reconcile` options.
#[derive(Debug, ClapArgs)]
pub struct ReconcileArgs {
    /// A user to check (repeatable)
    #[arg(long, value_name = "U", action = clap::ArgAction::Append)]
    pub user: Vec<String>,
    /// Every user holding a key
    #[arg(long)]
    pub all: bool,
    #[command(flatten)]
    pub fix: FixArgs,
}

/// `keysmith bulk` operands and options.
#[derive(Debug, ClapArgs)]
#[command(after_help = "\
issue: columns user,serial[,template] (--template T); revoke: key_id or user[,force];
reconcile: user (--fix). The same file again resumes its job while it is unfinished (done
rows skipped); once every row has run, the same file makes a new job. --resume JOB runs a
recorded job by id. Two runners of one job share its rows (each row claimed). With
--device softkey:BASE each issue row gets a fresh software key (state file BASE.line<N>).")]
pub struct BulkArgs {
    /// What each row does
    #[arg(value_name = "KIND", value_parser = ["issue", "revoke", "reconcile"])]
    pub kind: String,
    /// The CSV file
    #[arg(value_name = "FILE.csv")]
    pub file: Option<String>,
    /// Run the recorded job JOB (by id) again
    #[arg(long, value_name = "JOB")]
    pub resume: Option<String>,
    /// Rows run at once (1 to 32)
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub workers: Option<String>,
    /// IdP calls per second at most
    #[arg(long, value_name = "PER_SEC", allow_hyphen_values = true)]
    pub rate: Option<String>,
    /// issue: the template of rows without a template column
    #[arg(long, value_name = "T")]
    pub template: Option<String>,
    #[command(flatten)]
    pub fix: FixArgs,
}

/// The command line as the operator commands take it ([`Args`]: the command words and
/// every option).
pub fn operator_args(cli: &Cli, config: Option<PathBuf>) -> Args {
    let mut a = Args {
        config,
        device: cli.device.clone(),
        json: cli.json,
        ..Args::default()
    };
    let w = |words: &[&str]| words.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let key_words = |verb: &str, k: &KeyArg| vec![verb.to_owned(), k.key.clone()];
    a.words = match &cli.command {
        Cmd::Device(d) => match d {
            DeviceCmd::List => w(&["device", "list"]),
            DeviceCmd::Info => w(&["device", "info"]),
            DeviceCmd::Reset => w(&["device", "reset"]),
            DeviceCmd::SetPin(p) => {
                a.pin_stdin = p.pin_stdin;
                w(&["device", "set-pin"])
            }
        },
        Cmd::Show(k) => key_words("show", k),
        Cmd::Audit { key } => w(&["audit", key]),
        Cmd::Store(StoreCmd::AdoptUnauthenticatedRows) => {
            w(&["store", "adopt-unauthenticated-rows"])
        }
        Cmd::List(l) => {
            a.user = l.user.clone();
            a.state = l.state.clone();
            a.serial = l.serial.clone();
            a.expiring_before = l.expiring_before.clone();
            a.expiring = l.expiring.clone();
            a.needs_reissue = l.needs_reissue;
            a.stale = l.stale.clone();
            w(&["list"])
        }
        Cmd::Templates => w(&["templates"]),
        Cmd::Issue(i) => {
            a.template = Some(i.template.clone());
            a.user = Some(i.user.clone());
            a.serial = i.serial.clone();
            a.activate = i.activate;
            a.pin_stdin = i.pin.pin_stdin;
            w(&["issue"])
        }
        Cmd::Activate { key, pin } => {
            a.pin_stdin = pin.pin_stdin;
            key_words("activate", key)
        }
        Cmd::SignIn { key, pin } => {
            a.pin_stdin = pin.pin_stdin;
            key_words("sign-in", key)
        }
        Cmd::Inactivate(k) => key_words("inactivate", k),
        Cmd::Retire(k) => key_words("retire", k),
        Cmd::Unregister(k) => key_words("unregister", k),
        Cmd::Revoke {
            key,
            force,
            no_force,
        } => {
            a.force = match (force, no_force) {
                (true, _) => Some(true),
                (_, true) => Some(false),
                _ => None,
            };
            key_words("revoke", key)
        }
        Cmd::Reissue { key, user, serial } => {
            a.user = Some(user.clone());
            a.serial = serial.clone();
            key_words("reissue", key)
        }
        Cmd::SelfService(s) => match s {
            SelfCmd::Begin => w(&["self", "begin"]),
            SelfCmd::SetPin { key, holder } => {
                holder_args(&mut a, holder);
                w(&["self", "set-pin", &key.key])
            }
            SelfCmd::Issue {
                template,
                serial,
                holder,
            } => {
                holder_args(&mut a, holder);
                a.template = Some(template.clone());
                a.serial = serial.clone();
                w(&["self", "issue"])
            }
        },
        Cmd::Journal(JournalCmd::Replay) => w(&["journal", "replay"]),
        Cmd::Repository(RepositoryCmd::Check) => w(&["repository", "check"]),
        Cmd::Idp(IdpCmd::Check) => w(&["idp", "check"]),
        Cmd::Users(UsersCmd::Search { prefix }) => w(&["users", "search", prefix]),
        Cmd::Users(UsersCmd::Readiness { group, csv }) => {
            a.group = group.clone();
            a.csv = csv.clone();
            w(&["users", "readiness"])
        }
        Cmd::User(UserCmd::Passkeys { user }) => w(&["user", "passkeys", user]),
        Cmd::Reconcile(r) => {
            a.users = r.user.clone();
            a.user = r.user.last().cloned();
            a.all = r.all;
            a.fix = r.fix.fix;
            a.delete_unknown = r.fix.delete_unknown;
            w(&["reconcile"])
        }
        Cmd::Bulk(b) => {
            a.resume = b.resume.clone();
            a.workers = b.workers.clone();
            a.rate = b.rate.clone();
            a.template = b.template.clone();
            a.fix = b.fix.fix;
            a.delete_unknown = b.fix.delete_unknown;
            let mut words = w(&["bulk", &b.kind]);
            words.extend(b.file.clone());
            words
        }
        // Run before the operator commands (main.rs).
        Cmd::Demo { .. }
        | Cmd::Template(_)
        | Cmd::Version
        | Cmd::Completions { .. }
        | Cmd::Man { .. }
        | Cmd::Serve(_)
        | Cmd::Agent { .. } => Vec::new(),
    };
    a
}

fn holder_args(a: &mut Args, h: &HolderArgs) {
    a.nonce = h.nonce.clone();
    a.id_token_file = h.id_token_file.clone();
    a.pin_stdin = h.pin.pin_stdin;
}

/// Parses the command line (`raw` without the program name); on a parse error returns
/// the exit code after reporting it (help and `--version` exit 0).
pub fn parse(raw: &[String]) -> Result<Cli, u8> {
    let argv = std::iter::once(OsString::from("keysmith")).chain(raw.iter().map(OsString::from));
    Cli::try_parse_from(argv).map_err(|e| report(&e, json_requested(raw)))
}

/// `--json` among the options (before a `--`).
pub fn json_requested(raw: &[String]) -> bool {
    raw.iter().take_while(|a| *a != "--").any(|a| a == "--json")
}

/// A parse error in a few lines: what is wrong, clap's hint, the usage line.
#[derive(Debug, PartialEq)]
pub struct ShortError {
    /// What is wrong ("unknown flag --frobnicate").
    pub message: String,
    /// clap's suggestions ("a similar argument exists: '--force'").
    pub tips: Vec<String>,
    /// The command's usage line.
    pub usage: Option<String>,
}

/// The short form of a clap error.
pub fn short_error(e: &clap::Error) -> ShortError {
    use clap::error::{ContextKind, ContextValue, ErrorKind as K};
    let rendered = e.render().to_string();
    let mut lines = rendered.lines();
    let mut message = lines
        .next()
        .unwrap_or_default()
        .trim_start_matches("error: ")
        .to_owned();
    // A message that goes on over several lines ("the following required arguments were
    // not provided:" and the list) ends at the first empty line.
    for l in lines.by_ref() {
        if l.trim().is_empty() {
            break;
        }
        message.push(' ');
        message.push_str(l.trim());
    }
    let mut tips = Vec::new();
    let mut usage = None;
    for l in lines {
        let l = l.trim();
        if let Some(tip) = l.strip_prefix("tip: ") {
            tips.push(tip.to_owned());
        } else if let Some(u) = l.strip_prefix("Usage: ") {
            usage = Some(u.to_owned());
        }
    }
    let arg = match e.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(s)) => Some(s.clone()),
        _ => None,
    };
    let flag = arg
        .as_deref()
        .map(|a| a.split([' ', '=']).next().unwrap_or(a).to_owned());
    match (e.kind(), &flag) {
        (K::UnknownArgument, Some(f)) => message = format!("unknown flag {f}"),
        (K::InvalidSubcommand, _) => {
            if let Some(ContextValue::String(s)) = e.get(ContextKind::InvalidSubcommand) {
                message = format!("unknown command {s}");
            }
        }
        (K::InvalidValue, Some(f)) => {
            if let Some(ContextValue::String(v)) = e.get(ContextKind::InvalidValue) {
                if v.is_empty() && f.starts_with("--") {
                    message = format!("{f} needs a value");
                }
            }
        }
        _ => {}
    }
    ShortError {
        message,
        tips,
        usage,
    }
}

/// Reports a clap error and returns its exit code: help and version go to stdout (0),
/// everything else is a short usage error (2).
fn report(e: &clap::Error, json: bool) -> u8 {
    use clap::error::ErrorKind as K;
    match e.kind() {
        K::DisplayHelp | K::DisplayVersion => {
            let _ = e.print();
            return 0;
        }
        // `keysmith device`: the command's help, as a usage error.
        K::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            return 2;
        }
        _ => {}
    }
    let short = short_error(e);
    if json {
        let err = FacadeError::usage(short.message.clone());
        println!("{}", crate::error_json(&err));
    }
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "keysmith: {}", short.message);
    for tip in &short.tips {
        let _ = writeln!(err, "  tip: {tip}");
    }
    if let Some(u) = &short.usage {
        let _ = writeln!(err, "usage: {u}");
    }
    let _ = writeln!(
        err,
        "For more information, try '{} --help'.",
        help_path(short.usage.as_deref())
    );
    2
}

/// The command a usage line is for (`keysmith revoke` of `keysmith revoke --force <KEY>`).
fn help_path(usage: Option<&str>) -> String {
    let words: Vec<&str> = usage
        .unwrap_or("keysmith")
        .split_whitespace()
        .take_while(|w| !w.starts_with(['-', '<', '[']))
        .collect();
    if words.is_empty() {
        "keysmith".to_owned()
    } else {
        words.join(" ")
    }
}

/// `keysmith completions SHELL`: the completion script on stdout.
pub fn completions(shell: clap_complete::Shell) {
    let mut cmd = Cli::command();
    // Into a buffer first: clap_complete panics on a write error (`| head` closing the
    // pipe), and a closed stdout is no error worth reporting.
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, "keysmith", &mut script);
    let _ = std::io::stdout().write_all(&script);
}

/// `keysmith man [--dir DIR]`: the man page (roff) on stdout, or keysmith.1 and one
/// keysmith-COMMAND.1 per command written into DIR.
pub fn man(dir: Option<&std::path::Path>) -> Result<(), FacadeError> {
    let cmd = Cli::command();
    match dir {
        None => {
            let mut out = Vec::new();
            clap_mangen::Man::new(cmd)
                .render(&mut out)
                .map_err(|e| FacadeError::usage(format!("rendering the man page: {e}")))?;
            let _ = std::io::stdout().write_all(&out);
            Ok(())
        }
        Some(d) => clap_mangen::generate_to(cmd, d)
            .map_err(|e| FacadeError::usage(format!("writing man pages to {}: {e}", d.display()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(s: &str) -> Cli {
        let argv = std::iter::once("keysmith").chain(s.split_whitespace());
        Cli::try_parse_from(argv).unwrap()
    }

    fn parse_err(s: &str) -> clap::Error {
        let argv = std::iter::once("keysmith").chain(s.split_whitespace());
        Cli::try_parse_from(argv).unwrap_err()
    }

    #[test]
    fn the_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_flags_go_anywhere_and_the_last_one_wins() {
        let cli = parse_ok("--json revoke K1 --no-force --config a.toml --config=c.toml");
        let a = operator_args(&cli, cli.config.clone());
        assert!(a.json);
        assert_eq!(a.force, Some(false));
        assert_eq!(a.words, ["revoke", "K1"]);
        assert_eq!(a.config.as_deref(), Some(std::path::Path::new("c.toml")));
        let cli = parse_ok("revoke --force K1 --no-force --force --json --json");
        assert_eq!(operator_args(&cli, None).force, Some(true));
    }

    #[test]
    fn double_dash_ends_the_options() {
        let cli = parse_ok("show -- --not-a-flag");
        assert_eq!(operator_args(&cli, None).words, ["show", "--not-a-flag"]);
    }

    #[test]
    fn options_become_the_operator_args() {
        let cli = parse_ok("issue --template=t --user u --serial S1 --activate --pin-stdin");
        let a = operator_args(&cli, None);
        assert_eq!(a.words, ["issue"]);
        assert_eq!(
            (
                a.template.as_deref(),
                a.user.as_deref(),
                a.serial.as_deref()
            ),
            (Some("t"), Some("u"), Some("S1"))
        );
        assert!(a.activate && a.pin_stdin);
        let cli = parse_ok("reconcile --user a --user b --fix --delete-unknown");
        let a = operator_args(&cli, None);
        assert_eq!(a.users, ["a", "b"]);
        assert!(a.fix && a.delete_unknown);
        let cli = parse_ok("bulk issue f.csv --workers 2 --rate -1");
        let a = operator_args(&cli, None);
        assert_eq!(a.words, ["bulk", "issue", "f.csv"]);
        assert_eq!(a.rate.as_deref(), Some("-1"));
        let cli = parse_ok("audit verify");
        assert_eq!(operator_args(&cli, None).words, ["audit", "verify"]);
    }

    #[test]
    fn errors_are_short_with_a_hint() {
        let e = short_error(&parse_err("list --forse"));
        assert_eq!(e.message, "unknown flag --forse");
        let e = short_error(&parse_err("revoke K --forse"));
        assert!(e.tips.iter().any(|t| t.contains("--force")), "{e:?}");
        assert!(e
            .usage
            .as_deref()
            .unwrap_or("")
            .starts_with("keysmith revoke"));
        assert_eq!(help_path(e.usage.as_deref()), "keysmith revoke");
        assert_eq!(help_path(None), "keysmith");
        let e = short_error(&parse_err("list --user"));
        assert_eq!(e.message, "--user needs a value");
        let e = short_error(&parse_err("frobnicate"));
        assert_eq!(e.message, "unknown command frobnicate");
        let e = short_error(&parse_err("isue"));
        assert!(e.tips.iter().any(|t| t.contains("issue")), "{e:?}");
        let e = short_error(&parse_err("issue --template t"));
        assert!(e.message.contains("--user"), "{e:?}");
        let e = short_error(&parse_err("bulk explode f.csv"));
        assert!(e.message.contains("explode"), "{e:?}");
    }
}
