//! Deferred activation over the split when the holder does not know the key's id (review
//! E12): the holder signs in first; then a silent assertion (`up=false`) over the
//! credentials of *their* issued keys picks the attached key, and its signature, checked
//! against the public key the key attested at issuance, proves this session holds that
//! very key. Only then does the activation run.

use rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha256};

use fido_core::attestation::verify_assertion;
use fido_core::cose::CoseKey;
use keysmith_wire::{DeviceStep, OutcomeStatus, StepOutput};

use super::selfservice::Ctx;
use super::{b64, Engine, SelfServiceError, UnixMillis};
use crate::model::CredentialState;
use crate::remote::{DeviceLink, JobSpec, JOB_TTL_MS};
use crate::store::{KeyQuery, KeyRecord, PasskeyRecord};
use crate::Error;

impl Engine {
    /// Self-service PIN set over `link` for whichever of the holder's issued keys is
    /// attached (found by a possession proof, see the module documentation; `only_key`
    /// narrows the candidates to one key). The proof comes before any transport PIN is
    /// released. The holder is
    /// authenticated with the OIDC settings the loaded self-service templates share;
    /// the key's own template must allow `pin_set_allowed`.
    pub(crate) fn self_set_pin_probed_via(
        &self,
        id_token: &str,
        nonce: &str,
        only_key: Option<&str>,
        link: &mut dyn DeviceLink,
        now: UnixMillis,
    ) -> Result<KeyRecord, Error> {
        let templates = self.holder_templates().into_iter().next().ok_or(
            SelfServiceError::SelfServiceNotAllowed {
                template: String::new(),
                what: "PIN set (no template allows it)",
            },
        )?;
        let mut ctx = Ctx {
            action: "self_set_pin",
            key_id: None,
            user_id: None,
            template: None,
        };
        let holder = match self.authenticate(&templates, id_token, nonce, now) {
            Ok(h) => h,
            Err(r) => return Err(self.refuse_self(&r.actor, &ctx, r.error, now)),
        };
        ctx.user_id = holder.user().map(str::to_owned);
        // The holder's issued keys and their not-yet-registered credentials.
        let mut candidates: Vec<(KeyRecord, Vec<PasskeyRecord>)> = Vec::new();
        for who in [
            holder.token.object_id.as_deref(),
            holder.token.upn.as_deref(),
        ]
        .into_iter()
        .flatten()
        {
            for key in self.store.find_keys(&KeyQuery::ByUser(who.to_owned()))? {
                if key.state != CredentialState::Issued
                    || only_key.is_some_and(|k| k != key.key_id)
                    || candidates.iter().any(|(k, _)| k.key_id == key.key_id)
                    || !self.holder_owns(&holder, &key)?
                {
                    continue;
                }
                let pks: Vec<PasskeyRecord> = self
                    .store
                    .list_passkeys(&key.key_id)?
                    .into_iter()
                    .filter(|p| p.state == CredentialState::Issued)
                    .collect();
                if !pks.is_empty() {
                    candidates.push((key, pks));
                }
            }
        }
        let not_owner = |ctx: &Ctx<'_>| {
            self.refuse_self(
                &holder.actor,
                ctx,
                SelfServiceError::NotKeyOwner {
                    key_id: "(the attached key)".into(),
                }
                .into(),
                now,
            )
        };
        if candidates.is_empty() {
            return Err(not_owner(&ctx));
        }
        let key = match self.probe(&candidates, link)? {
            Some(k) => k,
            None => return Err(not_owner(&ctx)),
        };
        let key_templates = self.template_for(&key)?;
        ctx.key_id = Some(&key.key_id);
        ctx.template = Some(key_templates.credential.name.clone());
        if !key_templates.credential.self_service.pin_set_allowed {
            let e = SelfServiceError::SelfServiceNotAllowed {
                template: key_templates.credential.name.clone(),
                what: "PIN set",
            };
            return Err(self.refuse_self(&holder.actor, &ctx, e.into(), now));
        }
        self.audit_sign_in(&holder, &ctx, now)?;
        self.activate_via(&holder.actor, &key.key_id, link, now)
    }

    /// The loaded templates that allow holder PIN set with an OIDC configuration.
    fn holder_templates(&self) -> Vec<crate::template::TemplateSet> {
        self.templates
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .filter(|t| {
                t.credential.self_service.pin_set_allowed
                    && t.credential.self_service.oidc.is_some()
            })
            .cloned()
            .collect()
    }

    /// Runs a silent assertion over the candidates' credentials (one step per RP id) and
    /// returns the key whose credential signed, the signature checked against the public
    /// key it attested. `None` when the attached key holds none of them.
    fn probe(
        &self,
        candidates: &[(KeyRecord, Vec<PasskeyRecord>)],
        link: &mut dyn DeviceLink,
    ) -> Result<Option<KeyRecord>, Error> {
        let mut by_rp: Vec<(String, String, Vec<Vec<u8>>)> = Vec::new();
        for (key, pks) in candidates {
            let templates = self.template_for(key)?;
            for pk in pks {
                let Some(t) = templates.passkey.get(&pk.passkey_template) else {
                    continue;
                };
                let rp_id = match &t.rp_id {
                    Some(r) => r.clone(),
                    None => self.idp(&t.idp.connection)?.default_rp_id(),
                };
                let origin = t
                    .origin
                    .clone()
                    .unwrap_or_else(|| format!("https://{rp_id}"));
                match by_rp.iter_mut().find(|(r, _, _)| *r == rp_id) {
                    Some((_, _, ids)) => ids.push(pk.credential_id.clone()),
                    None => by_rp.push((rp_id, origin, vec![pk.credential_id.clone()])),
                }
            }
        }
        for (rp_id, origin, allow) in by_rp {
            let mut challenge = [0u8; 32];
            OsRng.fill_bytes(&mut challenge);
            let client_data = format!(
                r#"{{"type":"webauthn.get","challenge":"{}","origin":{},"crossOrigin":false}}"#,
                b64(&challenge),
                serde_json::Value::from(origin.as_str())
            );
            let hash: [u8; 32] = Sha256::digest(client_data.as_bytes()).into();
            let outcomes = link.run(JobSpec {
                operation: "activate".into(),
                key_id: None,
                expect_aaguid: None,
                deadline_ms: JOB_TTL_MS,
                steps: vec![DeviceStep::Probe {
                    rp_id: rp_id.clone(),
                    allow,
                    client_data_json: client_data.into_bytes(),
                }],
                secrets: Vec::new(),
            })?;
            let Some(o) = outcomes.first() else { continue };
            if o.status != OutcomeStatus::Ok {
                // No credential of this RP on the attached key (or a refusal): try the next.
                continue;
            }
            let Some(StepOutput::Asserted {
                credential_id,
                auth_data,
                signature,
                ..
            }) = &o.out
            else {
                continue;
            };
            for (key, pks) in candidates {
                let Some(pk) = pks.iter().find(|p| &p.credential_id == credential_id) else {
                    continue;
                };
                let Ok(cose) = CoseKey::from_cbor_canonical(&pk.public_key) else {
                    continue;
                };
                let Ok(parsed) = verify_assertion(&cose, auth_data, &hash, signature) else {
                    continue;
                };
                if parsed.is_for_rp_id(&rp_id) {
                    return Ok(Some(key.clone()));
                }
            }
        }
        Ok(None)
    }
}
