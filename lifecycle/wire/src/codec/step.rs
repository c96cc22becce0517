//! Device steps and `PinSource` (split-protocol.md §4): unknown types and keys refused.

use fido_core::cbor::Value;

use super::{
    boolean, bytes, bytes_list, bytes_list_of, bytes_n, int, list, text, text_list, text_list_of,
    true_only, u32_of, u8_of, uint, MapB, Obj, MAX_IDS, MAX_LIST,
};
use crate::error::WireError;
use crate::msg::{DeviceStep, PinSource, RpInfo, UserInfo};

fn pin(p: &PinSource) -> Value {
    match p {
        PinSource::Secret(id) => MapB::new().put(1, *id),
        PinSource::NewHolderPin { min_len, confirm } => {
            MapB::new().put(2, MapB::new().put(1, *min_len).put(2, *confirm).build())
        }
        PinSource::Current => MapB::new().put(3, true),
        PinSource::HolderPin => MapB::new().put(4, true),
    }
    .build()
}

fn pin_from(v: &Value, field: &'static str) -> Result<PinSource, WireError> {
    let m = Obj::strict(v, field, &[1, 2, 3, 4])?;
    if m.len() != 1 {
        return Err(WireError::InvalidValue {
            field,
            reason: "a PinSource has exactly one key",
        });
    }
    if let Some(id) = m.get(1) {
        return Ok(PinSource::Secret(u32_of(id, field)?));
    }
    if let Some(n) = m.get(2) {
        let n = Obj::strict(n, "PinSource.new_holder_pin", &[1, 2])?;
        return Ok(PinSource::NewHolderPin {
            min_len: u32_of(n.req(1, "PinSource.min_len")?, "PinSource.min_len")?,
            confirm: boolean(n.req(2, "PinSource.confirm")?, "PinSource.confirm")?,
        });
    }
    if let Some(t) = m.get(3) {
        true_only(t, field)?;
        return Ok(PinSource::Current);
    }
    true_only(m.req(4, field)?, field)?;
    Ok(PinSource::HolderPin)
}

pub(super) fn step_value(s: &DeviceStep) -> Value {
    let (t, m): (u64, MapB) = match s {
        DeviceStep::ReadInfo => (1, MapB::new()),
        DeviceStep::Probe {
            rp_id,
            allow,
            client_data_json,
        } => (
            2,
            MapB::new()
                .put(1, rp_id.as_str())
                .put(2, bytes_list(allow))
                .put(3, client_data_json.clone()),
        ),
        DeviceStep::Reset {
            require_replug,
            only_if_aaguid,
        } => (
            3,
            MapB::new()
                .put(1, *require_replug)
                .opt(2, only_if_aaguid.map(|a| a.to_vec())),
        ),
        DeviceStep::SetPin { pin: p } => (4, MapB::new().put(1, pin(p))),
        DeviceStep::ChangePin { current, new } => {
            (5, MapB::new().put(1, pin(current)).put(2, pin(new)))
        }
        DeviceStep::VerifyPin { pin: p } => (6, MapB::new().put(1, pin(p))),
        DeviceStep::SetMinPinLength {
            min,
            rp_ids,
            force_change,
            pin: p,
        } => (
            7,
            MapB::new()
                .opt(1, *min)
                .put(2, text_list(rp_ids))
                .put(3, *force_change)
                .opt(4, p.as_ref().map(pin)),
        ),
        DeviceStep::EnableAlwaysUv { pin: p } => (8, MapB::new().opt(1, p.as_ref().map(pin))),
        DeviceStep::EnrollFingerprints {
            min,
            timeout_ms,
            pin: p,
        } => (
            9,
            MapB::new().put(1, *min).put(2, *timeout_ms).put(3, pin(p)),
        ),
        DeviceStep::MakeCredential {
            passkey_template,
            rp,
            user,
            client_data_json,
            algs,
            exclude,
            cred_protect,
            min_pin_length,
            hmac_secret,
            pin: p,
            enterprise_attestation,
        } => (
            10,
            MapB::new()
                .put(1, passkey_template.as_str())
                .put(
                    2,
                    MapB::new()
                        .put(1, rp.id.as_str())
                        .put(2, rp.name.as_str())
                        .build(),
                )
                .put(
                    3,
                    MapB::new()
                        .put(1, user.id.clone())
                        .put(2, user.name.as_str())
                        .put(3, user.display_name.as_str())
                        .build(),
                )
                .put(4, client_data_json.clone())
                .put(
                    5,
                    Value::Array(algs.iter().map(|a| Value::from(*a)).collect()),
                )
                .put(6, bytes_list(exclude))
                .opt(7, *cred_protect)
                .put(8, *min_pin_length)
                .put(9, *hmac_secret)
                .put(10, pin(p))
                .opt(11, *enterprise_attestation),
        ),
        DeviceStep::GetAssertion {
            rp_id,
            allow,
            client_data_json,
            pin: p,
        } => (
            11,
            MapB::new()
                .put(1, rp_id.as_str())
                .put(2, bytes_list(allow))
                .put(3, client_data_json.clone())
                .opt(4, p.as_ref().map(pin)),
        ),
        DeviceStep::CredMgmtDelete {
            rp_id,
            credential_id,
            pin: p,
        } => (
            12,
            MapB::new()
                .put(1, rp_id.as_str())
                .put(2, credential_id.clone())
                .put(3, pin(p)),
        ),
        DeviceStep::ReadIdentifier { pin: p } => (13, MapB::new().put(1, pin(p))),
    };
    m.put(0, t).build()
}

