//! Users read ahead in batches during a bulk job: one `GET /users?$filter=… in (…)` for up
//! to [`USERS_PER_BATCH`] of the job's users instead of one `GET /users/{id}` each
//! (docs/ENTRA.md, "Users read in batches").
//!
//! The job announces its users in the order its rows run
//! ([`GraphClient::expect_users`]). When a row reads an announced user that is not cached,
//! that user and the next announced users of the same kind (object ids or UPNs) are read
//! in one request, and kept for [`crate::USER_TTL`]. The next batch is read ahead, in the
//! background, as soon as fewer than a batch of users read is waiting for its rows, so
//! the rows do not wait for a batch read every [`USERS_PER_BATCH`] rows (a row whose
//! user is in a read under way waits for that read). A user the batch
//! does not return (not found, or a name neither an object id nor a UPN) is read on its
//! own, which answers the typed not-found as before; so does every user when the batch
//! request fails.

use reqwest::Method;

use super::cache::Cache;
use super::{encode_segment, GraphClient, MAX_PAGES};
use crate::http::Core;
use crate::wire::{parse_json, Page, User};
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
    /// users in one request if it was announced. `None`: read it on its own. Either way
    /// the next batch is read ahead when fewer than a batch of users is in hand.
    pub(super) fn user_ahead(&self, id_or_upn: &str) -> Option<User> {
        let found = self.user_now(id_or_upn);
        if found.is_some() {
            self.cache.consumed(id_or_upn);
        }
        self.read_ahead();
        found
    }

    fn user_now(&self, id_or_upn: &str) -> Option<User> {
        if let Some(u) = self.cache.user(id_or_upn) {
            return Some(u);
        }
        let kind = is_object_id(id_or_upn);
        let batch = self
            .cache
            .take_batch(id_or_upn, USERS_PER_BATCH, |u| is_object_id(u) == kind);
        if batch.is_empty() {
            // Not announced, or in a batch read under way (another worker's, or the
            // read-ahead): wait for that one, driving the runtime the read-ahead runs on.
            let cache = self.cache.clone();
            let key = id_or_upn.to_owned();
            let _ = self.block(async move {
                let until = std::time::Instant::now() + super::cache::INFLIGHT_WAIT;
                while cache.in_flight(&key) && std::time::Instant::now() < until {
                    tokio::time::sleep(LANDING_POLL).await;
                }
            });
            return self.cache.user(id_or_upn);
        }
        let (core, root, cache) = (self.core.clone(), self.root(), self.cache.clone());
        match self.block(async move { read_batch(&core, &root, &cache, batch).await }) {
            Ok(true) => self.cache.user(id_or_upn),
            Ok(false) | Err(_) => None,
        }
    }

    /// Starts reading the next batch of announced users in the background (on the
    /// client's runtime, driven by whichever thread is in a request) when fewer than
    /// [`USERS_PER_BATCH`] users are in hand ahead of the rows: the rows of this batch
    /// do not wait for the next one's read.
    fn read_ahead(&self) {
        let batch = self.cache.take_ahead(USERS_PER_BATCH, is_object_id);
        if batch.is_empty() {
            return;
        }
        let (core, root, cache) = (self.core.clone(), self.root(), self.cache.clone());
        self.rt.spawn(async move {
            read_batch(&core, &root, &cache, batch).await;
            cache.ahead_landed();
        });
    }
}

/// How often a row waiting for a batch read under way looks whether it landed.
const LANDING_POLL: std::time::Duration = std::time::Duration::from_millis(1);

/// Reads `batch` (from `Cache::take_batch` / `take_ahead`, all of one kind) in one list
/// request (cut shorter when its filter would be too long: the rest goes back on the
/// queue), caches what it finds and marks it in hand. False: the request failed (its
/// users are then read one by one).
async fn read_batch(core: &Core, root: &str, cache: &Cache, all: Vec<String>) -> bool {
    let mut batch = all.clone();
    while batch.len() > 1 && filter_for(&batch).len() > MAX_FILTER_CHARS {
        batch.pop();
    }
    let found = users_in(core, root, &batch).await;
    if let Ok(found) = &found {
        for u in found {
            cache.put_user(&u.id, u);
        }
        let names = batch.iter().filter(|b| cache.user(b).is_some()).cloned();
        cache.found(names.collect::<Vec<_>>());
    }
    // Cut off for length: back on the queue for a later batch.
    cache.expect_users(&all[batch.len()..]);
    cache.batch_landed(&all);
    match found {
        Ok(_) => true,
        Err(e) => {
            tracing::debug!(error = %e, users = batch.len(), "batched user read failed; reading users one by one");
            false
        }
    }
}

/// The users among `users` (all object ids or all UPNs, at most [`USERS_PER_BATCH`])
/// that exist, in one list request (its pages followed).
async fn users_in(core: &Core, root: &str, users: &[String]) -> Result<Vec<User>, GraphError> {
    let mut url = Some(format!(
        "{root}/users?$filter={}&$select={USER_SELECT}&$top={}",
        encode_segment(&filter_for(users)),
        USERS_PER_BATCH
    ));
    let mut out = Vec::new();
    let mut pages = 0;
    while let Some(u) = url.take() {
        pages += 1;
        if pages > MAX_PAGES {
            return Err(GraphError::InvalidInput {
                field: "@odata.nextLink",
                reason: format!("more than {MAX_PAGES} pages"),
            });
        }
        let reply = core.request(Method::GET, &u, None, true).await?;
        let page: Page<User> = parse_json(&reply.body, "users page")?;
        out.extend(page.value);
        url = page.next_link;
    }
    Ok(out)
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
