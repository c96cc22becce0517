//! The bulk job's CSV: an RFC 4180 parser with bounded records, and the validation of a
//! job's rows against its kind's columns.

use serde::{Deserialize, Serialize};

use super::BulkKind;
use crate::engine::JobError;
use crate::Error;

/// Longest CSV record accepted (bytes).
pub const MAX_CSV_LINE: usize = 4096;
/// Most data rows a bulk job may have.
pub const MAX_CSV_ROWS: usize = 100_000;

/// A row as stored in a bulk item (normalized JSON).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Row {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) serial: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) template: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) key_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) force: Option<bool>,
    /// The HR employee id (issue rows without `user`), looked up in the directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) employee_id: Option<String>,
    /// Revoke rows naming a user: also delete the passkeys keysmith did not issue
    /// (off unless `true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) include_foreign: Option<bool>,
}

fn csv_err(line: u64, column: u64, message: impl Into<String>) -> Error {
    JobError::Csv {
        line,
        column,
        message: message.into(),
    }
    .into()
}

/// The field separator of `text`: `;` when its header line (outside quotes) has a `;` and
/// no `,` (Excel writes `;` where the locale's decimal mark is a comma, as in much of
/// Europe), otherwise `,`. A header has no commas or semicolons inside its names, so
/// the header alone decides, before any row is read.
fn separator(text: &str) -> char {
    let (mut commas, mut semicolons, mut quoted) = (0usize, 0usize, false);
    for c in text.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => commas += 1,
            ';' if !quoted => semicolons += 1,
            '\n' if !quoted => break,
            _ => {}
        }
    }
    if commas == 0 && semicolons > 0 {
        ';'
    } else {
        ','
    }
}

/// Splits CSV text into records of fields (RFC 4180: `,` separators, CRLF or LF record
/// ends, `"` quoting with `""` escapes, quoted fields may span lines; `;` separators
/// when the header line uses them, see [`separator`]). Returns each record with the line
/// it starts on; blank lines are skipped. A UTF-8 byte order mark at the start (Excel's
/// "CSV UTF-8" writes one) is not part of the first field.
pub(super) fn parse_csv(text: &str) -> Result<Vec<(u64, Vec<String>)>, Error> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let sep = separator(text);
    let mut records = Vec::new();
    let mut chars = text.chars().peekable();
    let mut line: u64 = 1;
    while chars.peek().is_some() {
        let start = line;
        let mut fields: Vec<String> = Vec::new();
        let mut field = String::new();
        let mut len = 0usize;
        let mut quoted = false;
        let mut was_quoted = false;
        while let Some(c) = chars.next() {
            len += c.len_utf8();
            if len > MAX_CSV_LINE {
                return Err(csv_err(
                    start,
                    0,
                    format!("record longer than {MAX_CSV_LINE} bytes"),
                ));
            }
            if quoted {
                match c {
                    '"' if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    '"' => quoted = false,
                    '\n' => {
                        line += 1;
                        field.push(c);
                    }
                    _ => field.push(c),
                }
                continue;
            }
            match c {
                '"' if field.is_empty() && !was_quoted => {
                    quoted = true;
                    was_quoted = true;
                }
                '"' => return Err(csv_err(
                    start,
                    fields.len() as u64 + 1,
                    "a quote inside an unquoted field (quote the whole field and double the quote)",
                )),
                c if c == sep => {
                    fields.push(std::mem::take(&mut field));
                    was_quoted = false;
                }
                '\r' if chars.peek() == Some(&'\n') => {}
                '\n' => {
                    line += 1;
                    break;
                }
                _ if was_quoted => {
                    return Err(csv_err(
                        start,
                        fields.len() as u64 + 1,
                        "text after a closing quote",
                    ))
                }
                _ => field.push(c),
            }
        }
        if quoted {
            return Err(csv_err(
                start,
                fields.len() as u64 + 1,
                "quoted field is not closed",
            ));
        }
        fields.push(field);
        if fields.len() == 1 && fields.first().is_some_and(|f| f.trim().is_empty()) && !was_quoted {
            continue;
        }
        records.push((start, fields));
        if records.len() > MAX_CSV_ROWS + 1 {
            return Err(csv_err(start, 0, format!("more than {MAX_CSV_ROWS} rows")));
        }
    }
    Ok(records)
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" | "y" => Some(true),
        "false" | "no" | "0" | "n" => Some(false),
        _ => None,
    }
}

