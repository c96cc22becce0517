//! The command line: flags, times and durations, PINs and ID tokens.

use std::io::BufRead;
use std::path::PathBuf;

use keysmith_facade::FacadeError;
use zeroize::Zeroizing;

/// Parsed command line (after the diagnostics flags were taken out).
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
    /// `--activate` (issue with the holder present).
    pub activate: bool,
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
    /// `--template T` (a loaded template's name or a template file).
    pub template: Option<String>,
    /// `--serial S`.
    pub serial: Option<String>,
    /// `--id-token-file F`.
    pub id_token_file: Option<PathBuf>,
    /// `--nonce N`: the nonce of the holder's sign-in (from `self begin`).
    pub nonce: Option<String>,
    /// The command words and operands.
    pub words: Vec<String>,
}

/// Parses the arguments; unknown flags and missing flag values are usage errors.
pub fn parse_args(raw: &[String]) -> Result<Args, FacadeError> {
    let mut a = Args::default();
    let mut it = raw.iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| FacadeError::usage(format!("{name} needs a value")))
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
            "--activate" => a.activate = true,
            "--resume" => a.resume = Some(value("--resume")?),
            "--workers" => a.workers = Some(value("--workers")?),
            "--rate" => a.rate = Some(value("--rate")?),
            "--expiring" => a.expiring = Some(value("--expiring")?),
            "--state" => a.state = Some(value("--state")?),
            "--expiring-before" => a.expiring_before = Some(value("--expiring-before")?),
            "--template" => a.template = Some(value("--template")?),
            "--serial" => a.serial = Some(value("--serial")?),
            "--id-token-file" => a.id_token_file = Some(PathBuf::from(value("--id-token-file")?)),
            "--nonce" => a.nonce = Some(value("--nonce")?),
            s if s.starts_with('-') && s != "-" => {
                return Err(FacadeError::usage(format!("unknown flag {s}")))
            }
            s => a.words.push(s.to_owned()),
        }
    }
    Ok(a)
}

/// `--expiring-before`: unix seconds, or `+<N>h` / `+<N>d` from now; returns unix ms.
pub fn parse_time(s: &str, now: u64) -> Result<u64, FacadeError> {
    let bad = || {
        FacadeError::usage(format!(
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

/// A duration: `<N>s`, `<N>m`, `<N>h`, `<N>d` or plain seconds; returns milliseconds.
pub fn parse_duration(s: &str) -> Option<u64> {
    let s = s.trim();
    let (n, unit) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (s.get(..i)?, c),
        _ => (s, 's'),
    };
    let n: u64 = n.parse().ok()?;
    let per = match unit {
        's' => 1_000,
        'm' => 60_000,
        'h' => 3_600_000,
        'd' => 86_400_000,
        _ => return None,
    };
    n.checked_mul(per)
}

/// Unix milliseconds now.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .and_then(|d| u64::try_from(d.as_millis()).ok())
        .unwrap_or(0)
}

fn stdin_line(what: &str) -> Result<Zeroizing<String>, FacadeError> {
    let mut line = Zeroizing::new(String::new());
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| FacadeError::usage(format!("reading {what}: {e}")))?;
    let value = Zeroizing::new(line.trim_end_matches(['\r', '\n']).to_owned());
    if value.is_empty() {
        return Err(FacadeError::usage(format!("{what}: empty")));
    }
    Ok(value)
}

/// A PIN: prompted with echo off at a terminal, else (or with `--pin-stdin`) the next
/// line of standard input.
pub fn read_pin(args: &Args, what: &str) -> Result<Zeroizing<String>, FacadeError> {
    use std::io::IsTerminal;
    if !args.pin_stdin && std::io::stdin().is_terminal() {
        let pin = Zeroizing::new(
            rpassword::prompt_password(format!("{what}: "))
                .map_err(|e| FacadeError::usage(format!("reading {what}: {e}")))?,
        );
        if pin.is_empty() {
            return Err(FacadeError::usage(format!("{what}: empty")));
        }
        return Ok(pin);
    }
    if !args.pin_stdin {
        eprint!("{what}: ");
    }
    stdin_line(what)
}

/// The nonce of the holder's sign-in from `--nonce N` (what `self begin` printed).
pub fn read_nonce(args: &Args) -> Result<&str, FacadeError> {
    args.nonce.as_deref().ok_or_else(|| {
        FacadeError::usage(
            "this command needs --nonce N: start the holder's sign-in with `keysmith self begin` and send its nonce in the authorization request",
        )
    })
}

/// The holder's ID token from `--id-token-file F` (`-`: the next line of standard input).
pub fn read_id_token(args: &Args) -> Result<Zeroizing<String>, FacadeError> {
    let path = args
        .id_token_file
        .as_deref()
        .ok_or_else(|| FacadeError::usage("this command needs --id-token-file FILE"))?;
    if path.as_os_str() == "-" {
        return stdin_line("ID token");
    }
    let text = Zeroizing::new(
        std::fs::read_to_string(path)
            .map_err(|e| FacadeError::usage(format!("--id-token-file {}: {e}", path.display())))?,
    );
    Ok(Zeroizing::new(text.trim().to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

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
        assert_eq!(e.kind.cli_exit_code(), 2);
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
    fn durations() {
        assert_eq!(parse_duration("90m"), Some(5_400_000));
        assert_eq!(parse_duration("2h"), Some(7_200_000));
        assert_eq!(parse_duration("1d"), Some(86_400_000));
        assert_eq!(parse_duration("15"), Some(15_000));
        assert_eq!(parse_duration("3w"), None);
        assert_eq!(parse_duration("h"), None);
        assert_eq!(parse_duration(""), None);
    }
}
