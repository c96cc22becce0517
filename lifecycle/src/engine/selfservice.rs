//! Self-service flows: the holder, authenticated by an OpenID Connect ID token from the
//! template's issuer, sets their PIN (activating the key) or issues a blank key to
//! themself. Every refusal (bad token, not allowed, not the owner) is audited as
//! `refused` with the reason; neither the token nor the PIN ever reaches the audit log.
//!
//! The holder's token is checked hard, each refusal a [`SelfServiceError`] of its own:
//! - it is an ID token (no `scp`, `roles`, `idtyp`; `ver` 2.0; `azp` the audience);
//! - its issuer is the directory's own Entra tenant (`{login}/{tenant}/v2.0`, `tid` that
//!   tenant), unless the template maps the issuer to the directory explicitly;
//! - it carries the `nonce` of a sign-in started here ([`Engine::self_service_begin`]),
//!   which is used up, and is itself used once (its `uti`/`jti` kept until it expires);
//! - the sign-in is recent (`auth_time` within `max_age_secs`) and, by default,
//!   multi-factor (`amr` has `mfa`, or `acrs` an accepted context);
//! - the holder's directory account is enabled.
//!
//! PIN unblock: CTAP has no way to unblock a PIN other than authenticatorReset, which
//! destroys every passkey on the key. So "unblock" is not faked: an authenticated owner
//! of a PIN-blocked key gets [`SelfServiceError::PinBlockedNeedsReissue`] and the key is marked
//! as needing reissue (the operator's reissue resets it and makes new passkeys).

use std::sync::{Arc, PoisonError};
use std::time::{Duration, UNIX_EPOCH};

use entra_graph::net::NetworkOptions;
use entra_graph::oidc::{OidcSettings, OidcVerifier, VerifiedToken};
use entra_graph::GraphError;
use fido_transport::client::Authenticator;
use fido_transport::Transport;
use rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha256};

use super::{key_id_for, Engine, EngineError, IssueRequest, SelfServiceError, UnixMillis};
use crate::model::CredentialState;
use crate::store::{KeyQuery, KeyRecord, NewAuditRecord};
use crate::template::{KeyTransport, OidcConfig, TemplateSet};
use crate::Error;

/// Actor recorded when the token did not verify (the holder is unknown).
const UNVERIFIED_ACTOR: &str = "self:unverified";

/// How long a nonce from [`Engine::self_service_begin`] stays good.
pub const NONCE_LIFETIME: Duration = Duration::from_secs(15 * 60);

/// The key of the engine's verifier cache: (issuer, audience, jwks_url, `ver` required,
/// the directory connection's trust and proxy settings).
pub(super) type VerifierKey = (String, String, String, bool, NetworkOptions);

/// A started self-service sign-in ([`Engine::self_service_begin`]).
#[derive(Clone, PartialEq, Eq)]
pub struct SelfServiceStart {
    /// The nonce to send in the OpenID Connect authorization request (`nonce=`); the ID
    /// token comes back carrying it, and `self_issue` / `self_set_pin` take it again.
    pub nonce: String,
    /// When the nonce stops being accepted (Unix milliseconds).
    pub expires_at_ms: UnixMillis,
}

impl std::fmt::Debug for SelfServiceStart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SelfServiceStart")
            .field("nonce", &"<redacted>")
            .field("expires_at_ms", &self.expires_at_ms)
            .finish()
    }
}

pub(crate) fn nonce_digest(nonce: &str) -> String {
    base16ct::lower::encode_string(&Sha256::digest(nonce.as_bytes()))
}

fn holder_auth(e: GraphError) -> SelfServiceError {
    let (claim, reason) = match e {
        GraphError::Oidc { claim, reason } => match claim {
            "scp" | "roles" | "idtyp" | "ver" | "azp" => {
                return SelfServiceError::NotAnIdToken {
                    claim: claim.to_owned(),
                    reason,
                }
            }
            "oid" => return SelfServiceError::ProfileScopeRequired,
            _ => (claim.to_owned(), reason),
        },
        GraphError::OidcKeys { reason } => ("issuer keys".to_owned(), reason),
        GraphError::Config { setting, reason } => (setting.to_owned(), reason),
        other => ("token".to_owned(), other.to_string()),
    };
    SelfServiceError::HolderAuth { claim, reason }
}

/// Who the holder is, from a verified token.
pub(super) struct Holder {
    /// `self:<oid or upn>`.
    pub(super) actor: String,
    pub(super) token: VerifiedToken,
}

