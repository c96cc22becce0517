//! Every passkey a user holds (issue 19 item 4): the FIDO2 methods each IdP connection
//! lists for the user, each with its kind (from the AAGUID and the passkey type) and, for
//! those keysmith issued, the key that holds it; and the deletion of the passkeys keysmith
//! did not issue, for a lost identity or a leaver (a switch, off by default).

use serde::{Deserialize, Serialize};

use super::reconcile::{DriftKind, Held};
use super::{Engine, UnixMillis};
use crate::idp::IdpPasskey;
use crate::model::CredentialState;
use crate::store::{KeyQuery, KeyRecord};
use crate::Error;

/// Microsoft Authenticator's AAGUIDs (iOS, Android; docs/ENTRA.md, "2026").
pub const AUTHENTICATOR_AAGUIDS: &[&str] = &[
    "90a3ccdf-635c-4729-a248-9b709135078f",
    "de1e552d-db1d-4423-a619-566b625cdc84",
];

/// Windows Hello's AAGUIDs (docs/ENTRA.md, "2026").
pub const WINDOWS_HELLO_AAGUIDS: &[&str] = &[
    "08987058-cadc-4b81-b6e1-30de50dcbe96",
    "9ddd1817-af5a-4672-a2b9-3e3dd95000a9",
    "6028b017-b1d4-4c02-b4b3-afcdafc96bb2",
];

/// AAGUIDs of passkey providers that sync (the community list
/// `passkeydeveloper/passkey-authenticator-aaguids`): Google Password Manager, iCloud
/// Keychain (managed), 1Password, Bitwarden, Dashlane, Samsung Pass. A passkey Entra
/// reports as `synced` is a synced provider's whatever its AAGUID.
pub const SYNCED_PROVIDER_AAGUIDS: &[&str] = &[
    "ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4",
    "fbfc3007-154e-4ecc-8c0b-6e020557d7bd",
    "bada5566-a7aa-401f-bd96-45619a55120d",
    "d548826e-79b4-db40-a3d8-11116f7e8349",
    "531126d6-e717-415c-9320-3d9aa6981239",
    "53414d53-554e-4700-0000-000000000000",
];

/// What kind of authenticator holds a passkey.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum PasskeyKind {
    /// A roaming security key (device-bound, not one of the platform AAGUIDs below).
    SecurityKey,
    /// A passkey in Microsoft Authenticator.
    MicrosoftAuthenticator,
    /// Windows Hello.
    WindowsHello,
    /// A passkey provider that syncs between devices (Google, Apple, password managers).
    SyncedProvider,
    /// Not enough to tell (no AAGUID, or an unknown AAGUID without a passkey type).
    Unknown,
}

impl PasskeyKind {
    /// The stable snake_case name (as in JSON).
    pub const fn as_str(self) -> &'static str {
        match self {
            PasskeyKind::SecurityKey => "security_key",
            PasskeyKind::MicrosoftAuthenticator => "microsoft_authenticator",
            PasskeyKind::WindowsHello => "windows_hello",
            PasskeyKind::SyncedProvider => "synced_provider",
            PasskeyKind::Unknown => "unknown",
        }
    }

    /// The kind of a passkey with this AAGUID (any case, hyphenated) and passkey type
    /// (`deviceBound` / `synced`, Entra v1.0): the well-known AAGUIDs first, then a
    /// `synced` type, then a device-bound one (or a known model, or a key keysmith
    /// issued: `issued`) is a security key; anything else is unknown.
    pub fn of(aaguid: Option<&str>, passkey_type: Option<&str>, issued: bool) -> PasskeyKind {
        let a = aaguid.map(str::to_ascii_lowercase).unwrap_or_default();
        let listed = |l: &[&str]| l.contains(&a.as_str());
        if listed(AUTHENTICATOR_AAGUIDS) {
            PasskeyKind::MicrosoftAuthenticator
        } else if listed(WINDOWS_HELLO_AAGUIDS) {
            PasskeyKind::WindowsHello
        } else if listed(SYNCED_PROVIDER_AAGUIDS) || passkey_type == Some("synced") {
            PasskeyKind::SyncedProvider
        } else if issued || passkey_type == Some("deviceBound") {
            PasskeyKind::SecurityKey
        } else {
            PasskeyKind::Unknown
        }
    }
}

/// The key keysmith issued that holds a passkey.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedBy {
    /// The key.
    pub key_id: String,
    /// Its passkey template.
    pub passkey_template: String,
    /// The key's state.
    pub key_state: String,
}

