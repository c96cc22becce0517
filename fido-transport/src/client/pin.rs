//! clientPIN: retries, setPIN, changePIN, and PIN/UV auth tokens.

use fido_core::commands::{ClientPin, ClientPinResponse};
use fido_core::cose::CoseKey;
use fido_core::pin::{
    self, Permissions, Pin, PinUvAuthProtocol, PinUvAuthToken, MIN_PIN_CODE_POINTS,
};
use fido_core::CtapStatus;

use super::{bad_response, core_error, is_status, no_progress, rng, Authenticator};
use crate::{Error, Progress, Transport};

/// The PIN retry counter and whether a power cycle is needed first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PinRetries {
    /// PIN attempts left before the PIN blocks (0: blocked, only a reset helps).
    pub retries: u32,
    /// The key wants a power cycle (remove and reattach) before the next PIN attempt.
    pub power_cycle_required: bool,
}

impl<T: Transport> Authenticator<T> {
    /// The PIN/UV auth protocol to use: 2 when the key lists it, else 1. A key that
    /// omits the list gets 1 on CTAP 2.0 and 2 on CTAP 2.1, which requires protocol 2
    /// (as authenticator-rs settled, mozilla/authenticator-rs#274).
    pub fn pin_protocol(&mut self) -> Result<PinUvAuthProtocol, Error> {
        let info = self.info()?;
        if info.supports_option("clientPin").is_none() && info.pin_uv_auth_protocols.is_none() {
            return Err(Error::Unsupported(
                "the key has no PIN support (getInfo option clientPin absent)".into(),
            ));
        }
        Ok(match &info.pin_uv_auth_protocols {
            Some(p) if p.contains(&2) => PinUvAuthProtocol::Two,
            Some(p) if p.contains(&1) => PinUvAuthProtocol::One,
            Some(p) => {
                return Err(Error::Unsupported(format!(
                    "the key offers only PIN/UV auth protocols {p:?}; this client speaks 1 and 2"
                )))
            }
            // CTAP 2.0 keys may omit the list; protocol 1 is the only one they know.
            None if !info.is_ctap21() => PinUvAuthProtocol::One,
            None => PinUvAuthProtocol::Two,
        })
    }

    /// PIN retries left (clientPIN getPINRetries).
    pub fn pin_retries(&mut self) -> Result<PinRetries, Error> {
        let protocol = self.pin_protocol()?;
        let r = self.call(
            &ClientPin::GetPinRetries {
                pin_uv_auth_protocol: Some(protocol.id()),
            },
            &mut no_progress,
        )?;
        Ok(PinRetries {
            retries: r
                .pin_retries
                .ok_or_else(|| bad_response("clientPIN.pinRetries", "missing in the answer"))?,
            power_cycle_required: r.power_cycle_state.unwrap_or(false),
        })
    }

    /// Built-in user verification retries left (clientPIN getUVRetries).
    pub fn uv_retries(&mut self) -> Result<u32, Error> {
        let info = self.info()?;
        if info.supports_option("uv").is_none() {
            return Err(Error::Unsupported(
                "the key has no built-in user verification (getInfo option uv absent)".into(),
            ));
        }
        let protocol = self.pin_protocol().ok().map(PinUvAuthProtocol::id);
        let r = self.call(
            &ClientPin::GetUvRetries {
                pin_uv_auth_protocol: protocol,
            },
            &mut no_progress,
        )?;
        r.uv_retries
            .ok_or_else(|| bad_response("clientPIN.uvRetries", "missing in the answer"))
    }

    /// The authenticator's key-agreement key for `protocol`.
    fn key_agreement(&mut self, protocol: PinUvAuthProtocol) -> Result<CoseKey, Error> {
        let r = self.call(
            &ClientPin::GetKeyAgreement {
                pin_uv_auth_protocol: protocol.id(),
            },
            &mut no_progress,
        )?;
        r.key_agreement
            .ok_or_else(|| bad_response("clientPIN.keyAgreement", "missing in the answer"))
    }

    /// The minimum PIN length in code points the key currently enforces.
    fn min_pin_code_points(&mut self) -> Result<usize, Error> {
        let min = self.info()?.min_pin_length.unwrap_or(0);
        Ok(usize::try_from(min)
            .unwrap_or(usize::MAX)
            .max(MIN_PIN_CODE_POINTS))
    }

