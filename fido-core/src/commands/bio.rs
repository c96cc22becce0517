//! authenticatorBioEnrollment (0x09, prototype 0x40).

use super::{
    array_of, map_or_empty, opt, params_bytes, req, Command, MapBuilder, ResponseData,
    CMD_BIO_ENROLLMENT, CMD_BIO_ENROLLMENT_PROTOTYPE,
};
use crate::cbor::{CborError, MapRef, Value};
use crate::{CtapStatus, Error};

/// The fingerprint modality (the only one CTAP 2.1 defines).
pub const MODALITY_FINGERPRINT: u8 = 0x01;

/// A bioEnrollment subcommand with its subCommandParams.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BioSubCommand {
    /// enrollBegin (0x01).
    EnrollBegin {
        /// How long to wait for a sample.
        timeout_milliseconds: Option<u32>,
    },
    /// enrollCaptureNextSample (0x02).
    EnrollCaptureNextSample {
        /// The template being enrolled.
        template_id: Vec<u8>,
        /// How long to wait for a sample.
        timeout_milliseconds: Option<u32>,
    },
    /// cancelCurrentEnrollment (0x03).
    CancelCurrentEnrollment,
    /// enumerateEnrollments (0x04).
    EnumerateEnrollments,
    /// setFriendlyName (0x05).
    SetFriendlyName {
        /// The template to rename.
        template_id: Vec<u8>,
        /// Its new name.
        template_friendly_name: String,
    },
    /// removeEnrollment (0x06).
    RemoveEnrollment {
        /// The template to remove.
        template_id: Vec<u8>,
    },
    /// getFingerprintSensorInfo (0x07).
    GetFingerprintSensorInfo,
}

impl BioSubCommand {
    /// The subCommand byte.
    pub fn byte(&self) -> u8 {
        match self {
            BioSubCommand::EnrollBegin { .. } => 0x01,
            BioSubCommand::EnrollCaptureNextSample { .. } => 0x02,
            BioSubCommand::CancelCurrentEnrollment => 0x03,
            BioSubCommand::EnumerateEnrollments => 0x04,
            BioSubCommand::SetFriendlyName { .. } => 0x05,
            BioSubCommand::RemoveEnrollment { .. } => 0x06,
            BioSubCommand::GetFingerprintSensorInfo => 0x07,
        }
    }

    /// The subCommandParams map, if this subcommand has one.
    pub fn params(&self) -> Option<Value> {
        let b = match self {
            BioSubCommand::EnrollBegin {
                timeout_milliseconds,
            } => MapBuilder::new().put_opt(3, *timeout_milliseconds),
            BioSubCommand::EnrollCaptureNextSample {
                template_id,
                timeout_milliseconds,
            } => MapBuilder::new()
                .put(1, template_id.clone())
                .put_opt(3, *timeout_milliseconds),
            BioSubCommand::SetFriendlyName {
                template_id,
                template_friendly_name,
            } => MapBuilder::new()
                .put(1, template_id.clone())
                .put(2, template_friendly_name.as_str()),
            BioSubCommand::RemoveEnrollment { template_id } => {
                MapBuilder::new().put(1, template_id.clone())
            }
            _ => MapBuilder::new(),
        };
        (!b.is_empty()).then(|| b.build())
    }
}

/// authenticatorBioEnrollment request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BioEnrollment {
    /// Modality (0x01 fingerprint); absent only for a bare getModality.
    pub modality: Option<u8>,
    /// The subcommand; absent for getModality.
    pub sub_command: Option<BioSubCommand>,
    /// PIN/UV auth protocol.
    pub pin_uv_auth_protocol: Option<u8>,
    /// authenticate(token, modality || subCommand || subCommandParams); see
    /// [`BioEnrollment::pin_uv_auth_message`].
    pub pin_uv_auth_param: Option<Vec<u8>>,
    /// Ask for the supported modality.
    pub get_modality: Option<bool>,
    /// Send as the CTAP 2.1-PRE prototype command (0x40).
    pub prototype: bool,
}

impl BioEnrollment {
    /// A fingerprint request without PIN/UV auth, standard command byte.
    pub fn fingerprint(sub_command: BioSubCommand) -> Self {
        BioEnrollment {
            modality: Some(MODALITY_FINGERPRINT),
            sub_command: Some(sub_command),
            pin_uv_auth_protocol: None,
            pin_uv_auth_param: None,
            get_modality: None,
            prototype: false,
        }
    }