/// One passkey an IdP connection lists for the user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldPasskey {
    /// The IdP connection.
    pub connection: String,
    /// The IdP's method id.
    pub method_id: String,
    /// Its display name.
    pub display_name: Option<String>,
    /// The AAGUID the IdP reports.
    pub aaguid: Option<String>,
    /// The model the IdP reports.
    pub model: Option<String>,
    /// `deviceBound` or `synced` (Entra v1.0 only).
    pub passkey_type: Option<String>,
    /// Its kind.
    pub kind: PasskeyKind,
    /// When it was registered (ISO 8601), if said.
    pub created: Option<String>,
    /// When it last signed in (ISO 8601; Entra beta only), if said.
    pub last_used: Option<String>,
    /// The key keysmith issued that holds it (`None`: keysmith did not issue it).
    pub issued_by: Option<IssuedBy>,
}

/// Every passkey a user holds, beside the keys keysmith issued them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserPasskeys {
    /// The user as asked for.
    pub user: String,
    /// The user's object id at the first connection that resolved them.
    pub user_id: Option<String>,
    /// The user's UPN there.
    pub upn: Option<String>,
    /// The passkeys, connection by connection, in the IdP's order.
    pub passkeys: Vec<HeldPasskey>,
    /// The keys keysmith issued the user (any state), by key id.
    pub keys: Vec<KeyRecord>,
    /// Connections that could not be asked: (connection, why).
    pub failed: Vec<(String, String)>,
}

/// A passkey keysmith did not issue, deleted for a lost identity or a leaver.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForeignDeletion {
    /// The IdP connection.
    pub connection: String,
    /// The IdP's method id.
    pub method_id: String,
    /// Its kind.
    pub kind: PasskeyKind,
    /// Why the deletion failed, if it did.
    pub error: Option<String>,
}

impl Engine {
    /// What each IdP connection holds for `user` (object id or UPN): the user's id, UPN
    /// and passkeys, or why it could not be asked.
    pub(super) fn held_by(&self, user: &str) -> (Vec<Held>, Vec<(String, String)>) {
        let mut held = Vec::new();
        let mut failed = Vec::new();
        for (name, idp) in &self.idps {
            match idp.user(user).and_then(|u| idp.list(&u.id).map(|m| (u, m))) {
                Ok((u, methods)) => held.push(Held {
                    connection: name.clone(),
                    user_id: u.id,
                    upn: u.user_principal_name,
                    methods,
                }),
                Err(e) => failed.push((name.clone(), e.to_string())),
            }
        }
        (held, failed)
    }

    /// The key and passkey template keysmith recorded for an IdP passkey, if any.
    fn issued_by(&self, m: &IdpPasskey) -> Result<Option<(KeyRecord, String)>, Error> {
        let mut ids = m.credential_id.iter().chain(&m.other_credential_ids);
        ids.try_fold(None, |found, c| {
            if found.is_some() {
                return Ok(found);
            }
            Ok(self
                .owner_of(c)?
                .map(|(k, pk)| (k, pk.passkey_template.clone())))
        })
    }

    /// Every passkey `user` (object id or UPN) holds at every IdP connection (security
    /// keys, Microsoft Authenticator, Windows Hello, synced providers), each with its
    /// kind and, when keysmith issued it, its key; and the keys keysmith issued the user.
    /// A connection that cannot be asked is listed in `failed`, not an error.
    pub fn user_passkeys(&self, user: &str) -> Result<UserPasskeys, Error> {
        let (held, failed) = self.held_by(user);
        let mut out = UserPasskeys {
            user: user.to_owned(),
            user_id: held.first().map(|h| h.user_id.clone()),
            upn: held.first().and_then(|h| h.upn.clone()),
            failed,
            ..UserPasskeys::default()
        };
        let mut ids = vec![user.to_owned()];
        for h in &held {
            if !ids.contains(&h.user_id) {
                ids.push(h.user_id.clone());
            }
            for m in &h.methods {
                let issued = self.issued_by(m)?;
                out.passkeys.push(HeldPasskey {
                    connection: h.connection.clone(),
                    method_id: m.method_id.clone(),
                    display_name: m.display_name.clone(),
                    aaguid: m.aaguid.clone(),
                    model: m.model.clone(),
                    passkey_type: m.passkey_type.clone(),
                    kind: PasskeyKind::of(
                        m.aaguid.as_deref(),
                        m.passkey_type.as_deref(),
                        issued.is_some(),
                    ),
                    created: m.created.clone(),
                    last_used: m.last_used.clone(),
                    issued_by: issued.map(|(k, t)| IssuedBy {
                        key_id: k.key_id,
                        passkey_template: t,
                        key_state: k.state.as_str().to_owned(),
                    }),
                });
            }
        }
        for id in &ids {
            for k in self.store.find_keys(&KeyQuery::ByUser(id.clone()))? {
                if !out.keys.iter().any(|x| x.key_id == k.key_id) {
                    out.keys.push(k);
                }
            }
        }
        out.keys.sort_by(|a, b| a.key_id.cmp(&b.key_id));
        Ok(out)
    }