impl Holder {
    /// The directory user the token names: the object id, else the UPN.
    pub(super) fn user(&self) -> Option<&str> {
        self.token
            .object_id
            .as_deref()
            .or(self.token.upn.as_deref())
            .filter(|s| !s.is_empty())
    }
}

/// A refused authentication: who (as far as known) and why.
pub(super) struct Refusal {
    pub(super) actor: String,
    pub(super) error: Error,
}

impl Refusal {
    fn unverified(e: impl Into<Error>) -> Self {
        Refusal {
            actor: UNVERIFIED_ACTOR.to_owned(),
            error: e.into(),
        }
    }
}

/// Where a refusal is recorded.
pub(super) struct Ctx<'a> {
    pub(super) action: &'static str,
    pub(super) key_id: Option<&'a str>,
    pub(super) user_id: Option<String>,
    pub(super) template: Option<String>,
}

/// How the template's issuer is tied to its directory.
enum Binding {
    /// The directory's own Entra tenant: `tid` must be this tenant.
    Tenant(String),
    /// An explicit issuer-to-directory mapping in the template.
    Mapped,
}

fn millis(t: std::time::SystemTime) -> UnixMillis {
    u64::try_from(
        t.duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_millis(),
    )
    .unwrap_or(u64::MAX)
}

impl Engine {
    /// Starts a self-service sign-in: a fresh random nonce, recorded (as a digest) until
    /// [`NONCE_LIFETIME`] from `now`. The caller sends it in the OpenID Connect
    /// authorization request and passes it to [`Engine::self_issue`] or
    /// [`Engine::self_set_pin`] with the ID token; it is good for one use.
    pub fn self_service_begin(&self, now: UnixMillis) -> Result<SelfServiceStart, Error> {
        let mut raw = [0u8; 32];
        OsRng.fill_bytes(&mut raw);
        let nonce = entra_graph::ids::encode_b64url(&raw);
        let lifetime = u64::try_from(NONCE_LIFETIME.as_millis()).unwrap_or(u64::MAX);
        let expires_at_ms = now.saturating_add(lifetime);
        self.store
            .put_nonce(&nonce_digest(&nonce), expires_at_ms, now)?;
        Ok(SelfServiceStart {
            nonce,
            expires_at_ms,
        })
    }

