//! The rolling log file: names from a pattern, a new file per UTC day or hour or when a
//! size is reached, and pruning of the oldest matching files beyond a count.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use super::{DiagnosticsError, FileDestination, Rotation, MAX_SETTING_LEN};

/// Where the roller reads the time; tests pass a fixed clock.
pub(crate) type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Placeholder {
    Date,
    Hour,
    Pid,
    Seq,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    Literal(String),
    Field(Placeholder),
}

/// A parsed, validated file name pattern.
#[derive(Clone, Debug)]
pub(crate) struct Pattern {
    tokens: Vec<Token>,
}

/// The values a file name was made from (for ordering files when pruning).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct NameKey {
    date: String,
    hour: String,
    seq: u64,
    pid: u64,
}

/// The UTC date and hour a record belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Period {
    date: String,
    hour: String,
}

fn invalid(field: &'static str, reason: impl Into<String>) -> DiagnosticsError {
    DiagnosticsError::InvalidConfig {
        field,
        reason: reason.into(),
    }
}

impl Pattern {
    /// Parses and checks a file destination: pattern syntax, placeholders the rotation
    /// needs, directory, size and count.
    pub(crate) fn parse(dest: &FileDestination) -> Result<Pattern, DiagnosticsError> {
        const FIELD: &str = "log.destination.file-name-pattern";
        let p = dest.file_name_pattern.as_str();
        if dest.directory.as_os_str().is_empty() {
            return Err(invalid(
                "log.destination.directory",
                "must not be empty (use \".\" for the working directory)",
            ));
        }
        if p.is_empty() {
            return Err(invalid(FIELD, "must not be empty"));
        }
        if p.len() > MAX_SETTING_LEN {
            return Err(invalid(
                FIELD,
                format!("longer than {MAX_SETTING_LEN} bytes"),
            ));
        }
        if p.contains('/') || p.contains('\\') || p == "." || p == ".." || p.contains('\0') {
            return Err(invalid(
                FIELD,
                format!(
                    "{p:?} must be a file name without directories (set log.destination.directory)"
                ),
            ));
        }
        let mut tokens = Vec::new();
        let mut literal = String::new();
        let mut rest = p;
        while let Some(open) = rest.find('{') {
            literal.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            let Some(close) = after.find('}') else {
                return Err(invalid(FIELD, format!("{p:?} has an unclosed '{{'")));
            };
            let field = match &after[..close] {
                "date" => Placeholder::Date,
                "hour" => Placeholder::Hour,
                "pid" => Placeholder::Pid,
                "seq" => Placeholder::Seq,
                other => {
                    return Err(invalid(
                        FIELD,
                        format!("unknown placeholder {{{other}}}: use {{date}}, {{hour}}, {{pid}} or {{seq}}"),
                    ))
                }
            };
            if tokens.contains(&Token::Field(field)) {
                return Err(invalid(
                    FIELD,
                    format!("{p:?} repeats {{{}}}", &after[..close]),
                ));
            }
            if !literal.is_empty() {
                tokens.push(Token::Literal(std::mem::take(&mut literal)));
            } else if matches!(
                tokens.last(),
                Some(Token::Field(Placeholder::Pid | Placeholder::Seq))
            ) && matches!(field, Placeholder::Pid | Placeholder::Seq)
            {
                return Err(invalid(
                    FIELD,
                    format!("{p:?}: {{pid}} and {{seq}} need a separator between them"),
                ));
            }
            tokens.push(Token::Field(field));
            rest = &after[close + 1..];
        }
        literal.push_str(rest);
        if literal.contains('}') {
            return Err(invalid(FIELD, format!("{p:?} has a stray '}}'")));
        }
        if !literal.is_empty() {
            tokens.push(Token::Literal(literal));
        }
        let has = |f| tokens.contains(&Token::Field(f));
        let needs: &[(Placeholder, &str)] = match dest.rotation {
            Rotation::Daily => &[(Placeholder::Date, "{date}")],
            Rotation::Hourly => &[(Placeholder::Date, "{date}"), (Placeholder::Hour, "{hour}")],
            Rotation::SizeBytes(_) => &[(Placeholder::Seq, "{seq}")],
            Rotation::Never => &[],
        };
        for (f, name) in needs {
            if !has(*f) {
                return Err(invalid(
                    FIELD,
                    format!("{p:?} must contain {name} for rotation {:?}", dest.rotation),
                ));
            }
        }
        if dest.rotation == Rotation::SizeBytes(0) {
            return Err(invalid(
                "log.destination.rotation",
                "size-bytes must be at least 1",
            ));
        }
        if dest.max_files == Some(0) {
            return Err(invalid(
                "log.destination.max-files",
                "must be at least 1 (leave it out to keep every file)",
            ));
        }
        Ok(Pattern { tokens })
    }

