//! The WebAuthn extensions an IdP asks for in its creation options (Entra:
//! `hmacCreateSecret`, `credentialProtectionPolicy`, `enforceCredentialProtectionPolicy`),
//! as owned data, and how a client carries them to the key the way browsers and Windows
//! do (issue 12 item 8).

/// A credProtect policy (WebAuthn `credentialProtectionPolicy`, CTAP credProtect level).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum CredProtectPolicy {
    /// `userVerificationOptional` (level 1): the credential is usable without UV.
    UserVerificationOptional,
    /// `userVerificationOptionalWithCredentialIDList` (level 2): without UV only when the
    /// RP names the credential.
    UserVerificationOptionalWithCredentialIdList,
    /// `userVerificationRequired` (level 3): only with UV.
    UserVerificationRequired,
}

impl CredProtectPolicy {
    /// The WebAuthn name of the policy (`None` for a name this version does not know:
    /// clients ignore those, as WebAuthn says).
    pub fn from_webauthn(name: &str) -> Option<Self> {
        match name {
            "userVerificationOptional" => Some(Self::UserVerificationOptional),
            "userVerificationOptionalWithCredentialIDList" => {
                Some(Self::UserVerificationOptionalWithCredentialIdList)
            }
            "userVerificationRequired" => Some(Self::UserVerificationRequired),
            _ => None,
        }
    }

    /// The WebAuthn name.
    pub fn as_webauthn(self) -> &'static str {
        match self {
            Self::UserVerificationOptional => "userVerificationOptional",
            Self::UserVerificationOptionalWithCredentialIdList => {
                "userVerificationOptionalWithCredentialIDList"
            }
            Self::UserVerificationRequired => "userVerificationRequired",
        }
    }

    /// The CTAP credProtect level (1, 2 or 3).
    pub fn level(self) -> u8 {
        match self {
            Self::UserVerificationOptional => 1,
            Self::UserVerificationOptionalWithCredentialIdList => 2,
            Self::UserVerificationRequired => 3,
        }
    }
}

/// The extensions of a creation challenge (owned; empty when the IdP asked for none).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CreationExtensions {
    /// `hmacCreateSecret: true`: make the credential with the hmac-secret extension.
    pub hmac_create_secret: bool,
    /// `credentialProtectionPolicy`, when the IdP named one this version knows.
    pub cred_protect: Option<CredProtectPolicy>,
    /// `enforceCredentialProtectionPolicy`: fail rather than make a credential with less
    /// protection than `cred_protect` asks.
    pub enforce_cred_protect: bool,
}

/// What the key is sent for a makeCredential: the credProtect level and hmac-secret.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KeyExtensions {
    /// The credProtect level to send (none: not sent).
    pub cred_protect: Option<u8>,
    /// Send `hmac-secret: true`.
    pub hmac_secret: bool,
}

/// Why the IdP's extensions cannot be carried to this key.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ExtensionError {
    /// The IdP enforces a credProtect policy above `userVerificationOptional` and the key
    /// does not support the credProtect extension (a browser fails the same way).
    #[error("the IdP enforces the credential protection policy {policy} and this key does not support the credProtect extension")]
    CredProtectUnsupported {
        /// The policy's WebAuthn name.
        policy: &'static str,
    },
}

impl CreationExtensions {
    /// The extensions to send to a key whose getInfo lists `key_extensions`, as a
    /// WebAuthn client does: hmac-secret only to a key that supports it; credProtect
    /// only to a key that supports it, and when it does not, an enforced policy above
    /// `userVerificationOptional` fails ([`ExtensionError::CredProtectUnsupported`])
    /// while an unenforced one (or level 1, every credential's default) is dropped.
    pub fn for_key(&self, key_extensions: &[String]) -> Result<KeyExtensions, ExtensionError> {
        let supports = |name: &str| key_extensions.iter().any(|e| e == name);
        let cred_protect = match self.cred_protect {
            Some(p) if supports("credProtect") => Some(p.level()),
            Some(p)
                if self.enforce_cred_protect && p > CredProtectPolicy::UserVerificationOptional =>
            {
                return Err(ExtensionError::CredProtectUnsupported {
                    policy: p.as_webauthn(),
                })
            }
            _ => None,
        };
        Ok(KeyExtensions {
            cred_protect,
            hmac_secret: self.hmac_create_secret && supports("hmac-secret"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exts(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| (*s).to_owned()).collect()
    }

    /// Entra's creation options as the emulator and Graph's sample send them.
    fn entra() -> CreationExtensions {
        CreationExtensions {
            hmac_create_secret: true,
            cred_protect: CredProtectPolicy::from_webauthn("userVerificationOptional"),
            enforce_cred_protect: true,
        }
    }

    #[test]
    fn entras_extensions_reach_a_key_that_supports_them() {
        let k = entra()
            .for_key(&exts(&["credProtect", "hmac-secret"]))
            .unwrap();
        assert_eq!(
            k,
            KeyExtensions {
                cred_protect: Some(1),
                hmac_secret: true
            }
        );
    }

    #[test]
    fn a_key_without_the_extensions_gets_none_and_level_1_enforced_is_no_failure() {
        assert_eq!(entra().for_key(&[]).unwrap(), KeyExtensions::default());
    }

    #[test]
    fn an_enforced_stronger_policy_fails_on_a_key_without_cred_protect() {
        let mut e = entra();
        e.cred_protect = Some(CredProtectPolicy::UserVerificationRequired);
        assert_eq!(
            e.for_key(&exts(&["hmac-secret"])),
            Err(ExtensionError::CredProtectUnsupported {
                policy: "userVerificationRequired"
            })
        );
        e.enforce_cred_protect = false;
        assert_eq!(
            e.for_key(&exts(&["hmac-secret"])).unwrap(),
            KeyExtensions {
                cred_protect: None,
                hmac_secret: true
            }
        );
        e.enforce_cred_protect = true;
        assert_eq!(
            e.for_key(&exts(&["credProtect"])).unwrap().cred_protect,
            Some(3)
        );
    }

    #[test]
    fn policy_names_round_trip_and_unknown_names_are_ignored() {
        for p in [
            CredProtectPolicy::UserVerificationOptional,
            CredProtectPolicy::UserVerificationOptionalWithCredentialIdList,
            CredProtectPolicy::UserVerificationRequired,
        ] {
            assert_eq!(CredProtectPolicy::from_webauthn(p.as_webauthn()), Some(p));
        }
        assert_eq!(CredProtectPolicy::from_webauthn("required"), None);
        assert_eq!(
            CredProtectPolicy::UserVerificationOptionalWithCredentialIdList.level(),
            2
        );
    }
}
