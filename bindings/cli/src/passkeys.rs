//! `keysmith user passkeys U`, `list --needs-reissue`, `list --stale DAYS` and
//! `users readiness` (issue 19 items 4–6, issue 13 item 12).

use std::io::Write;

use keysmith_facade::FacadeError;
use serde_json::{json, Value};

use crate::args::Args;
use crate::ops::{key_line, session, to_json, Output};

/// One JSON object per line (`--json`) or the text line.
fn emit(json: bool, value: &Value, text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = if json {
        writeln!(out, "{value}")
    } else {
        writeln!(out, "{text}")
    };
}

/// `user passkeys U`: every passkey the user holds, then the keys keysmith issued them.
pub(crate) fn user_passkeys(args: &Args, user: &str) -> Result<Output, FacadeError> {
    let up = session(args)?.user_passkeys(user)?;
    let mut text = format!(
        "user {}  id={}\n",
        up.upn.as_deref().unwrap_or(&up.user),
        up.user_id.as_deref().unwrap_or("-")
    );
    for p in &up.passkeys {
        text.push_str(&format!(
            "passkey {}  kind={}  type={}  aaguid={}  name={:?}  last_used={}  {}\n",
            p.method_id,
            p.kind,
            p.passkey_type.as_deref().unwrap_or("-"),
            p.aaguid.as_deref().unwrap_or("-"),
            p.display_name.as_deref().unwrap_or(""),
            p.last_used.as_deref().unwrap_or("-"),
            match &p.key_id {
                Some(k) => format!("issued by keysmith: key {k}"),
                None => "not issued by keysmith".to_owned(),
            }
        ));
    }
    for k in &up.keys {
        text.push_str(&key_line(k));
        text.push('\n');
    }
    for f in &up.failed {
        text.push_str(&format!("{}: not checked: {}\n", f.connection, f.error));
    }
    Ok(Output {
        json: to_json(&up),
        text: text.trim_end().to_owned(),
    })
}

/// `list --needs-reissue` / `list --stale DAYS`: one object per key, then the count.
pub(crate) fn list(args: &Args) -> Result<Output, FacadeError> {
    let s = session(args)?;
    let mut count = 0u64;
    if let Some(days) = &args.stale {
        let days: u32 = days.parse().map_err(|_| {
            FacadeError::usage(format!("--stale {days:?}: expected a number of days"))
        })?;
        for e in s.stale_keys(days)? {
            if args.needs_reissue && !e.key.needs_reissue {
                continue;
            }
            count += 1;
            let used = e
                .last_used_ms
                .map_or_else(|| "never".to_owned(), |t| t.to_string());
            emit(
                args.json,
                &to_json(&e),
                &format!("{}  last_used_ms={used}", key_line(&e.key)),
            );
        }
    } else {
        for e in s.keys_needing_reissue()? {
            count += 1;
            emit(
                args.json,
                &to_json(&e),
                &format!(
                    "{}  reason={}",
                    key_line(&e.key),
                    e.reason.as_deref().unwrap_or("-")
                ),
            );
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

/// `users readiness [--group G] [--csv FILE]`: users with no phishing-resistant method;
/// `--csv` writes them as bulk issue input (serials to fill in).
pub(crate) fn readiness(args: &Args) -> Result<Output, FacadeError> {
    let r = session(args)?.sms_readiness(None, args.group.as_deref())?;
    if let Some(path) = &args.csv {
        std::fs::write(path, &r.issue_csv).map_err(|e| {
            FacadeError::usage(format!("--csv {}: cannot write: {e}", path.display()))
        })?;
    }
    let mut text = format!(
        "{} of {} user(s) in {} have no phishing-resistant method\n",
        r.not_ready.len(),
        r.checked,
        r.group.as_deref().unwrap_or("the directory")
    );
    for u in &r.not_ready {
        text.push_str(&format!(
            "not ready {}  {}  {:?}  methods={}\n",
            u.id,
            u.upn.as_deref().unwrap_or("-"),
            u.display_name.as_deref().unwrap_or(""),
            u.methods.join(",")
        ));
    }
    for u in &r.guests {
        text.push_str(&format!(
            "refused {}  {}: {}\n",
            u.id,
            u.upn.as_deref().unwrap_or("-"),
            r.guest_reason
        ));
    }
    for f in &r.failed {
        text.push_str(&format!("not checked {}: {}\n", f.user_id, f.error));
    }
    Ok(Output {
        json: to_json(&r),
        text: text.trim_end().to_owned(),
    })
}