    fn render(&self, period: &Period, pid: u32, seq: u64) -> String {
        let mut out = String::new();
        for t in &self.tokens {
            match t {
                Token::Literal(s) => out.push_str(s),
                Token::Field(Placeholder::Date) => out.push_str(&period.date),
                Token::Field(Placeholder::Hour) => out.push_str(&period.hour),
                Token::Field(Placeholder::Pid) => out.push_str(&pid.to_string()),
                Token::Field(Placeholder::Seq) => out.push_str(&seq.to_string()),
            }
        }
        out
    }

    /// The values a file name was made from, or `None` when it does not match.
    fn matches(&self, name: &str) -> Option<NameKey> {
        let mut key = NameKey::default();
        if match_tokens(&self.tokens, name, &mut key) {
            Some(key)
        } else {
            None
        }
    }
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

fn match_tokens(tokens: &[Token], name: &str, key: &mut NameKey) -> bool {
    let Some((first, rest)) = tokens.split_first() else {
        return name.is_empty();
    };
    match first {
        Token::Literal(l) => name
            .strip_prefix(l.as_str())
            .is_some_and(|tail| match_tokens(rest, tail, key)),
        Token::Field(Placeholder::Date) => {
            let (Some(d), Some(tail)) = (name.get(..10), name.get(10..)) else {
                return false;
            };
            let b = d.as_bytes();
            let shape = b.iter().enumerate().all(|(i, c)| match i {
                4 | 7 => *c == b'-',
                _ => c.is_ascii_digit(),
            });
            if !shape {
                return false;
            }
            key.date = d.to_owned();
            match_tokens(rest, tail, key)
        }
        Token::Field(Placeholder::Hour) => {
            let (Some(h), Some(tail)) = (name.get(..2), name.get(2..)) else {
                return false;
            };
            if !is_digits(h) {
                return false;
            }
            key.hour = h.to_owned();
            match_tokens(rest, tail, key)
        }
        Token::Field(f @ (Placeholder::Pid | Placeholder::Seq)) => {
            // A run of digits; try the longest first, then shorter ones.
            let run = name.bytes().take_while(u8::is_ascii_digit).count().min(20);
            for len in (1..=run).rev() {
                let (Some(digits), Some(tail)) = (name.get(..len), name.get(len..)) else {
                    continue;
                };
                let Ok(v) = digits.parse::<u64>() else {
                    continue;
                };
                let mut k = key.clone();
                if *f == Placeholder::Pid {
                    k.pid = v;
                } else {
                    k.seq = v;
                }
                if match_tokens(rest, tail, &mut k) {
                    *key = k;
                    return true;
                }
            }
            false
        }
    }
}

/// A time as a UTC date-time (clocks before 1970 read as the epoch, past year 9999 as
/// its end).
pub(crate) fn utc(t: SystemTime) -> time::OffsetDateTime {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    time::Duration::try_from(since)
        .ok()
        .and_then(|d| time::OffsetDateTime::UNIX_EPOCH.checked_add(d))
        .unwrap_or_else(|| time::PrimitiveDateTime::MAX.assume_utc())
}

fn period_of(t: SystemTime) -> Period {
    let t = utc(t);
    Period {
        date: format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day()),
        hour: format!("{:02}", t.hour()),
    }
}