/// Parses and validates a job's CSV into (line, normalized row) items.
pub(super) fn rows_for(kind: BulkKind, text: &str) -> Result<Vec<(u64, Row)>, Error> {
    let records = parse_csv(text)?;
    let mut it = records.into_iter();
    let (hline, header) = it
        .next()
        .ok_or_else(|| csv_err(1, 0, "empty file: a header row is needed"))?;
    let (required, optional) = kind.columns();
    let mut cols: Vec<String> = Vec::new();
    for (i, h) in header.iter().enumerate() {
        let name = h.trim().to_ascii_lowercase();
        if !required.contains(&name.as_str()) && !optional.contains(&name.as_str()) {
            return Err(csv_err(
                hline,
                i as u64 + 1,
                format!(
                    "unknown column {name:?} for a {} job (columns: {})",
                    kind.as_str(),
                    required
                        .iter()
                        .chain(optional.iter())
                        .copied()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        if cols.contains(&name) {
            return Err(csv_err(
                hline,
                i as u64 + 1,
                format!("column {name:?} twice"),
            ));
        }
        cols.push(name);
    }
    for r in required {
        if !cols.iter().any(|c| c == r) {
            return Err(csv_err(hline, 0, format!("missing column {r:?}")));
        }
    }
    if kind == BulkKind::Issue && !cols.iter().any(|c| c == "user" || c == "employee_id") {
        return Err(csv_err(
            hline,
            0,
            "an issue job needs a user or an employee_id column",
        ));
    }
    if kind == BulkKind::Revoke && !cols.iter().any(|c| c == "key_id" || c == "user") {
        return Err(csv_err(
            hline,
            0,
            "a revoke job needs a key_id or a user column",
        ));
    }
    let mut rows = Vec::new();
    for (line, fields) in it {
        if fields.len() != cols.len() {
            return Err(csv_err(
                line,
                0,
                format!("{} fields, the header has {}", fields.len(), cols.len()),
            ));
        }
        let mut row = Row::default();
        for (i, (name, value)) in cols.iter().zip(fields).enumerate() {
            let col = i as u64 + 1;
            let value = value.trim().to_owned();
            if value.is_empty() {
                if required.contains(&name.as_str()) {
                    return Err(csv_err(line, col, format!("{name} is empty")));
                }
                continue;
            }
            match name.as_str() {
                "user" => row.user = Some(value),
                "serial" => {
                    crate::model::check_serial(&value)
                        .map_err(|why| csv_err(line, col, format!("serial {value:?} {why}")))?;
                    row.serial = Some(value)
                }
                "template" => row.template = Some(value),
                "employee_id" => row.employee_id = Some(value),
                "key_id" => {
                    if value.chars().any(char::is_control) {
                        return Err(csv_err(
                            line,
                            col,
                            format!("key_id {value:?} contains control characters"),
                        ));
                    }
                    row.key_id = Some(value)
                }
                "include_foreign" => {
                    row.include_foreign = Some(parse_bool(&value).ok_or_else(|| {
                        csv_err(
                            line,
                            col,
                            format!("include_foreign {value:?} is not true or false"),
                        )
                    })?)
                }
                "force" => {
                    row.force = Some(parse_bool(&value).ok_or_else(|| {
                        csv_err(line, col, format!("force {value:?} is not true or false"))
                    })?)
                }
                _ => {}
            }
        }
        if kind == BulkKind::Issue && row.user.is_none() && row.employee_id.is_none() {
            return Err(csv_err(line, 0, "neither user nor employee_id is given"));
        }
        if kind == BulkKind::Revoke && row.key_id.is_none() && row.user.is_none() {
            return Err(csv_err(line, 0, "neither key_id nor user is given"));
        }
        rows.push((line, row));
    }
    if rows.is_empty() {
        return Err(csv_err(hline, 0, "no data rows"));
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quoting_and_line_numbers() {
        let r = parse_csv("user,serial\r\n\"a,b\",\"x\"\"y\"\n\n\"multi\nline\",s2\n").unwrap();
        assert_eq!(r.len(), 3);
        assert_eq!(r[1], (2, vec!["a,b".to_owned(), "x\"y".to_owned()]));
        assert_eq!(r[2], (4, vec!["multi\nline".to_owned(), "s2".to_owned()]));
    }

    #[test]
    fn csv_errors_name_line_and_column() {
        let e = parse_csv("a,b\nx,y\"z\n").unwrap_err().to_string();
        assert_eq!(
            e,
            "CSV line 2, column 2: a quote inside an unquoted field (quote the whole field and double the quote)"
        );
        let e = parse_csv("a\n\"open\n").unwrap_err().to_string();
        assert!(
            e.starts_with("CSV line 2, column 1: quoted field is not closed"),
            "{e}"
        );
        let long = format!("a\n{}\n", "x".repeat(MAX_CSV_LINE + 1));
        assert!(parse_csv(&long)
            .unwrap_err()
            .to_string()
            .starts_with("CSV line 2, column 0"));
        let e = rows_for(BulkKind::Issue, "user,serial\nkim,\n")
            .unwrap_err()
            .to_string();
        assert_eq!(e, "CSV line 2, column 2: serial is empty");
        let e = rows_for(BulkKind::Issue, "user,colour\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("CSV line 1, column 2: unknown column \"colour\""),
            "{e}"
        );
        let e = rows_for(BulkKind::Revoke, "key_id,force\nk1,maybe\n")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "CSV line 2, column 2: force \"maybe\" is not true or false"
        );
        let e = rows_for(BulkKind::Reconcile, "user\nkim,extra\n")
            .unwrap_err()
            .to_string();
        assert_eq!(e, "CSV line 2, column 0: 2 fields, the header has 1");
        assert!(rows_for(BulkKind::Reconcile, "").is_err());
        assert!(rows_for(BulkKind::Reconcile, "user\n").is_err());
    }

    #[test]
    fn semicolon_separated_files_from_excel_are_read() {
        // Excel in locales with a decimal comma writes `;` between fields.
        let rows = rows_for(
            BulkKind::Issue,
            "\u{feff}user;serial\r\nkim;SN1\r\n\"adele;x\";\"SN,2\"\r\n",
        )
        .unwrap();
        assert_eq!(rows.len(), 2);
        let all = parse_csv("user;serial\nkim;SN1\n\"a;b\";\"c,d\"\n").unwrap();
        assert_eq!(all[1].1, vec!["kim", "SN1"]);
        assert_eq!(all[2].1, vec!["a;b", "c,d"]);
        // A comma in the header keeps commas: a `;` is then text.
        let all = parse_csv("user,serial\nkim;x,SN1\n").unwrap();
        assert_eq!(all[1].1, vec!["kim;x", "SN1"]);
        // The separator is the header's: a header with both is read with commas.
        assert_eq!(separator("\"a,b\";c\n"), ';');
        assert_eq!(separator("a;b,c\n"), ',');
        assert_eq!(separator("user\nkim;x\n"), ',');
    }

    #[test]
    fn a_utf8_bom_is_not_part_of_the_first_column() {
        // Excel's "CSV UTF-8" starts the file with U+FEFF.
        let rows = rows_for(BulkKind::Issue, "\u{feff}user,serial\r\nkim,SN1\r\n").unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].1.user.as_deref(), Some("kim"));
        assert_eq!(rows[0].1.serial.as_deref(), Some("SN1"));
        // Only at the very start: elsewhere it stays data (and an unknown column).
        assert!(rows_for(BulkKind::Issue, "user,\u{feff}serial\nkim,SN1\n").is_err());
    }

    #[test]
    fn control_characters_in_serials_and_key_ids_are_refused_naming_the_column() {
        let e = rows_for(BulkKind::Issue, "user,serial\nkim,NUL\0X\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(
                "CSV line 2, column 2: serial \"NUL\\0X\" contains the control character"
            ),
            "{e}"
        );
        let e = rows_for(BulkKind::Issue, "user,serial\nkim,\"two\nlines\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("CSV line 2, column 2: serial"), "{e}");
        let e = rows_for(BulkKind::Revoke, "key_id\n\"k\u{7}1\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("CSV line 2, column 1: key_id") && e.contains("control characters"),
            "{e}"
        );
    }

    #[test]
    fn rows_are_normalized() {
        let rows = rows_for(BulkKind::Revoke, "User,Force\n kim ,yes\nlee,\n").unwrap();
        assert_eq!(rows[0].1.user.as_deref(), Some("kim"));
        assert_eq!(rows[0].1.force, Some(true));
        assert_eq!(rows[1].1.force, None);
    }
}
