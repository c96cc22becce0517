//! Allow and exclude lists longer than the key accepts (`maxCredentialCountInList`,
//! 8 on YubiKeys): split into chunks and pre-flighted with silent getAssertions, as
//! python-fido2's client does, so a user who already holds many passkeys can still be
//! issued a key.

use fido_core::commands::{encode_request, CredentialDescriptor, GetAssertion};
use fido_core::pin::{Permissions, PinUvAuthToken};
use fido_core::CtapStatus;

use super::{is_status, no_progress, Authenticator};
use crate::{Error, Transport};

/// The clientDataHash of a pre-flight (nothing is signed for anyone).
const PREFLIGHT_HASH: [u8; 32] = [0; 32];

/// What is left of a list after filtering.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Filtered {
    /// The list fits the key as it is (after dropping over-long ids): send it.
    AsIs(Vec<CredentialDescriptor>),
    /// The list was pre-flighted: this credential is on the key (send it alone) or
    /// none is (`None`: send no list).
    Preflighted(Option<CredentialDescriptor>),
}

impl<T: Transport> Authenticator<T> {
    /// Filters a long allow or exclude list for `rp_id`, against getInfo:
    /// - ids longer than `maxCredentialIdLength` are dropped (the key cannot hold them,
    ///   and real keys answer such lists with INVALID_LENGTH or LIMIT_EXCEEDED);
    /// - a list that then fits `maxCredentialCountInList` (absent: any length) and
    ///   `maxMsgSize` is returned as is;
    /// - a longer one is split into chunks of `maxCredentialCountInList`, each sent as
    ///   a getAssertion with `up = false`; the first chunk with a match gives the
    ///   credential to use. A chunk the key finds too large (REQUEST_TOO_LARGE,
    ///   LIMIT_EXCEEDED, or over maxMsgSize) is halved and retried.
    ///
    /// `token` is used for the pre-flights only when it carries the getAssertion
    /// permission for this RP, so credentials that need UV to be found
    /// (credProtect 3) are seen; without it the pre-flight finds credProtect 1 and 2
    /// credentials, which covers every credential made with Entra's
    /// `userVerificationOptional` policy.
    pub(crate) fn filter_list(
        &mut self,
        rp_id: &str,
        list: &[CredentialDescriptor],
        token: Option<&PinUvAuthToken>,
    ) -> Result<Filtered, Error> {
        if list.is_empty() {
            return Ok(Filtered::AsIs(Vec::new()));
        }
        let info = self.info_owned()?;
        let kept: Vec<CredentialDescriptor> = match info.max_credential_id_length {
            Some(max) => list
                .iter()
                .filter(|d| d.id.len() as u64 <= max)
                .cloned()
                .collect(),
            None => list.to_vec(),
        };
        if kept.len() < list.len() {
            tracing::debug!(
                dropped = list.len() - kept.len(),
                "credential ids longer than maxCredentialIdLength dropped from the list"
            );
        }
        let max_count = info.max_credential_count_in_list.map_or(usize::MAX, |m| {
            usize::try_from(m.max(1)).unwrap_or(usize::MAX)
        });
        let token = token.filter(|t| {
            t.permissions().contains(Permissions::GET_ASSERTION)
                && t.rp_id().is_none_or(|r| r == rp_id)
        });
        if kept.len() <= max_count && self.preflight_fits(rp_id, &kept, token, info.max_msg_size) {
            return Ok(Filtered::AsIs(kept));
        }
        let mut chunk = max_count.min(kept.len()).max(1);
        let mut start = 0;
        while start < kept.len() {
            let end = (start + chunk).min(kept.len());
            let part = &kept[start..end];
            if !self.preflight_fits(rp_id, part, token, info.max_msg_size) && chunk > 1 {
                chunk /= 2;
                continue;
            }
            match self.preflight(rp_id, part, token) {
                Ok(found) => {
                    tracing::debug!(
                        chunk = part.len(),
                        "list pre-flight: a credential of the list is on the key"
                    );
                    return Ok(Filtered::Preflighted(Some(found)));
                }
                Err(e) if is_status(&e, CtapStatus::NoCredentials) => start = end,
                Err(e)
                    if chunk > 1
                        && (is_status(&e, CtapStatus::RequestTooLarge)
                            || is_status(&e, CtapStatus::LimitExceeded)) =>
                {
                    chunk /= 2;
                }
                Err(e) => return Err(e),
            }
        }
        tracing::debug!(
            credentials = kept.len(),
            "list pre-flight: none of the credentials is on the key"
        );
        Ok(Filtered::Preflighted(None))
    }

    /// The silent getAssertion of one chunk.
    fn preflight_request(
        rp_id: &str,
        part: &[CredentialDescriptor],
        token: Option<&PinUvAuthToken>,
    ) -> GetAssertion {
        let mut request = GetAssertion::new(rp_id.to_owned(), PREFLIGHT_HASH);
        request.allow_list = Some(part.to_vec());
        request.options.up = Some(false);
        if let Some(token) = token {
            request.pin_uv_auth_protocol = Some(token.protocol().id());
            request.pin_uv_auth_param = Some(token.authenticate(&PREFLIGHT_HASH));
        }
        request
    }

    /// True if a pre-flight of `part` fits maxMsgSize (absent: 1024 bytes, the CTAP
    /// default).
    fn preflight_fits(
        &self,
        rp_id: &str,
        part: &[CredentialDescriptor],
        token: Option<&PinUvAuthToken>,
        max_msg_size: Option<u64>,
    ) -> bool {
        let len = encode_request(&Self::preflight_request(rp_id, part, token)).len() as u64;
        len <= max_msg_size.unwrap_or(1024)
    }

    fn preflight(
        &mut self,
        rp_id: &str,
        part: &[CredentialDescriptor],
        token: Option<&PinUvAuthToken>,
    ) -> Result<CredentialDescriptor, Error> {
        let answer = self.call(
            &Self::preflight_request(rp_id, part, token),
            &mut no_progress,
        )?;
        Ok(match (answer.credential, part) {
            // A one-entry chunk: keep the caller's descriptor (ids may come back truncated).
            (_, [only]) => only.clone(),
            (Some(c), _) => part.iter().find(|d| d.id == c.id).cloned().unwrap_or(c),
            (None, _) => {
                return Err(super::bad_response(
                    "getAssertion.credential",
                    "missing in a pre-flight answer for a list of several credentials",
                ))
            }
        })
    }
}
