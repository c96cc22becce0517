//! The lifecycle engine: runs the plans of [`crate::state::plan`] against a key, the
//! IdPs and the repository.
//!
//! The engine never decides policy itself: every flow asks the planner for the steps
//! (from the template, the recorded facts, the key's getInfo and the time) and executes
//! them in order. Rules it keeps while doing so:
//! - every IdP side effect is journalled in the store before it is made and closed after;
//!   [`Engine::replay_journal`] finishes what a crash interrupted (a registration is first
//!   looked for at the IdP, so it is never made twice);
//! - every action writes an audit record (actor, time, action, key, user, template,
//!   outcome, IdP request id), failures included;
//! - state changes go through the store's compare-and-set, so two operators racing for
//!   one key never both win;
//! - the transport PIN is random, sealed under the host's [`PinKey`] and never logged.

mod bulk;
mod device;
mod error;
mod payload;
mod reconcile;
mod selfservice;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use fido_core::attestation::verify_assertion;
use fido_core::cose::CoseKey;
use fido_core::pin::Permissions;
use fido_transport::client::{Authenticator, GetAssertionArgs};
use fido_transport::Transport;
use rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::idp::{Idp, IdpError};
use crate::model::{Action, CredentialState};
use crate::state::{
    next_state, plan, KeyFacts, OnIdpFailure, Operation, PendingFact, RegisteredFact, Step,
};
use crate::store::{
    AuditQuery, AuditRecord, JournalOp, JournalStatus, KeyQuery, KeyRecord, NewAuditRecord,
    NewJournalEntry, NewKey, PasskeyRecord, PendingRegistration, PinKey, Store, StoreError,
    Transition, TransportPin, UnitOfWork, UserRecord,
};
use crate::template::{render_display_name, TemplateSet, Transport as KeyTransport};
use crate::Error;
pub use bulk::{
    BulkDevice, BulkDeviceRequest, BulkItemResult, BulkKind, BulkOptions, BulkProgress, BulkSummary,
};
use device::{DeviceOps, Made};
pub use error::EngineError;
use payload::{DeletePayload, RegisterPayload, StatePayload};
pub use reconcile::{DriftFinding, DriftKind, ReconcileOptions, ReconcileReport};

/// Milliseconds since the Unix epoch (UTC), as the planner counts.
pub type UnixMillis = u64;

/// How long a journal claim holds before another station may take the entry over.
const JOURNAL_LEASE_MS: i64 = 60_000;
/// Length of the random transport PIN (digits).
const TRANSPORT_PIN_DIGITS: usize = 16;

/// Where a simulated crash stops a flow (for crash-recovery tests).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CrashPoint {
    /// After the journal entry is committed, before the IdP is called.
    AfterJournal,
    /// After the IdP answered, before the journal entry is closed.
    AfterIdpCall,
    /// Before a flow commits the key's state change (e.g. activation's Issued -> Active,
    /// after its registrations are closed).
    BeforeStateChange,
    /// After the flow journalled its state change, before its first IdP side effect is
    /// journalled.
    AfterStateJournal,
    /// A bulk job item was marked running, before its work starts.
    BulkItemStarted,
}

/// What the engine asks of the person at the key while a command waits.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DevicePrompt {
    /// "Touch your key": the key waits for user presence.
    TouchKey {
        /// The CTAP operation waiting (`makeCredential`, `getAssertion`, `reset`, ...).
        step: &'static str,
    },
    /// "Place your finger": a fingerprint sample was taken during enrolment.
    FingerprintSample {
        /// The key's lastEnrollSampleStatus (0 = good sample).
        last_status: u8,
        /// Samples still needed for this fingerprint.
        remaining: u32,
    },
    /// A fingerprint is about to be enrolled.
    EnrollFingerprint {
        /// Which one (1-based).
        number: u32,
        /// How many the template asks for.
        of: u32,
    },
}

/// Receives [`DevicePrompt`]s (see [`Engine::with_prompt`]).
pub type PromptFn = Arc<dyn Fn(&DevicePrompt) + Send + Sync>;

/// A probe called at every [`CrashPoint`] a flow passes (see [`Engine::with_probe`]).
pub type CrashProbe = Arc<dyn Fn(CrashPoint) + Send + Sync>;

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

/// A verified sign-in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignIn {
    /// The passkey template of the passkey used.
    pub passkey_template: String,
    /// The IdP's method id.
    pub method_id: String,
    /// The credential id.
    pub credential_id: Vec<u8>,
    /// The signature counter the key reported.
    pub sign_count: u32,
}

/// What a journal replay did with one entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Replayed {
    /// The journal entry.
    pub id: i64,
    /// The key.
    pub key_id: String,
    /// The operation.
    pub operation: JournalOp,
    /// `done`, `found at IdP`, `failed: ...` or `busy`.
    pub outcome: String,
}

/// The lifecycle engine. `Send + Sync`: share it behind an `Arc`.
pub struct Engine {
    store: Arc<dyn Store>,
    idps: BTreeMap<String, Arc<dyn Idp>>,
    pin_key: PinKey,
    station: String,
    templates: RwLock<BTreeMap<String, TemplateSet>>,
    crash: Mutex<Option<CrashPoint>>,
    probe: Option<CrashProbe>,
    prompt: Option<PromptFn>,
    /// Self-service token verifiers, one per OIDC configuration.
    verifiers: Mutex<BTreeMap<selfservice::VerifierKey, Arc<entra_graph::oidc::OidcVerifier>>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("station", &self.station)
            .field("idps", &self.idps.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// State carried through one flow.
struct Run<'a> {
    actor: &'a str,
    operation: Operation,
    templates: TemplateSet,
    key: KeyRecord,
    /// The IdP user (object id) the flow is for.
    user: Option<String>,
    /// Placeholder values for display names.
    attrs: BTreeMap<String, String>,
    /// The PIN currently on the key, when the flow knows it.
    pin: Option<Zeroizing<String>>,
    /// Credentials made in this flow, by passkey template, with their client data, the
    /// IdP's challenge expiry and the user's id at that IdP.
    made: BTreeMap<String, (Made, Vec<u8>, Option<u64>, String)>,
    /// Work to commit with the next state change.
    work: UnitOfWork,
    /// The last IdP request id since the last state change.
    request_id: Option<String>,
    /// The open journal entry for the state change that follows this flow's IdP side
    /// effects (closed with it, failed with the flow).
    intent: Option<i64>,
}

fn ms(t: UnixMillis) -> i64 {
    i64::try_from(t).unwrap_or(i64::MAX)
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The key id for a model and serial: lower-case hex AAGUID, `-`, serial.
pub fn key_id_for(aaguid: &[u8; 16], serial: &str) -> String {
    let mut s: String = aaguid.iter().map(|b| format!("{b:02x}")).collect();
    s.push('-');
    s.push_str(serial);
    s
}

fn action_name(to: CredentialState) -> &'static str {
    match to {
        CredentialState::Issued => "issue",
        CredentialState::Active => "activate",
        CredentialState::Inactive => "inactivate",
        CredentialState::Revoked => "revoke",
        CredentialState::Retired => "retire",
        CredentialState::Unregistered => "unregister",
        _ => "state",
    }
}

/// The state a passkey deleted at the IdP by `operation` ends in.
fn deleted_state(operation: Operation) -> CredentialState {
    match operation {
        Operation::Inactivate => CredentialState::Inactive,
        _ => CredentialState::Revoked,
    }
}

/// The span a flow's events are recorded in: action, key id and serial, user, template.
/// Never a PIN or token.
fn flow_span(operation: Operation, actor: &str, key: &KeyRecord) -> tracing::Span {
    tracing::info_span!(
        "flow",
        action = operation.as_str(),
        actor,
        key_id = %key.key_id,
        serial = %key.serial,
        user = key.user_id.as_deref().unwrap_or(""),
        template = key.template_id.as_deref().unwrap_or(""),
    )
}

/// Logs a flow's outcome in its span.
fn log_outcome(result: &Result<KeyRecord, Error>) {
    match result {
        Ok(k) => tracing::info!(state = k.state.as_str(), "flow finished"),
        Err(e) => tracing::warn!(error = %e, "flow failed"),
    }
}

fn random_pin() -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(TRANSPORT_PIN_DIGITS));
    while out.len() < TRANSPORT_PIN_DIGITS {
        let mut b = [0u8; 1];
        OsRng.fill_bytes(&mut b);
        // Rejection sampling keeps the digits uniform.
        if b[0] < 250 {
            out.push(char::from(b'0' + b[0] % 10));
        }
    }
    out
}

