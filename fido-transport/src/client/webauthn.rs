//! authenticatorMakeCredential and authenticatorGetAssertion (with getNextAssertion).

use fido_core::attestation::AttestationObject;
use fido_core::authdata::AuthenticatorData;
use fido_core::commands::{
    CredentialDescriptor, GetAssertion, GetAssertionExtensions, GetAssertionResponse,
    GetNextAssertion, MakeCredential, MakeCredentialExtensions, PublicKeyCredentialParameters,
    RpEntity, SecretBytes, UserEntity,
};
use fido_core::cose::{CoseKey, ALG_ES256};
use fido_core::pin::{Permissions, PinUvAuthToken};

use super::lists::Filtered;
use super::{bad_response, check_token, core_error, Authenticator};
use crate::{Error, Progress, Transport};
use fido_core::CtapStatus;

/// Most assertions followed with getNextAssertion (a key claiming more is refused).
const MAX_ASSERTIONS: u32 = 1024;

/// What to register (authenticatorMakeCredential).
#[derive(Clone, Debug, PartialEq)]
pub struct MakeCredentialArgs {
    /// SHA-256 of the clientDataJSON.
    pub client_data_hash: [u8; 32],
    /// The relying party.
    pub rp: RpEntity,
    /// The user account.
    pub user: UserEntity,
    /// Acceptable COSE algorithms, most preferred first.
    pub algorithms: Vec<i64>,
    /// Credentials that must not already be on the key. Any length: a list longer than
    /// the key's `maxCredentialCountInList` is pre-flighted in chunks, and ids longer
    /// than its `maxCredentialIdLength` are dropped.
    pub exclude_list: Vec<CredentialDescriptor>,
    /// Make a discoverable (resident) credential.
    pub resident_key: bool,
    /// Extension inputs.
    pub extensions: Option<MakeCredentialExtensions>,
    /// Enterprise attestation (1 vendor-facilitated, 2 platform-managed).
    pub enterprise_attestation: Option<u8>,
}

impl MakeCredentialArgs {
    /// A discoverable ES256 credential for `user` at `rp`, nothing else set.
    pub fn new(client_data_hash: [u8; 32], rp: RpEntity, user: UserEntity) -> Self {
        MakeCredentialArgs {
            client_data_hash,
            rp,
            user,
            algorithms: vec![ALG_ES256],
            exclude_list: Vec::new(),
            resident_key: true,
            extensions: None,
            enterprise_attestation: None,
        }
    }
}

/// A new credential (owned).
#[derive(Clone, Debug, PartialEq)]
pub struct MakeCredentialResult {
    /// The attestation object (format, parsed authenticator data, statement); verify it
    /// with [`AttestationObject::verify`].
    pub attestation: AttestationObject,
    /// The new credential's id.
    pub credential_id: Vec<u8>,
    /// The new credential's public key.
    pub public_key: CoseKey,
    /// True if an enterprise attestation was returned.
    pub enterprise_attestation: Option<bool>,
    /// The credential's large-blob key (secret).
    pub large_blob_key: Option<SecretBytes>,
}

/// What to sign (authenticatorGetAssertion).
#[derive(Clone, Debug, PartialEq)]
pub struct GetAssertionArgs {
    /// The RP id.
    pub rp_id: String,
    /// SHA-256 of the clientDataJSON.
    pub client_data_hash: [u8; 32],
    /// Acceptable credentials (empty: the RP's discoverable credentials). Any length,
    /// filtered like [`MakeCredentialArgs::exclude_list`].
    pub allow_list: Vec<CredentialDescriptor>,
    /// Require user presence (a touch). False only for silent pre-flight checks.
    pub user_presence: bool,
    /// Extension inputs.
    pub extensions: Option<GetAssertionExtensions>,
}

