//! The operator commands: opening the session and the device, the key lifecycle
//! commands, and their JSON (the facade's result objects) and human output.

use std::path::Path;

use keysmith_facade::{
    Device, FacadeError, IssueParams, Key, KeyDetails, KeyFilter, Prompt, ReissueParams, Session,
    SessionConfig,
};
use serde::Serialize;
use serde_json::{json, Value};

use crate::args::{self, read_id_token, read_nonce, read_pin, Args};

/// Output of a command: a JSON value and its human rendering.
pub struct Output {
    /// For `--json`.
    pub json: Value,
    /// For humans.
    pub text: String,
}

/// A serializable result as JSON (the facade's types always serialize).
pub(crate) fn to_json<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// Opens the session from the configuration file (`--config FILE`, `KEYSMITH_CONFIG` or
/// the default path; JSON or TOML), with prompts on stderr.
pub(crate) fn session(args: &Args) -> Result<Session, FacadeError> {
    let path = args.config.as_deref().ok_or_else(|| {
        FacadeError::usage(
            "this command needs --config FILE (or KEYSMITH_CONFIG, or \
             ~/.config/keysmith/config.toml)",
        )
    })?;
    let mut cfg = SessionConfig::from_file(path)?;
    // Diagnostics were installed at start-up (with the flags applied).
    cfg.set_log(None);
    let session = Session::open_config(cfg)?;
    session.set_prompt(Box::new(prompt));
    Ok(session)
}

/// "Touch your key" and fingerprint prompts on stderr.
/// (through the bulk progress bar when one is drawn).
fn prompt(p: &Prompt) {
    use crate::progress::eprintln;
    match p {
        Prompt::TouchKey { .. } => eprintln("touch your key"),
        Prompt::EnrollFingerprint { number, of } => {
            eprintln(&format!(
                "fingerprint {number} of {of}: place a finger on the key's sensor"
            ));
        }
        Prompt::FingerprintSample {
            last_status,
            remaining,
        } => {
            let quality = if *last_status == 0 {
                "good".to_owned()
            } else {
                format!("status {last_status:#04x}, try again")
            };
            eprintln(&format!("  sample {quality}; {remaining} more to go"));
        }
        _ => {}
    }
}

/// The device spec `--device` names, else the first USB HID key, else the first NFC
/// reader with a FIDO applet.
pub(crate) fn device_spec(spec: Option<&str>) -> Result<String, FacadeError> {
    if let Some(s) = spec {
        return Ok(s.to_owned());
    }
    let list = keysmith_facade::list_devices();
    let usb = list.devices.iter().find(|d| d.transport == "usb");
    let nfc = list
        .devices
        .iter()
        .find(|d| d.transport == "nfc" && d.fido_applet == Some(true));
    usb.or(nfc).map(|d| d.device.clone()).ok_or_else(|| {
        FacadeError::device(format!(
            "no security key found (no USB FIDO key, no NFC reader with a FIDO applet){}",
            if list.unavailable.is_empty() {
                String::new()
            } else {
                format!(": {}", list.unavailable.join("; "))
            }
        ))
    })
}

/// Opens the device `--device` names (see [`device_spec`]).
pub(crate) fn open_device(args: &Args) -> Result<Device, FacadeError> {
    Device::open(&device_spec(args.device.as_deref())?)
}

/// One line per key for humans.
pub(crate) fn key_line(k: &Key) -> String {
    format!(
        "key {}  state={}  user={}  template={}  serial={}{}",
        k.key_id,
        k.state,
        k.user_id.as_deref().unwrap_or("-"),
        k.template.as_deref().unwrap_or("-"),
        k.serial,
        if k.needs_reissue {
            "  NEEDS REISSUE"
        } else {
            ""
        }
    )
}

/// `audit verify`: the whole audit log's hash chain and MACs; a record that fails is a
/// repository error (exit 5) naming its id.
fn audit_verify(args: &Args) -> Result<Output, FacadeError> {
    let check = session(args)?.audit_verify()?;
    if let (Some(id), Some(reason)) = (check.first_bad_id, check.reason.as_deref()) {
        return Err(FacadeError::new(
            keysmith_facade::ErrorKind::Repository,
            format!("audit log does not verify: record #{id}: {reason}"),
        ));
    }
    Ok(Output {
        json: to_json(&check),
        text: format!(
            "audit log verified: {} records chained and authenticated{}",
            check.records - check.unchained,
            if check.unchained > 0 {
                format!(
                    ", {} older unchained records (before schema 6)",
                    check.unchained
                )
            } else {
                String::new()
            }
        ),
    })
}

