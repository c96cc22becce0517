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
//!
//! Where things are: this file holds the [`Engine`], its [`EngineBuilder`] and the
//! read-only queries. The flows are `issue` (issue, issue-and-activate, reissue),
//! `activate`, `transitions` (inactivate, revoke, retire, unregister), `sign_in`,
//! `selfservice`, `reconcile` and `replay`; each runs in a `flow::FlowContext` (span,
//! audit, failure, outcome log), its planned steps interpreted by `execute`, its IdP side
//! effects journalled by `effects`. `jobs` runs many keys from a CSV file (`csv`,
//! `throttle`, `runner`); `fault` holds the crash-test hooks (`fault-injection` feature).

mod activate;
mod attest;
mod delegated;
mod device;
mod effects;
mod error;
mod execute;
mod fault;
mod flow;
mod graph2026;
mod identity;
mod issue;
mod jobs;
mod leavers;
mod live;
mod provenance;
pub use leavers::{LeaversRound, REPLACEMENT_PASS_MINUTES};
pub use provenance::{provenance_request, ProvenanceOutcome};
mod passkeys;
pub use passkeys::{
    ForeignDeletion, HeldPasskey, IssuedBy, PasskeyKind, UserPasskeys, AUTHENTICATOR_AAGUIDS,
    SYNCED_PROVIDER_AAGUIDS, WINDOWS_HELLO_AAGUIDS,
};
mod payload;
mod probe;
mod reconcile;
mod release;
mod replay;
mod selfservice;
pub(crate) use selfservice::nonce_digest;
pub use selfservice::{SelfServiceStart, NONCE_LIFETIME};
mod settle;
mod sign_in;
mod transitions;
mod watch;
pub use watch::{RELIST_DELAYS_MS, REPLICATION_GRACE_MS};

use std::collections::BTreeMap;

use fido_core::trust::TrustStore;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use crate::idp::Idp;
use crate::state::{KeyFacts, PendingFact, RegisteredFact};
use crate::store::{
    AdoptedRows, AuditQuery, AuditRecord, AuditVerification, KeyQuery, KeyRecord, PasskeyRecord,
    PinKey, Store, UserRecord,
};
use crate::template::TemplateSet;
use crate::Error;
pub use error::{
    EngineError, IdpEffectError, JobError, JournalError, LookupError, PlanError, SelfServiceError,
};
pub use fault::CrashPoint;
#[cfg(feature = "fault-injection")]
pub use fault::CrashProbe;
use fault::Faults;
pub use issue::IssueRequest;
pub use jobs::{
    BulkClock, BulkDevice, BulkDeviceRequest, BulkItemResult, BulkKind, BulkOptions, BulkProgress,
    BulkSummary, KeyEvidence, KeySerial, SerialSource, DEFAULT_CLAIM_LEASE_MS, MIN_CLAIM_LEASE_MS,
};
pub use reconcile::{DriftFinding, DriftKind, ReconcileOptions, ReconcileReport};
pub use replay::{ReplayOutcome, Replayed};
pub use sign_in::SignIn;

/// Milliseconds since the Unix epoch (UTC), as the planner counts.
pub use crate::state::UnixMillis;

/// How long a journal claim holds before another station may take the entry over. It
/// covers the Graph client's whole retry budget for one request with the default policy
/// (`entra_graph::GraphConfig::worst_case_call`: 6 attempts of up to 30 s each plus at
/// most 120 s of waits in total (`RetryPolicy::max_total_wait`), and one token
/// acquisition bounded the same way with its 60 s `token_max_total_wait`: 9 minutes),
/// with room to spare; a test keeps it at least that. The claim is also renewed every
/// minute while the call runs (a registration that reconciles by listing makes several
/// requests), so another station never takes over an entry whose call is still in
/// flight. A station's own claims it can always take again.
const JOURNAL_LEASE_MS: i64 = 15 * 60_000;

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
    /// "Press and hold your key": the key wants a long touch (getInfo
    /// `longTouchForReset`); follows [`DevicePrompt::TouchKey`] for the same step.
    HoldKey {
        /// The CTAP operation waiting (`reset`).
        step: &'static str,
    },
    /// The replug of a reset at the station: "remove the key" / "insert it again"
    /// (USB), "lift the key off the reader" / "put it back" (NFC); the text is
    /// [`fido_transport::client::ResetPrompt::message`].
    Replug(fido_transport::client::ResetPrompt),
}

