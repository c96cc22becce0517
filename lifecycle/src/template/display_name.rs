//! Display name patterns: static text or directory attributes in braces.

use std::collections::BTreeMap;

use super::{PasskeyTemplate, Problem};

/// The longest display name Entra accepts, in Unicode characters.
pub const DISPLAY_NAME_MAX_CHARS: usize = 30;

/// Placeholders a display name pattern may use: directory attributes of the user and
/// `serial`, the key's serial number.
pub const PLACEHOLDERS: [&str; 7] = [
    "displayName",
    "userPrincipalName",
    "givenName",
    "surname",
    "mail",
    "employeeId",
    "serial",
];

/// A piece of a parsed pattern.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Piece<'a> {
    Text(String),
    Placeholder(&'a str),
}

/// Split a pattern into text and placeholders; `{{`/`}}` are literal braces.
pub(crate) fn parse_pattern(pattern: &str) -> Result<Vec<Piece<'_>>, String> {
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut rest = pattern;
    while let Some(ch) = rest.chars().next() {
        let after = rest.get(ch.len_utf8()..).unwrap_or("");
        match ch {
            '{' if after.starts_with('{') => {
                text.push('{');
                rest = after.get(1..).unwrap_or("");
            }
            '}' if after.starts_with('}') => {
                text.push('}');
                rest = after.get(1..).unwrap_or("");
            }
            '{' => {
                let Some(end) = after.find('}') else {
                    return Err(
                        "unclosed `{` in display name pattern (write `{{` for a literal brace)"
                            .to_owned(),
                    );
                };
                let name = after.get(..end).unwrap_or("");
                if !text.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut text)));
                }
                pieces.push(Piece::Placeholder(name));
                rest = after.get(end + 1..).unwrap_or("");
            }
            '}' => {
                return Err(
                    "unmatched `}` in display name pattern (write `}}` for a literal brace)"
                        .to_owned(),
                );
            }
            _ => {
                text.push(ch);
                rest = after;
            }
        }
    }
    if !text.is_empty() {
        pieces.push(Piece::Text(text));
    }
    Ok(pieces)
}

/// The problem for an unknown placeholder.
pub(crate) fn unknown_placeholder(name: &str) -> String {
    format!(
        "unknown placeholder {{{name}}} in display name; known: {}",
        PLACEHOLDERS
            .iter()
            .map(|p| format!("{{{p}}}"))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// Render the passkey template's display name for one user and key.
///
/// `attrs` maps placeholder names (see [`PLACEHOLDERS`]) to values, e.g. `displayName` and
/// `serial`. The result has at most [`DISPLAY_NAME_MAX_CHARS`] characters: longer names are
/// cut when the template says `truncate_display_name`, refused otherwise. Problems name the
/// field `passkey.<name>.display_name`.
pub fn render_display_name(
    template: &PasskeyTemplate,
    attrs: &BTreeMap<String, String>,
) -> Result<String, Problem> {
    let field = format!("{}.display_name", template.field_prefix());
    let pieces =
        parse_pattern(&template.display_name).map_err(|m| Problem::new(field.clone(), m))?;
    let mut out = String::new();
    for piece in pieces {
        match piece {
            Piece::Text(t) => out.push_str(&t),
            Piece::Placeholder(name) => {
                if !PLACEHOLDERS.contains(&name) {
                    return Err(Problem::new(field, unknown_placeholder(name)));
                }
                match attrs.get(name) {
                    Some(v) => out.push_str(v),
                    None => {
                        return Err(Problem::new(
                            field,
                            format!("attribute {name} is not available to fill {{{name}}} in the display name"),
                        ))
                    }
                }
            }
        }
    }
    let out = out.trim().to_owned();
    if out.is_empty() {
        return Err(Problem::new(field, "display name is empty after mapping"));
    }
    if let Some(c) = out.chars().find(|c| c.is_control()) {
        // A user attribute with a control character: refused here, before the key is
        // touched, instead of by the IdP at registration.
        return Err(Problem::new(
            field,
            format!("display name {out:?} contains the control character {c:?} after mapping; the IdP refuses control characters"),
        ));
    }
    let len = out.chars().count();
    if len > DISPLAY_NAME_MAX_CHARS {
        if template.truncate_display_name {
            return Ok(out
                .chars()
                .take(DISPLAY_NAME_MAX_CHARS)
                .collect::<String>()
                .trim_end()
                .to_owned());
        }
        return Err(Problem::new(
            field,
            format!(
                "display name {out:?} is {len} characters after mapping; the IdP allows at most {DISPLAY_NAME_MAX_CHARS} (shorten the pattern or set truncate_display_name)"
            ),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_pieces() {
        assert_eq!(
            parse_pattern("a{serial}{{b}}").unwrap(),
            vec![
                Piece::Text("a".into()),
                Piece::Placeholder("serial"),
                Piece::Text("{b}".into())
            ]
        );
        assert!(parse_pattern("a{serial").is_err());
        assert!(parse_pattern("a}b").is_err());
        assert_eq!(parse_pattern("").unwrap(), vec![]);
    }
}
