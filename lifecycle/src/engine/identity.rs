//! The right key for the right row (`docs/DEVICES.md`): what a key proves about which key
//! it is, compared with what is recorded for its key id and recorded with its issuance.
//!
//! - CTAP 2.2 `encIdentifier`: decrypted with a persistent token (`pcmr`) from the key's
//!   PIN. A blank key has no PIN, so it is read right after the transport PIN is set
//!   (before the key makes a credential); a key that already has a PIN the engine knows
//!   (its stored transport PIN) is read before anything else is done to it. A different
//!   identifier than the one recorded is refused ([`EngineError::NotTheRecordedKey`]).
//! - The attestation certificate's serial: the identity only from an enterprise
//!   attestation (`epAtt`); a batch certificate's serial is shared by the model's batch and
//!   kept in the audit as evidence only.
//! - Neither: the serial's source as the station knew it (the USB serial string, or
//!   claimed by the CSV row / the caller).

use fido_core::attestation::AttestationObject;

use super::flow::FlowContext;
use super::{Engine, EngineError, SerialSource, UnixMillis};
use crate::model::CredentialState;
use crate::remote::DeviceLink;
use crate::store::{KeyIdentity, KeyQuery, KeyRecord};
use crate::Error;

fn hex(bytes: &[u8]) -> String {
    base16ct::lower::encode_string(bytes)
}

/// Refuses `proven` when another live key record (not blank, not unregistered) holds it:
/// the attached key is already that key, under another serial.
fn recorded_elsewhere(
    engine: &Engine,
    key: &KeyRecord,
    proven: &str,
    source: SerialSource,
) -> Result<(), Error> {
    let other = engine
        .store
        .find_keys(&KeyQuery::ByIdentity(proven.to_owned()))?
        .into_iter()
        .find(|k| {
            k.key_id != key.key_id
                && !matches!(
                    k.state,
                    CredentialState::Blank | CredentialState::Unregistered
                )
        });
    match other {
        Some(o) => Err(EngineError::NotTheRecordedKey {
            key_id: key.key_id.clone(),
            message: format!(
                "the attached key ({} {proven}) is already recorded as {} (serial {}, {}), not as {} (serial {}): attach the row's key",
                source.describe(),
                o.key_id,
                o.serial,
                o.state.as_str(),
                key.key_id,
                key.serial
            ),
        }
        .into()),
        None => Ok(()),
    }
}

/// Refuses `proven` (from `source`) when the key id records another identity.
fn compare(key: &KeyRecord, proven: &str, source: SerialSource) -> Result<(), Error> {
    let recorded_source = key.serial_source.as_deref().and_then(SerialSource::parse);
    match (&key.identity, recorded_source) {
        (Some(recorded), Some(s)) if s == source && recorded != proven => {
            Err(EngineError::NotTheRecordedKey {
                key_id: key.key_id.clone(),
                message: format!(
                    "the attached key is not the key recorded as {} (serial {}): {} {proven} \
                     differs from the recorded {recorded}; attach the recorded key",
                    key.key_id,
                    key.serial,
                    source.describe()
                ),
            }
            .into())
        }
        _ => Ok(()),
    }
}

impl Engine {
    /// Before a flow on an issued key (its transport PIN, which the engine stored, is
    /// still on it): reads its device identifier and refuses another key than the
    /// recorded one. Keys without a PIN, without `encIdentifier`, without a recorded
    /// identifier, or whose PIN the engine does not hold (the holder's, once active) are
    /// checked after the transport PIN is set, or not at all.
    pub(super) fn check_identity_up_front(
        &self,
        flow: &mut FlowContext<'_>,
        link: &mut dyn DeviceLink,
    ) -> Result<(), Error> {
        if flow.key.identity.is_none()
            || flow.key.state != CredentialState::Issued
            || flow.key.serial_source.as_deref() != Some(SerialSource::EncIdentifier.as_str())
            || link.info().supports_option("clientPin") != Some(true)
            || link.info().enc_identifier.is_none()
        {
            return Ok(());
        }
        let Some(pin) = self
            .store
            .get_transport_pin(&flow.key.key_id, &self.pin_key)?
        else {
            return Ok(());
        };
        check_with_pin(&flow.key, link, pin.expose())
    }