impl Engine {
    /// An engine over `store`, sealing transport PINs with `pin_key`; `station` names this
    /// CMS station in journal claims.
    pub fn new(store: Arc<dyn Store>, pin_key: PinKey, station: impl Into<String>) -> Self {
        Engine {
            store,
            idps: BTreeMap::new(),
            pin_key,
            station: station.into(),
            templates: RwLock::new(BTreeMap::new()),
            crash: Mutex::new(None),
            probe: None,
            prompt: None,
            verifiers: Mutex::new(BTreeMap::new()),
        }
    }

    /// Adds an IdP connector under its [`Idp::name`].
    pub fn with_idp(mut self, idp: Arc<dyn Idp>) -> Self {
        self.idps.insert(idp.name().to_owned(), idp);
        self
    }

    /// Loads (or replaces) a credential template set under its credential template name.
    /// It is validated first.
    pub fn add_template(&self, templates: TemplateSet) -> Result<(), Error> {
        templates.validate()?;
        self.templates
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(templates.credential.name.clone(), templates);
        Ok(())
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The IdP connector named `connection`.
    pub fn idp(&self, connection: &str) -> Result<&Arc<dyn Idp>, EngineError> {
        self.idps
            .get(connection)
            .ok_or_else(|| EngineError::UnknownConnection {
                connection: connection.to_owned(),
            })
    }

    /// Fault injection for crash-recovery tests: the next journalled IdP call stops at
    /// `point` with [`EngineError::SimulatedCrash`], writing nothing more (as a killed
    /// process would). Cleared when it fires.
    pub fn crash_at(&self, point: Option<CrashPoint>) {
        *self.crash.lock().unwrap_or_else(PoisonError::into_inner) = point;
    }

    /// Sends "touch your key" and fingerprint prompts to `prompt` (a CLI prints them; a
    /// CMS shows them to the operator or holder).
    pub fn with_prompt(mut self, prompt: PromptFn) -> Self {
        self.prompt = Some(prompt);
        self
    }

    fn prompt(&self, p: &DevicePrompt) {
        if let Some(f) = &self.prompt {
            f(p);
        }
    }

    /// Test hook for crash-recovery tests with a real process: `probe` is called at
    /// every [`CrashPoint`] a flow reaches, before anything after that point is done. A
    /// child process uses it to announce the step and block there until it is killed
    /// (`kill -9`); the probe must not touch the engine. Not for production use.
    pub fn with_probe(mut self, probe: CrashProbe) -> Self {
        self.probe = Some(probe);
        self
    }

    fn maybe_crash(&self, here: CrashPoint) -> Result<(), Error> {
        if let Some(p) = &self.probe {
            p(here);
        }
        let mut c = self.crash.lock().unwrap_or_else(PoisonError::into_inner);
        if *c == Some(here) {
            *c = None;
            return Err(EngineError::SimulatedCrash { point: here }.into());
        }
        Ok(())
    }

    /// Connectivity check of IdP connection `connection` (token + one cheap read);
    /// returns the time it took in milliseconds.
    pub fn check_connection(&self, connection: &str) -> Result<u64, Error> {
        Ok(self.idp(connection)?.check_connection()?)
    }

    /// Users of connection `connection`'s directory whose display name or UPN starts with
    /// `prefix` (at most `top`), for an operator picking whom to issue a key to.
    pub fn search_users(
        &self,
        connection: &str,
        prefix: &str,
        top: u32,
    ) -> Result<Vec<crate::idp::IdpUser>, Error> {
        Ok(self.idp(connection)?.search_users(prefix, top)?)
    }

    /// Keys matching a query.
    pub fn find_keys(&self, query: &KeyQuery) -> Result<Vec<KeyRecord>, Error> {
        Ok(self.store.find_keys(query)?)
    }

    /// A key's record.
    pub fn key(&self, key_id: &str) -> Result<KeyRecord, Error> {
        self.store.get_key(key_id)?.ok_or_else(|| {
            EngineError::UnknownKey {
                key_id: key_id.to_owned(),
            }
            .into()
        })
    }

    /// The passkeys recorded on a key.
    pub fn passkeys(&self, key_id: &str) -> Result<Vec<PasskeyRecord>, Error> {
        Ok(self.store.list_passkeys(key_id)?)
    }

    /// The audit log of a key, oldest first.
    pub fn audit_for(&self, key_id: &str) -> Result<Vec<AuditRecord>, Error> {
        Ok(self.store.query_audit(&AuditQuery {
            key_id: Some(key_id.to_owned()),
            ..AuditQuery::default()
        })?)
    }

    fn template_for(&self, key: &KeyRecord) -> Result<TemplateSet, Error> {
        let name = key.template_id.as_deref().ok_or(EngineError::NotIssued {
            key_id: key.key_id.clone(),
            what: "template",
        })?;
        self.templates
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .cloned()
            .ok_or_else(|| {
                EngineError::UnknownTemplate {
                    template: name.to_owned(),
                }
                .into()
            })
    }

    fn facts(&self, key: &KeyRecord, templates: &TemplateSet) -> Result<KeyFacts, Error> {
        let conn = |pt: &str| {
            templates
                .passkey
                .get(pt)
                .map(|t| t.idp.connection.clone())
                .unwrap_or_else(|| pt.to_owned())
        };
        let pending = self
            .store
            .pending_for_key(&key.key_id)?
            .into_iter()
            .map(|p| PendingFact {
                idp_connection: conn(&p.idp),
                expires_at_ms: u64::try_from(p.challenge_expires_ms).unwrap_or(0),
                passkey_template: p.idp,
            })
            .collect();
        let registered = self
            .store
            .list_passkeys(&key.key_id)?
            .into_iter()
            .filter(|p| p.idp_method_id.is_some())
            .map(|p| RegisteredFact {
                idp_connection: conn(&p.idp),
                passkey_template: p.idp,
            })
            .collect();
        Ok(KeyFacts {
            state: key.state,
            needs_reissue: key.needs_reissue,
            pending,
            registered,
        })
    }

    fn audit(
        &self,
        run: &Run<'_>,
        action: &str,
        outcome: &str,
        detail: Option<String>,
        now: UnixMillis,
    ) -> NewAuditRecord {
        NewAuditRecord {
            actor: run.actor.to_owned(),
            time_ms: ms(now),
            action: action.to_owned(),
            key_id: Some(run.key.key_id.clone()),
            user_id: run.user.clone().or_else(|| run.key.user_id.clone()),
            template_id: Some(run.templates.credential.name.clone()),
            outcome: outcome.to_owned(),
            idp_request_id: run.request_id.clone(),
            detail,
        }
    }

    /// Records a failed flow in the audit log (a simulated crash writes nothing).
    fn fail(&self, run: &Run<'_>, e: Error, now: UnixMillis) -> Error {
        if matches!(e, Error::Engine(EngineError::SimulatedCrash { .. })) {
            return e;
        }
        let outcome = match e {
            Error::Transition(_) | Error::Template(_) => "refused",
            _ => "failure",
        };
        if let Some(id) = run.intent {
            // The flow stopped before its state change: replay must not finish it.
            let _ = self
                .store
                .journal_failed(id, &format!("flow failed: {e}"), ms(now));
        }
        let rec = self.audit(
            run,
            run.operation.as_str(),
            outcome,
            Some(e.to_string()),
            now,
        );
        // The flow's error matters more than a failing audit append.
        let _ = self.store.append_audit(&rec);
        e
    }

    fn user_attrs(
        &self,
        idp: &dyn Idp,
        user: &str,
        serial: &str,
    ) -> Result<(String, BTreeMap<String, String>, UserRecord), Error> {
        let u = idp.user(user)?;
        let mut attrs = BTreeMap::new();
        let mut put = |k: &str, v: &Option<String>| {
            if let Some(v) = v {
                attrs.insert(k.to_owned(), v.clone());
            }
        };
        put("displayName", &u.display_name);
        put("userPrincipalName", &u.user_principal_name);
        put("givenName", &u.given_name);
        put("surname", &u.surname);
        put("mail", &u.mail);
        attrs.insert("serial".into(), serial.to_owned());
        let rec = UserRecord {
            user_id: u.id.clone(),
            upn: u
                .user_principal_name
                .clone()
                .unwrap_or_else(|| u.id.clone()),
            display_name: u.display_name.clone().unwrap_or_default(),
            idp_user_id: Some(u.id.clone()),
        };
        Ok((u.id, attrs, rec))
    }

    /// Central issuance: plans `Issue` for the key attached as `device` (recording it
    /// as Blank first if new) and runs it. Returns the key's record afterwards.
    pub fn issue<T: Transport>(
        &self,
        request: &IssueRequest,
        templates: &TemplateSet,
        device: &mut Authenticator<T>,
        now: UnixMillis,
    ) -> Result<KeyRecord, Error> {
        self.issue_inner(request, templates, None, device, now)
    }

    /// The user's id at IdP `connection`. The key records the user as known to its home
    /// IdP (the first passkey template's); at another IdP (another tenant) the same person
    /// has another object id, found by their UPN.
    pub(crate) fn user_at(
        &self,
        templates: &TemplateSet,
        user_id: &str,
        upn: Option<&str>,
        connection: &str,
    ) -> Result<String, Error> {
        let home = templates
            .passkey_templates()
            .first()
            .map(|t| t.idp.connection.clone());
        if home.as_deref() == Some(connection) {
            return Ok(user_id.to_owned());
        }
        let upn = match upn {
            Some(u) => u.to_owned(),
            None => self
                .store
                .get_user(user_id)?
                .map(|u| u.upn)
                .unwrap_or_else(|| user_id.to_owned()),
        };
        Ok(self.idp(connection)?.user(&upn)?.id)
    }

    /// Issuance with the holder at the desk: for templates with
    /// `auto_initiate_after_issuance`, the holder's PIN replaces the transport PIN and the
    /// registrations are sent in the same flow.
    pub fn issue_and_activate<T: Transport>(
        &self,
        request: &IssueRequest,
        templates: &TemplateSet,
        holder_pin: &str,
        device: &mut Authenticator<T>,
        now: UnixMillis,
    ) -> Result<KeyRecord, Error> {
        self.issue_inner(request, templates, Some(holder_pin), device, now)
    }

    fn issue_inner<T: Transport>(
        &self,
        request: &IssueRequest,
        templates: &TemplateSet,
        holder_pin: Option<&str>,
        device: &mut Authenticator<T>,
        now: UnixMillis,
    ) -> Result<KeyRecord, Error> {
        self.add_template(templates.clone())?;
        let info = DeviceOps::info(device)?;
        let key_id = key_id_for(&info.aaguid, &request.serial);
        let key = match self.store.get_key(&key_id)? {
            Some(k) => k,
            None => self.store.create_key(
                &NewKey {
                    key_id: key_id.clone(),
                    aaguid: info.aaguid,
                    serial: request.serial.clone(),
                },
                ms(now),
            )?,
        };
        self.issue_like(
            Operation::Issue,
            request,
            templates.clone(),
            key,
            device,
            holder_pin,
            now,
        )
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
        self.issue_like(
            Operation::Reissue,
            request,
            templates,
            key,
            device,
            None,
            now,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn issue_like(
        &self,
        operation: Operation,
        request: &IssueRequest,
        templates: TemplateSet,
        key: KeyRecord,
        device: &mut dyn DeviceOps,
        holder_pin: Option<&str>,
        now: UnixMillis,
    ) -> Result<KeyRecord, Error> {
        let span = flow_span(operation, &request.actor, &key);
        let _entered = span.enter();
        let mut run = Run {
            actor: &request.actor,
            operation,
            templates,
            key,
            user: None,
            attrs: BTreeMap::new(),
            pin: None,
            made: BTreeMap::new(),
            work: UnitOfWork::default(),
            request_id: None,
            intent: None,
        };
        let result = (|| {
            let first = run
                .templates
                .passkey_templates()
                .first()
                .map(|t| t.idp.connection.clone())
                .unwrap_or_default();
            let idp = self.idp(&first)?.clone();
            let (uid, attrs, rec) =
                self.user_attrs(idp.as_ref(), &request.user, &request.serial)?;
            span.record("user", uid.as_str());
            span.record("template", run.templates.credential.name.as_str());
            run.user = Some(uid);
            run.attrs = attrs;
            run.work.users.push(rec);
            let info = device.info()?;
            let facts = device::facts(&info, request.transport, request.can_reset_in_place);
            let key_facts = self.facts(&run.key, &run.templates)?;
            let p = plan(operation, &run.templates, &key_facts, Some(&facts), now)?;
            if holder_pin.is_none() && p.steps.contains(&Step::ChangePin) {
                return Err(EngineError::HolderPinRequired.into());
            }
            self.execute(&mut run, &p.steps, Some(device), holder_pin, now)?;
            Ok(run.key.clone())
        })();
        let result = result.map_err(|e| self.fail(&run, e, now));
        log_outcome(&result);
        result
    }

    /// Activation by the holder: their PIN replaces the transport PIN and the pending
    /// registrations are sent. An expired challenge refuses with
    /// [`crate::state::TransitionError::ChallengeExpired`] and marks the key as needing
    /// reissue.
    pub fn activate<T: Transport>(
        &self,
        actor: &str,
        key_id: &str,
        holder_pin: &str,
        device: &mut Authenticator<T>,
        now: UnixMillis,
    ) -> Result<KeyRecord, Error> {
        let key = self.key(key_id)?;
        let span = flow_span(Operation::Activate, actor, &key);
        let _entered = span.enter();
        let templates = self.template_for(&key)?;
        let mut run = self.run(actor, Operation::Activate, templates, key);
        let result = (|| {
            let facts = self.facts(&run.key, &run.templates)?;
            let p = match plan(Operation::Activate, &run.templates, &facts, None, now) {
                Ok(p) => p,
                Err(
                    e @ Error::Transition(crate::state::TransitionError::ChallengeExpired {
                        ..
                    }),
                ) => {
                    let mut t = Transition::new(&run.key, run.key.state);
                    t.needs_reissue = Some(true);
                    let rec = self.audit(&run, "activate", "refused", Some(e.to_string()), now);
                    self.store.transition(&t, &rec, ms(now))?;
                    return Err(e);
                }
                Err(e) => return Err(e),
            };
            self.execute(
                &mut run,
                &p.steps,
                Some(device as &mut dyn DeviceOps),
                Some(holder_pin),
                now,
            )?;
            Ok(run.key.clone())
        })();
        let result = result.map_err(|e| match e {
            // Already audited with the needs-reissue mark.
            e @ Error::Transition(crate::state::TransitionError::ChallengeExpired { .. }) => {
                if let Some(id) = run.intent {
                    let _ = self.store.journal_failed(id, "challenge expired", ms(now));
                }
                e
            }
            e => self.fail(&run, e, now),
        });
        log_outcome(&result);
        result
    }

    fn run<'a>(
        &self,
        actor: &'a str,
        operation: Operation,
        templates: TemplateSet,
        key: KeyRecord,
    ) -> Run<'a> {
        Run {
            actor,
            operation,
            templates,
            user: key.user_id.clone(),
            key,
            attrs: BTreeMap::new(),
            pin: None,
            made: BTreeMap::new(),
            work: UnitOfWork::default(),
            request_id: None,
            intent: None,
        }
    }

    fn simple(
        &self,
        actor: &str,
        operation: Operation,
        key_id: &str,
        force: Option<bool>,
        now: UnixMillis,
    ) -> Result<KeyRecord, Error> {
        self.simple_with_intent(actor, operation, key_id, force, None, now)
    }

    fn simple_with_intent(
        &self,
        actor: &str,
        operation: Operation,
        key_id: &str,
        force: Option<bool>,
        intent: Option<i64>,
        now: UnixMillis,
    ) -> Result<KeyRecord, Error> {
        let key = self.key(key_id)?;
        let span = flow_span(operation, actor, &key);
        let _entered = span.enter();
        let mut templates = match self.template_for(&key) {
            Ok(t) => t,
            // Retire/unregister of a key never issued works without a template.
            Err(_) if key.template_id.is_none() => blank_templates()?,
            Err(e) => return Err(e),
        };
        if let Some(f) = force {
            templates.credential.lifecycle.force_idp_deletion_on_revoke = f;
        }
        let mut run = self.run(actor, operation, templates, key);
        run.intent = intent;
        let result = (|| {
            let facts = self.facts(&run.key, &run.templates)?;
            let p = plan(operation, &run.templates, &facts, None, now)?;
            self.execute(&mut run, &p.steps, None, None, now)?;
            Ok(run.key.clone())
        })();
        let result = result.map_err(|e| self.fail(&run, e, now));
        log_outcome(&result);
        result
    }

    /// Inactivate: the passkeys are removed at the IdP (retried durably on failure).
    pub fn inactivate(
        &self,
        actor: &str,
        key_id: &str,
        now: UnixMillis,
    ) -> Result<KeyRecord, Error> {
        self.simple(actor, Operation::Inactivate, key_id, None, now)
    }

    /// Revoke. `force` overrides the template's `force_idp_deletion_on_revoke`: forced,
    /// a failed IdP deletion cancels the revocation (nothing changes, the error is
    /// returned); unforced, the revocation stands and the deletion is journalled for
    /// [`Engine::replay_journal`].
    pub fn revoke(
        &self,
        actor: &str,
        key_id: &str,
        force: Option<bool>,
        now: UnixMillis,
    ) -> Result<KeyRecord, Error> {
        self.simple(actor, Operation::Revoke, key_id, force, now)
    }

    /// Retire.
    pub fn retire(&self, actor: &str, key_id: &str, now: UnixMillis) -> Result<KeyRecord, Error> {
        self.simple(actor, Operation::Retire, key_id, None, now)
    }

    /// Unregister: the key's records are forgotten (the audit log stays).
    pub fn unregister(
        &self,
        actor: &str,
        key_id: &str,
        now: UnixMillis,
    ) -> Result<KeyRecord, Error> {
        self.simple(actor, Operation::Unregister, key_id, None, now)
    }

    /// Signs in with the key's registered passkeys: for each, checks the IdP still holds
    /// the method, makes a getAssertion (user verified with `pin`) over a fresh challenge
    /// and verifies it against the public key from the attestation the IdP accepted.
    pub fn sign_in<T: Transport>(
        &self,
        key_id: &str,
        pin: &str,
        device: &mut Authenticator<T>,
    ) -> Result<Vec<SignIn>, Error> {
        let key = self.key(key_id)?;
        let span = tracing::info_span!(
            "sign_in",
            key_id = %key.key_id,
            serial = %key.serial,
            user = key.user_id.as_deref().unwrap_or(""),
        );
        let _entered = span.enter();
        let templates = self.template_for(&key)?;
        let user = key.user_id.clone().ok_or(EngineError::NotIssued {
            key_id: key.key_id.clone(),
            what: "user",
        })?;
        let sign_err = |reason: String| Error::from(EngineError::SignIn { reason });
        let mut out = Vec::new();
        for pk in self.store.list_passkeys(key_id)? {
            let Some(method_id) = pk.idp_method_id.clone() else {
                continue;
            };
            let t = templates
                .passkey
                .get(&pk.idp)
                .ok_or_else(|| EngineError::UnknownTemplate {
                    template: pk.idp.clone(),
                })?;
            let idp = self.idp(&t.idp.connection)?;
            let idp_user = self.user_at(&templates, &user, None, &t.idp.connection)?;
            let held = idp.list(&idp_user)?;
            if !held
                .iter()
                .any(|m| m.credential_id.as_deref() == Some(&pk.credential_id[..]))
            {
                return Err(sign_err(format!("the IdP holds no passkey {method_id}")));
            }
            let rp_id = t.rp_id.clone().unwrap_or_else(|| idp.default_rp_id());
            let mut challenge = [0u8; 32];
            OsRng.fill_bytes(&mut challenge);
            let origin = t
                .origin
                .clone()
                .unwrap_or_else(|| format!("https://{rp_id}"));
            let client_data = format!(
                r#"{{"type":"webauthn.get","challenge":"{}","origin":{},"crossOrigin":false}}"#,
                b64(&challenge),
                serde_json::Value::from(origin.as_str())
            );
            let hash: [u8; 32] = Sha256::digest(client_data.as_bytes()).into();
            let token = device.token(pin, Permissions::GET_ASSERTION, Some(&rp_id))?;
            let mut args = GetAssertionArgs::new(rp_id.clone(), hash);
            args.allow_list = vec![fido_core::commands::CredentialDescriptor::public_key(
                pk.credential_id.clone(),
            )];
            let assertions = DeviceOps::get_assertion(device, &args, &token, &|p| self.prompt(p))?;
            let a = assertions
                .first()
                .ok_or_else(|| sign_err("the key returned no assertion".into()))?;
            if a.credential.id != pk.credential_id {
                return Err(sign_err("the key signed with another credential".into()));
            }
            let cose = CoseKey::from_cbor_canonical(&pk.public_key)
                .map_err(|e| sign_err(format!("stored public key: {e}")))?;
            let parsed = verify_assertion(&cose, &a.auth_data_bytes, &hash, &a.signature)
                .map_err(|e| sign_err(format!("signature: {e}")))?;
            if !parsed.is_for_rp_id(&rp_id) {
                return Err(sign_err("rpIdHash does not match".into()));
            }
            if !parsed.flags().user_verified() {
                return Err(sign_err("the key did not verify the user".into()));
            }
            out.push(SignIn {
                passkey_template: pk.idp.clone(),
                method_id,
                credential_id: pk.credential_id.clone(),
                sign_count: parsed.sign_count(),
            });
        }
        if out.is_empty() {
            return Err(sign_err("the key has no registered passkey".into()));
        }
        Ok(out)
    }

    fn commit_state(
        &self,
        run: &mut Run<'_>,
        to: CredentialState,
        now: UnixMillis,
    ) -> Result<(), Error> {
        let mut t = Transition::new(&run.key, to);
        match to {
            CredentialState::Issued => {
                t.user_id = Some(run.user.clone());
                t.template_id = Some(Some(run.templates.credential.name.clone()));
                t.needs_reissue = Some(false);
            }
            CredentialState::Unregistered => {
                t.user_id = Some(None);
                t.template_id = Some(None);
                t.needs_reissue = Some(false);
            }
            _ => {}
        }
        let detail = (run.operation == Operation::Reissue).then(|| "reissue".to_owned());
        self.maybe_crash(CrashPoint::BeforeStateChange)?;
        let rec = self.audit(run, action_name(to), "success", detail, now);
        let mut work = std::mem::take(&mut run.work);
        work.transition = Some(t);
        work.audit.push(rec);
        if let Some(id) = run.intent.take() {
            work.close_journal.push((
                id,
                JournalStatus::Done,
                Some(format!("state {}", to.as_str())),
            ));
        }
        let done = self.store.commit(work, ms(now))?;
        tracing::info!(to = to.as_str(), "state committed");
        run.key = done.key.ok_or_else(|| StoreError::Corrupt {
            what: "transition committed without a key".into(),
        })?;
        run.request_id = None;
        Ok(())
    }

    fn current_pin(&self, run: &Run<'_>) -> Result<Zeroizing<String>, Error> {
        if let Some(p) = &run.pin {
            return Ok(p.clone());
        }
        let t = self
            .store
            .get_transport_pin(&run.key.key_id, &self.pin_key)?
            .ok_or_else(|| EngineError::NoTransportPin {
                key_id: run.key.key_id.clone(),
            })?;
        Ok(Zeroizing::new(t.expose().to_owned()))
    }

    fn execute(
        &self,
        run: &mut Run<'_>,
        steps: &[Step],
        mut device: Option<&mut dyn DeviceOps>,
        holder_pin: Option<&str>,
        now: UnixMillis,
    ) -> Result<(), Error> {
        let need = |step: &'static str| EngineError::Unsupported {
            step,
            reason: "the flow has no key attached".into(),
        };
        for (index, step) in steps.iter().enumerate() {
            tracing::info!(?step, "step");
            if matches!(
                step,
                Step::RegisterPending { .. } | Step::DeletePasskeyAtIdp { .. }
            ) {
                self.open_intent(run, &steps[index..], now)?;
            }
            match step {
                Step::PolicyPreflight { idp_connection, .. } => {
                    let d = device.as_deref_mut().ok_or_else(|| need("preflight"))?;
                    let aaguid = d.info()?.aaguid;
                    let user = run.user.clone().ok_or_else(|| need("preflight"))?;
                    let user = self.user_at(
                        &run.templates,
                        &user,
                        run.attrs.get("userPrincipalName").map(String::as_str),
                        idp_connection,
                    )?;
                    self.idp(idp_connection)?.preflight(&user, &aaguid, true)?;
                }
                Step::ResetAuthenticator => {
                    let d = device.as_deref_mut().ok_or_else(|| need("reset"))?;
                    d.reset(&|p| self.prompt(p))?;
                    self.store.delete_transport_pin(&run.key.key_id)?;
                    run.pin = None;
                }
                Step::SetTransportPin => {
                    let d = device.as_deref_mut().ok_or_else(|| need("setPIN"))?;
                    let pin = random_pin();
                    // Sealed and stored before the key gets it: a crash in between
                    // never leaves a key with a PIN nobody knows.
                    let sealed = TransportPin::new(pin.as_str())?;
                    self.store.put_transport_pin(
                        &run.key.key_id,
                        &sealed,
                        &self.pin_key,
                        ms(now),
                    )?;
                    d.set_pin(&pin)?;
                    run.pin = Some(pin);
                }
                Step::SetMinPinLength {
                    min_pin_length,
                    rp_ids,
                    force_change_pin,
                } => {
                    let pin = self.current_pin(run)?;
                    let d = device
                        .as_deref_mut()
                        .ok_or_else(|| need("setMinPINLength"))?;
                    let min = match min_pin_length {
                        Some(m) => {
                            Some(u8::try_from(*m).map_err(|_| EngineError::Unsupported {
                                step: "setMinPINLength",
                                reason: format!("minimum PIN length {m} exceeds 255"),
                            })?)
                        }
                        None => None,
                    };
                    let token = d.token(&pin, Permissions::AUTHENTICATOR_CONFIG, None)?;
                    d.set_min_pin_length(min, rp_ids, *force_change_pin, &token)?;
                }
                Step::EnableAlwaysUv => {
                    let pin = self.current_pin(run)?;
                    let d = device
                        .as_deref_mut()
                        .ok_or_else(|| need("toggleAlwaysUv"))?;
                    let token = d.token(&pin, Permissions::AUTHENTICATOR_CONFIG, None)?;
                    d.enable_always_uv(&token)?;
                }
                Step::EnrollFingerprints {
                    min_fingerprints,
                    timeout_ms,
                } => {
                    let pin = self.current_pin(run)?;
                    let d = device.as_deref_mut().ok_or_else(|| need("bioEnrollment"))?;
                    let token = d.token(&pin, Permissions::BIO_ENROLLMENT, None)?;
                    let mut enrolled = d.bio_count(&token)?;
                    while enrolled < *min_fingerprints {
                        self.prompt(&DevicePrompt::EnrollFingerprint {
                            number: enrolled + 1,
                            of: *min_fingerprints,
                        });
                        // A fresh token per finger: enrolment can outlast a token's
                        // usage window on real keys.
                        let token = d.token(&pin, Permissions::BIO_ENROLLMENT, None)?;
                        d.bio_enroll(&token, *timeout_ms, &|p| self.prompt(p))?;
                        enrolled += 1;
                    }
                }
                Step::MakeCredential {
                    passkey_template,
                    idp_connection,
                    rp_id,
                    origin,
                } => {
                    let pin = self.current_pin(run)?;
                    let d = device
                        .as_deref_mut()
                        .ok_or_else(|| need("makeCredential"))?;
                    self.make(
                        run,
                        d,
                        &pin,
                        passkey_template,
                        idp_connection,
                        rp_id.as_deref(),
                        origin.as_deref(),
                    )?;
                }
                Step::StorePendingRegistration {
                    passkey_template,
                    expires_at_ms,
                    ..
                } => {
                    let (made, client_data, idp_expiry, idp_user) = run
                        .made
                        .remove(passkey_template)
                        .ok_or_else(|| EngineError::NoPendingRegistration {
                            key_id: run.key.key_id.clone(),
                            passkey_template: passkey_template.clone(),
                        })?;
                    let expires = idp_expiry.map_or(*expires_at_ms, |e| e.min(*expires_at_ms));
                    let user = idp_user;
                    run.work.add_passkeys.push(PasskeyRecord {
                        key_id: run.key.key_id.clone(),
                        idp: passkey_template.clone(),
                        credential_id: made.credential_id,
                        public_key: made.public_key,
                        idp_method_id: None,
                        state: CredentialState::Issued,
                        created_ms: ms(now),
                    });
                    run.work.put_pending.push(PendingRegistration {
                        key_id: run.key.key_id.clone(),
                        idp: passkey_template.clone(),
                        user_id: user,
                        attestation_object: made.attestation_object,
                        client_data_json: client_data,
                        challenge_expires_ms: ms(expires),
                        created_ms: ms(now),
                    });
                }
                Step::ChangePin => {
                    let holder = holder_pin.ok_or(EngineError::Unsupported {
                        step: "changePIN",
                        reason: "no holder PIN given".into(),
                    })?;
                    let d = device.as_deref_mut().ok_or_else(|| need("changePIN"))?;
                    let stored = match &run.pin {
                        Some(p) => Some(p.clone()),
                        None => self
                            .store
                            .get_transport_pin(&run.key.key_id, &self.pin_key)?
                            .map(|t| Zeroizing::new(t.expose().to_owned())),
                    };
                    match stored {
                        Some(transport) => {
                            d.change_pin(&transport, holder)?;
                            self.store.delete_transport_pin(&run.key.key_id)?;
                        }
                        // An earlier attempt changed the PIN and then failed at the IdP:
                        // the transport PIN is gone, so the holder's PIN is checked
                        // instead (a wrong one fails here, before any IdP call).
                        None => {
                            d.token(
                                holder,
                                Permissions::MAKE_CREDENTIAL,
                                Some("keysmith.invalid"),
                            )
                            .map(drop)?;
                        }
                    }
                    run.pin = Some(Zeroizing::new(holder.to_owned()));
                }
                Step::RegisterPending {
                    passkey_template,
                    idp_connection,
                } => {
                    // Passkeys made in this flow are committed first.
                    if !run.work.add_passkeys.is_empty() || !run.work.put_pending.is_empty() {
                        let work = std::mem::take(&mut run.work);
                        self.store.commit(work, ms(now))?;
                    }
                    self.register_pending(run, passkey_template, idp_connection, now)?;
                }
                Step::DropPendingRegistration {
                    passkey_template, ..
                } => {
                    run.work
                        .remove_pending
                        .push((run.key.key_id.clone(), passkey_template.clone()));
                    for mut pk in self.store.list_passkeys(&run.key.key_id)? {
                        if &pk.idp == passkey_template && pk.idp_method_id.is_none() {
                            pk.state = CredentialState::Unregistered;
                            run.work.update_passkeys.push(pk);
                        }
                    }
                }
                Step::DeletePasskeyAtIdp {
                    passkey_template,
                    idp_connection,
                    on_failure,
                } => self.delete_at_idp(run, passkey_template, idp_connection, *on_failure, now)?,
                Step::ForgetKey => {
                    self.store.delete_transport_pin(&run.key.key_id)?;
                    for p in self.store.pending_for_key(&run.key.key_id)? {
                        run.work.remove_pending.push((p.key_id, p.idp));
                    }
                    for mut pk in self.store.list_passkeys(&run.key.key_id)? {
                        if pk.state != CredentialState::Unregistered {
                            pk.state = CredentialState::Unregistered;
                            run.work.update_passkeys.push(pk);
                        }
                    }
                }
                Step::SetState(to) => self.commit_state(run, *to, now)?,
            }
        }
        Ok(())
    }

