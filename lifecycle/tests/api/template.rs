//! Template loading and both validation stages: every rule with its field and message.

use std::collections::BTreeMap;
use std::path::Path;

use lifecycle::template::{
    render_display_name, DeviceFacts, DeviceOptions, Format, GraphApiVersion, KeyTransport,
    OidcConfig, Problem, TemplateError, TemplateSet,
};

const TOML: &str = include_str!("../../templates/entra-standard.toml");
const JSON: &str = include_str!("../../templates/entra-standard.json");

fn base() -> TemplateSet {
    TemplateSet::from_toml_str(TOML).expect("example template is valid")
}

fn problems(set: &TemplateSet) -> Vec<Problem> {
    match set.validate() {
        Ok(()) => Vec::new(),
        Err(TemplateError::Invalid(p)) => p,
        Err(other) => panic!("expected Invalid, got {other:?}"),
    }
}

fn one(field: &str, message: &str) -> Vec<Problem> {
    vec![Problem::new(field, message)]
}

fn entra(set: &mut TemplateSet) -> &mut lifecycle::template::PasskeyTemplate {
    set.passkey
        .get_mut("entra")
        .expect("entra passkey template")
}

const TIMEOUT: &str = "passkey.entra.challenge_timeout_minutes";

// ---- loading ----

#[test]
fn toml_and_json_examples_parse_equal() {
    let t = base();
    let j = TemplateSet::from_json_str(JSON).expect("JSON example is valid");
    assert_eq!(t, j);
    assert_eq!(t.passkey["entra"].name, "entra");
    assert_eq!(t.passkey["entra"].challenge_timeout(), 1440);
    assert_eq!(
        t.passkey["entra"].idp.graph_api_version,
        GraphApiVersion::Beta
    );
    // And JSON written back reads back the same.
    assert_eq!(TemplateSet::from_json_str(&t.to_json_string()), Ok(t));
}

#[test]
fn load_picks_format_by_extension() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
    let t = TemplateSet::load(&dir.join("entra-standard.toml")).unwrap();
    let j = TemplateSet::load(&dir.join("entra-standard.json")).unwrap();
    assert_eq!(t, j);
    assert!(matches!(
        TemplateSet::load(&dir.join("entra-standard.yaml")),
        Err(TemplateError::UnknownFormat { .. })
    ));
    assert!(matches!(
        TemplateSet::load(&dir.join("missing.toml")),
        Err(TemplateError::Io { .. })
    ));
}

#[test]
fn unknown_toml_field_is_named_with_position() {
    let text = TOML.replace("always_uv = true", "always_uv = true\ncolour = \"blue\"");
    let line = text.lines().position(|l| l.starts_with("colour")).unwrap() + 1;
    let err = TemplateSet::from_toml_str(&text).unwrap_err();
    assert_eq!(
        err,
        TemplateError::UnknownField {
            format: Format::Toml,
            field: "colour".into(),
            path: "credential.fido2.colour".into(),
            line: Some(line),
            column: Some(1),
        }
    );
    assert_eq!(
        err.to_string(),
        format!("TOML template: unknown field `credential.fido2.colour` at line {line}, column 1")
    );
}

#[test]
fn unknown_json_field_is_named() {
    let text = JSON.replace(
        "\"always_uv\": true,",
        "\"always_uv\": true, \"colour\": 1,",
    );
    match TemplateSet::from_json_str(&text).unwrap_err() {
        TemplateError::UnknownField {
            format,
            field,
            line,
            ..
        } => {
            assert_eq!(format, Format::Json);
            assert_eq!(field, "colour");
            let expect = text.lines().position(|l| l.contains("colour")).unwrap() + 1;
            assert_eq!(line, Some(expect));
        }
        other => panic!("expected UnknownField, got {other:?}"),
    }
}

