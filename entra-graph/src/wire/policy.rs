//! The tenant's FIDO2 method policy: state, key restrictions, passkey profiles and targets.

use serde::{Deserialize, Serialize};

use super::null_as_default;

/// `state` of an authentication method configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum MethodState {
    /// The method may be used.
    Enabled,
    /// The method is off for the tenant.
    Disabled,
    /// A value this library does not know yet.
    #[serde(other)]
    UnknownFutureValue,
}

/// `enforcementType` of key restrictions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum EnforcementType {
    /// Only the listed AAGUIDs are allowed.
    Allow,
    /// The listed AAGUIDs are blocked.
    Block,
    /// A value this library does not know yet.
    #[serde(other)]
    UnknownFutureValue,
}

/// `fido2KeyRestrictions`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyRestrictions {
    /// Whether the list is enforced.
    #[serde(default)]
    pub is_enforced: bool,
    /// Allow or block list. Nullable in the v1.0 CSDL (no `Nullable="false"`): a `null`
    /// or absent value parses as `None`, which the pre-flight reads as `block` (what a
    /// fresh tenant shows).
    #[serde(default)]
    pub enforcement_type: Option<EnforcementType>,
    /// The AAGUIDs.
    #[serde(default, deserialize_with = "null_as_default")]
    pub aa_guids: Vec<String>,
}

/// `attestationEnforcement` of a passkey profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum AttestationEnforcement {
    /// Attestation not checked.
    Disabled,
    /// Attestation required at registration.
    RegistrationOnly,
    /// A value this library does not know yet.
    #[serde(other)]
    UnknownFutureValue,
}

/// One `passkeyProfiles` entry of the FIDO2 policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PasskeyProfile {
    /// Profile id.
    pub id: String,
    /// Profile name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Comma-separated passkey types allowed (`deviceBound,synced`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passkey_types: Option<String>,
    /// Attestation enforcement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attestation_enforcement: Option<AttestationEnforcement>,
    /// AAGUID restrictions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_restrictions: Option<KeyRestrictions>,
}

/// One `includeTargets`/`excludeTargets` entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyTarget {
    /// `group` or `user`.
    #[serde(default)]
    pub target_type: String,
    /// Group id or `all_users`.
    pub id: String,
    /// Whether registration is required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_registration_required: Option<bool>,
    /// Ids of the passkey profiles that apply to this target (include targets of a
    /// policy with passkey profiles; empty means the default profile).
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub allowed_passkey_profiles: Vec<String>,
}

/// `fido2AuthenticationMethodConfiguration`: the tenant's FIDO2 method policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Fido2Policy {
    /// `@odata.context` when present.
    #[serde(
        rename = "@odata.context",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub context: Option<String>,
    /// `@odata.type` when present.
    #[serde(
        rename = "@odata.type",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub odata_type: Option<String>,
    /// Always `Fido2`.
    pub id: String,
    /// Enabled or disabled.
    pub state: MethodState,
    /// Self-service registration allowed (required for v1.0 provisioning).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_self_service_registration_allowed: Option<bool>,
    /// Deprecated top-level attestation switch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_attestation_enforced: Option<bool>,
    /// Deprecated top-level key restrictions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_restrictions: Option<KeyRestrictions>,
    /// Who the method is enabled for.
    #[serde(default, deserialize_with = "null_as_default")]
    pub include_targets: Vec<PolicyTarget>,
    /// Who is excluded.
    #[serde(default, deserialize_with = "null_as_default")]
    pub exclude_targets: Vec<PolicyTarget>,
    /// Passkey profiles (newer, group-based).
    #[serde(default, deserialize_with = "null_as_default")]
    pub passkey_profiles: Vec<PasskeyProfile>,
    /// Id of the non-deletable baseline profile among `passkeyProfiles`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_passkey_profile: Option<String>,
}

impl Fido2Policy {
    /// Sets attestation enforcement where the tenant reads it: the deprecated top-level
    /// `isAttestationEnforced` and every passkey profile's `attestationEnforcement`
    /// (`registrationOnly` or `disabled`).
    pub fn set_attestation_enforced(&mut self, enforced: bool) {
        self.is_attestation_enforced = Some(enforced);
        for p in &mut self.passkey_profiles {
            p.attestation_enforcement = Some(if enforced {
                AttestationEnforcement::RegistrationOnly
            } else {
                AttestationEnforcement::Disabled
            });
        }
    }

    /// Sets the same key restrictions on the deprecated top-level field and on every
    /// passkey profile.
    pub fn set_key_restrictions(&mut self, restrictions: Option<KeyRestrictions>) {
        for p in &mut self.passkey_profiles {
            p.key_restrictions = restrictions.clone();
        }
        self.key_restrictions = restrictions;
    }
}