    /// Sets the first PIN (clientPIN setPIN). Refused if a PIN is already set
    /// (use [`Authenticator::change_pin`]) or the PIN breaks the rules (at least
    /// `max(4, minPINLength)` code points, at most 63 bytes).
    pub fn set_pin(&mut self, new_pin: &str) -> Result<(), Error> {
        match self.info()?.supports_option("clientPin") {
            None => {
                return Err(Error::Unsupported(
                    "the key has no PIN support (getInfo option clientPin absent)".into(),
                ))
            }
            Some(true) => {
                return Err(Error::InvalidArgument(
                    "a PIN is already set on this key: change it with change_pin".into(),
                ))
            }
            Some(false) => {}
        }
        let min = self.min_pin_code_points()?;
        let new_pin = Pin::with_min_length(new_pin, min).map_err(pin_error)?;
        let protocol = self.pin_protocol()?;
        let peer = self.key_agreement(protocol)?;
        let p = pin::set_pin(protocol, &peer, &new_pin, &mut rng()).map_err(pin_error)?;
        tracing::debug!(?protocol, "clientPIN setPIN");
        let result = self.call(
            &ClientPin::SetPin {
                pin_uv_auth_protocol: protocol.id(),
                key_agreement: p.key_agreement,
                new_pin_enc: p.new_pin_enc,
                pin_uv_auth_param: p.pin_uv_auth_param,
            },
            &mut no_progress,
        );
        self.invalidate_info();
        result?;
        Ok(())
    }

    /// Changes the PIN (clientPIN changePIN). Reads the retry counter first and refuses
    /// to try when the PIN is blocked or a power cycle is pending; a wrong `current` PIN
    /// is reported with the retries left (it is never retried).
    pub fn change_pin(&mut self, current: &str, new_pin: &str) -> Result<(), Error> {
        if self.info()?.supports_option("clientPin") != Some(true) {
            return Err(Error::InvalidArgument(
                "no PIN is set on this key: set one with set_pin".into(),
            ));
        }
        // The current PIN is checked by the key, so only the basic rules apply to it.
        let current = Pin::new(current).map_err(pin_error)?;
        let min = self.min_pin_code_points()?;
        let new_pin = Pin::with_min_length(new_pin, min).map_err(pin_error)?;
        self.check_pin_usable()?;
        let protocol = self.pin_protocol()?;
        let peer = self.key_agreement(protocol)?;
        let p =
            pin::change_pin(protocol, &peer, &current, &new_pin, &mut rng()).map_err(pin_error)?;
        tracing::debug!(?protocol, "clientPIN changePIN");
        let result = self.call(
            &ClientPin::ChangePin {
                pin_uv_auth_protocol: protocol.id(),
                key_agreement: p.key_agreement,
                pin_hash_enc: p.pin_hash_enc,
                new_pin_enc: p.new_pin_enc,
                pin_uv_auth_param: p.pin_uv_auth_param,
            },
            &mut no_progress,
        );
        // forcePINChange and minPINLength may have changed.
        self.invalidate_info();
        match result {
            Ok(_) => Ok(()),
            Err(e) => Err(self.explain_pin_failure(e)),
        }
    }

    /// The key's device identifier (CTAP 2.2 `encIdentifier`, getInfo 0x19) decrypted
    /// with a persistent token: one from [`pin_token`](Self::pin_token) with
    /// [`Permissions::PERSISTENT_CREDENTIAL_MANAGEMENT_READ_ONLY`] (offered when getInfo
    /// lists `perCredMgmtRO`). Reads fresh getInfo. `None` when the key sends no
    /// identifier. The identifier is stable for the key until it is reset.
    pub fn device_identifier(&mut self, ppuat: &PinUvAuthToken) -> Result<Option<Vec<u8>>, Error> {
        super::check_token(
            ppuat,
            Permissions::PERSISTENT_CREDENTIAL_MANAGEMENT_READ_ONLY,
            None,
            "decrypting encIdentifier",
        )?;
        let info = self.refresh_info()?;
        info.decrypt_identifier(ppuat.expose_secret())
            .map_err(core_error)
    }