struct OpenFile {
    path: PathBuf,
    file: File,
    size: u64,
    period: Period,
    seq: u64,
}

/// An append-only log file that rolls over by its rotation rule.
pub(crate) struct RollingFile {
    dest: FileDestination,
    pattern: Pattern,
    clock: Clock,
    pid: u32,
    current: Option<OpenFile>,
}

impl RollingFile {
    /// Validates `dest`, creates the directory and opens the current file.
    pub(crate) fn open(dest: &FileDestination) -> Result<RollingFile, DiagnosticsError> {
        Self::open_with_clock(dest, Arc::new(SystemTime::now), std::process::id())
    }

    pub(crate) fn open_with_clock(
        dest: &FileDestination,
        clock: Clock,
        pid: u32,
    ) -> Result<RollingFile, DiagnosticsError> {
        let pattern = Pattern::parse(dest)?;
        // Logs carry user names and ids: a new folder is 0700, each file 0600.
        crate::files::create_private_dir_all(&dest.directory).map_err(|e| {
            DiagnosticsError::File {
                path: dest.directory.clone(),
                reason: e.to_string(),
            }
        })?;
        let mut roller = RollingFile {
            dest: dest.clone(),
            pattern,
            clock,
            pid,
            current: None,
        };
        let period = period_of((roller.clock)());
        let seq = roller.last_seq(&period);
        roller
            .start(period, seq)
            .map_err(|(path, e)| DiagnosticsError::File {
                path,
                reason: e.to_string(),
            })?;
        Ok(roller)
    }

    /// The file being written.
    pub(crate) fn current_path(&self) -> Option<&Path> {
        self.current.as_ref().map(|c| c.path.as_path())
    }

    /// The highest `{seq}` already on disk for this period and process (to continue
    /// appending after a restart), or 0.
    fn last_seq(&self, period: &Period) -> u64 {
        if !matches!(self.dest.rotation, Rotation::SizeBytes(_)) {
            return 0;
        }
        let mut best = 0;
        for (_, key) in self.matching_files() {
            let same_pid = !self
                .pattern
                .tokens
                .contains(&Token::Field(Placeholder::Pid))
                || key.pid == u64::from(self.pid);
            let has = |f| self.pattern.tokens.contains(&Token::Field(f));
            let same_date = !has(Placeholder::Date) || key.date == period.date;
            let same_hour = !has(Placeholder::Hour) || key.hour == period.hour;
            if same_pid && same_date && same_hour {
                best = best.max(key.seq);
            }
        }
        best
    }