impl GetAssertionArgs {
    /// An assertion with user presence over the RP's discoverable credentials.
    pub fn new(rp_id: impl Into<String>, client_data_hash: [u8; 32]) -> Self {
        GetAssertionArgs {
            rp_id: rp_id.into(),
            client_data_hash,
            allow_list: Vec::new(),
            user_presence: true,
            extensions: None,
        }
    }
}

/// One assertion (owned).
#[derive(Clone, Debug, PartialEq)]
pub struct Assertion {
    /// The credential that signed (filled from a one-entry allow list when the key
    /// omits it).
    pub credential: CredentialDescriptor,
    /// Parsed authenticator data.
    pub auth_data: AuthenticatorData,
    /// The raw authenticator data (what was signed, with the clientDataHash).
    pub auth_data_bytes: Vec<u8>,
    /// The signature over authData || clientDataHash.
    pub signature: Vec<u8>,
    /// The user (discoverable credentials).
    pub user: Option<UserEntity>,
    /// True if the user picked this credential on the key.
    pub user_selected: Option<bool>,
    /// The credential's large-blob key (secret).
    pub large_blob_key: Option<SecretBytes>,
}

impl<T: Transport> Authenticator<T> {
    /// Registers a credential. `token` (makeCredential permission, bound to the RP id)
    /// is required by keys with a PIN; `progress` reports "touch your key".
    pub fn make_credential(
        &mut self,
        args: &MakeCredentialArgs,
        token: Option<&PinUvAuthToken>,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<MakeCredentialResult, Error> {
        let info = self.info_owned()?;
        tracing::debug!(
            rp_id = %args.rp.id,
            resident_key = args.resident_key,
            uv = token.is_some(),
            "makeCredential"
        );
        if args.algorithms.is_empty() {
            return Err(Error::InvalidArgument(
                "makeCredential needs at least one algorithm".into(),
            ));
        }
        if args.resident_key && info.supports_option("rk") != Some(true) {
            return Err(Error::Unsupported(
                "the key cannot store discoverable credentials (getInfo option rk not true)".into(),
            ));
        }
        if args.enterprise_attestation.is_some() && info.supports_option("ep") != Some(true) {
            return Err(Error::Unsupported(
                "enterprise attestation is not enabled on the key (getInfo option ep not true)"
                    .into(),
            ));
        }
        let mut request = MakeCredential::new(
            args.client_data_hash,
            args.rp.clone(),
            args.user.clone(),
            args.algorithms
                .iter()
                .map(|&a| PublicKeyCredentialParameters::public_key(a))
                .collect(),
        );
        // Long exclude lists are pre-flighted in chunks; the credential found (if any)
        // goes alone, so the key still asks for the touch and then refuses with
        // CREDENTIAL_EXCLUDED.
        let exclude = match self.filter_list(&args.rp.id, &args.exclude_list, token)? {
            Filtered::AsIs(list) => list,
            Filtered::Preflighted(found) => found.into_iter().collect(),
        };
        request.exclude_list = (!exclude.is_empty()).then_some(exclude);
        request.extensions = args.extensions.clone().filter(|e| !e.is_empty());
        request.options.rk = args.resident_key.then_some(true);
        request.enterprise_attestation = args.enterprise_attestation;
        if let Some(token) = token {
            check_token(
                token,
                Permissions::MAKE_CREDENTIAL,
                Some(&args.rp.id),
                "makeCredential",
            )?;
            request.pin_uv_auth_protocol = Some(token.protocol().id());
            request.pin_uv_auth_param = Some(token.authenticate(&args.client_data_hash));
        }
        let r = self.call(&request, progress)?;
        let attestation = AttestationObject::from_parts(&r.fmt, &r.auth_data, &r.att_stmt)
            .map(|a| a.with_enterprise_attestation(r.ep_att == Some(true)))
            .map_err(|e| core_error(e.into()))?;
        if !attestation.auth_data().is_for_rp_id(&args.rp.id) {
            return Err(bad_response(
                "makeCredential.authData",
                "rpIdHash is not SHA-256 of the requested RP id",
            ));
        }
        let acd = attestation
            .auth_data()
            .attested_credential()
            .ok_or_else(|| {
                bad_response("makeCredential.authData", "no attested credential data")
            })?;
        Ok(MakeCredentialResult {
            credential_id: acd.credential_id().to_vec(),
            public_key: acd.public_key().clone(),
            enterprise_attestation: r.ep_att,
            large_blob_key: r.large_blob_key.clone(),
            attestation,
        })
    }

    /// Gets assertions: the first from getAssertion, the others (numberOfCredentials)
    /// with getNextAssertion right after, without anything in between. `token`
    /// (getAssertion permission, bound to the RP id) makes the key verify the user.
    pub fn get_assertion(
        &mut self,
        args: &GetAssertionArgs,
        token: Option<&PinUvAuthToken>,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Vec<Assertion>, Error> {
        tracing::debug!(
            rp_id = %args.rp_id,
            allow_list = args.allow_list.len(),
            uv = token.is_some(),
            "getAssertion"
        );
        let allow = match self.filter_list(&args.rp_id, &args.allow_list, token)? {
            Filtered::AsIs(list) => list,
            Filtered::Preflighted(Some(found)) => vec![found],
            // Nothing of a non-empty allow list is on the key: what the key would say.
            Filtered::Preflighted(None) => return Err(Error::Ctap(CtapStatus::NoCredentials)),
        };
        if !args.allow_list.is_empty() && allow.is_empty() {
            return Err(Error::Ctap(CtapStatus::NoCredentials));
        }
        let mut request = GetAssertion::new(args.rp_id.clone(), args.client_data_hash);
        let allow_args;
        let args = if allow.len() == args.allow_list.len() {
            args
        } else {
            allow_args = GetAssertionArgs {
                allow_list: allow.clone(),
                ..args.clone()
            };
            &allow_args
        };
        request.allow_list = (!allow.is_empty()).then_some(allow);
        request.extensions = args.extensions.clone();
        if !args.user_presence {
            request.options.up = Some(false);
        }
        if let Some(token) = token {
            check_token(
                token,
                Permissions::GET_ASSERTION,
                Some(&args.rp_id),
                "getAssertion",
            )?;
            request.pin_uv_auth_protocol = Some(token.protocol().id());
            request.pin_uv_auth_param = Some(token.authenticate(&args.client_data_hash));
        }
        let first = self.call(&request, progress)?;
        let count = first.number_of_credentials.unwrap_or(1).max(1);
        if count > MAX_ASSERTIONS {
            return Err(bad_response(
                "getAssertion.numberOfCredentials",
                format!("{count} exceeds the client's limit of {MAX_ASSERTIONS}"),
            ));
        }
        let mut out = Vec::with_capacity(count as usize);
        out.push(assertion(first, args)?);
        for _ in 1..count {
            let next = self.call(&GetNextAssertion, progress)?;
            out.push(assertion(next, args)?);
        }
        Ok(out)
    }
}

fn assertion(r: GetAssertionResponse, args: &GetAssertionArgs) -> Result<Assertion, Error> {
    let auth_data = AuthenticatorData::parse(&r.auth_data).map_err(|e| core_error(e.into()))?;
    if !auth_data.is_for_rp_id(&args.rp_id) {
        return Err(bad_response(
            "getAssertion.authData",
            "rpIdHash is not SHA-256 of the requested RP id",
        ));
    }
    let credential = match (r.credential.clone(), args.allow_list.as_slice()) {
        (Some(c), _) => c,
        (None, [only]) => only.clone(),
        (None, _) => {
            return Err(bad_response(
                "getAssertion.credential",
                "missing although the allow list did not have exactly one entry",
            ))
        }
    };
    Ok(Assertion {
        credential,
        auth_data,
        auth_data_bytes: r.auth_data.clone(),
        signature: r.signature.clone(),
        user: r.user.clone(),
        user_selected: r.user_selected,
        large_blob_key: r.large_blob_key.clone(),
    })
}