    /// Deletes, at every IdP connection, the passkeys `user` holds that keysmith did not
    /// issue (Authenticator, Windows Hello, synced passkeys, other security keys): for a
    /// lost identity or a leaver, after their keys are revoked. Each deletion is
    /// journalled (a crash is finished by [`Engine::replay_journal`]) and audited on its
    /// own (action `reconcile`, the method named). A connection that cannot be asked is
    /// an error; a deletion that fails is reported in its entry (`error`).
    pub fn delete_foreign_passkeys(
        &self,
        actor: &str,
        user: &str,
        now: UnixMillis,
    ) -> Result<Vec<ForeignDeletion>, Error> {
        let (held, _) = self.held_by(user);
        // A connection that does not resolve the user: gone from the directory (a deleted
        // leaver, whose methods went with them) is nothing to delete; anything else is an
        // error.
        let mut failed = Vec::new();
        for (name, idp) in &self.idps {
            if held.iter().any(|h| &h.connection == name) {
                continue;
            }
            match idp.user(user).and_then(|u| idp.list(&u.id)) {
                Err(crate::idp::IdpError::Call {
                    status: Some(404),
                    operation: "user",
                    ..
                }) => {}
                Err(e) => failed.push((name.clone(), e.to_string())),
                Ok(_) => failed.push((name.clone(), "changed while listed".to_owned())),
            }
        }
        if let Some((connection, why)) = failed.into_iter().next() {
            return Err(crate::idp::IdpError::Call {
                idp: connection,
                operation: "list",
                status: None,
                request_id: None,
                message: why,
            }
            .into());
        }
        let mut out = Vec::new();
        for h in &held {
            for m in &h.methods {
                if self.issued_by(m)?.is_some() {
                    continue;
                }
                let kind = PasskeyKind::of(m.aaguid.as_deref(), m.passkey_type.as_deref(), false);
                let r = self.foreign_key(h, now).and_then(|k| {
                    self.journalled_delete(
                        actor,
                        &k,
                        "",
                        h,
                        m,
                        CredentialState::Unregistered,
                        DriftKind::Unknown,
                        now,
                    )
                });
                out.push(ForeignDeletion {
                    connection: h.connection.clone(),
                    method_id: m.method_id.clone(),
                    kind,
                    error: r.err().map(|e| e.to_string()),
                });
            }
        }
        Ok(out)
    }
}

impl Engine {
    /// The foreign-passkey part of a revoke row with `include_foreign`: the outcome's
    /// tail; a deletion that failed fails the row (run again, it retries the rest).
    pub(super) fn revoke_foreign_row(
        &self,
        actor: &str,
        user: &str,
        now: UnixMillis,
    ) -> Result<String, Error> {
        let done = self.delete_foreign_passkeys(actor, user, now)?;
        if let Some(e) = done.iter().find_map(|d| d.error.clone()) {
            return Err(crate::idp::IdpError::Call {
                idp: done
                    .iter()
                    .find(|d| d.error.is_some())
                    .map(|d| d.connection.clone())
                    .unwrap_or_default(),
                operation: "delete",
                status: None,
                request_id: None,
                message: e,
            }
            .into());
        }
        Ok(format!(
            "; {} passkey(s) keysmith did not issue deleted{}",
            done.len(),
            done.iter()
                .map(|d| format!(" {} ({})", d.method_id, d.kind.as_str()))
                .collect::<String>()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_from_aaguid_and_type() {
        let k = PasskeyKind::of;
        assert_eq!(
            k(
                Some("90A3CCDF-635C-4729-A248-9B709135078F"),
                Some("deviceBound"),
                false
            ),
            PasskeyKind::MicrosoftAuthenticator
        );
        assert_eq!(
            k(Some("08987058-cadc-4b81-b6e1-30de50dcbe96"), None, false),
            PasskeyKind::WindowsHello
        );
        assert_eq!(
            k(Some("ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4"), None, false),
            PasskeyKind::SyncedProvider
        );
        assert_eq!(
            k(
                Some("00000000-0000-0000-0000-000000000000"),
                Some("synced"),
                false
            ),
            PasskeyKind::SyncedProvider
        );
        assert_eq!(
            k(
                Some("cb69481e-8ff7-4039-93ec-0a2729a154a8"),
                Some("deviceBound"),
                false
            ),
            PasskeyKind::SecurityKey
        );
        assert_eq!(
            k(Some("cb69481e-8ff7-4039-93ec-0a2729a154a8"), None, true),
            PasskeyKind::SecurityKey
        );
        assert_eq!(
            k(Some("cb69481e-8ff7-4039-93ec-0a2729a154a8"), None, false),
            PasskeyKind::Unknown
        );
        assert_eq!(k(None, None, false), PasskeyKind::Unknown);
        assert_eq!(PasskeyKind::SyncedProvider.as_str(), "synced_provider");
    }
}
