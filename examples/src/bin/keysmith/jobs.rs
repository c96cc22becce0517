//! The repository-wide commands: `list` (paged), `list --expiring`, `reconcile` and
//! `bulk`. Long outputs stream: one line per key, finding or bulk row (one JSON object
//! per line with `--json`), then the summary the caller prints.

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;

use fido_transport::client::Authenticator;
use fido_transport::softkey::{SoftAuthenticator, SoftConfig, SoftTransport};
use fido_transport::Transport;
use lifecycle::engine::{
    BulkDevice, BulkDeviceRequest, BulkKind, BulkOptions, BulkProgress, DriftFinding,
    ReconcileOptions,
};
use lifecycle::store::{KeyQuery, PendingRegistration};
use lifecycle::template::{TemplateSet, Transport as KeyTransport};
use serde_json::{json, Value};

use crate::ops::{self, Args, CliError, Output};

/// Keys read from the repository at a time.
const PAGE: u32 = 500;
/// Largest CSV file a bulk job reads.
const MAX_CSV_BYTES: u64 = 16 * 1024 * 1024;

fn repo(e: lifecycle::store::StoreError) -> CliError {
    CliError::other(format!("repository: {e}"))
}

fn emit(json: bool, value: &Value, text: &str) {
    let mut out = std::io::stdout().lock();
    // A closed stdout (e.g. `| head`) is not an error worth failing the job for.
    let _ = if json {
        writeln!(out, "{value}")
    } else {
        writeln!(out, "{text}")
    };
}

/// `list` without filters: every key, read page by page and printed as it comes.
pub(crate) fn list_all(args: &Args) -> Result<Output, CliError> {
    let s = ops::setup(args)?;
    let mut after: Option<String> = None;
    let mut count = 0u64;
    loop {
        let page = s
            .engine
            .store()
            .find_keys_page(&KeyQuery::All, after.as_deref(), PAGE)
            .map_err(repo)?;
        let Some(last) = page.last() else { break };
        after = Some(last.key_id.clone());
        for k in &page {
            count += 1;
            emit(
                args.json,
                &json!({ "command": "list", "key": ops::key_json(k) }),
                &ops::key_line(k),
            );
        }
    }
    Ok(Output {
        json: json!({ "command": "list", "count": count }),
        text: format!("{count} key(s)"),
    })
}

