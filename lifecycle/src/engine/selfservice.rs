//! Self-service flows: the holder, authenticated by an OpenID Connect ID token from the
//! template's issuer, sets their PIN (activating the key) or issues a blank key to
//! themself. Every refusal (bad token, not allowed, not the owner) is audited as
//! `refused` with the reason; neither the token nor the PIN ever reaches the audit log.
//!
//! PIN unblock: CTAP has no way to unblock a PIN other than authenticatorReset, which
//! destroys every passkey on the key. So "unblock" is not faked: an authenticated owner
//! of a PIN-blocked key gets [`SelfServiceError::PinBlockedNeedsReissue`] and the key is marked
//! as needing reissue (the operator's reissue resets it and makes new passkeys).

use std::sync::{Arc, PoisonError};
use std::time::{Duration, UNIX_EPOCH};

use entra_graph::oidc::{OidcSettings, OidcVerifier, VerifiedToken};
use entra_graph::GraphError;
use fido_transport::client::Authenticator;
use fido_transport::Transport;

use super::device::DeviceOps;
use super::{key_id_for, Engine, EngineError, IssueRequest, SelfServiceError, UnixMillis};
use crate::model::CredentialState;
use crate::store::{KeyRecord, NewAuditRecord};
use crate::template::{KeyTransport, OidcConfig, TemplateSet};
use crate::Error;

/// Actor recorded when the token did not verify (the holder is unknown).
const UNVERIFIED_ACTOR: &str = "self:unverified";

/// The key of the engine's verifier cache: (issuer, audience, jwks_url).
pub(super) type VerifierKey = (String, String, String);

fn holder_auth(e: GraphError) -> SelfServiceError {
    let (claim, reason) = match e {
        GraphError::Oidc { claim, reason } => (claim.to_owned(), reason),
        GraphError::OidcKeys { reason } => ("issuer keys".to_owned(), reason),
        GraphError::Config { setting, reason } => (setting.to_owned(), reason),
        other => ("token".to_owned(), other.to_string()),
    };
    SelfServiceError::HolderAuth { claim, reason }
}

/// Who the holder is, from a verified token.
struct Holder {
    /// `self:<oid or upn>`.
    actor: String,
    token: VerifiedToken,
}

impl Holder {
    /// The directory user the token names: the object id, else the UPN.
    fn user(&self) -> Option<&str> {
        self.token
            .object_id
            .as_deref()
            .or(self.token.upn.as_deref())
            .filter(|s| !s.is_empty())
    }
}

/// Where a refusal is recorded.
struct Ctx<'a> {
    action: &'static str,
    key_id: Option<&'a str>,
    user_id: Option<String>,
    template: Option<String>,
}

impl Engine {
    fn verifier(&self, oidc: &OidcConfig) -> Result<Arc<OidcVerifier>, SelfServiceError> {
        let key: VerifierKey = (
            oidc.issuer.clone(),
            oidc.audience.clone(),
            oidc.jwks_url.clone(),
        );
        let mut cache = self
            .verifiers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(v) = cache.get(&key) {
            return Ok(v.clone());
        }
        let mut settings = OidcSettings::new(oidc.issuer.clone(), oidc.audience.clone());
        settings.jwks_url = Some(oidc.jwks_url.clone()).filter(|u| !u.is_empty());
        let v = Arc::new(OidcVerifier::new(settings).map_err(holder_auth)?);
        cache.insert(key, v.clone());
        Ok(v)
    }

    /// Verifies the holder's token against the template's OIDC configuration.
    fn authenticate(
        &self,
        templates: &TemplateSet,
        id_token: &str,
        now: UnixMillis,
    ) -> Result<Holder, SelfServiceError> {
        let oidc = templates
            .credential
            .self_service
            .oidc
            .as_ref()
            .ok_or_else(|| SelfServiceError::SelfServiceNotAllowed {
                template: templates.credential.name.clone(),
                what: "self-service (no OIDC configuration)",
            })?;
        let verifier = self.verifier(oidc)?;
        let at = UNIX_EPOCH + Duration::from_millis(now);
        let token = verifier.verify(id_token, at).map_err(holder_auth)?;
        let mut holder = Holder {
            actor: String::new(),
            token,
        };
        let who = holder
            .user()
            .ok_or_else(|| SelfServiceError::HolderAuth {
                claim: "oid".into(),
                reason: "the token names no object id or user name".into(),
            })?
            .to_owned();
        holder.actor = format!("self:{who}");
        Ok(holder)
    }

