//! Which of a user's registered passkeys the tenant's FIDO2 policy now blocks at sign-in
//! (key restrictions and passkey types apply at sign-in too; see [`crate::signin`]).

use super::GraphClient;
use crate::signin::{sign_in_check, SignInBlock};
use crate::wire::PasskeyType;
use crate::GraphError;

impl GraphClient {
    /// For each registered passkey of `user` (object id or UPN), given as its AAGUID
    /// (hyphenated, any case) and passkey type, `None` when the FIDO2 policy still lets it
    /// sign in, or the block naming the passkey profile(s) that refuse it
    /// ([`crate::signin::sign_in_check`]). One policy read (the job's cached policy while
    /// a bulk job runs) and one user and membership read for all of them.
    ///
    /// Needs `Policy.Read.AuthenticationMethod`, and for targeted policies
    /// `User.Read.All` and `GroupMember.Read.All`; a refused read is returned as its
    /// error (403).
    pub fn sign_in_blocks(
        &self,
        user: &str,
        passkeys: &[(String, PasskeyType)],
    ) -> Result<Vec<Option<SignInBlock>>, GraphError> {
        let policy = self.cache.policy().map_or_else(
            || self.fido2_policy().inspect(|p| self.cache.put_policy(p)),
            Ok,
        )?;
        let scope = self.user_scope(user, &policy)?;
        Ok(passkeys
            .iter()
            .map(|(aaguid, kind)| sign_in_check(&policy, &scope, aaguid, *kind).err())
            .collect())
    }
}