    /// Journals the state change that follows the IdP side effects about to be made
    /// (the first `SetState` in `rest`), unless one is open already.
    fn open_intent(&self, run: &mut Run<'_>, rest: &[Step], now: UnixMillis) -> Result<(), Error> {
        if run.intent.is_some() {
            return Ok(());
        }
        let Some(to) = rest.iter().find_map(|s| match s {
            Step::SetState(to) => Some(*to),
            _ => None,
        }) else {
            return Ok(());
        };
        let connection = rest
            .iter()
            .find_map(|s| match s {
                Step::RegisterPending { idp_connection, .. }
                | Step::DeletePasskeyAtIdp { idp_connection, .. } => Some(idp_connection.clone()),
                _ => None,
            })
            .unwrap_or_default();
        let revoking = matches!(run.operation, Operation::Revoke | Operation::Reissue);
        let payload = StatePayload {
            operation: run.operation.as_str().to_owned(),
            from: run.key.state.as_str().to_owned(),
            to: to.as_str().to_owned(),
            key_version: run.key.version,
            force: revoking.then_some(
                run.templates
                    .credential
                    .lifecycle
                    .force_idp_deletion_on_revoke,
            ),
        };
        let entry = self.store.journal_append(
            &NewJournalEntry {
                key_id: run.key.key_id.clone(),
                idp: connection,
                operation: JournalOp::State,
                payload: payload.to_bytes(),
            },
            ms(now),
        )?;
        run.intent = Some(entry.id);
        self.maybe_crash(CrashPoint::AfterStateJournal)
    }

