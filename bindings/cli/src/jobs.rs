//! The repository-wide commands: `list` (paged), `list --expiring`, `reconcile` and
//! `bulk`. Long outputs stream: one line per key, finding or bulk row (one facade JSON
//! object per line with `--json`), then the summary the caller prints.

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;

use keysmith_facade::{
    BulkRow, BulkRunOptions, DriftFinding, ErrorKind, ExpiringCursor, FacadeError, Key,
    MAX_BULK_CSV_BYTES, MAX_PAGE,
};
use serde_json::{json, Value};

use crate::args::{parse_duration, Args};
use crate::ops::{self, to_json, Output};
use crate::progress;

/// Keys read from the repository at a time.
const PAGE: u32 = 500;

fn emit(json: bool, value: &Value, text: &str) {
    let mut out = std::io::stdout().lock();
    // A closed stdout (e.g. `| head`) is not an error worth failing the job for.
    let _ = if json {
        writeln!(out, "{value}")
    } else {
        writeln!(out, "{text}")
    };
}

/// `list`: every key (paged), the keys a filter selects, or `--expiring`.
pub(crate) fn list(args: &Args) -> Result<Output, FacadeError> {
    if args.expiring.is_some() {
        return list_expiring(args);
    }
    let before = ops::expiring_before(args)?;
    let s = ops::session(args)?;
    let mut count = 0u64;
    let mut show = |k: &Key| -> Result<(), FacadeError> {
        if let Some(t) = before {
            let pending = s.key(&k.key_id)?.pending;
            if !pending.iter().any(|p| p.challenge_expires_ms < t) {
                return Ok(());
            }
        }
        count += 1;
        emit(args.json, &to_json(k), &ops::key_line(k));
        Ok(())
    };
    match ops::key_filter(args) {
        Some(filter) => {
            for k in s.list_keys(&filter)? {
                show(&k)?;
            }
        }
        None => {
            let mut after: Option<String> = None;
            loop {
                let page = s.list_keys_page(after.as_deref(), PAGE)?;
                for k in &page.keys {
                    show(k)?;
                }
                match page.next_after {
                    Some(a) => after = Some(a),
                    None => break,
                }
            }
        }
    }
    Ok(Output {
        json: json!({ "count": count }),
        text: if count == 0 {
            "no keys match".to_owned()
        } else {
            format!("{count} key(s)")
        },
    })
}

/// `list --expiring DURATION`: pending registrations whose challenge expires within
/// DURATION (already expired ones included), soonest first, paged.
fn list_expiring(args: &Args) -> Result<Output, FacadeError> {
    let d = args.expiring.as_deref().unwrap_or_default();
    let within = parse_duration(d).ok_or_else(|| {
        FacadeError::usage(format!(
            "--expiring {d:?}: expected a duration like 90m, 2h, 7d"
        ))
    })?;
    let s = ops::session(args)?;
    let mut after: Option<ExpiringCursor> = None;
    let mut count = 0u64;
    loop {
        let page = s.list_expiring_page(within, after.as_ref(), PAGE.min(MAX_PAGE))?;
        for p in &page.pending {
            count += 1;
            emit(
                args.json,
                &to_json(p),
                &format!(
                    "pending {}  passkey={}  user={}  expires_ms={}",
                    p.key_id, p.passkey_template, p.user_id, p.challenge_expires_ms
                ),
            );
        }
        match page.next_after {
            Some(c) => after = Some(c),
            None => break,
        }
    }
    Ok(Output {
        json: json!({ "expiring_within_ms": within, "count": count }),
        text: format!("{count} pending registration(s) expiring within {d}"),
    })
}

fn finding_text(f: &DriftFinding) -> String {
    format!(
        "{:<16} user={}  key={}  passkey={}  idp={}  method={}  {}{}{}",
        f.kind,
        f.user,
        f.key_id.as_deref().unwrap_or("-"),
        f.passkey_template.as_deref().unwrap_or("-"),
        f.idp_connection,
        f.method_id.as_deref().unwrap_or("-"),
        if f.fixed { "FIXED" } else { "not fixed" },
        f.error
            .as_deref()
            .map(|e| format!("  error: {e}"))
            .unwrap_or_default(),
        f.blocked_by
            .as_deref()
            .map(|b| format!("  would fail at sign-in, blocked by {b}"))
            .unwrap_or_default()
    )
}

