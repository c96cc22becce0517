//! Stage one of validation: the template document on its own.

use std::collections::BTreeSet;

use super::display_name::{parse_pattern, unknown_placeholder, Piece};
use super::{
    GraphApiVersion, OidcConfig, PasskeyTemplate, Problem, TemplateSet,
    CHALLENGE_TIMEOUT_MAX_MINUTES, CHALLENGE_TIMEOUT_MIN_MINUTES, DISPLAY_NAME_MAX_CHARS,
    MAX_MIN_PIN_LENGTH, PLACEHOLDERS, SEARCH_ATTRIBUTES,
};

/// Every problem of the document, sorted by field then message.
pub(crate) fn static_problems(set: &TemplateSet) -> Vec<Problem> {
    let mut p = Vec::new();
    if set.passkey.is_empty() {
        p.push(Problem::new(
            "passkey",
            "at least one passkey template is required",
        ));
    }
    for (name, t) in &set.passkey {
        passkey(name, t, &mut p);
    }
    credential(set, &mut p);
    p.sort();
    p.dedup();
    p
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
}

const NAME_RULE: &str = "must be 1-64 characters of letters, digits, '-', '_' or '.'";

/// A host name usable as an RP id: lower-case labels of letters, digits and hyphens.
fn is_rp_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        })
}

/// The host of an `https://` URL (or `http://` on loopback, for emulators), without port,
/// lower-case: keysmith's one URL policy.
fn url_host(url: &str) -> Option<String> {
    keysmith_url::check(url).ok().map(|u| u.host().to_owned())
}

fn passkey(name: &str, t: &PasskeyTemplate, p: &mut Vec<Problem>) {
    let f = format!("passkey.{name}");
    if !is_name(name) {
        p.push(Problem::new(
            &f,
            format!("passkey template name {name:?} {NAME_RULE}"),
        ));
    }
    if t.name != name {
        p.push(Problem::new(
            format!("{f}.name"),
            format!("name {:?} differs from the template's key {name:?} (call TemplateSet::fill_names after building templates in code)", t.name),
        ));
    }
    if !is_name(&t.idp.connection) {
        p.push(Problem::new(
            format!("{f}.idp.connection"),
            format!("IdP connection name {:?} {NAME_RULE}", t.idp.connection),
        ));
    }
    display_name(&f, t, p);
    if !t.force_discoverable {
        p.push(Problem::new(
            format!("{f}.force_discoverable"),
            "discoverable credentials are always made; this option cannot be turned off",
        ));
    }
    if let Some(rp) = &t.rp_id {
        if !is_rp_id(rp) {
            p.push(Problem::new(
                format!("{f}.rp_id"),
                format!("{rp:?} is not a valid RP id (a lower-case host name such as login.microsoft.com, no scheme or port)"),
            ));
        }
    }
    if let Some(origin) = &t.origin {
        match url_host(origin) {
            None => p.push(Problem::new(
                format!("{f}.origin"),
                format!("{origin:?} is not a valid origin (https://host)"),
            )),
            Some(host) => {
                if let Some(rp) = &t.rp_id {
                    let suffix = format!(".{rp}");
                    if host != *rp && !host.ends_with(&suffix) {
                        p.push(Problem::new(
                            format!("{f}.origin"),
                            format!(
                                "origin host {host} is not the RP id {rp} or a subdomain of it"
                            ),
                        ));
                    }
                }
            }
        }
    }
    let timeout = t.challenge_timeout();
    let tf = format!("{f}.challenge_timeout_minutes");
    if !(CHALLENGE_TIMEOUT_MIN_MINUTES..=CHALLENGE_TIMEOUT_MAX_MINUTES).contains(&timeout) {
        p.push(Problem::new(
            tf,
            format!("challenge timeout must be between {CHALLENGE_TIMEOUT_MIN_MINUTES} and {CHALLENGE_TIMEOUT_MAX_MINUTES} minutes (30 days), got {timeout}"),
        ));
    } else if timeout > CHALLENGE_TIMEOUT_MIN_MINUTES
        && t.idp.graph_api_version == GraphApiVersion::V1_0
    {
        p.push(Problem::new(
            tf,
            format!("a challenge timeout above {CHALLENGE_TIMEOUT_MIN_MINUTES} minutes needs the Graph beta endpoint; idp.graph_api_version is v1.0 (got {timeout} minutes)"),
        ));
    }
    // Provenance (identity verification events, attestProvenance) is Graph beta only.
    if t.record_provenance && t.idp.graph_api_version == GraphApiVersion::V1_0 {
        p.push(Problem::new(
            format!("{f}.record_provenance"),
            "record_provenance needs the Graph beta endpoint (the identity verification and attestProvenance calls exist on beta only); idp.graph_api_version is v1.0",
        ));
    }
}