    #[allow(clippy::too_many_arguments)]
    fn make(
        &self,
        run: &mut Run<'_>,
        d: &mut dyn DeviceOps,
        pin: &str,
        passkey_template: &str,
        idp_connection: &str,
        rp_id: Option<&str>,
        origin: Option<&str>,
    ) -> Result<(), Error> {
        let t = run
            .templates
            .passkey
            .get(passkey_template)
            .cloned()
            .ok_or_else(|| EngineError::UnknownTemplate {
                template: passkey_template.to_owned(),
            })?;
        let idp = self.idp(idp_connection)?.clone();
        let user = run.user.clone().ok_or(EngineError::NotIssued {
            key_id: run.key.key_id.clone(),
            what: "user",
        })?;
        if run.attrs.is_empty() {
            let (_, attrs, _) = self.user_attrs(idp.as_ref(), &user, &run.key.serial)?;
            run.attrs = attrs;
        }
        let display =
            render_display_name(&t, &run.attrs).map_err(|p| EngineError::DisplayName {
                field: p.field,
                message: p.message,
            })?;
        let minutes = u32::try_from(t.challenge_timeout()).ok();
        let idp_user = self.user_at(
            &run.templates,
            &user,
            run.attrs.get("userPrincipalName").map(String::as_str),
            idp_connection,
        )?;
        let challenge = idp.creation_challenge(&idp_user, minutes, origin)?;
        if let Some(pinned) = rp_id {
            if pinned != challenge.rp_id {
                return Err(EngineError::RpIdMismatch {
                    passkey_template: passkey_template.to_owned(),
                    pinned: pinned.to_owned(),
                    issued: challenge.rp_id.clone(),
                }
                .into());
            }
        }
        let client_data = challenge.client_data_json();
        let hash: [u8; 32] = Sha256::digest(client_data.as_bytes()).into();
        let upn = run
            .attrs
            .get("userPrincipalName")
            .cloned()
            .unwrap_or_else(|| user.clone());
        let args = device::make_args(hash, &challenge, &upn, &display);
        let token = d.token(pin, Permissions::MAKE_CREDENTIAL, Some(&challenge.rp_id))?;
        let made = d.make_credential(&args, &token, &|p| self.prompt(p))?;
        run.made.insert(
            passkey_template.to_owned(),
            (
                made,
                client_data.into_bytes(),
                challenge.expires_at_ms,
                idp_user,
            ),
        );
        Ok(())
    }