    /// Right after the transport PIN is set: reads the device identifier with it,
    /// refuses another key than the recorded one, and keeps it to be recorded with the
    /// state change. A key without `encIdentifier` keeps the station's source.
    pub(super) fn prove_identity_after_pin(
        &self,
        flow: &mut FlowContext<'_>,
        link: &mut dyn DeviceLink,
        now: UnixMillis,
    ) -> Result<(), Error> {
        let Some(pin) = flow.pin.clone() else {
            return Ok(());
        };
        let Some(id) = link.device_identifier(&pin)? else {
            return Ok(());
        };
        let proven = hex(&id);
        compare(&flow.key, &proven, SerialSource::EncIdentifier)?;
        recorded_elsewhere(self, &flow.key, &proven, SerialSource::EncIdentifier)?;
        flow.identity = Some(KeyIdentity {
            identity: Some(proven),
            serial_source: Some(SerialSource::EncIdentifier.as_str().to_owned()),
        });
        let rec = flow.audit(
            "identify",
            "success",
            Some(format!(
                "serial_source={}",
                SerialSource::EncIdentifier.as_str()
            )),
            now,
        );
        flow.work.audit.push(rec);
        Ok(())
    }

    /// After a verified makeCredential: the attestation certificate's serial becomes the
    /// key's identity when the attestation is an enterprise attestation (and the key
    /// proved nothing better); a batch certificate's serial is returned as evidence for
    /// the audit only.
    pub(super) fn identity_from_attestation(
        &self,
        flow: &mut FlowContext<'_>,
        attestation_object: &[u8],
    ) -> Result<Option<String>, Error> {
        let Some((serial, enterprise)) = attestation_serial(attestation_object) else {
            return Ok(None);
        };
        if !enterprise {
            return Ok(Some(format!(
                "certificate_serial={serial} (batch attestation: shared by the model's batch, not the key's identity)"
            )));
        }
        compare(&flow.key, &serial, SerialSource::AttestationCertificate)?;
        recorded_elsewhere(
            self,
            &flow.key,
            &serial,
            SerialSource::AttestationCertificate,
        )?;
        let proven_better = flow.identity.as_ref().is_some_and(|i| i.identity.is_some());
        if !proven_better {
            flow.identity = Some(KeyIdentity {
                identity: Some(serial.clone()),
                serial_source: Some(SerialSource::AttestationCertificate.as_str().to_owned()),
            });
        }
        Ok(Some(format!(
            "certificate_serial={serial} (enterprise attestation)"
        )))
    }
}

/// With the key's current `pin` (a sign-in check: the holder's): reads the device
/// identifier and refuses another key than the one recorded under `key`. Keys without a
/// recorded identifier or without `encIdentifier` are not checked.
pub(super) fn check_with_pin(
    key: &KeyRecord,
    link: &mut dyn DeviceLink,
    pin: &str,
) -> Result<(), Error> {
    if key.identity.is_none()
        || key.serial_source.as_deref() != Some(SerialSource::EncIdentifier.as_str())
        || link.info().enc_identifier.is_none()
    {
        return Ok(());
    }
    match link.device_identifier(pin)? {
        Some(id) => compare(key, &hex(&id), SerialSource::EncIdentifier),
        None => Ok(()),
    }
}

/// The attestation certificate's serial (hex) and whether the attestation is an
/// enterprise attestation; `None` without a certificate (self or none attestation).
pub(crate) fn attestation_serial(attestation_object: &[u8]) -> Option<(String, bool)> {
    let att = AttestationObject::from_cbor(attestation_object).ok()?;
    let serial = att.leaf_certificate_serial()?;
    Some((hex(&serial), att.enterprise_attestation()))
}

/// What is recorded with an issuance: what the key proved, else the station's source.
pub(super) fn recorded_identity(flow: &FlowContext<'_>) -> KeyIdentity {
    flow.identity.clone().unwrap_or_else(|| KeyIdentity {
        identity: None,
        serial_source: flow.claimed.map(|s| s.as_str().to_owned()),
    })
}