fn one_key(args: &Args) -> Result<&str, FacadeError> {
    match args.words.as_slice() {
        [.., key] if args.words.len() >= 2 => Ok(key.as_str()),
        _ => Err(FacadeError::usage(format!(
            "{} needs exactly one KEY",
            args.words.first().map(String::as_str).unwrap_or("command")
        ))),
    }
}

fn key_result(verb: &str, k: &Key) -> Output {
    Output {
        json: to_json(k),
        text: format!("{verb}: {}", key_line(k)),
    }
}

/// The template `--template T` names: a file is loaded into the session (its credential
/// template's name is returned), anything else is a loaded template's name.
pub(crate) fn template_name(session: &Session, t: &str) -> Result<String, FacadeError> {
    let path = Path::new(t);
    if path.is_file() {
        let text = std::fs::read_to_string(path)
            .map_err(|e| FacadeError::usage(format!("template {}: {e}", path.display())))?;
        let summary = session.add_template(&text).map_err(|e| FacadeError {
            message: format!("template {}: {}", path.display(), e.message),
            ..e
        })?;
        return Ok(summary.name);
    }
    Ok(t.to_owned())
}

/// Runs an operator command (everything but `demo`, `template check` and `version`).
pub fn run(args: &Args) -> Result<Output, FacadeError> {
    let words: Vec<&str> = args.words.iter().map(String::as_str).collect();
    match words.as_slice() {
        ["device", "list"] => Ok(device_list()),
        ["device", "info"] => device_info(args),
        ["device", "reset"] => device_reset(args),
        ["device", "set-pin"] => device_set_pin(args),
        ["show", _] => show(args),
        ["audit", "verify"] => audit_verify(args),
        ["store", "adopt-unauthenticated-rows"] => {
            let a = session(args)?.adopt_unauthenticated_rows()?;
            Ok(Output {
                json: to_json(&a),
                text: format!(
                    "authenticated {} pending registration(s), {} passkey(s), {} pending \
                     journal entr(y/ies); audit record #{}",
                    a.pending, a.passkeys, a.journal, a.audit_id
                ),
            })
        }
        ["audit", key] => {
            let entries = session(args)?.audit(key)?;
            let text = entries
                .iter()
                .map(|a| format!("#{} {} {} {}", a.id, a.actor, a.action, a.outcome))
                .collect::<Vec<_>>()
                .join("\n");
            Ok(Output {
                json: to_json(&entries),
                text,
            })
        }
        ["templates"] => {
            let names = session(args)?.templates();
            Ok(Output {
                json: to_json(&names),
                text: names.join("\n"),
            })
        }
        ["list"] if args.needs_reissue || args.stale.is_some() => crate::passkeys::list(args),
        ["list"] => crate::jobs::list(args),
        ["user", "passkeys", user] => crate::passkeys::user_passkeys(args, user),
        ["users", "readiness"] => crate::passkeys::readiness(args),
        ["reconcile"] => crate::jobs::reconcile(args),
        ["bulk", kind, rest @ ..] if rest.len() <= 1 => {
            crate::jobs::bulk(args, kind, rest.first().copied())
        }
        ["issue"] => issue(args),
        ["reissue", key] => {
            let s = session(args)?;
            let user = args
                .user
                .clone()
                .ok_or_else(|| FacadeError::usage("reissue needs --user U"))?;
            let device = open_device(args)?;
            let params = ReissueParams {
                user,
                serial: args.serial.clone(),
                actor: None,
            };
            Ok(key_result("reissue", &s.reissue(&device, key, &params)?))
        }
        ["idp", "check"] => idp_check(args),
        ["users", "search", prefix] => users_search(args, prefix),
        ["journal", "replay"] => journal_replay(args),
        ["repository", "check"] => {
            let version = session(args)?.check_repository()?;
            Ok(Output {
                json: json!({ "ok": true, "schema_version": version }),
                text: format!("repository ok: integrity check passed (schema version {version})"),
            })
        }
        ["activate", key] => {
            let s = session(args)?;
            let pin = read_pin(args, "holder PIN")?;
            let device = open_device(args)?;
            Ok(key_result("activate", &s.activate(&device, key, &pin)?))
        }
        ["sign-in", key] => {
            let s = session(args)?;
            let pin = read_pin(args, "PIN")?;
            let device = open_device(args)?;
            let results = s.sign_in(&device, key, &pin)?;
            let text = results
                .iter()
                .map(|r| {
                    format!(
                        "verified: passkey {} (method {}), signature counter {}",
                        r.passkey_template, r.method_id, r.sign_count
                    )
                })
                .collect::<Vec<_>>()
                .join("\n");
            Ok(Output {
                json: to_json(&results),
                text,
            })
        }
        ["self", "begin"] => {
            let start = session(args)?.self_service_begin()?;
            Ok(Output {
                json: to_json(&start),
                text: format!(
                    "nonce {} (send it in the sign-in request; good once, until {} ms)",
                    start.nonce, start.expires_at_ms
                ),
            })
        }
        ["self", "set-pin", key] => {
            let s = session(args)?;
            let nonce = read_nonce(args)?;
            let token = read_id_token(args)?;
            let pin = read_pin(args, "new PIN")?;
            let device = open_device(args)?;
            Ok(key_result(
                "self set-pin",
                &s.self_set_pin(&device, key, &token, nonce, &pin)?,
            ))
        }
        ["self", "issue"] => {
            let s = session(args)?;
            let template = args
                .template
                .as_deref()
                .ok_or_else(|| FacadeError::usage("self issue needs --template NAME"))?;
            let template = template_name(&s, template)?;
            let nonce = read_nonce(args)?;
            let token = read_id_token(args)?;
            let pin = read_pin(args, "new PIN")?;
            let device = open_device(args)?;
            let k = s.self_issue(
                &device,
                &token,
                nonce,
                &template,
                args.serial.as_deref(),
                &pin,
            )?;
            Ok(key_result("self issue", &k))
        }
        ["inactivate", key] => Ok(key_result("inactivate", &session(args)?.inactivate(key)?)),
        ["revoke", key] => Ok(key_result(
            "revoke",
            &session(args)?.revoke(key, args.force)?,
        )),
        ["retire", key] => Ok(key_result("retire", &session(args)?.retire(key)?)),
        ["unregister", key] => Ok(key_result("unregister", &session(args)?.unregister(key)?)),
        [] => Err(FacadeError::usage("no command given")),
        _ => Err(FacadeError::usage(format!(
            "unknown command or wrong operands: {}",
            args.words.join(" ")
        ))),
    }
}

