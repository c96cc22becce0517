//! Delegated registration in the engine: the holder's creation options and registration
//! travel through the device half ([`DeviceLink::holder_call`]), everything that needs
//! judgement stays here. The creation options must be for the signed-in holder; the
//! registration is confirmed by a read with the server's own (read) permission before
//! the passkey is recorded: the device half's report alone registers nothing here.

use keysmith_wire::HolderGraphOp;

use super::Engine;
use crate::idp::{CreationChallenge, Idp, IdpError, IdpOutcome, RegistrationRequest};
use crate::remote::DeviceLink;
use crate::Error;

fn unsupported(idp: &dyn Idp) -> IdpError {
    IdpError::Unsendable {
        idp: idp.name().to_owned(),
        operation: "delegated registration",
        message: "this IdP connection does not support registration with the holder's token".into(),
    }
}

impl Engine {
    /// The scope a holder's sign-in asks for when the template `name` registers with the
    /// holder's own token (`registration = "delegated"`); `None` when it registers with
    /// the server's permission. An IdP connection without delegated registration is an
    /// error.
    pub(crate) fn delegated_scope_of(&self, name: &str) -> Result<Option<String>, Error> {
        let set = self.loaded_template(name)?;
        self.delegated_scope_in(&set)
    }

    /// The delegated scope a self-service activation asks for, before the key is known:
    /// that of the loaded templates that let holders set their PIN and register with
    /// their own token (the first such template's; `None` when there is none).
    pub(crate) fn activation_delegated_scope(&self) -> Option<String> {
        let sets: Vec<crate::template::TemplateSet> = self
            .templates
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .filter(|t| t.credential.self_service.pin_set_allowed)
            .cloned()
            .collect();
        sets.iter()
            .find_map(|set| self.delegated_scope_in(set).ok().flatten())
    }

    fn delegated_scope_in(
        &self,
        set: &crate::template::TemplateSet,
    ) -> Result<Option<String>, Error> {
        if set.credential.self_service.registration != crate::template::RegistrationMode::Delegated
        {
            return Ok(None);
        }
        let mut scope = None;
        for t in set.passkey.values() {
            let idp = self.idp(&t.idp.connection)?;
            let s = idp
                .delegated()
                .ok_or_else(|| unsupported(idp.as_ref()))?
                .holder_scope();
            match &scope {
                None => scope = Some(s),
                Some(first) if *first == s => {}
                Some(first) => {
                    return Err(IdpError::Unsendable {
                        idp: idp.name().to_owned(),
                        operation: "delegated registration",
                        message: format!(
                            "the template's passkeys are on different IdPs ({first} and {s}): one sign-in cannot register them all"
                        ),
                    }
                    .into())
                }
            }
        }
        Ok(scope)
    }

    /// The creation challenge the holder's own call got, for the holder `upn`.
    pub(super) fn holder_challenge(
        &self,
        idp: &dyn Idp,
        link: &mut dyn DeviceLink,
        origin: Option<&str>,
        upn: &str,
    ) -> Result<CreationChallenge, Error> {
        let d = idp.delegated().ok_or_else(|| unsupported(idp))?;
        let answer = link.holder_call(HolderGraphOp::CreationOptions, None)?;
        let challenge = d.challenge_of(&answer, origin)?;
        // The options name the user whose token fetched them: they must be the holder
        // the server signed in (a device half relaying someone else's options is caught
        // here, before the key makes anything).
        let named = challenge.user_name.as_deref().unwrap_or_default();
        if !named.eq_ignore_ascii_case(upn) {
            return Err(IdpError::BadAnswer {
                idp: idp.name().to_owned(),
                field: "publicKey.user.name",
                message: format!(
                    "the holder's creation options are for {named:?}, not the signed-in holder {upn:?}"
                ),
            }
            .into());
        }
        Ok(challenge)
    }

    /// Registers `request` for `user` through the holder's call, then confirms it with a
    /// read: the IdP must list a passkey with the answered method id holding this
    /// credential.
    pub(super) fn register_delegated(
        &self,
        idp: &dyn Idp,
        link: &mut dyn DeviceLink,
        user: &str,
        request: &RegistrationRequest,
    ) -> Result<IdpOutcome, IdpError> {
        let d = idp.delegated().ok_or_else(|| unsupported(idp))?;
        let body = d.registration_body(request)?;
        let answer = link
            .holder_call(HolderGraphOp::Register, Some(body))
            .map_err(|e| IdpError::Unsendable {
                idp: idp.name().to_owned(),
                operation: "register (holder)",
                message: e.to_string(),
            })?;
        let outcome = d.registered(&answer)?;
        let listed = match idp
            .list(user)?
            .into_iter()
            .find(|m| m.holds(&request.credential_id))
        {
            Some(m) => Some(m),
            // A fresh registration may not be listed at once (replication lag).
            None => self.relisted(idp, user, &request.credential_id)?,
        };
        match listed {
            Some(m) if m.method_id == outcome.method_id => Ok(outcome),
            Some(m) => Err(IdpError::BadAnswer {
                idp: idp.name().to_owned(),
                field: "id",
                message: format!(
                    "the holder's registration was answered as method {:?}, but the IdP lists this credential as {:?}",
                    outcome.method_id, m.method_id
                ),
            }),
            None => Err(IdpError::BadAnswer {
                idp: idp.name().to_owned(),
                field: "id",
                message: format!(
                    "the device half reported method {:?} registered, but the IdP does not list this credential for the user",
                    outcome.method_id
                ),
            }),
        }
    }
}
