//! Every JSON document that crosses the C ABI has a JSON Schema in `docs/schemas/`, and the
//! documents the library really produces (and takes) validate against it (issue 17 item 4).
//!
//! - [`every_json_document_of_the_header_has_a_schema`] reads `include/keysmith.h`: every
//!   function or callback parameter whose name ends in `json` must be in [`DOCS`] (the
//!   document's schema name) and its schema file must exist; an entry for a parameter the
//!   header no longer has fails too. A new C function returning JSON without a schema fails
//!   here.
//! - [`real_payloads_validate_against_the_schemas`] drives the C ABI (these very
//!   `extern "C"` functions, called from Rust) against the Entra emulator and software keys:
//!   issuance, self-service, reconciliation, bulk jobs, the reports (a stale key and a
//!   replayed journal entry among them, see `aged`), both split halves. Every
//!   document in or out is recorded as `NAME<TAB>JSON` and `scripts/validate-schemas.py`
//!   validates each against `docs/schemas/NAME.schema.json` (python `jsonschema`), checks
//!   that every schema of [`DOCS`] saw at least one real document, and that renaming a
//!   field of each document makes it invalid (the schemas are closed). Without a Python
//!   with `jsonschema` the validation is skipped with a message, and fails under `CI=true`.

mod abi;
mod aged;
mod split_flow;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use entra_graph::emulator::{Emulator, EmulatorConfig, HolderTokenOptions};
use keysmith_testkit::{idp_config, softkey_spec, TempDir, ADELE, KIM, MEGAN, STANDARD_TEMPLATE};

use abi::{Docs, Session};

/// Every JSON parameter of the header: (function or callback type, parameter, schema name).
const DOCS: &[(&str, &str, &str)] = &[
    ("ks_prompt_fn", "prompt_json", "prompt"),
    ("ks_bulk_device_fn", "row_json", "bulk-row"),
    ("ks_bulk_progress_fn", "progress_json", "bulk-progress"),
    ("ks_last_error_json", "error_json", "error"),
    ("ks_log_configure", "json", "log-config"),
    ("ks_session_open", "config_json", "session-config"),
    ("ks_template_add", "out_json", "template-summary"),
    ("ks_template_list", "out_json", "template-list"),
    ("ks_template_check", "out_json", "template-summary"),
    ("ks_user_search", "out_json", "user-list"),
    ("ks_journal_replay", "out_json", "journal-replay"),
    ("ks_audit_verify", "out_json", "audit-check"),
    ("ks_user_passkeys", "out_json", "user-passkeys"),
    (
        "ks_key_list_needs_reissue",
        "out_json",
        "key-needs-reissue-list",
    ),
    ("ks_key_list_stale", "out_json", "key-stale-list"),
    ("ks_user_readiness", "out_json", "user-readiness"),
    ("ks_device_list", "out_json", "device-list"),
    ("ks_device_info", "out_json", "device-info"),
    ("ks_key_issue", "params_json", "issue-params"),
    ("ks_key_issue", "out_json", "key"),
    ("ks_key_issue_and_activate", "params_json", "issue-params"),
    ("ks_key_issue_and_activate", "out_json", "key"),
    ("ks_key_activate", "out_json", "key"),
    ("ks_key_inactivate", "out_json", "key"),
    ("ks_key_revoke", "out_json", "key"),
    ("ks_key_retire", "out_json", "key"),
    ("ks_key_unregister", "out_json", "key"),
    ("ks_key_reissue", "params_json", "reissue-params"),
    ("ks_key_reissue", "out_json", "key"),
    ("ks_key_sign_in", "out_json", "sign-in"),
    ("ks_self_service_begin", "out_json", "self-service-start"),
    ("ks_key_self_issue", "out_json", "key"),
    ("ks_key_self_set_pin", "out_json", "key"),
    ("ks_key_get", "out_json", "key-record"),
    ("ks_key_list", "filter_json", "key-filter"),
    ("ks_key_list", "out_json", "key-list"),
    ("ks_key_list_page", "page_json", "key-list-page"),
    ("ks_key_audit", "out_json", "audit"),
    ("ks_device_half_open", "config_json", "device-half-config"),
    ("ks_device_half_agent", "out_json", "device-half-agent"),
    (
        "ks_device_half_request",
        "request_json",
        "device-half-request",
    ),
    (
        "ks_device_half_receive",
        "out_event_json",
        "device-half-event",
    ),
    (
        "ks_device_half_holder_graph_result",
        "result_json",
        "device-half-holder-graph-result",
    ),
    ("ks_server_half_open", "config_json", "server-half-config"),
    (
        "ks_server_half_work_queue",
        "request_json",
        "station-work-request",
    ),
    ("ks_server_half_work_get", "out_json", "station-work"),
    ("ks_wire_describe", "out_json", "wire-message"),
    ("ks_drift_reconcile", "request_json", "reconcile-request"),
    ("ks_drift_reconcile", "report_json", "reconcile-report"),
    ("ks_bulk_create", "job_json", "bulk-job"),
    ("ks_bulk_run", "options_json", "bulk-run-options"),
    ("ks_bulk_run", "summary_json", "bulk-summary"),
    (
        "ks_pending_list_expiring_page",
        "after_json",
        "pending-cursor",
    ),
    ("ks_pending_list_expiring_page", "page_json", "pending-page"),
];