fn device_list() -> Output {
    let list = keysmith_facade::list_devices();
    let mut text = String::new();
    for d in &list.devices {
        if d.transport == "usb" {
            text.push_str(&format!(
                "{}  {:04x}:{:04x}  {} {}\n",
                d.device,
                d.vendor_id.unwrap_or(0),
                d.product_id.unwrap_or(0),
                d.manufacturer.as_deref().unwrap_or(""),
                d.product.as_deref().unwrap_or("")
            ));
        } else {
            text.push_str(&format!(
                "{}  card={}  fido={}\n",
                d.device,
                d.card_present.unwrap_or(false),
                d.fido_applet.unwrap_or(false)
            ));
        }
    }
    for u in &list.unavailable {
        text.push_str(&format!("{u} (not available)\n"));
    }
    if list.devices.is_empty() {
        text.push_str("no security keys or readers found\n");
    }
    Output {
        json: to_json(&list),
        text: text.trim_end().to_owned(),
    }
}

fn device_info(args: &Args) -> Result<Output, FacadeError> {
    let info = open_device(args)?.info()?;
    let text = format!(
        "device: {}\nserial: {}\naaguid: {}\nversions: {}\nextensions: {}\noptions: {}",
        info.description,
        info.serial.as_deref().unwrap_or("-"),
        info.aaguid,
        info.versions.join(", "),
        info.extensions.join(", "),
        info.options
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    Ok(Output {
        json: to_json(&info),
        text,
    })
}

fn device_reset(args: &Args) -> Result<Output, FacadeError> {
    let spec = device_spec(args.device.as_deref())?;
    let device = Device::open(&spec)?;
    eprintln!("resetting {spec}: touch your key");
    device.reset().map_err(|e| {
        if e.reason == "reattach_required" {
            FacadeError::new(
                e.kind,
                "the key refuses reset this long after power-up: unplug it, plug it back in \
                 and run `keysmith device reset` again within 10 seconds",
            )
            .with_reason(e.reason)
        } else {
            e
        }
    })?;
    Ok(Output {
        json: json!({ "reset": true }),
        text: "the key is reset: every credential and the PIN are gone".into(),
    })
}

fn device_set_pin(args: &Args) -> Result<Output, FacadeError> {
    let device = open_device(args)?;
    let has_pin = device.has_pin()?;
    if has_pin {
        let current = read_pin(args, "current PIN")?;
        let new = read_pin(args, "new PIN")?;
        device.set_pin(Some(&current), &new)?;
    } else {
        let new = read_pin(args, "new PIN")?;
        device.set_pin(None, &new)?;
    }
    Ok(Output {
        json: json!({ "changed": has_pin, "set": true }),
        text: if has_pin {
            "PIN changed".into()
        } else {
            "PIN set".into()
        },
    })
}

/// Connectivity check of every configured IdP connection (token + one cheap read).
fn idp_check(args: &Args) -> Result<Output, FacadeError> {
    let s = session(args)?;
    let mut text = String::new();
    let mut rows = Vec::new();
    for name in s.connections() {
        let ms = s.check_connection(&name)?;
        text.push_str(&format!("{name}: ok ({ms} ms: token + one read)\n"));
        rows.push(json!({ "connection": name, "ok": true, "elapsed_ms": ms }));
    }
    if rows.is_empty() {
        return Err(FacadeError::usage("the config names no IdP connection"));
    }
    Ok(Output {
        json: json!({ "connections": rows }),
        text: text.trim_end().to_owned(),
    })
}

/// Directory search by display-name or UPN prefix, for picking the user to issue to.
fn users_search(args: &Args, prefix: &str) -> Result<Output, FacadeError> {
    let s = session(args)?;
    let connection = s
        .connections()
        .into_iter()
        .next()
        .ok_or_else(|| FacadeError::usage("the config names no IdP connection"))?;
    let users = s.search_users(&connection, prefix, 25)?;
    let mut text = String::new();
    for u in &users {
        text.push_str(&format!(
            "{}  {}  {}\n",
            u.id,
            u.user_principal_name.as_deref().unwrap_or("-"),
            u.display_name.as_deref().unwrap_or("-")
        ));
    }
    if users.is_empty() {
        text.push_str(&format!("no user of {connection} starts with {prefix:?}"));
    }
    Ok(Output {
        json: json!({ "connection": connection, "users": to_json(&users) }),
        text: text.trim_end().to_owned(),
    })
}

fn journal_replay(args: &Args) -> Result<Output, FacadeError> {
    let replayed = session(args)?.replay_journal()?;
    let mut text = replayed
        .iter()
        .map(|r| format!("#{} {} {}: {}", r.id, r.key_id, r.operation, r.outcome))
        .collect::<Vec<_>>()
        .join("\n");
    if replayed.is_empty() {
        text = "the journal is empty: nothing to replay".into();
    }
    Ok(Output {
        json: to_json(&replayed),
        text,
    })
}

/// Human rendering of [`KeyDetails`].
fn details_text(d: &KeyDetails) -> String {
    let mut text = key_line(&d.key);
    for p in &d.passkeys {
        text.push_str(&format!(
            "\n  passkey {}  state={}  idp method={}",
            p.passkey_template,
            p.state,
            p.idp_method_id.as_deref().unwrap_or("-")
        ));
    }
    for p in &d.pending {
        text.push_str(&format!(
            "\n  pending registration {}  challenge expires at {} ms",
            p.passkey_template, p.challenge_expires_ms
        ));
    }
    for a in &d.audit {
        text.push_str(&format!(
            "\n  audit #{} {} {} {}",
            a.id, a.actor, a.action, a.outcome
        ));
    }
    text
}

fn show(args: &Args) -> Result<Output, FacadeError> {
    let details = session(args)?.key(one_key(args)?)?;
    Ok(Output {
        json: to_json(&details),
        text: details_text(&details),
    })
}

fn issue(args: &Args) -> Result<Output, FacadeError> {
    let s = session(args)?;
    let template = args
        .template
        .as_deref()
        .ok_or_else(|| FacadeError::usage("issue needs --template T"))?;
    let user = args
        .user
        .clone()
        .ok_or_else(|| FacadeError::usage("issue needs --user U"))?;
    let template = template_name(&s, template)?;
    let params = IssueParams {
        template,
        user,
        serial: args.serial.clone(),
        actor: None,
    };
    let holder_pin = if args.activate {
        Some(read_pin(args, "holder PIN")?)
    } else {
        None
    };
    let device = open_device(args)?;
    let k = match holder_pin {
        Some(pin) => {
            // A template that activates at issuance sets the holder's PIN in the same
            // flow; any other is issued and then activated with the holder present, so
            // `--activate` always ends with an active key.
            let k = s.issue_and_activate(&device, &params, &pin)?;
            if k.state == "issued" {
                s.activate(&device, &k.key_id, &pin)?
            } else {
                k
            }
        }
        None => s.issue(&device, &params)?,
    };
    Ok(key_result("issue", &k))
}

/// `--expiring-before T` as Unix ms (see [`args::parse_time`]).
pub(crate) fn expiring_before(args: &Args) -> Result<Option<u64>, FacadeError> {
    Ok(match &args.expiring_before {
        Some(t) => Some(args::parse_time(t, args::now_ms())?),
        None => None,
    })
}

/// The filter of `list`, when it has one.
pub(crate) fn key_filter(args: &Args) -> Option<KeyFilter> {
    if args.user.is_none() && args.state.is_none() && args.serial.is_none() {
        return None;
    }
    Some(KeyFilter {
        user: args.user.clone(),
        state: args.state.clone(),
        serial: args.serial.clone(),
    })
}
