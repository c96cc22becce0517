//! Delegated registration: the holder's own IdP token registers the passkey, where their
//! key is attached (a split deployment's device half calls Graph's `/me`), and the server
//! half needs only read permission. The server half still does everything that needs
//! judgement: it reads the creation options the holder's call got (checked against the
//! signed-in holder), builds the client data and the device job, verifies the
//! attestation, builds the registration request, reads the answer, and confirms the new
//! passkey with a read of its own before recording it.

use super::entra::EntraIdp;
use super::{CreationChallenge, IdpError, IdpOutcome, RegistrationRequest};

/// What a delegated call relayed by the device half answered: the HTTP status and body
/// as the IdP sent them (a claim), or status 0 with why no answer came.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelayedAnswer {
    /// HTTP status; 0 when no answer came.
    pub status: u16,
    /// The body as the IdP sent it.
    pub body: String,
    /// Why no call was made or no answer came (status 0).
    pub error: Option<String>,
    /// The IdP's request id, when the answer named one.
    pub request_id: Option<String>,
}

/// An IdP's part of delegated registration ([`super::Idp::delegated`]).
pub trait DelegatedRegistrar: Send + Sync {
    /// The scope the holder's sign-in asks for besides `openid` (Entra:
    /// `https://graph.microsoft.com/UserAuthMethod-Passkey.ReadWrite`).
    fn holder_scope(&self) -> String;

    /// The creation challenge in the answer to the holder's creation-options call;
    /// `origin` as for [`super::Idp::creation_challenge`].
    fn challenge_of(
        &self,
        answer: &RelayedAnswer,
        origin: Option<&str>,
    ) -> Result<CreationChallenge, IdpError>;

    /// The body of the holder's registration call for `request` (JSON).
    fn registration_body(&self, request: &RegistrationRequest) -> Result<String, IdpError>;

    /// The outcome in the answer to the holder's registration call (an expired
    /// challenge is [`IdpError::ChallengeExpired`]).
    fn registered(&self, answer: &RelayedAnswer) -> Result<IdpOutcome, IdpError>;
}

impl EntraIdp {
    fn relayed<'a>(
        &self,
        operation: &'static str,
        answer: &'a RelayedAnswer,
    ) -> Result<&'a [u8], IdpError> {
        if answer.status == 0 {
            return Err(IdpError::Unsendable {
                idp: self.connection().to_owned(),
                operation,
                message: format!(
                    "the holder's call was not answered: {}",
                    answer.error.as_deref().unwrap_or("no reason given")
                ),
            });
        }
        entra_graph::delegated::answer(
            answer.status,
            answer.body.as_bytes(),
            answer.request_id.as_deref(),
        )
        .map_err(|e| self.call_error(operation, e))
    }
}

impl DelegatedRegistrar for EntraIdp {
    fn holder_scope(&self) -> String {
        entra_graph::delegated::delegated_scope(&self.graph_base())
    }

    fn challenge_of(
        &self,
        answer: &RelayedAnswer,
        origin: Option<&str>,
    ) -> Result<CreationChallenge, IdpError> {
        let body = self.relayed("creationOptions (holder)", answer)?;
        let options = entra_graph::delegated::creation_options(body)
            .map_err(|e| self.call_error("creationOptions (holder)", e))?;
        EntraIdp::challenge_of(self, &options, origin)
    }

    fn registration_body(&self, request: &RegistrationRequest) -> Result<String, IdpError> {
        entra_graph::delegated::registration_json(&EntraIdp::registration_body(request))
            .map_err(|e| self.call_error("register (holder)", e))
    }

    fn registered(&self, answer: &RelayedAnswer) -> Result<IdpOutcome, IdpError> {
        let body = self.relayed("register (holder)", answer)?;
        let method = entra_graph::delegated::registered_method(body)
            .map_err(|e| self.call_error("register (holder)", e))?;
        Ok(IdpOutcome {
            method_id: method.id,
            request_id: answer.request_id.clone(),
        })
    }
}