    /// A PIN/UV auth token from the PIN with exactly `permissions`, bound to `rp_id`
    /// (required for makeCredential / getAssertion permissions). Uses
    /// getPinUvAuthTokenUsingPinWithPermissions on CTAP 2.1 keys and getPinToken on
    /// CTAP 2.0 keys (whose tokens carry no permissions). While getInfo says
    /// `forcePINChange`, refused with PIN_POLICY_VIOLATION before the PIN is sent:
    /// change the PIN first.
    pub fn pin_token(
        &mut self,
        pin: &str,
        permissions: Permissions,
        rp_id: Option<&str>,
    ) -> Result<PinUvAuthToken, Error> {
        let info = self.info_owned()?;
        if info.supports_option("clientPin") != Some(true) {
            return Err(Error::InvalidArgument(
                "no PIN is set on this key: set one with set_pin".into(),
            ));
        }
        if info.force_pin_change == Some(true) {
            // The key would verify the PIN and then refuse; say why before sending it.
            return Err(Error::Ctap(CtapStatus::PinPolicyViolation));
        }
        let pin = Pin::new(pin).map_err(pin_error)?;
        let with_permissions = info.supports_option("pinUvAuthToken") == Some(true);
        if with_permissions {
            check_permissions(&info, permissions, rp_id)?;
            if info.supports_option("noMcGaPermissionsWithClientPin") == Some(true)
                && permissions.needs_rp_id()
            {
                // The key would answer UNAUTHORIZED_PERMISSION (0x3F); say why first.
                return Err(Error::Unsupported(
                    "this key grants makeCredential / getAssertion permissions only after \
                     built-in user verification (getInfo noMcGaPermissionsWithClientPin): \
                     use uv_token, not a PIN token"
                        .into(),
                ));
            }
        }
        let protocol = self.pin_protocol()?;
        let peer = self.key_agreement(protocol)?;
        let req = pin::pin_token_request(protocol, &peer, &pin, &mut rng()).map_err(pin_error)?;
        tracing::debug!(
            ?protocol,
            with_permissions,
            permissions = permissions.bits(),
            rp_id = rp_id.unwrap_or(""),
            "clientPIN getting a PIN/UV auth token"
        );
        let command = if with_permissions {
            ClientPin::GetPinUvAuthTokenUsingPinWithPermissions {
                pin_uv_auth_protocol: protocol.id(),
                key_agreement: req.key_agreement.clone(),
                pin_hash_enc: req.pin_hash_enc.clone(),
                permissions,
                rp_id: rp_id.map(str::to_owned),
            }
        } else {
            ClientPin::GetPinToken {
                pin_uv_auth_protocol: protocol.id(),
                key_agreement: req.key_agreement.clone(),
                pin_hash_enc: req.pin_hash_enc.clone(),
            }
        };
        let answer = match self.call(&command, &mut no_progress) {
            Ok(a) => a,
            Err(e) => return Err(self.explain_pin_failure(e)),
        };
        decrypt_token(
            protocol,
            &req.shared_secret,
            &answer,
            permissions,
            rp_id.filter(|_| with_permissions),
        )
    }

