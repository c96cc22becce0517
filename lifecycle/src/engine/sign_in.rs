//! Sign-in with a key's registered passkeys, verified against the stored public keys.

use fido_core::attestation::verify_assertion;
use fido_core::cose::CoseKey;
use fido_core::pin::Permissions;
use fido_transport::client::{Authenticator, GetAssertionArgs};
use fido_transport::Transport;
use rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha256};

use super::device::DeviceOps;
use super::{b64, Engine, EngineError, LookupError};
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
            let token = device.token(pin, Permissions::GET_ASSERTION, Some(&rp_id))?;
            let mut args = GetAssertionArgs::new(rp_id.clone(), hash);
            args.allow_list = vec![fido_core::commands::CredentialDescriptor::public_key(
                pk.credential_id.clone(),
            )];
            let assertions = DeviceOps::get_assertion(device, &args, &token, &|p| self.prompt(p))?;
            let a = assertions
                .first()
                .ok_or_else(|| sign_err("the key returned no assertion".into()))?;
            if a.credential.id != pk.credential_id {
                return Err(sign_err("the key signed with another credential".into()));
            }
            let cose = CoseKey::from_cbor_canonical(&pk.public_key)
                .map_err(|e| sign_err(format!("stored public key: {e}")))?;
            let parsed = verify_assertion(&cose, &a.auth_data_bytes, &hash, &a.signature)
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
