//! Issuance: central issuance, issuance with the holder at the desk, and reissue.

use fido_transport::client::Authenticator;
use fido_transport::Transport;

use super::device;
use super::{key_id_for, DevicePrompt, Engine, SelfServiceError, SerialSource, UnixMillis};
use crate::remote::{DeviceLink, LocalLink};
use crate::state::{plan, Operation, Step};
use crate::store::{KeyRecord, NewKey};
use crate::template::{KeyTransport, TemplateSet};
use crate::Error;

use super::flow::FlowContext;

/// Who and what an issuance is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssueRequest {
    /// The operator (or `self:<user>`).
    pub actor: String,
    /// The user, by IdP object id or UPN.
    pub user: String,
    /// The key's serial number (from the key, or assigned by the CMS); with the AAGUID it
    /// makes the key id.
    pub serial: String,
    /// How the key is attached.
    pub transport: KeyTransport,
    /// The key can be reset right now (just plugged in / field just power-cycled).
    pub can_reset_in_place: bool,
}

impl Engine {
    /// Central issuance with the loaded credential template `template` (see
    /// [`Engine::add_template`]): plans `Issue` for the key attached as `device`
    /// (recording it as Blank first if new) and runs it. Returns the key's record
    /// afterwards.
    pub fn issue<T: Transport>(
        &self,
        request: &IssueRequest,
        template: &str,
        device: &mut Authenticator<T>,
        now: UnixMillis,
    ) -> Result<KeyRecord, Error> {
        self.issue_inner(request, template, None, device, now)
    }

    /// Issuance with the holder at the desk: for templates with
    /// `auto_initiate_after_issuance`, the holder's PIN replaces the transport PIN and the
    /// registrations are sent in the same flow.
    pub fn issue_and_activate<T: Transport>(
        &self,
        request: &IssueRequest,
        template: &str,
        holder_pin: &str,
        device: &mut Authenticator<T>,
        now: UnixMillis,
    ) -> Result<KeyRecord, Error> {
        self.issue_inner(request, template, Some(holder_pin), device, now)
    }

    pub(super) fn issue_inner<T: Transport>(
        &self,
        request: &IssueRequest,
        template: &str,
        holder_pin: Option<&str>,
        device: &mut Authenticator<T>,
        now: UnixMillis,
    ) -> Result<KeyRecord, Error> {
        self.issue_inner_claimed(request, template, holder_pin, None, device, now)
    }

    /// Central issuance (as [`Engine::issue`]) where the station says where the
    /// request's serial comes from (`claimed`: the key's USB serial string, or the CSV
    /// row): recorded with the key unless the key proves more (its device identifier or
    /// enterprise attestation certificate).
    pub(crate) fn issue_claimed<T: Transport>(
        &self,
        request: &IssueRequest,
        template: &str,
        claimed: SerialSource,
        device: &mut Authenticator<T>,
        now: UnixMillis,
    ) -> Result<KeyRecord, Error> {
        self.issue_inner_claimed(request, template, None, Some(claimed), device, now)
    }

    fn issue_inner_claimed<T: Transport>(
        &self,
        request: &IssueRequest,
        template: &str,
        holder_pin: Option<&str>,
        claimed: Option<SerialSource>,
        device: &mut Authenticator<T>,
        now: UnixMillis,
    ) -> Result<KeyRecord, Error> {
        // An unknown template fails before the key is touched.
        self.loaded_template(template)?;
        let device_kind = device.transport().kind();
        let prompt = |p: &DevicePrompt| self.prompt(p);
        let mut link = LocalLink::open(device, holder_pin, transport_name(device_kind), &prompt)?;
        self.issue_via_claimed(request, template, claimed, &mut link, now)
    }

    /// Issuance over `link` (a session with a device half, in memory or remote): the key
    /// is recorded (Blank) if new, then `Issue` is planned from the device report and run.
    pub(crate) fn issue_via(
        &self,
        request: &IssueRequest,
        template: &str,
        link: &mut dyn DeviceLink,
        now: UnixMillis,
    ) -> Result<KeyRecord, Error> {
        self.issue_via_claimed(request, template, None, link, now)
    }