    /// A PIN/UV auth token from built-in user verification (fingerprint) with exactly
    /// `permissions`, bound to `rp_id` (getPinUvAuthTokenUsingUvWithPermissions).
    /// `progress` reports when the key waits for the user.
    pub fn uv_token(
        &mut self,
        permissions: Permissions,
        rp_id: Option<&str>,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<PinUvAuthToken, Error> {
        let info = self.info_owned()?;
        if info.supports_option("pinUvAuthToken") != Some(true) {
            return Err(Error::Unsupported(
                "the key cannot issue tokens from built-in user verification (getInfo option pinUvAuthToken absent)".into(),
            ));
        }
        if info.supports_option("uv") != Some(true) {
            return Err(Error::Unsupported(
                "built-in user verification is not available or not configured (getInfo option uv not true)".into(),
            ));
        }
        check_permissions(&info, permissions, rp_id)?;
        let protocol = self.pin_protocol()?;
        let peer = self.key_agreement(protocol)?;
        let (key_agreement, shared) = protocol.encapsulate(&peer, &mut rng()).map_err(pin_error)?;
        let answer = self.call(
            &ClientPin::GetPinUvAuthTokenUsingUvWithPermissions {
                pin_uv_auth_protocol: protocol.id(),
                key_agreement,
                permissions,
                rp_id: rp_id.map(str::to_owned),
            },
            progress,
        );
        let answer = match answer {
            Ok(a) => a,
            Err(e) if is_status(&e, CtapStatus::UvInvalid) => {
                let left = self.uv_retries().ok();
                return Err(Error::UvInvalid { retries_left: left });
            }
            Err(e) => return Err(e),
        };
        decrypt_token(protocol, &shared, &answer, permissions, rp_id)
    }

    /// Refuses to spend a PIN attempt when the key is blocked or needs a power cycle.
    fn check_pin_usable(&mut self) -> Result<(), Error> {
        let r = self.pin_retries()?;
        if r.retries == 0 {
            return Err(Error::Ctap(CtapStatus::PinBlocked));
        }
        if r.power_cycle_required {
            return Err(Error::Ctap(CtapStatus::PinAuthBlocked));
        }
        Ok(())
    }

    /// Turns a wrong-PIN answer into an error that says how many attempts are left.
    fn explain_pin_failure(&mut self, e: Error) -> Error {
        if !is_status(&e, CtapStatus::PinInvalid) {
            return e;
        }
        match self.pin_retries() {
            Ok(r) if r.retries == 0 => Error::Ctap(CtapStatus::PinBlocked),
            Ok(r) => Error::PinInvalid {
                retries_left: r.retries,
                power_cycle_required: r.power_cycle_required,
            },
            Err(_) => e,
        }
    }
}

/// Refuses permissions the key does not offer and mc/ga without an RP id.
fn check_permissions(
    info: &fido_core::commands::AuthenticatorInfo,
    permissions: Permissions,
    rp_id: Option<&str>,
) -> Result<(), Error> {
    if permissions.is_empty() {
        return Err(Error::InvalidArgument(
            "a PIN/UV auth token needs at least one permission".into(),
        ));
    }
    if permissions.needs_rp_id() && rp_id.is_none() {
        return Err(Error::InvalidArgument(
            "makeCredential / getAssertion permissions need an RP id".into(),
        ));
    }
    let gates: [(Permissions, &[&str], &str); 5] = [
        (
            Permissions::PERSISTENT_CREDENTIAL_MANAGEMENT_READ_ONLY,
            &["perCredMgmtRO"],
            "a persistent read-only credential management token",
        ),
        (
            Permissions::CREDENTIAL_MANAGEMENT,
            &["credMgmt", "credentialMgmtPreview"],
            "credential management",
        ),
        (
            Permissions::BIO_ENROLLMENT,
            &["bioEnroll", "userVerificationMgmtPreview"],
            "bio enrollment",
        ),
        (
            Permissions::LARGE_BLOB_WRITE,
            &["largeBlobs"],
            "large blobs",
        ),
        (
            Permissions::AUTHENTICATOR_CONFIG,
            &["authnrCfg"],
            "authenticatorConfig",
        ),
    ];
    for (p, options, what) in gates {
        if permissions.contains(p) && options.iter().all(|o| info.supports_option(o).is_none()) {
            return Err(Error::Unsupported(format!(
                "the key does not offer {what} (getInfo option {} absent), so no token can carry that permission",
                options.join(" / ")
            )));
        }
    }
    Ok(())
}

fn decrypt_token(
    protocol: PinUvAuthProtocol,
    shared: &pin::SharedSecret,
    answer: &ClientPinResponse,
    permissions: Permissions,
    rp_id: Option<&str>,
) -> Result<PinUvAuthToken, Error> {
    let enc = answer
        .pin_uv_auth_token
        .as_ref()
        .ok_or_else(|| bad_response("clientPIN.pinUvAuthToken", "missing in the answer"))?;
    PinUvAuthToken::decrypt(
        protocol,
        shared,
        enc.expose(),
        permissions,
        rp_id.map(str::to_owned),
    )
    .map_err(pin_error)
}

/// A PIN rule or protocol failure.
pub(crate) fn pin_error(e: pin::PinError) -> Error {
    core_error(fido_core::Error::Pin(e))
}