    fn register_pending(
        &self,
        run: &mut Run<'_>,
        passkey_template: &str,
        idp_connection: &str,
        now: UnixMillis,
    ) -> Result<(), Error> {
        let key_id = run.key.key_id.clone();
        let pending = self
            .store
            .pending_for_key(&key_id)?
            .into_iter()
            .find(|p| p.idp == passkey_template)
            .ok_or_else(|| EngineError::NoPendingRegistration {
                key_id: key_id.clone(),
                passkey_template: passkey_template.to_owned(),
            })?;
        let passkey = self
            .store
            .list_passkeys(&key_id)?
            .into_iter()
            .rev()
            .find(|p| {
                p.idp == passkey_template
                    && p.idp_method_id.is_none()
                    && p.state == CredentialState::Issued
            })
            .ok_or_else(|| EngineError::NoPendingRegistration {
                key_id: key_id.clone(),
                passkey_template: passkey_template.to_owned(),
            })?;
        let t = run
            .templates
            .passkey
            .get(passkey_template)
            .cloned()
            .ok_or_else(|| EngineError::UnknownTemplate {
                template: passkey_template.to_owned(),
            })?;
        let idp = self.idp(idp_connection)?.clone();
        if run.attrs.is_empty() {
            let (_, attrs, _) = self.user_attrs(idp.as_ref(), &pending.user_id, &run.key.serial)?;
            run.attrs = attrs;
        }
        let display =
            render_display_name(&t, &run.attrs).map_err(|p| EngineError::DisplayName {
                field: p.field,
                message: p.message,
            })?;
        let payload = RegisterPayload {
            user: pending.user_id.clone(),
            passkey_template: passkey_template.to_owned(),
            display_name: display,
            credential_id: b64(&passkey.credential_id),
            client_data_json: b64(&pending.client_data_json),
            attestation_object: b64(&pending.attestation_object),
        };
        let committed = self.store.commit(
            UnitOfWork {
                journal: vec![NewJournalEntry {
                    key_id: key_id.clone(),
                    idp: idp_connection.to_owned(),
                    operation: JournalOp::Register,
                    payload: payload.to_bytes(),
                }],
                ..UnitOfWork::default()
            },
            ms(now),
        )?;
        let entry = committed
            .journal
            .into_iter()
            .next()
            .ok_or_else(|| StoreError::Corrupt {
                what: "journal append returned no entry".into(),
            })?;
        tracing::info!(
            journal_id = entry.id,
            op = "register",
            passkey_template,
            "journal entry appended"
        );
        self.maybe_crash(CrashPoint::AfterJournal)?;
        self.store
            .journal_claim(entry.id, &self.station, ms(now), JOURNAL_LEASE_MS)?;
        let request = payload.request(entry.id)?;
        let outcome = match idp.register(&pending.user_id, &request) {
            Ok(o) => o,
            Err(e @ IdpError::ChallengeExpired { .. }) => {
                // The IdP's clock says expired although ours did not: same outcome.
                self.store
                    .journal_failed(entry.id, &e.to_string(), ms(now))?;
                run.request_id = e.request_id().map(str::to_owned);
                let refusal = crate::state::TransitionError::ChallengeExpired {
                    passkey_template: passkey_template.to_owned(),
                    expired_at_ms: u64::try_from(pending.challenge_expires_ms).unwrap_or(0),
                    now_ms: now,
                };
                let mut t = Transition::new(&run.key, run.key.state);
                t.needs_reissue = Some(true);
                let rec = self.audit(run, "activate", "refused", Some(e.to_string()), now);
                run.key = self.store.transition(&t, &rec, ms(now))?;
                return Err(refusal.into());
            }
            Err(e) => {
                tracing::warn!(
                    journal_id = entry.id,
                    idp_request_id = e.request_id().unwrap_or(""),
                    error = %e,
                    "IdP registration failed"
                );
                self.close_failed_if_final(entry.id, &e, now)?;
                run.request_id = e.request_id().map(str::to_owned);
                return Err(e.into());
            }
        };
        tracing::info!(
            journal_id = entry.id,
            idp_request_id = outcome.request_id.as_deref().unwrap_or(""),
            method_id = %outcome.method_id,
            "IdP registration done"
        );
        self.maybe_crash(CrashPoint::AfterIdpCall)?;
        run.request_id = outcome.request_id.clone();
        let mut pk = passkey;
        pk.idp_method_id = Some(outcome.method_id.clone());
        pk.state = CredentialState::Active;
        let detail = format!(
            "passkey {passkey_template} registered as {}",
            outcome.method_id
        );
        let rec = self.audit(run, "register", "success", Some(detail), now);
        self.store.commit(
            UnitOfWork {
                update_passkeys: vec![pk],
                remove_pending: vec![(key_id, passkey_template.to_owned())],
                close_journal: vec![(entry.id, JournalStatus::Done, Some(outcome.method_id))],
                audit: vec![rec],
                ..UnitOfWork::default()
            },
            ms(now),
        )?;
        tracing::info!(journal_id = entry.id, "journal entry closed");
        Ok(())
    }

