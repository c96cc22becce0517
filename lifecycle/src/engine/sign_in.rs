//! Sign-in with a key's registered passkeys, verified against the stored public keys.

use fido_core::attestation::verify_assertion;
use fido_core::cose::CoseKey;
use fido_transport::client::Authenticator;
use fido_transport::Transport;
use keysmith_device::OpError;
use keysmith_wire::{DeviceStep, OutcomeStatus, PinSource, StepOutput};
use rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha256};

use super::issue::transport_name;
use super::{b64, DevicePrompt, Engine, EngineError, LookupError};
use crate::remote::{DeviceLink, JobSpec, LocalLink, JOB_TTL_MS};
use crate::Error;

/// A verified sign-in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignIn {
    /// The passkey template of the passkey used.
    pub passkey_template: String,
    /// The IdP's method id.
    pub method_id: String,
    /// The credential id.
    pub credential_id: Vec<u8>,
    /// The signature counter the key reported.
    pub sign_count: u32,
}

impl Engine {
    /// Signs in with the key's registered passkeys: for each, checks the IdP still holds
    /// the method, makes a getAssertion (user verified with `pin`) over a fresh challenge
    /// and verifies it against the public key from the attestation the IdP accepted.
    pub fn sign_in<T: Transport>(
        &self,
        key_id: &str,
        pin: &str,
        device: &mut Authenticator<T>,
    ) -> Result<Vec<SignIn>, Error> {
        let prompt = |p: &DevicePrompt| self.prompt(p);
        let kind = transport_name(device.transport().kind());
        let mut link = LocalLink::open(device, Some(pin), kind, &prompt)?;
        // The key proves which key it is with the holder's PIN before anything else.
        super::identity::check_with_pin(&self.key(key_id)?, &mut link, pin)?;
        self.sign_in_via(key_id, &mut link)
    }

    /// The sign-in check over `link`: the PIN comes from the device half's holder UI.
    pub(crate) fn sign_in_via(
        &self,
        key_id: &str,
        link: &mut dyn DeviceLink,
    ) -> Result<Vec<SignIn>, Error> {
        let key = self.key(key_id)?;
        let span = tracing::info_span!(
            "sign_in",
            key_id = %key.key_id,
            serial = %key.serial,
            user = key.user_id.as_deref().unwrap_or(""),
        );
        let _entered = span.enter();
        let templates = self.template_for(&key)?;
        let user = key.user_id.clone().ok_or(LookupError::NotIssued {
            key_id: key.key_id.clone(),
            what: "user",
        })?;
        let sign_err = |reason: String| Error::from(EngineError::SignIn { reason });
        let mut out = Vec::new();
        for pk in self.store.list_passkeys(key_id)? {
            let Some(method_id) = pk.idp_method_id.clone() else {
                continue;
            };
            let t = templates.passkey.get(&pk.passkey_template).ok_or_else(|| {
                LookupError::UnknownTemplate {
                    template: pk.passkey_template.clone(),
                }
            })?;
            let idp = self.idp(&t.idp.connection)?;
            let idp_user = self.user_at(&templates, &user, None, &t.idp.connection)?;
            let held = idp.list(&idp_user)?;
            if !held.iter().any(|m| m.holds(&pk.credential_id)) {
                return Err(sign_err(format!("the IdP holds no passkey {method_id}")));
            }
            let rp_id = t.rp_id.clone().unwrap_or_else(|| idp.default_rp_id());
            let mut challenge = [0u8; 32];
            OsRng.fill_bytes(&mut challenge);
            let origin = t
                .origin
                .clone()
                .unwrap_or_else(|| format!("https://{rp_id}"));
            let client_data = format!(
                r#"{{"type":"webauthn.get","challenge":"{}","origin":{},"crossOrigin":false}}"#,
                b64(&challenge),
                serde_json::Value::from(origin.as_str())
            );
            let hash: [u8; 32] = Sha256::digest(client_data.as_bytes()).into();
            let pin_source = if link.current_known() {
                PinSource::Current
            } else {
                PinSource::HolderPin
            };
            let outcomes = link.run(JobSpec {
                operation: "verify".into(),
                key_id: Some(key.key_id.clone()),
                expect_aaguid: Some(key.aaguid),
                deadline_ms: JOB_TTL_MS,
                steps: vec![DeviceStep::GetAssertion {
                    rp_id: rp_id.clone(),
                    allow: vec![pk.credential_id.clone()],
                    client_data_json: client_data.clone().into_bytes(),
                    pin: Some(pin_source),
                }],
                secrets: Vec::new(),
            })?;
            let o = outcomes
                .first()
                .ok_or_else(|| sign_err("the key returned no assertion".into()))?;
            if o.status != OutcomeStatus::Ok {
                if let Some(e) = OpError::from_outcome(o) {
                    return Err(e.into());
                }
            }
            link.set_current_known(true);
            let Some(StepOutput::Asserted {
                credential_id,
                auth_data,
                signature,
                ..
            }) = o.out.clone()
            else {
                return Err(sign_err("the key returned no assertion".into()));
            };
            if credential_id != pk.credential_id {
                return Err(sign_err("the key signed with another credential".into()));
            }
            let cose = CoseKey::from_cbor_canonical(&pk.public_key)
                .map_err(|e| sign_err(format!("stored public key: {e}")))?;
            let parsed = verify_assertion(&cose, &auth_data, &hash, &signature)
                .map_err(|e| sign_err(format!("signature: {e}")))?;
            if !parsed.is_for_rp_id(&rp_id) {
                return Err(sign_err("rpIdHash does not match".into()));
            }
            if !parsed.flags().user_verified() {
                return Err(sign_err("the key did not verify the user".into()));
            }
            out.push(SignIn {
                passkey_template: pk.passkey_template.clone(),
                method_id,
                credential_id: pk.credential_id.clone(),
                sign_count: parsed.sign_count(),
            });
        }
        if out.is_empty() {
            return Err(sign_err("the key has no registered passkey".into()));
        }
        Ok(out)
    }
}
