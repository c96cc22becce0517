//! Attestation at issuance: right after makeCredential, before anything is stored or
//! registered, the new credential's attestation is checked against the engine's trust
//! store (a verified FIDO MDS3 BLOB plus extra roots, [`fido_core::trust`]).
//!
//! Always refused: an attestation object that does not parse or whose statement does not
//! verify (signature, WebAuthn leaf requirements, id-fido-gen-ce-aaguid extension equal to
//! authData's AAGUID), an authData AAGUID that differs from getInfo's, a credential
//! without user presence or user verification, and a discoverable credential not asked for.
//! Then the passkey template's [`AttestationRequirement`] decides whether an unattested
//! or non-MDS key may be issued.

use fido_core::attestation::AttestationObject;
use fido_core::trust::{format_aaguid, TrustError, TrustSource};

use super::{Engine, EngineError, UnixMillis};
use crate::idp::Idp;
use crate::template::{AttestationRequirement, PasskeyTemplate};
use crate::Error;
use keysmith_device::Made;

/// What the attestation check found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct AttestationVerdict {
    /// The chain validates to an MDS root listed for the AAGUID.
    pub mds: bool,
    /// The chain validates to an MDS root or an extra root.
    pub trusted: bool,
    /// For the audit log: format, AAGUID, verdict and why not trusted.
    pub detail: String,
}

impl Engine {
    /// What pre-flight passes as "attested" before the key has made a credential: the
    /// model is in the MDS BLOB with a good status (the real verdict follows
    /// makeCredential, [`Engine::check_attestation`]).
    pub(super) fn expects_attested(&self, aaguid: &[u8; 16]) -> bool {
        self.trust.in_mds(aaguid) && self.trust.knows(aaguid)
    }

    /// Checks a new credential (see the module docs). `info_aaguid` is getInfo's.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn check_attestation(
        &self,
        t: &PasskeyTemplate,
        idp: &dyn Idp,
        idp_user: &str,
        made: &Made,
        client_data_hash: &[u8; 32],
        info_aaguid: &[u8; 16],
        resident_key_requested: bool,
        now: UnixMillis,
    ) -> Result<AttestationVerdict, Error> {
        let refuse = |reason: String| EngineError::Attestation {
            passkey_template: t.name.clone(),
            reason,
        };
        let att = AttestationObject::from_cbor(&made.attestation_object)
            .map_err(|e| refuse(format!("attestation object: {e}")))?;
        let ad = att.auth_data();
        let acd = ad
            .attested_credential()
            .ok_or_else(|| refuse("authenticator data has no attested credential".into()))?;
        if acd.aaguid() != *info_aaguid {
            return Err(refuse(format!(
                "authenticator data AAGUID {} differs from getInfo AAGUID {}",
                format_aaguid(&acd.aaguid()),
                format_aaguid(info_aaguid)
            ))
            .into());
        }
        if !ad.flags().user_present() || !ad.flags().user_verified() {
            return Err(refuse(
                "the credential was made without user presence and verification (UP and UV flags)"
                    .into(),
            )
            .into());
        }
        if !resident_key_requested {
            return Err(refuse("a discoverable credential (rk) was not requested".into()).into());
        }
        let verdict = self.trust.verify(&att, client_data_hash, now / 1000);
        let (mut v, why) = match &verdict {
            Ok(a) => (
                AttestationVerdict {
                    mds: a.source == TrustSource::Mds,
                    trusted: true,
                    detail: String::new(),
                },
                match a.source {
                    TrustSource::Mds => String::new(),
                    _ => "it chains to an extra root, not to an MDS root for its AAGUID".into(),
                },
            ),
            Err(TrustError::Statement(e)) => {
                return Err(
                    refuse(format!("the attestation statement does not verify: {e}")).into(),
                )
            }
            Err(e) => (
                AttestationVerdict {
                    mds: false,
                    trusted: false,
                    detail: String::new(),
                },
                e.to_string(),
            ),
        };
        v.detail = format!(
            "fmt={} aaguid={} mds={} trusted={}{}",
            att.fmt(),
            format_aaguid(&acd.aaguid()),
            v.mds,
            v.trusted,
            if why.is_empty() {
                String::new()
            } else {
                format!(" ({why})")
            }
        );
        tracing::info!(
            aaguid = format_aaguid(&acd.aaguid()).as_str(),
            fmt = att.fmt(),
            mds = v.mds,
            trusted = v.trusted,
            "attestation checked"
        );
        match t.attestation {
            AttestationRequirement::Mds if !v.mds => {
                return Err(refuse(format!("template requires an MDS-attested key: {why}")).into())
            }
            AttestationRequirement::Trusted if !v.trusted => {
                return Err(refuse(format!("template requires an attested key: {why}")).into())
            }
            AttestationRequirement::Tenant => {
                if let Err(e) = idp.preflight(idp_user, &acd.aaguid(), v.mds) {
                    if v.mds {
                        return Err(e.into());
                    }
                    return Err(refuse(format!("{e} (the key is not MDS-attested: {why})")).into());
                }
            }
            _ => {}
        }
        Ok(v)
    }
}