    fn verifier(
        &self,
        oidc: &OidcConfig,
        require_version: bool,
        network: NetworkOptions,
    ) -> Result<Arc<OidcVerifier>, SelfServiceError> {
        let key: VerifierKey = (
            oidc.issuer.clone(),
            oidc.audience.clone(),
            oidc.jwks_url.clone(),
            require_version,
            network.clone(),
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
        settings.require_version = require_version;
        settings.network = network;
        let v = Arc::new(OidcVerifier::new(settings).map_err(holder_auth)?);
        cache.insert(key, v.clone());
        Ok(v)
    }

    /// How the template's issuer is bound to the directory users come from: its Entra
    /// tenant's issuer, or an explicit mapping; anything else is refused.
    fn binding(
        &self,
        templates: &TemplateSet,
        oidc: &OidcConfig,
    ) -> Result<Binding, SelfServiceError> {
        let directory = &templates.credential.user_assignment.directory;
        if oidc.directory.as_deref() == Some(directory.as_str()) {
            return Ok(Binding::Mapped);
        }
        let tenant = self.idps.get(directory).and_then(|i| i.directory_tenant());
        match tenant {
            Some(t) if t.issuer == oidc.issuer => Ok(Binding::Tenant(t.tenant_id)),
            other => Err(SelfServiceError::IssuerNotTrusted {
                issuer: oidc.issuer.clone(),
                directory: directory.clone(),
                expected: other.map(|t| t.issuer),
            }),
        }
    }

    /// Verifies the holder's token against the template's OIDC configuration and the
    /// sign-in started with `nonce`; see the module documentation for every check.
    pub(super) fn authenticate(
        &self,
        templates: &TemplateSet,
        id_token: &str,
        nonce: &str,
        now: UnixMillis,
    ) -> Result<Holder, Refusal> {
        let oidc = templates
            .credential
            .self_service
            .oidc
            .as_ref()
            .ok_or_else(|| {
                Refusal::unverified(SelfServiceError::SelfServiceNotAllowed {
                    template: templates.credential.name.clone(),
                    what: "self-service (no OIDC configuration)",
                })
            })?;
        let binding = self.binding(templates, oidc).map_err(Refusal::unverified)?;
        // The issuer is reached the way the template's directory connection reaches its
        // login endpoint (its CA file and proxy).
        let network = self
            .idps
            .get(&templates.credential.user_assignment.directory)
            .and_then(|i| i.network())
            .unwrap_or_default();
        let verifier = self
            .verifier(oidc, matches!(binding, Binding::Tenant(_)), network)
            .map_err(Refusal::unverified)?;
        let at = UNIX_EPOCH + Duration::from_millis(now);
        let token = verifier
            .verify(id_token, at)
            .map_err(|e| Refusal::unverified(holder_auth(e)))?;
        if let Binding::Tenant(want) = &binding {
            if !token
                .tenant_id
                .as_deref()
                .is_some_and(|t| t.eq_ignore_ascii_case(want))
            {
                return Err(Refusal::unverified(SelfServiceError::TenantMismatch {
                    tid: token.tenant_id.clone(),
                    expected: want.clone(),
                }));
            }
        }
        let mut holder = Holder {
            actor: String::new(),
            token,
        };
        let who = holder
            .user()
            .ok_or_else(|| Refusal::unverified(SelfServiceError::ProfileScopeRequired))?
            .to_owned();
        holder.actor = format!("self:{who}");
        let refuse = |e: Error| Refusal {
            actor: holder.actor.clone(),
            error: e,
        };
        let t = &holder.token;
        match t.nonce.as_deref() {
            None => return Err(refuse(SelfServiceError::NonceMissing.into())),
            Some(n) if n != nonce => return Err(refuse(SelfServiceError::NonceMismatch.into())),
            Some(_) => {}
        }
        let token_id = t
            .token_id
            .as_deref()
            .ok_or_else(|| refuse(SelfServiceError::TokenIdMissing.into()))?;
        // Kept until the verifier would refuse the token anyway: exp plus the leeway.
        let keep_until = millis(t.expires_at + verifier.settings().leeway);
        // The token id recorded and the nonce taken in one transaction.
        let (first_use, nonce_taken) = self
            .store
            .use_sign_in(&t.issuer, token_id, keep_until, &nonce_digest(nonce), now)
            .map_err(|e| refuse(e.into()))?;
        if !first_use {
            return Err(refuse(
                SelfServiceError::TokenReplayed {
                    token_id: token_id.to_owned(),
                }
                .into(),
            ));
        }
        if !nonce_taken {
            return Err(refuse(SelfServiceError::NonceUnknown.into()));
        }
        let age_secs = t.auth_time.map(|a| now.saturating_sub(millis(a)) / 1000);
        if age_secs.is_none_or(|a| a > oidc.max_age_secs) {
            return Err(refuse(
                SelfServiceError::SignInTooOld {
                    age_secs,
                    max_age_secs: oidc.max_age_secs,
                }
                .into(),
            ));
        }
        if oidc.require_mfa
            && !t.amr.iter().any(|m| m == "mfa")
            && !t.acrs.iter().any(|a| oidc.acrs.contains(a))
        {
            return Err(refuse(
                SelfServiceError::MfaRequired { amr: t.amr.clone() }.into(),
            ));
        }
        let directory = &templates.credential.user_assignment.directory;
        let idp = self.idp(directory).map_err(|e| refuse(e.into()))?;
        let user = idp.user(&who).map_err(|e| refuse(e.into()))?;
        if user.account_enabled == Some(false) {
            return Err(refuse(
                SelfServiceError::AccountDisabled { user: who }.into(),
            ));
        }
        Ok(holder)
    }

    /// Records the accepted sign-in (the token's `uti`/`jti` and methods, never the token).
    pub(super) fn audit_sign_in(
        &self,
        holder: &Holder,
        ctx: &Ctx<'_>,
        now: UnixMillis,
    ) -> Result<(), Error> {
        let t = &holder.token;
        let rec = NewAuditRecord {
            actor: holder.actor.clone(),
            time_ms: now,
            action: format!("{}_sign_in", ctx.action),
            key_id: ctx.key_id.map(str::to_owned),
            user_id: ctx.user_id.clone(),
            template_id: ctx.template.clone(),
            outcome: "success".into(),
            idp_request_id: None,
            detail: Some(format!(
                "token {} from {} (amr {:?}, auth_time {})",
                t.token_id.as_deref().unwrap_or("-"),
                t.issuer,
                t.amr,
                t.auth_time.map_or(0, |a| millis(a) / 1000),
            )),
        };
        self.store.append_audit(&rec)?;
        Ok(())
    }

    /// True when the verified holder is the user the key is issued to: the token's `oid`
    /// equals the recorded user (or its IdP object id); only a token without `oid` falls
    /// back to the recorded UPN (`preferred_username` is mutable, so it is second best).
    pub(super) fn holder_owns(&self, holder: &Holder, key: &KeyRecord) -> Result<bool, Error> {
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

    /// How many keys `user` holds (Issued, Active or Inactive) whose last issuance was a
    /// self-issuance (audited `issue` by a `self:` actor).
    fn self_issued_held(&self, user: &str) -> Result<u32, Error> {
        let mut held = 0u32;
        for key in self.store.find_keys(&KeyQuery::ByUser(user.to_owned()))? {
            if !matches!(
                key.state,
                CredentialState::Issued | CredentialState::Active | CredentialState::Inactive
            ) {
                continue;
            }
            let audit = self.audit_for(&key.key_id)?;
            let last_issue = audit.iter().rev().find(|a| {
                a.event.outcome == "success"
                    && matches!(a.event.action.as_str(), "issue" | "reissue")
            });
            if last_issue.is_some_and(|a| a.event.actor.starts_with("self:")) {
                held = held.saturating_add(1);
            }
        }
        Ok(held)
    }

    /// Records a refusal (outcome `refused`, the reason as detail) and returns the error.
    pub(super) fn refuse_self(
        &self,
        actor: &str,
        ctx: &Ctx<'_>,
        e: Error,
        now: UnixMillis,
    ) -> Error {
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
    /// `pin_set_allowed` and that the token's subject owns the key. `nonce` is the one
    /// [`Engine::self_service_begin`] gave for this sign-in; the token must carry it.
    /// Audited as `self:<oid or upn>`.
    pub fn self_set_pin<T: Transport>(
        &self,
        key_id: &str,
        id_token: &str,
        nonce: &str,
        new_pin: &str,
        device: &mut Authenticator<T>,
        now: UnixMillis,
    ) -> Result<KeyRecord, Error> {
        let prompt = |p: &super::DevicePrompt| self.prompt(p);
        let kind = super::issue::transport_name(device.transport().kind());
        let mut link = crate::remote::LocalLink::open(device, Some(new_pin), kind, &prompt)?;
        self.self_set_pin_via(key_id, id_token, nonce, &mut link, now)
    }

    /// Self-service PIN set over `link`: the new PIN comes from the device half's holder
    /// UI, never through this call.
    pub(crate) fn self_set_pin_via(
        &self,
        key_id: &str,
        id_token: &str,
        nonce: &str,
        link: &mut dyn crate::remote::DeviceLink,
        now: UnixMillis,
    ) -> Result<KeyRecord, Error> {
        let (_, holder) = self.authorize_owner(
            key_id,
            (id_token, nonce),
            "self_set_pin",
            "PIN set",
            |s| s.pin_set_allowed,
            now,
        )?;
        self.activate_via(&holder.actor, key_id, link, now)
    }

    /// A holder's sign-in check over `link`: the holder, authenticated by `id_token`
    /// (with the session's `nonce`), owns `key_id`; each registered passkey signs a fresh
    /// challenge with the holder's PIN (from the device half's UI) and verifies against
    /// its attested public key. Returns the key's record.
    pub(crate) fn self_verify_via(
        &self,
        key_id: &str,
        id_token: &str,
        nonce: &str,
        link: &mut dyn crate::remote::DeviceLink,
        now: UnixMillis,
    ) -> Result<KeyRecord, Error> {
        let (key, _holder) = self.authorize_owner(
            key_id,
            (id_token, nonce),
            "self_verify",
            "sign-in check",
            |_| true,
            now,
        )?;
        let checked = self.sign_in_via(key_id, link)?;
        if checked.is_empty() {
            return Err(super::EngineError::SignIn {
                reason: "the key has no registered passkey to check".into(),
            }
            .into());
        }
        Ok(key)
    }

    /// The preamble of the self-service actions on an issued key: the token verified
    /// against the key's template's OIDC settings, the action allowed by the template
    /// (`allowed`), the holder owning the key. Every refusal is audited.
    fn authorize_owner(
        &self,
        key_id: &str,
        (id_token, nonce): (&str, &str),
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
        let holder = match self.authenticate(&templates, id_token, nonce, now) {
            Ok(h) => h,
            Err(r) => return Err(self.refuse_self(&r.actor, &ctx, r.error, now)),
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
        self.audit_sign_in(&holder, &ctx, now)?;
        Ok((key, holder))
    }

    /// Self-issuance: the holder, authenticated by `id_token`, issues the attached key
    /// (blank, unknown, or unregistered) to themself with the loaded credential template
    /// `template` (it must allow `self_issuance_allowed`; a holder never supplies the
    /// template). The user is always the token's subject. The key is activated at once
    /// with `new_pin`. A key issued to anyone (the holder included) is refused; keys are
    /// never reset here (`can_reset_in_place` is false), so templates that reset before
    /// issuance are refused by the planner. `nonce` is the one
    /// [`Engine::self_service_begin`] gave for this sign-in; the token must carry it. A
    /// user holding the template's `self_issue_limit` self-issued keys is refused.
    #[allow(clippy::too_many_arguments)]
    pub fn self_issue<T: Transport>(
        &self,
        id_token: &str,
        nonce: &str,
        template: &str,
        serial: &str,
        transport: KeyTransport,
        new_pin: &str,
        device: &mut Authenticator<T>,
        now: UnixMillis,
    ) -> Result<KeyRecord, Error> {
        let prompt = |p: &super::DevicePrompt| self.prompt(p);
        let kind = super::issue::transport_name(device.transport().kind());
        let mut link = crate::remote::LocalLink::open(device, Some(new_pin), kind, &prompt)?;
        self.self_issue_via(id_token, nonce, template, serial, transport, &mut link, now)
    }

    /// Self-issuance over `link`: the holder's PIN comes from the device half's holder
    /// UI, never through this call.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn self_issue_via(
        &self,
        id_token: &str,
        nonce: &str,
        template: &str,
        serial: &str,
        transport: KeyTransport,
        link: &mut dyn crate::remote::DeviceLink,
        now: UnixMillis,
    ) -> Result<KeyRecord, Error> {
        let info = link.info().clone();
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
        let holder = match self.authenticate(&templates, id_token, nonce, now) {
            Ok(h) => h,
            Err(r) => return Err(self.refuse_self(&r.actor, &ctx, r.error, now)),
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
        let limit = templates.credential.self_service.self_issue_limit;
        let held = self.self_issued_held(&user)?;
        if held >= limit {
            let e = SelfServiceError::SelfIssueLimit {
                user: user.clone(),
                held,
                limit,
            };
            return Err(self.refuse_self(&holder.actor, &ctx, e.into(), now));
        }
        self.audit_sign_in(&holder, &ctx, now)?;
        let request = IssueRequest {
            actor: holder.actor.clone(),
            user,
            serial: serial.to_owned(),
            transport,
            can_reset_in_place: false,
        };
        let key = self.issue_via(&request, template, link, now)?;
        if key.state == CredentialState::Issued {
            // The template does not initiate at issuance: activate now with their PIN.
            return self.activate_via(&holder.actor, &key.key_id, link, now);
        }
        Ok(key)
    }

    /// Self-service PIN unblock, done honestly: CTAP can only clear a blocked PIN by
    /// resetting the key, which destroys its passkeys. For the authenticated owner of an
    /// Active key (template with `pin_unblock_allowed`) whose PIN is blocked, the key is
    /// marked as needing reissue and [`SelfServiceError::PinBlockedNeedsReissue`] is returned;
    /// when the PIN is not blocked, [`SelfServiceError::PinNotBlocked`]. Never succeeds.
    /// `nonce` is the one [`Engine::self_service_begin`] gave for this sign-in.
    pub fn self_unblock_pin<T: Transport>(
        &self,
        key_id: &str,
        id_token: &str,
        nonce: &str,
        device: &mut Authenticator<T>,
        now: UnixMillis,
    ) -> Result<KeyRecord, Error> {
        let (key, holder) = self.authorize_owner(
            key_id,
            (id_token, nonce),
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
        // The key as the device half reports it: its model and PIN retries.
        let prompt = |p: &super::DevicePrompt| self.prompt(p);
        let kind = super::issue::transport_name(device.transport().kind());
        let link = crate::remote::LocalLink::open(device, None, kind, &prompt)?;
        if crate::remote::DeviceLink::info(&link).aaguid != key.aaguid {
            return Err(refuse(EngineError::Device {
                step: "getInfo",
                cause: crate::DeviceFault::WrongKey.into(),
            }));
        }
        let retries = link.pin_retries().ok_or_else(|| EngineError::Device {
            step: "getPINRetries",
            cause: crate::DeviceFault::Unsupported {
                message: "the key reports no PIN retry counter (it has no clientPin)".into(),
            }
            .into(),
        })?;
        if retries > 0 {
            return Err(refuse(SelfServiceError::PinNotBlocked { retries }.into()));
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