/// A duration: `<N>s`, `<N>m`, `<N>h`, `<N>d` or plain seconds; returns milliseconds.
pub(crate) fn parse_duration(s: &str) -> Option<u64> {
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

fn pending_json(p: &PendingRegistration) -> Value {
    json!({
        "key_id": p.key_id,
        "passkey_template": p.idp,
        "user_id": p.user_id,
        "challenge_expires_ms": p.challenge_expires_ms,
    })
}

/// `list --expiring DURATION`: pending registrations whose challenge expires within
/// DURATION (already expired ones included), soonest first, paged.
pub(crate) fn list_expiring(args: &Args) -> Result<Output, CliError> {
    let d = args.expiring.as_deref().unwrap_or_default();
    let within = parse_duration(d).ok_or_else(|| {
        CliError::usage(format!(
            "--expiring {d:?}: expected a duration like 90m, 2h, 7d"
        ))
    })?;
    let s = ops::setup(args)?;
    let before = i64::try_from(ops::now_ms().saturating_add(within)).unwrap_or(i64::MAX);
    let mut after: Option<(i64, String, String)> = None;
    let mut count = 0u64;
    loop {
        let page = s
            .engine
            .store()
            .pending_expiring_page(
                before,
                after.as_ref().map(|(e, k, i)| (*e, k.as_str(), i.as_str())),
                PAGE,
            )
            .map_err(repo)?;
        let Some(last) = page.last() else { break };
        after = Some((
            last.challenge_expires_ms,
            last.key_id.clone(),
            last.idp.clone(),
        ));
        for p in &page {
            count += 1;
            emit(
                args.json,
                &json!({ "command": "list", "pending": pending_json(p) }),
                &format!(
                    "pending {}  passkey={}  user={}  expires_ms={}",
                    p.key_id, p.idp, p.user_id, p.challenge_expires_ms
                ),
            );
        }
    }
    Ok(Output {
        json: json!({ "command": "list", "expiring_within_ms": within, "count": count }),
        text: format!("{count} pending registration(s) expiring within {d}"),
    })
}

fn finding_text(f: &DriftFinding) -> String {
    format!(
        "{:<16} user={}  key={}  passkey={}  idp={}  method={}  {}{}",
        f.kind.as_str(),
        f.user,
        f.key_id.as_deref().unwrap_or("-"),
        f.passkey_template.as_deref().unwrap_or("-"),
        f.idp_connection,
        f.method_id.as_deref().unwrap_or("-"),
        if f.fixed { "FIXED" } else { "not fixed" },
        f.error
            .as_deref()
            .map(|e| format!("  error: {e}"))
            .unwrap_or_default()
    )
}

/// `reconcile [--user U ...] [--all] [--fix] [--delete-unknown]`.
pub(crate) fn reconcile(args: &Args) -> Result<Output, CliError> {
    if args.delete_unknown && !args.fix {
        return Err(CliError::usage("--delete-unknown needs --fix"));
    }
    if args.users.is_empty() && !args.all {
        return Err(CliError::usage(
            "reconcile needs --user U (repeatable) or --all",
        ));
    }
    let s = ops::setup(args)?;
    let mut users: Vec<String> = args.users.clone();
    if args.all {
        // Every user holding a key, read page by page.
        let mut seen = std::collections::BTreeSet::new();
        let mut after: Option<String> = None;
        loop {
            let page = s
                .engine
                .store()
                .find_keys_page(&KeyQuery::All, after.as_deref(), PAGE)
                .map_err(repo)?;
            let Some(last) = page.last() else { break };
            after = Some(last.key_id.clone());
            seen.extend(page.into_iter().filter_map(|k| k.user_id));
        }
        for u in seen {
            if !users.contains(&u) {
                users.push(u);
            }
        }
    }
    let options = ReconcileOptions {
        fix: args.fix,
        delete_unknown: args.delete_unknown,
    };
    let (mut findings, mut fixed, mut errors) = (0u64, 0u64, 0u64);
    for u in &users {
        let report =
            s.engine
                .reconcile(&s.actor, std::slice::from_ref(u), &options, ops::now_ms())?;
        for f in &report.findings {
            findings += 1;
            fixed += u64::from(f.fixed);
            errors += u64::from(f.error.is_some());
            let mut v = serde_json::to_value(f).unwrap_or(Value::Null);
            if let Value::Object(m) = &mut v {
                m.insert("command".into(), json!("reconcile"));
            }
            emit(args.json, &v, &finding_text(f));
        }
    }
    let out = Output {
        json: json!({ "command": "reconcile", "summary": {
            "users": users.len(), "findings": findings, "fixed": fixed, "errors": errors } }),
        text: format!(
            "reconcile: {} user(s), {findings} finding(s), {fixed} fixed, {errors} error(s)",
            users.len()
        ),
    };
    if errors > 0 {
        // The summary first, then the error (exit 4: the IdP failed a check or a fix).
        emit(args.json, &out.json, &out.text);
        return Err(CliError {
            code: ops::EXIT_IDP,
            message: format!("{errors} finding(s) could not be checked or fixed"),
        });
    }
    Ok(out)
}

/// A hand-rolled progress bar on stderr, drawn only when stderr is a terminal.
struct Bar {
    tty: bool,
}

impl Bar {
    /// One frame of the bar (starts with `\r`, no newline).
    fn render(p: &BulkProgress) -> String {
        let finished = p.done + p.failed;
        let width = 30u64;
        let filled = (finished.min(p.total) * width)
            .checked_div(p.total)
            .unwrap_or(width);
        let bar: String = (0..width)
            .map(|i| if i < filled { '#' } else { '.' })
            .collect();
        format!(
            "\r[{bar}] {finished}/{} done {} failed {} (line {})   ",
            p.total, p.done, p.failed, p.line
        )
    }

    fn draw(&self, p: &BulkProgress) {
        if !self.tty {
            return;
        }
        eprint!("{}", Self::render(p));
        let _ = std::io::stderr().flush();
    }

    fn finish(&self) {
        if self.tty {
            eprintln!();
        }
    }
}

/// The device for one issue row: with `--device softkey:BASE` a fresh software key per
/// row (state file `BASE.line<N>`), otherwise the operator is asked to insert the key.
fn row_device(spec: Option<&str>, r: &BulkDeviceRequest) -> Result<BulkDevice, String> {
    if let Some(base) = spec.and_then(|s| s.strip_prefix("softkey:")) {
        let path = format!("{base}.line{}", r.line);
        let soft = SoftAuthenticator::open_persistent(&path, SoftConfig::default())
            .map_err(|e| format!("software key {path}: {e}"))?;
        let t: Box<dyn Transport> = Box::new(SoftTransport::new(soft));
        return Ok(BulkDevice {
            authenticator: Authenticator::new(t),
            transport: KeyTransport::Usb,
            can_reset_in_place: true,
        });
    }
    eprintln!(
        "\ninsert the key for {} (serial {}), press Enter, then touch it",
        r.user, r.serial
    );
    let mut line = String::new();
    match std::io::stdin().lock().read_line(&mut line) {
        Ok(0) => return Err("no key inserted (standard input closed)".into()),
        Ok(_) => {}
        Err(e) => return Err(format!("reading standard input: {e}")),
    }
    let (inner, kind, reset, _) = ops::open_raw(spec).map_err(|e| e.message)?;
    let t: Box<dyn Transport> = Box::new(ops::Prompting {
        inner,
        already_told: false,
    });
    Ok(BulkDevice {
        authenticator: Authenticator::new(t),
        transport: kind,
        can_reset_in_place: reset,
    })
}

/// `bulk issue|revoke|reconcile FILE.csv [--resume JOB] [--workers N] [--rate PER_SEC]`
/// (issue: `--template FILE` for rows without a template column; reconcile: `--fix`,
/// `--delete-unknown`).
pub(crate) fn bulk(args: &Args, kind: &str, file: Option<&str>) -> Result<Output, CliError> {
    let kind = BulkKind::parse(kind).ok_or_else(|| {
        CliError::usage(format!(
            "bulk {kind:?}: expected issue, revoke or reconcile"
        ))
    })?;
    let workers = match &args.workers {
        Some(w) => match w.parse::<usize>() {
            Ok(n @ 1..=32) => n,
            _ => {
                return Err(CliError::usage(format!(
                    "--workers {w:?}: expected 1 to 32"
                )))
            }
        },
        None => 1,
    };
    let rate = match &args.rate {
        Some(r) => match r.parse::<f64>() {
            Ok(v) if v.is_finite() && v > 0.0 => Some(v),
            _ => {
                return Err(CliError::usage(format!(
                    "--rate {r:?}: expected a positive number of IdP calls per second"
                )))
            }
        },
        None => None,
    };
    if args.delete_unknown && !args.fix {
        return Err(CliError::usage("--delete-unknown needs --fix"));
    }
    let s = ops::setup(args)?;
    let mut default_template = None;
    if let Some(t) = &args.template {
        let set = TemplateSet::load(t)
            .and_then(|x| x.validate().map(|()| x))
            .map_err(|e| CliError::usage(format!("template {}: {e}", t.display())))?;
        default_template = Some(set.credential.name.clone());
        s.engine.add_template(set)?;
    }
    let job = match (&args.resume, file) {
        (Some(id), _) => {
            let id: i64 = id
                .parse()
                .map_err(|_| CliError::usage(format!("--resume {id:?}: expected a job id")))?;
            let job = s
                .engine
                .store()
                .bulk_job(id)
                .map_err(repo)?
                .ok_or_else(|| CliError::usage(format!("no bulk job {id} is recorded")))?;
            if job.kind != kind.as_str() {
                return Err(CliError::usage(format!(
                    "bulk job {id} is a {} job, not {}",
                    job.kind,
                    kind.as_str()
                )));
            }
            job
        }
        (None, Some(f)) => {
            let text = read_csv(Path::new(f))?;
            s.engine
                .bulk_create(kind, &text, &s.actor, ops::now_ms())
                .map_err(|e| match e {
                    lifecycle::Error::Engine(ee @ lifecycle::engine::EngineError::Csv { .. }) => {
                        CliError::usage(format!("{f}: {ee}"))
                    }
                    e => e.into(),
                })?
        }
        (None, None) => return Err(CliError::usage("bulk needs FILE.csv (or --resume JOB)")),
    };
    eprintln!(
        "bulk {} job {}: {} row(s)",
        kind.as_str(),
        job.job_id,
        job.total
    );
    let options = BulkOptions {
        workers,
        max_idp_calls_per_sec: rate,
        default_template,
        retry_failed: true,
        fix: args.fix,
        delete_unknown: args.delete_unknown,
    };
    let bar = Bar {
        tty: std::io::stderr().is_terminal(),
    };
    let spec = args.device.clone();
    let json = args.json;
    let summary = s.engine.bulk_run(
        job.job_id,
        &options,
        &ops::now_ms,
        &mut |r| row_device(spec.as_deref(), r),
        &mut |p| {
            bar.draw(p);
            emit(
                json,
                &json!({ "command": "bulk", "job_id": p.job_id, "line": p.line,
                    "status": p.status, "outcome": p.outcome,
                    "done": p.done, "failed": p.failed, "total": p.total }),
                &format!("line {}: {} {}", p.line, p.status.as_str(), p.outcome),
            );
        },
    );
    bar.finish();
    let summary = summary?;
    let out = Output {
        json: json!({ "command": "bulk", "summary": {
            "job_id": summary.job_id, "kind": summary.kind, "total": summary.total,
            "done": summary.done, "failed": summary.failed, "skipped": summary.skipped,
            "settled": summary.settled } }),
        text: format!(
            "bulk {} job {}: {} done, {} failed of {} ({} skipped as already done); rerun with --resume {} to retry failures",
            summary.kind.as_str(),
            summary.job_id,
            summary.done,
            summary.failed,
            summary.total,
            summary.skipped,
            summary.job_id
        ),
    };
    if summary.failed > 0 {
        // The summary first, then the error (exit 5); the rows say why each failed.
        emit(args.json, &out.json, &out.text);
        return Err(CliError::other(format!(
            "{} of {} row(s) failed; fix them and rerun with --resume {}",
            summary.failed, summary.total, summary.job_id
        )));
    }
    Ok(out)
}

fn read_csv(path: &Path) -> Result<String, CliError> {
    let meta =
        std::fs::metadata(path).map_err(|e| CliError::usage(format!("{}: {e}", path.display())))?;
    if meta.len() > MAX_CSV_BYTES {
        return Err(CliError::usage(format!(
            "{}: {} bytes is more than the {MAX_CSV_BYTES} a bulk job reads",
            path.display(),
            meta.len()
        )));
    }
    std::fs::read_to_string(path).map_err(|e| CliError::usage(format!("{}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_bar_frames() {
        let p = BulkProgress {
            job_id: 1,
            done: 2,
            failed: 1,
            total: 6,
            line: 4,
            status: lifecycle::store::BulkItemStatus::Failed,
            outcome: String::new(),
        };
        let frame = Bar::render(&p);
        assert!(frame.starts_with("\r["));
        assert_eq!(frame.matches('#').count(), 15, "half of 30");
        assert!(frame.contains("3/6 done 2 failed 1 (line 4)"), "{frame}");
        let empty = BulkProgress {
            total: 0,
            done: 0,
            failed: 0,
            ..p
        };
        assert_eq!(Bar::render(&empty).matches('#').count(), 30);
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
