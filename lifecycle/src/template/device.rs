//! Stage two of validation: the credential template against the key being issued.

use serde::{Deserialize, Serialize};

use super::{Fido2Options, Problem};

/// How the key is attached.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum KeyTransport {
    /// USB HID.
    #[default]
    Usb,
    /// NFC (or contact) through PC/SC.
    Nfc,
    /// A software authenticator (`softkey:`), for tests and demos only: its keys can be
    /// copied, so the facade refuses it unless the session allows software keys.
    Software,
}

impl KeyTransport {
    /// The lower-case name (`usb`, `nfc`, `software`), as in JSON and the audit log.
    pub const fn as_str(self) -> &'static str {
        match self {
            KeyTransport::Usb => "usb",
            KeyTransport::Nfc => "nfc",
            KeyTransport::Software => "software",
        }
    }
}

/// Which `getInfo` options the key supports (present in its options map, whatever their value).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DeviceOptions {
    /// `bioEnroll`: a fingerprint sensor with enrolment.
    pub bio_enroll: bool,
    /// `authnrCfg`: `authenticatorConfig`.
    pub authnr_cfg: bool,
    /// `setMinPINLength`.
    pub set_min_pin_length: bool,
    /// `alwaysUv` is present: the key supports `toggleAlwaysUv`.
    pub always_uv: bool,
    /// `alwaysUv` is `true`: always-UV is on now (`toggleAlwaysUv` flips, so this matters).
    pub always_uv_enabled: bool,
    /// `clientPin` is `true`: a PIN is already set.
    pub client_pin_set: bool,
}

/// What the engine knows about the key being issued, filled from `getInfo` and the transport.
///
/// A plain data struct so decisions are pure functions of it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DeviceFacts {
    /// The key speaks CTAP 2.1 (`FIDO_2_1` in `versions`).
    pub ctap21: bool,
    /// Extension identifiers from `getInfo`, e.g. `minPinLength`.
    pub extensions: Vec<String>,
    /// Supported options.
    pub options: DeviceOptions,
    /// `maxRPIDsForSetMinPINLength` (absent means none may be given).
    pub max_rpids_for_set_min_pin_length: Option<u32>,
    /// How the key is attached.
    pub transport: KeyTransport,
    /// A CTAP reset can be made within the key's power-up window: NFC field power
    /// cycle, a USB key that was just plugged in, or a device half that runs the replug
    /// helper (`fido_transport::client::reset_after_replug`: "remove the key", "insert
    /// it again", same-key check, reset at once), which makes USB reset-before-issuance
    /// possible.
    pub can_reset_in_place: bool,
    /// The key's current minimum PIN length (`minPINLength`, 4 when absent).
    pub min_pin_length: Option<u32>,
}

impl DeviceFacts {
    /// Whether `getInfo` lists extension `id`.
    pub fn has_extension(&self, id: &str) -> bool {
        self.extensions.iter().any(|e| e == id)
    }
}

const F: &str = "credential.fido2";

pub(crate) fn device_problems(o: &Fido2Options, d: &DeviceFacts) -> Vec<Problem> {
    let mut p = Vec::new();
    if o.reset_before_issuance && !d.can_reset_in_place {
        let message = match d.transport {
            KeyTransport::Usb => "this USB key cannot be reset here: a CTAP reset must come within 5 to 10 seconds of power-up; use a station that runs the replug reset (it asks the operator to remove and reinsert the key, then resets it at once), or turn reset_before_issuance off",
            KeyTransport::Software => "this software key cannot be reset in place; reopen it and issue again (or turn reset_before_issuance off)",
            KeyTransport::Nfc => "this key cannot be reset in place: the reader could not power-cycle the field; lift the key off the reader and put it back, then issue again (or turn reset_before_issuance off)",
        };
        p.push(Problem::new(format!("{F}.reset_before_issuance"), message));
    }
    if !o.reset_before_issuance && d.options.client_pin_set {
        p.push(Problem::new(
            format!("{F}.reset_before_issuance"),
            "the key already has a PIN the engine does not know; turn reset_before_issuance on or reset the key first",
        ));
    }
    if o.always_uv {
        if !d.ctap21 {
            p.push(Problem::new(
                format!("{F}.always_uv"),
                "always-UV needs a CTAP 2.1 key; this key speaks CTAP 2.0 only",
            ));
        } else if !(d.options.always_uv && d.options.authnr_cfg) {
            p.push(Problem::new(
                format!("{F}.always_uv"),
                "this key does not support toggleAlwaysUv (authenticatorConfig with alwaysUv)",
            ));
        }
    }
    if o.bio.is_some() && !d.options.bio_enroll {
        p.push(Problem::new(
            format!("{F}.bio"),
            "bio enrolment needs a key with bioEnroll; this key has no fingerprint enrolment",
        ));
    }
    let set_min_supported = d.ctap21 && d.options.set_min_pin_length && d.options.authnr_cfg;
    let needs_set_min = o.min_pin_length.is_some() || o.force_change_pin;
    if needs_set_min && !set_min_supported {
        let field = if o.min_pin_length.is_some() {
            "min_pin_length"
        } else {
            "force_change_pin"
        };
        p.push(Problem::new(
            format!("{F}.{field}"),
            "this key does not support CTAP 2.1 setMinPINLength",
        ));
    }
    if !o.min_pin_length_rp_ids.is_empty() {
        let field = format!("{F}.min_pin_length_rp_ids");
        if !(d.has_extension("minPinLength") && set_min_supported) {
            p.push(Problem::new(
                field,
                "this key does not support the minPinLength extension: RP ids for it are refused, not dropped; remove them or use a key with the extension",
            ));
        } else {
            let max = d.max_rpids_for_set_min_pin_length.unwrap_or(0);
            let n = o.min_pin_length_rp_ids.len();
            if u32::try_from(n).map_or(true, |n| n > max) {
                p.push(Problem::new(
                    field,
                    format!("{n} RP ids exceed this key's maxRPIDsForSetMinPINLength of {max}"),
                ));
            }
        }
    }
    p.sort();
    p
}