pub(super) fn step_from(v: &Value) -> Result<DeviceStep, WireError> {
    // The type first: an unknown type is `UnknownStep` whatever keys it carries.
    let any = Obj::lenient(v, "step")?;
    let t = uint(any.req(0, "step.type")?, "step.type")?;
    let keys: &[i64] = match t {
        1 => &[0],
        2 | 11 => &[0, 1, 2, 3, 4],
        3 | 5 => &[0, 1, 2],
        4 | 6 | 8 => &[0, 1],
        7 => &[0, 1, 2, 3, 4],
        9 | 12 => &[0, 1, 2, 3],
        10 => &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
        13 => &[0, 1],
        _ => return Err(WireError::UnknownStep { step_type: t }),
    };
    // Probe has no key 4.
    let keys = if t == 2 { &keys[..4] } else { keys };
    let m = Obj::strict(v, "step", keys)?;
    Ok(match t {
        1 => DeviceStep::ReadInfo,
        2 => DeviceStep::Probe {
            rp_id: text(m.req(1, "Probe.rp_id")?, "Probe.rp_id")?,
            allow: bytes_list_of(m.req(2, "Probe.allow")?, "Probe.allow", MAX_IDS)?,
            client_data_json: bytes(
                m.req(3, "Probe.client_data_json")?,
                "Probe.client_data_json",
            )?,
        },
        3 => DeviceStep::Reset {
            require_replug: boolean(m.req(1, "Reset.require_replug")?, "Reset.require_replug")?,
            only_if_aaguid: m
                .get(2)
                .map(|v| bytes_n::<16>(v, "Reset.only_if_aaguid"))
                .transpose()?,
        },
        4 => DeviceStep::SetPin {
            pin: pin_from(m.req(1, "SetPin.pin")?, "SetPin.pin")?,
        },
        5 => DeviceStep::ChangePin {
            current: pin_from(m.req(1, "ChangePin.current")?, "ChangePin.current")?,
            new: pin_from(m.req(2, "ChangePin.new")?, "ChangePin.new")?,
        },
        6 => DeviceStep::VerifyPin {
            pin: pin_from(m.req(1, "VerifyPin.pin")?, "VerifyPin.pin")?,
        },
        7 => DeviceStep::SetMinPinLength {
            min: m
                .get(1)
                .map(|v| u32_of(v, "SetMinPinLength.min"))
                .transpose()?,
            rp_ids: text_list_of(
                m.req(2, "SetMinPinLength.rp_ids")?,
                "SetMinPinLength.rp_ids",
            )?,
            force_change: boolean(
                m.req(3, "SetMinPinLength.force_change")?,
                "SetMinPinLength.force_change",
            )?,
            pin: m
                .get(4)
                .map(|v| pin_from(v, "SetMinPinLength.pin"))
                .transpose()?,
        },
        8 => DeviceStep::EnableAlwaysUv {
            pin: m
                .get(1)
                .map(|v| pin_from(v, "EnableAlwaysUv.pin"))
                .transpose()?,
        },
        9 => DeviceStep::EnrollFingerprints {
            min: u32_of(
                m.req(1, "EnrollFingerprints.min")?,
                "EnrollFingerprints.min",
            )?,
            timeout_ms: u32_of(
                m.req(2, "EnrollFingerprints.timeout_ms")?,
                "EnrollFingerprints.timeout_ms",
            )?,
            pin: pin_from(
                m.req(3, "EnrollFingerprints.pin")?,
                "EnrollFingerprints.pin",
            )?,
        },
        10 => {
            let rp = Obj::strict(m.req(2, "MakeCredential.rp")?, "MakeCredential.rp", &[1, 2])?;
            let user = Obj::strict(
                m.req(3, "MakeCredential.user")?,
                "MakeCredential.user",
                &[1, 2, 3],
            )?;
            DeviceStep::MakeCredential {
                passkey_template: text(
                    m.req(1, "MakeCredential.passkey_template")?,
                    "MakeCredential.passkey_template",
                )?,
                rp: RpInfo {
                    id: text(rp.req(1, "rp.id")?, "rp.id")?,
                    name: text(rp.req(2, "rp.name")?, "rp.name")?,
                },
                user: UserInfo {
                    id: bytes(user.req(1, "user.id")?, "user.id")?,
                    name: text(user.req(2, "user.name")?, "user.name")?,
                    display_name: text(user.req(3, "user.display_name")?, "user.display_name")?,
                },
                client_data_json: bytes(
                    m.req(4, "MakeCredential.client_data_json")?,
                    "MakeCredential.client_data_json",
                )?,
                algs: list(
                    m.req(5, "MakeCredential.algs")?,
                    "MakeCredential.algs",
                    MAX_LIST,
                )?
                .iter()
                .map(|a| int(a, "MakeCredential.algs"))
                .collect::<Result<_, _>>()?,
                exclude: bytes_list_of(
                    m.req(6, "MakeCredential.exclude")?,
                    "MakeCredential.exclude",
                    MAX_IDS,
                )?,
                cred_protect: m
                    .get(7)
                    .map(|v| u8_of(v, "MakeCredential.cred_protect"))
                    .transpose()?,
                min_pin_length: boolean(
                    m.req(8, "MakeCredential.min_pin_length")?,
                    "MakeCredential.min_pin_length",
                )?,
                hmac_secret: boolean(
                    m.req(9, "MakeCredential.hmac_secret")?,
                    "MakeCredential.hmac_secret",
                )?,
                pin: pin_from(m.req(10, "MakeCredential.pin")?, "MakeCredential.pin")?,
                enterprise_attestation: m
                    .get(11)
                    .map(|v| u8_of(v, "MakeCredential.enterprise_attestation"))
                    .transpose()?,
            }
        }
        11 => DeviceStep::GetAssertion {
            rp_id: text(m.req(1, "GetAssertion.rp_id")?, "GetAssertion.rp_id")?,
            allow: bytes_list_of(
                m.req(2, "GetAssertion.allow")?,
                "GetAssertion.allow",
                MAX_IDS,
            )?,
            client_data_json: bytes(
                m.req(3, "GetAssertion.client_data_json")?,
                "GetAssertion.client_data_json",
            )?,
            pin: m
                .get(4)
                .map(|v| pin_from(v, "GetAssertion.pin"))
                .transpose()?,
        },
        12 => DeviceStep::CredMgmtDelete {
            rp_id: text(m.req(1, "CredMgmtDelete.rp_id")?, "CredMgmtDelete.rp_id")?,
            credential_id: bytes(
                m.req(2, "CredMgmtDelete.credential_id")?,
                "CredMgmtDelete.credential_id",
            )?,
            pin: pin_from(m.req(3, "CredMgmtDelete.pin")?, "CredMgmtDelete.pin")?,
        },
        13 => DeviceStep::ReadIdentifier {
            pin: pin_from(m.req(1, "ReadIdentifier.pin")?, "ReadIdentifier.pin")?,
        },
        _ => return Err(WireError::UnknownStep { step_type: t }),
    })
}