/// Receives [`DevicePrompt`]s (see [`EngineBuilder::prompt`]).
pub type PromptFn = Arc<dyn Fn(&DevicePrompt) + Send + Sync>;

/// The lifecycle engine. `Send + Sync`: share it behind an `Arc`.
pub struct Engine {
    store: Arc<dyn Store>,
    idps: BTreeMap<String, Arc<dyn Idp>>,
    pin_key: PinKey,
    station: String,
    templates: RwLock<BTreeMap<String, TemplateSet>>,
    faults: Faults,
    prompt: Option<PromptFn>,
    /// Self-service token verifiers, one per OIDC configuration.
    verifiers: Mutex<BTreeMap<selfservice::VerifierKey, Arc<entra_graph::oidc::OidcVerifier>>>,
    /// Roots for checking new credentials' attestation (FIDO MDS BLOB, extra roots).
    trust: Arc<TrustStore>,
    /// Keys whose IdP side effects a flow is making now (shared with views).
    live: live::LiveKeys,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("station", &self.station)
            .field("idps", &self.idps.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// Builds an [`Engine`] (see [`Engine::builder`]): its IdP connectors, credential
/// templates and prompt receiver are given here, before the engine runs anything.
pub struct EngineBuilder {
    store: Arc<dyn Store>,
    pin_key: PinKey,
    station: String,
    idps: BTreeMap<String, Arc<dyn Idp>>,
    templates: Vec<TemplateSet>,
    prompt: Option<PromptFn>,
    faults: Faults,
    trust: TrustStore,
}

impl std::fmt::Debug for EngineBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineBuilder")
            .field("station", &self.station)
            .field("idps", &self.idps.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl EngineBuilder {
    /// Adds an IdP connector under its [`Idp::name`].
    #[must_use]
    pub fn idp(mut self, idp: Arc<dyn Idp>) -> Self {
        self.idps.insert(idp.name().to_owned(), idp);
        self
    }

    /// Loads a credential template set (validated by [`EngineBuilder::build`]); more can
    /// be loaded later with [`Engine::add_template`].
    #[must_use]
    pub fn template(mut self, templates: TemplateSet) -> Self {
        self.templates.push(templates);
        self
    }

    /// The attestation trust store (a verified FIDO MDS3 BLOB and/or extra roots, see
    /// [`fido_core::trust`]): every new credential's attestation is checked against it
    /// right after makeCredential, as each passkey template's `attestation` setting
    /// requires. Without one, no key counts as attested.
    #[must_use]
    pub fn trust_store(mut self, trust: TrustStore) -> Self {
        self.trust = trust;
        self
    }

    /// Sends "touch your key" and fingerprint prompts to `prompt` (a CLI prints them; a
    /// CMS shows them to the operator or holder).
    #[must_use]
    pub fn prompt(mut self, prompt: PromptFn) -> Self {
        self.prompt = Some(prompt);
        self
    }

    /// Test hook for crash-recovery tests with a real process: `probe` is called at
    /// every [`CrashPoint`] a flow reaches, before anything after that point is done. A
    /// child process uses it to announce the step and block there until it is killed
    /// (`kill -9`); the probe must not touch the engine. Not for production use.
    #[cfg(feature = "fault-injection")]
    #[must_use]
    pub fn probe(mut self, probe: CrashProbe) -> Self {
        self.faults = self.faults.with_probe(probe);
        self
    }

    /// The engine, with its templates validated. An empty station (or one with control
    /// characters) is refused here, naming `station`, instead of at the first journal
    /// claim halfway through an activation. Installs the row-authentication key derived
    /// from the PIN key in the store ([`Store::set_row_key`]): from here on the rows sent
    /// to the IdP are checked when read, and audit records carry MACs.
    pub fn build(self) -> Result<Engine, Error> {
        if self.station.trim().is_empty() || self.station.chars().any(char::is_control) {
            return Err(crate::store::StoreError::Invalid {
                field: "station",
                reason: format!(
                    "{:?}: must be a non-empty name without control characters",
                    self.station
                ),
            }
            .into());
        }
        self.store.set_row_key(&self.pin_key);
        let engine = Engine {
            store: self.store,
            idps: self.idps,
            pin_key: self.pin_key,
            station: self.station,
            templates: RwLock::new(BTreeMap::new()),
            faults: self.faults,
            prompt: self.prompt,
            verifiers: Mutex::new(BTreeMap::new()),
            trust: Arc::new(self.trust),
            live: live::LiveKeys::default(),
        };
        for t in self.templates {
            engine.add_template(t)?;
        }
        Ok(engine)
    }
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The key id for a model and serial: lower-case hex AAGUID, `-`, serial.
pub fn key_id_for(aaguid: &[u8; 16], serial: &str) -> String {
    let mut s = base16ct::lower::encode_string(aaguid);
    s.push('-');
    s.push_str(serial);
    s
}

impl Engine {
    /// A builder of an engine over `store`, sealing transport PINs with `pin_key`;
    /// `station` names this CMS station in journal claims.
    pub fn builder(
        store: Arc<dyn Store>,
        pin_key: PinKey,
        station: impl Into<String>,
    ) -> EngineBuilder {
        EngineBuilder {
            store,
            pin_key,
            station: station.into(),
            idps: BTreeMap::new(),
            templates: Vec::new(),
            prompt: None,
            faults: Faults::default(),
            trust: TrustStore::default(),
        }
    }

    /// Loads (or replaces) a credential template set under its credential template name
    /// (flows name the template they use; none is loaded behind the caller's back). It is
    /// validated first, and against the configured connections: a challenge timeout its
    /// connection's Graph API version cannot ask for (v1.0: 5 minutes) is refused.
    pub fn add_template(&self, templates: TemplateSet) -> Result<(), Error> {
        templates.validate()?;
        self.check_connection_versions(&templates)?;
        self.check_provenance_support(&templates)?;
        self.templates
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(templates.credential.name.clone(), templates);
        Ok(())
    }

    /// The OIDC settings holders of the loaded template `name` sign in with, when it
    /// allows holder self-service.
    pub(crate) fn holder_oidc_of(
        &self,
        name: &str,
    ) -> Result<Option<crate::template::OidcConfig>, Error> {
        Ok(self.loaded_template(name)?.credential.self_service.oidc)
    }

    /// The OIDC settings every loaded template with holder self-service shares (issuer and
    /// audience), or `None` when there is none or they differ.
    pub(crate) fn shared_holder_oidc(&self) -> Option<crate::template::OidcConfig> {
        let templates = self
            .templates
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let mut found: Option<crate::template::OidcConfig> = None;
        for t in templates.values() {
            if let Some(o) = &t.credential.self_service.oidc {
                match &found {
                    None => found = Some(o.clone()),
                    Some(f) if f.issuer == o.issuer && f.audience == o.audience => {}
                    Some(_) => return None,
                }
            }
        }
        found
    }

    /// The loaded credential template set named `name`.
    fn loaded_template(&self, name: &str) -> Result<TemplateSet, Error> {
        self.templates
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .cloned()
            .ok_or_else(|| {
                LookupError::UnknownTemplate {
                    template: name.to_owned(),
                }
                .into()
            })
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The IdP connector named `connection`.
    pub fn idp(&self, connection: &str) -> Result<&Arc<dyn Idp>, EngineError> {
        self.idps.get(connection).ok_or_else(|| {
            LookupError::UnknownConnection {
                connection: connection.to_owned(),
            }
            .into()
        })
    }

    fn prompt(&self, p: &DevicePrompt) {
        if let Some(f) = &self.prompt {
            f(p);
        }
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
            LookupError::UnknownKey {
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

    /// Checks the whole audit log: its hash chain and each record's MAC under the key
    /// derived from this engine's PIN key; the report names the first record that fails.
    pub fn verify_audit(&self) -> Result<AuditVerification, Error> {
        Ok(self.store.verify_audit(&self.pin_key)?)
    }

    /// Authenticates the rows written before rows carried MACs (an upgraded database),
    /// as they are, under this engine's PIN key; once per database, recorded in the
    /// audit log (see [`Store::adopt_unauthenticated_rows`]).
    pub fn adopt_unauthenticated_rows(
        &self,
        actor: &str,
        now: UnixMillis,
    ) -> Result<AdoptedRows, Error> {
        Ok(self
            .store
            .adopt_unauthenticated_rows(&self.pin_key, actor, now)?)
    }

    fn template_for(&self, key: &KeyRecord) -> Result<TemplateSet, Error> {
        let name = key.template_id.as_deref().ok_or(LookupError::NotIssued {
            key_id: key.key_id.clone(),
            what: "template",
        })?;
        self.loaded_template(name)
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
                idp_connection: conn(&p.passkey_template),
                expires_at_ms: p.challenge_expires_ms,
                passkey_template: p.passkey_template,
            })
            .collect();
        let registered = self
            .store
            .list_passkeys(&key.key_id)?
            .into_iter()
            .filter(|p| p.idp_method_id.is_some())
            .map(|p| RegisteredFact {
                idp_connection: conn(&p.passkey_template),
                passkey_template: p.passkey_template,
            })
            .collect();
        Ok(KeyFacts {
            state: key.state,
            needs_reissue: key.needs_reissue,
            pending,
            registered,
        })
    }

    fn user_attrs(
        &self,
        idp: &dyn Idp,
        user: &str,
        serial: &str,
    ) -> Result<(String, BTreeMap<String, String>, UserRecord), Error> {
        Ok(attrs_of(idp.user(user)?, serial))
    }

    /// [`Engine::user_attrs`] for an issuance: a user whose directory account is disabled
    /// (`accountEnabled: false`) is refused with [`SelfServiceError::AccountDisabled`].
    pub(super) fn issuable_user_attrs(
        &self,
        idp: &dyn Idp,
        user: &str,
        serial: &str,
    ) -> Result<(String, BTreeMap<String, String>, UserRecord), Error> {
        let u = idp.user(user)?;
        if u.account_enabled == Some(false) {
            return Err(SelfServiceError::AccountDisabled {
                user: u.user_principal_name.unwrap_or(u.id),
            }
            .into());
        }
        Ok(attrs_of(u, serial))
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
}

/// The display-name attributes and the user record of a directory user.
fn attrs_of(
    u: crate::idp::IdpUser,
    serial: &str,
) -> (String, BTreeMap<String, String>, UserRecord) {
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
    (u.id, attrs, rec)
}

// Compile-time check: the engine can be shared between threads.
const _: fn() = || {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Engine>();
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Operation;

    #[test]
    fn the_journal_lease_covers_the_graph_clients_retry_budget() {
        let worst = entra_graph::GraphConfig::new("t").worst_case_call();
        let lease =
            std::time::Duration::from_millis(u64::try_from(JOURNAL_LEASE_MS).expect("positive"));
        assert!(lease >= worst, "lease {lease:?} < budget {worst:?}");
    }

    #[test]
    fn an_empty_station_is_refused_when_the_engine_is_built() {
        for station in ["", "  ", "a\nb"] {
            let store = Arc::new(crate::store::SqliteStore::open_in_memory().expect("store"));
            let e = Engine::builder(store, PinKey::from_bytes([7; 32]), station)
                .build()
                .expect_err("empty station");
            assert!(
                matches!(
                    &e,
                    Error::Store(crate::store::StoreError::Invalid {
                        field: "station",
                        ..
                    })
                ),
                "{e:?}"
            );
        }
        let store = Arc::new(crate::store::SqliteStore::open_in_memory().expect("store"));
        assert!(Engine::builder(store, PinKey::from_bytes([7; 32]), "cms-1")
            .build()
            .is_ok());
    }

    #[test]
    fn key_id_is_hex_aaguid_and_serial() {
        let id = key_id_for(b"keysmith-softkey", "SN1");
        assert_eq!(id, "6b6579736d6974682d736f66746b6579-SN1");
    }

    #[test]
    fn engine_errors_name_what_failed() {
        let e = IdpEffectError::IdpDeletionCancelled {
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
            cause: crate::DeviceFault::PinInvalid {
                retries_left: 2,
                power_cycle_required: false,
            }
            .into(),
        };
        assert_eq!(
            d.to_string(),
            "security key: changePIN failed: wrong PIN: 2 attempt(s) left before the PIN blocks"
        );
    }
}