#[test]
fn unknown_field_in_inline_table_and_top_level() {
    let text = TOML.replace("kind = \"entra\",", "kind = \"entra\", tenant = \"x\",");
    match TemplateSet::from_toml_str(&text).unwrap_err() {
        TemplateError::UnknownField { path, .. } => assert_eq!(path, "passkey.entra.idp.tenant"),
        other => panic!("expected UnknownField, got {other:?}"),
    }
    let text = format!("version = 2\n{TOML}");
    match TemplateSet::from_toml_str(&text).unwrap_err() {
        TemplateError::UnknownField {
            path, line, column, ..
        } => {
            assert_eq!(path, "version");
            assert_eq!((line, column), (Some(1), Some(1)));
        }
        other => panic!("expected UnknownField, got {other:?}"),
    }
}

#[test]
fn trailing_json_is_refused() {
    let text = format!("{JSON} {{}}");
    assert!(matches!(
        TemplateSet::from_json_str(&text),
        Err(TemplateError::Parse {
            format: Format::Json,
            line: Some(_),
            ..
        })
    ));
}

#[test]
fn toml_syntax_error_has_line_and_column() {
    let text = "[credential]\nname = \"x\"\npasskey_templates = [\"a\"\n";
    match TemplateSet::from_toml_str(text).unwrap_err() {
        TemplateError::Parse {
            format,
            line,
            column,
            message,
        } => {
            assert_eq!(format, Format::Toml);
            assert_eq!(line, Some(3));
            assert!(column.is_some());
            assert!(!message.is_empty());
        }
        other => panic!("expected Parse, got {other:?}"),
    }
}

#[test]
fn json_syntax_error_has_line_and_column() {
    let text = "{\n  \"passkey\": {},\n  \"credential\": ,\n}";
    match TemplateSet::from_json_str(text).unwrap_err() {
        TemplateError::Parse {
            format,
            line,
            column,
            message,
        } => {
            assert_eq!(format, Format::Json);
            assert_eq!(line, Some(3));
            assert_eq!(column, Some(17));
            assert!(!message.contains("at line"), "{message}");
        }
        other => panic!("expected Parse, got {other:?}"),
    }
}

#[test]
fn wrong_type_is_a_parse_error_not_a_panic() {
    let text = TOML.replace("min_pin_length = 8", "min_pin_length = \"eight\"");
    assert!(matches!(
        TemplateSet::from_toml_str(&text),
        Err(TemplateError::Parse { line: Some(_), .. })
    ));
}

#[test]
fn defaults_apply_when_omitted() {
    let text = r#"
[passkey.p]
idp = { connection = "c" }
display_name = "{userPrincipalName}"
[credential]
name = "minimal"
passkey_templates = ["p"]
user_assignment = { directory = "c" }
"#;
    let t = TemplateSet::from_toml_str(text).unwrap();
    let p = &t.passkey["p"];
    assert_eq!(p.idp.graph_api_version, GraphApiVersion::V1_0);
    assert_eq!(p.challenge_timeout(), 5);
    assert!(p.force_discoverable);
    assert!(t.credential.fido2.pin_required);
    assert!(t.credential.lifecycle.update_idp_on_issue);
    assert!(!t.credential.lifecycle.force_idp_deletion_on_revoke);
    assert!(!t.credential.self_service.any_allowed());
}

// ---- stage 1: the template on its own ----

#[test]
fn example_has_no_problems() {
    assert_eq!(problems(&base()), vec![]);
}

#[test]
fn challenge_timeout_below_range() {
    let mut t = base();
    entra(&mut t).challenge_timeout_minutes = Some(4);
    assert_eq!(
        problems(&t),
        one(
            TIMEOUT,
            "challenge timeout must be between 5 and 43200 minutes (30 days), got 4"
        )
    );
}

#[test]
fn challenge_timeout_above_range() {
    let mut t = base();
    entra(&mut t).challenge_timeout_minutes = Some(43_201);
    assert_eq!(
        problems(&t),
        one(
            TIMEOUT,
            "challenge timeout must be between 5 and 43200 minutes (30 days), got 43201"
        )
    );
}