/// `reconcile [--user U ...] [--all] [--fix] [--delete-unknown]`: one finding per line
/// as it is found (user by user), then the summary.
pub(crate) fn reconcile(args: &Args) -> Result<Output, FacadeError> {
    if args.delete_unknown && !args.fix {
        return Err(FacadeError::usage("--delete-unknown needs --fix"));
    }
    if args.users.is_empty() && !args.all {
        return Err(FacadeError::usage(
            "reconcile needs --user U (repeatable) or --all",
        ));
    }
    let s = ops::session(args)?;
    let mut users: Vec<String> = args.users.clone();
    if args.all {
        // Every user holding a key, read page by page.
        let mut after: Option<String> = None;
        loop {
            let page = s.list_keys_page(after.as_deref(), PAGE)?;
            for u in page.keys.into_iter().filter_map(|k| k.user_id) {
                if !users.contains(&u) {
                    users.push(u);
                }
            }
            match page.next_after {
                Some(a) => after = Some(a),
                None => break,
            }
        }
    }
    let (mut findings, mut fixed, mut errors) = (0u64, 0u64, 0u64);
    for u in &users {
        let report = s.reconcile(std::slice::from_ref(u), args.fix, args.delete_unknown)?;
        findings += report.findings.len() as u64;
        fixed += report.fixed;
        errors += report.errors;
        for f in &report.findings {
            emit(args.json, &to_json(f), &finding_text(f));
        }
    }
    let out = Output {
        json: json!({ "summary": {
            "users": users.len(), "findings": findings, "fixed": fixed, "errors": errors } }),
        text: format!(
            "reconcile: {} user(s), {findings} finding(s), {fixed} fixed, {errors} error(s)",
            users.len()
        ),
    };
    if errors > 0 {
        // The summary first, then the error (exit 4: the IdP failed a check or a fix).
        emit(args.json, &out.json, &out.text);
        return Err(FacadeError::new(
            ErrorKind::Idp,
            format!("{errors} finding(s) could not be checked or fixed"),
        ));
    }
    Ok(out)
}

/// The device spec for one issue row: with `--device softkey:BASE` a fresh software key
/// per row (state file `BASE.line<N>`), otherwise the operator is asked to insert the key.
fn row_device(spec: Option<&str>, r: &BulkRow) -> Result<String, String> {
    if let Some(base) = spec.and_then(|s| s.strip_prefix("softkey:")) {
        return Ok(format!("softkey:{base}.line{}", r.line));
    }
    // With the bar cleared while the operator reads the prompt and answers it.
    progress::suspended(|| {
        eprintln!(
            "\ninsert the key for {} (serial {}), press Enter, then touch it",
            r.user, r.serial
        );
        let mut line = String::new();
        match std::io::stdin().lock().read_line(&mut line) {
            Ok(0) => Err("no key inserted (standard input closed)".into()),
            Ok(_) => Ok(()),
            Err(e) => Err(format!("reading standard input: {e}")),
        }
    })?;
    ops::device_spec(spec).map_err(|e| e.message)
}

fn parse_workers(w: Option<&str>) -> Result<usize, FacadeError> {
    match w {
        Some(w) => match w.parse::<usize>() {
            Ok(n @ 1..=keysmith_facade::MAX_WORKERS) => Ok(n),
            _ => Err(FacadeError::usage(format!(
                "--workers {w:?}: expected 1 to {}",
                keysmith_facade::MAX_WORKERS
            ))),
        },
        None => Ok(1),
    }
}

/// `--rate`: a finite number of IdP calls per second, at least
/// [`keysmith_facade::MIN_RATE`] (1e-300 would wait an hour before every call).
fn parse_rate(r: Option<&str>) -> Result<Option<f64>, FacadeError> {
    match r {
        Some(r) => match r.parse::<f64>() {
            Ok(v) if v.is_finite() && v >= keysmith_facade::MIN_RATE => Ok(Some(v)),
            _ => Err(FacadeError::usage(format!(
                "--rate {r:?}: expected at least {} IdP calls per second",
                keysmith_facade::MIN_RATE
            ))
            .with_reason("rate_invalid")),
        },
        None => Ok(None),
    }
}

