//! authenticatorBioEnrollment: fingerprint sensor info, enrollment, templates.

use fido_core::commands::{BioEnrollment, BioEnrollmentResponse, BioSubCommand, TemplateInfo};
use fido_core::pin::{Permissions, PinUvAuthToken};
use fido_core::CtapStatus;

use super::{bad_response, check_token, is_status, no_progress, Authenticator};
use crate::{Error, Progress, Transport};

/// Most samples one enrollment may take before the client gives up (keys need 3-16).
const MAX_ENROLL_SAMPLES: u32 = 64;

/// What the fingerprint sensor is like (getFingerprintSensorInfo).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BioSensorInfo {
    /// 1 touch sensor, 2 swipe sensor.
    pub fingerprint_kind: Option<u8>,
    /// Samples one enrollment needs.
    pub max_capture_samples_required_for_enroll: Option<u32>,
    /// Longest template friendly name, in bytes.
    pub max_template_friendly_name: Option<u32>,
}

/// What [`Authenticator::bio_enroll`] reports while it runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EnrollProgress {
    /// The transport's own progress ("touch the sensor").
    Transport(Progress),
    /// A sample was taken.
    Sample {
        /// lastEnrollSampleStatus (0 good; others: too high, too low, too fast, ...).
        status: u8,
        /// Samples still needed.
        remaining: u32,
    },
}

impl<T: Transport> Authenticator<T> {
    /// Whether bio enrollment is offered, and only as the 2.1-PRE prototype (0x40).
    fn bio_prototype(&mut self) -> Result<bool, Error> {
        let info = self.info()?;
        if info.supports_option("bioEnroll").is_none()
            && info
                .supports_option("userVerificationMgmtPreview")
                .is_none()
        {
            return Err(Error::Unsupported(
                "the key has no fingerprint enrollment (getInfo options bioEnroll / userVerificationMgmtPreview absent)".into(),
            ));
        }
        Ok(info.bio_enroll_prototype_only())
    }

    fn bio(
        &mut self,
        sub_command: BioSubCommand,
        token: Option<&PinUvAuthToken>,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<BioEnrollmentResponse, Error> {
        let mut request = BioEnrollment::fingerprint(sub_command);
        request.prototype = self.bio_prototype()?;
        if let Some(token) = token {
            check_token(token, Permissions::BIO_ENROLLMENT, None, "bioEnrollment")?;
            request.pin_uv_auth_protocol = Some(token.protocol().id());
            request.pin_uv_auth_param = Some(token.authenticate(&request.pin_uv_auth_message()));
        }
        self.call(&request, progress)
    }

    /// The fingerprint sensor's properties (no token needed).
    pub fn bio_sensor_info(&mut self) -> Result<BioSensorInfo, Error> {
        let r = self.bio(
            BioSubCommand::GetFingerprintSensorInfo,
            None,
            &mut no_progress,
        )?;
        Ok(BioSensorInfo {
            fingerprint_kind: r.fingerprint_kind,
            max_capture_samples_required_for_enroll: r.max_capture_samples_required_for_enroll,
            max_template_friendly_name: r.max_template_friendly_name,
        })
    }

    /// Enrolls a fingerprint: enrollBegin, then enrollCaptureNextSample until no sample
    /// remains, reporting each sample. `timeout_ms` bounds the wait for each sample.
    /// If a sample fails, the enrollment is cancelled on the key (best effort) and the
    /// error returned. Returns the new template id.
    pub fn bio_enroll(
        &mut self,
        token: &PinUvAuthToken,
        timeout_ms: Option<u32>,
        progress: &mut dyn FnMut(EnrollProgress),
    ) -> Result<Vec<u8>, Error> {
        let mut transport_progress = |p: Progress| progress(EnrollProgress::Transport(p));
        let first = self.bio(
            BioSubCommand::EnrollBegin {
                timeout_milliseconds: timeout_ms,
            },
            Some(token),
            &mut transport_progress,
        )?;
        let template_id = first
            .template_id
            .clone()
            .ok_or_else(|| bad_response("bioEnrollment.templateId", "missing after enrollBegin"))?;
        let mut answer = first;
        let mut samples = 1;
        loop {
            let remaining = answer.remaining_samples.ok_or_else(|| {
                bad_response("bioEnrollment.remainingSamples", "missing in the answer")
            })?;
            progress(EnrollProgress::Sample {
                status: answer.last_enroll_sample_status.unwrap_or(0),
                remaining,
            });
            if remaining == 0 {
                return Ok(template_id);
            }
            if samples >= MAX_ENROLL_SAMPLES {
                self.bio_cancel_enrollment();
                return Err(bad_response(
                    "bioEnrollment.remainingSamples",
                    format!("still {remaining} after {samples} samples; enrollment cancelled"),
                ));
            }
            let mut transport_progress = |p: Progress| progress(EnrollProgress::Transport(p));
            answer = match self.bio(
                BioSubCommand::EnrollCaptureNextSample {
                    template_id: template_id.clone(),
                    timeout_milliseconds: timeout_ms,
                },
                Some(token),
                &mut transport_progress,
            ) {
                Ok(a) => a,
                Err(e) => {
                    self.bio_cancel_enrollment();
                    return Err(e);
                }
            };
            samples += 1;
        }
    }

    /// cancelCurrentEnrollment, ignoring failures (used on the error path).
    fn bio_cancel_enrollment(&mut self) {
        let _ = self.bio(
            BioSubCommand::CancelCurrentEnrollment,
            None,
            &mut no_progress,
        );
    }

    /// The enrolled fingerprints (an empty list when none is enrolled).
    pub fn bio_enumerate(&mut self, token: &PinUvAuthToken) -> Result<Vec<TemplateInfo>, Error> {
        match self.bio(
            BioSubCommand::EnumerateEnrollments,
            Some(token),
            &mut no_progress,
        ) {
            Ok(r) => Ok(r.template_infos.unwrap_or_default()),
            // CTAP 2.1 §6.7.6: no enrollment answers INVALID_OPTION.
            Err(e) if is_status(&e, CtapStatus::InvalidOption) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// Renames a template (setFriendlyName).
    pub fn bio_rename(
        &mut self,
        token: &PinUvAuthToken,
        template_id: &[u8],
        name: &str,
    ) -> Result<(), Error> {
        self.bio(
            BioSubCommand::SetFriendlyName {
                template_id: template_id.to_vec(),
                template_friendly_name: name.to_owned(),
            },
            Some(token),
            &mut no_progress,
        )
        .map(drop)
    }

    /// Removes a template (removeEnrollment).
    pub fn bio_remove(&mut self, token: &PinUvAuthToken, template_id: &[u8]) -> Result<(), Error> {
        self.bio(
            BioSubCommand::RemoveEnrollment {
                template_id: template_id.to_vec(),
            },
            Some(token),
            &mut no_progress,
        )
        .map(drop)
    }
}