#[test]
fn challenge_timeout_bounds_are_accepted() {
    let mut t = base();
    entra(&mut t).challenge_timeout_minutes = Some(43_200);
    assert_eq!(problems(&t), vec![]);
    entra(&mut t).challenge_timeout_minutes = Some(5);
    entra(&mut t).idp.graph_api_version = GraphApiVersion::V1_0;
    assert_eq!(problems(&t), vec![]);
    entra(&mut t).challenge_timeout_minutes = None;
    assert_eq!(problems(&t), vec![]);
}

#[test]
fn challenge_timeout_above_five_needs_beta() {
    let mut t = base();
    entra(&mut t).idp.graph_api_version = GraphApiVersion::V1_0;
    entra(&mut t).challenge_timeout_minutes = Some(6);
    assert_eq!(
        problems(&t),
        one(
            TIMEOUT,
            "a challenge timeout above 5 minutes needs the Graph beta endpoint; idp.graph_api_version is v1.0 (got 6 minutes)"
        )
    );
}

#[test]
fn static_display_name_over_thirty_is_refused_unless_truncated() {
    let mut t = base();
    entra(&mut t).display_name = "Contoso corporate security key".to_owned() + "!"; // 31
    entra(&mut t).truncate_display_name = false;
    assert_eq!(
        problems(&t),
        one(
            "passkey.entra.display_name",
            "static display name is 31 characters; the IdP allows at most 30 (shorten it or set truncate_display_name)"
        )
    );
    entra(&mut t).truncate_display_name = true;
    assert_eq!(problems(&t), vec![]);
}

#[test]
fn display_name_counts_characters_not_bytes() {
    let mut t = base();
    entra(&mut t).display_name = "é".repeat(30);
    entra(&mut t).truncate_display_name = false;
    assert_eq!(problems(&t), vec![]);
}

#[test]
fn display_name_unknown_placeholder() {
    let mut t = base();
    entra(&mut t).display_name = "{nickname}".into();
    assert_eq!(
        problems(&t),
        one(
            "passkey.entra.display_name",
            "unknown placeholder {nickname} in display name; known: {displayName}, {userPrincipalName}, {givenName}, {surname}, {mail}, {employeeId}, {serial}"
        )
    );
}

#[test]
fn display_name_unbalanced_and_empty() {
    let mut t = base();
    entra(&mut t).display_name = "{serial".into();
    assert_eq!(
        problems(&t),
        one(
            "passkey.entra.display_name",
            "unclosed `{` in display name pattern (write `{{` for a literal brace)"
        )
    );
    entra(&mut t).display_name = "  ".into();
    assert_eq!(
        problems(&t),
        one(
            "passkey.entra.display_name",
            "display name must not be empty"
        )
    );
}

#[test]
fn force_discoverable_and_pin_required_cannot_be_off() {
    let mut t = base();
    entra(&mut t).force_discoverable = false;
    t.credential.fido2.pin_required = false;
    assert_eq!(
        problems(&t),
        vec![
            Problem::new(
                "credential.fido2.pin_required",
                "a FIDO2 PIN is always required; this option cannot be turned off"
            ),
            Problem::new(
                "passkey.entra.force_discoverable",
                "discoverable credentials are always made; this option cannot be turned off"
            ),
        ]
    );
}

#[test]
fn rp_pinning_is_checked() {
    let mut t = base();
    entra(&mut t).rp_id = Some("https://login.microsoft.com".into());
    assert_eq!(
        problems(&t),
        vec![
            Problem::new(
                "passkey.entra.origin",
                "origin host login.microsoft.com is not the RP id https://login.microsoft.com or a subdomain of it"
            ),
            Problem::new(
                "passkey.entra.rp_id",
                "\"https://login.microsoft.com\" is not a valid RP id (a lower-case host name such as login.microsoft.com, no scheme or port)"
            ),
        ]
    );
    let mut t = base();
    entra(&mut t).origin = Some("http://login.microsoft.com".into());
    assert_eq!(
        problems(&t),
        one(
            "passkey.entra.origin",
            "\"http://login.microsoft.com\" is not a valid origin (https://host)"
        )
    );
    entra(&mut t).origin = Some("https://evil.example".into());
    assert_eq!(
        problems(&t),
        one(
            "passkey.entra.origin",
            "origin host evil.example is not the RP id login.microsoft.com or a subdomain of it"
        )
    );
}