    /// True when the verified holder is the user the key is issued to: the token's `oid`
    /// equals the recorded user (or its IdP object id); only a token without `oid` falls
    /// back to the recorded UPN (`preferred_username` is mutable, so it is second best).
    fn holder_owns(&self, holder: &Holder, key: &KeyRecord) -> Result<bool, Error> {
        let Some(user_id) = key.user_id.as_deref() else {
            return Ok(false);
        };
        let record = self.store.get_user(user_id)?;
        if let Some(oid) = holder.token.object_id.as_deref() {
            let idp_id = record.as_ref().and_then(|r| r.idp_user_id.as_deref());
            return Ok(oid.eq_ignore_ascii_case(user_id)
                || idp_id.is_some_and(|i| i.eq_ignore_ascii_case(oid)));
        }
        let upn = holder.token.upn.as_deref().unwrap_or_default();
        Ok(!upn.is_empty()
            && (upn.eq_ignore_ascii_case(user_id)
                || record.is_some_and(|r| r.upn.eq_ignore_ascii_case(upn))))
    }

    /// Records a refusal (outcome `refused`, the reason as detail) and returns the error.
    fn refuse_self(&self, actor: &str, ctx: &Ctx<'_>, e: Error, now: UnixMillis) -> Error {
        let rec = NewAuditRecord {
            actor: actor.to_owned(),
            time_ms: now,
            action: ctx.action.to_owned(),
            key_id: ctx.key_id.map(str::to_owned),
            user_id: ctx.user_id.clone(),
            template_id: ctx.template.clone(),
            outcome: "refused".into(),
            idp_request_id: None,
            detail: Some(e.to_string()),
        };
        // Not best effort: a refusal that cannot be recorded fails as such.
        self.audit_or_fail(&rec, e)
    }

    /// Self-service PIN set: the holder, authenticated by `id_token` (checked against the
    /// key's template's OIDC configuration), sets their PIN on an Issued key; the normal
    /// activation follows (the PIN replaces the transport PIN, pending registrations are
    /// sent; an expired challenge refuses and marks the key as needing reissue). Needs
    /// `pin_set_allowed` and that the token's subject owns the key. Audited as
    /// `self:<oid or upn>`.
    pub fn self_set_pin<T: Transport>(
        &self,
        key_id: &str,
        id_token: &str,
        new_pin: &str,
        device: &mut Authenticator<T>,
        now: UnixMillis,
    ) -> Result<KeyRecord, Error> {
        let (_, holder) = self.authorize_owner(
            key_id,
            id_token,
            "self_set_pin",
            "PIN set",
            |s| s.pin_set_allowed,
            now,
        )?;
        self.activate(&holder.actor, key_id, new_pin, device, now)
    }

    /// The preamble of the self-service actions on an issued key: the token verified
    /// against the key's template's OIDC settings, the action allowed by the template
    /// (`allowed`), the holder owning the key. Every refusal is audited.
    fn authorize_owner(
        &self,
        key_id: &str,
        id_token: &str,
        action: &'static str,
        what: &'static str,
        allowed: fn(&crate::template::SelfService) -> bool,
        now: UnixMillis,
    ) -> Result<(KeyRecord, Holder), Error> {
        let key = self.key(key_id)?;
        let templates = self.template_for(&key)?;
        let ctx = Ctx {
            action,
            key_id: Some(key_id),
            user_id: key.user_id.clone(),
            template: Some(templates.credential.name.clone()),
        };
        let holder = match self.authenticate(&templates, id_token, now) {
            Ok(h) => h,
            Err(e) => return Err(self.refuse_self(UNVERIFIED_ACTOR, &ctx, e.into(), now)),
        };
        let refuse = |e: SelfServiceError| self.refuse_self(&holder.actor, &ctx, e.into(), now);
        if !allowed(&templates.credential.self_service) {
            return Err(refuse(SelfServiceError::SelfServiceNotAllowed {
                template: templates.credential.name.clone(),
                what,
            }));
        }
        if !self.holder_owns(&holder, &key)? {
            return Err(refuse(SelfServiceError::NotKeyOwner {
                key_id: key_id.to_owned(),
            }));
        }
        Ok((key, holder))
    }