/// `bulk issue|revoke|reconcile FILE.csv [--resume JOB] [--workers N] [--rate PER_SEC]`
/// (issue: `--template T` for rows without a template column; reconcile: `--fix`,
/// `--delete-unknown`). FILE.csv resumes the job made from the same text while that job
/// is unfinished (a row not run yet) and otherwise makes a new job; `--resume JOB` runs
/// a recorded job again by its id, finished or not (checking its kind), failed rows
/// retried. Several runners of one job (on this station or others) share its rows.
pub(crate) fn bulk(args: &Args, kind: &str, file: Option<&str>) -> Result<Output, FacadeError> {
    if !["issue", "revoke", "reconcile"].contains(&kind) {
        return Err(FacadeError::usage(format!(
            "bulk {kind:?}: expected issue, revoke or reconcile"
        )));
    }
    let workers = parse_workers(args.workers.as_deref())?;
    let rate = parse_rate(args.rate.as_deref())?;
    if args.delete_unknown && !args.fix {
        return Err(FacadeError::usage("--delete-unknown needs --fix"));
    }
    let s = ops::session(args)?;
    let template = match &args.template {
        Some(t) => Some(ops::template_name(&s, t)?),
        None => None,
    };
    let job = match (&args.resume, file) {
        (Some(id), _) => {
            let id: i64 = id
                .parse()
                .map_err(|_| FacadeError::usage(format!("--resume {id:?}: expected a job id")))?;
            let job = s.bulk_job(id)?;
            if job.kind != kind {
                return Err(FacadeError::usage(format!(
                    "bulk job {id} is a {} job, not {kind}",
                    job.kind
                )));
            }
            job
        }
        (None, Some(f)) => {
            let text = read_csv(Path::new(f))?;
            let started = crate::args::now_ms();
            let job = s.bulk_create(kind, &text).map_err(|e| {
                if e.kind == ErrorKind::Usage {
                    // The file named, the reason (csv_invalid, ...) kept.
                    FacadeError {
                        message: format!("{f}: {}", e.message),
                        ..e
                    }
                } else {
                    e
                }
            })?;
            if job.created_ms < started {
                eprintln!(
                    "bulk {kind}: resuming unfinished job {} (recorded by {} from the same file)",
                    job.job_id, job.actor
                );
            }
            job
        }
        (None, None) => return Err(FacadeError::usage("bulk needs FILE.csv (or --resume JOB)")),
    };
    eprintln!("bulk {kind} job {}: {} row(s)", job.job_id, job.total);
    let options = BulkRunOptions {
        workers,
        rate,
        template,
        retry_failed: true,
        fix: args.fix,
        delete_unknown: args.delete_unknown,
        // The rows are printed as they run: the summary need not keep them (memory
        // flat in the rows run).
        keep_items: false,
    };
    // On a terminal: rows, rate and ETA on stderr; the row lines (stdout) are printed
    // with the bar cleared. Otherwise only the row lines, as they run.
    let bar = progress::Bar::new(job.total, std::io::stderr().is_terminal());
    let spec = args.device.clone();
    let json = args.json;
    let summary = s.bulk_run(
        job.job_id,
        &options,
        &mut |r| row_device(spec.as_deref(), r),
        &mut |p| {
            bar.suspend(|| {
                emit(
                    json,
                    &to_json(p),
                    &format!("line {}: {} {}", p.line, p.status, p.outcome),
                );
            });
            bar.update(p);
        },
    );
    drop(bar);
    let summary = summary?;
    let mut summary_json = to_json(&summary);
    if let Value::Object(m) = &mut summary_json {
        // The rows were printed as they ran (and not kept: `keep_items` is false).
        m.remove("items");
    }
    let out = Output {
        json: json!({ "summary": summary_json }),
        text: format!(
            "bulk {} job {}: {} done, {} failed of {} ({} skipped as already done); rerun with --resume {} to retry failures",
            summary.kind,
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
        return Err(FacadeError::new(
            ErrorKind::Repository,
            format!(
                "{} of {} row(s) failed; fix them and rerun with --resume {}",
                summary.failed, summary.total, summary.job_id
            ),
        ));
    }
    Ok(out)
}

fn read_csv(path: &Path) -> Result<String, FacadeError> {
    let meta = std::fs::metadata(path)
        .map_err(|e| FacadeError::usage(format!("{}: {e}", path.display())))?;
    if meta.len() > MAX_BULK_CSV_BYTES as u64 {
        return Err(FacadeError::usage(format!(
            "{}: {} bytes is more than the {MAX_BULK_CSV_BYTES} a bulk job reads",
            path.display(),
            meta.len()
        )));
    }
    std::fs::read_to_string(path)
        .map_err(|e| FacadeError::usage(format!("{}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workers_and_rates() {
        assert_eq!(parse_workers(None).unwrap(), 1);
        assert!(parse_workers(Some("0")).is_err());
        assert!(parse_workers(Some("33")).is_err());
        assert_eq!(parse_rate(Some("2.5")).unwrap(), Some(2.5));
        assert!(parse_rate(Some("-1")).is_err());
    }

    #[test]
    fn rate_has_a_lower_bound() {
        // 1e-300 used to be accepted and waited an hour before every IdP call.
        assert_eq!(parse_rate(Some("0.1")).unwrap(), Some(0.1));
        for bad in ["1e-300", "0.05", "0", "NaN", "inf", "x"] {
            let e = parse_rate(Some(bad)).unwrap_err();
            assert_eq!(e.reason, "rate_invalid", "{bad}");
            assert!(e.message.starts_with("--rate "), "{}", e.message);
        }
    }
}