#[test]
fn passkey_template_references_are_checked() {
    let mut t = base();
    t.credential.passkey_templates = vec![];
    assert_eq!(
        problems(&t),
        one(
            "credential.passkey_templates",
            "name at least one passkey template to issue to"
        )
    );
    t.credential.passkey_templates = vec!["entra".into(), "okta".into(), "entra".into()];
    assert_eq!(
        problems(&t),
        vec![
            Problem::new(
                "credential.passkey_templates",
                "no passkey template named \"okta\" in this document"
            ),
            Problem::new(
                "credential.passkey_templates",
                "passkey template \"entra\" is named twice"
            ),
        ]
    );
}

#[test]
fn two_passkey_templates_on_one_connection_are_refused() {
    let mut t = base();
    let mut second = t.passkey["entra"].clone();
    second.name = "entra2".into();
    t.passkey.insert("entra2".into(), second);
    t.credential.passkey_templates = vec!["entra".into(), "entra2".into()];
    assert_eq!(
        problems(&t),
        one(
            "credential.passkey_templates",
            "two passkey templates use IdP connection \"contoso-entra\"; a key carries one passkey per IdP"
        )
    );
}

#[test]
fn several_idps_are_accepted() {
    let mut t = base();
    let mut second = t.passkey["entra"].clone();
    second.name = "partner".into();
    second.idp.connection = "partner-entra".into();
    t.passkey.insert("partner".into(), second);
    t.credential.passkey_templates = vec!["entra".into(), "partner".into()];
    assert_eq!(problems(&t), vec![]);
    let names: Vec<&str> = t
        .passkey_templates()
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(names, ["entra", "partner"]);
}

#[test]
fn min_pin_length_range() {
    let mut t = base();
    t.credential.fido2.min_pin_length = Some(3);
    assert_eq!(
        problems(&t),
        one(
            "credential.fido2.min_pin_length",
            "minimum PIN length must be between 4 and 16 (the transport PIN has 16 digits), got 3"
        )
    );
    t.credential.fido2.min_pin_length = Some(64);
    assert_eq!(
        problems(&t),
        one(
            "credential.fido2.min_pin_length",
            "minimum PIN length must be between 4 and 16 (the transport PIN has 16 digits), got 64"
        )
    );
}

#[test]
fn min_pin_length_rp_ids_are_checked() {
    let mut t = base();
    t.credential.fido2.min_pin_length_rp_ids =
        vec!["a.example".into(), "a.example".into(), "Not Valid".into()];
    assert_eq!(
        problems(&t),
        vec![
            Problem::new(
                "credential.fido2.min_pin_length_rp_ids",
                "\"Not Valid\" is not a valid RP id"
            ),
            Problem::new(
                "credential.fido2.min_pin_length_rp_ids",
                "RP id \"a.example\" is listed twice"
            ),
        ]
    );
}

#[test]
fn bio_ranges() {
    let mut t = base();
    if let Some(bio) = t.credential.fido2.bio.as_mut() {
        bio.min_fingerprints = 0;
        bio.timeout_ms = 999;
    }
    assert_eq!(
        problems(&t),
        vec![
            Problem::new(
                "credential.fido2.bio.min_fingerprints",
                "fingerprints to enrol must be between 1 and 10, got 0"
            ),
            Problem::new(
                "credential.fido2.bio.timeout_ms",
                "enrolment timeout must be between 1000 and 600000 ms, got 999"
            ),
        ]
    );
}