/// Schemas of documents that are not a `*json` parameter: the log callback's record (a C
/// struct whose JSON form the C example prints).
const OTHER_SCHEMAS: &[&str] = &["log-record"];

/// The holder PIN the flows set.
const PIN: &str = "holder-pin-2468";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn schema_dir() -> PathBuf {
    repo_root().join("docs/schemas")
}

/// `(function or callback type, parameter)` for every parameter of the header whose name
/// ends in `json`.
fn header_json_params() -> BTreeSet<(String, String)> {
    let header =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("include/keysmith.h"))
            .expect("keysmith.h");
    // Comments out, then one declaration per `;`.
    let mut code = String::new();
    let mut rest = header.as_str();
    while let Some(i) = rest.find("/*") {
        code.push_str(&rest[..i]);
        rest = rest[i..].find("*/").map_or("", |j| &rest[i + j + 2..]);
    }
    code.push_str(rest);
    let code: String = code
        .lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join(" ");
    let mut found = BTreeSet::new();
    for decl in code.split(';') {
        let decl = decl.trim();
        let Some(open) = decl.find('(') else { continue };
        // `typedef ... (*ks_x_fn)(params)` or `... ks_x(params)`.
        let (name, params) = if decl.starts_with("typedef") {
            let Some(star) = decl.find("(*") else {
                continue;
            };
            let name_end = decl[star..].find(')').map(|j| star + j);
            let Some(name_end) = name_end else { continue };
            let name = decl[star + 2..name_end].trim();
            let params = &decl[name_end + 1..];
            (name, params)
        } else {
            let name = decl[..open]
                .rsplit(|c: char| !(c.is_alphanumeric() || c == '_'))
                .next()
                .unwrap_or("");
            (name, &decl[open..])
        };
        if !name.starts_with("ks_") {
            continue;
        }
        let params = params.trim().trim_start_matches('(').trim_end_matches(')');
        for p in params.split(',') {
            let pname = p
                .trim()
                .rsplit(|c: char| !(c.is_alphanumeric() || c == '_'))
                .next()
                .unwrap_or("");
            if pname.ends_with("json") {
                found.insert((name.to_owned(), pname.to_owned()));
            }
        }
    }
    found
}

#[test]
fn every_json_document_of_the_header_has_a_schema() {
    let header = header_json_params();
    assert!(
        header.len() > 40,
        "the header parser found too little: {header:?}"
    );
    let table: BTreeSet<(String, String)> = DOCS
        .iter()
        .map(|(f, p, _)| ((*f).to_owned(), (*p).to_owned()))
        .collect();
    let missing: Vec<_> = header.difference(&table).collect();
    assert!(
        missing.is_empty(),
        "C functions with a JSON parameter and no schema (add one to docs/schemas/ and to \
         DOCS in bindings/c/tests/schemas/main.rs): {missing:?}"
    );
    let stale: Vec<_> = table.difference(&header).collect();
    assert!(
        stale.is_empty(),
        "DOCS names parameters the header does not have: {stale:?}"
    );
    let mut named: BTreeSet<&str> = DOCS.iter().map(|(_, _, s)| *s).collect();
    named.extend(OTHER_SCHEMAS);
    for s in &named {
        let path = schema_dir().join(format!("{s}.schema.json"));
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let schema: serde_json::Value = serde_json::from_str(&text).expect("schema JSON");
        assert_eq!(
            schema["$id"],
            format!("https://keysmith.invalid/schemas/{s}.schema.json"),
            "{s}"
        );
    }
    // No schema file that nothing refers to.
    for entry in std::fs::read_dir(schema_dir()).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        let stem = name.strip_suffix(".schema.json").unwrap_or(&name);
        assert!(
            named.contains(stem),
            "docs/schemas/{name}: no C document uses it"
        );
    }
}

