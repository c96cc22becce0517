//! The writer layer: turns events (with the fields of their enclosing spans) into text or
//! JSON lines, redacting secret-named fields and token-shaped values on the way.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::SystemTime;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

use super::roller::utc;
use super::{LogFormat, LogLevel, LogRecord, Output};

/// Longest value written for one field, in bytes; longer values are cut.
const MAX_VALUE_LEN: usize = 4096;

const REDACTED: &str = "[redacted]";

/// Field names whose values are never written.
fn is_secret_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase().replace(['-', '.'], "_");
    const EXACT: &[&str] = &[
        "pin",
        "new_pin",
        "old_pin",
        "current_pin",
        "holder_pin",
        "transport_pin",
        "password",
        "secret",
        "token",
        "authorization",
        "assertion",
        "private_key",
        "shared_secret",
        "pin_uv_auth_param",
        "pin_uv_auth_token",
        "pin_token",
        "pinuvauthtoken",
        "pinuvauthparam",
        "client_secret",
        "access_token",
        "refresh_token",
        "id_token",
    ];
    EXACT.contains(&n.as_str())
        || n.ends_with("_secret")
        || n.ends_with("_password")
        || n.ends_with("_token")
        || n.ends_with("_private_key")
}

/// Masks JWT-shaped strings (`eyJ…` with at least two dots) and `Bearer` credentials.
pub(crate) fn scrub(value: &str) -> String {
    if !value.contains("eyJ") && !value.contains("Bearer ") && !value.contains("bearer ") {
        return value.to_owned();
    }
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    loop {
        let jwt = rest.find("eyJ");
        let bearer = ["Bearer ", "bearer "]
            .iter()
            .filter_map(|b| rest.find(b).map(|i| (i, b.len())))
            .min();
        let (at, skip, replacement) = match (jwt, bearer) {
            (None, None) => break,
            (Some(j), Some((b, len))) if b < j => (b, len, "Bearer [redacted]"),
            (Some(j), _) => (j, 0, "[redacted-jwt]"),
            (None, Some((b, len))) => (b, len, "Bearer [redacted]"),
        };
        out.push_str(&rest[..at]);
        let token_start = at + skip;
        let token_len = rest[token_start..]
            .bytes()
            .take_while(|c| {
                c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b'=' | b'+' | b'/')
            })
            .count();
        if skip == 0 && token_len < 10 {
            // "eyJ" in ordinary text: keep it.
            out.push_str("eyJ");
            rest = &rest[at + 3..];
            continue;
        }
        out.push_str(replacement);
        rest = &rest[token_start + token_len..];
    }
    out.push_str(rest);
    out
}

/// One recorded field value.
#[derive(Clone, Debug)]
enum Value {
    Str(String),
    I64(i64),
    U64(u64),
    F64(f64),
    Bool(bool),
}

impl Value {
    fn text(&self, out: &mut String) {
        match self {
            Value::Str(s) => {
                let plain = !s.is_empty()
                    && s.chars()
                        .all(|c| !c.is_whitespace() && !c.is_control() && c != '"' && c != '=');
                if plain {
                    out.push_str(s);
                } else {
                    let _ = write!(out, "{s:?}");
                }
            }
            Value::I64(v) => {
                let _ = write!(out, "{v}");
            }
            Value::U64(v) => {
                let _ = write!(out, "{v}");
            }
            Value::F64(v) => {
                let _ = write!(out, "{v}");
            }
            Value::Bool(v) => {
                let _ = write!(out, "{v}");
            }
        }
    }

    fn json(&self) -> serde_json::Value {
        match self {
            Value::Str(s) => serde_json::Value::String(s.clone()),
            Value::I64(v) => (*v).into(),
            Value::U64(v) => (*v).into(),
            Value::F64(v) => serde_json::Number::from_f64(*v)
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null),
            Value::Bool(v) => (*v).into(),
        }
    }
}

/// The fields of a span or event, in the order they were recorded.
#[derive(Clone, Debug, Default)]
struct Fields {
    message: Option<String>,
    list: Vec<(&'static str, Value)>,
}

impl Fields {
    fn put(&mut self, field: &Field, value: Value) {
        let name = field.name();
        let value = if is_secret_name(name) {
            Value::Str(REDACTED.to_owned())
        } else {
            match value {
                Value::Str(s) => Value::Str(cut(scrub(&s))),
                other => other,
            }
        };
        if name == "message" {
            if let Value::Str(s) = value {
                self.message = Some(s);
                return;
            }
        }
        match self.list.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = value,
            None => self.list.push((name, value)),
        }
    }
}