#[test]
fn forced_deletion_needs_revoke_update() {
    let mut t = base();
    t.credential.lifecycle.update_idp_on_revoke = false;
    assert_eq!(
        problems(&t),
        one(
            "credential.lifecycle.force_idp_deletion_on_revoke",
            "forced IdP deletion needs update_idp_on_revoke on"
        )
    );
}

#[test]
fn self_service_needs_oidc() {
    let mut t = base();
    t.credential.self_service.oidc = None;
    assert_eq!(
        problems(&t),
        one(
            "credential.self_service.oidc",
            "self-service is allowed, so an OIDC configuration (issuer, audience, jwks_url) is required to authenticate the holder"
        )
    );
    t.credential.self_service.pin_set_allowed = false;
    t.credential.self_service.pin_unblock_allowed = false;
    t.credential.self_service.self_issuance_allowed = false;
    t.credential.self_service.issue_by_user = false;
    assert_eq!(problems(&t), vec![]);
}

#[test]
fn issue_by_user_needs_self_issuance() {
    let mut t = base();
    t.credential.self_service.self_issuance_allowed = false;
    assert_eq!(
        problems(&t),
        one(
            "credential.self_service.issue_by_user",
            "issue by user needs self_issuance_allowed on"
        )
    );
}

#[test]
fn oidc_fields_are_checked() {
    let mut t = base();
    t.credential.self_service.oidc = Some(OidcConfig {
        issuer: "login.example".into(),
        audience: " ".into(),
        jwks_url: "http://keys.example/jwks".into(),
        ..OidcConfig::default()
    });
    assert_eq!(
        problems(&t),
        vec![
            Problem::new(
                "credential.self_service.oidc.audience",
                "audience (client id) must not be empty"
            ),
            Problem::new(
                "credential.self_service.oidc.issuer",
                "\"login.example\" is not an https URL"
            ),
            Problem::new(
                "credential.self_service.oidc.jwks_url",
                "\"http://keys.example/jwks\" is not an https URL"
            ),
        ]
    );
    // Loopback http is fine for the emulator.
    t.credential.self_service.oidc = Some(OidcConfig {
        issuer: "http://127.0.0.1:8080/tenant/v2.0".into(),
        audience: "client".into(),
        jwks_url: "http://localhost:8080/keys".into(),
        ..OidcConfig::default()
    });
    assert_eq!(problems(&t), vec![]);
}

#[test]
fn names_and_directory_are_checked() {
    let mut t = base();
    t.credential.name = "".into();
    t.credential.user_assignment.directory = "has space".into();
    t.credential.user_assignment.search_by = vec!["shoeSize".into()];
    assert_eq!(
        problems(&t),
        vec![
            Problem::new(
                "credential.name",
                "credential template name \"\" must be 1-64 characters of letters, digits, '-', '_' or '.'"
            ),
            Problem::new(
                "credential.user_assignment.directory",
                "directory connection name \"has space\" must be 1-64 characters of letters, digits, '-', '_' or '.'"
            ),
            Problem::new(
                "credential.user_assignment.search_by",
                "cannot search users by \"shoeSize\"; use displayName, userPrincipalName, mail, employeeId"
            ),
        ]
    );
}

#[test]
fn every_problem_is_reported_at_once_on_load() {
    let text = TOML
        .replace(
            "graph_api_version = \"beta\"",
            "graph_api_version = \"v1.0\"",
        )
        .replace("min_pin_length = 8", "min_pin_length = 2")
        .replace("min_fingerprints = 2", "min_fingerprints = 11");
    let err = TemplateSet::from_toml_str(&text).unwrap_err();
    let fields: Vec<&str> = err.problems().iter().map(|p| p.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "credential.fido2.bio.min_fingerprints",
            "credential.fido2.min_pin_length",
            TIMEOUT
        ]
    );
    let shown = err.to_string();
    assert!(shown.starts_with("template invalid: credential.fido2.bio.min_fingerprints: fingerprints to enrol must be between 1 and 10, got 11; "), "{shown}");
}

#[path = "template/against_the_key.rs"]
mod against_the_key;
#[path = "template/bounds.rs"]
mod bounds;
