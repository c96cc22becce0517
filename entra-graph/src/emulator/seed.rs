//! Test and demo set-up of the emulated tenant beyond what Graph lets a client do:
//! passkeys of other kinds (Authenticator, Windows Hello, synced providers), renames and
//! guests (issue 19 items 4–6).

use rand_core::{OsRng, RngCore};

use super::state::{iso8601, StoredMethod};
use super::Emulator;
use crate::wire::{AttestationLevel, Fido2Method, PasskeyType, User};

impl Emulator {
    /// Registers a passkey for `user` (id or UPN) as another authenticator would have:
    /// with this AAGUID, `passkey_type` (`deviceBound` / `synced`: listed on v1.0, as
    /// `passkeyType` is a v1.0 property) and display name, a random credential id and no
    /// attestation. Returns its method id (`None`: no such user).
    pub fn seed_passkey(
        &self,
        user: &str,
        aaguid: &str,
        passkey_type: Option<&str>,
        display_name: &str,
    ) -> Option<String> {
        let mut st = self.shared.state();
        let uid = st.find_user(user)?.id.clone();
        let mut cred = vec![0u8; 32];
        OsRng.fill_bytes(&mut cred);
        let id = crate::ids::encode_with_padding_digit(&cred);
        let now = iso8601(st.now());
        st.methods.entry(uid).or_default().push(StoredMethod {
            method: Fido2Method {
                odata_type: Some("#microsoft.graph.fido2AuthenticationMethod".into()),
                id: id.clone(),
                display_name: Some(display_name.to_owned()),
                created_date_time: Some(now),
                aa_guid: Some(aaguid.to_ascii_lowercase()),
                model: None,
                attestation_certificates: vec![],
                attestation_level: Some(AttestationLevel::NotAttested),
                passkey_type: passkey_type.map(|t| match t {
                    "synced" => PasskeyType::Synced,
                    "deviceBound" => PasskeyType::DeviceBound,
                    _ => PasskeyType::UnknownFutureValue,
                }),
                last_used_date_time: None,
            },
            credential_id: cred,
            stored_at: std::time::Instant::now() - std::time::Duration::from_secs(3600),
        });
        Some(id)
    }

    /// Changes a user's UPN (and mail), as an admin renaming them would: their passkeys
    /// keep the old user name (Entra cannot change it). False for an unknown user or a
    /// UPN another user has.
    pub fn rename_user(&self, user: &str, new_upn: &str) -> bool {
        let mut st = self.shared.state();
        if st.find_user(new_upn).is_some() {
            return false;
        }
        let Some(id) = st.find_user(user).map(|u| u.id.clone()) else {
            return false;
        };
        if let Some(u) = st.tenant.users.iter_mut().find(|u| u.id == id) {
            u.user_principal_name = Some(new_upn.to_owned());
            u.mail = Some(new_upn.to_owned());
        }
        st.directory_version += 1;
        let v = st.directory_version;
        st.user_versions.insert(id, v);
        true
    }

    /// Adds a guest (B2B collaboration) user: `userType` `Guest` and a UPN of the form
    /// `name_domain#EXT#@tenant`, as Entra writes an invited user's. Returns its object
    /// id.
    pub fn add_guest(&self, email: &str) -> String {
        let mut st = self.shared.state();
        let id = super::random_guid();
        let upn = format!("{}#EXT#@contoso.onmicrosoft.com", email.replace('@', "_"));
        st.tenant.users.push(User {
            id: id.clone(),
            display_name: Some(email.to_owned()),
            user_principal_name: Some(upn),
            mail: Some(email.to_owned()),
            given_name: None,
            surname: None,
            account_enabled: Some(true),
            employee_id: None,
            on_premises_immutable_id: None,
            user_type: Some("Guest".into()),
        });
        id
    }

    /// Adds a member (user or group object id) to a group of the tenant; false for an
    /// unknown group.
    pub fn add_group_member(&self, group: &str, member: &str) -> bool {
        let mut st = self.shared.state();
        match st
            .tenant
            .groups
            .iter_mut()
            .find(|g| g.id.eq_ignore_ascii_case(group))
        {
            Some(g) => {
                g.members.push(member.to_owned());
                true
            }
            None => false,
        }
    }
}