    /// A definite refusal (4xx) is not retried; anything else stays pending for replay.
    fn close_failed_if_final(&self, id: i64, e: &IdpError, now: UnixMillis) -> Result<(), Error> {
        let definite = matches!(e, IdpError::Call { status: Some(s), .. } if (400..500).contains(s) && *s != 408 && *s != 429)
            || matches!(e, IdpError::Policy { .. });
        if definite {
            self.store.journal_failed(id, &e.to_string(), ms(now))?;
        }
        Ok(())
    }

    fn delete_at_idp(
        &self,
        run: &mut Run<'_>,
        passkey_template: &str,
        idp_connection: &str,
        on_failure: OnIdpFailure,
        now: UnixMillis,
    ) -> Result<(), Error> {
        let key_id = run.key.key_id.clone();
        let idp = self.idp(idp_connection)?.clone();
        let user = run.key.user_id.clone().ok_or(EngineError::NotIssued {
            key_id: key_id.clone(),
            what: "user",
        })?;
        let user = self.user_at(&run.templates, &user, None, idp_connection)?;
        for mut pk in self.store.list_passkeys(&key_id)? {
            let Some(method_id) = pk.idp_method_id.clone() else {
                continue;
            };
            if pk.idp != passkey_template {
                continue;
            }
            let payload = DeletePayload {
                user: user.clone(),
                passkey_template: passkey_template.to_owned(),
                method_id: method_id.clone(),
                credential_id: b64(&pk.credential_id),
                target: Some(deleted_state(run.operation).as_str().to_owned()),
                keep_key_state: false,
            };
            let entry = self.store.journal_append(
                &NewJournalEntry {
                    key_id: key_id.clone(),
                    idp: idp_connection.to_owned(),
                    operation: JournalOp::Delete,
                    payload: payload.to_bytes(),
                },
                ms(now),
            )?;
            tracing::info!(
                journal_id = entry.id,
                op = "delete",
                passkey_template,
                method_id = %method_id,
                "journal entry appended"
            );
            self.maybe_crash(CrashPoint::AfterJournal)?;
            self.store
                .journal_claim(entry.id, &self.station, ms(now), JOURNAL_LEASE_MS)?;
            let deleted = idp.delete(&user, &method_id);
            match &deleted {
                Ok(d) => tracing::info!(
                    journal_id = entry.id,
                    idp_request_id = d.request_id.as_deref().unwrap_or(""),
                    already_gone = d.already_gone,
                    "IdP deletion done"
                ),
                Err(e) => tracing::warn!(
                    journal_id = entry.id,
                    idp_request_id = e.request_id().unwrap_or(""),
                    error = %e,
                    "IdP deletion failed"
                ),
            }
            match deleted {
                Ok(d) => {
                    self.maybe_crash(CrashPoint::AfterIdpCall)?;
                    run.request_id = d.request_id.clone();
                    pk.idp_method_id = None;
                    pk.state = deleted_state(run.operation);
                    let detail = format!(
                        "passkey {passkey_template} ({method_id}) deleted at the IdP{}",
                        if d.already_gone {
                            " (already gone)"
                        } else {
                            ""
                        }
                    );
                    let rec = self.audit(run, "idp-delete", "success", Some(detail), now);
                    self.store.commit(
                        UnitOfWork {
                            update_passkeys: vec![pk],
                            close_journal: vec![(entry.id, JournalStatus::Done, d.request_id)],
                            audit: vec![rec],
                            ..UnitOfWork::default()
                        },
                        ms(now),
                    )?;
                    tracing::info!(journal_id = entry.id, "journal entry closed");
                }
                Err(e) => {
                    run.request_id = e.request_id().map(str::to_owned);
                    match on_failure {
                        OnIdpFailure::CancelOperation => {
                            self.store
                                .journal_failed(entry.id, &e.to_string(), ms(now))?;
                            return Err(EngineError::IdpDeletionCancelled {
                                operation: run.operation,
                                passkey_template: passkey_template.to_owned(),
                                message: e.to_string(),
                                request_id: e.request_id().map(str::to_owned),
                            }
                            .into());
                        }
                        _ => {
                            let detail = format!(
                                "deleting passkey {passkey_template} ({method_id}) failed, retried by journal replay: {e}"
                            );
                            let rec = self.audit(run, "idp-delete", "deferred", Some(detail), now);
                            self.store.append_audit(&rec)?;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Finishes the IdP side effects a crash (or an IdP failure) left pending. A
    /// registration is first looked for in the user's methods, so it is never made twice.
    pub fn replay_journal(&self, now: UnixMillis) -> Result<Vec<Replayed>, Error> {
        let mut out = Vec::new();
        let mut entries = self.store.journal_unfinished()?;
        // State changes are finished after the side effects they wait for.
        entries.sort_by_key(|e| (e.operation == JournalOp::State, e.id));
        for entry in entries {
            let mut report = Replayed {
                id: entry.id,
                key_id: entry.key_id.clone(),
                operation: entry.operation,
                outcome: String::new(),
            };
            match self
                .store
                .journal_claim(entry.id, &self.station, ms(now), JOURNAL_LEASE_MS)
            {
                Ok(_) => {}
                Err(StoreError::JournalBusy { .. }) => {
                    report.outcome = "busy".into();
                    out.push(report);
                    continue;
                }
                Err(e) => return Err(e.into()),
            }
            let result = match entry.operation {
                JournalOp::Register => self
                    .idp(&entry.idp)
                    .map_err(Error::from)
                    .and_then(|idp| self.replay_register(&entry, idp.as_ref(), now)),
                JournalOp::Delete => self
                    .idp(&entry.idp)
                    .map_err(Error::from)
                    .and_then(|idp| self.replay_delete(&entry, idp.as_ref(), now)),
                JournalOp::State => self.replay_state(&entry, now),
            };
            report.outcome = match result {
                Ok(s) => s,
                Err(e) => {
                    if let Error::Idp(ie) = &e {
                        self.close_failed_if_final(entry.id, ie, now)?;
                    }
                    format!("failed: {e}")
                }
            };
            tracing::info!(
                journal_id = entry.id,
                key_id = %entry.key_id,
                op = ?entry.operation,
                outcome = %report.outcome,
                "journal entry replayed"
            );
            out.push(report);
        }
        Ok(out)
    }

    fn replay_audit(
        &self,
        key: &KeyRecord,
        action: &str,
        request_id: Option<String>,
        detail: String,
        now: UnixMillis,
    ) -> NewAuditRecord {
        NewAuditRecord {
            actor: format!("replay:{}", self.station),
            time_ms: ms(now),
            action: action.to_owned(),
            key_id: Some(key.key_id.clone()),
            user_id: key.user_id.clone(),
            template_id: key.template_id.clone(),
            outcome: "success".into(),
            idp_request_id: request_id,
            detail: Some(detail),
        }
    }

    fn replay_register(
        &self,
        entry: &crate::store::JournalEntry,
        idp: &dyn Idp,
        now: UnixMillis,
    ) -> Result<String, Error> {
        let p = RegisterPayload::from_bytes(entry.id, &entry.payload)?;
        let request = p.request(entry.id)?;
        let key = self.key(&entry.key_id)?;
        let found = idp
            .list(&p.user)?
            .into_iter()
            .find(|m| m.credential_id.as_deref() == Some(&request.credential_id[..]));
        let (method_id, request_id, how) = match found {
            Some(m) => (m.method_id, None, "found at IdP"),
            None => {
                let o = idp.register(&p.user, &request)?;
                (o.method_id, o.request_id, "registered")
            }
        };
        let mut work = UnitOfWork::default();
        if let Some(mut pk) = self
            .store
            .list_passkeys(&entry.key_id)?
            .into_iter()
            .find(|pk| pk.credential_id == request.credential_id)
        {
            pk.idp_method_id = Some(method_id.clone());
            pk.state = CredentialState::Active;
            work.update_passkeys.push(pk);
        }
        work.remove_pending
            .push((entry.key_id.clone(), p.passkey_template.clone()));
        work.close_journal
            .push((entry.id, JournalStatus::Done, Some(method_id.clone())));
        work.audit.push(self.replay_audit(
            &key,
            "register",
            request_id.clone(),
            format!(
                "journal {}: passkey {} {how} as {method_id}",
                entry.id, p.passkey_template
            ),
            now,
        ));
        // The activation got as far as the PIN change; finish it once nothing is pending.
        let others_pending = self
            .store
            .pending_for_key(&entry.key_id)?
            .iter()
            .any(|x| x.idp != p.passkey_template);
        if key.state == CredentialState::Issued && !others_pending {
            let mut t = Transition::new(&key, CredentialState::Active);
            t.needs_reissue = Some(false);
            work.transition = Some(t);
            work.audit.push(self.replay_audit(
                &key,
                "activate",
                request_id,
                format!("journal {}: activation finished by replay", entry.id),
                now,
            ));
        }
        self.store.commit(work, ms(now))?;
        Ok(how.to_owned())
    }

    /// Finishes (or settles) a state change whose flow died after its IdP side effects.
    fn replay_state(
        &self,
        entry: &crate::store::JournalEntry,
        now: UnixMillis,
    ) -> Result<String, Error> {
        let p = StatePayload::from_bytes(entry.id, &entry.payload)?;
        let close = |result: &str| -> Result<String, Error> {
            self.store.journal_done(entry.id, Some(result), ms(now))?;
            Ok(result.to_owned())
        };
        let Some(key) = self.store.get_key(&entry.key_id)? else {
            return close("superseded: the key is no longer recorded");
        };
        if key.version != p.key_version || key.state.as_str() != p.from {
            return close(&format!("superseded: the key is now {}", key.state));
        }
        let waiting = self.store.journal_unfinished()?.into_iter().any(|e| {
            e.key_id == entry.key_id && e.id != entry.id && e.operation != JournalOp::State
        });
        if waiting {
            // Left pending; the next replay tries again once those are finished.
            return Ok("waiting for the key's IdP side effects".into());
        }
        let to: CredentialState = p.to.parse().map_err(|_| EngineError::BadJournalPayload {
            id: entry.id,
            reason: format!("unknown target state {:?}", p.to),
        })?;
        let actor = format!("replay:{}", self.station);
        match to {
            CredentialState::Revoked | CredentialState::Inactive => {
                // Run the operation again from the recorded facts: deletions already
                // made are not planned again; the journal entry closes with the state.
                let op = if to == CredentialState::Inactive {
                    Operation::Inactivate
                } else {
                    Operation::Revoke
                };
                match self.simple_with_intent(&actor, op, &key.key_id, p.force, Some(entry.id), now)
                {
                    Ok(k) => Ok(format!("{op} finished by replay; the key is {}", k.state)),
                    // `fail` closed the entry as failed and audited the error.
                    Err(e) => Ok(format!("failed: {e}")),
                }
            }
            CredentialState::Active => {
                if !self.store.pending_for_key(&key.key_id)?.is_empty() {
                    let why = "activation incomplete: registrations are still pending; run the activation again";
                    self.store.journal_failed(entry.id, why, ms(now))?;
                    return Ok(why.into());
                }
                let mut t = Transition::new(&key, CredentialState::Active);
                t.needs_reissue = Some(false);
                let rec = self.replay_audit(
                    &key,
                    "activate",
                    None,
                    format!("journal {}: activation finished by replay", entry.id),
                    now,
                );
                self.store.commit(
                    UnitOfWork {
                        transition: Some(t),
                        audit: vec![rec],
                        close_journal: vec![(
                            entry.id,
                            JournalStatus::Done,
                            Some("state active".into()),
                        )],
                        ..UnitOfWork::default()
                    },
                    ms(now),
                )?;
                Ok("activate finished by replay".into())
            }
            other => close(&format!("nothing to finish for a change to {other}")),
        }
    }

    pub(crate) fn replay_delete(
        &self,
        entry: &crate::store::JournalEntry,
        idp: &dyn Idp,
        now: UnixMillis,
    ) -> Result<String, Error> {
        let p = DeletePayload::from_bytes(entry.id, &entry.payload)?;
        let key = self.key(&entry.key_id)?;
        let d = idp.delete(&p.user, &p.method_id)?;
        let target = p
            .target
            .as_deref()
            .and_then(|t| t.parse::<CredentialState>().ok())
            .unwrap_or(CredentialState::Revoked);
        let mut work = UnitOfWork::default();
        let passkeys = self.store.list_passkeys(&entry.key_id)?;
        if let Some(mut pk) = passkeys
            .iter()
            .find(|pk| pk.idp_method_id.as_deref() == Some(&p.method_id))
            .cloned()
        {
            pk.idp_method_id = None;
            pk.state = target;
            work.update_passkeys.push(pk);
        }
        work.close_journal
            .push((entry.id, JournalStatus::Done, d.request_id.clone()));
        work.audit.push(self.replay_audit(
            &key,
            "idp-delete",
            d.request_id.clone(),
            format!(
                "journal {}: passkey {} ({}) deleted",
                entry.id, p.passkey_template, p.method_id
            ),
            now,
        ));
        // The crash came before the state change: finish it once no other passkey of
        // the key is still registered.
        let action = match target {
            CredentialState::Inactive => Action::Inactivate,
            _ => Action::Revoke,
        };
        let others_registered = passkeys.iter().any(|pk| {
            pk.idp_method_id.is_some() && pk.idp_method_id.as_deref() != Some(&p.method_id)
        });
        if let (Ok(to), false, false) = (
            next_state(key.state, action),
            others_registered,
            p.keep_key_state,
        ) {
            work.transition = Some(Transition::new(&key, to));
            work.audit.push(self.replay_audit(
                &key,
                action.as_str(),
                d.request_id.clone(),
                format!("journal {}: {action} finished by replay", entry.id),
                now,
            ));
        }
        self.store.commit(work, ms(now))?;
        Ok(if d.already_gone {
            "already gone"
        } else {
            "done"
        }
        .to_owned())
    }
}

/// A minimal template set for keys that were never issued (retire / unregister of a
/// blank key need no template content).
fn blank_templates() -> Result<TemplateSet, Error> {
    const T: &str = "[passkey.none]\nidp = { connection = \"none\" }\ndisplay_name = \"{serial}\"\n\n[credential]\nname = \"none\"\npasskey_templates = [\"none\"]\nuser_assignment = { directory = \"none\" }\n";
    Ok(TemplateSet::from_toml_str(T)?)
}

// Compile-time check: the engine can be shared between threads.
const _: fn() = || {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Engine>();
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_id_is_hex_aaguid_and_serial() {
        let id = key_id_for(b"keysmith-softkey", "SN1");
        assert_eq!(id, "6b6579736d6974682d736f66746b6579-SN1");
    }

    #[test]
    fn transport_pins_are_random_digits() {
        let a = random_pin();
        let b = random_pin();
        assert_eq!(a.len(), TRANSPORT_PIN_DIGITS);
        assert!(a.chars().all(|c| c.is_ascii_digit()));
        assert_ne!(*a, *b);
    }

    #[test]
    fn deletions_end_in_the_operations_state() {
        assert_eq!(
            deleted_state(Operation::Inactivate),
            CredentialState::Inactive
        );
        assert_eq!(deleted_state(Operation::Revoke), CredentialState::Revoked);
        assert_eq!(deleted_state(Operation::Reissue), CredentialState::Revoked);
        assert_eq!(action_name(CredentialState::Active), "activate");
        assert_eq!(action_name(CredentialState::Unregistered), "unregister");
    }

    #[test]
    fn engine_errors_name_what_failed() {
        let e = EngineError::IdpDeletionCancelled {
            operation: Operation::Revoke,
            passkey_template: "entra".into(),
            message: "HTTP 403".into(),
            request_id: None,
        };
        assert_eq!(
            e.to_string(),
            "revoke cancelled: deleting the passkey of template \"entra\" at the IdP failed: HTTP 403"
        );
        let d = EngineError::Device {
            step: "changePIN",
            cause: crate::DeviceError::PinInvalid {
                retries_left: 2,
                power_cycle_required: false,
            },
        };
        assert_eq!(
            d.to_string(),
            "security key: changePIN failed: wrong PIN: 2 attempt(s) left before the PIN blocks"
        );
    }
}