fn cut(mut s: String) -> String {
    if s.len() > MAX_VALUE_LEN {
        let mut end = MAX_VALUE_LEN;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
    s
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let mut s = String::new();
        let _ = write!(s, "{value:?}");
        self.put(field, Value::Str(s));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, Value::Str(value.to_owned()));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, Value::I64(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, Value::U64(value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, Value::F64(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, Value::Bool(value));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put(field, Value::Str(value.to_string()));
    }
}

/// The layer that formats and writes records to the shared [`Output`].
pub(crate) struct OutputLayer {
    output: Arc<Output>,
}

impl OutputLayer {
    pub(crate) fn new(output: Arc<Output>) -> Self {
        OutputLayer { output }
    }
}

fn timestamp(t: SystemTime) -> String {
    let t = utc(t);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.microsecond()
    )
}

impl<S> Layer<S> for OutputLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        span.extensions_mut().insert(fields);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut ext = span.extensions_mut();
        match ext.get_mut::<Fields>() {
            Some(fields) => values.record(fields),
            None => {
                let mut fields = Fields::default();
                values.record(&mut fields);
                ext.insert(fields);
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let meta = event.metadata();
        let mut spans: Vec<(&'static str, Fields)> = Vec::new();
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                let f = span
                    .extensions()
                    .get::<Fields>()
                    .cloned()
                    .unwrap_or_default();
                spans.push((span.name(), f));
            }
        }
        let (format, hook) = {
            let out = self.output.lock();
            (out.format, out.hook.clone())
        };
        let now = timestamp(SystemTime::now());
        // The text form without time, level and target: a host logger adds its own.
        let body = || {
            let mut out = String::with_capacity(128);
            for (name, f) in &spans {
                out.push_str(name);
                out.push('{');
                for (i, (k, v)) in f.list.iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    out.push_str(k);
                    out.push('=');
                    v.text(&mut out);
                }
                out.push_str("}: ");
            }
            if let Some(m) = &fields.message {
                out.push_str(m);
            }
            for (k, v) in &fields.list {
                out.push(' ');
                out.push_str(k);
                out.push('=');
                v.text(&mut out);
            }
            out
        };
        let line = match format {
            LogFormat::Text => {
                let mut out = String::with_capacity(128);
                let _ = write!(out, "{now} {:>5} {}: ", meta.level(), meta.target());
                out.push_str(&body());
                out.push('\n');
                out
            }
            LogFormat::Json => {
                let obj = |f: &Fields| {
                    let mut m = serde_json::Map::new();
                    for (k, v) in &f.list {
                        m.insert((*k).to_owned(), v.json());
                    }
                    m
                };
                let span_list: Vec<serde_json::Value> = spans
                    .iter()
                    .map(|(name, f)| {
                        let mut m = obj(f);
                        m.insert("name".into(), (*name).into());
                        serde_json::Value::Object(m)
                    })
                    .collect();
                let record = serde_json::json!({
                    "timestamp": now,
                    "level": meta.level().as_str(),
                    "target": meta.target(),
                    "message": fields.message.clone().unwrap_or_default(),
                    "fields": serde_json::Value::Object(obj(&fields)),
                    "spans": span_list,
                });
                let mut s = record.to_string();
                s.push('\n');
                s
            }
        };
        self.output.lock().write_record(line.as_bytes());
        if let Some(hook) = hook {
            // Outside the lock: the hook may log or reconfigure.
            hook(&LogRecord {
                level: LogLevel::from(*meta.level()),
                target: meta.target(),
                message: &body(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `f` under a local (not global) subscriber with our layer writing to a file in
    /// a fresh directory, and returns what was written.
    fn capture(format: LogFormat, f: impl FnOnce()) -> String {
        use tracing_subscriber::layer::SubscriberExt;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let dir =
            std::env::temp_dir().join(format!("keysmith-format-{}-{nanos}", std::process::id()));
        let dest = crate::diagnostics::FileDestination {
            directory: dir.clone(),
            file_name_pattern: "out.log".into(),
            rotation: crate::diagnostics::Rotation::Never,
            max_files: None,
        };
        let file = crate::diagnostics::roller::RollingFile::open(&dest).unwrap();
        let output = Arc::new(Output {
            state: std::sync::Mutex::new(crate::diagnostics::OutputState {
                sink: crate::diagnostics::Sink::File(Box::new(file)),
                format,
                hook: None,
            }),
        });
        let subscriber = tracing_subscriber::registry().with(OutputLayer::new(output.clone()));
        tracing::subscriber::with_default(subscriber, f);
        output.lock().flush();
        let text = std::fs::read_to_string(dir.join("out.log")).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        text
    }

    #[test]
    fn events_carry_span_fields_and_lose_secrets() {
        let text = capture(LogFormat::Text, || {
            let span = tracing::info_span!("flow", action = "issue", serial = "SN0001");
            let _e = span.enter();
            tracing::info!(
                pin = "4711-secret",
                client_secret = "s3cr3t-value",
                status = 201u64,
                note = "token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLXZhbHVl here",
                "registered with Bearer abc.def.ghi"
            );
        });
        assert!(text.contains(" INFO lifecycle::diagnostics::format::tests: flow{action=issue serial=SN0001}: registered with Bearer [redacted]"), "{text}");
        assert!(
            text.contains("pin=[redacted] client_secret=[redacted] status=201"),
            "{text}"
        );
        assert!(
            text.contains("note=\"token [redacted-jwt] here\""),
            "{text}"
        );
        for secret in ["4711-secret", "s3cr3t-value", "eyJ", "abc.def"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert!(text.ends_with('\n') && text.lines().count() == 1, "{text}");
    }

    #[test]
    fn json_records_are_one_object_per_line() {
        let text = capture(LogFormat::Json, || {
            let span = tracing::info_span!("flow", key_id = "k1");
            let _e = span.enter();
            tracing::warn!(attempt = 2u64, ok = false, "retrying");
            tracing::debug!(access_token = "t0ken", "second");
        });
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert_eq!(lines[0]["level"], "WARN");
        assert_eq!(lines[0]["message"], "retrying");
        assert_eq!(lines[0]["fields"]["attempt"], 2);
        assert_eq!(lines[0]["fields"]["ok"], false);
        assert_eq!(lines[0]["spans"][0]["name"], "flow");
        assert_eq!(lines[0]["spans"][0]["key_id"], "k1");
        assert_eq!(lines[1]["fields"]["access_token"], "[redacted]");
        assert!(lines[0]["timestamp"].as_str().unwrap().ends_with('Z'));
    }

    #[test]
    fn secret_field_names_are_recognised() {
        for n in [
            "pin",
            "PIN",
            "new_pin",
            "client_secret",
            "client-secret",
            "access_token",
            "pin_uv_auth_param",
            "pinUvAuthToken",
            "token",
            "private_key",
        ] {
            assert!(is_secret_name(n), "{n}");
        }
        for n in [
            "pin_retries",
            "serial",
            "request_id",
            "key_id",
            "status",
            "token_lifetime_secs",
        ] {
            assert!(!is_secret_name(n), "{n}");
        }
    }

    #[test]
    fn jwts_and_bearer_credentials_are_masked() {
        let jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJraW0ifQ.c2lnbmF0dXJl";
        let s = scrub(&format!(
            "got {jwt} and Authorization: Bearer abc.DEF-123 done"
        ));
        assert_eq!(
            s,
            "got [redacted-jwt] and Authorization: Bearer [redacted] done"
        );
        assert!(!s.contains("eyJ"));
        // Short "eyJ" in ordinary text stays.
        assert_eq!(scrub("keyJar eyJ."), "keyJar eyJ.");
        assert_eq!(scrub("plain text"), "plain text");
    }

    #[test]
    fn timestamps_are_rfc3339_utc() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_micros(1_795_651_140_000_123);
        assert_eq!(timestamp(t), "2026-11-25T23:59:00.000123Z");
    }

    #[test]
    fn text_values_are_quoted_when_needed() {
        let mut out = String::new();
        Value::Str("a b".into()).text(&mut out);
        out.push(' ');
        Value::Str("SN0001".into()).text(&mut out);
        out.push(' ');
        Value::Str(String::new()).text(&mut out);
        assert_eq!(out, "\"a b\" SN0001 \"\"");
        let long = cut("x".repeat(MAX_VALUE_LEN + 10));
        assert!(long.len() <= MAX_VALUE_LEN + 3);
    }

    #[test]
    fn the_hook_gets_each_record_redacted_without_time_or_level() {
        use tracing_subscriber::layer::SubscriberExt;
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = seen.clone();
        let output = Arc::new(Output {
            state: std::sync::Mutex::new(crate::diagnostics::OutputState {
                sink: crate::diagnostics::Sink::Discard,
                format: LogFormat::Json,
                hook: Some(Arc::new(move |r: &LogRecord<'_>| {
                    sink.lock()
                        .unwrap()
                        .push((r.level, r.target.to_owned(), r.message.to_owned()))
                })),
            }),
        });
        let subscriber = tracing_subscriber::registry().with(OutputLayer::new(output));
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("issue", serial = "AB12");
            let _g = span.enter();
            tracing::warn!(target: "lifecycle::engine", pin = "1234", retries = 3, "pin refused");
        });
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1);
        let (level, target, message) = &seen[0];
        assert_eq!(
            (*level, target.as_str()),
            (LogLevel::Warn, "lifecycle::engine")
        );
        assert!(
            message.starts_with("issue{serial=AB12}: pin refused"),
            "{message}"
        );
        assert!(
            message.contains("retries=3") && !message.contains("1234"),
            "{message}"
        );
    }
}