    fn matching_files(&self) -> Vec<(PathBuf, NameKey)> {
        let Ok(entries) = std::fs::read_dir(&self.dest.directory) else {
            return Vec::new();
        };
        entries
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let key = self.pattern.matches(&name)?;
                Some((e.path(), key))
            })
            .collect()
    }

    fn start(&mut self, period: Period, seq: u64) -> Result<(), (PathBuf, io::Error)> {
        let path = self
            .dest
            .directory
            .join(self.pattern.render(&period, self.pid, seq));
        // 0600 and never through a symlink someone planted at the name.
        let file = crate::files::open_private_append(&path).map_err(|e| (path.clone(), e))?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        if let Some(mut old) = self.current.take() {
            let _ = old.file.flush();
        }
        self.current = Some(OpenFile {
            path,
            file,
            size,
            period,
            seq,
        });
        self.prune();
        Ok(())
    }

    /// Deletes the oldest matching files beyond `max_files` (never the current one).
    fn prune(&self) {
        let Some(max) = self.dest.max_files else {
            return;
        };
        let current = self.current_path().map(Path::to_path_buf);
        let mut files = self.matching_files();
        if files.len() <= max {
            return;
        }
        // Oldest first: by the date, hour and number in the name, then (files of several
        // processes on the same day) by modification time.
        let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        files.sort_by(|(pa, ka), (pb, kb)| {
            (&ka.date, &ka.hour, ka.seq)
                .cmp(&(&kb.date, &kb.hour, kb.seq))
                .then_with(|| modified(pa).cmp(&modified(pb)))
                .then_with(|| pa.cmp(pb))
        });
        let excess = files.len() - max;
        for (path, _) in files.into_iter().take(excess) {
            if Some(&path) != current.as_ref() {
                let _ = std::fs::remove_file(&path);
            }
        }
    }

    /// Appends one record, first starting a new file when the rotation rule says so.
    pub(crate) fn write_record(&mut self, record: &[u8]) -> io::Result<()> {
        let period = period_of((self.clock)());
        let len = record.len() as u64;
        let has = |f| self.pattern.tokens.contains(&Token::Field(f));
        let next = match &self.current {
            None => Some((period, 0)),
            Some(c) => match self.dest.rotation {
                Rotation::Never => None,
                Rotation::Daily if c.period.date != period.date => Some((period, 0)),
                Rotation::Hourly if c.period != period => Some((period, 0)),
                // Rolling by size, a {date} or {hour} in the name still follows the clock.
                Rotation::SizeBytes(_)
                    if (has(Placeholder::Date) && c.period.date != period.date)
                        || (has(Placeholder::Hour) && c.period.hour != period.hour) =>
                {
                    let seq = self.last_seq(&period);
                    Some((period, seq))
                }
                Rotation::SizeBytes(max) if c.size > 0 && c.size.saturating_add(len) > max => {
                    Some((c.period.clone(), c.seq.saturating_add(1)))
                }
                _ => None,
            },
        };
        if let Some((period, seq)) = next {
            self.start(period, seq).map_err(|(_, e)| e)?;
        }
        let Some(c) = self.current.as_mut() else {
            return Err(io::Error::other("no log file open"));
        };
        c.file.write_all(record)?;
        c.size = c.size.saturating_add(len);
        Ok(())
    }

    pub(crate) fn flush(&mut self) -> io::Result<()> {
        match self.current.as_mut() {
            Some(c) => c.file.flush(),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    fn temp_dir(name: &str) -> PathBuf {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let dir = std::env::temp_dir().join(format!(
            "keysmith-roller-{name}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// A clock the test moves by hand (seconds since the epoch).
    fn clock(start: u64) -> (Arc<AtomicU64>, Clock) {
        let at = Arc::new(AtomicU64::new(start));
        let read = at.clone();
        (
            at,
            Arc::new(move || UNIX_EPOCH + Duration::from_secs(read.load(Ordering::SeqCst))),
        )
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    }

    fn dest(dir: &Path, pattern: &str, rotation: Rotation, max: Option<usize>) -> FileDestination {
        FileDestination {
            directory: dir.to_path_buf(),
            file_name_pattern: pattern.into(),
            rotation,
            max_files: max,
        }
    }

    // 2026-11-25T23:59:00Z
    const LATE: u64 = 1_795_651_140;

    #[test]
    fn civil_dates_are_right() {
        let day = |d: u64| period_of(UNIX_EPOCH + Duration::from_secs(d * 86_400)).date;
        assert_eq!(day(0), "1970-01-01");
        assert_eq!(day(11_016), "2000-02-29");
        assert_eq!(day(19_417), "2023-03-01");
        assert_eq!(
            period_of(UNIX_EPOCH - Duration::from_secs(1)).date,
            "1970-01-01"
        );
        let p = period_of(UNIX_EPOCH + Duration::from_secs(LATE));
        assert_eq!(p.date, "2026-11-25");
        assert_eq!(p.hour, "23");
    }

    #[test]
    fn names_render_and_match_the_pattern() {
        let d = dest(
            Path::new("/tmp"),
            "keysmith-{date}.{pid}.log",
            Rotation::Daily,
            None,
        );
        let p = Pattern::parse(&d).unwrap();
        let period = period_of(UNIX_EPOCH + Duration::from_secs(LATE));
        let name = p.render(&period, 4242, 0);
        assert_eq!(name, "keysmith-2026-11-25.4242.log");
        let key = p.matches(&name).unwrap();
        assert_eq!((key.date.as_str(), key.pid), ("2026-11-25", 4242));
        assert!(p.matches("keysmith-2026-11-25.log").is_none());
        assert!(p.matches("keysmith-2026-1x-25.42.log").is_none());
        assert!(p.matches("other.log").is_none());

        let d = dest(
            Path::new("/tmp"),
            "k{seq}{date}.log",
            Rotation::SizeBytes(10),
            None,
        );
        let p = Pattern::parse(&d).unwrap();
        let key = p.matches("k122026-11-25.log").unwrap();
        assert_eq!((key.seq, key.date.as_str()), (12, "2026-11-25"));
    }

    #[test]
    fn daily_rotation_starts_a_new_file_at_midnight_utc() {
        let dir = temp_dir("daily");
        let (at, clk) = clock(LATE);
        let d = dest(&dir, "ks-{date}.{pid}.log", Rotation::Daily, None);
        let mut r = RollingFile::open_with_clock(&d, clk, 77).unwrap();
        r.write_record(b"one\n").unwrap();
        at.fetch_add(90, Ordering::SeqCst); // 2026-11-26T00:00:30Z
        r.write_record(b"two\n").unwrap();
        r.flush().unwrap();
        assert_eq!(
            names(&dir),
            ["ks-2026-11-25.77.log", "ks-2026-11-26.77.log"]
        );
        assert_eq!(
            std::fs::read_to_string(dir.join("ks-2026-11-25.77.log")).unwrap(),
            "one\n"
        );
        assert_eq!(
            std::fs::read_to_string(dir.join("ks-2026-11-26.77.log")).unwrap(),
            "two\n"
        );
        assert_eq!(
            r.current_path(),
            Some(dir.join("ks-2026-11-26.77.log").as_path())
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn hourly_rotation_follows_the_hour() {
        let dir = temp_dir("hourly");
        let (at, clk) = clock(LATE - 3600);
        let d = dest(&dir, "ks-{date}T{hour}.log", Rotation::Hourly, None);
        let mut r = RollingFile::open_with_clock(&d, clk, 1).unwrap();
        r.write_record(b"a\n").unwrap();
        at.fetch_add(600, Ordering::SeqCst);
        r.write_record(b"b\n").unwrap();
        at.fetch_add(60, Ordering::SeqCst);
        r.write_record(b"c\n").unwrap();
        assert_eq!(
            names(&dir),
            ["ks-2026-11-25T22.log", "ks-2026-11-25T23.log"]
        );
        assert_eq!(
            std::fs::read_to_string(dir.join("ks-2026-11-25T22.log")).unwrap(),
            "a\n"
        );
        assert_eq!(
            std::fs::read_to_string(dir.join("ks-2026-11-25T23.log")).unwrap(),
            "b\nc\n"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn size_rotation_numbers_files_and_prunes_the_oldest() {
        let dir = temp_dir("size");
        let (_, clk) = clock(LATE);
        let d = dest(&dir, "ks.{seq}.log", Rotation::SizeBytes(10), Some(3));
        let mut r = RollingFile::open_with_clock(&d, clk.clone(), 1).unwrap();
        // Each record is 6 bytes: one fits a 10-byte file, the second rolls.
        for i in 0..5 {
            r.write_record(format!("rec-{i}\n").as_bytes()).unwrap();
        }
        r.flush().unwrap();
        assert_eq!(names(&dir), ["ks.2.log", "ks.3.log", "ks.4.log"]);
        assert_eq!(
            std::fs::read_to_string(dir.join("ks.4.log")).unwrap(),
            "rec-4\n"
        );
        // A record larger than the limit still goes into a file of its own.
        r.write_record(b"0123456789abcdef\n").unwrap();
        assert_eq!(r.current_path(), Some(dir.join("ks.5.log").as_path()));
        drop(r);
        // Reopening continues with the last file instead of starting again at 0.
        let r = RollingFile::open_with_clock(&d, clk, 1).unwrap();
        assert_eq!(r.current_path(), Some(dir.join("ks.5.log").as_path()));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn size_rotation_with_a_date_starts_again_on_a_new_day() {
        let dir = temp_dir("size-date");
        let (at, clk) = clock(LATE);
        let d = dest(&dir, "ks-{date}.{seq}.log", Rotation::SizeBytes(1000), None);
        let mut r = RollingFile::open_with_clock(&d, clk, 1).unwrap();
        r.write_record(b"late\n").unwrap();
        at.fetch_add(120, Ordering::SeqCst);
        r.write_record(b"early\n").unwrap();
        assert_eq!(names(&dir), ["ks-2026-11-25.0.log", "ks-2026-11-26.0.log"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn pruning_keeps_the_newest_days_and_ignores_other_files() {
        let dir = temp_dir("prune");
        for name in [
            "ks-2026-11-20.log",
            "ks-2026-11-21.log",
            "ks-2026-11-22.log",
            "notes.txt",
        ] {
            std::fs::write(dir.join(name), b"old\n").unwrap();
        }
        let (_, clk) = clock(LATE);
        let d = dest(&dir, "ks-{date}.log", Rotation::Daily, Some(2));
        let mut r = RollingFile::open_with_clock(&d, clk, 1).unwrap();
        r.write_record(b"new\n").unwrap();
        assert_eq!(
            names(&dir),
            ["ks-2026-11-22.log", "ks-2026-11-25.log", "notes.txt"]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_missing_directory_is_created_and_an_unwritable_one_reported() {
        let dir = temp_dir("mkdir").join("a").join("b");
        let (_, clk) = clock(LATE);
        let d = dest(&dir, "ks.log", Rotation::Never, None);
        let mut r = RollingFile::open_with_clock(&d, clk.clone(), 1).unwrap();
        r.write_record(b"x\n").unwrap();
        assert!(dir.join("ks.log").is_file());
        // A directory path that is a file cannot be used.
        let blocked = dest(&dir.join("ks.log"), "ks.log", Rotation::Never, None);
        let e = RollingFile::open_with_clock(&blocked, clk, 1)
            .err()
            .unwrap();
        assert!(matches!(e, DiagnosticsError::File { .. }), "{e}");
    }

    #[cfg(unix)]
    #[test]
    fn log_files_are_private_and_a_planted_symlink_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777;
        let base = temp_dir("private");
        let dir = base.join("logs");
        let (_, clk) = clock(LATE);
        let mut r = RollingFile::open_with_clock(
            &dest(&dir, "ks.log", Rotation::Never, None),
            clk.clone(),
            1,
        )
        .unwrap();
        r.write_record(b"x\n").unwrap();
        assert_eq!(mode(&dir), 0o700, "a folder keysmith makes is private");
        assert_eq!(
            mode(&dir.join("ks.log")),
            0o600,
            "log files carry user names"
        );
        // Someone plants a symlink at the next log file's name.
        let victim = base.join("victim");
        std::fs::write(&victim, b"keep").unwrap();
        std::os::unix::fs::symlink(&victim, dir.join("other.log")).unwrap();
        let e =
            RollingFile::open_with_clock(&dest(&dir, "other.log", Rotation::Never, None), clk, 1)
                .err()
                .unwrap();
        assert!(matches!(e, DiagnosticsError::File { .. }), "{e}");
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
        std::fs::remove_dir_all(&base).unwrap();
    }
}
