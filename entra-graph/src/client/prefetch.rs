//! Users read ahead in batches during a bulk job: one `GET /users?$filter=… in (…)` for up
//! to [`USERS_PER_BATCH`] of the job's users instead of one `GET /users/{id}` each
//! (docs/ENTRA.md, "Users read in batches").
//!
//! The job announces its users in the order its rows run
//! ([`GraphClient::expect_users`]). When a row reads an announced user that is not cached,
//! that user and the next announced users of the same kind (object ids or UPNs) are read
//! in one request, and kept for [`crate::USER_TTL`]; the batch is read when the first of
//! its users is needed, so a row's user data is as old as the rows since. A user the batch
//! does not return (not found, or a name neither an object id nor a UPN) is read on its
//! own, which answers the typed not-found as before; so does every user when the batch
//! request fails.

use super::{encode_segment, GraphClient};
use crate::wire::User;
use crate::GraphError;

/// Most values in one `in` of a `$filter` (Graph's documented limit: "the request is
/// limited to 15 expressions in the filter clause"; docs/ENTRA.md).
pub const USERS_PER_BATCH: usize = 15;

/// Longest `$filter` a batch builds (Graph allows URLs of 2,048 characters in advanced
/// queries; a plain query stays well under): a batch of long names is cut shorter.
const MAX_FILTER_CHARS: usize = 1500;

/// The properties a user read selects (the same for one user and a batch).
pub(crate) const USER_SELECT: &str =
    "id,displayName,userPrincipalName,mail,givenName,surname,accountEnabled";

/// An object id (a GUID) rather than a UPN.
fn is_object_id(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                *c == b'-'
            } else {
                c.is_ascii_hexdigit()
            }
        })
}

/// The `$filter` for `users` (all of one kind): `id in (…)` or `userPrincipalName in (…)`.
fn filter_for(users: &[String]) -> String {
    let field = if users.first().is_some_and(|u| is_object_id(u)) {
        "id"
    } else {
        "userPrincipalName"
    };
    let values: Vec<String> = users
        .iter()
        .map(|u| format!("'{}'", u.replace('\'', "''")))
        .collect();
    format!("{field} in ({})", values.join(","))
}

impl GraphClient {
    /// Announces the users (object ids or UPNs) a running bulk job's rows will read, in
    /// order: [`GraphClient::user`] then reads them [`USERS_PER_BATCH`] at a time. Does
    /// nothing outside a job ([`GraphClient::begin_job`]).
    pub fn expect_users(&self, users: &[String]) {
        self.cache.expect_users(users);
    }

    /// During a job: the cached user, after reading `id_or_upn` and the next announced
    /// users in one request if it was announced. `None`: read it on its own.
    pub(super) fn user_ahead(&self, id_or_upn: &str) -> Option<User> {
        if let Some(u) = self.cache.user(id_or_upn) {
            return Some(u);
        }
        let kind = is_object_id(id_or_upn);
        let mut batch = self
            .cache
            .take_batch(id_or_upn, USERS_PER_BATCH, |u| is_object_id(u) == kind);
        if batch.is_empty() {
            // Not announced, or in another worker's batch read: wait for that one.
            return self.cache.wait_for_batch(id_or_upn);
        }
        let all = batch.clone();
        while batch.len() > 1 && filter_for(&batch).len() > MAX_FILTER_CHARS {
            batch.pop();
        }
        let found = self.users_in(&batch);
        if let Ok(found) = &found {
            for u in found {
                self.cache.put_user(&u.id, u);
            }
        }
        // Cut off for length: back on the queue for a later batch.
        self.cache.expect_users(&all[batch.len()..]);
        self.cache.batch_landed(&all);
        match found {
            Ok(_) => self.cache.user(id_or_upn),
            Err(e) => {
                tracing::debug!(error = %e, users = batch.len(), "batched user read failed; reading users one by one");
                None
            }
        }
    }

    /// The users among `users` (all object ids or all UPNs, at most
    /// [`USERS_PER_BATCH`]) that exist, in one list request.
    fn users_in(&self, users: &[String]) -> Result<Vec<User>, GraphError> {
        let url = format!(
            "{}/users?$filter={}&$select={USER_SELECT}&$top={}",
            self.root(),
            encode_segment(&filter_for(users)),
            USERS_PER_BATCH
        );
        self.get_all(url, "users page")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_quote_values_and_pick_the_property() {
        let upns = vec![
            "kim@contoso.com".to_owned(),
            "o'neil@contoso.com".to_owned(),
        ];
        assert_eq!(
            filter_for(&upns),
            "userPrincipalName in ('kim@contoso.com','o''neil@contoso.com')"
        );
        let ids = vec!["99a1915f-0000-4000-8000-00000000000a".to_owned()];
        assert_eq!(
            filter_for(&ids),
            "id in ('99a1915f-0000-4000-8000-00000000000a')"
        );
        assert!(!is_object_id("kim@contoso.com"));
    }
}
