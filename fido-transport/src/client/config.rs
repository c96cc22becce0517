//! authenticatorConfig: setMinPINLength, alwaysUv, enterprise attestation.

use fido_core::commands::{AuthenticatorConfig, AuthenticatorInfo, ConfigSubCommand};
use fido_core::pin::{Permissions, PinUvAuthToken};

use super::{check_token, no_progress, Authenticator};
use crate::{Error, Transport};

impl<T: Transport> Authenticator<T> {
    /// Sends one authenticatorConfig subcommand, authenticated with `token` when given,
    /// then refreshes the cached getInfo.
    fn config(
        &mut self,
        sub_command: ConfigSubCommand,
        token: Option<&PinUvAuthToken>,
    ) -> Result<(), Error> {
        let mut request = AuthenticatorConfig::new(sub_command);
        if let Some(token) = token {
            check_token(
                token,
                Permissions::AUTHENTICATOR_CONFIG,
                None,
                "authenticatorConfig",
            )?;
            request.pin_uv_auth_protocol = Some(token.protocol().id());
            request.pin_uv_auth_param = Some(token.authenticate(&request.pin_uv_auth_message()));
        }
        let result = self.call(&request, &mut no_progress);
        self.invalidate_info();
        result
    }

    /// setMinPINLength: raises the minimum PIN length to `new_min` (it can only grow),
    /// lets `rp_ids` read it through the minPinLength extension, and with `force_change`
    /// makes the PIN expire. Refused before sending when the key lacks `authnrCfg` or
    /// `setMinPINLength`, when RP ids are given but the key lacks the `minPinLength`
    /// extension or accepts fewer than given (`maxRPIDsForSetMinPINLength`), or when
    /// `new_min` is below the current minimum. RP ids are never dropped silently.
    ///
    /// `token` needs the authenticatorConfig permission; it may be `None` only on a key
    /// with no PIN and no built-in UV configured.
    pub fn set_min_pin_length(
        &mut self,
        new_min: Option<u8>,
        rp_ids: &[String],
        force_change: bool,
        token: Option<&PinUvAuthToken>,
    ) -> Result<(), Error> {
        let info = self.info_owned()?;
        require_config(&info)?;
        if info.supports_option("setMinPINLength") != Some(true) {
            return Err(Error::Unsupported(
                "the key does not support setMinPINLength (getInfo option setMinPINLength not true)"
                    .into(),
            ));
        }
        if let (Some(new), Some(current)) = (new_min, info.min_pin_length) {
            if u64::from(new) < current {
                return Err(Error::InvalidArgument(format!(
                    "the minimum PIN length can only grow: {new} is below the current {current}"
                )));
            }
        }
        if !rp_ids.is_empty() {
            if !info.has_extension("minPinLength") {
                return Err(Error::Unsupported(format!(
                    "the key does not list the minPinLength extension, so it cannot report the minimum PIN length to {} RP id(s); refusing rather than dropping them",
                    rp_ids.len()
                )));
            }
            let max = info.max_rpids_for_set_min_pin_length.unwrap_or(0);
            if rp_ids.len() as u64 > max {
                return Err(Error::Unsupported(format!(
                    "the key accepts at most {max} RP id(s) for setMinPINLength (maxRPIDsForSetMinPINLength), {} given; refusing rather than dropping any",
                    rp_ids.len()
                )));
            }
        }
        self.config(
            ConfigSubCommand::SetMinPinLength {
                new_min_pin_length: new_min,
                min_pin_length_rpids: (!rp_ids.is_empty()).then(|| rp_ids.to_vec()),
                force_change_pin: force_change.then_some(true),
            },
            token,
        )
    }

    /// Flips the `alwaysUv` option (toggleAlwaysUv) and returns its new value.
    pub fn toggle_always_uv(&mut self, token: Option<&PinUvAuthToken>) -> Result<bool, Error> {
        let current = self.always_uv_state()?;
        self.config(ConfigSubCommand::ToggleAlwaysUv, token)?;
        Ok(self.info()?.supports_option("alwaysUv").unwrap_or(!current))
    }

    /// Sets `alwaysUv` to `on`: reads getInfo first and toggles only if needed. Returns
    /// true if a toggle was sent.
    pub fn set_always_uv(
        &mut self,
        on: bool,
        token: Option<&PinUvAuthToken>,
    ) -> Result<bool, Error> {
        let current = self.always_uv_state()?;
        if current == on {
            return Ok(false);
        }
        self.config(ConfigSubCommand::ToggleAlwaysUv, token)?;
        if self.info()?.supports_option("alwaysUv") != Some(on) {
            return Err(Error::Unsupported(format!(
                "the key accepted toggleAlwaysUv but getInfo does not show alwaysUv = {on}"
            )));
        }
        Ok(true)
    }

    /// enableEnterpriseAttestation (needs getInfo option `ep`).
    pub fn enable_enterprise_attestation(
        &mut self,
        token: Option<&PinUvAuthToken>,
    ) -> Result<(), Error> {
        let info = self.info_owned()?;
        require_config(&info)?;
        if info.supports_option("ep").is_none() {
            return Err(Error::Unsupported(
                "the key does not support enterprise attestation (getInfo option ep absent)".into(),
            ));
        }
        self.config(ConfigSubCommand::EnableEnterpriseAttestation, token)
    }

    fn always_uv_state(&mut self) -> Result<bool, Error> {
        let info = self.info_owned()?;
        require_config(&info)?;
        info.supports_option("alwaysUv").ok_or_else(|| {
            Error::Unsupported("the key does not support alwaysUv (getInfo option absent)".into())
        })
    }
}

fn require_config(info: &AuthenticatorInfo) -> Result<(), Error> {
    if info.supports_option("authnrCfg") != Some(true) {
        return Err(Error::Unsupported(
            "the key does not support authenticatorConfig (getInfo option authnrCfg not true)"
                .into(),
        ));
    }
    Ok(())
}