    /// A getModality request.
    pub fn get_modality() -> Self {
        BioEnrollment {
            modality: None,
            sub_command: None,
            pin_uv_auth_protocol: None,
            pin_uv_auth_param: None,
            get_modality: Some(true),
            prototype: false,
        }
    }

    /// Canonical CBOR of subCommandParams (empty if there are none).
    pub fn sub_command_params_bytes(&self) -> Vec<u8> {
        params_bytes(
            self.sub_command
                .as_ref()
                .and_then(BioSubCommand::params)
                .as_ref(),
        )
    }

    /// The message the PIN/UV auth param authenticates:
    /// modality || subCommand || subCommandParams.
    pub fn pin_uv_auth_message(&self) -> Vec<u8> {
        let mut m = vec![self.modality.unwrap_or(MODALITY_FINGERPRINT)];
        if let Some(s) = &self.sub_command {
            m.push(s.byte());
        }
        m.extend(self.sub_command_params_bytes());
        m
    }
}

fn template_id(sp: &MapRef<'_>) -> Result<Vec<u8>, CborError> {
    req(sp, 1, "bioEnrollment.subCommandParams.templateId", |v| {
        v.as_bytes("bioEnrollment.subCommandParams.templateId")
            .map(<[u8]>::to_vec)
    })
}

fn timeout(sp: Option<&MapRef<'_>>) -> Result<Option<u32>, CborError> {
    match sp {
        Some(sp) => opt(sp, 3, |v| {
            v.as_u32("bioEnrollment.subCommandParams.timeoutMilliseconds")
        }),
        None => Ok(None),
    }
}

impl Command for BioEnrollment {
    const CMD: u8 = CMD_BIO_ENROLLMENT;
    type Response = BioEnrollmentResponse;

    fn command_byte(&self) -> u8 {
        if self.prototype {
            CMD_BIO_ENROLLMENT_PROTOTYPE
        } else {
            CMD_BIO_ENROLLMENT
        }
    }

    fn params(&self) -> Option<Value> {
        Some(
            MapBuilder::new()
                .put_opt(1, self.modality)
                .put_opt(2, self.sub_command.as_ref().map(BioSubCommand::byte))
                .put_opt(3, self.sub_command.as_ref().and_then(BioSubCommand::params))
                .put_opt(4, self.pin_uv_auth_protocol)
                .put_opt(5, self.pin_uv_auth_param.clone())
                .put_opt(6, self.get_modality)
                .build(),
        )
    }

    /// Reads the request (`prototype` is false; [`super::Request::decode`] sets it from
    /// the command byte). An unknown subcommand gives
    /// `Error::Ctap(CtapStatus::InvalidSubcommand)`.
    fn decode_params(params: Option<&Value>) -> Result<Self, Error> {
        const P: &str = "bioEnrollment.subCommandParams";
        let m = map_or_empty(params, "bioEnrollment")?;
        let sp = opt(&m, 3, |v| v.as_map(P))?;
        let need = || sp.ok_or(CborError::MissingField { field: P });
        let sub = opt(&m, 2, |v| v.as_u64("bioEnrollment.subCommand"))?;
        let sub_command = match sub {
            None => None,
            Some(0x01) => Some(BioSubCommand::EnrollBegin {
                timeout_milliseconds: timeout(sp.as_ref())?,
            }),
            Some(0x02) => Some(BioSubCommand::EnrollCaptureNextSample {
                template_id: template_id(&need()?)?,
                timeout_milliseconds: timeout(sp.as_ref())?,
            }),
            Some(0x03) => Some(BioSubCommand::CancelCurrentEnrollment),
            Some(0x04) => Some(BioSubCommand::EnumerateEnrollments),
            Some(0x05) => {
                let sp = need()?;
                Some(BioSubCommand::SetFriendlyName {
                    template_id: template_id(&sp)?,
                    template_friendly_name: req(
                        &sp,
                        2,
                        "bioEnrollment.subCommandParams.templateFriendlyName",
                        |v| {
                            v.as_text("bioEnrollment.subCommandParams.templateFriendlyName")
                                .map(str::to_owned)
                        },
                    )?,
                })
            }
            Some(0x06) => Some(BioSubCommand::RemoveEnrollment {
                template_id: template_id(&need()?)?,
            }),
            Some(0x07) => Some(BioSubCommand::GetFingerprintSensorInfo),
            Some(_) => return Err(Error::Ctap(CtapStatus::InvalidSubcommand)),
        };
        Ok(BioEnrollment {
            modality: opt(&m, 1, |v| v.as_u8("bioEnrollment.modality"))?,
            sub_command,
            pin_uv_auth_protocol: opt(&m, 4, |v| v.as_u8("bioEnrollment.pinUvAuthProtocol"))?,
            pin_uv_auth_param: opt(&m, 5, |v| {
                v.as_bytes("bioEnrollment.pinUvAuthParam")
                    .map(<[u8]>::to_vec)
            })?,
            get_modality: opt(&m, 6, |v| v.as_bool("bioEnrollment.getModality"))?,
            prototype: false,
        })
    }
}

