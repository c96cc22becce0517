//! Which of a user's registered passkeys the tenant's FIDO2 policy now blocks at sign-in
//! (key restrictions and passkey types apply at sign-in too; see [`crate::signin`]).

use super::GraphClient;
use crate::policy::{target_group_ids, UserScope};
use crate::signin::{sign_in_check, SignInBlock};
use crate::wire::PasskeyType;
use crate::GraphError;

impl GraphClient {
    /// For each registered passkey of the user `user_id` (the object id: policy targets
    /// name users by object id), given as its AAGUID (hyphenated, any case) and passkey
    /// type, `None` when the FIDO2 policy still lets it sign in, or the block naming the
    /// passkey profile(s) that refuse it ([`crate::signin::sign_in_check`]). One policy
    /// read (the job's cached policy while a bulk job runs) and, when the policy targets
    /// groups, one `checkMemberGroups` per 20 target groups, for all of them.
    ///
    /// Needs `Policy.Read.AuthenticationMethod`, and for group targets `User.Read.All`
    /// and `GroupMember.Read.All`; a refused read is returned as its error (403).
    pub fn sign_in_blocks(
        &self,
        user_id: &str,
        passkeys: &[(String, PasskeyType)],
    ) -> Result<Vec<Option<SignInBlock>>, GraphError> {
        let policy = self.cache.policy().map_or_else(
            || self.fido2_policy().inspect(|p| self.cache.put_policy(p)),
            Ok,
        )?;
        let groups = self.member_groups(user_id, &target_group_ids(&policy))?;
        let scope = UserScope::new(user_id, groups);
        Ok(passkeys
            .iter()
            .map(|(aaguid, kind)| sign_in_check(&policy, &scope, aaguid, *kind).err())
            .collect())
    }
}