fn display_name(f: &str, t: &PasskeyTemplate, p: &mut Vec<Problem>) {
    let field = format!("{f}.display_name");
    let pieces = match parse_pattern(&t.display_name) {
        Ok(pieces) => pieces,
        Err(m) => {
            p.push(Problem::new(field, m));
            return;
        }
    };
    if t.display_name.trim().is_empty() {
        p.push(Problem::new(&field, "display name must not be empty"));
        return;
    }
    if let Some(c) = t.display_name.chars().find(|c| c.is_control()) {
        // Entra refuses them at registration, after the key was issued.
        p.push(Problem::new(
            &field,
            format!("display name contains the control character {c:?}; the IdP refuses control characters"),
        ));
        return;
    }
    let mut static_text = true;
    for piece in &pieces {
        if let Piece::Placeholder(name) = piece {
            static_text = false;
            if !PLACEHOLDERS.contains(name) {
                p.push(Problem::new(&field, unknown_placeholder(name)));
            }
        }
    }
    if static_text && !t.truncate_display_name {
        let text: String = pieces
            .iter()
            .map(|piece| match piece {
                Piece::Text(t) => t.as_str(),
                Piece::Placeholder(_) => "",
            })
            .collect();
        let len = text.trim().chars().count();
        if len > DISPLAY_NAME_MAX_CHARS {
            p.push(Problem::new(
                field,
                format!("static display name is {len} characters; the IdP allows at most {DISPLAY_NAME_MAX_CHARS} (shorten it or set truncate_display_name)"),
            ));
        }
    }
}

fn credential(set: &TemplateSet, p: &mut Vec<Problem>) {
    let c = &set.credential;
    if !is_name(&c.name) {
        p.push(Problem::new(
            "credential.name",
            format!("credential template name {:?} {NAME_RULE}", c.name),
        ));
    }
    let f = "credential.passkey_templates";
    if c.passkey_templates.is_empty() {
        p.push(Problem::new(
            f,
            "name at least one passkey template to issue to",
        ));
    }
    let mut seen = BTreeSet::new();
    let mut connections = BTreeSet::new();
    for name in &c.passkey_templates {
        if !seen.insert(name.as_str()) {
            p.push(Problem::new(
                f,
                format!("passkey template {name:?} is named twice"),
            ));
            continue;
        }
        match set.passkey.get(name) {
            None => p.push(Problem::new(
                f,
                format!("no passkey template named {name:?} in this document"),
            )),
            Some(t) => {
                if !connections.insert(t.idp.connection.as_str()) {
                    p.push(Problem::new(
                        f,
                        format!("two passkey templates use IdP connection {:?}; a key carries one passkey per IdP", t.idp.connection),
                    ));
                }
            }
        }
    }

    let ua = &c.user_assignment;
    if !is_name(&ua.directory) {
        p.push(Problem::new(
            "credential.user_assignment.directory",
            format!("directory connection name {:?} {NAME_RULE}", ua.directory),
        ));
    }
    if ua.search_by.is_empty() {
        p.push(Problem::new(
            "credential.user_assignment.search_by",
            "name at least one attribute to search users by",
        ));
    }
    for a in &ua.search_by {
        if !SEARCH_ATTRIBUTES.contains(&a.as_str()) {
            p.push(Problem::new(
                "credential.user_assignment.search_by",
                format!(
                    "cannot search users by {a:?}; use {}",
                    SEARCH_ATTRIBUTES.join(", ")
                ),
            ));
        }
    }

    let o = &c.fido2;
    if !o.pin_required {
        p.push(Problem::new(
            "credential.fido2.pin_required",
            "a FIDO2 PIN is always required; this option cannot be turned off",
        ));
    }
    if let Some(n) = o.min_pin_length {
        if !(4..=MAX_MIN_PIN_LENGTH).contains(&n) {
            p.push(Problem::new(
                "credential.fido2.min_pin_length",
                format!("minimum PIN length must be between 4 and {MAX_MIN_PIN_LENGTH} (the transport PIN has {MAX_MIN_PIN_LENGTH} digits), got {n}"),
            ));
        }
    }
    if let Some(ep) = o.enterprise_attestation.filter(|ep| !(1..=2).contains(ep)) {
        p.push(Problem::new(
            "credential.fido2.enterprise_attestation",
            format!("enterprise attestation is 1 (vendor-facilitated) or 2 (platform-managed), got {ep}"),
        ));
    }
    let mut rp_seen = BTreeSet::new();
    for rp in &o.min_pin_length_rp_ids {
        if !is_rp_id(rp) {
            p.push(Problem::new(
                "credential.fido2.min_pin_length_rp_ids",
                format!("{rp:?} is not a valid RP id"),
            ));
        } else if !rp_seen.insert(rp.as_str()) {
            p.push(Problem::new(
                "credential.fido2.min_pin_length_rp_ids",
                format!("RP id {rp:?} is listed twice"),
            ));
        }
    }
    if let Some(bio) = &o.bio {
        if !(1..=10).contains(&bio.min_fingerprints) {
            p.push(Problem::new(
                "credential.fido2.bio.min_fingerprints",
                format!(
                    "fingerprints to enrol must be between 1 and 10, got {}",
                    bio.min_fingerprints
                ),
            ));
        }
        if !(1_000..=600_000).contains(&bio.timeout_ms) {
            p.push(Problem::new(
                "credential.fido2.bio.timeout_ms",
                format!(
                    "enrolment timeout must be between 1000 and 600000 ms, got {}",
                    bio.timeout_ms
                ),
            ));
        }
    }

    let l = &c.lifecycle;
    if l.force_idp_deletion_on_revoke && !l.update_idp_on_revoke {
        p.push(Problem::new(
            "credential.lifecycle.force_idp_deletion_on_revoke",
            "forced IdP deletion needs update_idp_on_revoke on",
        ));
    }

    let s = &c.self_service;
    if s.issue_by_user && !s.self_issuance_allowed {
        p.push(Problem::new(
            "credential.self_service.issue_by_user",
            "issue by user needs self_issuance_allowed on",
        ));
    }
    if s.registration == super::RegistrationMode::Delegated
        && !s.self_issuance_allowed
        && !s.pin_set_allowed
    {
        p.push(Problem::new(
            "credential.self_service.registration",
            "delegated registration is for the holder's own operations: it needs self_issuance_allowed or pin_set_allowed on",
        ));
    }
    match &s.oidc {
        None if s.any_allowed() => p.push(Problem::new(
            "credential.self_service.oidc",
            "self-service is allowed, so an OIDC configuration (issuer, audience, jwks_url) is required to authenticate the holder",
        )),
        None => {}
        Some(oidc) => {
            oidc_problems(oidc, p);
            if let Some(d) = &oidc.directory {
                if *d != c.user_assignment.directory {
                    p.push(Problem::new(
                        "credential.self_service.oidc.directory",
                        format!(
                            "the issuer is mapped to directory {d:?}, but users come from {:?}",
                            c.user_assignment.directory
                        ),
                    ));
                }
            }
        }
    }
}