/// One enrolled template, as enumerateEnrollments lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplateInfo {
    /// Template id.
    pub template_id: Vec<u8>,
    /// Friendly name, if set.
    pub template_friendly_name: Option<String>,
}

impl TemplateInfo {
    fn from_value(v: &Value) -> Result<Self, CborError> {
        let m = v.as_map("bioEnrollment.templateInfos")?;
        Ok(TemplateInfo {
            template_id: req(&m, 1, "bioEnrollment.templateInfos.templateId", |v| {
                v.as_bytes("bioEnrollment.templateInfos.templateId")
                    .map(<[u8]>::to_vec)
            })?,
            template_friendly_name: opt(&m, 2, |v| {
                v.as_text("bioEnrollment.templateInfos.templateFriendlyName")
                    .map(str::to_owned)
            })?,
        })
    }
    fn to_value(&self) -> Value {
        MapBuilder::new()
            .put(1, self.template_id.clone())
            .put_opt(2, self.template_friendly_name.as_deref())
            .build()
    }
}

/// authenticatorBioEnrollment response; which fields are present depends on the
/// subcommand.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BioEnrollmentResponse {
    /// 0x01 modality.
    pub modality: Option<u8>,
    /// 0x02 fingerprint sensor kind (1 touch, 2 swipe).
    pub fingerprint_kind: Option<u8>,
    /// 0x03 samples needed for one enrollment.
    pub max_capture_samples_required_for_enroll: Option<u32>,
    /// 0x04 template id (enrollBegin).
    pub template_id: Option<Vec<u8>>,
    /// 0x05 status of the last sample (0 good, others: too high, too low, ...).
    pub last_enroll_sample_status: Option<u8>,
    /// 0x06 samples still needed.
    pub remaining_samples: Option<u32>,
    /// 0x07 enrolled templates.
    pub template_infos: Option<Vec<TemplateInfo>>,
    /// 0x08 longest friendly name, in bytes.
    pub max_template_friendly_name: Option<u32>,
}

impl ResponseData for BioEnrollmentResponse {
    fn from_cbor(value: Option<&Value>) -> Result<Self, Error> {
        let m = map_or_empty(value, "bioEnrollment response")?;
        Ok(BioEnrollmentResponse {
            modality: opt(&m, 1, |v| v.as_u8("bioEnrollment.modality"))?,
            fingerprint_kind: opt(&m, 2, |v| v.as_u8("bioEnrollment.fingerprintKind"))?,
            max_capture_samples_required_for_enroll: opt(&m, 3, |v| {
                v.as_u32("bioEnrollment.maxCaptureSamplesRequiredForEnroll")
            })?,
            template_id: opt(&m, 4, |v| {
                v.as_bytes("bioEnrollment.templateId").map(<[u8]>::to_vec)
            })?,
            last_enroll_sample_status: opt(&m, 5, |v| {
                v.as_u8("bioEnrollment.lastEnrollSampleStatus")
            })?,
            remaining_samples: opt(&m, 6, |v| v.as_u32("bioEnrollment.remainingSamples"))?,
            template_infos: opt(&m, 7, |v| {
                array_of(v, "bioEnrollment.templateInfos", TemplateInfo::from_value)
            })?,
            max_template_friendly_name: opt(&m, 8, |v| {
                v.as_u32("bioEnrollment.maxTemplateFriendlyName")
            })?,
        })
    }

    fn to_cbor(&self) -> Option<Value> {
        let b = MapBuilder::new()
            .put_opt(1, self.modality)
            .put_opt(2, self.fingerprint_kind)
            .put_opt(3, self.max_capture_samples_required_for_enroll)
            .put_opt(4, self.template_id.clone())
            .put_opt(5, self.last_enroll_sample_status)
            .put_opt(6, self.remaining_samples)
            .put_opt(
                7,
                self.template_infos
                    .as_ref()
                    .map(|t| Value::Array(t.iter().map(TemplateInfo::to_value).collect())),
            )
            .put_opt(8, self.max_template_friendly_name);
        (!b.is_empty()).then(|| b.build())
    }
}