    /// Self-issuance: the holder, authenticated by `id_token`, issues the attached key
    /// (blank, unknown, or unregistered) to themself with the loaded credential template
    /// `template` (it must allow `self_issuance_allowed`; a holder never supplies the
    /// template). The user is always the token's subject. The key is activated at once
    /// with `new_pin`. A key issued to anyone (the holder included) is refused; keys are
    /// never reset here (`can_reset_in_place` is false), so templates that reset before
    /// issuance are refused by the planner.
    #[allow(clippy::too_many_arguments)]
    pub fn self_issue<T: Transport>(
        &self,
        id_token: &str,
        template: &str,
        serial: &str,
        transport: KeyTransport,
        new_pin: &str,
        device: &mut Authenticator<T>,
        now: UnixMillis,
    ) -> Result<KeyRecord, Error> {
        let info = DeviceOps::info(device)?;
        let key_id = key_id_for(&info.aaguid, serial);
        let mut ctx = Ctx {
            action: "self_issue",
            key_id: Some(&key_id),
            user_id: None,
            template: Some(template.to_owned()),
        };
        let templates = match self.loaded_template(template) {
            Ok(t) => t,
            Err(e) => return Err(self.refuse_self(UNVERIFIED_ACTOR, &ctx, e, now)),
        };
        let holder = match self.authenticate(&templates, id_token, now) {
            Ok(h) => h,
            Err(e) => return Err(self.refuse_self(UNVERIFIED_ACTOR, &ctx, e.into(), now)),
        };
        let user = holder.user().unwrap_or_default().to_owned();
        ctx.user_id = Some(user.clone());
        if !templates.credential.self_service.self_issuance_allowed {
            let e = SelfServiceError::SelfServiceNotAllowed {
                template: templates.credential.name.clone(),
                what: "self-issuance",
            };
            return Err(self.refuse_self(&holder.actor, &ctx, e.into(), now));
        }
        if let Some(existing) = self.store.get_key(&key_id)? {
            if !matches!(
                existing.state,
                CredentialState::Blank | CredentialState::Unregistered
            ) {
                let e = SelfServiceError::AlreadyIssued {
                    key_id: key_id.clone(),
                    state: existing.state,
                };
                ctx.user_id = existing.user_id.clone().or(ctx.user_id);
                return Err(self.refuse_self(&holder.actor, &ctx, e.into(), now));
            }
        }
        let request = IssueRequest {
            actor: holder.actor.clone(),
            user,
            serial: serial.to_owned(),
            transport,
            can_reset_in_place: false,
        };
        let key = self.issue_and_activate(&request, template, new_pin, device, now)?;
        if key.state == CredentialState::Issued {
            // The template does not initiate at issuance: activate now with their PIN.
            return self.activate(&holder.actor, &key.key_id, new_pin, device, now);
        }
        Ok(key)
    }

    /// Self-service PIN unblock, done honestly: CTAP can only clear a blocked PIN by
    /// resetting the key, which destroys its passkeys. For the authenticated owner of an
    /// Active key (template with `pin_unblock_allowed`) whose PIN is blocked, the key is
    /// marked as needing reissue and [`SelfServiceError::PinBlockedNeedsReissue`] is returned;
    /// when the PIN is not blocked, [`SelfServiceError::PinNotBlocked`]. Never succeeds.
    pub fn self_unblock_pin<T: Transport>(
        &self,
        key_id: &str,
        id_token: &str,
        device: &mut Authenticator<T>,
        now: UnixMillis,
    ) -> Result<KeyRecord, Error> {
        let (key, holder) = self.authorize_owner(
            key_id,
            id_token,
            "self_unblock_pin",
            "PIN unblock",
            |s| s.pin_unblock_allowed,
            now,
        )?;
        let ctx = Ctx {
            action: "self_unblock_pin",
            key_id: Some(key_id),
            user_id: key.user_id.clone(),
            template: key.template_id.clone(),
        };
        let refuse = |e: EngineError| self.refuse_self(&holder.actor, &ctx, e.into(), now);
        let info = DeviceOps::info(device)?;
        if info.aaguid != key.aaguid {
            return Err(refuse(EngineError::Device {
                step: "getInfo",
                cause: crate::DeviceError::WrongKey,
            }));
        }
        let retries = device
            .pin_retries()
            .map_err(super::device::dev("getPINRetries"))?;
        if retries.retries > 0 {
            return Err(refuse(
                SelfServiceError::PinNotBlocked {
                    retries: retries.retries,
                }
                .into(),
            ));
        }
        let e = SelfServiceError::PinBlockedNeedsReissue {
            key_id: key_id.to_owned(),
        };
        let rec = NewAuditRecord {
            actor: holder.actor.clone(),
            time_ms: now,
            action: ctx.action.to_owned(),
            key_id: Some(key_id.to_owned()),
            user_id: key.user_id.clone(),
            template_id: ctx.template.clone(),
            outcome: "refused".into(),
            idp_request_id: None,
            detail: Some(e.to_string()),
        };
        self.mark_needs_reissue(&key, rec, Vec::new(), now)?;
        Err(e.into())
    }
}
