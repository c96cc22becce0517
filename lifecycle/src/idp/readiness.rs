//! The SMS/voice retirement readiness report as the engine and the bindings see it
//! (issue 19 item 6): owned plain data, and the CSV a bulk issue job takes.

use serde::{Deserialize, Serialize};

/// One user of the report.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadinessUser {
    /// The IdP's object id.
    pub id: String,
    /// User principal name.
    pub upn: Option<String>,
    /// Display name.
    pub display_name: Option<String>,
    /// The user's sign-in method types (`password`, `phone`, `fido2`, ...).
    pub methods: Vec<String>,
}

/// Users of a group (or the directory) and whether they can sign in without SMS/voice.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadinessReport {
    /// The IdP connection asked.
    pub connection: String,
    /// The group asked for (`None`: the whole directory).
    pub group: Option<String>,
    /// Users checked (guests not included).
    pub checked: usize,
    /// Users with no phishing-resistant method (no FIDO2 passkey, Windows Hello for
    /// Business, platform credential or certificate-based method): issue them a key.
    pub not_ready: Vec<ReadinessUser>,
    /// Guests and B2B users, refused up front: `guest_reason` says why.
    pub guests: Vec<ReadinessUser>,
    /// Why guests are refused (the IdP's own limitation).
    pub guest_reason: String,
    /// Users whose methods could not be read: (object id, why).
    pub failed: Vec<(String, String)>,
}

/// Quotes a CSV field when it needs it (RFC 4180).
fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

impl ReadinessReport {
    /// The users who are not ready as the input of a bulk issue job: columns
    /// `user,serial`, the user by UPN (their object id when the IdP gave none). `serial`
    /// is left empty for the operator to fill in with the key each user gets; the issue
    /// job refuses a row whose serial is still empty, naming its line.
    pub fn issue_csv(&self) -> String {
        let mut out = String::from("user,serial\n");
        for u in &self.not_ready {
            out.push_str(&field(u.upn.as_deref().unwrap_or(&u.id)));
            out.push_str(",\n");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_what_needs_it() {
        let user = |id: &str, upn: Option<&str>| ReadinessUser {
            id: id.into(),
            upn: upn.map(Into::into),
            ..ReadinessUser::default()
        };
        let r = ReadinessReport {
            not_ready: vec![user("u1", Some("kim@contoso.com")), user("u,2", None)],
            ..ReadinessReport::default()
        };
        assert_eq!(r.issue_csv(), "user,serial\nkim@contoso.com,\n\"u,2\",\n");
    }
}
