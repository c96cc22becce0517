//! Calls a card-management system needs beyond register/list/delete (issue 13 items
//! 9–14): every authentication method of a user, signing a user out, Temporary Access
//! Passes, the users delta and user lookups.

use super::{encode_segment, GraphClient};
use crate::wire::AuthenticationMethod;
use crate::GraphError;

/// The least-privileged application permission that lists every authentication method.
pub const PERMISSION_METHODS_READ: &str = "UserAuthenticationMethod.Read.All";
/// The least-privileged application permission that signs a user out everywhere.
pub const PERMISSION_REVOKE_SESSIONS: &str = "User.RevokeSessions.All";

impl GraphClient {
    /// Every authentication method of a user (`GET /users/{id}/authentication/methods`:
    /// password, passkeys, Windows Hello, Authenticator, phone, TAP, ...). Needs
    /// `UserAuthenticationMethod.Read.All`; the passkey-only permission does not cover it.
    pub fn authentication_methods(
        &self,
        user: &str,
    ) -> Result<Vec<AuthenticationMethod>, GraphError> {
        self.get_all(
            format!(
                "{}/users/{}/authentication/methods",
                self.root(),
                encode_segment(user)
            ),
            "authenticationMethods page",
        )
    }

    /// How many phishing-resistant methods
    /// ([`crate::wire::PHISHING_RESISTANT_TYPES`]) the user keeps once the method
    /// `removing` (a fido2 method id) is gone: 0 means revoking it leaves the user none.
    pub fn phishing_resistant_left(&self, user: &str, removing: &str) -> Result<usize, GraphError> {
        Ok(self
            .authentication_methods(user)?
            .iter()
            .filter(|m| m.is_phishing_resistant() && m.id != removing)
            .count())
    }

    /// Invalidates the user's refresh tokens and session cookies
    /// (`POST /users/{id}/revokeSignInSessions`), e.g. after a lost or stolen key's
    /// passkey is deleted. Idempotent, so retried like a read. Needs
    /// `User.RevokeSessions.All` (or `User.ReadWrite.All` / `Directory.ReadWrite.All`).
    pub fn revoke_sign_in_sessions(&self, user: &str) -> Result<(), GraphError> {
        let url = format!(
            "{}/users/{}/revokeSignInSessions",
            self.root(),
            encode_segment(user)
        );
        let _: serde_json::Value = self.post_json(
            &url,
            &serde_json::json!({}),
            true,
            "revokeSignInSessions result",
        )?;
        Ok(())
    }
}