    fn issue_via_claimed(
        &self,
        request: &IssueRequest,
        template: &str,
        claimed: Option<SerialSource>,
        link: &mut dyn DeviceLink,
        now: UnixMillis,
    ) -> Result<KeyRecord, Error> {
        let templates = self.loaded_template(template)?;
        let info = link.info().clone();
        let key_id = key_id_for(&info.aaguid, &request.serial);
        let key = match self.store.get_key(&key_id)? {
            Some(k) => k,
            None => self.store.create_key(
                &NewKey {
                    key_id: key_id.clone(),
                    aaguid: info.aaguid,
                    serial: request.serial.clone(),
                },
                now,
            )?,
        };
        self.issue_like_claimed(
            Operation::Issue,
            request,
            templates,
            key,
            claimed,
            link,
            now,
        )
    }

    /// Reissue of `key` over `link` (a session with a device half, in memory or remote).
    pub(crate) fn reissue_via(
        &self,
        request: &IssueRequest,
        key: KeyRecord,
        link: &mut dyn DeviceLink,
        now: UnixMillis,
    ) -> Result<KeyRecord, Error> {
        let templates = self.template_for(&key)?;
        self.issue_like(Operation::Reissue, request, templates, key, link, now)
    }

    /// Reissue: revoke → retire → unregister → issue, as planned for the key's state.
    pub fn reissue<T: Transport>(
        &self,
        request: &IssueRequest,
        key_id: &str,
        device: &mut Authenticator<T>,
        now: UnixMillis,
    ) -> Result<KeyRecord, Error> {
        let key = self.key(key_id)?;
        let templates = self.template_for(&key)?;
        let prompt = |p: &DevicePrompt| self.prompt(p);
        let kind = transport_name(device.transport().kind());
        let mut link = LocalLink::open(device, None, kind, &prompt)?;
        self.issue_like(Operation::Reissue, request, templates, key, &mut link, now)
    }

    pub(super) fn issue_like(
        &self,
        operation: Operation,
        request: &IssueRequest,
        templates: TemplateSet,
        key: KeyRecord,
        link: &mut dyn DeviceLink,
        now: UnixMillis,
    ) -> Result<KeyRecord, Error> {
        self.issue_like_claimed(operation, request, templates, key, None, link, now)
    }

    #[allow(clippy::too_many_arguments)]
    fn issue_like_claimed(
        &self,
        operation: Operation,
        request: &IssueRequest,
        templates: TemplateSet,
        key: KeyRecord,
        claimed: Option<SerialSource>,
        link: &mut dyn DeviceLink,
        now: UnixMillis,
    ) -> Result<KeyRecord, Error> {
        let mut flow = FlowContext::new(&request.actor, operation, templates, key);
        flow.claimed = claimed;
        // The user comes from the request, not from the key's record.
        flow.user = None;
        self.run_flow(flow, now, |flow| {
            // Planned first: what the device half cannot carry out is refused before
            // any IdP call.
            let info = link.info().clone();
            let facts = device::facts(&info, request.transport, request.can_reset_in_place);
            let key_facts = self.facts(&flow.key, &flow.templates)?;
            let p = plan(operation, &flow.templates, &key_facts, Some(&facts), now)?;
            if !link.has_holder_pin() && p.steps.contains(&Step::ChangePin) {
                return Err(SelfServiceError::HolderPinRequired.into());
            }
            if !link.raw_ctap() {
                crate::state::Plan::check_steps_platform_only(&p.steps)?;
            }
            // A key with a PIN the engine knows proves which key it is before anything
            // is done to it (or at the IdP).
            self.check_identity_up_front(flow, link)?;
            let first = flow
                .templates
                .passkey_templates()
                .first()
                .map(|t| t.idp.connection.clone())
                .unwrap_or_default();
            let idp = self.idp(&first)?.clone();
            let (uid, attrs, rec) =
                self.issuable_user_attrs(idp.as_ref(), &request.user, &request.serial)?;
            flow.span.record("user", uid.as_str());
            flow.span
                .record("template", flow.templates.credential.name.as_str());
            flow.user = Some(uid);
            flow.attrs = attrs;
            flow.work.users.push(rec);
            // The audit says how the key was attached (a software key is never `usb`).
            let rec = flow.audit(
                "device",
                "success",
                Some(format!("transport={}", request.transport.as_str())),
                now,
            );
            flow.work.audit.push(rec);
            self.execute(flow, &p.steps, Some(link), now)
        })
    }
}

/// The transport name a device report carries.
pub(super) fn transport_name(kind: fido_transport::TransportKind) -> &'static str {
    match kind {
        fido_transport::TransportKind::Usb => "usb",
        fido_transport::TransportKind::Nfc => "nfc",
        _ => "software",
    }
}