/// The self-service credential template (holder sign-in at the emulator).
fn self_service_template(emulator: &Emulator) -> String {
    format!(
        r#"
[passkey.entra]
idp = {{ connection = "contoso-entra", kind = "entra", graph_api_version = "beta" }}
display_name = "{{displayName}} {{serial}}"
rp_id = "login.microsoft.com"
challenge_timeout_minutes = 60

[credential]
name = "schema-self"
passkey_templates = ["entra"]
user_assignment = {{ directory = "contoso-entra" }}

[credential.self_service]
pin_set_allowed = true
self_issuance_allowed = true
oidc = {{ issuer = "{issuer}", audience = "keysmith-self-service", jwks_url = "{jwks}" }}
"#,
        issuer = emulator.oidc_issuer(),
        jwks = emulator.jwks_url(),
    )
}

/// The holder's ID token for `user` at `audience`, carrying `nonce`.
fn holder_token(emulator: &Emulator, user: &str, audience: &str, nonce: &str) -> String {
    emulator
        .holder_token_with(&HolderTokenOptions::new(user, audience).nonce(nonce.to_owned()))
        .expect("holder token")
}

/// A Python interpreter with `jsonschema`: `$KEYSMITH_SCHEMA_PYTHON`, then
/// `target/schema-venv/bin/python` (made by `.ci/run`), then `python3`.
fn schema_python() -> Option<PathBuf> {
    let mut candidates: Vec<PathBuf> = std::env::var_os("KEYSMITH_SCHEMA_PYTHON")
        .map(PathBuf::from)
        .into_iter()
        .collect();
    candidates.push(repo_root().join("target/schema-venv/bin/python"));
    candidates.push(PathBuf::from("python3"));
    candidates.into_iter().find(|p| {
        Command::new(p)
            .args(["-c", "import jsonschema, referencing"])
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

#[test]
fn real_payloads_validate_against_the_schemas() {
    let dir = TempDir::new("c-abi-schemas");
    let emulator = Emulator::start(EmulatorConfig::default()).expect("emulator");
    let mut docs = Docs::default();
    abi::configure_logging(
        &mut docs,
        r#"{"level":"warn","directives":"lifecycle=info","format":"json","destination":{"kind":"none"}}"#,
    );
    let config = serde_json::json!({
        "repository": {"sqlite": dir.join("keysmith.db")},
        "pin_key": "07".repeat(32),
        "station": "schema-check",
        "idp": [idp_config(&emulator)],
        "templates": [STANDARD_TEMPLATE],
        "allow_software_keys": true,
    })
    .to_string();
    let session = Session::open(&mut docs, &config);
    one_key_flows(&mut docs, &session, &emulator, &dir);
    jobs_and_reports(&mut docs, &session, &emulator, &dir);
    aged::stale_key_and_journal_replay(&mut docs, &session, &emulator, &dir);
    split_flow::station_and_holder(&mut docs, &session, &emulator, &dir);
    docs.take_callbacks();

    // Every document is JSON on one line; every schema of DOCS saw one.
    let seen: BTreeSet<&str> = docs.lines.iter().map(|(n, _)| n.as_str()).collect();
    let unexercised: Vec<&str> = DOCS
        .iter()
        .map(|(_, _, s)| *s)
        .filter(|s| !seen.contains(s))
        .collect();
    assert!(
        unexercised.is_empty(),
        "no real document for: {unexercised:?}"
    );
    let tsv = dir.join("payloads.tsv");
    std::fs::write(
        &tsv,
        docs.lines
            .iter()
            .map(|(n, j)| format!("{n}\t{j}\n"))
            .collect::<String>(),
    )
    .unwrap();
    // KEYSMITH_SCHEMA_PAYLOADS=FILE keeps a copy of the documents (to look at them).
    if let Some(keep) = std::env::var_os("KEYSMITH_SCHEMA_PAYLOADS") {
        std::fs::copy(&tsv, keep).expect("copy the payloads");
    }
    let Some(python) = schema_python() else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but no Python with jsonschema (.ci/run makes target/schema-venv)"
        );
        eprintln!(
            "SKIPPED: schema validation (no Python with jsonschema; set \
             KEYSMITH_SCHEMA_PYTHON); {} documents recorded",
            docs.lines.len()
        );
        return;
    };
    let out = Command::new(&python)
        .arg(repo_root().join("scripts/validate-schemas.py"))
        .arg("--renamed-fields-fail")
        .arg(schema_dir())
        .arg(&tsv)
        .output()
        .expect("run validate-schemas.py");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "schema validation failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One key's life, self-service, and the calls that report on keys.
fn one_key_flows(docs: &mut Docs, s: &Session, emulator: &Emulator, dir: &Path) {
    let self_template = self_service_template(emulator);
    s.json(docs, "template-summary", |o| {
        abi::template_check(STANDARD_TEMPLATE, o)
    });
    s.json(docs, "template-summary", |o| {
        s.template_add(&self_template, o)
    });
    s.json(docs, "template-list", |o| s.template_list(o));
    s.json(docs, "user-list", |o| {
        s.user_search("contoso-entra", "a", 5, o)
    });
    s.json(docs, "device-list", abi::device_list);

    let a = abi::Device::open(&softkey_spec(dir, "a.json"));
    s.json(docs, "device-info", |o| a.info(o));
    let params = format!(r#"{{"template":"test-standard","user":"{KIM}","actor":"schemas"}}"#);
    docs.add("issue-params", &params);
    let key = s.json(docs, "key", |o| s.issue(&a, &params, o));
    let key_id = key["key_id"].as_str().unwrap().to_owned();
    assert_eq!(key["state"], "issued", "{key}");
    s.json(docs, "key", |o| s.activate(&a, &key_id, PIN, o));
    let signed = s.json(docs, "sign-in", |o| s.sign_in(&a, &key_id, PIN, o));
    s.json(docs, "key-record", |o| s.key_get(&key_id, o));
    let filter = r#"{"state":"active","user":null}"#;
    docs.add("key-filter", filter);
    s.json(docs, "key-list", |o| s.key_list(Some(filter), o));
    s.json(docs, "key-list-page", |o| s.key_list_page(None, 10, o));
    s.json(docs, "audit", |o| s.key_audit(&key_id, o));

    // Drift: the passkey deleted at the IdP behind keysmith's back, and one nobody issued.
    let method_id = signed[0]["method_id"].as_str().unwrap().to_owned();
    keysmith_testkit::graph_client(emulator)
        .delete_method(KIM, &method_id)
        .expect("delete at the IdP");
    emulator.seed_methods(KIM, 1);
    let request = format!(r#"{{"users":["{KIM}"],"fix":true,"delete_unknown":false}}"#);
    docs.add("reconcile-request", &request);
    let report = s.json(docs, "reconcile-report", |o| s.reconcile(Some(&request), o));
    assert!(
        report["findings"].as_array().is_some_and(|f| !f.is_empty()),
        "{report}"
    );
    let marked = s.json(docs, "key-needs-reissue-list", |o| s.needs_reissue(o));
    assert!(marked.as_array().is_some_and(|m| !m.is_empty()), "{marked}");
    s.json(docs, "key-stale-list", |o| s.stale(1, o));
    let passkeys = s.json(docs, "user-passkeys", |o| s.user_passkeys(KIM, o));
    assert!(
        passkeys["passkeys"]
            .as_array()
            .is_some_and(|p| !p.is_empty()),
        "{passkeys}"
    );
    s.json(docs, "user-readiness", |o| s.readiness(None, None, o));
    let reissue = format!(r#"{{"user":"{KIM}","actor":"schemas"}}"#);
    docs.add("reissue-params", &reissue);
    s.json(docs, "key", |o| s.reissue(&a, &key_id, &reissue, o));

    // Self-service issuance and PIN set with the holder's sign-in.
    let b = abi::Device::open(&softkey_spec(dir, "b.json"));
    let start = s.json(docs, "self-service-start", |o| s.self_service_begin(o));
    let nonce = start["nonce"].as_str().unwrap().to_owned();
    let token = holder_token(emulator, KIM, "keysmith-self-service", &nonce);
    let key = s.json(docs, "key", |o| {
        s.self_issue(&b, &token, &nonce, "schema-self", PIN, o)
    });
    assert_eq!(key["state"], "active", "{key}");
    // A key issued centrally, activated by its holder setting the PIN.
    let b2 = abi::Device::open(&softkey_spec(dir, "b2.json"));
    let params = format!(r#"{{"template":"schema-self","user":"{KIM}"}}"#);
    let key = s.json(docs, "key", |o| s.issue(&b2, &params, o));
    let issued = key["key_id"].as_str().unwrap().to_owned();
    let start = s.json(docs, "self-service-start", |o| s.self_service_begin(o));
    let nonce = start["nonce"].as_str().unwrap().to_owned();
    let token = holder_token(emulator, KIM, "keysmith-self-service", &nonce);
    let key = s.json(docs, "key", |o| {
        s.self_set_pin(&b2, &issued, &token, &nonce, "holder-pin-9753", o)
    });
    assert_eq!(key["state"], "active", "{key}");

    // The rest of a key's life.
    let d = abi::Device::open(&softkey_spec(dir, "d.json"));
    let params = format!(r#"{{"template":"test-standard","user":"{ADELE}"}}"#);
    docs.add("issue-params", &params);
    let key = s.json(docs, "key", |o| s.issue_and_activate(&d, &params, PIN, o));
    let d_key = key["key_id"].as_str().unwrap().to_owned();
    if key["state"] == "issued" {
        // A template that does not activate at issuance: the holder's PIN is set.
        s.json(docs, "key", |o| s.activate(&d, &d_key, PIN, o));
    }
    s.json(docs, "key", |o| s.inactivate(&d_key, o));
    s.json(docs, "key", |o| s.revoke(&d_key, false, o));
    s.json(docs, "key", |o| s.retire(&d_key, o));
    s.json(docs, "key", |o| s.unregister(&d_key, o));
    s.json(docs, "audit-check", |o| s.audit_verify(o));
    s.json(docs, "journal-replay", |o| s.journal_replay(o));
    s.expect_error(docs, |o| s.key_get("no-such-key", o));
}

/// A bulk issue job, the expiring registrations page by page.
fn jobs_and_reports(docs: &mut Docs, s: &Session, _emulator: &Emulator, dir: &Path) {
    // The bulk row's key: its serial is what the CSV names.
    let e_spec = softkey_spec(dir, "e.json");
    let e = abi::Device::open(&e_spec);
    let info = s.json(docs, "device-info", |o| e.info(o));
    // The key's own serial when it reports one, else one the row names.
    let serial = info["serial"].as_str().unwrap_or("SN-BULK-1").to_owned();
    drop(e);
    let csv = format!("user,serial\n{MEGAN},{serial}\n");
    let job = s.json(docs, "bulk-job", |o| s.bulk_create("issue", &csv, o));
    let options = r#"{"workers":1,"rate":null,"template":"test-standard","retry_failed":true}"#;
    docs.add("bulk-run-options", options);
    let summary = s.json(docs, "bulk-summary", |o| {
        s.bulk_run(job["job_id"].as_i64().unwrap(), Some(options), &e_spec, o)
    });
    assert_eq!(summary["done"], 1, "{summary}");

    // A second pending registration, so that the first page of one has a cursor.
    let f = abi::Device::open(&softkey_spec(dir, "f.json"));
    let params = format!(r#"{{"template":"test-standard","user":"{ADELE}"}}"#);
    s.json(docs, "key", |o| s.issue(&f, &params, o));
    let week = 7 * 24 * 3600 * 1000;
    let page = s.json(docs, "pending-page", |o| s.expiring_page(week, None, 1, o));
    let cursor = page["next_after"].to_string();
    assert!(page["next_after"].is_object(), "{page}");
    docs.add("pending-cursor", &cursor);
    s.json(docs, "pending-page", |o| {
        s.expiring_page(week, Some(&cursor), 10, o)
    });
}
