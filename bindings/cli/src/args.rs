//! The operator commands' arguments (from [`crate::cli`]), times and durations, PINs and
//! ID tokens.

use std::io::BufRead;
use std::path::PathBuf;

use keysmith_facade::FacadeError;
use zeroize::Zeroizing;

/// The command words and every option of an operator command (see
/// [`crate::cli::operator_args`]).
#[derive(Debug, Default)]
pub struct Args {
    /// The configuration file (`--config FILE`, `KEYSMITH_CONFIG` or the default path).
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
    /// `--needs-reissue` (list).
    pub needs_reissue: bool,
    /// `--stale DAYS` (list).
    pub stale: Option<String>,
    /// `--group G` (users readiness).
    pub group: Option<String>,
    /// `--csv FILE` (users readiness).
    pub csv: Option<PathBuf>,
    /// The command words and operands.
    pub words: Vec<String>,
}

/// A point in time given on the command line (`--expiring-before`): RFC 3339
/// (`2026-12-07T09:30:00Z`, any offset), unix seconds, or `+<N>h` / `+<N>d` from `now`
/// (unix ms); returns unix ms. The one place the CLI parses a time.
pub fn parse_time(s: &str, now: u64) -> Result<u64, FacadeError> {
    let bad = || {
        FacadeError::usage(format!(
            "--expiring-before {s:?}: expected an RFC 3339 time (2026-12-07T09:30:00Z), \
             unix seconds, +<N>h or +<N>d"
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
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return s
            .parse::<u64>()
            .ok()
            .and_then(|secs| secs.checked_mul(1000))
            .ok_or_else(bad);
    }
    // RFC 3339 with its offset applied (`Z`, `+01:00`, `-05:30`, ...), by the workspace's
    // one date/time crate.
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map_err(|_| bad())?;
    u64::try_from(t.unix_timestamp_nanos() / 1_000_000).map_err(|_| bad())
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

    #[test]
    fn times_are_absolute_seconds_or_relative() {
        assert_eq!(parse_time("1700000000", 0).unwrap(), 1_700_000_000_000);
        assert_eq!(parse_time("+2h", 1000).unwrap(), 1000 + 7_200_000);
        assert_eq!(parse_time("+1d", 0).unwrap(), 86_400_000);
        assert!(parse_time("+3w", 0).is_err());
        assert!(parse_time("soon", 0).is_err());
        assert!(parse_time("", 0).is_err());
    }

    #[test]
    fn times_in_rfc3339_apply_their_offset() {
        let utc = parse_time("2026-12-07T09:30:00Z", 0).unwrap();
        assert_eq!(utc, 1_796_635_800_000);
        // The same instant with other offsets (the bug of issue 17 item 6: an offset
        // other than Z/+00:00 must not be dropped or refused).
        assert_eq!(parse_time("2026-12-07T10:30:00+01:00", 0).unwrap(), utc);
        assert_eq!(parse_time("2026-12-07T04:00:00-05:30", 0).unwrap(), utc);
        assert_eq!(
            parse_time("2026-12-07T09:30:00.250Z", 0).unwrap(),
            utc + 250
        );
        assert!(parse_time("2026-12-07T09:30:00", 0).is_err(), "no offset");
        assert!(
            parse_time("1969-12-31T23:59:59Z", 0).is_err(),
            "before 1970"
        );
        assert!(parse_time("2026-13-07T09:30:00Z", 0).is_err());
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