fn oidc_problems(o: &OidcConfig, p: &mut Vec<Problem>) {
    if url_host(&o.issuer).is_none() {
        p.push(Problem::new(
            "credential.self_service.oidc.issuer",
            format!("{:?} is not an https URL", o.issuer),
        ));
    }
    if o.audience.trim().is_empty() {
        p.push(Problem::new(
            "credential.self_service.oidc.audience",
            "audience (client id) must not be empty",
        ));
    }
    if !(60..=86_400).contains(&o.max_age_secs) {
        p.push(Problem::new(
            "credential.self_service.oidc.max_age_secs",
            format!(
                "must be between 60 and 86400 seconds, got {}",
                o.max_age_secs
            ),
        ));
    }
    if o.acrs.iter().any(|a| a.trim().is_empty()) {
        p.push(Problem::new(
            "credential.self_service.oidc.acrs",
            "authentication context references must not be empty",
        ));
    }
    if url_host(&o.jwks_url).is_none() {
        p.push(Problem::new(
            "credential.self_service.oidc.jwks_url",
            format!("{:?} is not an https URL", o.jwks_url),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rp_ids() {
        assert!(is_rp_id("login.microsoft.com"));
        assert!(!is_rp_id("Login.microsoft.com"));
        assert!(!is_rp_id("https://x"));
        assert!(!is_rp_id("a..b"));
        assert!(!is_rp_id("-a.b"));
        assert!(!is_rp_id(""));
    }

    #[test]
    fn url_hosts() {
        assert_eq!(
            url_host("https://login.microsoft.com").as_deref(),
            Some("login.microsoft.com")
        );
        assert_eq!(url_host("https://a.b:8443/x").as_deref(), Some("a.b"));
        assert_eq!(
            url_host("http://127.0.0.1:8080/v2.0").as_deref(),
            Some("127.0.0.1")
        );
        assert_eq!(url_host("http://evil.example").as_deref(), None);
        assert_eq!(url_host("https://").as_deref(), None);
        assert_eq!(url_host("https://u@h").as_deref(), None);
        assert_eq!(url_host("ftp://h").as_deref(), None);
    }
}
